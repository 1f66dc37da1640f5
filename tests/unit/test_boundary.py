"""The backend boundary: no module outside a backend's own module names a database.

Every difference between databases is a capability (data, read by shared code) or a hook on
``Backend``; SQL that databases spell differently is an element of
``bulkframe.portable_sql`` whose per-dialect rendering lives in the backend's module.  This
walks the source tree and fails on a module that names a dialect anyway.
"""

from __future__ import annotations

import ast
import dataclasses
import shutil
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from bulkframe.backends.capabilities import Capabilities

SRC = Path(__file__).resolve().parents[2] / "src" / "bulkframe"
TESTS = Path(__file__).resolve().parents[1]
#: Names of databases / SQLAlchemy dialects that shared code must not spell.
DIALECT_NAMES = frozenset(
    {"postgresql", "postgres", "sqlite", "mysql", "mariadb", "duckdb", "oracle", "mssql"}
)


def _is_dialect_name(node: ast.AST) -> bool:
    """``x.dialect.name`` or a ``dialect_name`` variable/attribute."""
    if isinstance(node, ast.Attribute):
        if node.attr == "dialect_name":
            return True
        return node.attr == "name" and isinstance(node.value, ast.Attribute) and node.value.attr == "dialect"
    return isinstance(node, ast.Name) and node.id == "dialect_name"


def dialect_violations(source: str, filename: str = "<source>") -> list[str]:
    """Where ``source`` names a database: a string literal that is a dialect name, a
    comparison with ``.dialect.name`` (or a ``dialect_name``), a ``dialect_name``
    parameter or keyword, an import from ``sqlalchemy.dialects``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.strip().lower() in DIALECT_NAMES:
                found.append(f"{where}: string literal {node.value!r}")
        elif isinstance(node, ast.Compare) and any(
            _is_dialect_name(n) for n in (node.left, *node.comparators)
        ):
            found.append(f"{where}: compares a dialect name")
        elif isinstance(node, ast.arg) and node.arg == "dialect_name":
            found.append(f"{where}: parameter dialect_name")
        elif isinstance(node, ast.keyword) and node.arg == "dialect_name":
            found.append(f"{where}: keyword dialect_name=")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy.dialects"):
            found.append(f"{where}: imports from {node.module}")
        elif isinstance(node, ast.Import) and any(
            a.name.startswith("sqlalchemy.dialects") for a in node.names
        ):
            found.append(f"{where}: imports sqlalchemy.dialects")
    return found


def backend_modules(root: Path) -> set[Path]:
    """The modules that may name their database: each registered backend's module
    (``bulkframe.backends`` entry points) and its ``<name>_sql.py`` companion."""
    out = set()
    for entry in entry_points(group="bulkframe.backends"):
        module = entry.value.split(":", 1)[0]
        if not module.startswith("bulkframe.backends."):
            continue  # a third-party backend lives outside this tree
        path = root.joinpath(*module.split(".")[1:]).with_suffix(".py")
        out |= {path, path.with_name(f"{path.stem}_sql.py")}
    return out


def _scheme_table_lines(source: str) -> range:
    """The lines of ``BUILT_IN = {…}`` in the registry: the one table that maps URL schemes
    (which are database names) to backend modules, so that a built-in URL opens without
    reading package metadata.  Its literals are data, not a branch on a database."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "BUILT_IN" for t in node.targets
        ):
            return range(node.lineno, (node.end_lineno or node.lineno) + 1)
    return range(0)


def tree_violations(root: Path) -> list[str]:
    """Every violation in the package at ``root`` (``src/bulkframe``) outside the backend
    modules; shared modules under ``backends/`` (base, statements, ddl, …) included."""
    allowed = backend_modules(root)
    registry = root / "backends" / "registry.py"
    found = []
    for path in sorted(root.rglob("*.py")):
        if path not in allowed:
            source = path.read_text(encoding="utf-8")
            where = str(path.relative_to(root))
            violations = dialect_violations(source, where)
            if path == registry:
                table = _scheme_table_lines(source)
                violations = [v for v in violations if int(v.split(":")[1]) not in table]
            found += violations
    return found


def test_no_module_outside_the_backend_modules_names_a_dialect() -> None:
    allowed = backend_modules(SRC)
    assert SRC / "backends" / "sqlite.py" in allowed and SRC / "backends" / "postgres.py" in allowed
    assert tree_violations(SRC) == []


def test_the_backend_modules_do_name_their_dialect() -> None:
    # the check is not vacuous: the per-dialect code it leaves alone is really there
    assert dialect_violations((SRC / "backends" / "sqlite.py").read_text(), "sqlite.py")
    assert dialect_violations((SRC / "backends" / "postgres.py").read_text(), "postgres.py")


@pytest.mark.parametrize(
    ("source", "count"),
    [
        ('if backend.dialect.name == "sqlite":\n    pass', 2),  # the comparison and the literal
        ("if conn.backend.dialect.name in NAMES:\n    pass", 1),
        ("ok = dialect_name != other", 1),
        ("def f(dialect_name=None): ...", 1),
        ("to_sql(f, t, dialect_name=name)", 1),
        ("DIALECTS = ('postgresql', 'oracle')", 2),
        ("match name:\n    case 'DuckDB':\n        pass", 1),
        ("x = ' MySQL '", 1),
        ("from sqlalchemy.dialects import postgresql", 1),
        ("import sqlalchemy.dialects.sqlite", 1),
        ("from sqlalchemy.dialects.sqlite import insert", 1),
        ("@compiles(Element, 'sqlite')\ndef f(): ...", 1),
        # allowed: showing the name, capabilities, prose, URLs
        ('raise NotSupportedError(f"not supported on {backend.name}")', 0),
        ('msg = f"{compiler.dialect.name}: no title()"', 0),
        ("if backend.capabilities.regex:\n    pass", 0),
        ('"""SQLite and PostgreSQL differ here."""', 0),
        ('DEFAULT_URL = "sqlite:///bulkframe.db"', 0),
    ],
)
def test_checker_on_synthetic_sources(source: str, count: int) -> None:
    assert len(dialect_violations(source)) == count, dialect_violations(source)


