"""The driver's side of a distributed write: before the tasks, the commit, the clean-up.

:func:`commit_run` applies every part's stage to the target in ONE transaction, in part
order (``create``: ``INSERT … SELECT``; with a conflict mode or ``upsert``: the same
staged ``INSERT … ON CONFLICT`` the library calls run, one statement per stage), then
drops the stages.  Either the whole dataset lands or none of it.  :func:`abort_run`
drops every stage of the run by its name prefix, whichever task made it.

Rejected rows come back from each task with positions within its part; the driver adds
the part's offset (the rows of all earlier parts), so ``result.errors["row"]`` is the
row's position in the whole dataset.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import sqlalchemy as sa

from bulkframe.backends.base import TableRef
from bulkframe.distributed.spec import ROW, RunSpec
from bulkframe.errors import (
    BulkframeError,
    SafetyLimitError,
    SchemaError,
    TransientError,
    ValidationError,
    plain_name,
)
from bulkframe.result import BulkResult
from bulkframe.types import Column

if TYPE_CHECKING:
    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions
    from bulkframe.database import Database
    from bulkframe.distributed.task import PartReport

log = logging.getLogger("bulkframe")


@dataclass
class Applied:
    """Counts of stages applied to the target."""

    inserted: int = 0
    updated: int = 0
    skipped: int = 0
    deduplicated: int = 0

    def add(self, other: Applied) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.skipped += other.skipped
        self.deduplicated += other.deduplicated


def _connect(spec: RunSpec) -> Database:
    from bulkframe.database import connect

    return connect(spec.url, pool_size=1, max_overflow=1)


def start_run(spec: RunSpec) -> RunSpec:
    """Before any task runs: refuse what would fail only at the end, and create the
    ledger table once (tasks in many processes must not race to create it).  Returns the
    spec the tasks get (it records whether the target exists)."""
    db = _connect(spec)
    try:
        with db.sessions.session() as conn:
            target = db.backend.reflect(conn, spec.target)
            if target is None and (spec.operation == "upsert" or spec.resumable):
                raise SchemaError(
                    f"table {plain_name(spec.target)} does not exist"
                    + (" (resumable runs need the table to exist)" if spec.operation == "create" else "")
                )
            if spec.policy.per_batch or spec.resumable:
                from bulkframe.plan.ledger import Ledger

                Ledger.ensure(db.backend, conn)
    finally:
        db.close()
    return replace(spec, target_exists=target is not None)


def abort_run(spec: RunSpec) -> None:
    """Drop every staging table of the run (best effort: a failure here is logged, never
    raised over the error that caused the abort)."""
    try:
        db = _connect(spec)
    except Exception:
        log.warning("could not connect to drop the staging tables of run %s", spec.run_id, exc_info=True)
        return
    try:
        _drop_stages(db, spec)
    except Exception:
        log.warning("could not drop the staging tables of run %s", spec.run_id, exc_info=True)
    finally:
        db.close()


def _drop_stages(db: Database, spec: RunSpec) -> None:
    with db.sessions.session(write=False) as conn:
        names = db.backend.tables_with_prefix(conn, spec.stage_prefix, spec.target.schema)
    for name in names:
        with db.sessions.session(lock=spec.target) as conn:
            db.backend.drop_table(conn, TableRef(name, spec.target.schema))
    if names:
        log.info("dropped %d staging table(s) of run %s", len(names), spec.run_id)


def commit_run(spec: RunSpec, reports: Sequence[PartReport], started: float) -> BulkResult:
    """Merge the tasks' reports into one result and apply all stages in one transaction
    (or, for a resumable run, add up what each part committed).

    Raises
    ------
    ValidationError
        Rows were rejected under ``error_strategy="stop"``; nothing was written.
    SafetyLimitError
        More than ``max_errors`` rows were rejected; nothing was written.
    SchemaError, IntegrityError, DatabaseError
        The commit failed; nothing was written.
    """
    from bulkframe.plan.rejections import Rejections

    policy = spec.policy
    by_part = {r.part: r for r in reports}  # a retried task reports once
    ordered = [by_part[p] for p in sorted(by_part)]
    result = BulkResult(spec.operation, str(spec.target))
    rejections = Rejections(policy.log_level)
    offset, shifted = 0, []
    for report in ordered:
        if report.errors is not None and report.errors.height:
            import polars as pl

            shifted.append(report.errors.with_columns(pl.col("row") + offset))
        offset += report.rows
    if shifted:  # one report (and one log line) for the whole dataset
        import polars as pl

        rejections.add(pl.concat(shifted, how="diagonal_relaxed"))
    live = [r for r in ordered if not r.resumed]
    result.records_processed = sum(r.rows for r in live)
    result.batches = len(live)
    resumed = [r for r in ordered if r.resumed]
    if resumed:
        result.metrics["resumed_batches"] = len(resumed)
        result.metrics["resumed_rows"] = sum(r.rows for r in resumed)
    result.metrics["parts"] = len(ordered)
    applied = Applied()
    try:
        failed = [r for r in ordered if r.failure is not None]
        if failed:  # every task has finished: raise the first part's error
            assert failed[0].failure is not None
            raise failed[0].failure
        if policy.max_errors is not None and rejections.count > policy.max_errors:
            raise SafetyLimitError(
                f"max_errors={policy.max_errors} exceeded: {rejections.count} rows rejected; nothing was written"
            )
        if policy.strategy == "stop" and rejections.count:
            raise ValidationError(
                f"{rejections.count} row(s) rejected; nothing was written (error_strategy='stop'). "
                "See .errors for every row and reason (positions in the whole dataset), or use "
                "error_strategy='continue' to write the valid rows."
            )
        if spec.resumable:
            for r in live:
                if r.applied is not None:
                    applied.add(Applied(*r.applied))
            _finish_ledger(spec)
        else:
            applied = _commit_with_retries(spec, live)
    except BaseException as exc:
        abort_run(spec)
        result.failure_count = result.records_processed
        if spec.resumable:  # committed parts stay committed: say so
            for r in live:
                if r.applied is not None:
                    applied.add(Applied(*r.applied))
            result.inserted, result.updated, result.skipped = (
                applied.inserted,
                applied.updated,
                applied.skipped,
            )
            result.success_count = result.inserted + result.updated + result.skipped
            result.failure_count = result.records_processed - result.success_count
        result.errors = rejections.deliver(spec.failed_records_file, spec.failed_records_callback)
        result.duration_seconds = time.perf_counter() - started
        if isinstance(exc, ValidationError) and exc.errors is None:
            exc.errors = result.errors
        task_failure = any(exc is r.failure for r in ordered)
        if isinstance(exc, BulkframeError) and (exc.result is None or task_failure):
            exc.result = result  # the run's result, not that of the task's staging call
        raise
    abort_run(spec)  # the stages are spent (a no-op when the commit dropped them)
    result.inserted, result.updated, result.skipped = applied.inserted, applied.updated, applied.skipped
    result.deduplicated = applied.deduplicated
    result.success_count = result.inserted + result.updated + result.skipped
    result.failure_count = rejections.count
    result.batches_committed = result.batches
    result.errors = rejections.deliver(spec.failed_records_file, spec.failed_records_callback)
    result.duration_seconds = time.perf_counter() - started
    result.check()
    log.info("%r", result)
    return result


def _finish_ledger(spec: RunSpec) -> None:
    if not spec.auto_cleanup:
        return
    from bulkframe.plan.ledger import Ledger

    db = _connect(spec)
    try:
        with db.sessions.session() as conn:
            Ledger(db.backend, spec.run_id, str(spec.target), int(spec.task_options["batch_size"])).finish(
                conn
            )
    finally:
        db.close()


def _commit_with_retries(spec: RunSpec, reports: Sequence[PartReport]) -> Applied:
    policy = spec.policy
    retries = policy.retries if policy.strategy == "retry_batch" else 0
    attempt = 0
    while True:
        db = _connect(spec)
        try:
            with db.sessions.session(lock=spec.target) as conn:
                applied = apply_parts(conn, db.sessions, spec, reports)
            return applied
        except TransientError as exc:
            if attempt >= retries:
                raise
            attempt += 1
            delay = policy.delay(attempt)
            log.warning(
                "commit of run %s: transient error (%s); retry %d/%d in %.1fs",
                spec.run_id,
                str(exc).splitlines()[0],
                attempt,
                retries,
                delay,
            )
            time.sleep(delay)
        finally:
            db.close()


def resolve_keys(spec: RunSpec, target: list[Column] | None, staged: Sequence[Column] = ()) -> list[str]:
    """The columns rows are matched on: ``conflict_fields`` / ``unique_fields``, else the
    target's primary key (or, for a table the run creates, ``primary_key``)."""
    opts = spec.driver_options
    given = opts.get("conflict_fields") if spec.operation == "create" else opts.get("unique_fields")
    option = "conflict_fields" if spec.operation == "create" else "unique_fields"
    if isinstance(given, str):
        given = [given]
    if given:
        return list(given)
    if target is not None:
        keys = [c.name for c in target if c.primary_key]
    else:
        pk = opts.get("primary_key")
        keys = [pk] if isinstance(pk, str) else list(pk or ())
    if not keys:
        raise SchemaError(
            f"{option} is needed: table {plain_name(spec.target)} has no primary key to match rows on"
        )
    return keys


