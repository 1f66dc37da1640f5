"""One open database connection: runs SQLAlchemy Core statements and Arrow ingests.

Statements are compiled for the backend's dialect with bound parameters; identifiers are
quoted by the dialect.  Every driver error is translated once, here, by the backend.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa

if TYPE_CHECKING:
    from bulkframe.backends.base import Backend, TableRef
    from bulkframe.backends.pool import ConnectionPool

log = logging.getLogger("bulkframe.sql")


def compile_sql(stmt: sa.Executable | str, dialect: sa.Dialect) -> tuple[str, tuple[Any, ...]]:
    """Compile a Core statement to ``(sql, positional parameters)`` for ``dialect``."""
    if isinstance(stmt, str):
        return stmt, ()
    compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})  # type: ignore[attr-defined]
    params = compiled.construct_params()
    order: Sequence[str] = compiled.positiontup or []
    # the dialect's bind conversions, as SQLAlchemy applies them when it executes (SQLite:
    # Decimal → float, datetime → "YYYY-MM-DD HH:MM:SS.ffffff"; PostgreSQL: none)
    expanded = compiled._post_compile_expanded_state  # IN (…) lists, expanded
    convert = expanded.processors if expanded is not None else compiled._bind_processors
    return compiled.string, tuple(
        convert[name](params[name]) if name in convert else params[name] for name in order
    )


def interrupted(exc: BaseException) -> bool:
    """Whether a driver error is how a Ctrl-C (SIGINT) during a blocking driver call
    surfaced.  ADBC replaces Python's SIGINT handler while the main thread is inside the
    driver: the signal cancels the running statement, and the call then fails with the
    driver's own error (PostgreSQL: ``CANCELLED`` "canceling statement due to user
    request"; SQLite, which cannot cancel: the cancel's error, raised ``from
    KeyboardInterrupt``) instead of ``KeyboardInterrupt``."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, KeyboardInterrupt):
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    status = getattr(getattr(exc, "status_code", None), "name", None)
    return (
        status == "CANCELLED"
        and "user request" in str(exc)
        and threading.current_thread() is threading.main_thread()
    )


