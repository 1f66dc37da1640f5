"""Set-based statements shared by every backend, built with SQLAlchemy Core.

One statement per batch, never one per row.  Which variant is built depends on the
backend's declared capabilities only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bulkframe.backends.connection import Connection
from bulkframe.errors import NotSupportedError


@dataclass(frozen=True)
class MergeCounts:
    inserted: int
    updated: int
    skipped: int


def _insert_construct(conn: Connection) -> Any:
    name = conn.backend.dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise NotSupportedError(f"no ON CONFLICT insert for dialect {name}")  # pragma: no cover


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
) -> MergeCounts:
    """``INSERT INTO target (cols) SELECT cols FROM stage ON CONFLICT (keys) …``.

    ``mode="skip"`` → ``DO NOTHING``; ``mode="update"`` → ``DO UPDATE SET`` the
    ``update_columns`` (default: every non-key column) ``[WHERE update_where]``.
    Returns exact counts of inserted / updated / skipped stage rows.
    """
    caps = conn.backend.capabilities
    if caps.upsert != "on_conflict":  # pragma: no cover - future backends
        raise NotSupportedError(f"{conn.backend.dialect.name}: upsert flavour {caps.upsert!r}")
    staged = int(conn.scalar(sa.select(sa.func.count()).select_from(stage)))
    select = sa.select(*(stage.c[c] for c in columns)).where(
        insert_where if insert_where is not None else sa.true()
    )
    insert = _insert_construct(conn)(target).from_select(list(columns), select)
    if mode == "skip":
        stmt = insert.on_conflict_do_nothing(index_elements=list(keys))
    else:
        cols = list(update_columns) if update_columns is not None else [c for c in columns if c not in keys]
        if not cols:  # nothing to update: behaves like skip but counts as updated
            cols = [keys[0]]
        stmt = insert.on_conflict_do_update(
            index_elements=list(keys),
            set_={c: insert.excluded[c] for c in cols},
            where=update_where,
        )
    if caps.upsert_counts == "returning_xmax":
        cte = stmt.returning(sa.literal_column("(xmax = 0)").label("ins")).cte("bf_upsert")
        row = conn.fetchall(sa.select(sa.func.count().filter(cte.c.ins), sa.func.count()).select_from(cte))[0]
        inserted, affected = int(row[0]), int(row[1])
        updated = affected - inserted if mode == "update" else 0
        return MergeCounts(inserted, updated, staged - affected)
    # pre_count: count key matches inside the same write transaction, then merge
    match = sa.and_(*(target.c[k] == stage.c[k] for k in keys))
    existing_q = sa.select(sa.func.count()).select_from(stage).where(sa.exists().where(match))
    if insert_where is not None:
        existing_q = existing_q.where(insert_where)
    existing = int(conn.scalar(existing_q))
    if mode == "update" and update_where is not None:
        raise NotSupportedError("conditional update counts on this backend")  # pragma: no cover
    new_rows_q = sa.select(sa.func.count()).select_from(stage).where(~sa.exists().where(match))
    if insert_where is not None:
        new_rows_q = new_rows_q.where(insert_where)
    new_rows = int(conn.scalar(new_rows_q))
    conn.run(stmt)
    if mode == "update":
        return MergeCounts(new_rows, existing, staged - new_rows - existing)
    return MergeCounts(new_rows, 0, staged - new_rows)
