"""``bulk_delete``: set-based deletes with the spec's safety features, in one transaction.

Modes:

* **hard** (default, ``hard_delete=True``) — ``DELETE FROM t WHERE <selection>``;
* **soft** (``soft_delete=True``) — ``UPDATE t SET deleted_at = CURRENT_TIMESTAMP WHERE
  <selection> AND deleted_at IS NULL``.  A table without the column is an error (bulkframe
  does not alter a table as a side effect of a delete).

The selection is ``filter`` and/or ``ids`` (bound ``IN`` list up to
:data:`IN_LIST_LIMIT` ids, else a staged id table joined with ``EXISTS``).  The order
inside the transaction: count (and sample) → ``max_delete_count`` → ``dry_run`` stops
here → ``confirm_delete`` → cascade children → delete (``RETURNING *`` when backing up)
→ re-check the count → write the backup → commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa

from bulkframe import filters
from bulkframe.backends.base import Backend, TableRef
from bulkframe.backends.statements import count_modified
from bulkframe.errors import (
    InvalidOptionValueError,
    NotSupportedError,
    SafetyLimitError,
    SchemaError,
    plain_name,
)
from bulkframe.normalize import conform
from bulkframe.ops._modify import (
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
from bulkframe.ops._safety import check_backup_location, confirm, refuse_existing, sibling, write_backup
from bulkframe.plan.run import OperationRun
from bulkframe.result import BulkResult
from bulkframe.types import Column

if TYPE_CHECKING:
    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions

#: Up to this many ids are bound in an ``IN (…)`` list; more are staged and joined.
IN_LIST_LIMIT = 1000


def bulk_delete(
    sessions: Sessions,
    ref: TableRef,
    *,
    filter: filters.Filter,
    ids: Sequence[Any] | None,
    key_field: Sequence[str] | str | None,
    soft_delete: bool,
    hard_delete: bool,
    deleted_at_field: str,
    cascade: Sequence[str] | Mapping[str, str] | None,
    dry_run: bool,
    max_delete_count: int | None,
    confirm_delete: bool | Callable[[int, Any], Any],
    backup_before_delete: bool,
    backup_location: str | None,
    all_rows: bool,
    batch_size: int | None,
    sample_size: int,
) -> BulkResult:
    for name, flag in (
        ("soft_delete", soft_delete),
        ("hard_delete", hard_delete),
        ("dry_run", dry_run),
        ("backup_before_delete", backup_before_delete),
        ("all_rows", all_rows),
    ):
        check_flag(name, flag)
    check_batch_size(batch_size)
    if soft_delete and hard_delete:
        raise InvalidOptionValueError(
            "soft_delete=True and hard_delete=True contradict each other; choose one"
        )
    if max_delete_count is not None and (
        not isinstance(max_delete_count, int) or isinstance(max_delete_count, bool) or max_delete_count < 0
    ):
        raise InvalidOptionValueError(
            f"max_delete_count must be a non-negative int, got {max_delete_count!r}"
        )
    if not isinstance(sample_size, int) or isinstance(sample_size, bool) or sample_size < 0:
        raise InvalidOptionValueError(f"sample_size must be a non-negative int, got {sample_size!r}")
    if not (isinstance(confirm_delete, bool) or callable(confirm_delete)):
        raise InvalidOptionValueError(
            "confirm_delete must be True/False or a callable confirm(count, sample) -> bool"
        )
    backup = check_backup_location(backup_location) if backup_before_delete else None
    if backup_location is not None and not backup_before_delete:
        raise InvalidOptionValueError("backup_location is only used with backup_before_delete=True")
    if isinstance(ids, (str, bytes)) or (ids is not None and not hasattr(ids, "__len__")):
        raise InvalidOptionValueError(f"ids must be a list of key values, got {type(ids).__name__}")
    if ids is None and filters.is_empty(filter) and not all_rows:
        raise InvalidOptionValueError(
            f"no filter and no ids: this would delete every row of {plain_name(ref)}; "
            "pass all_rows=True if that is meant"
        )
    if key_field is not None and ids is None and batch_size is None:
        raise InvalidOptionValueError(
            "key_field names the column ids= (or batch_size= ranges) refer to; "
            "without either it has no effect"
        )
    children = _cascade_spec(cascade)
    if backup is not None:
        refuse_existing([backup, *(sibling(backup, name) for name in children)])
    op = OperationRun("delete", str(ref), dry_run=dry_run)
    result = op.result
    try:
        return _delete(
            sessions,
            ref,
            op,
            filter=filter,
            ids=ids,
            key_field=key_field,
            soft_delete=soft_delete,
            deleted_at_field=deleted_at_field,
            children=children,
            dry_run=dry_run,
            max_delete_count=max_delete_count,
            confirm_delete=confirm_delete,
            backup=backup,
            batch_size=batch_size,
            sample_size=sample_size,
        )
    except BaseException as exc:  # rolled back: every row processed failed, none was deleted
        result.deleted = result.skipped = result.success_count = 0
        result.failure_count = result.records_processed
        result.metrics["cascade"] = {}
        op.failed(exc)
        raise


def _delete(
    sessions: Sessions,
    ref: TableRef,
    op: OperationRun,
    *,
    filter: filters.Filter,
    ids: Sequence[Any] | None,
    key_field: Sequence[str] | str | None,
    soft_delete: bool,
    deleted_at_field: str,
    children: dict[str, str | None],
    dry_run: bool,
    max_delete_count: int | None,
    confirm_delete: bool | Callable[[int, Any], Any],
    backup: Path | None,
    batch_size: int | None,
    sample_size: int,
) -> BulkResult:
    backend = sessions.backend
    result = op.result
    with sessions.session(lock=ref, commit=False) as conn:
        columns = reflect_existing(sessions, conn, ref)
        by_name = {c.name: c for c in columns}
        target = backend.sa_table(ref, columns)
        filter_stages: list[TableRef] = []
        where = filters.to_sql(
            filter, target, backend=backend, stage=filter_stager(conn, sessions, by_name, filter_stages)
        )
        if soft_delete:
            _require_column(by_name, deleted_at_field, ref, sessions)
            where = sa.and_(where, target.c[deleted_at_field].is_(None))
        keys = (
            table_keys(columns, key_field, option="key_field", ref=ref)
            if ids is not None or batch_size
            else []
        )
        stage = stage_t = None
        # a plain delete of a long id list: delete first inside a savepoint; only when fewer
        # rows went than ids were given, roll back to it, list the missing ids, delete again
        # (without savepoints: list the missing ids first)
        checked = dry_run or max_delete_count is not None or confirm_delete is not False
        fast = (
            backend.capabilities.savepoints
            and not soft_delete
            and not checked
            and batch_size is None
            and backup is None
            and filters.is_empty(filter)
        )
        if ids is not None:
            clause, stage, stage_t, staged_ids = _select_ids(
                conn, sessions, result, target, keys, by_name, ids, defer=fast
            )
            where = sa.and_(where, clause)
        plans = [
            _child_plan(conn, sessions, ref, target, where, child, fk, soft_delete, deleted_at_field)
            for child, fk in children.items()
        ]
        count = (
            int(conn.scalar(sa.select(sa.func.count()).select_from(target).where(where))) if checked else 0
        )
        if ids is None:
            result.records_processed = count
        # ids found but outside the selection (filter false, or already soft deleted)
        result.skipped = max(0, result.records_processed - result.not_found - count)
        if max_delete_count is not None and count > max_delete_count:
            raise SafetyLimitError(
                f"{count} rows of {plain_name(ref)} match, more than "
                f"max_delete_count={max_delete_count}; "
                "nothing was deleted"
            )
        needs_sample = dry_run or confirm_delete is not False
        sample = (
            read_rows(
                sessions, [conn.fetch_arrow(sa.select(*target.c).where(where).limit(sample_size))], columns
            )
            if needs_sample
            else None
        )
        if dry_run:
            result.deleted = count
            result.data = sample
            result.metrics["cascade"] = {
                name: int(conn.scalar(sa.select(sa.func.count()).select_from(p[0]).where(p[1])))
                for name, p in zip(children, plans, strict=True)
            }
            conn.rollback()
            result.success_count = result.deleted + result.skipped
            result.failure_count = result.not_found
            return op.finish()
        if sample is not None and count and not confirm(confirm_delete, count, sample, str(ref)):
            conn.rollback()
            result.skipped += count
            result.warnings.append(f"deletion of {count} rows was not confirmed; nothing was deleted")
            result.metrics["confirmed"] = False
            result.success_count = result.skipped
            result.failure_count = result.not_found
            return op.finish()
        if children and not soft_delete:
            _refuse_cascade_over_foreign_keys(conn, backend, ref, children)
        backups: dict[Path, list[pa.Table]] = {}
        result.metrics["cascade"] = {}
        for name, (child_t, clause, _) in zip(children, plans, strict=True):
            stmt = _modify(child_t, clause, soft_delete, deleted_at_field)
            n = _run(conn, stmt, child_t, backups.setdefault(sibling(backup, name), []) if backup else None)
            result.metrics["cascade"][name] = n
        deleted = 0
        if fast and stage_t is not None:
            conn.run("SAVEPOINT bf_delete")
            deleted = count_modified(conn, sa.delete(target).where(where))
            if deleted == result.records_processed:
                conn.run("RELEASE SAVEPOINT bf_delete")
            else:
                conn.run("ROLLBACK TO SAVEPOINT bf_delete")
                absent = sa.select(*(stage_t.c[k] for k in keys)).where(
                    ~sa.exists().where(sa.and_(*(stage_t.c[k] == target.c[k] for k in keys)))
                )
                # listed in input order, whatever plan the server picks
                result.not_found_ids = key_values(
                    in_input_order(conn.fetch_arrow(absent), [staged_ids], keys), keys
                )
                result.not_found = len(result.not_found_ids)
                deleted = count_modified(conn, sa.delete(target).where(where))
            result.batches += 1
        for clause in (
            [] if fast and stage_t is not None else key_ranges(conn, target, keys, where, batch_size)
        ):
            stmt = _modify(target, clause, soft_delete, deleted_at_field)
            deleted += _run(conn, stmt, target, backups.setdefault(backup, []) if backup else None)
            result.batches += 1
        if (max_delete_count is not None and deleted > max_delete_count) or (
            confirm_delete is not False and deleted != count
        ):
            raise SafetyLimitError(
                f"{deleted} rows of {plain_name(ref)} matched when deleting, "
                f"but {count} were counted "
                f"(max_delete_count={max_delete_count}); rows changed concurrently, "
                "nothing was deleted"
            )
        result.deleted = deleted
        if ids is None:
            result.records_processed = deleted
        else:
            result.skipped = max(0, result.records_processed - result.not_found - deleted)
        for made in [stage, *filter_stages]:
            if made is not None:
                backend.drop_table(conn, made)
        if backup is not None:
            _write_backups(sessions, conn, backups, backup, columns, plans, children)
            result.metrics["backup_location"] = str(backup)
        conn.commit()
        result.batches_committed = result.batches
    result.success_count = result.deleted + result.skipped
    result.failure_count = result.not_found
    return op.finish()


def _cascade_spec(cascade: Sequence[str] | Mapping[str, str] | None) -> dict[str, str | None]:
    if cascade is None:
        return {}
    if isinstance(cascade, Mapping):
        bad = [k for k, v in cascade.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise InvalidOptionValueError(
                f"cascade mapping must be {{table: foreign_key_column}}; bad entries {bad}"
            )
        return dict(cascade)
    if isinstance(cascade, str) or not all(isinstance(c, str) for c in cascade):
        raise InvalidOptionValueError(
            f"cascade must be a list of table names or {{table: fk_column}}, got {cascade!r}"
        )
    return dict.fromkeys(cascade)


def _require_column(by_name: Mapping[str, Column], name: str, ref: TableRef, sessions: Sessions) -> None:
    if name not in by_name:
        raise SchemaError(
            f"soft_delete=True sets column {name!r}, which {plain_name(ref)} does not have; "
            "bulkframe does not alter "
            f"tables during a delete. Add it (ALTER TABLE {sessions.backend.qualified(ref)} ADD COLUMN "
            f"{sessions.backend.quote(name)} TIMESTAMP) or pass deleted_at_field='…'"
        )


def _select_ids(
    conn: Connection,
    sessions: Sessions,
    result: BulkResult,
    target: sa.Table,
    keys: Sequence[str],
    by_name: Mapping[str, Column],
    ids: Sequence[Any],
    *,
    defer: bool,
) -> tuple[sa.ColumnElement[bool], TableRef | None, sa.Table | None, pa.Table]:
    """The clause selecting ``ids`` (and the stage it joins, if any, and the ids as
    staged: deduplicated, in input order); counts the ids and lists those that match no
    row (a staged list: unless ``defer``, the caller's job)."""
    import polars as pl

    table = _ids_table(ids, keys)
    table = conform(table, {k: by_name[k] for k in keys}, table_name="ids").table
    if len(keys) == 1:  # first occurrences, in order
        table = pa.table({keys[0]: table.column(0).unique()})
    else:
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        table = frame.unique(maintain_order=True).to_arrow()
    result.records_processed = table.num_rows
    cols = [target.c[k] for k in keys]
    key = cols[0] if len(cols) == 1 else sa.tuple_(*cols)
    if table.num_rows <= IN_LIST_LIMIT:
        values = key_values(table, keys)
        clause: sa.ColumnElement[bool] = key.in_([v if len(cols) == 1 else sa.tuple_(*v) for v in values])
        found = set(key_values(conn.fetch_arrow(sa.select(*cols).where(clause)), keys))
        missing = [v for v in values if v not in found]
        stage = stage_t = None
    else:
        stage_cols = [
            Column(k, by_name[k].kind, precision=by_name[k].precision, scale=by_name[k].scale) for k in keys
        ]
        stage, stage_t = create_stage(conn, sessions, stage_cols)
        fill_stage(conn, sessions, stage, table, {c.name: c for c in stage_cols}, first=True)
        analyze_stage(conn, sessions, stage)
        clause = sa.exists().where(sa.and_(*(stage_t.c[k] == target.c[k] for k in keys)))
        if defer:
            return clause, stage, stage_t, table
        absent = sa.select(*(stage_t.c[k] for k in keys)).where(
            ~sa.exists().where(sa.and_(*(stage_t.c[k] == target.c[k] for k in keys)))
        )
        missing = key_values(in_input_order(conn.fetch_arrow(absent), [table], keys), keys)
    result.not_found = len(missing)
    result.not_found_ids = missing
    return clause, stage, stage_t, table


def _ids_table(ids: Sequence[Any], keys: Sequence[str]) -> pa.Table:
    if len(keys) == 1:
        if hasattr(ids, "to_arrow"):
            return pa.table({keys[0]: ids.to_arrow()})
        try:
            return pa.table({keys[0]: pa.array(ids)})
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SchemaError(f"ids for key {keys[0]!r} must share one type: {exc}") from exc
    rows = [tuple(v) if isinstance(v, (tuple, list)) else None for v in ids]
    if any(r is None or len(r) != len(keys) for r in rows):
        raise SchemaError(f"the key is {list(keys)}: each id must be a tuple of {len(keys)} values")
    return pa.table({k: pa.array([r[i] for r in rows]) for i, k in enumerate(keys)})  # type: ignore[index]


def _refuse_cascade_over_foreign_keys(
    conn: Connection, backend: Backend, parent: TableRef, children: Mapping[str, str | None]
) -> None:
    """Where a parent cannot be deleted in the transaction that deleted its children
    (capability ``delete_after_children``), refuse a cascade along a declared foreign key
    before anything is deleted."""
    if backend.capabilities.delete_after_children:
        return
    for child in children:
        ref = TableRef(child, parent.schema)
        if any(fk.refers_to(parent) for fk in backend.foreign_keys(conn, ref)):
            raise NotSupportedError(
                f"cascade: {backend.name} cannot delete rows of {plain_name(parent)} in the transaction "
                f"that deletes the rows of {plain_name(ref)} referencing them (it checks foreign keys "
                "against the rows as they were when the transaction began); delete the children in one "
                "call and the parents in another, or soft delete"
            )


def _child_plan(
    conn: Connection,
    sessions: Sessions,
    parent: TableRef,
    parent_t: sa.Table,
    where: sa.ColumnElement[bool],
    child: str,
    fk_column: str | None,
    soft: bool,
    deleted_at_field: str,
) -> tuple[sa.Table, sa.ColumnElement[bool], list[Column]]:
    """The child table and the clause selecting its rows that reference deleted parents."""
    ref = TableRef(child, parent.schema)
    columns = sessions.backend.reflect(conn, ref)
    if not columns:
        raise SchemaError(f"cascade: table {plain_name(ref)} does not exist")
    by_name = {c.name: c for c in columns}
    parent_pk = [c.name for c in parent_t.columns if c.primary_key]
    if fk_column is not None:
        if fk_column not in by_name:
            raise SchemaError(
                f"cascade: {fk_column!r} is not a column of {plain_name(ref)}; columns: {list(by_name)}"
            )
        if len(parent_pk) != 1:
            raise SchemaError(
                f"cascade={{{child!r}: {fk_column!r}}} needs {plain_name(parent)} to have "
                "a one-column primary key"
            )
        pairs = [([fk_column], parent_pk)]
    else:
        pairs = [
            (list(fk.columns), list(fk.referred_columns) or parent_pk)
            for fk in sessions.backend.foreign_keys(conn, ref)
            if fk.refers_to(parent)
        ]
        if not pairs:
            raise SchemaError(
                f"cascade: {plain_name(ref)} has no foreign key to {plain_name(parent)}; "
                "name the column with "
                f"cascade={{{child!r}: 'parent_id_column'}}"
            )
    if soft:
        _require_column(by_name, deleted_at_field, ref, sessions)
    child_t = sessions.backend.sa_table(ref, columns)
    clauses = []
    for fk_cols, ref_cols in pairs:
        referenced = sa.select(*(parent_t.c[c] for c in ref_cols)).where(where)
        left = child_t.c[fk_cols[0]] if len(fk_cols) == 1 else sa.tuple_(*(child_t.c[c] for c in fk_cols))
        clauses.append(left.in_(referenced))
    clause = sa.or_(*clauses)
    if soft:
        clause = sa.and_(clause, child_t.c[deleted_at_field].is_(None))
    return child_t, clause, columns


def _modify(table: sa.Table, clause: sa.ColumnElement[bool], soft: bool, deleted_at_field: str) -> Any:
    if soft:
        return sa.update(table).where(clause).values({deleted_at_field: sa.func.current_timestamp()})
    return sa.delete(table).where(clause)


def _run(conn: Connection, stmt: Any, table: sa.Table, keep: list[pa.Table] | None) -> int:
    if keep is None:
        return count_modified(conn, stmt)
    keep.append(conn.backend.modify_returning(conn, stmt, table))
    return int(keep[-1].num_rows)


def _write_backups(
    sessions: Sessions,
    conn: Connection,
    backups: dict[Path, list[pa.Table]],
    main: Path,
    columns: list[Column],
    plans: list[tuple[sa.Table, sa.ColumnElement[bool], list[Column]]],
    children: Mapping[str, Any],
) -> None:
    cols_for = {main: columns} | {sibling(main, name): p[2] for name, p in zip(children, plans, strict=True)}
    for path, tables in backups.items():
        try:
            write_backup(read_rows(sessions, tables, cols_for[path]), path)
        except SafetyLimitError:
            raise
        except BaseException as exc:  # Polars reports some writer gaps as a Rust panic (BaseException)
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            raise SafetyLimitError(
                f"backup_before_delete: writing {path} failed ({type(exc).__name__}: {exc}); "
                "nothing was deleted"
            ) from exc
