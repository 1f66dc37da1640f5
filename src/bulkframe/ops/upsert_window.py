"""How ``bulk_upsert`` (and ``bulk_create`` with a conflict resolution) stages its
batches and hands them to the staged merge.

* :class:`StagedWindow`: consecutive batches with the same columns go into one temporary
  stage in the writing transaction (each row tagged with its batch number) and are merged
  by one pass, or one pass per batch when a key repeats across them.
* :class:`PipelinedWindow` (backends with ``capabilities.pipelined_stages``, PostgreSQL;
  plain merges, from a call's second batch on: :class:`MergeWindow` switches):
  each batch is copied into its own shared ``UNLOGGED`` stage by a second connection in a
  helper thread while the writing transaction merges the batch before it, so the server
  copies one batch and merges another at the same time.  Merges still run one after
  another, in input order, in the one writing transaction; the stages are dropped when
  that transaction has ended (its statements hold locks on them until then).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from bulkframe import filters
from bulkframe.backends.base import TableRef
from bulkframe.backends.statements import MergeCounts
from bulkframe.errors import SchemaError
from bulkframe.ops import sync as syncing
from bulkframe.ops._modify import analyze_stage, create_stage, fill_stage
from bulkframe.ops._rows import BATCH, all_distinct
from bulkframe.types import Column

if TYPE_CHECKING:
    import sqlalchemy as sa

    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions
    from bulkframe.ops.staged_merge import StagedMerge
    from bulkframe.options import ChangeDetection

log = logging.getLogger("bulkframe")

#: No rows merged.
NOTHING = MergeCounts(0, 0, 0)


def merge_fields(
    names: Sequence[str],
    keys: Sequence[str],
    insert_fields: Sequence[str] | None,
    update_fields: Sequence[str] | None,
) -> tuple[list[str], list[str]]:
    """Columns to insert and to update, checked against the input's columns."""
    missing_keys = [k for k in keys if k not in names]
    if missing_keys:
        raise SchemaError(f"unique_fields {missing_keys} are missing from the input; columns: {list(names)}")
    inserted = list(insert_fields) if insert_fields is not None else list(names)
    updated = list(update_fields) if update_fields is not None else [n for n in names if n not in keys]
    for option, chosen in (("insert_fields", inserted), ("update_fields", updated)):
        absent = [c for c in chosen if c not in names]
        if absent:
            raise SchemaError(f"{option} {absent} are not in the input; input columns: {list(names)}")
    if [k for k in keys if k not in inserted]:
        raise SchemaError(f"insert_fields must include the unique_fields {list(keys)}")
    if set(updated) & set(keys):
        raise SchemaError(
            f"update_fields cannot include the unique_fields {sorted(set(updated) & set(keys))}"
        )
    return inserted, updated


@dataclass(frozen=True)
class MergeSpec:
    """What every merge of one call shares: the plan and the column options."""

    plan: StagedMerge
    changes: ChangeDetection
    insert_fields: Sequence[str] | None
    update_fields: Sequence[str] | None
    insert_if: Any


def _merge(
    conn: Connection,
    sessions: Sessions,
    spec: MergeSpec,
    stage: TableRef,
    stage_t: sa.Table,
    names: Sequence[str],
    sizes: Sequence[int],
    passes: Sequence[int | None],
) -> MergeCounts:
    """Merge the stage's rows (``passes``: ``[None]`` for all at once, else the batch
    numbers one by one); the counts of all passes."""
    plan = spec.plan
    inserted_cols, updated_cols = merge_fields(names, plan.keys, spec.insert_fields, spec.update_fields)
    plan.compare = syncing.compared_fields(
        spec.changes, syncing.without_ignored(spec.changes, updated_cols), names
    )
    updated_cols = syncing.without_ignored(spec.changes, updated_cols)
    insert_where = None
    if not filters.is_empty(spec.insert_if):
        analyze_stage(conn, sessions, stage)
        insert_where = filters.to_sql(spec.insert_if, stage_t, backend=sessions.backend)
    total = MergeCounts(0, 0, 0)
    for i in passes:
        counts = plan.apply(
            conn,
            stage_t,
            inserted=inserted_cols,
            updated=updated_cols,
            staged_columns=list(names),
            staged=sum(sizes) if i is None else sizes[i],
            stage_where=None if i is None else stage_t.c[BATCH] == i,
            insert_where=insert_where,
        )
        total = _plus(total, counts)
    return total


def _plus(a: MergeCounts, b: MergeCounts) -> MergeCounts:
    return MergeCounts(
        a.inserted + b.inserted, a.updated + b.updated, a.skipped + b.skipped, a.unchanged + b.unchanged
    )