def apply_parts(
    conn: Connection, sessions: Sessions, spec: RunSpec, reports: Sequence[PartReport]
) -> Applied:
    """Apply the stages of ``reports`` to the target, in order, inside the caller's
    transaction (the target is created from the stages when a ``create`` finds none)."""
    backend = conn.backend
    staged = [r for r in reports if r.staged]
    target = backend.reflect(conn, spec.target)
    if target is None:
        if spec.operation == "upsert" or not staged:
            if spec.operation == "upsert":
                raise SchemaError(f"table {plain_name(spec.target)} does not exist")
            return Applied()
        target = _create_target(conn, spec, staged)
    applied = Applied()
    if not staged:
        return applied
    by_name = {c.name: c for c in target}
    keys = resolve_keys(spec, target) if spec.keys_needed else []
    missing = [k for k in keys if k not in by_name]
    if missing:
        raise SchemaError(f"key column(s) {missing} are not columns of {plain_name(spec.target)}")
    if spec.operation == "upsert":
        from bulkframe.ops.upsert import _ensure_unique

        unique = _ensure_unique(
            conn, sessions, spec.target, keys, bool(spec.driver_options["create_unique_index"])
        )
        if not unique:  # the distributed commit merges with ON CONFLICT, which needs the index
            raise SchemaError(
                f"unique_fields {keys}: table {plain_name(spec.target)} has no primary key, unique constraint "
                "or unique index on exactly these columns; the distributed upsert needs one. Create it, or "
                "pass create_unique_index=True"
            )
        if spec.driver_options.get("dedupe") == "error":
            _refuse_duplicates(conn, spec, staged, by_name, keys)
    target_t = backend.sa_table(spec.target, target)
    for report in staged:
        unknown = [c for c in report.columns if c not in by_name]
        if unknown:
            raise SchemaError(f"column(s) {unknown} are not in table {plain_name(spec.target)}")
        applied.add(_apply_one(conn, spec, target_t, by_name, keys, report))
        backend.drop_table(conn, spec.stage_ref(report.part))
    return applied


