"""``bulk_create_nested``: parents and their nested children in bulk, in one transaction.

Rows like ``{"name": "Ann", "profile": {"bio": "…"}}`` (one child) or
``{"name": "Ann", "posts": [{"title": "…"}, …]}`` (many) are split with column
expressions, never row loops:

1. the parents' ids are reserved in ONE round trip (PostgreSQL: ``nextval`` of the
   identity sequence over ``generate_series``; single-writer SQLite: ``max(id) + 1 …``
   under the write lock), unless the input carries them;
2. the parents are bulk-inserted with those ids;
3. each nested field is unnested (``explode`` for lists), its foreign key set to the
   parent's id, and bulk-inserted into the child table;

all on one connection in one transaction: a refused parent or child keeps nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from bulkframe.backends.base import TableRef, table_ref
from bulkframe.errors import InvalidOptionValueError, SchemaError, ValidationError
from bulkframe.normalize import open_source
from bulkframe.plan.run import OperationRun
from bulkframe.result import BulkResult
from bulkframe.rules.prepare import Preparer
from bulkframe.types import Column

if TYPE_CHECKING:
    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions
    from bulkframe.database import Database


@dataclass(frozen=True)
class Nested:
    """One nested field of the parent rows.

    Attributes
    ----------
    field : str
        Key of the parent rows holding the child (a dict) or children (a list of dicts).
    table : str or model class
        The child table.
    foreign_key : str
        Child column that receives the parent's key.
    many : bool
        ``True`` when ``field`` holds a list of children.
    """

    field: str
    table: Any
    foreign_key: str
    many: bool = False


def bulk_create_nested(
    db: Database,
    table: Any,
    data: Any,
    /,
    *,
    nested: Sequence[Nested],
    key: str = "id",
    batch_size: int = 10_000,
    validate: bool = True,
) -> BulkResult:
    """Insert parents and their nested children, linked by foreign key, in one transaction.

    Parameters
    ----------
    db : Database
        Where to write (``bulkframe.connect(url)``).
    table : str or model class
        The parent table; it must exist, and ``key`` must be auto-numbered unless every
        input row carries it.
    data
        A list of dicts, or a Polars/pandas/Arrow frame with struct (one) or list-of-struct
        (many) columns for the nested fields.
    nested : list of Nested
        The nested fields to create.
    key : str
        The parent's key column the children's foreign keys refer to.
    batch_size : int
        Rows per ingest.
    validate : bool
        Check the tables' NOT NULL / length constraints before sending (rejected rows raise
        ``ValidationError`` and nothing is kept).

    Returns
    -------
    BulkResult
        ``inserted`` counts parents; ``metrics["nested"]`` maps each field to its child
        table and inserted children.

    Examples
    --------
    >>> bulk_create_nested(db, "users", [{"name": "Ann", "profile": {"bio": "hi"}}],
    ...                    nested=[Nested("profile", "profiles", "user_id")])  # doctest: +SKIP
    """
    if not nested:
        raise InvalidOptionValueError("bulk_create_nested needs at least one Nested field")
    frame = _frame(data)
    fields = [n.field for n in nested]
    missing = [f for f in fields if f not in frame.columns]
    if missing:
        raise SchemaError(f"nested field(s) {missing} are not in the input; its columns: {frame.columns}")
    parent_ref = table_ref(table, None)
    op = OperationRun("create", str(parent_ref))
    result = op.result
    result.records_processed = frame.height
    sessions = db.sessions
    try:
        _create(sessions, op, parent_ref, frame, nested, key, batch_size, validate)
    except BaseException as exc:  # one transaction, rolled back: every row failed
        result.failure_count = result.records_processed
        op.failed(exc)
        raise
    return op.finish()


def _create(
    sessions: Sessions,
    op: OperationRun,
    parent_ref: TableRef,
    frame: pl.DataFrame,
    nested: Sequence[Nested],
    key: str,
    batch_size: int,
    validate: bool,
) -> None:
    backend = sessions.backend
    counts: dict[str, Any] = {}
    fields = [n.field for n in nested]
    with sessions.session(lock=parent_ref) as conn:
        parent_cols = _columns(conn, sessions, parent_ref)
        if key in frame.columns and frame[key].null_count() == 0:
            ids = frame[key]
        else:
            ids = pl.Series(key, backend.allocate_ids(conn, parent_ref, key, frame.height), pl.Int64)
            frame = frame.with_columns(ids.alias(key))
        _write(conn, sessions, parent_ref, parent_cols, frame.drop(fields), batch_size, validate)
        for spec in nested:
            child_ref = table_ref(spec.table, None)
            child = frame.select(pl.col(key).alias(spec.foreign_key), pl.col(spec.field))
            if spec.many:
                child = child.explode(spec.field)
            child = child.filter(pl.col(spec.field).is_not_null())
            if not isinstance(child.schema[spec.field], pl.Struct):
                raise SchemaError(
                    f"nested field {spec.field!r} must hold {'lists of ' if spec.many else ''}"
                    f"dicts, got {child.schema[spec.field]}"
                )
            child = child.unnest(spec.field)
            written = _write(
                conn, sessions, child_ref, _columns(conn, sessions, child_ref), child, batch_size, validate
            )
            counts[spec.field] = {"table": str(child_ref), "inserted": written}
    op.result.inserted = op.result.success_count = frame.height
    op.result.metrics["nested"] = counts


def _frame(data: Any) -> pl.DataFrame:
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, list | tuple):
        return pl.DataFrame(list(data), infer_schema_length=None)
    if isinstance(data, pa.Table):
        return pl.DataFrame(data)
    if type(data).__module__.startswith("pandas"):
        return pl.from_pandas(data)
    raise InvalidOptionValueError(
        f"nested create takes a list of dicts or a Polars/pandas/Arrow frame, got {type(data).__name__}"
    )


def _columns(conn: Connection, sessions: Sessions, ref: TableRef) -> dict[str, Column]:
    cols = sessions.backend.reflect(conn, ref)
    if cols is None:
        raise SchemaError(f"table {ref} does not exist; nested create writes existing tables only")
    return {c.name: c for c in cols}


def _write(
    conn: Connection,
    sessions: Sessions,
    ref: TableRef,
    columns: dict[str, Column],
    frame: pl.DataFrame,
    batch_size: int,
    validate: bool,
) -> int:
    prepare = Preparer(columns, table_name=str(ref), check_constraints=validate, strict_cast=True)
    json_columns = {c.name for c in columns.values() if c.kind == "json"}
    written = 0
    for chunk in open_source(frame).chunks(batch_size, json_columns):
        prepared = prepare(chunk)
        if prepared.rejected is not None:
            raise ValidationError(
                f"{prepared.rejected_count} row(s) for {ref} were rejected; nothing was kept",
                errors=prepared.rejected,
            )
        conn.ingest(ref, sessions.backend.to_ingest(prepared.table, columns))
        written += prepared.table.num_rows
    return written
