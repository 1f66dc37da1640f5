"""``bulk_update``: set-based updates, never one statement per row.

Two modes, chosen by the type of ``updates``:

* **by filter** — ``updates={"price": "price * 0.9", "status": "restocked"}`` with
  ``filter={...}``: one ``UPDATE … SET … WHERE filter`` (or one per key range of
  ``batch_size`` rows).  Expression values compile to SQL (``rules.expressions``);
  literal values are staged (one row, same ingest path as the data) and read by a scalar
  subquery, so every type lands exactly as ``bulk_create`` would store it.
* **by rows** — ``updates=[{"id": 1, "price": 15.99}, {"id": 3, "atomic_ops": {...}}]``
  or any frame: each batch is staged by COPY, then ``UPDATE target SET … FROM stage
  WHERE key = stage.key``.  Keys that match no row are counted and listed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import sqlalchemy as sa

from bulkframe import filters
from bulkframe.backends.base import TableRef
from bulkframe.backends.statements import count_modified
from bulkframe.errors import DataError, InvalidOptionValueError, SchemaError, ValidationError
from bulkframe.normalize import conform
from bulkframe.normalize.sources import records_to_table
from bulkframe.ops._modify import (
    DEFAULT_ROW_BATCH,
    analyze_stage,
    check_batch_size,
    check_flag,
    create_stage,
    fill_stage,
    filter_stager,
    in_input_order,
    key_ranges,
    key_values,
    read_rows,
    reflect_existing,
    table_keys,
)
from bulkframe.ops._rows import BATCH, ROUND, RowBatch, all_distinct, row_batches
from bulkframe.options import RuleOptions
from bulkframe.plan.run import OperationRun
from bulkframe.portable_sql import ExactInteger
from bulkframe.result import BulkResult
from bulkframe.rules.validate_rows import validate_rows
from bulkframe.types import Column

if TYPE_CHECKING:
    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions


def bulk_update(
    sessions: Sessions,
    ref: TableRef,
    updates: Any,
    *,
    filter: filters.Filter,
    key_fields: Sequence[str] | str | None,
    batch_size: int | None,
    return_updated: bool,
    ensure_atomic: bool,
    all_rows: bool,
    rules: RuleOptions | None = None,
) -> BulkResult:
    check_batch_size(batch_size)
    rules = rules or RuleOptions()
    for name, flag in (
        ("return_updated", return_updated),
        ("ensure_atomic", ensure_atomic),
        ("all_rows", all_rows),
    ):
        check_flag(name, flag)
    if updates is None:
        raise InvalidOptionValueError(
            "bulk_update needs updates=: a mapping {column: value or expression} applied to the "
            "rows filter= selects, or rows (list of dicts, frame) that each name their key"
        )
    if isinstance(updates, Mapping):
        if rules.validation_rules:
            raise InvalidOptionValueError(
                "validation_rules apply to updates given as rows (each naming its key); an update by "
                "filter sets the same values on every row it selects"
            )
        return _by_filter(
            sessions,
            ref,
            updates,
            filter=filter,
            key_fields=key_fields,
            batch_size=batch_size,
            return_updated=return_updated,
            ensure_atomic=ensure_atomic,
            all_rows=all_rows,
        )
    if all_rows:
        raise InvalidOptionValueError("all_rows=True only applies to updates by filter (updates={...})")
    return _by_rows(
        sessions,
        ref,
        updates,
        filter=filter,
        key_fields=key_fields,
        batch_size=batch_size or DEFAULT_ROW_BATCH,
        return_updated=return_updated,
        ensure_atomic=ensure_atomic,
        rules=rules,
    )


# ------------------------------------------------------------------------ by filter
def _by_filter(
    sessions: Sessions,
    ref: TableRef,
    updates: Mapping[str, Any],
    *,
    filter: filters.Filter,
    key_fields: Sequence[str] | str | None,
    batch_size: int | None,
    return_updated: bool,
    ensure_atomic: bool,
    all_rows: bool,
) -> BulkResult:
    if not updates:
        raise InvalidOptionValueError("updates={} sets nothing; name at least one column")
    if key_fields is not None and batch_size is None:
        raise InvalidOptionValueError(
            "key_fields applies to updates by rows, or with batch_size= (the key "
            "walked in ranges); a filter update without batch_size does not use it"
        )
    if filters.is_empty(filter) and not all_rows:
        raise InvalidOptionValueError(
            f"an empty filter would update every row of {ref}; pass all_rows=True if that is meant"
        )
    op = OperationRun("update", str(ref))
    result = op.result
    returned: list[pa.Table] = []
    try:
        columns = _filter_update(
            sessions,
            ref,
            updates,
            result,
            returned,
            filter=filter,
            key_fields=key_fields,
            batch_size=batch_size,
            return_updated=return_updated,
            ensure_atomic=ensure_atomic,
        )
    except BaseException as exc:  # what remains is what committed (ensure_atomic=False batches)
        committed = result.updated if not ensure_atomic and result.batches_committed else 0
        result.records_processed = result.updated = result.success_count = committed
        op.failed(exc)
        raise
    result.success_count = result.updated
    if return_updated:
        result.data = read_rows(sessions, returned, columns)
    return op.finish()


def _filter_update(
    sessions: Sessions,
    ref: TableRef,
    updates: Mapping[str, Any],
    result: BulkResult,
    returned: list[pa.Table],
    *,
    filter: filters.Filter,
    key_fields: Sequence[str] | str | None,
    batch_size: int | None,
    return_updated: bool,
    ensure_atomic: bool,
) -> list[Column]:
    from bulkframe.rules.expressions import classify_update_value
    from bulkframe.rules.expressions import to_sql as expression_sql

    backend = sessions.backend
    with sessions.session(lock=ref, commit=False) as conn:
        columns = reflect_existing(sessions, conn, ref)
        by_name = {c.name: c for c in columns}
        unknown = [c for c in updates if c not in by_name]
        if unknown:
            raise SchemaError(
                f"updates name {unknown}, which are not columns of {ref}; columns: {list(by_name)}"
            )
        target = backend.sa_table(ref, columns)
        filter_stages: list[TableRef] = []
        where = filters.to_sql(
            filter, target, backend=backend, stage=filter_stager(conn, sessions, by_name, filter_stages)
        )
        keys = table_keys(columns, key_fields, option="key_fields", ref=ref) if batch_size else []
        if set(keys) & set(updates):
            raise InvalidOptionValueError(
                f"batch_size walks the key {keys}; it cannot be updated in the same call"
            )
        values: dict[str, Any] = {}
        literals: dict[str, Any] = {}
        for name, value in updates.items():
            kind, parsed = classify_update_value(value, list(by_name))
            if kind == "expr":
                value = expression_sql(parsed, dict(target.c.items()))
                values[name] = exact_integer(value, target.c[name])
            else:
                literals[name] = parsed
        stage = None
        if literals:
            stage_cols = [by_name[n] for n in literals]
            stage, stage_t = create_stage(conn, sessions, stage_cols)
            json_cols = {c.name for c in stage_cols if c.kind == "json"}
            row = conform(records_to_table([literals], json_cols), by_name, table_name=str(ref)).table
            fill_stage(conn, sessions, stage, row, {c.name: c for c in stage_cols}, first=True)
            for name in literals:
                # the one-row stage read by a scalar subquery per column, or joined once
                # where a temporary table may appear only once per statement
                values[name] = (
                    sa.select(stage_t.c[name]).scalar_subquery()
                    if backend.capabilities.reopen_temporary
                    else stage_t.c[name]
                )
        for clause in key_ranges(conn, target, keys, where, batch_size):
            stmt = sa.update(target).where(clause).values(values)
            with _out_of_range(ref, list(values)):
                if return_updated:
                    returned.append(backend.modify_returning(conn, stmt, target))
                    changed = returned[-1].num_rows
                else:
                    changed = count_modified(conn, stmt)
            result.batches += 1
            result.records_processed += changed
            result.updated += changed
            if not ensure_atomic:
                conn.commit()
                result.batches_committed += 1
                backend.begin_write(conn, ref)
        for made in [stage, *filter_stages]:
            if made is not None:
                backend.drop_table(conn, made)
        conn.commit()
        result.batches_committed = result.batches
    return columns


# -------------------------------------------------------------------------- by rows
class _Window:
    """Consecutive batches staged together and merged by one statement.

    Batches join the window while they have the same staged shape; a batch whose keys
    repeat inside it (rounds > 1) is a window of its own.  Every staged row carries its
    batch number (``__bf_batch``): if a key repeats across the window's batches, the
    merge runs once per batch, in order.  With ``ensure_atomic=False`` every batch is its
    own window (it commits on its own).  So with the default single transaction,
    PostgreSQL joins the whole input once (hash join) instead of scanning the target once
    per batch.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = list(keys)
        self.batches: list[RowBatch] = []
        self.rows = 0

    @staticmethod
    def shape(batch: RowBatch) -> tuple[Any, ...]:
        return tuple(batch.columns), tuple(batch.masks.items()), tuple(batch.ops)

    def accepts(self, batch: RowBatch) -> bool:
        if not self.batches:
            return True
        if batch.rounds > 1 or self.batches[0].rounds > 1:
            return False
        return self.shape(batch) == self.shape(self.batches[0])

    def stage_columns(self, batch: RowBatch) -> list[Column]:
        return [*batch.columns, Column(BATCH, "int32")]

    def add(self, batch: RowBatch) -> pa.Table:
        """Register ``batch``; return its rows as staged (with the batch number)."""
        number = pa.repeat(pa.scalar(len(self.batches), pa.int32()), batch.data.num_rows)
        self.batches.append(batch)
        self.rows += batch.data.num_rows
        return batch.data.append_column(BATCH, number)

    def passes(self) -> int:
        """How many batch-ordered statements the merge needs: 1 unless keys repeat across
        batches (then one per batch)."""
        if len(self.batches) == 1:
            return 1
        keys = [
            pa.chunked_array(
                [c for b in self.batches for c in b.data.column(k).chunks],
                self.batches[0].data.schema.field(k).type,
            )
            for k in self.keys
        ]
        return 1 if all_distinct(keys) else len(self.batches)


