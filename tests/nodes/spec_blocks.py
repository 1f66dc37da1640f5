"""Reading the spec's code examples: blocks, their headings, and the parameters of every
``add_node`` call (the spec is copied to ``data/`` so the suite runs anywhere)."""

from __future__ import annotations

import ast
import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPEC = Path(__file__).parent / "data" / "dataflow-bulk-operations.md"

#: The only change the examples get: their imports point at bulkframe.
IMPORTS = {
    "from kailash.workflow.builder import WorkflowBuilder": "from bulkframe.nodes import WorkflowBuilder",
    "from kailash.runtime.local import LocalRuntime": "from bulkframe.nodes import LocalRuntime",
}


@dataclass(frozen=True)
class Block:
    slug: str
    heading: str
    code: str

    @property
    def adapted(self) -> str:
        code = self.code
        for old, new in IMPORTS.items():
            code = code.replace(old, new)
        return code


@dataclass(frozen=True)
class AddNode:
    node_type: str
    node_id: str
    keys: tuple[str, ...]
    values: dict[str, Any]  # literal values only (names like ``products`` are left out)


def blocks() -> list[Block]:
    """Every ```python block of the spec, named after the heading above it."""
    out: list[Block] = []
    heading = ""
    seen: dict[str, int] = {}
    lines = SPEC.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.strip() == "```python":
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            slug = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")
            seen[slug] = seen.get(slug, 0) + 1
            if seen[slug] > 1:
                slug = f"{slug}-{seen[slug]}"
            out.append(Block(slug, heading, "\n".join(lines[i + 1 : j]) + "\n"))
            i = j
        i += 1
    return out


def add_node_call(node: ast.AST) -> AddNode | None:
    """The ``x.add_node("Type", "id", {...})`` call a statement is, if it is one."""
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)):
        return None
    call = node.value
    if not (isinstance(call.func, ast.Attribute) and call.func.attr == "add_node") or len(call.args) < 3:
        return None
    kind, nid, params = call.args[:3]
    if not (
        isinstance(kind, ast.Constant) and isinstance(nid, ast.Constant) and isinstance(params, ast.Dict)
    ):
        return None
    keys: list[str] = []
    values: dict[str, Any] = {}
    for k, v in zip(params.keys, params.values, strict=True):
        assert isinstance(k, ast.Constant) and isinstance(k.value, str), ast.dump(params)
        keys.append(k.value)
        with contextlib.suppress(ValueError):  # names such as `products` are not literals
            values[k.value] = ast.literal_eval(v)
    return AddNode(kind.value, nid.value, tuple(keys), values)


def add_node_calls(code: str) -> list[AddNode]:
    """Every ``add_node`` call anywhere in ``code`` (also inside functions)."""
    return [c for n in ast.walk(ast.parse(code)) if (c := add_node_call(n)) is not None]
