"""Table-level steps the load modes need: create from column kinds, swap a new table in,
refill a table from a stage, read a high-water mark.  Each runs in one transaction
through the library's connection handling; no SQL names a database."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bulkframe.backends.base import TableRef

if TYPE_CHECKING:
    from bulkframe.database import Database
    from bulkframe.types import Column

#: PostgreSQL and most databases cut identifiers at 63 bytes
_MAX_NAME = 63


def scratch_name(prefix: str, table: str) -> str:
    """A unique name for a table bulkframe builds beside ``table`` (``_bf_`` tables are
    never listed by ``copy --all``)."""
    return f"_bf_{prefix}_{uuid.uuid4().hex[:8]}_{table}"[:_MAX_NAME]


def definition(db: Database, table: str) -> tuple[list[Column], list[tuple[str, ...]]] | None:
    """``(columns, unique keys other than the primary key)`` of ``table``, or ``None``."""
    ref = TableRef(table)
    with db.session(write=False) as conn:
        columns = db.backend.reflect(conn, ref)
        if columns is None:
            return None
        primary = tuple(c.name for c in columns if c.primary_key)
        unique = [u for u in db.backend.unique_keys(conn, ref) if tuple(u) != primary]
        return columns, unique


def plain(columns: Sequence[Column], *, keep_key: bool = True) -> list[Column]:
    """Column definitions for a new table: kinds, sizes and nullability kept; defaults
    (identity, serial, DEFAULT) dropped; the primary key kept when ``keep_key``."""
    return [
        dataclasses.replace(c, has_default=False, primary_key=c.primary_key and keep_key) for c in columns
    ]


def create(db: Database, table: str, columns: Sequence[Column], unique: Sequence[Sequence[str]] = ()) -> None:
    names = {c.name for c in columns}
    db.create_table(table, list(columns), unique=[u for u in unique if set(u) <= names], if_not_exists=False)


def swap_in(db: Database, new: str, table: str) -> None:
    """Drop ``table`` and rename ``new`` to it, in one transaction (atomic where the
    database's DDL is transactional: readers see the old table or the new one)."""
    backend = db.backend
    with db.session(lock=table) as conn:
        backend.drop_table(conn, TableRef(table))
        backend.rename_table(conn, TableRef(new), table)


def refill(db: Database, stage: str, table: str, columns: Sequence[Column]) -> int:
    """Delete every row of ``table`` and insert the rows of ``stage``, in one transaction;
    returns how many rows were deleted.  A column the stage left all NULL whose target
    column has a default (an identity key) is left to the default."""
    backend = db.backend
    target_ref, stage_ref = TableRef(table), TableRef(stage)
    target = backend.sa_table(target_ref, columns)
    staged = backend.sa_table(stage_ref, columns)
    with db.session(lock=table) as conn:
        defaulted = [c.name for c in columns if c.has_default]
        if defaulted:
            counts = conn.fetchall(sa.select(*(sa.func.count(staged.c[n]) for n in defaulted)))[0]
            skip = {n for n, count in zip(defaulted, counts, strict=True) if count == 0}
        else:
            skip = set()
        names = [c.name for c in columns if c.name not in skip]
        deleted = _count(conn, target)
        conn.run(sa.delete(target))
        conn.run(sa.insert(target).from_select(names, sa.select(*(staged.c[n] for n in names))))
        for c in columns:
            if c.has_default and c.primary_key and c.name not in skip:
                backend.advance_sequence(conn, target_ref, c.name)
        backend.drop_table(conn, stage_ref)
    return deleted


def _count(conn: Any, table: sa.Table) -> int:
    return int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def high_water_mark(db: Database, table: str, column: str) -> Any:
    """The largest ``column`` value of ``table`` (``None`` when it is empty or missing),
    as bulkframe reads the column (a ``datetime`` for a timestamp, …)."""
    found = definition(db, table)
    if found is None:
        return None
    columns = {c.name: c for c in found[0]}
    if column not in columns:
        from bulkframe.errors import SchemaError

        raise SchemaError(f"--update-key {column!r} is not a column of {table}; columns: {list(columns)}")
    backend = db.backend
    ref = TableRef(table)
    col = columns[column]
    t = backend.sa_table(ref, [col])
    with db.session(write=False) as conn:
        arrow = conn.fetch_arrow(sa.select(backend.read_column(sa.func.max(t.c[column]), col).label(column)))
    value = backend.read_cast(arrow, {column: col}).column(0)[0].as_py()
    return value