def _by_rows(
    sessions: Sessions,
    ref: TableRef,
    updates: Any,
    *,
    filter: filters.Filter,
    key_fields: Sequence[str] | str | None,
    batch_size: int,
    return_updated: bool,
    ensure_atomic: bool,
    rules: RuleOptions,
) -> BulkResult:
    op = OperationRun("update", str(ref))
    result = op.result
    rejected: list[pl.DataFrame] = []
    backend = sessions.backend
    returned: list[pa.Table] = []
    committed = BulkResult("update", str(ref))  # what earlier windows committed
    try:
        with sessions.session(lock=ref, commit=False) as conn:
            columns = reflect_existing(sessions, conn, ref)
            by_name = {c.name: c for c in columns}
            keys = table_keys(columns, key_fields, option="key_fields", ref=ref)
            target = backend.sa_table(ref, columns)
            filter_stages: list[TableRef] = []
            extra = (
                None
                if filters.is_empty(filter)
                else filters.to_sql(
                    filter,
                    target,
                    backend=backend,
                    stage=filter_stager(conn, sessions, by_name, filter_stages),
                )
            )
            window = _Window(keys)
            stage: TableRef | None = None

            def flush() -> None:
                assert stage is not None
                analyze_stage(conn, sessions, stage)
                _apply(conn, result, window, target, stage_t, extra, returned if return_updated else None)
                backend.drop_table(conn, stage)
                if not ensure_atomic:
                    conn.commit()
                    result.batches_committed = result.batches
                    _copy_counts(result, committed)
                    backend.begin_write(conn, ref)

            for batch in row_batches(updates, by_name, keys, batch_size, str(ref)):
                result.batches += 1
                if rules.validate:
                    report = validate_rows(batch, by_name, rules.validation_rules)
                    if report is not None:
                        rejected.append(report)
                if rejected:
                    result.records_processed += batch.data.num_rows
                    continue  # check the rest for the full report; write nothing
                if not window.accepts(batch):
                    flush()
                    window = _Window(keys)
                staged_cols = window.stage_columns(batch)
                if not window.batches:
                    stage, stage_t = create_stage(conn, sessions, staged_cols)
                assert stage is not None
                fill_stage(
                    conn, sessions, stage, window.add(batch), {c.name: c for c in staged_cols}, first=True
                )
                if not ensure_atomic:  # each batch commits on its own
                    flush()
                    window = _Window(keys)
            if rejected:
                errors = pl.concat(rejected, how="diagonal_relaxed")
                result.errors = errors
                raise ValidationError(
                    f"{errors.height} row(s) rejected; nothing was written. See .errors for every row and "
                    "reason.",
                    errors=errors,
                )
            if window.batches:
                flush()
            for made in filter_stages:
                backend.drop_table(conn, made)
            conn.commit()
            result.batches_committed = result.batches
    except BaseException as exc:
        _copy_counts(committed, result, keep_processed=True)
        result.failure_count = result.records_processed - result.success_count
        op.failed(exc)
        raise
    result.success_count = result.updated + result.skipped
    result.failure_count = result.not_found
    if return_updated:
        frame = read_rows(sessions, returned, columns)
        result.data = frame.unique(subset=keys, keep="last", maintain_order=True) if len(frame) else frame
    return op.finish()


