"""``bulk_upsert`` through the batch executor: for streams (one commit per micro-batch),
events after commit and ``memory_limit``.

Each batch is staged and merged by one ``INSERT … ON CONFLICT`` (the statement of
``ops/upsert.py``), inside :class:`~bulkframe.plan.executor.Execution`: the error
strategies, the batch ledger, progress, metrics and events apply per batch as they do for
``bulk_create``.  With ``error_strategy="stop"`` and a finite input the whole call is
still one transaction; a stream commits each micro-batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from bulkframe import filters
from bulkframe.backends.base import TableRef
from bulkframe.backends.statements import merge_from_stage
from bulkframe.errors import SchemaError
from bulkframe.normalize.dedupe import dedupe_keys
from bulkframe.ops._modify import analyze_stage, create_stage, fill_stage, reflect_existing, table_keys
from bulkframe.options import EventOptions, MemoryOptions
from bulkframe.plan.batch import Counts
from bulkframe.plan.executor import ConnectionLease, Execution
from bulkframe.plan.ledger import Ledger
from bulkframe.plan.run import OperationRun
from bulkframe.plan.spill import SeenKeys, Spill, spill_threshold
from bulkframe.result import BulkResult
from bulkframe.rules.prepare import Preparer
from bulkframe.types import Column

if TYPE_CHECKING:
    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions
    from bulkframe.normalize.sources import Source
    from bulkframe.normalize.streams import RowStream
    from bulkframe.options import ErrorPolicy, ProgressOptions, RuleOptions

log = logging.getLogger("bulkframe")


@dataclass
class UpsertWriter:
    """Stage one batch and merge it (the executor's ``Writer``)."""

    sessions: Sessions
    ref: TableRef
    columns: dict[str, Column]
    keys: list[str]
    target: Any
    mode: str
    insert_fields: Sequence[str] | None
    update_fields: Sequence[str] | None
    update_if: Any
    insert_if: Any
    dedupe: str
    #: keys of earlier batches (``dedupe="first"``/``"error"``), spilled with ``spill_to_disk``
    seen: SeenKeys | None = None
    stage: TableRef | None = None
    stage_t: Any = None
    names: list[str] | None = None

    def __call__(self, conn: Connection, table: pa.Table) -> Counts:
        from bulkframe.ops.upsert import _index_stage
        from bulkframe.ops.upsert_window import merge_fields

        self.sessions.backend.begin_write(conn, self.ref)
        inserted_cols, updated_cols = merge_fields(
            table.column_names, self.keys, self.insert_fields, self.update_fields
        )
        shaped, dropped = self._dedupe(table)
        lookup = bool(set(updated_cols) - set(inserted_cols))  # read from the stage by key
        fresh = self.stage is None or self.names != shaped.column_names
        if fresh:
            if self.stage is not None:
                self.sessions.backend.drop_table(conn, self.stage)
            self.names = shaped.column_names
            self.stage, self.stage_t = create_stage(
                conn, self.sessions, [self.columns[n] for n in self.names]
            )
            if lookup:
                _index_stage(conn, self.sessions, self.stage, self.keys)
        assert self.stage is not None
        fill_stage(conn, self.sessions, self.stage, shaped, self.columns, first=fresh)
        if lookup or not filters.is_empty(self.insert_if):
            analyze_stage(conn, self.sessions, self.stage)
        stage = self.stage_t
        insert_where = (
            None
            if filters.is_empty(self.insert_if)
            else filters.to_sql(self.insert_if, stage, backend=self.sessions.backend)
        )
        merged = merge_from_stage(
            conn,
            self.target,
            stage,
            inserted_cols,
            self.keys,
            mode=self.mode,
            update_columns=updated_cols,
            insert_where=insert_where,
            update_if=None if filters.is_empty(self.update_if) else self.update_if,
            staged_columns=self.names,
            staged=shaped.num_rows,
        )
        return Counts(
            inserted=merged.inserted,
            updated=merged.updated,
            skipped=merged.skipped + dropped,
            deduplicated=dropped,
        )

    def _dedupe(self, table: pa.Table) -> tuple[pa.Table, int]:
        """One row per key in the batch, and (``first``/``error``) none an earlier batch had."""
        import polars as pl

        from bulkframe.ops.upsert import _examples

        out, dropped = dedupe_keys(table, self.keys, keep="last" if self.dedupe == "last" else "first")
        if self.dedupe == "error" and dropped:
            raise SchemaError(
                f"duplicate keys {_examples(table, self.keys)} in unique_fields {self.keys} (dedupe='error'); "
                "use dedupe='last' or 'first'"
            )
        if self.dedupe == "last" or self.seen is None:
            return out, dropped
        frame = pl.from_arrow(out.select(self.keys))
        assert isinstance(frame, pl.DataFrame)
        hit = self.seen.hits(frame)
        if hit:
            if self.dedupe == "error":
                raise SchemaError(
                    f"duplicate keys in unique_fields {self.keys} across batches, e.g. "
                    f"{frame[hit[0]].row(0)} (dedupe='error')"
                )
            keep = ~pl.int_range(out.num_rows, eager=True).is_in(pl.Series(hit, dtype=pl.UInt32).implode())
            out, frame = out.filter(keep.to_arrow()), frame.filter(keep)
            dropped += len(hit)
        self.seen.add(frame)
        return out, dropped

    def reset(self) -> None:
        self.stage, self.stage_t, self.names = None, None, None

    def finish(self, conn: Connection) -> None:
        if self.stage is not None:
            self.sessions.backend.drop_table(conn, self.stage)
            self.reset()


def upsert_batches(
    sessions: Sessions,
    ref: TableRef,
    source: Source,
    *,
    keys_option: Sequence[str] | str | None,
    update_fields: Sequence[str] | None,
    insert_fields: Sequence[str] | None,
    mode: str,
    update_if: Any,
    insert_if: Any,
    dedupe: str,
    create_unique_index: bool,
    batch_size: int,
    rules: RuleOptions,
    policy: ErrorPolicy,
    progress: ProgressOptions,
    memory: MemoryOptions,
    events: EventOptions,
    stream: RowStream | None = None,
) -> BulkResult:
    """Run one upsert through the executor; see the module doc."""
    from bulkframe.ops.create import _forget, _prepared, extras, rejections_for
    from bulkframe.ops.upsert import _ensure_unique
    from bulkframe.plan.events import Publisher
    from bulkframe.plan.memory import MemoryGovernor

    backend = sessions.backend
    publisher = Publisher.open(events, backend, operation="upsert", table=str(ref))
    per_batch = policy.per_batch or stream is not None
    op = OperationRun("upsert", str(ref), policy=policy, progress=progress, total=source.total)
    op.rejections = rejections_for(policy, memory)
    result = op.result
    retries = policy.retries if policy.strategy == "retry_batch" else 0
    session = ConnectionLease(lambda: sessions.checkout(retries), sessions.checkout(retries))
    execution = Execution(policy, result, op.rejections, op.reporter, events=publisher)
    governor = MemoryGovernor(memory, 1, batch_size, resize=stream is None)
    ledger: Ledger | None = None
    writer: UpsertWriter | None = None
    try:
        session.call(policy, lambda conn: backend.begin_write(conn, ref))
        columns = session.call(policy, lambda conn: reflect_existing(sessions, conn, ref))
        by_name = {c.name: c for c in columns}
        keys = table_keys(columns, keys_option, option="unique_fields", ref=ref)
        if not _ensure_unique(session.conn, sessions, ref, keys, create_unique_index):
            raise SchemaError(
                f"unique_fields {list(keys)}: table {ref} has no primary key, unique constraint or unique "
                "index on exactly these columns; streamed upserts (stream_*, events, memory_limit, "
                "spill_to_disk) merge by ON CONFLICT and need one. Create it or pass create_unique_index=True"
            )
        if per_batch:
            session.conn.commit()  # batches commit on their own; the index must exist for them
            ledger = session.call(
                policy,
                lambda conn: Ledger.open(
                    backend,
                    conn,
                    target=str(ref),
                    batch_size=batch_size,
                    checkpoint_file=None,
                    checkpoint_interval=None,
                    resumable=False,
                ),
            )
            execution.ledger = ledger
        if publisher is not None:
            publisher.keys = keys
        prepare = Preparer(
            by_name,
            table_name=str(ref),
            transformation_rules=rules.transformation_rules,
            validation_rules=rules.validation_rules if rules.validate else None,
            check_constraints=rules.validate,
            strict_cast=not per_batch and not rules.validation_rules,
        )
        chunks = governor.chunks(source.chunks(governor.read_rows, by_name))
        prepared = _prepared(chunks, prepare, ledger, batch_size, result)
        writer = UpsertWriter(
            sessions,
            ref,
            by_name,
            keys,
            backend.sa_table(ref, columns),
            mode,
            insert_fields,
            update_fields,
            update_if,
            insert_if,
            dedupe,
            seen=None
            if dedupe == "last"
            else SeenKeys(
                keys,
                Spill(memory.codec, prefix="bulkframe-keys-") if memory.spill_to_disk else None,
                spill_threshold(memory.limit_bytes),
            ),
        )
        execution.run(session, prepared, writer, per_batch=per_batch)
        if ledger is not None:
            ledger.finish(session.conn)
    except BaseException as exc:
        session.conn.rollback()
        if ledger is not None:
            _forget(sessions, session, ledger)
        op.settle(execution.counts)
        extras(result, governor, publisher, stream)
        op.failed(exc)
        raise
    finally:
        sessions.release(session.conn)
        if writer is not None and writer.seen is not None:
            writer.seen.close()
    op.settle(execution.counts)
    result.committed_ranges.sort()
    extras(result, governor, publisher, stream)
    return op.finish()
