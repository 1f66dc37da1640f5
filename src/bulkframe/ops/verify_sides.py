"""The two sides of a full verification: a database table, or client-side data.

Each side answers three questions about key ranges (half-open intervals of one integer
key column): its bounds, per-bucket row counts and hash sums (:mod:`.verify_canon`), and
its rows.  A table whose backend hashes inside the database (``Backend.verify_digest``)
answers the bucket question with one ``GROUP BY`` query and sends only the buckets; every
other side streams its rows in key order, ``batch_size`` at a time, and hashes them here.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
import sqlalchemy as sa

from bulkframe.backends.base import DigestInput, TableRef
from bulkframe.errors import SchemaError
from bulkframe.ops.verify_canon import row_hashes
from bulkframe.types import Column

if TYPE_CHECKING:
    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions

log = logging.getLogger("bulkframe.verify")

#: A half-open key interval ``[low, high)``.
Interval = tuple[int, int]
#: Intervals per statement (SQLite parses ``a OR b OR …`` as a tree at most 1,000 deep).
INTERVALS_PER_QUERY = 400
STATS_SCHEMA = {"bucket": pl.Int64, "n": pl.Int64, "h1": pl.Int64, "h2": pl.Int64}


@dataclass(frozen=True)
class TableSource:
    """A table in a database, as the source of :meth:`Database.verify`.

    Parameters
    ----------
    database : Database or str
        An open :class:`~bulkframe.Database` or a URL (opened for the verification and
        closed after it).
    table : str
        The table's name.
    schema : str, optional
        Its database schema.

    Examples
    --------
    >>> import bulkframe as bf
    >>> source = bf.TableSource("sqlite:///old.db", "orders")
    >>> source.table
    'orders'
    """

    database: Any
    table: str
    schema: str | None = None


@dataclass(frozen=True)
class SourceTable:
    """A :class:`TableSource` resolved by ``Database.verify``: the source database's
    session factory and the table."""

    sessions: Sessions
    ref: TableRef


class Side(abc.ABC):
    """One side of the comparison, restricted to ``names`` (key first)."""

    key: str
    names: list[str]
    columns: dict[str, Column]
    #: where this side's bucket hashes are computed: ``"database"`` or ``"client"``
    hashed_in: str = "client"
    rows_read: int = 0

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.families: dict[str, str] = {}
        self.tolerance: float | None = None

    def prepare(self, names: Sequence[str], families: Mapping[str, str], tolerance: float | None) -> None:
        self.names = list(names)
        self.families = dict(families)
        self.tolerance = tolerance

    @abc.abstractmethod
    def bounds(self) -> tuple[int | None, int | None, int]:
        """``(min key, max key, rows)``."""

    @abc.abstractmethod
    def frames(self, intervals: Sequence[Interval] | None) -> Iterator[pl.DataFrame]:
        """The rows (``names`` columns, logical types) in ``intervals`` (all when None)."""

    def bucket_stats(self, low: int, width: int, intervals: Sequence[Interval] | None) -> pl.DataFrame:
        """Per bucket ``(key - low) // width``: rows ``n`` and hash sums ``h1``, ``h2``."""
        parts = []
        for frame in self.frames(intervals):
            hashed = row_hashes(frame, self.families, self.tolerance)
            parts.append(
                hashed.group_by(((pl.col(self.key).cast(pl.Int64) - low) // width).alias("bucket")).agg(
                    n=pl.len().cast(pl.Int64), h1=pl.col("__h1").sum(), h2=pl.col("__h2").sum()
                )
            )
        if not parts:
            return pl.DataFrame(schema=STATS_SCHEMA)
        stats = pl.concat(parts).group_by("bucket").agg(pl.col("n", "h1", "h2").sum())
        return stats.cast(STATS_SCHEMA)  # type: ignore[arg-type]

    def close(self) -> None:  # noqa: B027 - optional
        """Give back what the side holds."""


def _int(value: int) -> sa.ColumnElement[int]:
    """An integer as a SQL literal: the per-row expressions of the hash query ran ~10x
    slower on PostgreSQL with bound parameters in them (generic plans); ``int()`` keeps
    the text a number."""
    return sa.literal_column(str(int(value)), sa.BigInteger())


def _chunks(intervals: Sequence[Interval], size: int) -> Iterator[Sequence[Interval]]:
    for start in range(0, len(intervals), size):
        yield intervals[start : start + size]


class TableSide(Side):
    """A table read through its backend (ADBC)."""

    def __init__(self, sessions: Sessions, ref: TableRef, batch_size: int) -> None:
        super().__init__(batch_size)
        self.sessions, self.ref = sessions, ref
        self.backend = sessions.backend
        self.conn: Connection = sessions.checkout()
        cols = self.backend.reflect(self.conn, ref)
        if cols is None:
            self.close()
            raise SchemaError(f"table {ref} does not exist")
        self.columns = {c.name: c for c in cols}
        self.table = self.backend.sa_table(ref, cols)

    def prepare(self, names: Sequence[str], families: Mapping[str, str], tolerance: float | None) -> None:
        super().prepare(names, families, tolerance)
        self.key = self.names[0]
        self.k = sa.cast(self.table.c[self.key], sa.BigInteger())
        if not families:  # rows only (one-way modes read the source table as data)
            return
        self.inputs = [
            DigestInput(
                self.table.c[n], self.columns[n], families[n], tolerance if families[n] == "float" else None
            )
            for n in self.names
        ]
        probe = self.backend.verify_bucket_hashes(self.table, self.k, None, self.inputs)
        self.hashed_in = "client" if probe is None else "database"

    def _where(self, intervals: Sequence[Interval]) -> sa.ColumnElement[bool]:
        col = self.table.c[self.key]
        return sa.or_(*(sa.and_(col >= _int(a), col < _int(b)) for a, b in intervals))

    def bounds(self) -> tuple[int | None, int | None, int]:
        col = self.table.c[self.key]
        row = self.conn.fetchall(
            sa.select(sa.func.min(col), sa.func.max(col), sa.func.count()).select_from(self.table)
        )[0]
        return (None if row[0] is None else int(row[0]), None if row[1] is None else int(row[1]), int(row[2]))

    def frames(self, intervals: Sequence[Interval] | None) -> Iterator[pl.DataFrame]:
        col = self.table.c[self.key]
        select = sa.select(*(self.backend.read_column(self.table.c[n], self.columns[n]) for n in self.names))
        groups: Iterator[Sequence[Interval] | None] = (
            iter([None]) if intervals is None else _chunks(intervals, INTERVALS_PER_QUERY)
        )
        for group in groups:
            last: int | None = None
            while True:  # keyset pages: bounded memory, each page an index range scan
                stmt = select if group is None else select.where(self._where(group))
                if last is not None:
                    stmt = stmt.where(col > _int(last))
                stmt = stmt.order_by(col).limit(self.batch_size)
                arrow = self.backend.read_cast(self.conn.fetch_arrow(stmt), self.columns)
                frame = pl.from_arrow(arrow)
                assert isinstance(frame, pl.DataFrame)
                self.rows_read += frame.height
                if frame.height:
                    yield frame
                if frame.height < self.batch_size:
                    break
                last = int(frame[self.key][-1])

    def bucket_stats(self, low: int, width: int, intervals: Sequence[Interval] | None) -> pl.DataFrame:
        if self.hashed_in == "client":
            return super().bucket_stats(low, width, intervals)
        offset = (self.k - _int(low)).self_group()
        bucket = offset.op("/", return_type=sa.BigInteger())(_int(width))
        parts = []
        groups: Iterator[Sequence[Interval] | None] = (
            iter([None]) if intervals is None else _chunks(intervals, INTERVALS_PER_QUERY)
        )
        for group in groups:
            where = None if group is None else self._where(group)
            stmt = self.backend.verify_bucket_hashes(self.table, bucket, where, self.inputs)
            assert stmt is not None
            frame = pl.from_arrow(self.conn.fetch_arrow(stmt))
            assert isinstance(frame, pl.DataFrame)
            parts.append(frame.cast(STATS_SCHEMA))  # type: ignore[arg-type]
        return pl.concat(parts) if parts else pl.DataFrame(schema=STATS_SCHEMA)

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.rollback()
            self.sessions.release(conn)
            self.conn = None  # type: ignore[assignment]


class FrameSide(Side):
    """Client-side data (a DataFrame, Arrow, records, a Parquet or CSV file), cast to the
    table's column types as ``bulk_create`` would cast it.  In-memory inputs are cast
    once; files are streamed again on each pass, ``batch_size`` rows at a time."""

    def __init__(self, data: Any, columns: Mapping[str, Column], batch_size: int, table_name: str) -> None:
        import os

        super().__init__(batch_size)
        self.data, self.table_name = data, table_name
        self.target = dict(columns)
        self.streamed = isinstance(data, (str, os.PathLike))
        first = next(iter(self._conformed()), None)
        present = first.columns if first is not None else []
        self.columns = {n: self.target[n] for n in present}
        self.frame: pl.DataFrame | None = None
        if not self.streamed:
            parts = list(self._conformed())
            self.frame = pl.concat(parts, how="vertical_relaxed") if parts else None

    def _conformed(self) -> Iterator[pl.DataFrame]:
        from bulkframe.normalize import conform, open_source

        json_cols = {c.name for c in self.target.values() if c.kind == "json"}
        for chunk in open_source(self.data).chunks(self.batch_size, json_cols):
            table = conform(chunk.table, self.target, offset=chunk.offset, table_name=self.table_name).table
            frame = pl.from_arrow(table)
            assert isinstance(frame, pl.DataFrame)
            yield frame

    def prepare(self, names: Sequence[str], families: Mapping[str, str], tolerance: float | None) -> None:
        super().prepare(names, families, tolerance)
        self.key = self.names[0]

    def _filter(self, frame: pl.DataFrame, intervals: Sequence[Interval] | None) -> pl.DataFrame:
        frame = frame.select(self.names)
        if intervals is None:
            return frame
        starts = pl.Series([a for a, _ in intervals], dtype=pl.Int64)
        ends = pl.Series([b for _, b in intervals], dtype=pl.Int64)
        keys = frame[self.key].cast(pl.Int64)
        # intervals are sorted and disjoint: the one a key may fall in is the last start <= key
        slot = starts.search_sorted(keys, side="right").cast(pl.Int64) - 1
        valid = slot >= 0
        inside = valid & (keys < ends.gather(slot.clip(0, None)))
        return frame.filter(inside)

    def frames(self, intervals: Sequence[Interval] | None) -> Iterator[pl.DataFrame]:
        sources = [self.frame] if self.frame is not None else ([] if not self.streamed else self._conformed())
        for source in sources:
            filtered = self._filter(source, intervals)
            for offset in range(0, filtered.height, self.batch_size):
                part = filtered.slice(offset, self.batch_size)
                self.rows_read += part.height
                yield part

    def bounds(self) -> tuple[int | None, int | None, int]:
        low: int | None = None
        high: int | None = None
        rows = 0
        for frame in self.frames(None):
            keys = frame[self.key]
            if keys.null_count():
                raise SchemaError(f"the data has a null in key column {self.key!r}")
            if keys.len():
                a, b = int(keys.min()), int(keys.max())  # type: ignore[arg-type]
                low = a if low is None else min(low, a)
                high = b if high is None else max(high, b)
            rows += frame.height
        self.rows_read = 0
        return low, high, rows
