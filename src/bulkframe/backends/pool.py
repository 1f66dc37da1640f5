"""The bounded connection pool behind one :class:`~bulkframe.database.Database`.

SQLAlchemy's :class:`~sqlalchemy.pool.QueuePool` does the pooling (thread-safe, bounded
by ``pool_size + max_overflow``, waits up to ``pool_timeout`` seconds for a free
connection); its ``creator`` is the backend's raw ADBC connect.  On checkout a connection
that was used before is pinged (``SELECT 1``): a dead one (server restarted,
``pg_terminate_backend``) is replaced before the caller sees it.  On return the
connection's open transaction is rolled back and staging tables it still holds are
dropped (:meth:`Connection.close`), so nothing leaks from one checkout to the next.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy.exc as sa_exc
from sqlalchemy import event
from sqlalchemy.pool import QueuePool

from bulkframe.backends.connection import Connection
from bulkframe.errors import DatabaseClosedError, InvalidOptionValueError, PoolTimeoutError

if TYPE_CHECKING:
    from bulkframe.backends.base import Backend

log = logging.getLogger("bulkframe.pool")

#: Defaults of :func:`bulkframe.connect` (the same as SQLAlchemy's engines).
POOL_SIZE = 5
MAX_OVERFLOW = 10
POOL_TIMEOUT = 30.0

_NEW = "bulkframe_new"


def check_pool_options(pool_size: Any, max_overflow: Any, pool_timeout: Any) -> None:
    """Refuse pool options that cannot be honoured, naming the option."""
    if not isinstance(pool_size, int) or isinstance(pool_size, bool) or pool_size < 1:
        raise InvalidOptionValueError(f"pool_size must be a positive int, got {pool_size!r}")
    if not isinstance(max_overflow, int) or isinstance(max_overflow, bool) or max_overflow < 0:
        raise InvalidOptionValueError(f"max_overflow must be a non-negative int, got {max_overflow!r}")
    if (
        not isinstance(pool_timeout, (int, float))
        or isinstance(pool_timeout, bool)
        or not pool_timeout > 0
        or pool_timeout == float("inf")
    ):
        raise InvalidOptionValueError(
            f"pool_timeout must be a positive number of seconds, got {pool_timeout!r}"
        )


class ConnectionPool:
    """At most ``size + max_overflow`` open connections, shared by threads."""

    def __init__(
        self,
        backend: Backend,
        *,
        size: int = POOL_SIZE,
        max_overflow: int = MAX_OVERFLOW,
        timeout: float = POOL_TIMEOUT,
    ):
        check_pool_options(size, max_overflow, timeout)
        self.backend = backend
        self.size = size
        self.max_overflow = max_overflow
        self.timeout = float(timeout)
        self.closed = False
        self._lock = threading.Lock()
        self._pool = QueuePool(
            backend._connect_raw,
            pool_size=size,
            max_overflow=max_overflow,
            timeout=self.timeout,
            reset_on_return="rollback",
        )
        self._open = 0  # DBAPI connections open now (the pool counts slots, not connections)
        event.listen(self._pool, "connect", self._on_connect)
        event.listen(self._pool, "close", self._on_close)
        event.listen(self._pool, "checkout", self._on_checkout)

    @property
    def capacity(self) -> int:
        """Most connections open at once."""
        return self.size + self.max_overflow

    # -- health check ------------------------------------------------------------------
    def _on_connect(self, dbapi_conn: Any, record: Any) -> None:
        record.info[_NEW] = True
        with self._lock:
            self._open += 1

    def _on_close(self, dbapi_conn: Any, record: Any) -> None:
        with self._lock:
            self._open -= 1

    def _on_checkout(self, dbapi_conn: Any, record: Any, proxy: Any) -> None:
        if record.info.pop(_NEW, False):
            return  # just opened: nothing to check
        try:
            cur = dbapi_conn.cursor()
            try:
                cur.execute("SELECT 1")
                cur.fetchall()
            finally:
                cur.close()
            dbapi_conn.rollback()  # the ping's transaction: hand out a clean connection
        except Exception as exc:
            log.info(
                "pooled connection is dead (%s); replacing it", str(exc).splitlines()[0] if str(exc) else exc
            )
            # the pool invalidates this connection and opens a new one in its place
            raise sa_exc.DisconnectionError(str(exc)) from exc

    # -- checkout ------------------------------------------------------------------------
    def checkout(self, retries: int = 0) -> Connection:
        """A connection for one caller; a transient connect failure is retried ``retries``
        times.  Waits up to ``timeout`` seconds when every connection is in use."""
        for attempt in range(retries + 1):
            if self.closed:
                raise DatabaseClosedError(
                    "this Database was closed (db.close()); open a new one with bulkframe.connect(url)"
                )
            try:
                fairy = self._pool.connect()
                break
            except sa_exc.TimeoutError:
                raise PoolTimeoutError(
                    f"no free database connection within pool_timeout={self.timeout:g}s: all "
                    f"{self.capacity} connections of this Database (pool_size={self.size}, "
                    f"max_overflow={self.max_overflow}) are in use. Raise them with "
                    "bulkframe.connect(url, pool_size=..., max_overflow=..., pool_timeout=...), or run "
                    "fewer calls at once"
                ) from None
            except Exception as exc:
                error = self.backend.translate_error(exc, "connect")
                if not error.transient or attempt == retries:
                    raise error from exc
                time.sleep(0.1 * 2**attempt)
        return Connection(self.backend, fairy.dbapi_connection, pooled=fairy, pool=self)

    def status(self) -> dict[str, int]:
        """``size``, ``max_overflow``, ``checked_in`` (open and idle), ``checked_out`` (in use)."""
        with self._lock:
            out = self._pool.checkedout()
            return {
                "size": self.size,
                "max_overflow": self.max_overflow,
                "checked_in": max(self._open - out, 0),
                "checked_out": out,
            }

    def close(self) -> None:
        """Close the idle connections and refuse new checkouts; connections still checked
        out are closed when they come back."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self._pool.dispose()
