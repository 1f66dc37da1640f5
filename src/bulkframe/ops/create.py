"""``bulk_create``: normalize → rules → plan → backend → result, for inserts."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from bulkframe.backends.base import Backend, TableRef
from bulkframe.backends.connection import Connection
from bulkframe.backends.statements import MergeCounts, merge_from_stage
from bulkframe.errors import (
    InvalidOptionValueError,
    NotSupportedError,
    SchemaError,
    check_choice,
)
from bulkframe.normalize import Chunk, infer_columns, open_source
from bulkframe.normalize.dedupe import dedupe_keys
from bulkframe.ops.staged_merge import StagedMerge
from bulkframe.ops.upsert_window import MergeSpec, MergeWindow
from bulkframe.ops.verify import Reservoir, VerificationError, verify_rows
from bulkframe.options import (
    BenchmarkOptions,
    ConflictResolution,
    ErrorPolicy,
    EventOptions,
    LoadOptions,
    MemoryOptions,
    MetricsOptions,
    MigrationOptions,
    ProgressOptions,
    RuleOptions,
    RunOptions,
    StreamOptions,
)
from bulkframe.plan.batch import Counts, Prepared
from bulkframe.plan.executor import ConnectionLease, Execution
from bulkframe.plan.ledger import Ledger, fingerprint
from bulkframe.plan.metrics import Metrics
from bulkframe.plan.rejections import Rejections
from bulkframe.plan.run import OperationRun
from bulkframe.result import BulkResult
from bulkframe.rules.prepare import Preparer
from bulkframe.types import Column, kind_of_arrow

if TYPE_CHECKING:
    from bulkframe.backends.session import Sessions
    from bulkframe.normalize.sources import Source
    from bulkframe.normalize.streams import RowStream
    from bulkframe.plan.benchmark import StageClock
    from bulkframe.plan.events import Publisher
    from bulkframe.plan.memory import MemoryGovernor

log = logging.getLogger("bulkframe")


@dataclass
class CreateWriter:
    """Append rows (``error``), or stage them and merge (``skip`` / ``update``).

    Given ``sessions`` (one transaction for the whole call, no events), a keyed merge
    that ``ON CONFLICT`` can do on a backend that pipelines its stages goes through the
    upsert's :class:`~bulkframe.ops.upsert_window.MergeWindow`: a batch is merged by a
    later call than the one that handed it in (its counts come with that call, the last
    ones from :meth:`finish`), and :meth:`close` drops the shared stages once the
    transaction has ended.  Otherwise each batch is staged and merged in its own call."""

    backend: Backend
    ref: TableRef
    columns: dict[str, Column]
    conflict: str
    keys: list[str]
    disable_triggers: bool = False
    load: LoadOptions = field(default_factory=LoadOptions)
    stage: TableRef | None = None
    sessions: Sessions | None = None
    _tables: dict[str, Any] = field(default_factory=dict)
    _plan: StagedMerge | None = None
    _window: MergeWindow | None = None

    def __call__(self, conn: Connection, table: pa.Table) -> Counts:
        self.backend.begin_write(conn, self.ref)  # a batch that starts a transaction queues up first
        self.backend.begin_load(conn, self.ref, self.load)
        try:
            if not self.disable_triggers:
                return self._write(conn, table)
            # the ALTERs are transactional and lock the table until this transaction ends
            self.backend.set_user_triggers(conn, self.ref, enabled=False)
            counts = self._write(conn, table)
            self.backend.set_user_triggers(conn, self.ref, enabled=True)
            return counts
        finally:
            self.backend.end_load(conn, self.load)

    def _write(self, conn: Connection, table: pa.Table) -> Counts:
        if self.conflict == "error":
            conn.ingest(self.ref, self.backend.to_ingest(table, self.columns))
            return Counts(inserted=table.num_rows)
        missing = [k for k in self.keys if k not in table.column_names]
        if missing:
            raise SchemaError(f"conflict_fields {missing} are missing from the input")
        dropped = 0
        if self.keys:  # without keys (skip on any constraint) the database drops repeats itself
            table, dropped = dedupe_keys(
                table, self.keys, keep="last" if self.conflict == "update" else "first"
            )
            if self._windowed(conn):
                assert self._window is not None
                return self._counts(self._window.add(conn, table, self.columns), dropped)
        stage_cols = [self.columns[n] for n in table.column_names]
        if self.stage is None or self._tables.get("names") != table.column_names:
            if self.stage is not None:
                self.backend.drop_table(conn, self.stage)
            self.stage = self.backend.create_stage(conn, stage_cols)
            self._tables = {
                "names": table.column_names,
                "stage": self.backend.sa_table(self.stage, stage_cols),
                "target": self.backend.sa_table(self.ref, list(self.columns.values())),
            }
        else:
            conn.run(f"DELETE FROM {self.backend.qualified(self.stage)}")
        self.backend.ingest_stage(conn, self.stage, self.backend.to_ingest(table, self.columns))
        names = table.column_names
        if not self.keys:  # skip on any unique constraint: only ON CONFLICT DO NOTHING says that
            merged: Any = merge_from_stage(
                conn,
                self._tables["target"],
                self._tables["stage"],
                names,
                [],
                mode="skip",
                staged=table.num_rows,
            )
            return Counts(inserted=merged.inserted, skipped=merged.skipped, deduplicated=0)
        plan = self._merge_plan(conn)
        plan.reset()  # each batch may be its own transaction: lock in each
        merged = plan.apply(
            conn,
            self._tables["stage"],
            inserted=names,
            updated=[n for n in names if n not in self.keys],
            staged_columns=names,
            staged=table.num_rows,
        )
        return self._counts(merged, dropped)

    def _merge_plan(self, conn: Connection) -> StagedMerge:
        if self._plan is None:
            indexed = any(set(k) == set(self.keys) for k in self.backend.unique_keys(conn, self.ref))
            target = self.backend.sa_table(self.ref, list(self.columns.values()))
            self._plan = StagedMerge(
                self.backend, self.ref, target, self.columns, self.keys, mode=self.conflict, indexed=indexed
            )
        return self._plan

    def _windowed(self, conn: Connection) -> bool:
        """Whether this call's batches go through the upsert's merge window (decided at the
        first batch): one transaction, a backend that pipelines its stages, a unique index
        on the keys and no triggers switched off (the path that ``bulk_upsert`` pipelines)."""
        if self._window is not None:
            return True
        if (
            self.sessions is None
            or self.disable_triggers
            or not self.backend.capabilities.pipelined_stages
            or not self._merge_plan(conn).plain
        ):
            return False
        from bulkframe.options import ChangeDetection

        spec = MergeSpec(self._merge_plan(conn), ChangeDetection(), None, None, None)
        self._window = MergeWindow(self.sessions, spec, self.ref.schema, plain=True)
        return True

    def _counts(self, merged: MergeCounts, dropped: int) -> Counts:
        """A merge's counts plus the rows ``dedupe_keys`` dropped (an update's repeated key
        counts as updated, a skip's as skipped)."""
        if self.conflict == "update":
            return Counts(
                inserted=merged.inserted,
                updated=merged.updated + dropped,
                skipped=merged.skipped,
                deduplicated=dropped,
            )
        return Counts(inserted=merged.inserted, skipped=merged.skipped + dropped, deduplicated=dropped)

    @property
    def stream(self) -> Callable[[Connection, pa.RecordBatchReader], None] | None:
        """Plain appends stream through one bulk call (see ``Execution._stream``)."""
        if self.conflict != "error" or self.disable_triggers:
            return None
        return self._stream

    def ingest_form(self, table: pa.Table) -> pa.Table:
        return self.backend.to_ingest(table, self.columns)

    def _stream(self, conn: Connection, reader: pa.RecordBatchReader) -> None:
        self.backend.begin_write(conn, self.ref)
        self.backend.begin_load(conn, self.ref, self.load)
        try:
            conn.ingest(self.ref, reader)
        finally:
            self.backend.end_load(conn, self.load)

    def reset(self) -> None:
        self.stage = None
        self._tables = {}

    def finish(self, conn: Connection) -> Counts | None:
        """Merge what the merge window holds (its counts), drop the stage."""
        counts = self._counts(self._window.flush(conn), 0) if self._window is not None else None
        if self.stage is not None:
            self.backend.drop_table(conn, self.stage)
            self.reset()
        return counts

    def close(self) -> None:
        """After the call's transaction ended: drop the merge window's shared stages."""
        if self._window is not None:
            window, self._window = self._window, None
            window.close()


