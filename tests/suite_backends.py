"""The databases the suite runs on: one :class:`SuiteBackend` entry each.

Kept out of ``conftest.py`` so test modules can import it by a unique name (``conftest``
is ambiguous: ``tests/nodes`` has one too).  Adding a backend to the suite is adding one
entry to :data:`TEST_BACKENDS`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bulkframe.backends.registry import scheme_of


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


def _duckdb_query(url: str, statement: str, params: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
    """Through the ``duckdb`` module.  In this process it shares the database instance that
    bulkframe's open connections hold (one instance per file per process; a second process
    could not open the file while they are open), so it reads committed data as any other
    connection does, without a second instance of the file."""
    import duckdb

    path = url.split("://", 1)[1]
    path = path[1:] if path.startswith("/") else path
    with contextlib.closing(duckdb.connect(path)) as conn:
        result = conn.execute(statement, list(params) if params else None)
        return list(result.fetchall()) if conn.description else []


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
    #: type names of the suite's hand-written ``CREATE TABLE`` statements (PostgreSQL's) that
    #: this database spells differently, replaced as whole words by the ``sql`` fixture
    type_names: tuple[tuple[str, str], ...] = ()

    def spell(self, statement: str) -> str:
        """``statement`` with :attr:`type_names` replaced."""
        for word, spelled in self.type_names:
            statement = re.sub(rf"\b{word}\b", spelled, statement)
        return statement


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


def _no_triggers(table: str) -> tuple[list[str], list[str]]:
    from bulkframe.errors import NotSupportedError

    raise NotSupportedError("DuckDB has no triggers")


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
    SuiteBackend(
        id="duckdb",
        schemes=("duckdb",),
        url=lambda request, tmp_path: f"duckdb:///{tmp_path / 'test.duckdb'}",
        query=_duckdb_query,
        staging_tables_sql=(
            "SELECT table_name FROM duckdb_tables() WHERE temporary AND table_name LIKE '\\_bf\\_stage\\_%' ESCAPE '\\'"
        ),
        upper_trigger=_no_triggers,
        engine_url=lambda request: (
            f"duckdb:///{request.getfixturevalue('tmp_path_factory').mktemp('db') / 'm.duckdb'}"
        ),
        code_point_text=sa.Text(),  # DuckDB orders VARCHAR by byte, i.e. by code point
        type_names=(("jsonb", "json"),),
    ),
)
BACKEND_IDS = tuple(b.id for b in TEST_BACKENDS)


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
