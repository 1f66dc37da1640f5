"""``connect()`` and :class:`Database`: the library API scripts and notebooks call."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from bulkframe.backends.base import Backend, ForeignKey, TableRef
from bulkframe.backends.base import table_ref as _table_ref
from bulkframe.backends.connection import Connection
from bulkframe.backends.pool import MAX_OVERFLOW, POOL_SIZE, POOL_TIMEOUT, ConnectionPool, check_pool_options
from bulkframe.backends.registry import DEFAULT_URL, load_backend
from bulkframe.backends.session import Sessions
from bulkframe.errors import InvalidOptionValueError, SchemaError, unknown_option
from bulkframe.options import (
    AuditLevel,
    AuditOptions,
    BenchmarkOptions,
    ChangeDetection,
    Compression,
    ConflictResolution,
    Dedupe,
    DeleteSafety,
    ErrorPolicy,
    ErrorStrategy,
    EventFormat,
    EventOptions,
    LoadBalancing,
    LoadOptions,
    MemoryOptions,
    MetricsOptions,
    MigrationOptions,
    ProgressFormat,
    ProgressOptions,
    ReportFormat,
    RetryBackoff,
    RuleOptions,
    RunOptions,
    StreamOptions,
    StreamPriority,
    SyncMode,
    SyncOptions,
    UpsertConflictResolution,
    VerifyMode,
    VerifyOptions,
)
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

    The returned :class:`Database` may be shared by threads: each call checks a
    connection out of the pool for its duration.

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

    Returns
    -------
    Database

    Raises
    ------
    OptionError
        An unknown keyword (with the closest valid name).
    InvalidOptionValueError
        A pool option out of range.
    NotSupportedError
        A URL whose scheme no backend handles.
    MissingDependencyError
        The backend's driver is not installed (the message names the package).

    Examples
    --------
    >>> import bulkframe as bf
    >>> db = bf.connect("sqlite:///example.db")           # doctest: +SKIP
    >>> db.bulk_create("products", [{"id": 1, "name": "a"}]).success_count  # doctest: +SKIP
    1
    """
    if unknown:
        raise unknown_option(unknown, ("url", "pool_size", "max_overflow", "pool_timeout"), where="connect")
    return Database(
        url or DEFAULT_URL, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout
    )


def _explicit_columns(backend: Backend, conn: Any, fk: ForeignKey) -> ForeignKey:
    """``fk`` with the referred columns spelled out (the referred table's primary key when
    it leaves them implicit): not every database reads a bare ``REFERENCES table``."""
    if fk.referred_columns:
        return fk
    referred = backend.reflect(conn, TableRef(fk.referred_table, fk.referred_schema)) or []
    pk = tuple(c.name for c in referred if c.primary_key)
    return dataclasses.replace(fk, referred_columns=pk) if pk else fk