def bulk_create(
    sessions: Sessions,
    ref: TableRef,
    data: Any,
    *,
    batch_size: int,
    conflict_resolution: str,
    conflict_fields: Sequence[str] | None,
    primary_key: Sequence[str] | str | None,
    rules: RuleOptions,
    policy: ErrorPolicy,
    run: RunOptions,
    monitoring: MetricsOptions,
    migration: MigrationOptions,
    progress: ProgressOptions,
    load: LoadOptions | None = None,
    streams: StreamOptions | None = None,
    memory: MemoryOptions | None = None,
    events: EventOptions | None = None,
    benchmark: BenchmarkOptions | None = None,
) -> BulkResult:
    check_choice("conflict_resolution", conflict_resolution, ConflictResolution)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise InvalidOptionValueError(f"batch_size must be a positive int, got {batch_size!r}")
    from bulkframe.normalize.streams import is_unbounded, open_stream

    load = load or LoadOptions()
    refused = [name for name in load.changed() if name not in sessions.backend.capabilities.load_options]
    if migration.disable_triggers and not sessions.backend.capabilities.triggers:
        refused.append("disable_triggers")  # every refusal in one message
    if refused:
        raise NotSupportedError(
            f"{', '.join(refused)} {'is' if len(refused) == 1 else 'are'} not supported on {sessions.backend.name}; "
            "docs/backends.md says what each load option means on each database (disable_triggers: only "
            "where a load can switch the table's triggers off inside its transaction)"
        )
    streams, memory = streams or StreamOptions(), memory or MemoryOptions()
    events, benchmark = events or EventOptions(), benchmark or BenchmarkOptions()
    options: dict[str, Any] = dict(
        batch_size=batch_size,
        conflict_resolution=conflict_resolution,
        conflict_fields=conflict_fields,
        primary_key=primary_key,
        rules=rules,
        policy=policy,
        run=run,
        monitoring=monitoring,
        migration=migration,
        progress=progress,
        memory=memory,
        load=load,
    )
    stream = open_stream(data, streams, batch_size) if streams.given or is_unbounded(data) else None
    if stream is not None and run.resumable:
        raise NotSupportedError(
            "resumable=True cannot resume a stream: its micro-batches are cut by time, so a rerun would "
            "cut them differently. Each micro-batch commits on its own (and its ledger row with it) anyway"
        )
    if run.resumable and memory.memory_limit is not None:
        raise NotSupportedError(
            "resumable=True cannot be combined with memory_limit: batch sizes follow the measured "
            "memory, so a rerun could cut the input into different batches than the run it resumes. "
            "Use batch_size alone for a resumable load"
        )
    if benchmark.benchmark_mode:
        from bulkframe.plan.benchmark import benchmarked

        if stream is not None or events.publish_events:
            raise InvalidOptionValueError(
                "benchmark_mode reads the input several times and rolls the timed runs back; it cannot "
                "be combined with a stream or with publish_events"
            )
        fresh = _fresh_source(data, memory)

        def once(clock: StageClock | None, limit: int | None, preset: dict[str, Any] | None) -> BulkResult:
            return _create(sessions, ref, fresh(), **options, clock=clock, rehearsal=limit, preset=preset)

        return benchmarked(once, benchmark, replayable=_replayable(data))
    if stream is not None:
        from bulkframe.plan.microbatch import run_stream

        live = stream
        return run_stream(
            lambda: _create(sessions, ref, live.source(), **options, events=events, stream=live), live
        )
    return _create(sessions, ref, open_source(data, lazy=memory.stream_input), **options, events=events)


