"""The databases the suite runs on: one :class:`SuiteBackend` entry each.

Kept out of ``conftest.py`` so test modules can import it by a unique name (``conftest``
is ambiguous: ``tests/nodes`` has one too).  Adding a backend to the suite is adding one
entry to :data:`TEST_BACKENDS`.
"""

from __future__ import annotations

import contextlib
import functools
import os
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


#: the MySQL/MariaDB database the suite writes to (tables get unique names)
MYSQL_URL = os.environ.get("BULKFRAME_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")


def _mysql_connect(url: str) -> Any:
    """A PyMySQL connection (not bulkframe's driver, mysqlclient) with ``"`` quoting
    identifiers, as in the SQL the tests write for every database."""
    import pymysql

    u = sa.make_url(url)
    return pymysql.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 3306,
        user=u.username or "root",
        password=u.password or "",
        database=u.database,
        charset="utf8mb4",
        autocommit=True,
        connect_timeout=3,
        init_command="SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES'), time_zone = '+00:00'",
    )


def _mysql_query(url: str, statement: str, params: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
    with contextlib.closing(_mysql_connect(url)) as conn, conn.cursor() as cur:
        cur.execute(statement, params or None)
        return list(cur.fetchall()) if cur.description else []


@functools.cache
def _mysql_down(url: str) -> str | None:
    """Why no MySQL/MariaDB server answers at ``url`` (``None`` when one does)."""
    try:
        _mysql_query(url, "SELECT 1")
    except Exception as exc:  # any failure means "no server here"
        return f"no MySQL/MariaDB server at {url} (BULKFRAME_TEST_MYSQL_URL): {exc}"
    return None


def _mysql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    reason = _mysql_down(MYSQL_URL)
    if reason is not None:
        print(reason)  # the skip reason shows in -ra as well
        pytest.skip(reason)
    return MYSQL_URL


def _mysql_upper_trigger(table: str) -> tuple[list[str], list[str]]:
    return (
        [f'CREATE TRIGGER "{table}_t" BEFORE INSERT ON "{table}" FOR EACH ROW SET NEW.name = UPPER(NEW.name)'],
        [],
    )


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
    SuiteBackend(
        id="mysql",
        schemes=("mysql", "mariadb"),
        url=_mysql_url,
        query=_mysql_query,
        # other sessions' TEMPORARY tables are invisible in MySQL/MariaDB: this finds
        # staging tables that were created as ordinary tables (never by bulkframe)
        staging_tables_sql=(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
            "AND table_name LIKE '\\_bf\\_stage\\_%'"
        ),
        upper_trigger=_mysql_upper_trigger,
        engine_url=lambda request: (
            sa.make_url(_mysql_url(request, Path()))
            .set(drivername="mysql+pymysql")
            .render_as_string(hide_password=False)
        ),
        code_point_text=sa.Text(collation="utf8mb4_bin"),
        marks=(pytest.mark.mysql,),
    ),
)
BACKEND_IDS = tuple(b.id for b in TEST_BACKENDS)


def independent_query(url: str, statement: str, params: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
    """Run ``statement`` through a client that is not bulkframe's (psycopg for PostgreSQL, PyMySQL
    for MySQL, the stdlib ``sqlite3`` for SQLite) and return its rows exactly as that client
    decodes them.  Round-trip tests read back through this, so bulkframe's own reader cannot
    hide what was stored.  Placeholders: ``%s`` on PostgreSQL and MySQL, ``?`` on SQLite."""
    scheme = scheme_of(url)
    backend = next((b for b in TEST_BACKENDS if scheme in b.schemes), None)
    if backend is None:
        raise LookupError(f"no test backend serves {scheme!r} URLs; add one to TEST_BACKENDS")
    return backend.query(url, statement, params)
