"""``bulk_upsert``: stage each batch by COPY, then the staged merge
(:mod:`bulkframe.ops.staged_merge`: ``UPDATE … FROM`` + anti-join ``INSERT``, or the
database's own upsert statement where it is faster; :mod:`bulkframe.ops.upsert_window`
says how batches are staged, pipelined on a second connection on PostgreSQL).

Modes (``conflict_resolution``):

* ``"update"`` / ``"source_wins"`` — existing rows take ``update_fields`` [where ``update_if``];
* ``"skip"`` / ``"target_wins"`` — existing rows are left alone;
* ``"newest_wins"`` — existing rows are updated when the incoming ``sync_timestamp_field``
  is later than the stored one.

Duplicate keys in the input are resolved before the merge (``dedupe``: ``"last"``,
``"first"`` or ``"error"``).  Counts are exact and computed in the same transaction.
Synchronisation (``sync_mode``, change detection, audit) is :mod:`bulkframe.ops.sync`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from bulkframe import filters
from bulkframe.backends.base import TableRef
from bulkframe.errors import (
    InvalidOptionValueError,
    NotSupportedError,
    SafetyLimitError,
    SchemaError,
    TransientError,
    ValidationError,
    check_choice,
)
from bulkframe.normalize import open_source
from bulkframe.normalize.dedupe import dedupe_keys
from bulkframe.normalize.streams import is_unbounded
from bulkframe.ops import sync as syncing
from bulkframe.ops._modify import (
    DEFAULT_ROW_BATCH,
    check_batch_size,
    check_flag,
    reflect_existing,
    table_keys,
)
from bulkframe.ops.audit import Audit
from bulkframe.ops.change_filter import ChangeFilter
from bulkframe.ops.staged_merge import StagedMerge
from bulkframe.ops.upsert_window import MergeSpec, MergeWindow, merge_fields
from bulkframe.options import (
    AuditOptions,
    ChangeDetection,
    Dedupe,
    DeleteSafety,
    ErrorPolicy,
    EventOptions,
    MemoryOptions,
    ProgressOptions,
    RuleOptions,
    StreamOptions,
    SyncOptions,
    UpsertConflictResolution,
)
from bulkframe.plan.run import OperationRun
from bulkframe.result import BulkResult
from bulkframe.rules.prepare import Preparer
from bulkframe.types import Column

if TYPE_CHECKING:
    import polars as pl

    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions
    from bulkframe.backends.statements import MergeCounts

log = logging.getLogger("bulkframe")

CONDITIONS = ("update_if", "insert_if")


def bulk_upsert(
    sessions: Sessions,
    ref: TableRef,
    data: Any,
    *,
    unique_fields: Sequence[str] | str | None,
    update_fields: Sequence[str] | None,
    insert_fields: Sequence[str] | None,
    conflict_resolution: str,
    upsert_conditions: Mapping[str, Any] | None,
    dedupe: str,
    create_unique_index: bool,
    batch_size: int | None,
    rules: RuleOptions | None = None,
    policy: ErrorPolicy | None = None,
    progress: ProgressOptions | None = None,
    sync: SyncOptions | None = None,
    changes: ChangeDetection | None = None,
    audit: AuditOptions | None = None,
    safety: DeleteSafety | None = None,
    streams: StreamOptions | None = None,
    memory: MemoryOptions | None = None,
    events: EventOptions | None = None,
) -> BulkResult:
    check_choice("conflict_resolution", conflict_resolution, UpsertConflictResolution)
    sync, changes = sync or SyncOptions(), changes or ChangeDetection()
    audit, safety = audit or AuditOptions(), safety or DeleteSafety()
    check_choice("dedupe", dedupe, Dedupe)
    check_flag("create_unique_index", create_unique_index)
    check_batch_size(batch_size)
    conditions = dict(upsert_conditions or {})
    wrong = [k for k in conditions if k not in CONDITIONS]
    if wrong:
        raise InvalidOptionValueError(
            f"upsert_conditions: unknown key(s) {wrong}; valid: {', '.join(CONDITIONS)}"
        )
    update_if, insert_if = conditions.get("update_if"), conditions.get("insert_if")
    if conflict_resolution == "skip" and not filters.is_empty(update_if):
        raise InvalidOptionValueError("upsert_conditions['update_if'] needs conflict_resolution='update'")
    if conflict_resolution in ("skip", "target_wins") and not filters.is_empty(update_if):
        raise InvalidOptionValueError("upsert_conditions['update_if'] needs existing rows to be updated")
    newest = sync.sync_timestamp_field if conflict_resolution == "newest_wins" else None
    resolved = "skip" if conflict_resolution in ("skip", "target_wins") else "update"
    mode = "skip" if update_fields is not None and len(update_fields) == 0 else resolved
    rules = rules or RuleOptions()
    policy = policy or ErrorPolicy()
    backup = syncing.check_sync_options(sync, changes, safety, conflict=mode, strategy=policy.strategy)
    if policy.strategy == "retry_batch" and not replayable(data):
        raise InvalidOptionValueError(
            f"error_strategy='retry_batch' retries the whole upsert (it is one transaction), so it reads the "
            f"input again; a {type(data).__name__} can be read only once. Pass a list, a DataFrame, an Arrow "
            "table or a file path, or use error_strategy='stop'/'continue'"
        )
    progress = progress or ProgressOptions()
    streams, memory, events = streams or StreamOptions(), memory or MemoryOptions(), events or EventOptions()
    if (
        streams.given
        or is_unbounded(data)
        or events.publish_events
        or memory.memory_limit is not None
        or memory.spill_to_disk
    ):
        _refuse_sync_options_when_streamed(sync, changes, audit, safety, conflict_resolution)
        return _through_executor(
            sessions,
            ref,
            data,
            keys_option=unique_fields,
            update_fields=update_fields,
            insert_fields=insert_fields,
            mode=mode,
            update_if=update_if,
            insert_if=insert_if,
            dedupe=dedupe,
            create_unique_index=create_unique_index,
            batch_size=batch_size or DEFAULT_ROW_BATCH,
            rules=rules,
            policy=policy,
            progress=progress,
            streams=streams,
            memory=memory,
            events=events,
        )
    source = open_source(data, lazy=memory.stream_input)
    attempt = 0
    while True:
        op = OperationRun(
            "upsert", str(ref), policy=policy, progress=progress, total=source.total, dry_run=safety.dry_run
        )
        result = op.result
        try:
            from bulkframe.ops.delta import run_delta

            (run_delta if sync.sync_mode == "delta" else _run)(
                sessions,
                ref,
                source,
                op,
                rules,
                keys_option=unique_fields,
                update_fields=update_fields,
                insert_fields=insert_fields,
                mode=mode,
                update_if=update_if,
                insert_if=insert_if,
                dedupe=dedupe,
                create_unique_index=create_unique_index,
                batch_size=batch_size,
                newest=newest,
                sync=sync,
                changes=changes,
                audit=audit,
                safety=safety,
                backup=backup,
            )
        except TransientError as exc:
            if policy.strategy == "retry_batch" and attempt < policy.retries:
                # the transaction rolled back whole: run the call again from the start, with
                # fresh counts (nothing of the failed attempt is counted)
                op.reporter.close()
                attempt += 1
                delay = policy.delay(attempt)
                log.warning(
                    "bulk_upsert into %s: transient error (%s); retry %d/%d of the whole call in %.1fs",
                    ref,
                    str(exc).splitlines()[0],
                    attempt,
                    policy.retries,
                    delay,
                )
                time.sleep(delay)
                continue
            _failed(exc, op, attempt)
            raise
        except BaseException as exc:
            _failed(exc, op, attempt)
            raise
        break
    if attempt:
        result.metrics["retries"] = attempt
    result.failure_count = op.rejections.count
    result.success_count = (
        result.inserted + result.updated + result.skipped + result.unchanged + result.deleted
    )
    result.failure_count += result.not_found
    return op.finish()


def _through_executor(
    sessions: Sessions,
    ref: TableRef,
    data: Any,
    *,
    streams: StreamOptions,
    memory: MemoryOptions,
    **kwargs: Any,
) -> BulkResult:
    """Streams, events and memory limits: batches through the executor (``upsert_batches``)."""
    from bulkframe.normalize.streams import open_stream
    from bulkframe.ops.upsert_batches import upsert_batches
    from bulkframe.plan.microbatch import run_stream

    if not (streams.given or is_unbounded(data)):
        source = open_source(data, lazy=memory.stream_input)
        return upsert_batches(sessions, ref, source, memory=memory, **kwargs)
    stream = open_stream(data, streams, kwargs["batch_size"])
    return run_stream(
        lambda: upsert_batches(sessions, ref, stream.source(), memory=memory, stream=stream, **kwargs), stream
    )


def _refuse_sync_options_when_streamed(
    sync: SyncOptions, changes: ChangeDetection, audit: AuditOptions, safety: DeleteSafety, conflict: str
) -> None:
    """Streams, events and memory limits run per-batch transactions through the executor,
    which has no sync, change detection, audit or dry run (yet): refuse them by name."""
    given = [
        name
        for name, on in (
            ("sync_mode", sync.sync_mode is not None),
            ("detect_changes", changes.detect_changes),
            ("ignore_fields", changes.ignore_fields is not None),
            ("audit_sync", audit.audit_sync),
            ("dry_run", safety.dry_run),
            (f"conflict_resolution={conflict!r}", conflict == "newest_wins"),
        )
        if on
    ]
    if given:
        raise NotSupportedError(
            f"{', '.join(given)} cannot be combined with streaming, events, memory_limit or spill_to_disk "
            "(those write batch by batch); use one or the other"
        )


def replayable(data: Any) -> bool:
    """Whether ``open_source(data)`` can be read more than once (a retry reads it again)."""
    if isinstance(data, (str, os.PathLike, list, tuple, pa.Table, pa.RecordBatch)):
        return True
    module = type(data).__module__.split(".")[0]
    return module in ("polars", "pandas") and type(data).__name__ in ("DataFrame", "LazyFrame")


def _failed(exc: BaseException, op: OperationRun, attempt: int) -> None:
    """Book a failed (rolled-back) call before the error propagates."""
    result = op.result
    result.inserted = result.updated = result.skipped = result.unchanged = result.deleted = 0  # rolled back
    result.not_found = 0
    result.success_count, result.failure_count = 0, result.records_processed
    if attempt:
        result.metrics["retries"] = attempt
    op.failed(exc)


def _run(
    sessions: Sessions,
    ref: TableRef,
    source: Any,
    op: OperationRun,
    rules: RuleOptions,
    *,
    keys_option: Sequence[str] | str | None,
    update_fields: Sequence[str] | None,
    insert_fields: Sequence[str] | None,
    mode: str,
    update_if: Any,
    insert_if: Any,
    dedupe: str,
    create_unique_index: bool,
    batch_size: int | None,
    newest: str | None,
    sync: SyncOptions,
    changes: ChangeDetection,
    audit: AuditOptions,
    safety: DeleteSafety,
    backup: Any,
) -> None:
    backend = sessions.backend
    unique_fields = keys_option
    result, policy, rejections, reporter = op.result, op.policy, op.rejections, op.reporter
    failed = False
    with contextlib.ExitStack() as cleanup, sessions.session(lock=ref, commit=False) as conn:
        columns = reflect_existing(sessions, conn, ref)
        by_name = {c.name: c for c in columns}
        keys = table_keys(columns, unique_fields, option="unique_fields", ref=ref)
        indexed = _ensure_unique(conn, sessions, ref, keys, create_unique_index)
        syncing.check_fields_exist(changes, by_name, ref)
        target = backend.sa_table(ref, columns)
        if newest is not None:
            syncing.timestamp_column(by_name, newest, ref, "conflict_resolution='newest_wins'")
        tracker = (
            _Incremental(sessions, conn, ref, by_name, sync) if sync.sync_mode == "incremental" else None
        )
        recorder = (
            Audit(sessions, conn, TableRef(audit.audit_table, ref.schema), ref, audit.audit_level)
            if audit.audit_sync
            else None
        )
        plan = StagedMerge(
            backend,
            ref,
            target,
            by_name,
            keys,
            mode=mode,
            indexed=indexed,
            newest=newest,
            update_if=update_if,
            audit=recorder,
        )
        key_stage = syncing.KeyStage(keys) if sync.sync_mode == "full" else None
        seen: pl.DataFrame | None = None
        spec = MergeSpec(plan, changes, insert_fields, update_fields, insert_if)
        equal_rows = ChangeFilter.open(sessions, spec, mode=mode, dedupe=dedupe)
        if equal_rows is not None:
            cleanup.callback(equal_rows.close)
        # what the pipelined path merges by ON CONFLICT per batch: no change detection (compare
        # is set per merge), conditions or column subsets (an update column read from the
        # stage by key would scan the unindexed stage once per row)
        plain = (
            plan.plain
            and not changes.detect_changes
            and insert_fields is None
            and filters.is_empty(update_if)
            and filters.is_empty(insert_if)
        )
        window = MergeWindow(sessions, spec, ref.schema, plain=plain)
        cleanup.callback(window.close)  # after this transaction has ended (ExitStack order)

        prepare = Preparer(
            by_name,
            table_name=str(ref),
            transformation_rules=rules.transformation_rules,
            validation_rules=rules.validation_rules if rules.validate else None,
            check_constraints=rules.validate,
            strict_cast=policy.strategy == "stop" and not rules.validation_rules,
        )
        for chunk in source.chunks(batch_size or DEFAULT_ROW_BATCH, by_name):  # typed: CSV reads as the table
            prepared = prepare(chunk)
            result.batches += 1
            result.records_processed += prepared.rows
            if prepared.rejected is not None:
                rejections.add(prepared.rejected)
                failed = failed or policy.strategy == "stop"
                if policy.max_errors is not None and rejections.count > policy.max_errors:
                    raise SafetyLimitError(
                        f"max_errors={policy.max_errors} exceeded: {rejections.count} rows rejected; "
                        "nothing was written (bulk_upsert is one transaction)"
                    )
            reporter.advance(prepared.rows, prepared.rows - prepared.rejected_count, prepared.rejected_count)
            if failed:
                continue  # check the rest for the full report; write nothing
            shaped = prepared.table
            merge_fields(shaped.column_names, keys, insert_fields, update_fields)  # checked before any write
            if newest is not None and newest not in shaped.column_names:
                raise SchemaError(f"conflict_resolution='newest_wins' needs {newest!r} in the input")
            if tracker is not None:
                shaped, dropped = tracker.filter(shaped)
                result.skipped += dropped
            if key_stage is not None:
                key_stage.add(conn, sessions, shaped, by_name)  # every input key, before dedupe
            shaped, dropped, seen = _dedupe(shaped, keys, dedupe, seen, chunk.offset)
            result.deduplicated += dropped
            result.skipped += dropped
            if equal_rows is not None:
                # rows certainly equal to the stored ones are unchanged: not staged at all
                # (the batches come back once compared, in order; a plain upsert has no filter)
                _stage_compared(conn, result, window, equal_rows.push(conn, shaped), by_name)
                continue
            _book(result, window.add(conn, shaped, by_name))
        if failed:
            raise ValidationError(
                f"{rejections.count} row(s) rejected; nothing was written (error_strategy='stop'). "
                "See .errors, or use error_strategy='continue' to write the valid rows."
            )
        if equal_rows is not None:
            _stage_compared(conn, result, window, equal_rows.finish(), by_name)
            result.metrics["change_filter"] = equal_rows.metrics()
        _book(result, window.flush(conn))
        if key_stage is not None:
            syncing.delete_absent(
                sessions, conn, ref, target, columns, keys, key_stage, sync, safety, backup, recorder, result
            )
        if tracker is not None:
            tracker.finish(result)
        if recorder is not None and not recorder.per_row:
            recorder.summary(
                result, {"sync_mode": sync.mode, "high_water_mark": syncing.mark_text(result.high_water_mark)}
            )
        if safety.dry_run:
            conn.rollback()
            return
        conn.commit()
        result.batches_committed = result.batches


def _book(result: BulkResult, merged: MergeCounts) -> None:
    result.inserted += merged.inserted
    result.updated += merged.updated
    result.skipped += merged.skipped
    result.unchanged += merged.unchanged


def _stage_compared(
    conn: Connection,
    result: BulkResult,
    window: MergeWindow,
    compared: Sequence[tuple[pa.Table, int]],
    by_name: Mapping[str, Column],
) -> None:
    """Stage what the change filter kept of each compared batch; count what it dropped."""
    for kept, same in compared:
        result.unchanged += same
        if kept.num_rows or not same:
            _book(result, window.add(conn, kept, by_name))


class _Incremental:
    """The incremental-sync filter: its bound, and the latest timestamp seen."""

    def __init__(
        self,
        sessions: Sessions,
        conn: Connection,
        ref: TableRef,
        by_name: Mapping[str, Column],
        sync: SyncOptions,
    ) -> None:
        self.field = sync.sync_timestamp_field
        self.column = syncing.timestamp_column(by_name, self.field, ref, "sync_mode='incremental'")
        self.name = sync.sync_name or str(ref)
        self.ref = ref
        self.state = (
            syncing.SyncState(sessions, conn, TableRef(sync.sync_state_table, ref.schema))
            if sync.sync_state_table is not None
            else None
        )
        given = sync.last_sync_timestamp
        option = "last_sync_timestamp"
        if given is None and self.state is not None:
            given, option = self.state.read(self.name), f"the mark kept in {sync.sync_state_table}"
        self.bound = syncing.parse_mark(given, self.column, option=option)
        self.latest: Any = None
        self.dropped = 0

    def filter(self, table: pa.Table) -> tuple[pa.Table, int]:
        if self.field not in table.column_names:
            raise SchemaError(
                f"sync_mode='incremental' needs the change timestamp {self.field!r} in the input"
            )
        kept, dropped, latest = syncing.newer_rows(table, self.field, self.bound)
        if latest is not None and (self.latest is None or latest > self.latest):
            self.latest = latest
        self.dropped += dropped
        return kept, dropped

    def finish(self, result: BulkResult) -> None:
        marks = [m for m in (self.bound, self.latest) if m is not None]
        result.high_water_mark = max(marks) if marks else None
        result.metrics["sync"] = {
            "mode": "incremental",
            "since": self.bound,
            "not_newer": self.dropped,
            "high_water_mark": result.high_water_mark,
        }
        if self.state is not None:
            self.state.write(self.name, str(self.ref), syncing.mark_text(result.high_water_mark))


def _dedupe(
    table: pa.Table,
    keys: Sequence[str],
    dedupe: str,
    seen: pl.DataFrame | None,
    offset: int,
) -> tuple[pa.Table, int, pl.DataFrame | None]:
    """One row per key in the batch, and (``first``/``error``) none seen in earlier ones."""
    import polars as pl

    out, dropped = dedupe_keys(table, keys, keep="last" if dedupe == "last" else "first")
    if dedupe == "error" and dropped:
        raise SchemaError(
            f"rows {offset}..{offset + table.num_rows - 1}: duplicate keys {_examples(table, keys)} "
            f"in unique_fields {list(keys)} (dedupe='error'); use dedupe='last' or 'first'"
        )
    if dedupe == "last":
        return out, dropped, None
    frame = pl.from_arrow(out.select(list(keys)))
    assert isinstance(frame, pl.DataFrame)
    if seen is not None:
        hit = frame.with_row_index("__bf_i").join(seen, on=list(keys), how="semi")["__bf_i"]
        if hit.len():
            if dedupe == "error":
                raise SchemaError(
                    f"duplicate keys in unique_fields {list(keys)} across batches, e.g. "
                    f"{frame[int(hit[0])].row(0)} (dedupe='error')"
                )
            mask = ~pl.int_range(out.num_rows, eager=True).is_in(hit.implode())
            out = out.filter(mask.to_arrow())
            frame = frame.filter(mask)
            dropped += hit.len()
    seen = frame if seen is None else pl.concat([seen, frame])
    return out, dropped, seen


def _examples(table: pa.Table, keys: Sequence[str]) -> list[Any]:
    import polars as pl

    frame = pl.from_arrow(table.select(list(keys)))
    assert isinstance(frame, pl.DataFrame)
    dups = frame.filter(frame.is_duplicated()).unique(maintain_order=True).head(5)
    return [r[0] if len(r) == 1 else r for r in dups.rows()]


def _ensure_unique(
    conn: Connection, sessions: Sessions, ref: TableRef, keys: Sequence[str], create: bool
) -> bool:
    """Whether a unique index covers exactly ``keys`` (created when ``create``).  Without
    one the merge still works, under a table lock (:mod:`bulkframe.ops.staged_merge`)."""
    if any(set(k) == set(keys) for k in sessions.backend.unique_keys(conn, ref)):
        return True
    if not create:
        return False
    q = sessions.backend.quote
    cols = ", ".join(q(k) for k in keys)
    digest = hashlib.sha1("\0".join([str(ref), *keys]).encode()).hexdigest()[:12]
    conn.run(f"CREATE UNIQUE INDEX {q('bf_uq_' + digest)} ON {sessions.backend.qualified(ref)} ({cols})")
    return True


def _index_stage(conn: Connection, sessions: Sessions, stage: TableRef, keys: Sequence[str]) -> None:
    """An index on the stage's key columns (the streamed upsert's ON CONFLICT reads
    update-only columns from the stage by key); the backend's hook (MySQL: none, since
    CREATE INDEX would commit)."""
    sessions.backend.index_stage(conn, stage, keys)