def _fresh_source(data: Any, memory: MemoryOptions) -> Callable[[], Source]:
    return lambda: open_source(data, lazy=memory.stream_input)


def _replayable(data: Any) -> bool:
    from bulkframe.ops.upsert import replayable

    return replayable(data)


def _create(
    sessions: Sessions,
    ref: TableRef,
    source: Source,
    *,
    batch_size: int,
    conflict_resolution: str,
    conflict_fields: Sequence[str] | None,
    primary_key: Sequence[str] | str | None,
    rules: RuleOptions,
    policy: ErrorPolicy,
    run: RunOptions,
    monitoring: MetricsOptions,
    migration: MigrationOptions,
    progress: ProgressOptions,
    memory: MemoryOptions,
    load: LoadOptions,
    events: EventOptions | None = None,
    stream: RowStream | None = None,
    clock: StageClock | None = None,
    rehearsal: int | None = None,
    preset: dict[str, Any] | None = None,
) -> BulkResult:
    """One run of ``bulk_create`` over an opened source.  ``rehearsal`` (benchmark mode):
    write the first that many rows (all with ``-1``) in one transaction, then roll back."""
    from bulkframe.plan.events import Publisher
    from bulkframe.plan.memory import MemoryGovernor

    backend = sessions.backend
    publisher = Publisher.open(events, backend, operation="create", table=str(ref)) if events else None
    if migration.verify and conflict_resolution == "skip":
        raise InvalidOptionValueError(
            "verify_migration cannot check conflict_resolution='skip': skipped rows keep the table's "
            "values, so they would be reported as differences"
        )
    if run.workers > 1 and not backend.capabilities.concurrent_writers:
        raise NotSupportedError(
            f"parallel_batches/max_workers > 1 is not supported on {backend.name}: it allows one "
            "writer at a time. Use parallel_batches=1 (the default)."
        )
    pk = [primary_key] if isinstance(primary_key, str) else list(primary_key or ())
    quiet = rehearsal is not None
    op = OperationRun(
        "create",
        str(ref),
        policy=policy,
        progress=progress if not quiet else None,
        total=source.total,
        metrics=Metrics(monitoring) if monitoring.enabled and not quiet else None,
    )
    op.rejections = rejections_for(policy, memory)
    result = op.result
    result.metrics.update(preset or {})
    per_batch = (policy.per_batch or run.per_batch_commits or stream is not None) and not quiet
    governor = MemoryGovernor(memory, run.workers, batch_size, resize=stream is None)
    retries = policy.retries if policy.strategy == "retry_batch" else 0
    _check_pool(sessions, run.workers, run.connections)
    session = ConnectionLease(lambda: sessions.checkout(retries), sessions.checkout(retries))
    execution = Execution(
        policy,
        result,
        op.rejections,
        op.reporter,
        workers=run.workers if not quiet else 1,
        metrics=op.metrics,
        events=publisher,
        rehearsal=quiet,
    )
    ledger: Ledger | None = None
    created = False  # a table this call created outside its transaction (no transactional DDL)
    try:
        # take the write lock before reading (SQLite: a reader cannot wait for it later)
        session.call(policy, lambda conn: backend.begin_write(conn, ref))
        columns = session.call(policy, lambda conn: backend.reflect(conn, ref))
        hints: dict[str, Column] = {c.name: c for c in columns or ()}
        decided: dict[str, pa.DataType] = {}
        if columns is None:  # a new table: decide types from all the rows the source can show
            decided = source.infer_types(batch_size)
            hints.update((n, kind_of_arrow(pa.field(n, t))) for n, t in decided.items())
        chunks = governor.chunks(source.chunks(governor.read_rows, hints))
        if rehearsal is not None and rehearsal >= 0:
            chunks = _first_rows(chunks, rehearsal)
        if clock is not None:
            chunks = clock.iterate("normalize", chunks)
        first = next(chunks, None)
        if first is None:
            session.conn.commit()
            return op.finish()
        inferred = columns is None
        if columns is None:
            schema = pa.schema([pa.field(f.name, decided.get(f.name, f.type)) for f in first.table.schema])
            columns = infer_columns(schema, pk)
            new_columns = columns
            session.call(policy, lambda conn: backend.create_table(conn, ref, new_columns))
            created = not per_batch and not backend.capabilities.transactional_ddl
            hints.update((c.name, c) for c in columns)
            if per_batch:
                session.conn.commit()  # batches commit on their own; the table must exist for them
        elif pk and [c.name for c in columns if c.primary_key] != pk:
            raise SchemaError(
                f"primary_key={pk} given, but table {ref} exists with primary key "
                f"{[c.name for c in columns if c.primary_key]}; primary_key only applies when "
                "bulkframe creates the table"
            )
        by_name = {c.name: c for c in columns}
        keys = _conflict_keys(conflict_resolution, conflict_fields, columns, ref)
        if publisher is not None:
            publisher.keys = keys or [c.name for c in columns if c.primary_key]
        _check_required_present(by_name, first.table.column_names, ref)
        # every run whose batches commit separately keeps a ledger (rows written in the same
        # transaction as the batch): after a COMMIT whose answer was lost it tells whether the
        # batch landed, so counts stay true; a run that is not resumable removes it at the end
        if per_batch:
            ledger = session.call(
                policy,
                lambda conn: Ledger.open(
                    backend,
                    conn,
                    target=str(ref),
                    batch_size=batch_size,
                    checkpoint_file=run.checkpoint_file,
                    checkpoint_interval=run.checkpoint_interval,
                    resumable=run.resumable,
                ),
            )
            execution.ledger = ledger
        prepare = Preparer(
            by_name,
            table_name=str(ref),
            transformation_rules=rules.transformation_rules,
            validation_rules=rules.validation_rules if rules.validate else None,
            check_constraints=rules.validate,
            strict_cast=not per_batch and not rules.validation_rules,
            cast_hint=(
                f"bulkframe created table {ref} from the first {first.table.num_rows} row(s) of this "
                f"{source.description}; later rows must fit those column types. Create the table first with "
                "the types you want, or pass typed data (a DataFrame or Arrow table)"
            )
            if inferred and source.total is None
            else "",
            exact_cast=inferred and source.total is None,  # its decimal scales were guessed: never round
        )
        generated = [c.name for c in columns if c.primary_key and c.has_default]
        dropped_ids = generated if migration.preserve_ids is False else []
        given_ids = [c for c in generated if c in first.table.column_names and c not in dropped_ids]
        verify_key = keys or [c.name for c in columns if c.primary_key]
        if migration.verify and not verify_key:
            raise SchemaError(
                f"verify_migration needs a primary key or conflict_fields; table {ref} has neither"
            )
        reservoir = Reservoir(migration.sample, seed=0) if migration.verify else None
        source_chunks: Iterator[Chunk] = itertools.chain([first], chunks)
        if dropped_ids:
            source_chunks = (
                replace(c, table=c.table.drop_columns([n for n in dropped_ids if n in c.table.column_names]))
                for c in source_chunks
            )
        stage_prepare = prepare if clock is None else clock.wrap("rules", prepare)
        prepared = _prepared(source_chunks, stage_prepare, ledger, batch_size, result, reservoir)

        writers: list[CreateWriter] = []

        def writer() -> CreateWriter:
            made = CreateWriter(
                backend,
                ref,
                by_name,
                conflict_resolution,
                keys,
                migration.disable_triggers,
                load,
                # one transaction, counts per batch not needed at once: the merge window
                sessions=sessions if not per_batch and publisher is None else None,
            )
            writers.append(made)
            return made if clock is None else clock.writer(made)  # type: ignore[return-value]

        def spawn() -> tuple[ConnectionLease, CreateWriter]:
            return ConnectionLease(lambda: sessions.checkout(retries), sessions.checkout(retries)), writer()

        try:
            execution.run(session, prepared, writer(), per_batch=per_batch, spawn=spawn)
        finally:  # the transaction has ended (committed or rolled back): drop shared stages
            for made in writers:
                made.close()
        created = False  # the rows' transaction committed: the table stays, as where DDL is transactional
        if quiet:
            op.settle(execution.counts)
            op.rejections.close()
            return result
        if ledger is not None and run.auto_cleanup:
            ledger.finish(session.conn)
        for name in given_ids:  # explicit ids: the id generator must continue after them
            backend.advance_sequence(session.conn, ref, name)
            session.conn.commit()
        if reservoir is not None:
            _verify(sessions, session, ref, reservoir, by_name, verify_key, migration, result)
    except BaseException as exc:
        session.conn.rollback()
        if created and not result.batches_committed:  # the rollback did not undo the CREATE TABLE
            _drop_created(backend, sessions, session, ref)
        if ledger is not None:
            if run.resumable:
                ledger.mirror(force=True)
            else:  # nothing can resume a run without a checkpoint: forget its ledger rows
                _forget(sessions, session, ledger)
        op.settle(execution.counts)
        extras(result, governor, publisher, stream)
        op.report_metrics()
        op.failed(exc)
        raise
    finally:
        sessions.release(session.conn, discard=run.cleanup_connections)
    op.settle(execution.counts)
    result.committed_ranges.sort()
    extras(result, governor, publisher, stream)
    op.report_metrics()
    return op.finish()


