"""The write task: one part of the dataset → its own staging table.

The part goes through bulkframe's own pipeline (``Database.bulk_create`` into the stage:
normalize → rules → bulk ingest) with the run's rules and error policy.  The stage is a
regular table (the commit happens in another process), named by the run and the part, so
a retried task drops and rebuilds exactly its own stage.  Each staged row carries its
position within the part (``__bf_row``), which orders duplicates of a key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa

from bulkframe.distributed import faults
from bulkframe.distributed.spec import ROW, RunSpec
from bulkframe.errors import SchemaError, ValidationError, plain_name
from bulkframe.types import Column, arange

if TYPE_CHECKING:
    import polars as pl

    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions
    from bulkframe.database import Database

log = logging.getLogger("bulkframe")


@dataclass
class PartReport:
    """What one task did (sent back to the driver)."""

    part: int
    #: input rows of the part
    rows: int
    #: rows in the stage (accepted by the rules)
    staged: int
    #: the stage's columns (without ``__bf_row``), in input order
    columns: list[str]
    #: rejected rows, ``row`` = position within the part
    errors: pl.DataFrame | None = None
    #: the stage holds some key more than once (the commit keeps one per key)
    duplicates: bool = False
    #: resumable runs: the part committed in an earlier run (nothing done now)
    resumed: bool = False
    #: resumable runs: counts of the part's own commit (inserted, updated, skipped, deduplicated)
    applied: tuple[int, int, int, int] | None = None
    #: the error that stopped the task; the driver raises it after every task finished
    failure: BaseException | None = None


def stage_part(spec: RunSpec, part: int, table: pa.Table) -> PartReport:
    """Stage ``table`` (part number ``part`` of the dataset) for ``spec``'s run.

    In a resumable run the part is then applied to the target in its own transaction,
    recorded in the ledger in that same transaction.
    """
    from bulkframe.database import connect

    try:
        db = connect(spec.url, pool_size=1, max_overflow=1)
        try:
            return _stage(db, spec, part, table)
        finally:
            db.close()
    except Exception as exc:
        # reported, not raised: the engine then lets every other task finish, so when the
        # driver drops the run's stages no task is still creating one (a raised error makes
        # Ray and Dask give up while other tasks run on)
        log.warning("part %d of run %s failed: %s", part, spec.run_id, exc)
        return PartReport(part, table.num_rows, 0, list(table.column_names), failure=_portable(exc))


def _portable(exc: Exception) -> BaseException:
    """``exc`` if it pickles (it travels to the driver), else a RuntimeError naming it."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _stage(db: Database, spec: RunSpec, part: int, table: pa.Table) -> PartReport:
    backend = db.backend
    stage = spec.stage_ref(part)
    names = list(table.column_names)
    fp = ""
    with db.sessions.session(lock=stage) as conn:
        backend.drop_table(conn, stage)  # a retried task replaces what its first attempt staged
        target = backend.reflect(conn, spec.target)
        if target is None and (spec.operation == "upsert" or spec.resumable or spec.target_exists):
            raise SchemaError(
                f"table {plain_name(spec.target)} does not exist"
                + (" any more (it existed when the run started)" if spec.target_exists else "")
            )
        if spec.resumable:
            from bulkframe.plan.ledger import fingerprint

            fp = fingerprint(table)
            if _ledger(spec, conn).check(part, fp)[0]:
                return PartReport(part, table.num_rows, 0, names, resumed=True)
        if target is not None:
            columns = _stage_columns(spec, target, names)
            if spec.keys_needed:
                columns.append(Column(ROW, "int64", nullable=False))
            backend.create_shared_stage(conn, stage, columns)
    faults.check(part, "started")
    rows = table.num_rows
    # positions order the rows of a repeated key (only the modes that match keys need them)
    staged_input = table.append_column(ROW, arange(rows)) if spec.keys_needed else table
    try:
        # rejected rows are logged once, by the driver, with their positions in the dataset
        options = {**spec.task_options, "error_log_level": "debug"}
        result = db.bulk_create(stage.name, staged_input, schema=stage.schema, **options)
        errors, staged = result.errors, result.inserted
    except ValidationError as exc:  # error_strategy="stop": the stage rolled back; report every row
        errors, staged = exc.errors, 0
    faults.check(part, "staged")
    report = PartReport(part, rows, staged, names, errors=_without_row(errors))
    if staged:
        with db.sessions.session() as conn:
            stage_columns = backend.reflect(conn, stage) or []
            report.columns = [c.name for c in stage_columns if c.name != ROW]
            if spec.keys_needed:
                from bulkframe.distributed.commit import resolve_keys

                keys = resolve_keys(spec, target, stage_columns)
                report.duplicates = _index_duplicates(conn, stage, stage_columns, keys)
            conn.commit()
            if spec.resumable:
                _apply_now(conn, db.sessions, spec, part, report, fp)
    return report