@pytest.mark.parametrize(
    ("module", "planted", "flagged"),
    [
        ("filters.py", 'if backend.dialect.name == "sqlite":\n    pass\n', True),
        ("rules/expressions.py", "def f(dialect_name: str) -> None: ...\n", True),
        ("ops/delete.py", "from sqlalchemy.dialects import postgresql\n", True),
        ("backends/statements.py", 'FLAVOUR = {"postgresql": 1}\n', True),  # shared, though in backends/
        ("backends/ddl.py", 'if name == "mysql":\n    pass\n', True),
        ("backends/registry.py", 'if scheme == "duckdb":\n    pass\n', True),  # only its scheme table may
        ("backends/sqlite.py", 'if compiler.dialect.name == "sqlite":\n    pass\n', False),  # its own module
    ],
)
def test_checker_fails_on_a_planted_violation(
    tmp_path: Path, module: str, planted: str, flagged: bool
) -> None:
    copy = tmp_path / "bulkframe"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert tree_violations(copy) == []
    target = copy / module
    target.write_text(target.read_text(encoding="utf-8") + "\n\n" + planted, encoding="utf-8")
    found = tree_violations(copy)
    if flagged:
        assert found and all(v.startswith(module) for v in found), found
    else:
        assert found == []


def test_every_capability_is_read_by_shared_code() -> None:
    """``Capabilities`` holds no field that nothing reads (``x.capabilities.<field>``)."""
    read = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "capabilities"):  # fmt: skip
                read.add(node.attr)
    declared = {f.name for f in dataclasses.fields(Capabilities)}
    assert declared - read == set(), f"capabilities declared but never read: {sorted(declared - read)}"


def test_each_capability_is_documented() -> None:
    source = (SRC / "backends" / "capabilities.py").read_text(encoding="utf-8")
    lines = source.splitlines()
    for field in dataclasses.fields(Capabilities):
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{field.name}:"))
        assert lines[at - 1].strip().startswith("#:"), f"capability {field.name} has no #: comment"


def test_dialect_sql_is_spelled_by_the_backend_module_even_when_never_imported() -> None:
    """Compiling for a bare SQLAlchemy dialect loads that dialect's backend module (its
    ``@compiles`` renderings) on first use, whatever was imported before."""
    script = textwrap.dedent(
        """
        import sys
        import sqlalchemy as sa
        from sqlalchemy.dialects import postgresql, sqlite
        from bulkframe.filters import to_sql
        from bulkframe.rules.expressions import to_sql as expr_sql

        t = sa.table("t", sa.column("s", sa.Text))
        assert not any(m.startswith("bulkframe.backends.") and m.endswith(("sqlite", "postgres"))
                       for m in sys.modules), sorted(sys.modules)
        print(to_sql({"s": {"$like": "a%"}}, t).compile(dialect=sqlite.dialect()))
        print(expr_sql("s.title()", t.c).compile(dialect=postgresql.dialect()))
        print(to_sql({"s": {"$like": "a%"}}, t).compile(dialect=postgresql.dialect()))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["t.s GLOB ?", "initcap(t.s)", "t.s LIKE %(s_1)s::VARCHAR ESCAPE '\\'"]


_MARKER_TESTS = """
import pytest

from bulkframe.errors import NotSupportedError


@pytest.mark.not_yet("sqlite", raises=NotSupportedError, reason="raises as expected")
def test_expected(url):
    if url.startswith("sqlite"):
        raise NotSupportedError("no")


@pytest.mark.not_yet("sqlite", raises=NotSupportedError, reason="passes unexpectedly")
def test_passes(url):
    pass


@pytest.mark.not_yet("sqlite", raises=NotSupportedError, reason="another error")
def test_other_error(url):
    raise ValueError("not the one named")
"""


def test_not_yet_marker_is_a_strict_xfail_naming_the_exception(tmp_path: Path) -> None:
    for name in ("conftest.py", "suite_backends.py"):
        shutil.copy(TESTS / name, tmp_path / name)
    (tmp_path / "test_marker.py").write_text(_MARKER_TESTS, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "sqlite", "-rA",
         "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    outcome = {
        line.split()[1].split("::")[-1]: line.split()[0]
        for line in run.stdout.splitlines()
        if line.startswith(("PASSED", "FAILED", "XFAIL", "XPASS", "ERROR"))
    }
    assert outcome == {
        "test_expected[sqlite]": "XFAIL",
        "test_passes[sqlite]": "FAILED",  # [XPASS(strict)]
        "test_other_error[sqlite]": "FAILED",
    }, run.stdout


def test_not_yet_marker_refuses_unknown_backends(tmp_path: Path) -> None:
    for name in ("conftest.py", "suite_backends.py"):
        shutil.copy(TESTS / name, tmp_path / name)
    (tmp_path / "test_marker.py").write_text(
        "import pytest\n\n@pytest.mark.not_yet('sqlight', raises=ValueError, reason='typo')\n"
        "def test_x(url):\n    pass\n",
        encoding="utf-8",
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode != 0 and "not_yet needs backend ids" in run.stdout + run.stderr