class StagedWindow:
    """Consecutive batches with the same columns, staged together (each row tagged with
    its batch number) and merged by ONE pass — or, when a key repeats across the
    batches (``dedupe="last"`` keeps one per batch), by one pass per batch, in order."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        self._reset()

    def _reset(self) -> None:
        self.names: list[str] = []
        self.key_tables: list[pa.Table] = []
        self.stage: TableRef | None = None
        self.stage_t: Any = None

    def add(
        self,
        conn: Connection,
        sessions: Sessions,
        spec: MergeSpec,
        shaped: pa.Table,
        by_name: Mapping[str, Column],
    ) -> MergeCounts:
        """Stage ``shaped``; the counts of the batches merged now (other columns than the
        staged ones': those are merged first)."""
        merged = NOTHING
        if self.names and shaped.column_names != self.names:
            merged = self.flush(conn, sessions, spec)
        columns = {**by_name, BATCH: Column(BATCH, "int32")}
        if self.stage is None:
            self.names = shaped.column_names
            self.stage, self.stage_t = create_stage(
                conn, sessions, [columns[n] for n in [*self.names, BATCH]]
            )
        number = pa.repeat(pa.scalar(len(self.key_tables), pa.int32()), shaped.num_rows)
        fill_stage(conn, sessions, self.stage, shaped.append_column(BATCH, number), columns, first=True)
        self.key_tables.append(shaped.select(self.keys))
        return merged

    @property
    def batches(self) -> int:
        """Batches staged and not merged yet."""
        return len(self.key_tables)

    def flush(self, conn: Connection, sessions: Sessions, spec: MergeSpec) -> MergeCounts:
        """Merge every staged batch; their counts."""
        if self.stage is None:
            return NOTHING
        sizes = [t.num_rows for t in self.key_tables]
        keys = [
            pa.chunked_array(
                [c for t in self.key_tables for c in t.column(k).chunks],
                self.key_tables[0].schema.field(k).type,
            )
            for k in self.keys
        ]
        passes: list[int | None] = (
            [None] if len(sizes) == 1 or all_distinct(keys) else list(range(len(sizes)))
        )
        merged = _merge(conn, sessions, spec, self.stage, self.stage_t, self.names, sizes, passes)
        sessions.backend.drop_table(conn, self.stage)
        self._reset()
        return merged

    def close(self) -> None:
        """Nothing to release: the stage is temporary, dropped with the connection's."""


@dataclass(frozen=True)
class _Staged:
    ref: TableRef
    table: sa.Table
    names: list[str]
    rows: int


class PipelinedWindow:
    """Each batch staged by a second connection while the writer merges the previous one.

    At most one batch is being staged at a time; a batch's merge starts only when its
    stage is complete and committed (so the writing transaction sees it), and the merges
    run in input order.  :meth:`close` (after the writing transaction ended) drops every
    stage this window made, also when the call failed."""

    def __init__(self, sessions: Sessions, helper: Connection, schema: str | None) -> None:
        self.sessions = sessions
        self.helper = helper
        self.schema = schema
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bf-stage")
        self._pending: Future[_Staged] | None = None
        self._made: list[TableRef] = []
        self._created: TableRef | None = None

    @classmethod
    def open(
        cls, sessions: Sessions, shaped: pa.Table, by_name: Mapping[str, Column], schema: str | None
    ) -> PipelinedWindow | None:
        """A pipelined window when the backend supports it, the pool has a connection to
        spare (never waits for one) and that connection may create the stage ``shaped``
        goes into (created here, so a missing privilege is found before anything is
        staged); otherwise ``None``: the call stages in its own transaction."""
        if not sessions.backend.capabilities.pipelined_stages:
            return None
        if sessions.pool.status()["checked_out"] >= sessions.pool.capacity:
            log.debug("no spare pooled connection: the merge stages in its own transaction")
            return None
        window = cls(sessions, sessions.checkout(), schema)
        ref = TableRef(f"_bf_stage_{_token()}", schema)
        try:
            sessions.backend.create_shared_stage(window.helper, ref, _stage_columns(shaped, by_name))
            window.helper.commit()
        except Exception as exc:  # e.g. no CREATE privilege in the schema
            log.debug("merge: no shared stage (%s); the batches stage in the writing transaction", exc)
            window.helper.rollback()
            window._pool.shutdown()
            sessions.release(window.helper)
            return None
        window._made.append(ref)
        window._created = ref
        log.debug("merge: staging each further batch on a second connection while the last one merges")
        return window

    def _stage(self, shaped: pa.Table, by_name: Mapping[str, Column], ref: TableRef, create: bool) -> _Staged:
        backend = self.sessions.backend
        columns = _stage_columns(shaped, by_name)
        try:
            if create:
                backend.create_shared_stage(self.helper, ref, columns)
            self.helper.ingest(ref, backend.to_ingest(shaped, dict(by_name)))
            self.helper.commit()
        except BaseException:
            self.helper.rollback()
            raise
        return _Staged(ref, backend.sa_table(ref, columns), shaped.column_names, shaped.num_rows)

    def add(
        self,
        conn: Connection,
        sessions: Sessions,
        spec: MergeSpec,
        shaped: pa.Table,
        by_name: Mapping[str, Column],
    ) -> MergeCounts:
        """Start staging ``shaped`` on the helper connection and merge the batch staged
        before it (its counts; none for the first)."""
        previous = self._pending.result() if self._pending is not None else None
        self._pending = None
        ref, create = self._created, False
        if ref is None:
            ref, create = TableRef(f"_bf_stage_{_token()}", self.schema), True
            self._made.append(ref)
        self._created = None
        self._pending = self._pool.submit(self._stage, shaped, by_name, ref, create)
        if previous is None:
            return NOTHING
        return self._merge(conn, spec, previous)

    def flush(self, conn: Connection, sessions: Sessions, spec: MergeSpec) -> MergeCounts:
        """Merge the batch still being staged (after waiting for it); its counts."""
        if self._pending is None:
            return NOTHING
        staged = self._pending.result()
        self._pending = None
        return self._merge(conn, spec, staged)

    def _merge(self, conn: Connection, spec: MergeSpec, staged: _Staged) -> MergeCounts:
        return _merge(
            conn, self.sessions, spec, staged.ref, staged.table, staged.names, [staged.rows], [None]
        )

    def close(self) -> None:
        """Wait for a stage still being written, then drop every stage (call it after the
        writing transaction ended) and give the helper connection back."""
        try:
            if self._pending is not None:
                try:
                    self._pending.result()
                except BaseException:  # the call already failed; the drop below still runs
                    log.debug("a stage that was being written failed", exc_info=True)
            self._pool.shutdown(wait=True)
            self.helper.rollback()
            for ref in self._made:
                self.sessions.backend.drop_table(self.helper, ref)
            self.helper.commit()
        except Exception:  # the helper connection broke: drop them on a fresh one
            self.sessions.release(self.helper, discard=True)
            try:
                with self.sessions.session() as conn:
                    for ref in self._made:
                        self.sessions.backend.drop_table(conn, ref)
            except Exception:
                log.warning("could not drop the merge's staging tables %s", [str(r) for r in self._made])
                raise
            return
        self.sessions.release(self.helper)


class MergeWindow:
    """The batches of one merging call (``bulk_upsert``, and ``bulk_create`` with
    ``conflict_resolution="update"|"skip"`` in one transaction): staged in the writing
    transaction (:class:`StagedWindow`) and, for a ``plain`` merge (``ON CONFLICT`` per
    batch can do it, see ``StagedMerge.plain``), from the second batch on pipelined
    (:class:`PipelinedWindow`) where the backend can.  At the switch the second batch is
    handed to the helper connection first, so the first batch merges (by ``ON CONFLICT``
    too) while it is being staged.

    :meth:`add` and :meth:`flush` return the counts of the batches they merged (a batch is
    merged by a later call than the one that handed it in).  :meth:`close` must run after
    the writing transaction ended, also when the call failed: it drops the shared stages."""

    def __init__(self, sessions: Sessions, spec: MergeSpec, schema: str | None, *, plain: bool) -> None:
        self.sessions = sessions
        self.spec = spec
        self.schema = schema
        self.plain = plain
        self.window: StagedWindow | PipelinedWindow = StagedWindow(spec.plan.keys)

    @property
    def pipelined(self) -> bool:
        return isinstance(self.window, PipelinedWindow)

    def add(self, conn: Connection, shaped: pa.Table, by_name: Mapping[str, Column]) -> MergeCounts:
        window = self.window
        if isinstance(window, StagedWindow) and window.batches == 1 and self.plain:
            piped = PipelinedWindow.open(self.sessions, shaped, by_name, self.schema)
            if piped is not None:
                self.window = piped
                piped.add(conn, self.sessions, self.spec, shaped, by_name)  # staged meanwhile
                self.spec.plan.per_batch = True
                return window.flush(conn, self.sessions, self.spec)
        return window.add(conn, self.sessions, self.spec, shaped, by_name)

    def flush(self, conn: Connection) -> MergeCounts:
        """Merge what is staged and not merged yet."""
        return self.window.flush(conn, self.sessions, self.spec)

    def close(self) -> None:
        """After the writing transaction ended: drop the shared stages, give the helper
        connection back (nothing to do for a temporary stage)."""
        if isinstance(self.window, PipelinedWindow):
            window, self.window = self.window, StagedWindow(self.spec.plan.keys)
            window.close()


def _stage_columns(shaped: pa.Table, by_name: Mapping[str, Column]) -> list[Column]:
    """The stage only holds rows: no key, no NOT NULL (the target checks them when merged)."""
    return [replace(by_name[n], primary_key=False, nullable=True) for n in shaped.column_names]


def _token() -> str:
    import uuid

    return uuid.uuid4().hex[:12]