def _stage_columns(spec: RunSpec, target: list[Column], names: list[str]) -> list[Column]:
    """The target's columns the part writes (rules may add columns), without keys or
    defaults: the stage only holds rows; the target checks them when they are applied."""
    by_name = {c.name: c for c in target}
    produced = [*names, *(n for n in spec.task_options.get("transformation_rules") or {} if n not in names)]
    unknown = [n for n in produced if n not in by_name]
    if unknown:
        raise SchemaError(
            f"column(s) {unknown} are not in table {plain_name(spec.target)}; its columns: {list(by_name)}"
        )
    absent = [c.name for c in target if not c.nullable and not c.has_default and c.name not in produced]
    if absent:
        raise SchemaError(
            f"table {plain_name(spec.target)} requires column(s) {absent} (NOT NULL, no default), "
            "but the input does not have them"
        )
    return [replace(by_name[n], primary_key=False, has_default=False) for n in produced]


def _without_row(errors: Any) -> Any:
    """The rejected-row report without the staging-only ``__bf_row`` field."""
    if errors is None or "record" not in errors.columns:
        return errors
    import polars as pl

    fields = [f.name for f in errors.schema["record"].fields if f.name != ROW]
    return errors.with_columns(pl.struct([pl.col("record").struct.field(f) for f in fields]).alias("record"))


def _index_duplicates(conn: Connection, stage: Any, columns: list[Column], keys: list[str]) -> bool:
    """Whether the stage holds a key twice; if so, index it for the commit's dedupe."""
    backend = conn.backend
    table = backend.sa_table(stage, columns)
    query = (
        sa.select(sa.literal(1))
        .select_from(table)
        .group_by(*(table.c[k] for k in keys))
        .having(sa.func.count() > 1)
        .limit(1)
    )
    if not conn.fetchall(query):
        return False
    q = backend.quote
    conn.run(
        f"CREATE INDEX {q(stage.name + '_k')} ON {backend.qualified(stage)} "
        f"({', '.join(q(k) for k in [*keys, ROW])})"
    )
    return True


def _ledger(spec: RunSpec, conn: Connection) -> Any:
    from bulkframe.plan.ledger import Ledger

    return Ledger.open(
        conn.backend,
        conn,
        target=str(spec.target),
        batch_size=int(spec.task_options["batch_size"]),
        checkpoint_file=None,
        checkpoint_interval=None,
        resumable=True,
        run_key=spec.run_id,
    )


def _apply_now(
    conn: Connection, sessions: Sessions, spec: RunSpec, part: int, report: PartReport, fp: str
) -> None:
    """Resumable runs: apply this part's stage and record it in the ledger, in one transaction."""
    from bulkframe.distributed.commit import apply_parts

    backend = conn.backend
    ledger = _ledger(spec, conn)  # reads the run's ledger in its own short transaction
    backend.begin_write(conn, spec.target)
    counts = apply_parts(conn, sessions, spec, [report])
    ledger.record(conn, part, arange(report.rows), fp, counts, complete=True)
    backend.drop_table(conn, spec.stage_ref(part))
    conn.commit()
    report.applied = (counts.inserted, counts.updated, counts.skipped, counts.deduplicated)