def _apply_one(
    conn: Connection,
    spec: RunSpec,
    target_t: sa.Table,
    by_name: dict[str, Column],
    keys: list[str],
    report: PartReport,
) -> Applied:
    backend = conn.backend
    names = report.columns
    stage_t = backend.sa_table(
        spec.stage_ref(report.part), [*(by_name[n] for n in names), Column(ROW, "int64")]
    )
    opts = spec.driver_options
    if spec.operation == "create" and opts.get("conflict_resolution", "error") == "error":
        stmt = sa.insert(target_t).from_select(names, sa.select(*(stage_t.c[n] for n in names)))
        conn.run(stmt)
        return Applied(inserted=report.staged)
    missing = [k for k in keys if k not in names]
    if missing:
        raise SchemaError(f"key column(s) {missing} are missing from the input; columns: {names}")
    from bulkframe import filters
    from bulkframe.backends.statements import merge_from_stage

    upsert = spec.operation == "upsert"
    if upsert:
        from bulkframe.ops.upsert_window import merge_fields

        conditions = dict(opts.get("upsert_conditions") or {})
        wrong = [k for k in conditions if k not in ("update_if", "insert_if")]
        if wrong:
            raise SchemaError(f"upsert_conditions: unknown key(s) {wrong}; valid: update_if, insert_if")
        update_fields, insert_fields = opts.get("update_fields"), opts.get("insert_fields")
        inserted_cols, updated_cols = merge_fields(names, keys, insert_fields, update_fields)
        mode = (
            "skip" if update_fields is not None and len(update_fields) == 0 else opts["conflict_resolution"]
        )
        keep = "last"
        update_if, insert_if = conditions.get("update_if"), conditions.get("insert_if")
    else:
        inserted_cols, updated_cols = list(names), None
        mode = opts["conflict_resolution"]
        keep = "last" if mode == "update" else "first"
        update_if = insert_if = None
    stage_where: sa.ColumnElement[bool] | None = None
    passing = report.staged
    if report.duplicates:
        other = stage_t.alias("bf_dup")
        order = other.c[ROW] > stage_t.c[ROW] if keep == "last" else other.c[ROW] < stage_t.c[ROW]
        stage_where = ~sa.exists().where(sa.and_(*(other.c[k] == stage_t.c[k] for k in keys), order))
        passing = int(conn.scalar(sa.select(sa.func.count()).select_from(stage_t).where(stage_where)))
    dropped = report.staged - passing
    lookup = updated_cols is not None and bool(set(updated_cols) - set(inserted_cols))
    if lookup and not report.duplicates:
        q = backend.quote
        conn.run(
            f"CREATE INDEX {q(stage_t.name + '_k')} ON {backend.qualified(spec.stage_ref(report.part))} "
            f"({', '.join(q(k) for k in keys)})"
        )
    counts = merge_from_stage(
        conn,
        target_t,
        stage_t,
        inserted_cols,
        keys,
        mode=mode,
        update_columns=updated_cols,
        insert_where=None
        if filters.is_empty(insert_if)
        else filters.to_sql(insert_if, stage_t, backend=backend),
        update_if=None if filters.is_empty(update_if) else update_if,
        staged_columns=names,
        staged=passing,
        stage_where=stage_where,
    )
    if upsert or mode == "skip":
        return Applied(counts.inserted, counts.updated, counts.skipped + dropped, dropped)
    return Applied(counts.inserted, counts.updated + dropped, counts.skipped, dropped)


