"""Backends are found by URL scheme through the ``bulkframe.backends`` entry-point group."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bulkframe.backends import registry
from bulkframe.errors import NotSupportedError


def test_builtin_backends_are_registered_as_entry_points() -> None:
    """``BUILT_IN`` (read without package metadata) says what ``pyproject.toml`` declares."""
    from importlib.metadata import entry_points

    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"]["bulkframe.backends"]
    assert declared == registry.BUILT_IN
    installed = {ep.name: ep.value for ep in entry_points(group=registry.GROUP)}
    assert {k: installed.get(k) for k in declared} == declared
    found = registry.registered()
    assert found["sqlite"].value == "bulkframe.backends.sqlite:SQLiteBackend"


def test_a_builtin_scheme_is_found_without_package_metadata() -> None:
    """A built-in scheme resolves without importing ``importlib.metadata`` (~50 ms of the
    command line's direct load, which imports neither SQLAlchemy nor an ADBC driver);
    other schemes still come from the entry points (a fresh interpreter for each)."""

    def run(code: str) -> list[str]:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        return out.stdout.split()

    builtin = "import sys; from bulkframe.backends import registry as r; e = r.lookup('postgresql'); "
    assert run(builtin + "print(e.value, 'importlib.metadata' in sys.modules)") == [
        "bulkframe.backends.postgres:PostgresBackend",
        "False",
    ]
    other = "import sys; from bulkframe.backends import registry as r; e = r.lookup('nosuchdb'); "
    assert run(other + "print(e, 'importlib.metadata' in sys.modules)") == ["None", "True"]


def test_unknown_scheme_lists_the_registered_ones() -> None:
    with pytest.raises(NotSupportedError, match=r"'nosuchdb'; supported: .*postgresql.*sqlite"):
        registry.load_backend("nosuchdb://x")


def test_a_third_party_package_adds_a_backend(tmp_path: Path) -> None:
    """An installed distribution that declares the entry point is picked up by URL scheme,
    with no change to bulkframe (a subprocess, so the entry-point cache starts empty)."""
    (tmp_path / "bf_thirdparty.py").write_text(
        textwrap.dedent("""
        from bulkframe.backends.sqlite import SQLiteBackend

        class ThirdPartyBackend(SQLiteBackend):
            def __init__(self, url):
                super().__init__("sqlite:///" + url.split("://", 1)[1])
    """)
    )
    dist = tmp_path / "bf_thirdparty-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bf-thirdparty\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[bulkframe.backends]\nthirdparty = bf_thirdparty:ThirdPartyBackend\n"
    )
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(tmp_path)!r})
        import bulkframe as bf
        db = bf.connect("thirdparty://{tmp_path}/t.db")
        print(type(db.backend).__name__, db.bulk_create("t", [{{"a": 1}}, {{"a": 2}}]).success_count)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ThirdPartyBackend", "2"]
    import sqlite3

    with sqlite3.connect(tmp_path / "t.db") as conn:
        assert conn.execute("SELECT a FROM t ORDER BY a").fetchall() == [(1,), (2,)]


def test_a_backend_missing_a_hook_fails_when_defined() -> None:
    from bulkframe.backends.base import Backend
    from bulkframe.backends.sqlite import SQLiteBackend

    with pytest.raises(
        TypeError, match=r"backend Half does not define .*ddl_type.*reflect.*capabilities, dialect"
    ):

        class Half(Backend):
            def _connect_raw(self) -> None: ...

    class Intermediate(Backend, abstract=True):  # explicitly incomplete: allowed
        pass

    class Complete(SQLiteBackend):  # every hook inherited
        pass

    assert Complete("sqlite:///x.db").path == "x.db"