def _drop_created(backend: Backend, sessions: Sessions, session: ConnectionLease, ref: TableRef) -> None:
    """Drop the table a failed call created (the rollback did not undo its CREATE TABLE),
    on the call's connection or, when that one is gone, on a fresh one."""
    try:
        backend.drop_table(session.conn, ref)
        session.conn.commit()
        return
    except Exception:
        log.info("dropping %s on the call's connection failed; trying a fresh one", ref, exc_info=True)
    try:
        with sessions.session() as conn:
            backend.drop_table(conn, ref)
    except Exception:  # the original error matters more
        log.warning("could not drop table %s that the failed call created", ref, exc_info=True)


def rejections_for(policy: ErrorPolicy, memory: MemoryOptions) -> Rejections:
    """The rejected-rows report; with ``spill_to_disk`` it spills (compressed) beyond a
    share of ``memory_limit`` (default 16 MiB)."""
    from bulkframe.plan.spill import Spill, spill_threshold

    return Rejections(
        policy.log_level,
        spill=Spill(memory.codec) if memory.spill_to_disk else None,
        spill_bytes=spill_threshold(memory.limit_bytes),
        compression=memory.codec,
    )


def _first_rows(chunks: Iterator[Chunk], n: int) -> Iterator[Chunk]:
    """The chunks holding the input's first ``n`` rows (the benchmark warm-up)."""
    for chunk in chunks:
        if chunk.offset >= n:
            return
        yield (
            chunk
            if chunk.offset + chunk.table.num_rows <= n
            else replace(chunk, table=chunk.table.slice(0, n - chunk.offset))
        )