def _copy_counts(src: BulkResult, dst: BulkResult, *, keep_processed: bool = False) -> None:
    for name in ("updated", "skipped", "not_found"):
        setattr(dst, name, getattr(src, name))
    dst.not_found_ids = list(src.not_found_ids)
    dst.success_count = src.updated + src.skipped
    if not keep_processed:
        dst.records_processed = src.records_processed


def _apply(
    conn: Connection,
    result: BulkResult,
    window: _Window,
    target: sa.Table,
    stage: sa.Table,
    extra: sa.ColumnElement[bool] | None,
    returned: list[pa.Table] | None,
) -> None:
    """Merge one staged window: lock in key order, UPDATE per round, then list missing keys."""
    batch, keys, rows = window.batches[0], window.keys, window.rows
    result.records_processed += rows
    match = sa.and_(*(target.c[k] == stage.c[k] for k in keys))
    if conn.backend.capabilities.select_for_update:
        # lock the target rows in key order so concurrent runs over the same rows queue instead
        # of deadlocking (the UPDATE's join visits them in the plan's order, not the key's)
        locked = (
            sa.select(sa.literal_column("1").label("x"))
            .select_from(target)
            .where(sa.exists().where(match))
            .order_by(*(target.c[k] for k in keys))
            .with_for_update(of=target)
            .subquery()
        )
        conn.fetchall(sa.select(sa.func.count()).select_from(locked))
    sets = _set_clause(batch, target, stage)
    changed = 0
    passes = window.passes()
    for r in range(max(batch.rounds, passes)):
        cond = match if extra is None else sa.and_(match, extra)
        if batch.rounds > 1:
            cond = sa.and_(cond, stage.c[ROUND] == r)
        elif passes > 1:
            cond = sa.and_(cond, stage.c[BATCH] == r)
        stmt = sa.update(target).where(cond).values(sets)
        with _out_of_range(target.name, [name for name, _, _ in batch.ops]):
            if returned is not None:
                returned.append(conn.backend.modify_returning(conn, stmt, target))
                changed += returned[-1].num_rows
            else:
                changed += count_modified(conn, stmt)
    missing = 0
    if changed < rows:  # keys are never updated here, so the lookup after the update holds
        absent = conn.fetch_arrow(sa.select(*(stage.c[k] for k in keys)).where(~sa.exists().where(match)))
        absent = in_input_order(absent, [b.data for b in window.batches], keys)
        missing = absent.num_rows
        seen = set(result.not_found_ids)
        for key in key_values(absent, keys):
            if key not in seen:
                seen.add(key)
                result.not_found_ids.append(key)
    result.not_found += missing
    result.updated += changed
    result.skipped += rows - missing - changed  # key found, filter= false


