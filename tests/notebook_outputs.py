"""What a notebook cell shows, for the tests that execute the notebooks and compare the
fresh outputs with the saved ones (importable by this unique name, like suite_backends)."""

from __future__ import annotations

from typing import Any


def output_kinds(cell: Any) -> set[str]:
    """What a cell shows: stream names and the mimetypes of its displays."""
    kinds: set[str] = set()
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            kinds.add(f"stream:{out['name']}")
        elif out["output_type"] in ("display_data", "execute_result"):
            kinds |= {f"{out['output_type']}:{mime}" for mime in out["data"]}
        else:
            kinds.add(out["output_type"])
    return kinds