def extras(
    result: BulkResult, governor: MemoryGovernor, publisher: Publisher | None, stream: RowStream | None
) -> None:
    """The memory, event and stream reports in ``result.metrics``."""
    if governor.limit is not None or governor.options.gc_interval:
        result.metrics["memory"] = governor.report()
    if publisher is not None:
        result.metrics["events_published"] = publisher.published
    if stream is not None:
        result.metrics["stream"] = stream.report()


def _check_pool(sessions: Sessions, workers: int, connections: int | None) -> None:
    """The call's writers each hold one of the Database's pooled connections at once."""
    pool = sessions.pool
    where = (
        f"this Database's pool holds at most {pool.capacity} connections (pool_size={pool.size}, "
        f"max_overflow={pool.max_overflow})"
    )
    if connections is not None and connections > pool.capacity:
        raise InvalidOptionValueError(
            f"connection_pool_size={connections} cannot be honoured: {where}; connect with "
            "bulkframe.connect(url, pool_size=..., max_overflow=...) or lower connection_pool_size"
        )
    if workers > pool.capacity:
        raise InvalidOptionValueError(
            f"{workers} concurrent writers (parallel_batches/max_workers) need {workers} connections, but "
            f"{where}; connect with bulkframe.connect(url, pool_size=..., max_overflow=...) or write with "
            "fewer workers"
        )


