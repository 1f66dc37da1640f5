"""Where operations get their connections: the one way to hold a connection.

:class:`Sessions` pairs a backend with its connection pool.  Operations receive it (never
the :class:`~bulkframe.database.Database`) and hold connections in one of two ways:

- ``with sessions.session(write=…, retries=…, lock=…) as conn:`` for work that fits one
  block: the connection is checked out, the backend's write lock taken first when
  ``lock`` names a table, committed when the block ends (``write=True``) or rolled back
  (``write=False``, and on any exception), and given back to the pool — discarded when an
  exception left it in an unknown state (``discard_on_error``);
- :meth:`Sessions.checkout` / :meth:`Sessions.release` for a connection the executor keeps
  across batches and replaces after a lost connection (``plan.executor.ConnectionLease``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bulkframe.backends.base import Backend, TableRef
    from bulkframe.backends.connection import Connection
    from bulkframe.backends.pool import ConnectionPool


class Sessions:
    """The session factory of one database: its backend and its connection pool.

    Parameters
    ----------
    backend : Backend
        The database's backend (dialect hooks and capabilities).
    pool : ConnectionPool
        The pool connections are checked out of.
    """

    def __init__(self, backend: Backend, pool: ConnectionPool) -> None:
        self.backend = backend
        self.pool = pool

    def checkout(self, retries: int = 0) -> Connection:
        """A connection from the pool, held until :meth:`release`.

        Raises
        ------
        PoolTimeoutError
            No connection became free within the pool's timeout.
        DatabaseClosedError
            The pool was closed.
        """
        return self.pool.checkout(retries=retries)

    def release(self, conn: Connection, *, discard: bool = False) -> None:
        """Give ``conn`` back to the pool (rolled back; staging tables dropped), or close
        it for good with ``discard=True``."""
        if discard:
            conn.discard()
        else:
            conn.close()

    @contextmanager
    def session(
        self,
        *,
        write: bool = True,
        retries: int = 0,
        lock: TableRef | None = None,
        commit: bool | None = None,
        discard_on_error: bool = False,
    ) -> Iterator[Connection]:
        """One connection for the duration of a ``with`` block, in one transaction.

        Parameters
        ----------
        write : bool
            ``True``: the block writes, and its transaction commits when the block ends
            normally.  ``False``: the block only reads; its transaction is rolled back.
        retries : int
            Retries of a transient error while connecting.
        lock : TableRef, optional
            Take the backend's write lock on this table before the block runs
            (:meth:`Backend.begin_write`), so reads inside the block already hold it.
        commit : bool, optional
            Override the end of a normal exit: ``False`` leaves committing to the block
            (anything it did not commit is rolled back when the connection goes back).
        discard_on_error : bool
            Close the connection for good when the block raises (a connection interrupted
            mid-statement may be in an unknown state).

        Raises
        ------
        PoolTimeoutError
            No connection became free within the pool's timeout.
        DatabaseClosedError
            The pool was closed.
        """
        conn = self.checkout(retries)
        failed = False
        try:
            if lock is not None:
                self.backend.begin_write(conn, lock)
            yield conn
            if write if commit is None else commit:
                conn.commit()
            else:
                conn.rollback()
        except BaseException:
            failed = True
            conn.rollback()  # never raises: a connection that is gone has nothing to undo
            raise
        finally:
            self.release(conn, discard=failed and discard_on_error)
