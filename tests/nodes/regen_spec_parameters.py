"""Refresh ``docs/spec-parameters.md`` from the code: ``python tests/nodes/regen_spec_parameters.py``.

Statuses, notes and the summary line come from the code (:func:`bulkframe.nodes.params.status`,
which reads the option declarations in ``bulkframe.options``).  A row's note starts with the
code's note; hand-written text after it is kept while the row's status is unchanged.  Spec
parameters missing from the table are appended to their node's section.  Review the diff
before committing.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from spec_blocks import add_node_calls, blocks

from bulkframe.nodes.params import NODE_SUFFIX, status

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec-parameters.md"


def _op(node_type: str) -> str:
    return next(op for op, suffix in NODE_SUFFIX.items() if node_type.endswith(suffix))


def _note(note: str, code_note: str) -> str:
    """The code's note, followed by the hand-written rest of ``note``."""
    if not code_note or note.startswith(code_note):
        return note
    return f"{code_note} — {note}" if note else code_note


def main() -> None:
    order: dict[str, list[str]] = {}
    for block in blocks():
        for call in add_node_calls(block.code):
            keys = order.setdefault(_op(call.node_type), [])
            keys.extend(k for k in call.keys if k not in keys)
    lines = DOC.read_text().splitlines()
    out: list[str] = []
    op: str | None = None
    seen: set[tuple[str, str]] = set()
    counts = {"works": 0, "accepted": 0, "missing": 0}

    def flush(section: str | None) -> None:
        if section is None:
            return
        for key in order.get(section, []):
            if (section, key) not in seen:
                st, note = status(section, key)  # type: ignore[arg-type]
                out.append(f"| `{key}` | {st} | {note} |")
                seen.add((section, key))

    for line in lines:
        heading = re.match(r"^## (\w+)$", line)
        if heading:
            flush(op)
            if out and out[-1] != "":
                out.append("")
            op = _op(heading.group(1))
        row = re.match(r"^\| `([^`]+)` \| ([^|]+?) \| (.*) \|$", line)
        if row and op is not None:
            name, old, note = row.groups()
            st, code_note = status(op, name)  # type: ignore[arg-type]
            out.append(f"| `{name}` | {st} | {_note(note, code_note) if st == old else code_note} |")
            seen.add((op, name))
            continue
        if line == "" and op is not None and out and out[-1].startswith("| `"):
            flush(op)
        out.append(line)
    flush(op)
    for section, key in seen:
        st = status(section, key)[0]  # type: ignore[arg-type]
        counts["works" if st == "works" else "accepted" if st.startswith("accepted") else "missing"] += 1
    summary = (
        f"Summary: {len(seen)} spec parameters (by node): {counts['works']} work, {counts['accepted']} "
        f"accepted only with one value, {counts['missing']} not supported yet."
    )
    text = re.sub(r"^Summary: .*$", summary, "\n".join(out) + "\n", flags=re.M)
    DOC.write_text(text)
    print(summary)


if __name__ == "__main__":
    main()