def _verify(
    sessions: Sessions,
    session: ConnectionLease,
    ref: TableRef,
    reservoir: Reservoir,
    columns: dict[str, Column],
    key: list[str],
    migration: MigrationOptions,
    result: BulkResult,
) -> None:
    """Compare the sampled written rows with the table; raise when they differ."""
    expected = reservoir.rows()
    if expected is None:
        return
    fields = (
        list(migration.fields)
        if migration.fields is not None
        else [c for c in expected.columns if c not in key]
    )
    unknown = [f for f in fields if f not in expected.columns]
    if unknown:
        raise SchemaError(f"verification_fields {unknown} are not columns of the written data")
    found = verify_rows(sessions, session.conn, ref, expected, columns, key, fields)
    session.conn.commit()
    result.verification = found
    result.metrics["verification"] = found.to_dict()
    if not found.ok:
        raise VerificationError(
            f"verification of {ref} failed: of {found.checked} sampled rows, {found.missing} are missing "
            f"and {found.mismatched} differ (see .verification.differences)",
            found,
        )


def _forget(sessions: Sessions, session: ConnectionLease, ledger: Ledger) -> None:
    """Best effort, after a failed run that cannot be resumed: delete its ledger rows, on the
    run's connection or, if that one is gone, a fresh one (a failure here never hides the
    run's own error)."""
    candidates: list[Callable[[], Connection]] = [lambda: session.conn, sessions.checkout]
    for conn_of in candidates:
        try:
            conn = conn_of()
            conn.rollback()
            ledger.finish(conn)
            if conn is not session.conn:
                sessions.release(conn)
            return
        except Exception:
            log.debug("could not remove the ledger rows of a failed run yet", exc_info=True)
    log.warning("the ledger rows of failed run %s could not be removed", ledger.run_key)


