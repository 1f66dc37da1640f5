"""``connect()`` and :class:`Database`: the library API scripts and notebooks call."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from bulkframe.backends.base import Backend, TableRef
from bulkframe.backends.connection import Connection
from bulkframe.backends.registry import DEFAULT_URL, load_backend
from bulkframe.errors import SchemaError, unknown_option
from bulkframe.result import BulkResult


def connect(url: str | None = None) -> Database:
    """Open a database by URL.

    Parameters
    ----------
    url : str, optional
        ``sqlite:///path/file.db`` (the default is ``sqlite:///bulkframe.db`` in the
        current directory) or ``postgresql://user@host:5432/db``.

    Examples
    --------
    >>> import bulkframe as bf
    >>> db = bf.connect("sqlite:///example.db")           # doctest: +SKIP
    >>> db.bulk_create("products", [{"id": 1, "name": "a"}]).success_count  # doctest: +SKIP
    1
    """
    return Database(url or DEFAULT_URL)


def _table_ref(table: Any, schema: str | None) -> TableRef:
    name = getattr(table, "__tablename__", table)
    if not isinstance(name, str) or not name:
        raise SchemaError(f"table must be a non-empty table name or a model class, got {table!r}")
    return TableRef(name, schema or getattr(table, "__schema__", None))


class Database:
    """A database that bulkframe writes to.

    It keeps one connection open between calls (a notebook's cells reuse it); use it as
    a context manager or call :meth:`close` to release it.  Not shared across threads.
    """

    def __init__(self, url: str):
        self.url = url
        self.backend: Backend = load_backend(url)
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    # -- connections ---------------------------------------------------------------
    def connection(self) -> Connection:
        """The cached connection (opened on first use)."""
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this Database is in use by another call; use one Database per thread")
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self.backend.connect()
            return self._conn
        except BaseException:
            self._lock.release()
            raise

    def release(self, conn: Connection) -> None:
        self._lock.release()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self.url!r})"

    # -- operations ----------------------------------------------------------------
    def bulk_create(
        self,
        table: Any,
        data: Any,
        /,
        *,
        batch_size: int = 10_000,
        conflict_resolution: str = "error",
        conflict_fields: Sequence[str] | None = None,
        primary_key: Sequence[str] | str | None = None,
        schema: str | None = None,
        progress_callback: bool | Callable[..., Any] | None = None,
        progress_interval: int | None = None,
        progress_format: str = "both",
        **unknown: Any,
    ) -> BulkResult:
        """Insert ``data`` into ``table`` in one transaction, at COPY speed.

        Parameters
        ----------
        table : str or model class
            Target table (taken literally; created from the data when missing).
        data
            A list or iterator of dicts, a Polars DataFrame/LazyFrame, a pandas
            DataFrame, a PyArrow Table/RecordBatch/RecordBatchReader, an object with
            ``__arrow_c_stream__``, or a path to a Parquet/CSV file.
        batch_size : int
            Rows per batch sent to the database.
        conflict_resolution : {"error", "skip", "update"}
            ``"error"``: a duplicate key raises and nothing of the call is kept.
            ``"skip"``: rows whose ``conflict_fields`` exist are skipped and counted.
            ``"update"``: such rows update the existing ones.
        conflict_fields : list of str, optional
            Key columns for skip/update; default: the table's primary key.
        primary_key : str or list of str, optional
            Primary key for a table bulkframe creates.
        schema : str, optional
            Database schema of the table (PostgreSQL).
        progress_callback : bool or callable
            ``True`` shows a progress bar; a callable receives a ``Progress``.
        progress_interval : int, optional
            Rows between callback calls (default: every batch).
        progress_format : {"percentage", "count", "both"}
            What the bar shows.

        Returns
        -------
        BulkResult
        """
        if unknown:
            raise unknown_option(unknown, _CREATE_OPTIONS, where="bulk_create")
        from bulkframe.ops.create import bulk_create

        return bulk_create(
            self, _table_ref(table, schema), data,
            batch_size=batch_size, conflict_resolution=conflict_resolution,
            conflict_fields=conflict_fields, primary_key=primary_key,
            progress_callback=progress_callback, progress_interval=progress_interval,
            progress_format=progress_format,
        )

    def read(self, table: Any, /, *, columns: Sequence[str] | None = None, schema: str | None = None,
             order_by: Sequence[str] | str | None = None) -> Any:
        """Read a table back as a Polars DataFrame with bulkframe's logical types."""
        from bulkframe.ops.read import read_table

        return read_table(self, _table_ref(table, schema), columns=columns, order_by=order_by)

    def columns(self, table: Any, /, *, schema: str | None = None) -> list[Any]:
        """The table's columns as bulkframe sees them (``None`` if it does not exist)."""
        conn = self.connection()
        try:
            cols = self.backend.reflect(conn, _table_ref(table, schema))
            conn.commit()
            return cols  # type: ignore[return-value]
        finally:
            self.release(conn)

    def drop_table(self, table: Any, /, *, schema: str | None = None) -> None:
        """``DROP TABLE IF EXISTS`` (identifier quoted)."""
        conn = self.connection()
        try:
            self.backend.drop_table(conn, _table_ref(table, schema))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            self.release(conn)


_CREATE_OPTIONS = (
    "batch_size", "conflict_resolution", "conflict_fields", "primary_key", "schema",
    "progress_callback", "progress_interval", "progress_format",
)
