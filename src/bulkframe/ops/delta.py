"""``bulk_upsert(sync_mode="delta")``: apply a change set (CDC style) in input order.

Each input row carries its operation in ``operation_field``: ``"insert"``, ``"update"``
or ``"delete"``.  A batch is staged once; its rows are numbered per key by occurrence
(the first change of a key is round 0, its second round 1, …), so each round holds at
most one change per key and its changes commute.  Rounds run in order, and each applies
its deletes, updates and inserts with set-based statements (the staged merge of
:mod:`bulkframe.ops.staged_merge`): many keys with one change each take one round, and a
key changed three times is changed three times, in order.

Per operation:

* ``delete`` — the stored row is deleted (soft-deleted with ``soft_delete=True``); a key
  with no stored row counts as ``not_found``;
* ``update`` — the stored row takes the row's values (subject to ``newest_wins``,
  ``update_if`` and change detection); a key with no stored row counts as ``not_found``;
* ``insert`` — a new row; when the key exists, ``conflict_resolution`` decides
  (``update``/``source_wins``/``newest_wins``: the insert updates it; ``skip``/
  ``target_wins``: it is skipped).

Counts per operation are in ``result.metrics["delta"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from bulkframe.backends.base import TableRef
from bulkframe.errors import (
    InvalidOptionValueError,
    SafetyLimitError,
    SchemaError,
    ValidationError,
    plain_name,
)
from bulkframe.ops import sync as syncing
from bulkframe.ops._modify import (
    DEFAULT_ROW_BATCH,
    create_stage,
    fill_stage,
    reflect_existing,
    table_keys,
)
from bulkframe.ops.audit import Audit
from bulkframe.ops.delete import _modify, _require_column
from bulkframe.ops.delete import _run as run_delete
from bulkframe.ops.staged_merge import StagedMerge
from bulkframe.rules.prepare import Preparer
from bulkframe.types import Column

if TYPE_CHECKING:
    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions
    from bulkframe.options import (
        AuditOptions,
        ChangeDetection,
        DeleteSafety,
        RuleOptions,
        SyncOptions,
    )
    from bulkframe.plan.run import OperationRun
    from bulkframe.result import BulkResult

#: The operations a change row may carry.
OPERATIONS = ("insert", "update", "delete")
#: The stage's per-key round number.
ROUND = "_bf_round"


def run_delta(
    sessions: Sessions,
    ref: TableRef,
    source: Any,
    run: OperationRun,
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
    from bulkframe import filters

    if dedupe != "last":
        raise InvalidOptionValueError(
            f"dedupe={dedupe!r} does not apply to sync_mode='delta': every change of a key is applied, in order"
        )
    if not filters.is_empty(insert_if):
        raise InvalidOptionValueError("upsert_conditions['insert_if'] does not apply to sync_mode='delta'")
    op = sync.operation_field
    result, rejections, reporter = run.result, run.rejections, run.reporter
    with sessions.session(lock=ref, commit=False) as conn:
        columns = reflect_existing(sessions, conn, ref)
        by_name = {c.name: c for c in columns}
        if op in by_name:
            raise SchemaError(
                f"operation_field {op!r} is a column of {plain_name(ref)}; name the change set's operation "
                "column with operation_field='…'"
            )
        keys = table_keys(columns, keys_option, option="unique_fields", ref=ref)
        from bulkframe.ops.upsert import _ensure_unique
        from bulkframe.ops.upsert_window import merge_fields

        indexed = _ensure_unique(conn, sessions, ref, keys, create_unique_index)
        syncing.check_fields_exist(changes, by_name, ref)
        if newest is not None:
            syncing.timestamp_column(by_name, newest, ref, "conflict_resolution='newest_wins'")
        if safety.soft_delete:
            _require_column(by_name, safety.deleted_at_field, ref, sessions)
        target = sessions.backend.sa_table(ref, columns)
        recorder = (
            Audit(sessions, conn, TableRef(audit.audit_table, ref.schema), ref, audit.audit_level)
            if audit.audit_sync
            else None
        )
        plan = StagedMerge(
            sessions.backend,
            ref,
            target,
            by_name,
            keys,
            indexed=indexed,
            newest=newest,
            update_if=update_if,
            audit=recorder,
        )
        typed = {**by_name, op: Column(op, "text", nullable=False)}
        # a delete row may carry only its key: NOT NULL and length checks are the
        # database's (error_strategy is 'stop': any violation rolls the call back)
        prepare = Preparer(
            typed,
            table_name=str(ref),
            transformation_rules=rules.transformation_rules,
            validation_rules=rules.validation_rules if rules.validate else None,
            check_constraints=False,
            strict_cast=not rules.validation_rules,
        )
        state = _Delta(
            sessions, conn, ref, target, columns, keys, op, plan, mode, changes, safety, recorder, result
        )
        failed = False
        for chunk in source.chunks(batch_size or DEFAULT_ROW_BATCH, typed):
            prepared = prepare(chunk)
            result.batches += 1
            result.records_processed += prepared.rows
            if prepared.rejected is not None:
                rejections.add(prepared.rejected)
                failed = True
            reporter.advance(prepared.rows, prepared.rows - prepared.rejected_count, prepared.rejected_count)
            if failed:
                continue
            shaped = prepared.table
            if op not in shaped.column_names:
                raise SchemaError(f"sync_mode='delta' needs the operation column {op!r} in the input")
            _check_operations(shaped.column(op), prepared.positions, op)
            names = [n for n in shaped.column_names if n != op]
            inserted, updated = merge_fields(names, keys, insert_fields, update_fields)
            state.batch(shaped, typed, inserted, syncing.without_ignored(changes, updated), names)
        if failed:
            raise ValidationError(
                f"{rejections.count} row(s) rejected; nothing was written (error_strategy='stop'). See .errors."
            )
        if backup is not None and state.kept is not None:
            syncing.write_backup_or_fail(sessions, state.kept, columns, backup)
            result.metrics["backup_location"] = str(backup)
        result.metrics["delta"] = state.per_op
        if recorder is not None and not recorder.per_row:
            recorder.summary(result, {"sync_mode": "delta"})
        if safety.dry_run:
            conn.rollback()
            return
        conn.commit()
        result.batches_committed = result.batches


def _check_operations(column: pa.ChunkedArray, positions: pa.Array, op: str) -> None:
    valid = pc.fill_null(pc.is_in(column, value_set=pa.array(OPERATIONS, column.type)), False)
    if not pc.all(valid).as_py():
        bad = pc.indices_nonzero(pc.invert(valid))[0].as_py()
        raise SchemaError(
            f"row {positions[bad].as_py()}: {op}={column[bad].as_py()!r} is not an operation; "
            f"expected one of {', '.join(repr(o) for o in OPERATIONS)}"
        )


class _Delta:
    """Applies staged change batches round by round and keeps the per-operation counts."""

    def __init__(
        self,
        sessions: Sessions,
        conn: Connection,
        ref: TableRef,
        target: sa.Table,
        columns: Sequence[Column],
        keys: Sequence[str],
        op: str,
        plan: StagedMerge,
        mode: str,
        changes: ChangeDetection,
        safety: DeleteSafety,
        audit: Audit | None,
        result: BulkResult,
    ) -> None:
        self.sessions, self.conn, self.ref, self.target = sessions, conn, ref, target
        self.columns, self.keys, self.op, self.plan, self.mode = columns, list(keys), op, plan, mode
        self.changes, self.safety, self.audit, self.result = changes, safety, audit, result
        self.kept: list[pa.Table] | None = [] if safety.backup_before_delete else None
        self.per_op: dict[str, dict[str, int]] = {
            "insert": {"rows": 0, "inserted": 0, "updated": 0, "skipped": 0, "unchanged": 0},
            "update": {"rows": 0, "updated": 0, "skipped": 0, "unchanged": 0, "not_found": 0},
            "delete": {"rows": 0, "deleted": 0, "not_found": 0},
        }

    def batch(
        self,
        shaped: pa.Table,
        typed: dict[str, Column],
        inserted: Sequence[str],
        updated: Sequence[str],
        names: Sequence[str],
    ) -> None:
        import polars as pl

        frame = pl.from_arrow(shaped.select([*self.keys, self.op]))
        assert isinstance(frame, pl.DataFrame)
        rounds = frame.select(pl.int_range(pl.len(), dtype=pl.Int32).over(self.keys).alias(ROUND))
        counts = frame.with_columns(rounds).group_by(ROUND, self.op).len().rows()  # [(round, op, rows)]
        by_round: dict[int, dict[str, int]] = {}
        for r, o, n in counts:
            by_round.setdefault(int(r), {})[str(o)] = int(n)
        stage_cols = {**typed, ROUND: Column(ROUND, "int32")}
        table = shaped.append_column(ROUND, rounds.to_series().to_arrow())
        stage_ref, stage = create_stage(self.conn, self.sessions, [stage_cols[n] for n in table.column_names])
        fill_stage(self.conn, self.sessions, stage_ref, table, stage_cols, first=True)
        self.plan.compare = syncing.compared_fields(self.changes, updated, names)
        for r in sorted(by_round):
            ops = by_round[r]
            in_round = stage.c[ROUND] == r
            if ops.get("delete"):
                self._deletes(stage, sa.and_(in_round, stage.c[self.op] == "delete"), ops["delete"])
            if ops.get("update"):
                self._updates(
                    stage,
                    sa.and_(in_round, stage.c[self.op] == "update"),
                    ops["update"],
                    inserted,
                    updated,
                    names,
                )
            if ops.get("insert"):
                self._inserts(
                    stage,
                    sa.and_(in_round, stage.c[self.op] == "insert"),
                    ops["insert"],
                    inserted,
                    updated,
                    names,
                )
        self.sessions.backend.drop_table(self.conn, stage_ref)

    def _match(self, stage: sa.Table) -> sa.ColumnElement[bool]:
        return sa.and_(*(self.target.c[k] == stage.c[k] for k in self.keys))

    def _deletes(self, stage: sa.Table, rows: sa.ColumnElement[bool], n: int) -> None:
        soft, field = self.safety.soft_delete, self.safety.deleted_at_field
        live = self.target.c[field].is_(None) if soft else sa.true()
        where = sa.and_(sa.exists().where(sa.and_(rows, self._match(stage))), live)
        found = int(
            self.conn.scalar(
                sa.select(sa.func.count())
                .select_from(stage)
                .where(rows, sa.exists().where(sa.and_(self._match(stage), live)))
            )
        )
        limit = self.safety.max_delete_count
        if limit is not None and self.result.deleted + found > limit:
            raise SafetyLimitError(
                f"sync_mode='delta': more than max_delete_count={limit} rows of {plain_name(self.ref)} would be "
                "deleted; nothing was changed"
            )
        if self.audit is not None and self.audit.per_row:
            self.audit.deletes(self.target, self.keys, where)
        run_delete(self.conn, _modify(self.target, where, soft, field), self.target, self.kept)
        self._count("delete", rows=n, deleted=found, not_found=n - found)

    def _updates(
        self,
        stage: sa.Table,
        rows: sa.ColumnElement[bool],
        n: int,
        inserted: Sequence[str],
        updated: Sequence[str],
        names: Sequence[str],
    ) -> None:
        missing = int(
            self.conn.scalar(
                sa.select(sa.func.count())
                .select_from(stage)
                .where(rows, ~sa.exists().where(self._match(stage)))
            )
        )
        self.plan.mode = "update"
        counts = self.plan.apply(
            self.conn,
            stage,
            inserted=inserted,
            updated=updated,
            staged_columns=names,
            staged=n,
            stage_where=rows,
            insert_where=sa.false(),
        )
        self._count(
            "update",
            rows=n,
            updated=counts.updated,
            unchanged=counts.unchanged,
            skipped=counts.skipped - missing,
            not_found=missing,
        )

    def _inserts(
        self,
        stage: sa.Table,
        rows: sa.ColumnElement[bool],
        n: int,
        inserted: Sequence[str],
        updated: Sequence[str],
        names: Sequence[str],
    ) -> None:
        self.plan.mode = self.mode
        counts = self.plan.apply(
            self.conn,
            stage,
            inserted=inserted,
            updated=updated,
            staged_columns=names,
            staged=n,
            stage_where=rows,
        )
        self._count(
            "insert",
            rows=n,
            inserted=counts.inserted,
            updated=counts.updated,
            skipped=counts.skipped,
            unchanged=counts.unchanged,
        )

    def _count(self, operation: str, **counts: int) -> None:
        entry = self.per_op[operation]
        for k, v in counts.items():
            entry[k] += v
            if k != "rows":
                setattr(self.result, k, getattr(self.result, k) + v)
