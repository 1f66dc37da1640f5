"""Shared steps of ``bulk_update``, ``bulk_upsert`` and ``bulk_delete``.

One transaction on the one connection (temp staging tables are per connection), the
write lock taken first where the backend needs it, key-range batching for statements
driven by a filter, staging of Arrow rows, and reading rows back as Polars.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa

from bulkframe.backends.base import TableRef
from bulkframe.errors import InvalidOptionValueError, SchemaError, plain_name
from bulkframe.types import Column

if TYPE_CHECKING:
    import polars as pl

    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions

log = logging.getLogger("bulkframe")

#: Rows per staged batch when the caller does not say (update/upsert by rows).
DEFAULT_ROW_BATCH = 100_000


def check_batch_size(value: Any, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidOptionValueError(
            f"batch_size must be a positive int{' or None' if allow_none else ''}, got {value!r}"
        )


def check_flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise InvalidOptionValueError(f"{name} must be True or False, got {value!r}")


def reflect_existing(sessions: Sessions, conn: Connection, ref: TableRef) -> list[Column]:
    columns = sessions.backend.reflect(conn, ref)
    if not columns:
        raise SchemaError(f"table {plain_name(ref)} does not exist (or has no columns)")
    return columns


def table_keys(
    columns: Sequence[Column], given: Sequence[str] | str | None, *, option: str, ref: TableRef
) -> list[str]:
    """``given`` key columns (checked) or the table's primary key."""
    by_name = {c.name for c in columns}
    if isinstance(given, str):
        given = [given]
    keys = list(given) if given else [c.name for c in columns if c.primary_key]
    if not keys:
        raise SchemaError(
            f"table {plain_name(ref)} has no primary key; pass {option}=[...] naming the key column(s)"
        )
    missing = [k for k in keys if k not in by_name]
    if missing:
        raise SchemaError(
            f"{option} {missing} are not columns of {plain_name(ref)}; columns: {sorted(by_name)}"
        )
    return keys


def key_ranges(
    conn: Connection,
    target: sa.Table,
    keys: Sequence[str],
    where: sa.ColumnElement[bool],
    batch_size: int | None,
) -> Iterator[sa.ColumnElement[bool]]:
    """Split ``where`` into clauses that each select at most ``batch_size`` rows.

    Walks the key (primary key by default) in order: one indexed ``SELECT key … ORDER BY
    key LIMIT 1 OFFSET batch_size-1`` finds each batch's upper bound, so one statement
    touches at most ``batch_size`` rows.  ``None`` yields ``where`` itself once.
    """
    if batch_size is None:
        yield where
        return
    cols = [target.c[k] for k in keys]
    key = cols[0] if len(cols) == 1 else sa.tuple_(*cols)
    low: Any = None
    while True:
        lower = where if low is None else sa.and_(where, key > _bound(low))
        probe = sa.select(*cols).where(lower).order_by(*cols).limit(1).offset(batch_size - 1)
        rows = conn.fetchall(probe)
        if not rows:
            yield lower
            return
        high = rows[0][0] if len(cols) == 1 else tuple(rows[0])
        yield sa.and_(lower, key <= _bound(high))
        low = high


def _bound(value: Any) -> Any:
    return sa.tuple_(*(sa.literal(v) for v in value)) if isinstance(value, tuple) else value


def create_stage(
    conn: Connection, sessions: Sessions, columns: Sequence[Column]
) -> tuple[TableRef, sa.Table]:
    stage = sessions.backend.create_stage(conn, columns)
    return stage, sessions.backend.sa_table(stage, columns)


def fill_stage(
    conn: Connection,
    sessions: Sessions,
    stage: TableRef,
    data: pa.Table,
    columns: dict[str, Column],
    *,
    first: bool,
) -> None:
    """Replace the stage's rows with ``data`` (already conformed to ``columns``)."""
    if not first:
        conn.run(f"DELETE FROM {sessions.backend.qualified(stage)}")
    sessions.backend.ingest_stage(conn, stage, sessions.backend.to_ingest(data, columns))


def filter_stager(
    conn: Connection, sessions: Sessions, by_name: Mapping[str, Column], made: list[TableRef]
) -> Callable[[str, list[Any]], Any]:
    """The ``stage=`` hook of :func:`bulkframe.filters.to_sql`: a long ``$in``/``$nin`` list
    goes into a temporary one-column table typed like the column (the same machinery as
    ``bulk_delete(ids=…)``), and the filter selects from it; any length works, none of
    the values is a bind parameter.  Each stage made is appended to ``made`` (drop them
    before the commit)."""
    from bulkframe.normalize import conform

    def stage(field: str, values: list[Any]) -> Any:
        column = dataclasses.replace(by_name[field], primary_key=False, nullable=True, has_default=False)
        ref, table = create_stage(conn, sessions, [column])
        made.append(ref)
        data = conform(pa.table({field: pa.array(values)}), {field: column}, table_name="filter values").table
        fill_stage(conn, sessions, ref, data, {field: column}, first=True)
        analyze_stage(conn, sessions, ref)
        return sa.select(table.c[field])

    return stage


def analyze_stage(conn: Connection, sessions: Sessions, stage: TableRef) -> None:
    """Give the planner the stage's size and key distribution (capability ``analyze_stage``)."""
    if sessions.backend.capabilities.analyze_stage:
        conn.run(f"ANALYZE {sessions.backend.qualified(stage)}")


def read_rows(sessions: Sessions, tables: Sequence[pa.Table], columns: Sequence[Column]) -> pl.DataFrame:
    """Rows fetched from the database (e.g. ``RETURNING``), as Polars with logical types."""
    import polars as pl

    by_name = {c.name: c for c in columns}
    frames = [pl.from_arrow(sessions.backend.read_cast(t, by_name)) for t in tables if t.num_rows]
    if not frames:
        frames = [pl.from_arrow(pa.table({c.name: pa.array([], c.arrow_type()) for c in columns}))]
    frame = pl.concat(frames, how="vertical_relaxed")  # type: ignore[type-var]
    assert isinstance(frame, pl.DataFrame)
    return frame


def in_input_order(found: pa.Table, inputs: Sequence[pa.Table], keys: Sequence[str]) -> pa.Table:
    """``found``'s key rows sorted by where each key first occurs in ``inputs`` (the input
    batches, in order), so lists a result returns do not depend on the server's plan."""
    import polars as pl

    if found.num_rows <= 1:
        return found
    given = pl.DataFrame(
        pa.concat_tables([t.select(list(keys)) for t in inputs], promote_options="permissive")
    )
    positions = given.with_row_index("__bf_pos").unique(subset=list(keys), keep="first", maintain_order=True)
    frame = pl.DataFrame(found.select(list(keys)))
    ordered = frame.join(positions, on=list(keys), how="left", nulls_equal=True).sort("__bf_pos")
    return ordered.drop("__bf_pos").to_arrow()


def key_values(table: pa.Table, keys: Sequence[str]) -> list[Any]:
    """Key values of ``table``'s rows: scalars for one key, tuples for several."""
    if len(keys) == 1:
        return list(table.column(keys[0]).to_pylist())
    return list(zip(*(table.column(k).to_pylist() for k in keys), strict=True))