def _refuse_duplicates(
    conn: Connection, spec: RunSpec, staged: Sequence[PartReport], by_name: dict[str, Column], keys: list[str]
) -> None:
    """``dedupe="error"``: a key twice anywhere in the dataset is refused, with examples."""
    backend = conn.backend
    selects = []
    for report in staged:
        t = backend.sa_table(spec.stage_ref(report.part), [by_name[k] for k in keys])
        selects.append(sa.select(*(t.c[k] for k in keys)))
    union = sa.union_all(*selects).subquery("bf_keys") if len(selects) > 1 else selects[0].subquery("bf_keys")
    dups = conn.fetchall(
        sa.select(*(union.c[k] for k in keys))
        .group_by(*(union.c[k] for k in keys))
        .having(sa.func.count() > 1)
        .limit(5)
    )
    if dups:
        examples = [d[0] if len(d) == 1 else tuple(d) for d in dups]
        raise SchemaError(
            f"duplicate keys {examples} in unique_fields {keys} (dedupe='error'); use dedupe='last'"
        )


def _create_target(conn: Connection, spec: RunSpec, staged: Sequence[PartReport]) -> list[Column]:
    """``create`` of a missing table: its columns are the ones the tasks inferred for
    their stages (bulkframe's own inference); every stage must agree."""
    backend = conn.backend
    first: list[Column] | None = None
    for report in staged:
        cols = [c for c in backend.reflect(conn, spec.stage_ref(report.part)) or [] if c.name != ROW]
        if first is None:
            first = cols
            first_part = report.part
            continue
        if cols != first:
            a = {c.name: c for c in first}
            b = {c.name: c for c in cols}
            diff = sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))
            raise SchemaError(
                f"table {plain_name(spec.target)} does not exist and the parts of the dataset infer different "
                f"types for column(s) {diff} (part {first_part}: {[a.get(n) for n in diff]}, part "
                f"{report.part}: {[b.get(n) for n in diff]}). Create the table first with the types you want."
            )
    assert first is not None
    keys = resolve_keys(spec, None) if spec.driver_options.get("primary_key") else []
    unknown = [k for k in keys if k not in {c.name for c in first}]
    if unknown:
        raise SchemaError(f"primary_key {unknown} are not columns of the input")
    columns = [
        replace(c, primary_key=c.name in keys, nullable=c.nullable and c.name not in keys) for c in first
    ]
    backend.create_table(conn, spec.target, columns)
    return columns
