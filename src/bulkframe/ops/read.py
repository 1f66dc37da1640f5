"""Reads: a table (or some of its columns) back as Polars with logical types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bulkframe.backends.base import TableRef
from bulkframe.errors import SchemaError

if TYPE_CHECKING:
    from bulkframe.backends.session import Sessions


def read_table(
    sessions: Sessions,
    ref: TableRef,
    *,
    columns: Sequence[str] | None = None,
    order_by: Sequence[str] | str | None = None,
    where: sa.ColumnElement[bool] | None = None,
) -> Any:
    import polars as pl

    backend = sessions.backend
    with sessions.session(write=False) as conn:
        cols = backend.reflect(conn, ref)
        if cols is None:
            raise SchemaError(f"table {ref} does not exist")
        by_name = {c.name: c for c in cols}
        wanted = list(columns) if columns is not None else list(by_name)
        unknown = [c for c in wanted if c not in by_name]
        if unknown:
            raise SchemaError(f"columns {unknown} are not in {ref}; columns: {list(by_name)}")
        table = backend.sa_table(ref, cols)
        stmt = sa.select(*(backend.read_column(table.c[c], by_name[c]) for c in wanted))
        if where is not None:
            stmt = stmt.where(where)
        keys = [order_by] if isinstance(order_by, str) else list(order_by or ())
        if keys:
            stmt = stmt.order_by(*(table.c[k] for k in keys))
        arrow = conn.fetch_arrow(stmt)
    arrow = backend.read_cast(arrow, by_name)
    frame = pl.from_arrow(arrow)
    assert isinstance(frame, pl.DataFrame)
    return frame