class Connection:
    """A DBAPI (ADBC) connection with bulkframe's conveniences.

    It is not thread-safe: one connection per worker.  A connection checked out of a
    :class:`~bulkframe.backends.pool.ConnectionPool` goes back to it on :meth:`close`
    (rolled back, its staging tables dropped); :meth:`discard` closes it for good.
    """

    def __init__(self, backend: Backend, raw: Any, *, pooled: Any = None, pool: ConnectionPool | None = None):
        self.backend = backend
        self.raw = raw
        self.closed = False
        #: no statement ran since the last commit/rollback (see ``Backend.begin_write``)
        self.fresh = True
        #: session-private staging tables created on this checkout (a rolled-back DROP
        #: may have kept one): dropped again, if they exist, when it goes back to the pool
        self.temp_tables: set[TableRef] = set()
        self._pooled = pooled
        self._pool = pool

    def failure(self, exc: BaseException, context: str) -> BaseException:
        """What a driver error becomes: ``KeyboardInterrupt`` if it is a Ctrl-C the
        driver turned into an error (see :func:`interrupted`; callers roll back and
        re-raise it), else the backend's translation into bulkframe's tree."""
        if interrupted(exc):
            log.info("interrupted (Ctrl-C) during %s", context[:200])
            return KeyboardInterrupt()
        return self.backend.translate_error(exc, context)

    # -- statements ------------------------------------------------------------
    def execute(
        self, stmt: sa.Executable | str, params: Sequence[Any] = (), *, options: dict[str, str] | None = None
    ) -> Any:
        """Run one statement; return the open cursor (caller fetches, then closes)."""
        sql, bound = compile_sql(stmt, self.backend.dialect)
        bound = tuple(params) or bound
        log.debug("SQL %s | %d params", sql, len(bound))
        self.fresh = False
        cur = self.raw.cursor()
        try:
            if options:
                cur.adbc_statement.set_options(**options)
            if bound:
                cur.execute(sql, parameters=bound)
            else:
                cur.execute(sql)
        except Exception as exc:
            cur.close()
            raise self.failure(exc, sql) from exc
        return cur

    def run(self, stmt: sa.Executable | str, params: Sequence[Any] = ()) -> int:
        """Run a statement that returns no rows; return its row count (-1 if unknown)."""
        cur = self.execute(stmt, params)
        try:
            count = cur.rowcount
            return -1 if count is None else int(count)
        finally:
            cur.close()

    def fetchall(self, stmt: sa.Executable | str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.execute(stmt, params)
        try:
            return list(cur.fetchall())
        except Exception as exc:  # PostgreSQL reports some errors only while rows are read
            raise self.failure(exc, "fetching rows") from exc
        finally:
            cur.close()

    def scalar(self, stmt: sa.Executable | str, params: Sequence[Any] = ()) -> Any:
        rows = self.fetchall(stmt, params)
        return rows[0][0] if rows else None

    def fetch_arrow(self, stmt: sa.Executable | str, params: Sequence[Any] = ()) -> pa.Table:
        """Run a query and return all rows as Arrow (with the backend's read options)."""
        cur = self.execute(stmt, params, options=self.backend.read_options)
        try:
            return cur.fetch_arrow_table()
        except Exception as exc:
            raise self.failure(exc, "fetching rows") from exc
        finally:
            cur.close()

    # -- bulk path ---------------------------------------------------------------
    def ingest(self, ref: TableRef, data: pa.Table | pa.RecordBatchReader, *, temporary: bool = False) -> int:
        """Append ``data`` (already in the backend's ingest types) to ``ref``; a reader
        streams through one bulk call (returns -1: the count is the caller's)."""
        if isinstance(data, pa.Table) and data.num_rows == 0:
            return 0
        self.fresh = False
        cur = self.raw.cursor()
        try:
            kwargs: dict[str, Any] = {"mode": "append"}
            if temporary:
                kwargs["temporary"] = True
            elif ref.schema is not None:
                kwargs["db_schema_name"] = ref.schema
            cur.adbc_ingest(ref.name, data, **kwargs)
        except Exception as exc:
            raise self.failure(exc, f"bulk ingest into {ref}") from exc
        finally:
            cur.close()
        return int(data.num_rows) if isinstance(data, pa.Table) else -1

    # -- transactions --------------------------------------------------------------
    def commit(self) -> None:
        try:
            self.raw.commit()
        except Exception as exc:
            raise self.failure(exc, "COMMIT") from exc
        finally:
            self.fresh = True

    def rollback(self) -> None:
        self.fresh = True
        try:
            self.raw.rollback()
        except Exception:  # the connection may be gone; nothing left to undo
            log.debug("rollback failed", exc_info=True)

    def close(self) -> None:
        """Give a pooled connection back (rolled back, leftover staging tables dropped);
        close an unpooled one.  Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._pooled is None:
            try:
                self.raw.close()
            except Exception:
                log.debug("close failed", exc_info=True)
            return
        if self._pool is not None and self._pool.closed:
            self._pooled.invalidate()  # the Database was closed meanwhile: close for good
            return
        try:
            self.raw.rollback()
            if self.temp_tables:
                for ref in sorted(self.temp_tables, key=str):
                    self.run(f"DROP TABLE IF EXISTS {self.backend.qualified(ref)}")
                self.raw.commit()
                self.temp_tables.clear()
        except Exception:
            log.debug("resetting a pooled connection failed; discarding it", exc_info=True)
            self._pooled.invalidate()
            return
        except BaseException:  # Ctrl-C while cleaning up: never hand out a half-reset connection
            self._pooled.invalidate()
            raise
        self._pooled.close()  # back to the pool (which rolls back once more)

    def discard(self) -> None:
        """Close the connection for good (a pooled one leaves the pool)."""
        if self.closed:
            return
        self.closed = True
        if self._pooled is not None:
            self._pooled.invalidate()
            return
        try:
            self.raw.close()
        except Exception:
            log.debug("close failed", exc_info=True)
