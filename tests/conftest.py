"""Test harness: real databases only.

SQLite always runs (a file per test).  PostgreSQL comes from
``BULKFRAME_TEST_POSTGRES_URL`` (default ``postgresql://root@127.0.0.1:5432/test``);
when no server answers there, a throwaway embedded PostgreSQL (``pgserver``) is started
for the session instead of skipping, so the suite passes on a fresh machine too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import bulkframe as bf
from bulkframe.backends.registry import scheme_of

log = logging.getLogger("bulkframe.tests")

DEFAULT_PG = "postgresql://root@127.0.0.1:5432/test"


def _pg_answers(url: str) -> bool:
    import adbc_driver_postgresql.dbapi as pg

    sep = "&" if "?" in url else "?"
    try:
        with pg.connect(f"{url}{sep}connect_timeout=3") as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchall()
        return True
    except Exception as exc:  # any failure means "no server here"
        log.warning("no PostgreSQL at %s: %s", url, exc)
        return False


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("BULKFRAME_TEST_POSTGRES_URL", DEFAULT_PG)
    if _pg_answers(url):
        yield url
        return
    # platformdirs (used by pgserver) warns when XDG_RUNTIME_DIR is unset
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("xdg")))
    import pgserver  # throwaway embedded server; pip install pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def _sqlite_query(url: str, statement: str, params: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
    import sqlite3

    path = url.split("://", 1)[1]
    path = path[1:] if path.startswith("/") else path
    with contextlib.closing(sqlite3.connect(path.split("?", 1)[0])) as conn:
        return list(conn.execute(statement, params).fetchall())


def _postgres_query(url: str, statement: str, params: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(statement, params or None)
        return list(cur.fetchall()) if cur.description else []


@dataclass(frozen=True)
class SuiteBackend:
    """One database the suite runs on, and what tests need to know about it beyond
    bulkframe's own API (its capabilities).  Adding a backend to the suite is adding one
    entry to :data:`TEST_BACKENDS`."""

    #: pytest id of the backend's parameter, and the name ``not_yet`` markers use
    id: str
    #: URL schemes it serves (as bulkframe's registry reads them)
    schemes: tuple[str, ...]
    #: ``url(request, tmp_path)`` → a database for one test
    url: Callable[[pytest.FixtureRequest, Path], str]
    #: ``query(url, statement, params)`` through an independent client (not bulkframe's)
    query: Callable[..., list[tuple]]  # type: ignore[type-arg]
    #: SQL listing the names of bulkframe's staging tables (``_bf_stage_…``) the database
    #: holds, in any session where the database can tell
    staging_tables_sql: str
    #: ``upper_trigger(table)`` → (statements creating a trigger that upper-cases ``name``
    #: of every row inserted into ``table (id, name)``, statements removing what they made)
    upper_trigger: Callable[[str], tuple[list[str], list[str]]]
    #: ``engine_url(request)`` → a SQLAlchemy engine URL for a database shared by one test
    #: module (tests that compare bulkframe's SQL with Polars run through SQLAlchemy), and
    #: the text type whose ordering is by code point, as Polars orders strings
    engine_url: Callable[[pytest.FixtureRequest], str]
    code_point_text: Any
    marks: tuple[Any, ...] = ()


def _pg_upper_trigger(table: str) -> tuple[list[str], list[str]]:
    return (
        [f'CREATE FUNCTION "{table}_f"() RETURNS trigger AS $$ BEGIN NEW.name := upper(NEW.name); '
         f"RETURN NEW; END $$ LANGUAGE plpgsql",
         f'CREATE TRIGGER "{table}_t" BEFORE INSERT ON "{table}" FOR EACH ROW EXECUTE FUNCTION "{table}_f"()'],
        [f'DROP TABLE "{table}"', f'DROP FUNCTION "{table}_f"()'],
    )  # fmt: skip


def _sqlite_upper_trigger(table: str) -> tuple[list[str], list[str]]:
    return (
        [f'CREATE TRIGGER "{table}_t" AFTER INSERT ON "{table}" BEGIN '
         f'UPDATE "{table}" SET name = upper(name) WHERE id = NEW.id; END'],
        [],
    )  # fmt: skip


TEST_BACKENDS = (
    SuiteBackend(
        id="sqlite",
        schemes=("sqlite",),
        url=lambda request, tmp_path: f"sqlite:///{tmp_path / 'test.db'}",
        query=_sqlite_query,
        staging_tables_sql="SELECT name FROM sqlite_temp_master WHERE name LIKE '\\_bf\\_stage\\_%' ESCAPE '\\'",
        upper_trigger=_sqlite_upper_trigger,
        engine_url=lambda request: (
            f"sqlite:///{request.getfixturevalue('tmp_path_factory').mktemp('db') / 'm.db'}"
        ),
        code_point_text=sa.Text(),  # BINARY collation
    ),
    SuiteBackend(
        id="postgres",
        schemes=("postgresql", "postgres"),
        url=lambda request, tmp_path: str(request.getfixturevalue("pg_url")),
        query=_postgres_query,
        staging_tables_sql="SELECT relname FROM pg_class WHERE relname LIKE '\\_bf\\_stage\\_%'",
        upper_trigger=_pg_upper_trigger,
        engine_url=lambda request: (
            sa.make_url(str(request.getfixturevalue("pg_url")))
            .set(drivername="postgresql+psycopg")
            .render_as_string(hide_password=False)
        ),
        code_point_text=sa.Text(collation="C"),
        marks=(pytest.mark.postgres,),
    ),
)
BACKEND_IDS = tuple(b.id for b in TEST_BACKENDS)


@pytest.fixture(params=[pytest.param(b, id=b.id, marks=b.marks) for b in TEST_BACKENDS])
def suite_backend(request: pytest.FixtureRequest) -> SuiteBackend:
    """The backend a conformance test runs on (every test using ``url`` runs on each)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def url(suite_backend: SuiteBackend, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The conformance fixture: every test using it runs on every backend of the suite."""
    return suite_backend.url(request, tmp_path)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "not_yet(backend, *more, raises, reason): on these backends the test is a strict xfail that must "
        "raise `raises` (a feature not there yet); it passes elsewhere",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply ``@pytest.mark.not_yet("sqlite", raises=NotSupportedError, reason=…)``: on the
    named backends the test becomes a strict xfail that must fail with exactly that
    exception (a pass, or any other error, fails the run)."""
    for item in items:
        for mark in item.iter_markers("not_yet"):
            unknown = set(mark.args) - set(BACKEND_IDS)
            raises, reason = mark.kwargs.get("raises"), mark.kwargs.get("reason")
            if not mark.args or unknown or raises is None or not reason:
                raise pytest.UsageError(
                    f"{item.nodeid}: not_yet needs backend ids from {BACKEND_IDS} (unknown: {sorted(unknown)}), "
                    "raises= the expected exception and reason="
                )
            callspec = getattr(item, "callspec", None)
            backend = callspec.params.get("suite_backend") if callspec is not None else None
            if backend is None:
                raise pytest.UsageError(
                    f"{item.nodeid}: not_yet applies to tests that run per backend (url/db)"
                )
            if backend.id in mark.args:
                item.add_marker(
                    pytest.mark.xfail(raises=raises, strict=True, reason=f"not yet on {backend.id}: {reason}")
                )


@pytest.fixture
def db(url: str) -> Iterator[bf.Database]:
    database = bf.connect(url)
    yield database
    database.close()


@pytest.fixture
def table(db: bf.Database) -> Iterator[str]:
    """A unique table name, dropped after the test."""
    name = f"bf_test_{uuid.uuid4().hex[:10]}"
    yield name
    db.close()
    with bf.connect(db.url) as cleanup:
        cleanup.drop_table(name)


@pytest.fixture
def sql(db: bf.Database):  # type: ignore[no-untyped-def]
    """Run raw SQL on a fresh connection and commit (test set-up and inspection)."""

    def run(statement: str, params: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
        conn = db.backend.connect()
        try:
            cur = conn.execute(statement, params)
            try:
                rows = list(cur.fetchall()) if cur.description else []
            finally:
                cur.close()
            conn.commit()
            return rows
        finally:
            conn.close()

    return run


def independent_query(url: str, statement: str, params: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
    """Run ``statement`` through a client that is not bulkframe's (psycopg for PostgreSQL,
    the stdlib ``sqlite3`` for SQLite) and return its rows exactly as that client decodes
    them.  Round-trip tests read back through this, so bulkframe's own reader cannot hide
    what was stored.  Placeholders: ``%s`` on PostgreSQL, ``?`` on SQLite."""
    scheme = scheme_of(url)
    backend = next((b for b in TEST_BACKENDS if scheme in b.schemes), None)
    if backend is None:
        raise LookupError(f"no test backend serves {scheme!r} URLs; add one to TEST_BACKENDS")
    return backend.query(url, statement, params)


@pytest.fixture
def peek(url: str):  # type: ignore[no-untyped-def]
    """``peek(sql, params=())`` → rows read through an independent client (see
    :func:`independent_query`)."""

    def run(statement: str, params: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
        return independent_query(url, statement, params)

    return run
