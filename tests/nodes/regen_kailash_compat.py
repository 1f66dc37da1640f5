"""Refresh the tables of ``docs/kailash-compat.md`` from the code:
``python tests/nodes/regen_kailash_compat.py``.

Every table row comes from :mod:`bulkframe.nodes.kailash`; the prose between the marker
lines is kept.  ``tests/nodes/test_kailash_compat.py`` fails when the page and the code
disagree, and checks that each row behaves as it says.
"""

from __future__ import annotations

import re
from pathlib import Path

from bulkframe.nodes import kailash
from bulkframe.nodes.params import OPERATIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "kailash-compat.md"


def sections() -> dict[str, list[tuple[str, str, str]]]:
    """Section id → rows ``(kailash name, status, note)``."""
    out: dict[str, list[tuple[str, str, str]]] = {
        "constructor": [(n, s, note) for n, (s, note) in kailash.KAILASH_CONSTRUCTOR.items()],
    }
    for op in OPERATIONS:
        out[f"params-{op}"] = [
            (
                n,
                "alias" if p.kind != "refused" else "refused",
                f"→ `{p.target}`: {p.note}" if p.note else f"→ `{p.target}`",
            )
            for n, p in kailash.KAILASH_PARAMS[op].items()
        ]
        out[f"result-{op}"] = [(k, "built", "") for k in kailash.RESULT_KEYS[op]]
    out["model"] = [(n, s, note) for n, (s, note) in kailash.KAILASH_MODEL.items()]
    out["surface"] = [(n, s, note) for n, (s, note) in kailash.KAILASH_SURFACE.items()]
    out["node-types"] = [(n, s, note) for n, (s, note) in kailash.KAILASH_NODE_TYPES.items()]
    out["runtime"] = [(n, s, note) for n, (s, note) in kailash.KAILASH_RUNTIME.items()]
    return out


def render(rows: list[tuple[str, str, str]]) -> str:
    lines = ["| kailash | bulkframe | notes |", "|---|---|---|"]
    lines += ["| `{}` | {} | {} |".format(n, s, note.replace("|", "\\|")) for n, s, note in rows]
    return "\n".join(lines)


def main() -> None:
    text = DOC.read_text()
    for sid, rows in sections().items():
        pattern = re.compile(rf"(<!-- table:{re.escape(sid)} -->\n)(?:\|.*\n)*(<!-- /table -->)")
        if not pattern.search(text):
            raise SystemExit(f"{DOC}: no marker for table {sid!r}")
        text = pattern.sub(lambda m, r=rows: m.group(1) + render(r) + "\n" + m.group(2), text)
    DOC.write_text(text)


if __name__ == "__main__":
    main()