@contextmanager
def _out_of_range(table: Any, columns: Sequence[str]) -> Iterator[None]:
    """The database's "out of range" / "integer overflow" as one readable error."""
    try:
        yield
    except DataError as exc:
        if exc.sqlstate != "22003":
            raise
        raise DataError(
            f"updating {', '.join(repr(c) for c in columns)} of {table}: a computed value is outside the "
            "column's range (integer overflow); the statement was rolled back. Check the expressions and atomic_ops "
            "operands, or widen the column",
            sqlstate="22003",
        ) from None


def exact_integer(value: Any, column: sa.Column[Any]) -> Any:
    """``value`` for an integer ``column``, made to fail rather than change silently: an
    :class:`~bulkframe.portable_sql.ExactInteger`, which each database spells (PostgreSQL
    raises "bigint out of range" itself; SQLite, which would store a REAL, gets a guard
    that raises its own "integer overflow") — reported as a ``DataError``."""
    if not isinstance(column.type, sa.Integer):
        return value
    return ExactInteger(value)


def _set_clause(batch: RowBatch, target: sa.Table, stage: sa.Table) -> dict[str, Any]:
    sets: dict[str, Any] = {}
    for name in batch.plain:
        value: Any = stage.c[name]
        if name in batch.masks:
            value = sa.case((stage.c[batch.masks[name]], stage.c[name]), else_=target.c[name])
        sets[name] = value
    whens: dict[str, list[tuple[Any, Any]]] = {}
    zero: Any = sa.literal_column("0")
    for name, op, source in batch.ops:
        cur, operand = target.c[name], stage.c[source]
        if op == "$inc":
            expr = sa.func.coalesce(cur, zero) + operand
        elif op == "$mul":
            expr = sa.func.coalesce(cur, zero) * operand
        elif op == "$min":
            expr = sa.case((sa.or_(cur.is_(None), operand < cur), operand), else_=cur)
        else:  # $max
            expr = sa.case((sa.or_(cur.is_(None), operand > cur), operand), else_=cur)
        whens.setdefault(name, []).append((operand.is_not(None), exact_integer(expr, cur)))
    for name, cases in whens.items():
        sets[name] = sa.case(*cases, else_=sets.get(name, target.c[name]))
    return sets
