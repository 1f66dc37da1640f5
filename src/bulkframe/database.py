"""``connect()`` and :class:`Database`: the library API scripts and notebooks call."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bulkframe.backends.base import Backend, ForeignKey, TableRef
from bulkframe.backends.connection import Connection
from bulkframe.backends.pool import MAX_OVERFLOW, POOL_SIZE, POOL_TIMEOUT, ConnectionPool, check_pool_options
from bulkframe.backends.registry import DEFAULT_URL, load_backend
from bulkframe.errors import InvalidOptionValueError, SchemaError, unknown_option
from bulkframe.result import BulkResult
from bulkframe.types import Column


def connect(
    url: str | None = None,
    *,
    pool_size: int = POOL_SIZE,
    max_overflow: int = MAX_OVERFLOW,
    pool_timeout: float = POOL_TIMEOUT,
    **unknown: Any,
) -> Database:
    """Open a database by URL.

    Parameters
    ----------
    url : str, optional
        ``sqlite:///path/file.db`` (the default is ``sqlite:///bulkframe.db`` in the
        current directory) or ``postgresql://user@host:5432/db``.
    pool_size : int
        Connections the pool keeps open for reuse (default 5).
    max_overflow : int
        Extra connections opened when all ``pool_size`` are in use, closed again when
        they come back (default 10).  At most ``pool_size + max_overflow`` connections
        are open at once.
    pool_timeout : float
        Seconds a call waits for a free connection before ``PoolTimeoutError`` (default 30).

    The returned :class:`Database` may be shared by threads: each call checks a
    connection out of the pool for its duration.

    Examples
    --------
    >>> import bulkframe as bf
    >>> db = bf.connect("sqlite:///example.db")           # doctest: +SKIP
    >>> db.bulk_create("products", [{"id": 1, "name": "a"}]).success_count  # doctest: +SKIP
    1
    """
    if unknown:
        raise unknown_option(unknown, ("url", "pool_size", "max_overflow", "pool_timeout"), where="connect")
    return Database(url or DEFAULT_URL, pool_size=pool_size, max_overflow=max_overflow,
                    pool_timeout=pool_timeout)


def _table_ref(table: Any, schema: str | None) -> TableRef:
    name = getattr(table, "__tablename__", table)
    if not isinstance(name, str) or not name:
        raise SchemaError(f"table must be a non-empty table name or a model class, got {table!r}")
    return TableRef(name, schema or getattr(table, "__schema__", None))


class Database:
    """A database that bulkframe writes to, with a bounded pool of connections.

    Thread-safe: one ``Database`` per process serves every thread (web apps, thread
    pools, notebooks with background jobs); each call checks a connection out of the pool
    for its duration and returns it afterwards (rolled back, staging tables dropped), so
    connections are reused between calls.  ``pool_size``, ``max_overflow`` and
    ``pool_timeout`` are set by :func:`connect`.  Use it as a context manager or call
    :meth:`close` when done; a closed ``Database`` refuses further calls.
    """

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW,
                 pool_timeout: float = POOL_TIMEOUT):
        check_pool_options(pool_size, max_overflow, pool_timeout)
        self.url = url
        self.backend: Backend = load_backend(url)
        self.pool = ConnectionPool(self.backend, size=pool_size, max_overflow=max_overflow, timeout=pool_timeout)

    # -- connections ---------------------------------------------------------------
    def connection(self, retries: int = 0) -> Connection:
        """Check a connection out of the pool (``retries`` for transient connect errors);
        give it back with :meth:`release`.  Waits up to ``pool_timeout`` seconds for a free
        one (then ``PoolTimeoutError``); a pooled connection that died is replaced."""
        return self.pool.checkout(retries=retries)

    def release(self, conn: Connection, *, discard: bool = False) -> None:
        """Give ``conn`` back to the pool (rolled back; staging tables dropped), or close
        it for good with ``discard=True``."""
        if discard:
            conn.discard()
        else:
            conn.close()

    def adopt(self, conn: Connection) -> None:
        """Same as :meth:`release` (``conn`` may be a reconnected replacement)."""
        self.release(conn)

    def pool_status(self) -> dict[str, int]:
        """The pool's ``size``, ``max_overflow``, ``checked_in`` (idle) and ``checked_out``
        (in use) connection counts."""
        return self.pool.status()

    @property
    def closed(self) -> bool:
        return self.pool.closed

    def close(self) -> None:
        """Close the pool: idle connections now, connections in use when their call ends.
        Later calls raise ``DatabaseClosedError``.  Idempotent."""
        self.pool.close()

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
        validate_data: bool = True,
        skip_validation: bool = False,
        validation_rules: Mapping[str, Mapping[str, Any]] | None = None,
        transformation_rules: Mapping[str, str] | None = None,
        error_strategy: str = "stop",
        max_errors: int | None = None,
        retry_failed_records: bool = False,
        max_retries: int | None = None,
        retry_delay: float | None = None,
        retry_backoff: str | None = None,
        failed_records_file: str | None = None,
        failed_records_callback: Callable[[Any], Any] | None = None,
        error_log_level: str | int = "warning",
        parallel_batches: int | None = None,
        max_workers: int | None = None,
        connection_pool_size: int | None = None,
        load_balancing: str | None = None,
        resumable: bool = False,
        checkpoint_file: str | None = None,
        checkpoint_interval: int | None = None,
        auto_cleanup: bool = True,
        cleanup_on_failure: bool = True,
        cleanup_temp_files: bool = True,
        cleanup_connections: bool = False,
        migration_mode: bool = False,
        preserve_ids: bool | None = None,
        disable_triggers: bool = False,
        verify_migration: bool | None = None,
        verification_sample: int = 1000,
        verification_fields: Sequence[str] | None = None,
        collect_metrics: bool = False,
        metrics_file: str | None = None,
        metrics_interval: int | None = None,
        monitor_memory: bool = False,
        monitor_cpu: bool = False,
        monitor_disk_io: bool = False,
        monitor_network: bool = False,
        track_execution_time: bool = False,
        track_memory_usage: bool = False,
        track_io_operations: bool = False,
        track_batch_performance: bool = False,
        performance_report: bool = False,
        report_format: str = "json",
        report_file: str | None = None,
        progress_callback: bool | Callable[..., Any] | None = None,
        progress_interval: int | None = None,
        progress_format: str = "both",
        **unknown: Any,
    ) -> BulkResult:
        """Insert ``data`` into ``table`` at COPY speed.

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
            ``"error"``: a duplicate key raises (with ``error_strategy="stop"`` nothing of
            the call is kept). ``"skip"``: rows whose ``conflict_fields`` exist are skipped
            and counted. ``"update"``: such rows update the existing ones.
        conflict_fields : list of str, optional
            Key columns for skip/update; default: the table's primary key.
        primary_key : str or list of str, optional
            Primary key for a table bulkframe creates.
        schema : str, optional
            Database schema of the table (PostgreSQL).
        validate_data, skip_validation : bool
            Apply ``validation_rules`` and the table's own constraints (NOT NULL,
            ``varchar(n)``) before sending (default). ``skip_validation=True`` (or
            ``validate_data=False``) skips them; type casting always happens.
        validation_rules : dict, optional
            ``{"price": {"min": 0.01, "max": 10000}, ...}``; see docs/rules.md.
        transformation_rules : dict, optional
            ``{"price": "price * 1.1", "category": "category.lower()"}``, applied before
            validation.
        error_strategy : {"stop", "continue", "retry_batch"}
            ``"stop"``: one transaction; any rejected row raises ``ValidationError`` and
            nothing is written. ``"continue"``: batches commit on their own, rejected rows
            are reported, batches the database refuses are split to isolate the bad rows.
            ``"retry_batch"``: like continue, and transient errors are retried.
        max_errors : int, optional
            Stop (``SafetyLimitError``) once more rows than this were rejected.
        retry_failed_records : bool
            With ``error_strategy="continue"``: batches that fail with a transient error
            are retried (that is ``"retry_batch"``); data errors are never retried.
            Refused with ``"stop"``.
        max_retries, retry_delay, retry_backoff
            Retry policy for transient errors under ``"retry_batch"`` (defaults 3, 1.0 s,
            ``"exponential"``; also ``"linear"`` or ``"constant"``). Refused with another
            strategy, where nothing is retried.
        failed_records_file : str, optional
            Write rejected rows and reasons to ``.jsonl``, ``.json``, ``.csv`` or ``.parquet``.
        failed_records_callback : callable, optional
            Called once with the rejected rows (a Polars DataFrame) when there are any.
        error_log_level : str or int
            Level at which rejections are logged (default ``"warning"``).
        parallel_batches, max_workers : int, optional
            Write up to ``min(parallel_batches, max_workers)`` batches concurrently, each
            on its own connection (PostgreSQL; refused on SQLite, which has one writer).
            Batches then commit on their own (see ``error_strategy``).
        connection_pool_size : int, optional
            Most connections the call holds at once, all taken from the Database's pool:
            at least the number of writers, at most the pool's ``pool_size +
            max_overflow`` (see :func:`connect`); otherwise refused.
        load_balancing : {"round_robin"}, optional
            Batches go to the next free writer in input order.
        resumable, checkpoint_file, checkpoint_interval
            Record each committed batch in a ledger table in the target database, in the
            batch's own transaction, mirrored to ``checkpoint_file`` every
            ``checkpoint_interval`` rows; rerunning the same call resumes after the last
            committed batch (input fingerprints are checked).
        auto_cleanup : bool
            After success, remove the ledger rows and the checkpoint file.
        cleanup_on_failure, cleanup_temp_files : bool
            Always on: staging tables are dropped or rolled back; no temp files are written.
        cleanup_connections : bool
            Close the call's connection after the call (default: return it to the
            Database's pool for the next call).
        migration_mode : bool
            A data migration: ``preserve_ids`` and ``verify_migration`` default to True.
        preserve_ids : bool, optional
            ``True``/``None``: ids in the input are inserted as given and the identity
            sequence is moved past them. ``False``: identity key columns are dropped from
            the input and the database assigns new ids.
        disable_triggers : bool
            Turn the table's user triggers off while bulkframe writes (PostgreSQL:
            ``ALTER TABLE … DISABLE TRIGGER USER`` inside each write transaction, which
            locks the table until it commits; needs ownership). Refused on SQLite.
        verify_migration, verification_sample, verification_fields
            After the load, read back a uniform sample of ``verification_sample`` written
            rows by key and compare ``verification_fields`` (default: all); a missing or
            different row raises ``VerificationError`` (the load stays committed; the
            error's ``.result.verification`` lists the differences).
        collect_metrics, metrics_file, metrics_interval
            Per-batch metrics (rows, seconds, retries, bytes) and totals in
            ``result.metrics``, written as JSON to ``metrics_file``; a snapshot every
            ``metrics_interval`` rows.
        monitor_memory, monitor_cpu, monitor_disk_io, monitor_network
            Add peak RSS, CPU seconds, process disk bytes, host network bytes (the last
            two need psutil).
        track_execution_time, track_memory_usage, track_io_operations, track_batch_performance
            Aliases: timings, ``monitor_memory``, disk and network, per-batch records.
        performance_report, report_format, report_file
            Write the same summary as JSON (``report_format="json"``) to ``report_file``.
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
        if retry_failed_records:
            if error_strategy == "stop":
                raise InvalidOptionValueError(
                    "retry_failed_records=True needs error_strategy='continue' or 'retry_batch': with "
                    "'stop' the first failure ends the call")
            error_strategy = "retry_batch"
        from bulkframe.ops.create import bulk_create

        return bulk_create(
            self, _table_ref(table, schema), data,
            batch_size=batch_size, conflict_resolution=conflict_resolution,
            conflict_fields=conflict_fields, primary_key=primary_key,
            rules=rule_options(validate_data, skip_validation, validation_rules, transformation_rules),
            policy=error_policy(error_strategy, max_errors, max_retries, retry_delay, retry_backoff,
                                failed_records_file, failed_records_callback, error_log_level),
            run=run_options(
                parallel_batches=parallel_batches, max_workers=max_workers,
                connection_pool_size=connection_pool_size, load_balancing=load_balancing,
                resumable=resumable, checkpoint_file=checkpoint_file,
                checkpoint_interval=checkpoint_interval, auto_cleanup=auto_cleanup,
                cleanup_on_failure=cleanup_on_failure, cleanup_temp_files=cleanup_temp_files,
                cleanup_connections=cleanup_connections,
            ),
            migration=migration_options(
                migration_mode=migration_mode, preserve_ids=preserve_ids, verify_migration=verify_migration,
                verification_sample=verification_sample, verification_fields=verification_fields,
                disable_triggers=disable_triggers,
            ),
            monitoring=monitoring_options(
                collect_metrics=collect_metrics, metrics_file=metrics_file, metrics_interval=metrics_interval,
                monitor_memory=monitor_memory, monitor_cpu=monitor_cpu, monitor_disk_io=monitor_disk_io,
                monitor_network=monitor_network, track_execution_time=track_execution_time,
                track_memory_usage=track_memory_usage, track_io_operations=track_io_operations,
                track_batch_performance=track_batch_performance, performance_report=performance_report,
                report_format=report_format, report_file=report_file,
            ),
            progress_callback=progress_callback, progress_interval=progress_interval,
            progress_format=progress_format,
        )

    def verify(
        self,
        table: Any,
        data: Any,
        /,
        *,
        key: Sequence[str] | None = None,
        fields: Sequence[str] | None = None,
        sample: int | None = None,
        schema: str | None = None,
        batch_size: int = 100_000,
    ) -> Any:
        """Check that ``data`` landed in ``table`` intact.

        Parameters
        ----------
        table : str or model class
        data
            Any input ``bulk_create`` accepts (cast to the table's types first).
        key : list of str, optional
            Columns that identify a row; default: the primary key.
        fields : list of str, optional
            Columns to compare; default: every input column except the key.
        sample : int, optional
            Compare a uniform random sample of this many rows (default: every row).

        Returns
        -------
        Verification
            ``checked``, ``matched``, ``missing``, ``mismatched``, ``ok``, and the
            ``differences`` (key, field, expected, actual) and ``missing_keys`` frames.
        """
        from bulkframe.ops.verify import verify

        if sample is not None and (not isinstance(sample, int) or sample < 1):
            raise InvalidOptionValueError(f"sample must be a positive int or None, got {sample!r}")
        return verify(self, _table_ref(table, schema), data, key=key, fields=fields, sample=sample,
                      batch_size=batch_size)

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

    def create_table(
        self,
        table: Any,
        columns: Sequence[Column],
        /,
        *,
        identity: str | None = None,
        unique: Sequence[Sequence[str]] = (),
        foreign_keys: Sequence[ForeignKey] = (),
        indexes: Sequence[Sequence[str]] = (),
        defaults: Mapping[str, Any] | None = None,
        if_not_exists: bool = True,
        schema: str | None = None,
    ) -> bool:
        """Create ``table`` from column definitions, in one transaction.

        Parameters
        ----------
        table : str or model class
            Table to create.
        columns : list of bulkframe.types.Column
            Its columns (``primary_key=True`` ones form the primary key).
        identity : str, optional
            An integer primary-key column the database numbers itself (PostgreSQL
            ``GENERATED BY DEFAULT AS IDENTITY``, SQLite ``INTEGER PRIMARY KEY``).
        unique : list of column lists
            ``UNIQUE`` constraints (what upserts on those columns need).
        foreign_keys : list of ForeignKey
            ``FOREIGN KEY … REFERENCES`` constraints.
        indexes : list of column lists
            Plain indexes, named ``ix_<table>_<columns>``.
        defaults : mapping
            Column defaults (literals; ``":current_timestamp"``/``":current_date"`` for the clock).
        if_not_exists : bool
            ``True`` (default): an existing table is left as it is.
        schema : str, optional
            Database schema (PostgreSQL).

        Returns
        -------
        bool
            Whether the table was created (``False``: it existed already).

        Examples
        --------
        >>> from bulkframe.types import Column
        >>> db.create_table("tags", [Column("id", "int64", nullable=False, primary_key=True),
        ...                          Column("name", "text", nullable=False)],
        ...                 identity="id", unique=[("name",)])               # doctest: +SKIP
        True
        """
        from bulkframe.backends.ddl import create_table_statements

        ref = _table_ref(table, schema)
        statements = create_table_statements(
            self.backend, ref, columns, identity=identity, unique=unique, foreign_keys=foreign_keys,
            indexes=indexes, defaults=defaults, if_not_exists=if_not_exists,
        )
        conn = self.connection()
        try:
            exists = self.backend.reflect(conn, ref) is not None
            if not (exists and if_not_exists):
                for statement in statements:
                    conn.run(statement)
            conn.commit()
            return not exists
        except BaseException:
            conn.rollback()
            raise
        finally:
            self.release(conn)

    def bulk_update(
        self,
        table: Any,
        /,
        updates: Any = None,
        *,
        filter: Mapping[str, Any] | None = None,
        key_fields: Sequence[str] | str | None = None,
        batch_size: int | None = None,
        return_updated: bool = False,
        ensure_atomic: bool = True,
        all_rows: bool = False,
        schema: str | None = None,
        validate_data: bool = True,
        skip_validation: bool = False,
        validation_rules: Mapping[str, Mapping[str, Any]] | None = None,
        **unknown: Any,
    ) -> BulkResult:
        """Update rows with set-based statements (never one statement per row).

        Parameters
        ----------
        table : str or model class
            Target table; it must exist.
        updates : mapping, or rows
            A mapping ``{column: value}`` updates the rows ``filter`` selects in one
            ``UPDATE … WHERE``.  Each value is a literal (``"restocked"``, ``15.99``) or an
            expression in the safe language (``"price * 0.9"``, ``":current_timestamp"``,
            ``"coalesce(stock, 0) + 1"``; see ``docs/rules.md`` for how strings are told
            apart, and ``Expr``/``Literal`` to force either).
            Rows (list of dicts, Polars/pandas/Arrow frame, file path) update the row
            whose key they name; dict rows may set different columns and may carry
            ``"atomic_ops": {"stock": {"$inc": -5}}`` with ``$inc``, ``$mul``, ``$min``,
            ``$max``, ``$set``, applied in SQL against the stored value.
        filter : mapping, optional
            Rows to update (``docs/filters.md``).  With a mapping ``updates`` an empty
            filter is refused unless ``all_rows=True``; with rows it narrows further
            (rows whose key is found but that fail it are counted as ``skipped``).
        key_fields : str or list of str, optional
            Columns that identify a row (default: the primary key).
        batch_size : int, optional
            Rows mode: input rows per staged batch (default 100,000).  Filter mode: at
            most this many rows per ``UPDATE``, walking the key in ranges (default: one
            statement).
        return_updated : bool
            Put the updated rows (as stored afterwards) in ``result.data`` (Polars).
        ensure_atomic : bool
            ``True`` (default): the whole call is one transaction.  ``False``: each batch
            commits on its own, so locks are held only per batch.
        all_rows : bool
            Allow an empty filter to update every row.
        schema : str, optional
            Database schema of the table (PostgreSQL).

        validate_data, skip_validation, validation_rules
            For updates given as rows: ``validation_rules`` (as in ``bulk_create``) and
            the table's NOT NULL / ``varchar(n)`` constraints are checked on the values
            each row sets; any rejected row raises ``ValidationError`` with the full
            report and nothing is written. Refused for updates by filter.

        Returns
        -------
        BulkResult
            ``updated``; ``not_found`` and ``not_found_ids`` for keys that matched no
            row (counted as failures); ``skipped`` for rows ``filter`` excluded.

        Examples
        --------
        >>> db.bulk_update("products", {"price": "price * 0.9"},
        ...                filter={"category": "electronics"}).updated     # doctest: +SKIP
        120
        >>> db.bulk_update("products", [{"id": 1, "atomic_ops": {"stock": {"$inc": -5}}}])  # doctest: +SKIP
        """
        if unknown:
            raise unknown_option(unknown, _UPDATE_OPTIONS, where="bulk_update")
        from bulkframe.ops.update import bulk_update

        return bulk_update(
            self, _table_ref(table, schema), updates, filter=filter, key_fields=key_fields,
            batch_size=batch_size, return_updated=return_updated, ensure_atomic=ensure_atomic,
            all_rows=all_rows,
            rules=rule_options(validate_data, skip_validation, validation_rules, None),
        )

    def bulk_upsert(
        self,
        table: Any,
        /,
        data: Any,
        *,
        unique_fields: Sequence[str] | str | None = None,
        update_fields: Sequence[str] | None = None,
        insert_fields: Sequence[str] | None = None,
        conflict_resolution: str = "update",
        upsert_conditions: Mapping[str, Any] | None = None,
        dedupe: str = "last",
        create_unique_index: bool = False,
        batch_size: int | None = None,
        schema: str | None = None,
        validate_data: bool = True,
        skip_validation: bool = False,
        validation_rules: Mapping[str, Mapping[str, Any]] | None = None,
        transformation_rules: Mapping[str, str] | None = None,
        error_strategy: str = "stop",
        max_errors: int | None = None,
        max_retries: int | None = None,
        retry_delay: float | None = None,
        retry_backoff: str | None = None,
        failed_records_file: str | None = None,
        failed_records_callback: Callable[[Any], Any] | None = None,
        error_log_level: str | int = "warning",
        progress_callback: bool | Callable[..., Any] | None = None,
        progress_interval: int | None = None,
        progress_format: str = "both",
        **unknown: Any,
    ) -> BulkResult:
        """Insert new rows and update existing ones: staging + ``INSERT … ON CONFLICT``.

        Parameters
        ----------
        table : str or model class
            Target table; it must exist.
        data
            Any input ``bulk_create`` accepts.
        unique_fields : str or list of str, optional
            Columns that identify a row (default: the primary key).  A unique index or
            constraint on exactly these columns must exist, else an error names them.
        update_fields : list of str, optional
            Columns an existing row takes from the input (default: every non-key input
            column).
        insert_fields : list of str, optional
            Columns a new row is inserted with (default: every input column); must
            include ``unique_fields``.  Others get the column default.
        conflict_resolution : {"update", "skip"}
            ``"update"``: existing rows are updated.  ``"skip"``: they are left alone
            (counted as ``skipped``).
        upsert_conditions : mapping, optional
            ``{"update_if": filter, "insert_if": filter}``.  ``update_if`` names the stored
            row's columns and ``{"$col": "excluded.x"}`` for the incoming row's; a stored
            row failing it is ``skipped``.  ``insert_if`` filters new (incoming) rows; a
            new row failing it is ``skipped``.
        dedupe : {"last", "first", "error"}
            A key repeated in the input: keep the last or first row (the others are
            counted in ``skipped`` and ``deduplicated``), or raise.
        create_unique_index : bool
            Create the missing unique index on ``unique_fields`` (in the same
            transaction) instead of raising.
        batch_size : int, optional
            Input rows per staged batch (default 100,000).
        schema : str, optional
            Database schema of the table (PostgreSQL).
        validate_data, skip_validation, validation_rules, transformation_rules
            The rules stage, as in ``bulk_create`` (docs/error-handling.md).
        error_strategy : {"stop", "continue", "retry_batch"}
            The upsert is one transaction. ``"stop"``: any rejected row raises
            ``ValidationError`` and nothing is written. ``"continue"``: rows that fail
            casting or validation are reported in ``result.errors`` and the others are
            written; a database error still rolls the call back. ``"retry_batch"``: like
            ``"continue"``, and a transient error (deadlock, serialization failure, lock
            timeout, lost connection) rolls back and runs the whole call again, up to
            ``max_retries`` times; the counts are those of the attempt that committed
            (``result.metrics["retries"]`` says how many retries it took).  The input
            must be readable twice (a list, DataFrame, Arrow table or file path).
            Staged rows are applied in key order, so overlapping upserts from several
            processes serialize instead of deadlocking.
        max_retries, retry_delay, retry_backoff
            Retry policy under ``"retry_batch"``, as in ``bulk_create`` (defaults 3,
            1.0 s, ``"exponential"``); refused with another strategy.
        max_errors, failed_records_file, failed_records_callback, error_log_level
            As in ``bulk_create``; exceeding ``max_errors`` writes nothing.
        progress_callback, progress_interval, progress_format
            As in ``bulk_create``.

        Returns
        -------
        BulkResult
            Exact ``inserted``, ``updated`` and ``skipped``, summing to the rows written;
            ``records_processed == success_count + failure_count``.
        """
        if unknown:
            raise unknown_option(unknown, _UPSERT_OPTIONS, where="bulk_upsert")
        from bulkframe.ops.upsert import bulk_upsert

        return bulk_upsert(
            self, _table_ref(table, schema), data, unique_fields=unique_fields,
            update_fields=update_fields, insert_fields=insert_fields,
            conflict_resolution=conflict_resolution, upsert_conditions=upsert_conditions,
            dedupe=dedupe, create_unique_index=create_unique_index, batch_size=batch_size,
            rules=rule_options(validate_data, skip_validation, validation_rules, transformation_rules),
            policy=error_policy(error_strategy, max_errors, max_retries, retry_delay, retry_backoff,
                                failed_records_file, failed_records_callback, error_log_level),
            progress={"callback": progress_callback, "interval": progress_interval, "fmt": progress_format},
        )

    def bulk_delete(
        self,
        table: Any,
        /,
        filter: Mapping[str, Any] | None = None,
        *,
        ids: Sequence[Any] | None = None,
        key_field: str | None = None,
        soft_delete: bool = False,
        hard_delete: bool = False,
        deleted_at_field: str = "deleted_at",
        cascade: Sequence[str] | Mapping[str, str] | None = None,
        dry_run: bool = False,
        max_delete_count: int | None = None,
        confirm_delete: bool | Callable[[int, Any], bool] = False,
        backup_before_delete: bool = False,
        backup_location: str | None = None,
        all_rows: bool = False,
        batch_size: int | None = None,
        sample_size: int = 10,
        schema: str | None = None,
        **unknown: Any,
    ) -> BulkResult:
        """Delete the rows ``filter`` and/or ``ids`` select, safely, in one transaction.

        Parameters
        ----------
        table : str or model class
            Target table; it must exist.
        filter : mapping, optional
            Rows to delete (``docs/filters.md``).  No filter and no ids deletes nothing
            unless ``all_rows=True``.
        ids : list, optional
            Key values (tuples for a composite key) to delete; long lists are staged and
            joined.  Ids that match no row are counted in ``not_found``/``not_found_ids``.
        key_field : str, optional
            Column ``ids`` refer to (default: the primary key).
        soft_delete : bool
            Set ``deleted_at_field`` to the current timestamp instead of deleting (rows
            already marked are ``skipped``).  The column must exist: bulkframe never alters
            the table here; the error shows the ``ALTER TABLE`` to run.
        hard_delete : bool
            Delete the rows (the default); contradicts ``soft_delete``.
        deleted_at_field : str
            Column ``soft_delete`` sets (default ``"deleted_at"``).
        cascade : list of str or mapping, optional
            Child tables whose rows reference the deleted ones are deleted (or soft
            deleted) first in the same transaction; the foreign key comes from the
            catalog, or ``{"reviews": "product_id"}`` names it.
        dry_run : bool
            Change nothing; ``result.deleted`` is the count that would be deleted and
            ``result.data`` a sample of those rows (``result.dry_run`` is True).
        max_delete_count : int, optional
            When more rows than this match, nothing is deleted and ``SafetyLimitError``
            says how many matched (checked inside the deleting transaction).
        confirm_delete : bool or callable
            A callable ``confirm(count, sample) -> bool`` must approve; ``True`` asks
            yes/no in a terminal or notebook (an error when there is neither).  Declined:
            nothing is deleted, matching rows are counted as ``skipped``.
        backup_before_delete : bool
            Write the deleted rows to ``backup_location`` (``.parquet``, ``.json``,
            ``.jsonl``, ``.csv``) before committing; if writing fails nothing is deleted.
            Rows deleted by ``cascade`` go to ``<stem>.<child table><suffix>`` beside it.
        backup_location : str, optional
            Where the backup goes.
        all_rows : bool
            Allow deleting every row (empty filter, no ids).
        batch_size : int, optional
            At most this many rows per ``DELETE`` statement (key ranges), still in one
            transaction.
        sample_size : int
            Rows in the ``dry_run``/``confirm_delete`` sample.
        schema : str, optional
            Database schema of the table (PostgreSQL).

        Returns
        -------
        BulkResult
            ``deleted`` (and ``skipped``, ``not_found``); cascaded counts in
            ``result.metrics["cascade"]``.
        """
        if unknown:
            raise unknown_option(unknown, _DELETE_OPTIONS, where="bulk_delete")
        from bulkframe.ops.delete import bulk_delete

        return bulk_delete(
            self, _table_ref(table, schema), filter=filter, ids=ids, key_field=key_field,
            soft_delete=soft_delete, hard_delete=hard_delete, deleted_at_field=deleted_at_field,
            cascade=cascade, dry_run=dry_run, max_delete_count=max_delete_count,
            confirm_delete=confirm_delete, backup_before_delete=backup_before_delete,
            backup_location=backup_location, all_rows=all_rows, batch_size=batch_size,
            sample_size=sample_size,
        )


_CREATE_OPTIONS = (
    "batch_size", "conflict_resolution", "conflict_fields", "primary_key", "schema",
    "validate_data", "skip_validation", "validation_rules", "transformation_rules",
    "error_strategy", "max_errors", "retry_failed_records", "max_retries", "retry_delay", "retry_backoff",
    "failed_records_file", "failed_records_callback", "error_log_level",
    "parallel_batches", "max_workers", "connection_pool_size", "load_balancing",
    "resumable", "checkpoint_file", "checkpoint_interval",
    "auto_cleanup", "cleanup_on_failure", "cleanup_temp_files", "cleanup_connections",
    "migration_mode", "preserve_ids", "disable_triggers", "verify_migration", "verification_sample",
    "verification_fields",
    "collect_metrics", "metrics_file", "metrics_interval", "monitor_memory", "monitor_cpu",
    "monitor_disk_io", "monitor_network", "track_execution_time", "track_memory_usage",
    "track_io_operations", "track_batch_performance", "performance_report", "report_format", "report_file",
    "progress_callback", "progress_interval", "progress_format",
)


def migration_options(**options: Any) -> Any:
    from bulkframe.ops.create import migration_options as check

    return check(**options)


def monitoring_options(**options: Any) -> Any:
    from bulkframe.plan.metrics import metrics_options

    return metrics_options(**options)


def run_options(**options: Any) -> Any:
    from bulkframe.plan.policy import run_options as check

    return check(**options)


def rule_options(validate_data: bool, skip_validation: bool, validation_rules: Any,
                 transformation_rules: Any) -> Any:
    """Check and bundle the rules stage's options."""
    from bulkframe.ops.create import RuleOptions

    if validation_rules and (skip_validation or not validate_data):
        raise InvalidOptionValueError(
            "validation_rules were given, but skip_validation=True / validate_data=False turns "
            "validation off; remove one of them"
        )
    for name, value in (("validation_rules", validation_rules), ("transformation_rules", transformation_rules)):
        if value is not None and not isinstance(value, Mapping):
            raise InvalidOptionValueError(f"{name} must be a dict, got {type(value).__name__}")
    return RuleOptions(
        validation_rules=validation_rules,
        transformation_rules=transformation_rules,
        validate=bool(validate_data) and not skip_validation,
    )


def error_policy(strategy: str, max_errors: int | None, max_retries: int | None, retry_delay: float | None,
                 retry_backoff: str | None, failed_records_file: str | None,
                 failed_records_callback: Any, error_log_level: str | int) -> Any:
    """Check and bundle the error-handling options."""
    from bulkframe.plan.policy import ErrorPolicy, log_level

    given = [n for n, v in (("max_retries", max_retries), ("retry_delay", retry_delay),
                            ("retry_backoff", retry_backoff)) if v is not None]
    if given and strategy != "retry_batch":
        raise InvalidOptionValueError(
            f"{', '.join(given)} only apply to error_strategy='retry_batch' (got {strategy!r}, which "
            "retries nothing); pass error_strategy='retry_batch' or drop them"
        )
    return ErrorPolicy(
        strategy=strategy, max_errors=max_errors,
        max_retries=3 if max_retries is None else max_retries,
        retry_delay=1.0 if retry_delay is None else retry_delay,
        retry_backoff=retry_backoff or "exponential",
        failed_records_file=str(failed_records_file) if failed_records_file is not None else None,
        failed_records_callback=failed_records_callback, error_log_level=log_level(error_log_level),
    )

_UPDATE_OPTIONS = (
    "updates", "filter", "key_fields", "batch_size", "return_updated", "ensure_atomic", "all_rows",
    "validate_data", "skip_validation", "validation_rules",
    "schema",
)

_UPSERT_OPTIONS = (
    "unique_fields", "update_fields", "insert_fields", "conflict_resolution", "upsert_conditions",
    "dedupe", "create_unique_index", "batch_size", "schema",
    "validate_data", "skip_validation", "validation_rules", "transformation_rules", "error_strategy",
    "max_errors", "max_retries", "retry_delay", "retry_backoff", "failed_records_file",
    "failed_records_callback", "error_log_level", "progress_callback", "progress_interval", "progress_format",
)

_DELETE_OPTIONS = (
    "filter", "ids", "key_field", "soft_delete", "hard_delete", "deleted_at_field", "cascade",
    "dry_run", "max_delete_count", "confirm_delete", "backup_before_delete", "backup_location",
    "all_rows", "batch_size", "sample_size", "schema",
)