def _prepared(
    chunks: Iterator[Chunk],
    prepare: Callable[[Chunk], Prepared],
    ledger: Ledger | None,
    batch_size: int,
    result: BulkResult,
    reservoir: Reservoir | None = None,
) -> Iterator[Prepared]:
    """Prepare each chunk; with a ledger, skip or trim what an earlier run committed."""
    for prepared in _prepare_all(chunks, prepare, ledger, batch_size, result):
        if reservoir is not None:
            reservoir.add(prepared.table)
        yield prepared


def _prepare_all(
    chunks: Iterator[Chunk],
    prepare: Callable[[Chunk], Prepared],
    ledger: Ledger | None,
    batch_size: int,
    result: BulkResult,
) -> Iterator[Prepared]:
    for chunk in chunks:
        index = chunk.offset // batch_size if chunk.index is None else chunk.index
        if ledger is None:
            yield replace(prepare(chunk), index=index)
            continue
        fp = fingerprint(chunk.table)
        complete, ranges = ledger.check(index, fp)
        if complete:
            result.metrics["resumed_batches"] = result.metrics.get("resumed_batches", 0) + 1
            result.metrics["resumed_rows"] = result.metrics.get("resumed_rows", 0) + chunk.table.num_rows
            continue
        yield replace(prepare(chunk), index=index, fingerprint=fp, exclude=ranges)


def _conflict_keys(
    mode: str, fields: Sequence[str] | None, columns: list[Column], ref: TableRef
) -> list[str]:
    if mode == "error":
        if fields:
            raise InvalidOptionValueError(
                "conflict_fields is only used with conflict_resolution='skip' or 'update'"
            )
        return []
    if mode == "skip" and fields is not None and not list(fields):
        return []  # ON CONFLICT DO NOTHING: a row violating any unique constraint is skipped
    keys = list(fields or [c.name for c in columns if c.primary_key])
    if not keys:
        raise SchemaError(
            f"conflict_resolution={mode!r} needs conflict_fields, and table {ref} has no primary key to default to"
        )
    names = [c.name for c in columns]
    missing = [k for k in keys if k not in names]
    if missing:
        raise SchemaError(f"conflict_fields {missing} are not columns of {ref}; columns: {names}")
    return keys


def _check_required_present(columns: dict[str, Column], present: Sequence[str], ref: TableRef) -> None:
    """A NOT NULL column without a default that the input lacks fails every row: say so once."""
    absent = [
        c.name for c in columns.values() if not c.nullable and not c.has_default and c.name not in present
    ]
    if absent:
        raise SchemaError(
            f"table {ref} requires column(s) {absent} (NOT NULL, no default), but the input does not have them"
        )