class Database:
    """A database that bulkframe writes to, with a bounded pool of connections.

    Thread-safe: one ``Database`` per process serves every thread (web apps, thread
    pools, notebooks with background jobs); each call checks a connection out of the pool
    for its duration and returns it afterwards (rolled back, staging tables dropped), so
    connections are reused between calls.  ``pool_size``, ``max_overflow`` and
    ``pool_timeout`` are set by :func:`connect`.  Use it as a context manager or call
    :meth:`close` when done; a closed ``Database`` refuses further calls.

    Parameters
    ----------
    url : str
        Database URL, as for :func:`connect`.
    pool_size, max_overflow, pool_timeout
        The connection pool's bounds, as for :func:`connect`.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = POOL_SIZE,
        max_overflow: int = MAX_OVERFLOW,
        pool_timeout: float = POOL_TIMEOUT,
    ):
        check_pool_options(pool_size, max_overflow, pool_timeout)
        self.url = url
        self.backend: Backend = load_backend(url)
        self.pool = ConnectionPool(
            self.backend, size=pool_size, max_overflow=max_overflow, timeout=pool_timeout
        )
        #: the session factory operations receive (backend + pool; never this object)
        self.sessions = Sessions(self.backend, self.pool)

    # -- connections ---------------------------------------------------------------
    def connection(self, retries: int = 0) -> Connection:
        """Check a connection out of the pool; give it back with :meth:`release`.

        Waits up to ``pool_timeout`` seconds for a free one; a pooled connection that died
        is replaced.

        Parameters
        ----------
        retries : int
            Retries of a transient error while connecting.

        Raises
        ------
        PoolTimeoutError
            No connection became free within ``pool_timeout`` seconds.
        DatabaseClosedError
            The Database was closed.
        """
        return self.sessions.checkout(retries)

    def session(
        self, *, write: bool = True, retries: int = 0, lock: Any = None
    ) -> AbstractContextManager[Connection]:
        """A pooled connection for a ``with`` block, in one transaction.

        The transaction commits when the block ends normally (``write=True``) or is rolled
        back (``write=False``, and whenever the block raises); the connection then goes back
        to the pool.

        Parameters
        ----------
        write : bool
            Whether the block's work is committed.
        retries : int
            Retries of a transient error while connecting.
        lock : str or model class, optional
            A table whose write lock (where the database has one to take, e.g. SQLite's
            ``BEGIN IMMEDIATE``) is taken before the block runs.

        Raises
        ------
        PoolTimeoutError
            No connection became free within ``pool_timeout`` seconds.
        DatabaseClosedError
            The Database was closed.

        Examples
        --------
        >>> with db.session() as conn:                                   # doctest: +SKIP
        ...     conn.run('UPDATE "products" SET "stock" = 0')
        """
        ref = None if lock is None else _table_ref(lock, None)
        return self.sessions.session(write=write, retries=retries, lock=ref)

    def release(self, conn: Connection, *, discard: bool = False) -> None:
        """Give ``conn`` back to the pool (rolled back; staging tables dropped).

        Parameters
        ----------
        conn : Connection
            A connection from :meth:`connection`.
        discard : bool
            Close it for good instead.
        """
        self.sessions.release(conn, discard=discard)

    def adopt(self, conn: Connection) -> None:
        """Same as :meth:`release`.

        Parameters
        ----------
        conn : Connection
            A connection from :meth:`connection`, or a reconnected replacement of one.
        """
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
        self.backend.close()

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
        conflict_resolution: ConflictResolution = "error",
        conflict_fields: Sequence[str] | None = None,
        primary_key: Sequence[str] | str | None = None,
        schema: str | None = None,
        validate_data: bool = True,
        skip_validation: bool = False,
        validation_rules: Mapping[str, Mapping[str, Any]] | None = None,
        transformation_rules: Mapping[str, str] | None = None,
        error_strategy: ErrorStrategy = "stop",
        max_errors: int | None = None,
        retry_failed_records: bool = False,
        max_retries: int | None = None,
        retry_delay: float | None = None,
        retry_backoff: RetryBackoff | None = None,
        failed_records_file: str | None = None,
        failed_records_callback: Callable[[Any], Any] | None = None,
        error_log_level: str | int = "warning",
        parallel_batches: int | None = None,
        max_workers: int | None = None,
        connection_pool_size: int | None = None,
        load_balancing: LoadBalancing | None = None,
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
        use_load_data: bool | None = None,
        mysql_options: Mapping[str, Any] | None = None,
        disable_foreign_keys: bool = False,
        disable_autocommit: bool = True,
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
        report_format: ReportFormat = "json",
        report_file: str | None = None,
        progress_callback: bool | Callable[..., Any] | None = None,
        progress_interval: int | None = None,
        progress_format: ProgressFormat = "both",
        stream_buffer_size: int | None = None,
        stream_timeout: float | None = None,
        process_immediately: bool = False,
        max_latency: float | None = None,
        priority: StreamPriority = "normal",
        streaming: bool = False,
        memory_limit: str | int | None = None,
        spill_to_disk: bool = False,
        compression: bool | Compression = False,
        gc_interval: int | None = None,
        publish_events: bool = False,
        event_topic: str | None = None,
        event_format: EventFormat = "json",
        event_sink: str | Callable[[Any], Any] | None = None,
        benchmark_mode: bool = False,
        benchmark_iterations: int = 3,
        benchmark_warmup: int = 1000,
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
            Key columns for skip/update; default: the table's primary key.  With
            ``"skip"``, an empty list means SQL's ``ON CONFLICT DO NOTHING``: a row that
            would violate any unique constraint (or the primary key) is skipped and counted.
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
        use_load_data : bool, optional
            MySQL: ``True``/``None`` load through ``LOAD DATA LOCAL INFILE``; ``False``
            writes multi-row ``INSERT`` statements (slower). Refused elsewhere.
        mysql_options : mapping, optional
            MySQL: ``LOAD DATA`` clauses (``fields_terminated_by``, ``lines_terminated_by``,
            ``ignore_lines``, ``local_infile=True``); other keys are refused by name.
        disable_foreign_keys : bool
            MySQL: no foreign-key checks for the loaded rows (the session's
            ``foreign_key_checks = 0`` during each load, always restored). Refused on
            PostgreSQL and SQLite.
        disable_autocommit : bool
            Always ``True``: bulkframe writes inside explicit transactions; ``False`` is refused.
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
        stream_buffer_size, stream_timeout, process_immediately, max_latency, priority
            Read ``data`` as an unbounded stream (a blocking iterator or generator, an
            ``asyncio`` async iterator or a ``queue.Queue``; async iterators and queues are
            always streams): rows are written in micro-batches that each commit on their
            own, when ``stream_buffer_size`` rows wait, when the oldest waiting row has
            waited ``max_latency`` seconds, or (``process_immediately=True`` /
            ``priority="high"``) as soon as the previous write finished.  The stream ends
            when the source ends, after ``stream_timeout`` seconds without a row, or on
            Ctrl-C (the accepted rows are written and committed, then ``KeyboardInterrupt``
            is re-raised carrying ``.result``).  See docs/streaming.md.
        streaming, memory_limit, spill_to_disk, compression, gc_interval
            Memory: ``streaming=True`` converts an in-memory input batch by batch;
            ``memory_limit="512MB"`` bounds the process's peak resident memory (batch size
            from measured bytes per row, shrinking when RSS nears the limit);
            ``spill_to_disk`` lets the rejected-rows report (and an upsert's seen keys)
            spill to compressed Arrow IPC files in a temporary directory that is always
            removed; ``compression`` (``True``/``"zstd"``/``"lz4"``) applies to spill files
            and Parquet failed-record files; ``gc_interval`` collects garbage every N
            batches.  See docs/memory.md.
        publish_events, event_topic, event_format, event_sink
            One event per committed batch (operation, table, batch number, counts, key
            range, commit time), only after its commit: to ``event_sink`` (a callable or a
            ``redis://`` URL: ``XADD`` to stream ``event_topic``), or without a sink to
            ``NOTIFY event_topic`` inside the writing transaction where the database has
            it.  ``event_format="cloudevents"`` wraps each event in a CloudEvents 1.0
            envelope.  See docs/events.md.
        benchmark_mode, benchmark_iterations, benchmark_warmup
            Time the load first: a warm-up of ``benchmark_warmup`` rows, then
            ``benchmark_iterations`` timed runs of the whole input, each in a transaction
            that is rolled back; then the real load, once.  Min/median/max rows per second
            and per-stage seconds land in ``result.metrics["benchmark"]`` and the
            performance report.  See docs/benchmark-mode.md.

        Returns
        -------
        BulkResult

        Raises
        ------
        OptionError
            An unknown keyword option (the message suggests the closest valid name).
        InvalidOptionValueError
            An option value outside its allowed set (the message lists the allowed values)
            or options that contradict each other.
        NotSupportedError
            An option this backend cannot honour (``parallel_batches`` or
            ``disable_triggers`` on SQLite, ``use_load_data``/``mysql_options``/
            ``disable_foreign_keys`` outside MySQL, an unknown ``mysql_options`` key).
        SchemaError
            The input does not fit the table (unknown column, value that cannot be cast).
        ValidationError
            Rows were rejected under ``error_strategy="stop"``; nothing was written.
        SafetyLimitError
            More than ``max_errors`` rows were rejected.
        IntegrityError
            A constraint refused a row under ``"stop"`` (nothing was written).
        TransientError
            A connection loss, deadlock or lock timeout that retries did not overcome.
        VerificationError
            ``verify_migration`` found missing or different rows (the load stays committed).
        """
        options = dict(locals())
        if unknown:
            raise unknown_option(unknown, _option_names("bulk_create"), where="bulk_create")
        rules, policy, progress = (
            RuleOptions.from_options(options),
            ErrorPolicy.from_options(options),
            ProgressOptions.from_options(options),
        )
        run, migration = RunOptions.from_options(options), MigrationOptions.from_options(options)
        monitoring = MetricsOptions.from_options(options)
        load = LoadOptions.from_options(options)
        streams, memory = StreamOptions.from_options(options), MemoryOptions.from_options(options)
        events, benchmark = EventOptions.from_options(options), BenchmarkOptions.from_options(options)
        from bulkframe.ops.create import bulk_create

        return bulk_create(
            self.sessions,
            _table_ref(table, schema),
            data,
            batch_size=batch_size,
            conflict_resolution=conflict_resolution,
            conflict_fields=conflict_fields,
            primary_key=primary_key,
            rules=rules,
            policy=policy,
            run=run,
            migration=migration,
            monitoring=monitoring,
            progress=progress,
            load=load,
            streams=streams,
            memory=memory,
            events=events,
            benchmark=benchmark,
        )

    def verify(
        self,
        table: Any,
        data: Any,
        /,
        *,
        key: Sequence[str] | str | None = None,
        fields: Sequence[str] | None = None,
        sample: int | None = None,
        schema: str | None = None,
        batch_size: int = 100_000,
        mode: VerifyMode | None = None,
        float_tolerance: float | None = None,
        max_samples: int = 1000,
        leaf_size: int = 64,
    ) -> Any:
        """Check that ``data`` and ``table`` hold the same rows.

        Modes:

        - ``"full"`` (default when the source is a table): two-way.  Rows only in
          the data (``missing``), rows only in the table (``only_in_table``) and differing
          cells (``mismatched``, ``column_differences`` per column), with exact counts and
          bounded samples.  Per-key-range hashes are computed inside each database where
          the backend can (PostgreSQL), else streamed and hashed client-side (SQLite,
          DataFrames, files); only ranges that differ are drilled into and fetched.
        - ``"keys"`` (default for rows given as data): one-way; every input row is looked
          up by key, rows only in the table are not looked for.
        - ``"sample"``: one-way on a uniform sample of ``sample`` rows, with the confidence
          a clean sample gives (``confidence``, ``max_difference_rate``).

        Values are compared after normalising types: decimal scale (``1.50`` equals
        ``1.5``), time zones (the same instant is equal), ``-0.0`` and ``0.0``.

        Parameters
        ----------
        table : str or model class
        data
            Any input ``bulk_create`` accepts (a DataFrame, Arrow, records, a Parquet or
            CSV path; cast to the table's types first), or a
            :class:`~bulkframe.TableSource`: a table in this or another database.
        key : str or list of str, optional
            Columns that identify a row; default: the primary key.
        fields : list of str, optional
            Columns to compare; default: every column of both except the key.
        sample : int, optional
            Compare a uniform random sample of this many rows (``mode="sample"``).
        schema : str, optional
            Database schema of the table (PostgreSQL).
        batch_size : int
            Rows read, streamed or compared per round trip.
        mode : {"full", "keys", "sample"}, optional
            See above; default ``"sample"`` when ``sample`` is given, else ``"full"`` when
            ``data`` is a ``TableSource``, else ``"keys"`` (one-way, as before).
        float_tolerance : float, optional
            Floats equal within this absolute difference (default: bit-exact).
        max_samples : int
            Rows kept per sample of differences (counts stay exact).
        leaf_size : int
            ``"full"``: differing key ranges of at most this many rows are fetched.

        Returns
        -------
        Verification
            ``checked``, ``matched``, ``missing``, ``mismatched``, ``only_in_table``,
            ``column_differences``, ``ok``, the ``differences`` (key, field, expected,
            actual), ``missing_keys``, ``source_only`` and ``table_only`` frames, and for a
            sample ``confidence``.

        Raises
        ------
        InvalidOptionValueError
            ``sample`` is not a positive int, a mode is unknown, or an option is out of range.
        NotSupportedError
            ``mode="full"`` with a key that is not one integer column.
        SchemaError
            The table does not exist, has no key, the input names unknown columns, or a
            compared column holds a different kind of value on each side.

        Examples
        --------
        >>> import bulkframe as bf
        >>> db = bf.connect("sqlite:///example.db")                    # doctest: +SKIP
        >>> db.verify("orders", bf.TableSource("sqlite:///old.db", "orders")).ok  # doctest: +SKIP
        True
        """
        from bulkframe.ops.verify import verify

        if sample is not None and (not isinstance(sample, int) or isinstance(sample, bool) or sample < 1):
            raise InvalidOptionValueError(f"sample must be a positive int or None, got {sample!r}")
        options = VerifyOptions(
            mode=mode, float_tolerance=float_tolerance, max_samples=max_samples, leaf_size=leaf_size
        )
        from bulkframe.ops.verify_sides import SourceTable, TableSource

        opened: Database | None = None
        if isinstance(data, TableSource):
            source_db = data.database
            if not isinstance(source_db, Database):
                if not isinstance(source_db, str):
                    raise SchemaError(
                        f"TableSource.database must be a Database or a URL, got {type(source_db).__name__}"
                    )
                source_db = opened = connect(source_db)
            data = SourceTable(source_db.sessions, _table_ref(data.table, data.schema))
        try:
            return verify(
                self.sessions,
                _table_ref(table, schema),
                data,
                key=key,
                fields=fields,
                sample=sample,
                options=options,
                batch_size=batch_size,
            )
        finally:
            if opened is not None:
                opened.close()

    def read(
        self,
        table: Any,
        /,
        *,
        columns: Sequence[str] | None = None,
        schema: str | None = None,
        order_by: Sequence[str] | str | None = None,
    ) -> Any:
        """Read a table back as a Polars DataFrame with bulkframe's logical types.

        Parameters
        ----------
        table : str or model class
            Table to read.
        columns : list of str, optional
            Columns to read (default: all).
        schema : str, optional
            Database schema of the table (PostgreSQL).
        order_by : str or list of str, optional
            Columns to sort by.

        Returns
        -------
        polars.DataFrame
        """
        from bulkframe.ops.read import read_table

        return read_table(self.sessions, _table_ref(table, schema), columns=columns, order_by=order_by)

    def columns(self, table: Any, /, *, schema: str | None = None) -> list[Any]:
        """The table's columns as bulkframe sees them (``None`` if it does not exist).

        Parameters
        ----------
        table : str or model class
            Table to reflect.
        schema : str, optional
            Database schema of the table (PostgreSQL).
        """
        with self.sessions.session(write=False) as conn:
            return self.backend.reflect(conn, _table_ref(table, schema))  # type: ignore[return-value]

    def drop_table(self, table: Any, /, *, schema: str | None = None) -> None:
        """``DROP TABLE IF EXISTS`` (identifier quoted).

        Parameters
        ----------
        table : str or model class
            Table to drop.
        schema : str, optional
            Database schema of the table (PostgreSQL).
        """
        with self.sessions.session() as conn:
            self.backend.drop_table(conn, _table_ref(table, schema))

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

        Raises
        ------
        SchemaError
            Duplicate column names, an identity column that is not the only (integer)
            primary-key column, or a constraint or index naming an unknown column.
        InvalidOptionValueError
            A default that is neither a literal nor a clock keyword.
        DatabaseError
            The database refused a statement (nothing was created).

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
        with self.sessions.session() as conn:
            statements = create_table_statements(
                self.backend,
                ref,
                columns,
                identity=identity,
                unique=unique,
                foreign_keys=[_explicit_columns(self.backend, conn, fk) for fk in foreign_keys],
                indexes=indexes,
                defaults=defaults,
                if_not_exists=if_not_exists,
            )
            exists = self.backend.reflect(conn, ref) is not None
            if not (exists and if_not_exists):
                for statement in statements:
                    conn.run(statement)
        return not exists

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

        Raises
        ------
        OptionError
            An unknown keyword option (the message suggests the closest valid name).
        InvalidOptionValueError
            An option value outside its allowed set (the message lists the allowed values)
            or options that contradict each other.
        FilterError
            A malformed filter, or a value that does not fit its column.
        ExpressionError
            An update expression that cannot be compiled.
        SchemaError
            An unknown column, a missing key, or a value that cannot be cast.
        ValidationError
            Rows failed the rules stage; nothing was written.

        Examples
        --------
        >>> db.bulk_update("products", {"price": "price * 0.9"},
        ...                filter={"category": "electronics"}).updated     # doctest: +SKIP
        120
        >>> db.bulk_update("products", [{"id": 1, "atomic_ops": {"stock": {"$inc": -5}}}])  # doctest: +SKIP
        """
        options = dict(locals())
        if unknown:
            raise unknown_option(unknown, _option_names("bulk_update"), where="bulk_update")
        rules = RuleOptions.from_options(options)
        from bulkframe.ops.update import bulk_update

        return bulk_update(
            self.sessions,
            _table_ref(table, schema),
            updates,
            filter=filter,
            key_fields=key_fields,
            batch_size=batch_size,
            return_updated=return_updated,
            ensure_atomic=ensure_atomic,
            all_rows=all_rows,
            rules=rules,
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
        conflict_resolution: UpsertConflictResolution = "update",
        upsert_conditions: Mapping[str, Any] | None = None,
        dedupe: Dedupe = "last",
        create_unique_index: bool = False,
        batch_size: int | None = None,
        schema: str | None = None,
        validate_data: bool = True,
        skip_validation: bool = False,
        validation_rules: Mapping[str, Mapping[str, Any]] | None = None,
        transformation_rules: Mapping[str, str] | None = None,
        error_strategy: ErrorStrategy = "stop",
        max_errors: int | None = None,
        max_retries: int | None = None,
        retry_delay: float | None = None,
        retry_backoff: RetryBackoff | None = None,
        failed_records_file: str | None = None,
        failed_records_callback: Callable[[Any], Any] | None = None,
        error_log_level: str | int = "warning",
        progress_callback: bool | Callable[..., Any] | None = None,
        progress_interval: int | None = None,
        progress_format: ProgressFormat = "both",
        sync_mode: SyncMode | None = None,
        last_sync_timestamp: Any = None,
        sync_timestamp_field: str = "updated_at",
        sync_state_table: str | None = None,
        sync_name: str | None = None,
        sync_scope: Mapping[str, Any] | None = None,
        operation_field: str = "operation",
        detect_changes: bool = False,
        change_detection_fields: Sequence[str] | None = None,
        ignore_fields: Sequence[str] | None = None,
        audit_sync: bool = False,
        audit_table: str = "bulkframe_sync_audit",
        audit_level: AuditLevel = "changes_only",
        soft_delete: bool = False,
        deleted_at_field: str = "deleted_at",
        dry_run: bool = False,
        max_delete_count: int | None = None,
        backup_before_delete: bool = False,
        backup_location: str | None = None,
        stream_buffer_size: int | None = None,
        stream_timeout: float | None = None,
        process_immediately: bool = False,
        max_latency: float | None = None,
        priority: StreamPriority = "normal",
        streaming: bool = False,
        memory_limit: str | int | None = None,
        spill_to_disk: bool = False,
        compression: bool | Compression = False,
        gc_interval: int | None = None,
        publish_events: bool = False,
        event_topic: str | None = None,
        event_format: EventFormat = "json",
        event_sink: str | Callable[[Any], Any] | None = None,
        **unknown: Any,
    ) -> BulkResult:
        """Insert new rows and update existing ones, or synchronise the table with a source.

        Staged by COPY, then merged by ``UPDATE … FROM`` + anti-join ``INSERT`` (docs/upsert.md,
        docs/sync.md).

        Parameters
        ----------
        table : str or model class
            Target table; it must exist.
        data
            Any input ``bulk_create`` accepts.
        unique_fields : str or list of str, optional
            Columns that identify a row (default: the primary key).  Without a unique index
            or constraint on exactly these columns the merge still works, with the table
            locked against other writers until commit (a unique index is faster).
        update_fields : list of str, optional
            Columns an existing row takes from the input (default: every non-key input
            column).
        insert_fields : list of str, optional
            Columns a new row is inserted with (default: every input column); must
            include ``unique_fields``.  Others get the column default.
        conflict_resolution : {"update", "skip", "source_wins", "target_wins", "newest_wins"}
            ``"update"`` (``"source_wins"``): existing rows are updated.  ``"skip"``
            (``"target_wins"``): they are left alone (counted as ``skipped``).
            ``"newest_wins"``: updated only when the incoming ``sync_timestamp_field`` is
            later than the stored one (else ``skipped``).
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
            transaction) instead of merging under a table lock.
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
        sync_mode : {"incremental", "full", "delta"}, optional
            ``"incremental"``: apply only rows whose ``sync_timestamp_field`` is later than
            ``last_sync_timestamp``; ``result.high_water_mark`` is the new mark.
            ``"full"``: also delete (or soft-delete) stored rows whose key the input lacks,
            within ``sync_scope``.  ``"delta"``: the input is a change set whose
            ``operation_field`` says ``"insert"``, ``"update"`` or ``"delete"``, applied in
            order (per-operation counts in ``result.metrics["delta"]``).
        last_sync_timestamp, sync_timestamp_field, sync_state_table, sync_name
            The incremental bound, the change-timestamp column (default ``"updated_at"``;
            also what ``"newest_wins"`` compares), and a table that keeps the mark per
            ``sync_name`` (default: the table's name) so the next run starts from it.
        sync_scope : mapping, optional
            Full sync: the filter selecting the stored rows the input stands for.
        operation_field : str
            Delta sync: the operation column (not written to the table).
        detect_changes, change_detection_fields, ignore_fields
            Leave stored rows that equal the incoming ones (compared in SQL on
            ``change_detection_fields``, default every updated column) unwritten and count
            them in ``result.unchanged``; ``ignore_fields`` are neither compared nor
            written to existing rows.
        audit_sync, audit_table, audit_level
            Record the changes in ``audit_table`` (created on first use) in the same
            transaction: ``"changes_only"`` (one row per inserted/updated/deleted key, with
            before/after values of the changed fields as JSON), ``"full"`` or
            ``"summary"`` (one row per call).
        soft_delete, deleted_at_field, max_delete_count, backup_before_delete, backup_location
            How the deletes of a full or delta sync are made and guarded, as in
            ``bulk_delete``.
        dry_run : bool
            Run everything, report the counts (a full sync: ``result.data`` samples the
            rows it would delete), then roll back.
        stream_buffer_size, stream_timeout, process_immediately, max_latency, priority
            Read ``data`` as an unbounded stream (a blocking iterator or generator, an
            ``asyncio`` async iterator or a ``queue.Queue``; async iterators and queues are
            always streams): rows are written in micro-batches that each commit on their
            own, when ``stream_buffer_size`` rows wait, when the oldest waiting row has
            waited ``max_latency`` seconds, or (``process_immediately=True`` /
            ``priority="high"``) as soon as the previous write finished.  The stream ends
            when the source ends, after ``stream_timeout`` seconds without a row, or on
            Ctrl-C (the accepted rows are written and committed, then ``KeyboardInterrupt``
            is re-raised carrying ``.result``).  See docs/streaming.md.
        streaming, memory_limit, spill_to_disk, compression, gc_interval
            Memory: ``streaming=True`` converts an in-memory input batch by batch;
            ``memory_limit="512MB"`` bounds the process's peak resident memory (batch size
            from measured bytes per row, shrinking when RSS nears the limit);
            ``spill_to_disk`` lets the rejected-rows report (and an upsert's seen keys)
            spill to compressed Arrow IPC files in a temporary directory that is always
            removed; ``compression`` (``True``/``"zstd"``/``"lz4"``) applies to spill files
            and Parquet failed-record files; ``gc_interval`` collects garbage every N
            batches.  See docs/memory.md.
        publish_events, event_topic, event_format, event_sink
            One event per committed batch (operation, table, batch number, counts, key
            range, commit time), only after its commit: to ``event_sink`` (a callable or a
            ``redis://`` URL: ``XADD`` to stream ``event_topic``), or without a sink to
            ``NOTIFY event_topic`` inside the writing transaction where the database has
            it.  ``event_format="cloudevents"`` wraps each event in a CloudEvents 1.0
            envelope.  See docs/events.md.

        Returns
        -------
        BulkResult
            Exact ``inserted``, ``updated``, ``skipped``, ``unchanged`` and ``deleted``;
            ``records_processed == success_count + failure_count``.

        Raises
        ------
        OptionError
            An unknown keyword option (the message suggests the closest valid name).
        InvalidOptionValueError
            An option value outside its allowed set (the message lists the allowed values)
            or options that contradict each other.
        SchemaError
            An unknown column (key, compared, ignored or timestamp field), a value that
            cannot be cast, or a delta operation that is not insert/update/delete.
        NotSupportedError
            Matching without a unique index on a backend that cannot lock the table.
        ValidationError
            Rows were rejected under ``error_strategy="stop"``; nothing was written.
        SafetyLimitError
            More than ``max_errors`` rows were rejected, or a sync would delete more than
            ``max_delete_count`` rows (or every row: a full sync of an empty input), or
            the backup could not be written; nothing was written.
        IntegrityError
            A constraint refused a row; the call rolled back.
        TransientError
            A connection loss, deadlock or lock timeout that retries did not overcome.
        """
        options = dict(locals())
        if unknown:
            raise unknown_option(unknown, _option_names("bulk_upsert"), where="bulk_upsert")
        rules, policy, progress = (
            RuleOptions.from_options(options),
            ErrorPolicy.from_options(options),
            ProgressOptions.from_options(options),
        )
        streams, memory = StreamOptions.from_options(options), MemoryOptions.from_options(options)
        events = EventOptions.from_options(options)
        from bulkframe.ops.upsert import bulk_upsert

        return bulk_upsert(
            self.sessions,
            _table_ref(table, schema),
            data,
            unique_fields=unique_fields,
            update_fields=update_fields,
            insert_fields=insert_fields,
            conflict_resolution=conflict_resolution,
            upsert_conditions=upsert_conditions,
            dedupe=dedupe,
            create_unique_index=create_unique_index,
            batch_size=batch_size,
            rules=rules,
            policy=policy,
            progress=progress,
            sync=SyncOptions.from_options(options),
            changes=ChangeDetection.from_options(options),
            audit=AuditOptions.from_options(options),
            safety=DeleteSafety.from_options(options),
            streams=streams,
            memory=memory,
            events=events,
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

        Raises
        ------
        OptionError
            An unknown keyword option (the message suggests the closest valid name).
        InvalidOptionValueError
            An option value outside its allowed set (the message lists the allowed values)
            or options that contradict each other.
        FilterError
            A malformed filter, or a value that does not fit its column.
        SafetyLimitError
            More rows match than ``max_delete_count``; nothing was deleted.
        SchemaError
            ``soft_delete`` without its column, an unknown key column or cascade table.
        IntegrityError
            A foreign key refused the delete (see ``cascade``); the call rolled back.
        """
        if unknown:
            raise unknown_option(unknown, _option_names("bulk_delete"), where="bulk_delete")
        DeleteSafety.from_options(dict(locals()))  # the declared checks (the delete repeats them)
        from bulkframe.ops.delete import bulk_delete

        return bulk_delete(
            self.sessions,
            _table_ref(table, schema),
            filter=filter,
            ids=ids,
            key_field=key_field,
            soft_delete=soft_delete,
            hard_delete=hard_delete,
            deleted_at_field=deleted_at_field,
            cascade=cascade,
            dry_run=dry_run,
            max_delete_count=max_delete_count,
            confirm_delete=confirm_delete,
            backup_before_delete=backup_before_delete,
            backup_location=backup_location,
            all_rows=all_rows,
            batch_size=batch_size,
            sample_size=sample_size,
        )


@functools.cache
def _option_names(method: str) -> tuple[str, ...]:
    """The keyword options ``Database.<method>`` takes (read from its signature)."""
    params = inspect.signature(getattr(Database, method)).parameters.values()
    return tuple(
        p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
    )
