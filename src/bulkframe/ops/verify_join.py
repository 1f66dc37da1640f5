"""Full verification of two tables in the same database: one ``FULL OUTER JOIN``.

When both sides live in one database (``capabilities.full_outer_join``), hashing both
tables costs more than joining them: the database joins by key and returns only rows
that differ by its own equality (``IS DISTINCT FROM``; floats within ``float_tolerance``);
those rows stream back ``batch_size`` at a time and are diffed in Polars with the same
canonical comparison as every other path (:mod:`.verify_diff`), so the counts mean the
same.  Any key works here, not only one integer column.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import polars as pl
import pyarrow as pa
import sqlalchemy as sa

from bulkframe.ops.verify_diff import DiffCounts
from bulkframe.ops.verify_sides import TableSide


def same_database(source: Any, target: TableSide) -> bool:
    """Whether ``source`` is a table that ``target``'s connection can join with."""
    return (
        isinstance(source, TableSide)
        and source.backend.url == target.backend.url
        and target.backend.capabilities.full_outer_join
    )


def _differs(a: sa.ColumnElement[Any], b: sa.ColumnElement[Any], tolerance: float | None) -> Any:
    distinct = a.is_distinct_from(b)
    if tolerance is None:
        return distinct
    close = sa.func.coalesce(sa.func.abs(a - b) <= sa.literal(float(tolerance)), sa.false())
    return sa.and_(distinct, sa.not_(close))


def _count(side: TableSide, *, own_connection: bool = False) -> int:
    """The side's row count (on a connection of its own while the join holds the side's)."""
    stmt = sa.select(sa.func.count()).select_from(side.table)
    if not own_connection:
        return int(side.conn.scalar(stmt))
    with side.sessions.session(write=False) as conn:
        return int(conn.scalar(stmt))


def join_compare(
    source: TableSide, target: TableSide, counts: DiffCounts, *, batch_size: int, metrics: dict[str, Any]
) -> tuple[int, int]:
    """Run the comparison into ``counts``; returns ``(source rows, target rows)``."""
    started = time.perf_counter()
    names = [*counts.key, *counts.fields]
    s, t = source.table.alias("s"), target.table.alias("t")
    on = sa.and_(*(s.c[k] == t.c[k] for k in counts.key))
    floats = {f for f in counts.fields if counts.families[f] == "float"}
    where = sa.or_(
        s.c[counts.key[0]].is_(None),
        t.c[counts.key[0]].is_(None),
        *(_differs(s.c[f], t.c[f], counts.tolerance if f in floats else None) for f in counts.fields),
    )
    read = target.backend.read_column
    stmt = (
        sa.select(
            *(read(s.c[n], source.columns[n]).label(f"s{i}") for i, n in enumerate(names)),
            *(read(t.c[n], target.columns[n]).label(f"t{i}") for i, n in enumerate(names)),
        )
        .select_from(s.join(t, on, full=True))
        .where(where)
    )
    if all(_unique_on(side, counts.key) for side in (source, target)):
        target.backend.prefer_ordered_join(target.conn)
    rows = 0
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="bulkframe-verify") as pool:
        # both counts run while the join does (cheap next to it: index-only scans)
        source_rows = pool.submit(_count, source)
        target_rows = pool.submit(_count, target, own_connection=True)
        cursor = target.conn.execute(stmt, options=target.backend.read_options)
        try:
            for batch in cursor.fetch_record_batch():
                rows += batch.num_rows
                counts.add(*_split(pa.Table.from_batches([batch]), names, source, target))
        except Exception as exc:
            raise target.conn.failure(exc, "fetching rows") from exc
        finally:
            cursor.close()
        s_rows, t_rows = source_rows.result(), target_rows.result()
    metrics["strategy"] = "join"
    metrics["rows_fetched"] = {"differing": rows}
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    return s_rows, t_rows


def _unique_on(side: TableSide, key: list[str]) -> bool:
    """Whether a primary key or unique index of the side's table covers exactly ``key``."""
    return any(set(u) == set(key) for u in side.backend.unique_keys(side.conn, side.ref))


def _split(
    table: pa.Table, names: list[str], source: TableSide, target: TableSide
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One batch of joined rows → (the source's rows, the target's rows)."""
    out = []
    for prefix, side in (("s", source), ("t", target)):
        part = table.select([f"{prefix}{i}" for i in range(len(names))]).rename_columns(names)
        part = part.filter(part.column(names[0]).is_valid())
        frame = pl.from_arrow(side.backend.read_cast(part, side.columns))
        assert isinstance(frame, pl.DataFrame)
        out.append(frame)
    return out[0], out[1]
