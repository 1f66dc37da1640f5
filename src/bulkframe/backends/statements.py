"""Set-based statements shared by every backend, built with SQLAlchemy Core.

One statement per batch, never one per row.  Which variant is built depends on the
backend's declared capabilities only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bulkframe.backends.connection import Connection
from bulkframe.errors import NotSupportedError

if TYPE_CHECKING:
    from bulkframe.filters import Filter


@dataclass(frozen=True)
class MergeCounts:
    """What one merge did with the staged rows: ``inserted + updated + skipped +
    unchanged`` equals the rows merged."""

    inserted: int
    updated: int
    skipped: int
    unchanged: int = 0


def count_modified(conn: Connection, stmt: Any) -> int:
    """Run an ``INSERT/UPDATE/DELETE`` (without ``RETURNING``) and return how many rows it
    changed, exactly (the DBAPI ``execute`` of ADBC reports no rowcount), as the backend's
    capabilities allow."""
    how = conn.backend.capabilities.modified_count
    if how == "execute_update":
        return _execute_update(conn, stmt)
    if how == "rowcount":
        return conn.run(stmt)
    cte = stmt.returning(sa.literal_column("1")).cte("bf_modified")
    return int(conn.fetchall(sa.select(sa.func.count()).select_from(cte))[0][0])


def count_flagged(conn: Connection, stmt: Any, flag: sa.ColumnElement[bool]) -> tuple[int, int]:
    """Run an ``INSERT … ON CONFLICT`` and return ``(rows written, rows inserted)``: its
    ``RETURNING flag`` counted by the server in a CTE, one row back.  (Fetching one flag
    per row through ADBC cost 2.8 s for 500k rows, the statement itself 1.7 s.)"""
    written = stmt.returning(flag.label("ins")).cte("bf_written")
    row = conn.fetchall(
        sa.select(sa.func.count(), sa.func.count().filter(written.c.ins)).select_from(written)
    )[0]
    return int(row[0]), int(row[1])


def _execute_update(conn: Connection, stmt: Any) -> int:
    """ADBC's ``execute_update`` returns the rows affected (``executemany`` with one
    parameter row when the statement has parameters)."""
    from bulkframe.backends.connection import compile_sql

    sql, params = compile_sql(stmt, conn.backend.dialect)
    logging.getLogger("bulkframe.sql").debug("SQL %s | %d params", sql, len(params))
    cur = conn.raw.cursor()
    try:
        if params:
            cur.executemany(sql, [params])
            return int(cur.rowcount)
        cur.adbc_statement.set_sql_query(sql)
        return int(cur.adbc_statement.execute_update())
    except Exception as exc:
        raise conn.failure(exc, sql) from exc
    finally:
        cur.close()


def merge_from_stage(
    conn: Connection,
    target: sa.Table,
    stage: sa.Table,
    columns: Sequence[str],
    keys: Sequence[str],
    *,
    mode: str,
    update_columns: Sequence[str] | None = None,
    update_where: sa.ColumnElement[bool] | None = None,
    insert_where: sa.ColumnElement[bool] | None = None,
    update_if: Filter = None,
    staged_columns: Sequence[str] | None = None,
    staged: int | None = None,
    stage_where: sa.ColumnElement[bool] | None = None,
) -> MergeCounts:
    """``INSERT INTO target (cols) SELECT cols FROM stage [ORDER BY keys] ON CONFLICT (keys) …``.

    On a backend with concurrent writers the staged rows are applied in key order, so
    overlapping upserts lock rows in the same order and serialize instead of deadlocking.

    Parameters
    ----------
    columns
        Columns inserted for new rows (they must include ``keys``).
    mode : {"update", "skip"}
        ``"skip"`` → ``DO NOTHING``; ``"update"`` → ``DO UPDATE SET`` the
        ``update_columns`` (default: every non-key column of ``columns``).
    update_where, update_if
        Only update a stored row when this holds: a Core clause, or a filter (see
        ``docs/filters.md``) whose plain names are the stored row and ``excluded.x`` the
        incoming one.
    insert_where
        A clause on ``stage``: new rows failing it are not inserted (skipped); rows whose
        key exists still go on to the update.
    staged_columns
        Every column the stage holds (default ``columns``); update columns outside
        ``columns`` are read from the stage by key (the stage should be indexed on it).
    staged
        The number of rows merged, when the caller knows it (saves a count).
    stage_where
        Merge only the stage rows this selects (e.g. one batch of several staged).

    Returns
    -------
    MergeCounts
        Exact inserted / updated / skipped counts of the stage's rows, computed in the
        caller's transaction.
    """
    from bulkframe.filters import to_sql as filter_sql

    backend = conn.backend
    if backend.capabilities.upsert not in ("on_conflict", "backend"):  # pragma: no cover - future backends
        raise NotSupportedError(f"{backend.name}: upsert flavour {backend.capabilities.upsert!r}")
    if staged is None:
        staged = int(
            conn.scalar(
                sa.select(sa.func.count())
                .select_from(stage)
                .where(stage_where if stage_where is not None else sa.true())
            )
        )
    if backend.capabilities.upsert == "backend":
        counts: MergeCounts = backend.merge_stage(
            conn, target, stage, columns, keys, mode=mode, update_columns=update_columns,
            update_where=update_where, insert_where=insert_where, update_if=update_if,
            staged_columns=staged_columns, staged=staged, stage_where=stage_where,
        )  # fmt: skip
        return counts
    match = sa.and_(sa.true(), *(target.c[k] == stage.c[k] for k in keys))
    eligible = insert_where
    if insert_where is not None and mode == "update":
        eligible = sa.or_(insert_where, sa.exists().where(match))
    select = sa.select(*(stage.c[c] for c in columns)).where(eligible if eligible is not None else sa.true())
    if stage_where is not None:
        select = select.where(stage_where)
    if backend.capabilities.concurrent_writers and keys:
        # rows are inserted/updated, and so locked, in key order: two writers whose keys
        # overlap queue behind each other instead of deadlocking
        select = select.order_by(*(stage.c[k] for k in keys))
    insert = backend.upsert_insert(target).from_select(list(columns), select)
    if mode == "skip":
        # no keys: ``ON CONFLICT DO NOTHING`` on any unique constraint
        if not keys and not backend.capabilities.conflicts_in_order:
            _refuse_colliding_stage_rows(conn, target, stage, stage_where)
        stmt = insert.on_conflict_do_nothing(index_elements=list(keys) or None)
    else:
        incoming = incoming_values(
            insert.excluded, stage, columns, staged_columns or columns, keys, backend.quote, stage_where
        )
        cols = list(update_columns) if update_columns is not None else [c for c in columns if c not in keys]
        if not cols:  # nothing to update: behaves like skip but counts as updated
            cols = [keys[0]]
        if not backend.capabilities.upsert_set_subquery and any(c not in columns for c in cols):
            return _update_then_insert(
                conn,
                target,
                stage,
                select,
                columns,
                match,
                cols,
                update_where,
                update_if,
                stage_where,
                staged,
            )
        where = update_where
        if update_if is not None:
            cond = filter_sql(update_if, target, others={"excluded": incoming})
            where = cond if where is None else sa.and_(where, cond)
        stmt = insert.on_conflict_do_update(
            index_elements=list(keys),
            set_={c: incoming[c] for c in cols},
            where=where,
        )
    inserted_flag = backend.upsert_inserted_flag()
    if inserted_flag is not None:
        affected, inserted = count_flagged(conn, stmt, inserted_flag)
        updated = affected - inserted if mode == "update" else 0
        return MergeCounts(inserted, updated, staged - affected)
    # no flag: count the new keys inside the same write transaction, then merge and
    # read how many rows the statement changed (inserted + updated)
    new_rows_q = sa.select(sa.func.count()).select_from(stage).where(~sa.exists().where(match))
    if insert_where is not None:
        new_rows_q = new_rows_q.where(insert_where)
    if stage_where is not None:
        new_rows_q = new_rows_q.where(stage_where)
    new_rows = int(conn.scalar(new_rows_q)) if mode == "update" else 0
    affected = count_modified(conn, stmt)
    if mode == "update":
        return MergeCounts(new_rows, affected - new_rows, staged - affected)
    return MergeCounts(affected, 0, staged - affected)


def _refuse_colliding_stage_rows(
    conn: Connection, target: sa.Table, stage: sa.Table, stage_where: sa.ColumnElement[bool] | None
) -> None:
    """Where ``ON CONFLICT DO NOTHING`` keeps an arbitrary one of two rows of the statement
    that collide with each other (capability ``conflicts_in_order``), refuse such a stage
    rather than keep the wrong one."""
    from bulkframe.backends.base import TableRef

    backend = conn.backend
    for unique in backend.unique_keys(conn, TableRef(target.name, target.schema)):
        if not all(c in stage.c for c in unique):
            continue
        cols = [stage.c[c] for c in unique]
        dup = (
            sa.select(*cols)
            .where(stage_where if stage_where is not None else sa.true(), *(c.is_not(None) for c in cols))
            .group_by(*cols)
            .having(sa.func.count() > 1)
            .limit(1)
        )
        found = conn.fetchall(dup)
        if found:
            raise NotSupportedError(
                f"conflict_resolution='skip' on any unique constraint: rows of this call collide with "
                f"each other on {list(unique)} (values {list(found[0])}), and {backend.name} would keep "
                "an arbitrary one of them (capability conflicts_in_order); remove the repeats or name "
                "conflict_fields"
            )


def _update_then_insert(
    conn: Connection,
    target: sa.Table,
    stage: sa.Table,
    select: sa.Select[Any],
    columns: Sequence[str],
    match: sa.ColumnElement[bool],
    cols: Sequence[str],
    update_where: sa.ColumnElement[bool] | None,
    update_if: Filter,
    stage_where: sa.ColumnElement[bool] | None,
    staged: int,
) -> MergeCounts:
    """The merge as two statements, for a database whose ``DO UPDATE SET`` cannot read the
    stage (capability ``upsert_set_subquery``) while some updated column is not inserted:
    ``UPDATE target SET … FROM stage`` for the stored keys, then ``INSERT … SELECT`` of the
    other staged rows.  Same counts, same transaction (the caller's)."""
    from bulkframe.filters import to_sql as filter_sql

    incoming = {c.name: c for c in stage.c}
    where = sa.and_(match, stage_where if stage_where is not None else sa.true())
    if update_where is not None:
        where = sa.and_(where, update_where)
    if update_if is not None:
        where = sa.and_(where, filter_sql(update_if, target, others={"excluded": incoming}))
    updated = count_modified(conn, sa.update(target).values({c: stage.c[c] for c in cols}).where(where))
    fresh = select.where(~sa.exists().where(match))
    inserted = count_modified(conn, sa.insert(target).from_select(list(columns), fresh))
    return MergeCounts(inserted, updated, staged - inserted - updated)


def incoming_values(
    excluded: Any,
    stage: sa.Table,
    inserted: Sequence[str],
    staged: Sequence[str],
    keys: Sequence[str],
    quote: Callable[[str], str],
    stage_where: sa.ColumnElement[bool] | None = None,
) -> dict[str, Any]:
    """The incoming row's value per column: ``excluded.c`` for inserted columns, a keyed
    lookup into the stage for columns that are updated but not inserted."""
    out: dict[str, Any] = {c: excluded[c] for c in inserted}
    # SQLAlchemy does not correlate ``excluded`` into a subquery; name it literally
    # (identifiers quoted by the dialect, no values involved)
    hit = sa.and_(
        *(stage.c[k] == sa.literal_column(f"excluded.{quote(k)}") for k in keys),
        stage_where if stage_where is not None else sa.true(),
    )
    for c in staged:
        if c not in out:
            out[c] = sa.select(stage.c[c]).where(hit).scalar_subquery()
    return out
