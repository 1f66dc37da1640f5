"""Reads: a table (or some of its columns) back as Polars with logical types, whole or as
a stream of Arrow batches."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bulkframe.backends.base import TableRef
from bulkframe.errors import SchemaError
from bulkframe.read_ahead import read_ahead

if TYPE_CHECKING:
    import pyarrow as pa

    from bulkframe.backends.session import Sessions
    from bulkframe.database import Database
    from bulkframe.types import Column


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


def stream_table(
    db: Database,
    ref: TableRef,
    *,
    columns: Sequence[str] | None = None,
    filter: Mapping[str, Any] | None = None,
    batch_rows: int = 100_000,
    prefetch: int = 1,
) -> tuple[list[Column], pa.RecordBatchReader]:
    """The table's rows as a stream of Arrow batches with bulkframe's logical types.

    Memory stays bounded by the batch: where the backend streams one query
    (``capabilities.streamed_reads``) the driver's batches are cast one by one; otherwise
    the table is read a page of ``batch_rows`` rows at a time (keyset pages on the primary
    key, else ``LIMIT``/``OFFSET``), each page in its own read transaction.  The connection stays
    checked out until the reader is exhausted or closed.

    ``prefetch`` batches are read ahead by a background thread (:func:`read_ahead`), so
    the next read overlaps the caller's write of the last batch; memory holds at most
    ``prefetch + 2`` batches.

    Returns the selected columns (as :class:`~bulkframe.types.Column`) and the reader,
    whose schema is ``Column.arrow_type()`` of each.
    """
    import pyarrow as pa

    from bulkframe.filters import to_sql

    backend = db.backend
    conn = db.connection()
    try:
        cols = backend.reflect(conn, ref)
        if cols is None:
            raise SchemaError(f"table {ref} does not exist")
        by_name = {c.name: c for c in cols}
        wanted = list(columns) if columns is not None else list(by_name)
        unknown = [c for c in wanted if c not in by_name]
        if unknown:
            raise SchemaError(f"columns {unknown} are not in {ref}; columns: {list(by_name)}")
        chosen = [by_name[c] for c in wanted]
        refused = [f"{c.name} ({c.unsupported})" for c in chosen if c.unsupported]
        if refused:
            raise SchemaError(
                f"table {ref}: bulkframe cannot read column(s) {', '.join(refused)}; leave them out "
                "(select the other columns)"
            )
        table = backend.sa_table(ref, cols)
        stmt = sa.select(*(backend.read_column(table.c[c.name], c) for c in chosen))
        if filter:
            stmt = stmt.where(to_sql(filter, table, backend=backend))
        conn.commit()  # end the catalog read: no lock is held until the reader is consumed
    except BaseException:
        db.release(conn)
        raise
    schema = pa.schema([pa.field(c.name, c.arrow_type()) for c in chosen])
    known = {c.name: c for c in chosen}

    def cast(batch: pa.Table) -> pa.Table:
        return backend.read_cast(batch, known).cast(schema)

    def streamed() -> Iterator[pa.RecordBatch]:
        cur = conn.execute(stmt, options=backend.read_options)
        try:
            for batch in cur.fetch_record_batch():
                if batch.num_rows:
                    yield from cast(pa.Table.from_batches([batch])).to_batches()
        except Exception as exc:
            raise conn.failure(exc, f"reading {ref}") from exc
        finally:
            cur.close()

    def paged() -> Iterator[pa.RecordBatch]:
        keys = [c for c in cols if c.primary_key]
        keyed = bool(keys) and all(k.name in known for k in keys)
        last: tuple[Any, ...] | None = None
        offset = 0
        while True:
            page = stmt.limit(batch_rows)
            if keyed:
                page = page.order_by(*(table.c[k.name] for k in keys))
                if last is not None:
                    page = page.where(sa.tuple_(*(table.c[k.name] for k in keys)) > sa.tuple_(*last))
            else:
                page = page.offset(offset)
            arrow = conn.fetch_arrow(page)
            conn.commit()  # hold no read lock between pages (a writer of the same file may need it)
            if arrow.num_rows == 0:
                return
            typed = cast(arrow)
            yield from typed.to_batches()
            if arrow.num_rows < batch_rows:
                return
            offset += arrow.num_rows
            if keyed:
                last = tuple(typed.column(k.name)[-1].as_py() for k in keys)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from streamed() if backend.capabilities.streamed_reads else paged()
            conn.commit()
        finally:
            db.release(conn)

    return chosen, pa.RecordBatchReader.from_batches(schema, read_ahead(batches(), depth=prefetch))
