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
    found = registry.registered()
    assert {"sqlite", "postgresql", "postgres"} <= set(found)
    assert found["sqlite"].value == "bulkframe.backends.sqlite:SQLiteBackend"


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
