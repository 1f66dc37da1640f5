"""The package's layers, as ``docs/architecture.md`` draws them: a module imports only
from its own layer or the ones below.  Type-only imports (under ``if TYPE_CHECKING:``)
are not counted — they run no code.  A lazy import inside a function counts: it runs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "bulkframe"

#: lowest first; a unit is a top-level module or subpackage of ``bulkframe``
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"errors", "result", "types", "choices", "options", "progress", "read_ahead", "_html"}),
    ("sql vocabulary and input shaping", {"portable_sql", "filters", "normalize"}),
    ("backends", {"backends"}),
    ("plan", {"plan"}),
    ("rules", {"rules"}),
    ("operations", {"ops"}),
    ("api", {"database"}),
    ("front ends", {"nodes", "cli", "distributed", "ray", "dask", "__init__", "__main__"}),
]

#: imports that go up on purpose, each with its reason
ALLOWED_UPWARD = {
    # plugin discovery: an element rendered for a dialect first imports the backend
    # registered under that dialect's name (its module holds the @compiles renderings)
    ("portable_sql", "backends"),
}


def _layer_of(unit: str) -> int:
    for index, (_, units) in enumerate(LAYERS):
        if unit in units:
            return index
    raise AssertionError(f"bulkframe.{unit} is in no layer: add it to LAYERS and docs/architecture.md")


def _unit(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    return rel.parts[0]


def _runtime_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """``bulkframe.*`` modules imported outside ``if TYPE_CHECKING:`` blocks."""
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                type_only.update(id(n) for n in ast.walk(child))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "bulkframe":
                found += [(node.lineno, f"bulkframe.{a.name}") for a in node.names]
            elif node.module.startswith("bulkframe."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("bulkframe.")]
    return found


def _violations() -> list[str]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        unit = _unit(path)
        here = _layer_of(unit)
        for line, module in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            target = module.split(".")[1]
            if target == unit or (unit, target) in ALLOWED_UPWARD:
                continue
            if _layer_of(target) > here:
                out.append(
                    f"{path.relative_to(SRC.parent)}:{line}: {unit} ({LAYERS[here][0]}) imports "
                    f"{module} ({LAYERS[_layer_of(target)][0]}), a higher layer"
                )
    return out


def test_no_module_imports_a_higher_layer() -> None:
    assert _violations() == []


def test_every_unit_has_a_layer() -> None:
    units = {_unit(p) for p in SRC.rglob("*.py")}
    for unit in units:
        _layer_of(unit)


def test_the_check_sees_an_upward_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk is not vacuous: a lazy upward import inside a function is reported, a
    type-only one is not."""
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bulkframe.database import Database\n"
        "def f():\n    from bulkframe.ops.create import bulk_create\n"
    )
    assert [m for _, m in _runtime_imports(tree)] == ["bulkframe.ops.create"]


def test_architecture_page_lists_the_layers() -> None:
    page = (SRC.parents[1] / "docs" / "architecture.md").read_text(encoding="utf-8")
    for name, units in LAYERS:
        assert name in page, f"docs/architecture.md does not name the layer {name!r}"
        for unit in units - {"__init__", "__main__", "_html"}:
            assert f"`{unit}" in page, f"docs/architecture.md does not place {unit!r} in a layer"
