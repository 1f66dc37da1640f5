"""Column kinds: the one vocabulary between Arrow types and SQL types.

A :class:`Column` describes one column of a target table with a backend-neutral
*kind* (``"int64"``, ``"decimal"``, ``"timestamptz"``, ``"json"``, …).  Backends map kinds
to DDL and to the exact Arrow type their bulk path accepts; the normalize stage maps
incoming Arrow types to kinds (for new tables) and casts batches to the target's kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from bulkframe.errors import SchemaError

Kind = Literal[
    "int16",
    "int32",
    "int64",
    "float32",
    "float64",
    "decimal",
    "bool",
    "text",
    "date",
    "time",
    "timestamp",
    "timestamptz",
    "json",
    "uuid",
    "binary",
]

KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Column:
    """One column of a target table.

    Attributes
    ----------
    name : str
        Column name, exactly as stored (never case-folded).
    kind : Kind
        Backend-neutral type kind.
    nullable : bool
        False when the column is NOT NULL.
    primary_key : bool
        True for primary-key columns.
    precision, scale : int | None
        For ``decimal``: ``numeric(precision, scale)``.
    length : int | None
        For ``text``: the ``n`` of ``varchar(n)``, if any.
    has_default : bool
        The database fills the column when it is omitted (serial, identity, DEFAULT).
    unsupported : str | None
        The database type name when bulkframe cannot write that type (PostgreSQL
        ``money``, ``interval``, arrays, …): writes that include the column are refused.
    """

    name: str
    kind: str
    nullable: bool = True
    primary_key: bool = False
    precision: int | None = None
    scale: int | None = None
    length: int | None = None
    has_default: bool = False
    unsupported: str | None = None

    def arrow_type(self) -> pa.DataType:
        """The Arrow type a value of this column has inside bulkframe."""
        if self.kind == "decimal":
            precision = self.precision or 38
            scale = self.scale if self.scale is not None else (0 if self.precision else 10)
            return pa.decimal128(precision, scale)
        return _KIND_TO_ARROW[self.kind]


_KIND_TO_ARROW: dict[str, pa.DataType] = {
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "text": pa.large_string(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "json": pa.large_string(),  # JSON text inside bulkframe; backends wrap it on ingest
    "uuid": pa.large_string(),  # canonical 8-4-4-4-12 text inside bulkframe
    "binary": pa.large_binary(),
}


def arange(n: int, start: int = 0) -> pa.Array:
    """``[start, start + n)`` as an int64 Arrow array, without a Python loop."""
    import polars as pl

    return pl.int_range(start, start + n, eager=True, dtype=pl.Int64).to_arrow()


def kind_of_arrow(field: pa.Field) -> Column:
    """Infer the column a new table needs for an incoming Arrow field."""
    t = field.type
    name = field.name
    if isinstance(t, pa.BaseExtensionType):
        ext = t.extension_name
        if ext == "arrow.uuid":
            return Column(name, "uuid")
        if ext == "arrow.json":
            return Column(name, "json")
        t = t.storage_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return Column(name, "int16")
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return Column(name, "int32")
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return Column(name, "int64")
    if pa.types.is_uint64(t):
        return Column(name, "decimal", precision=20, scale=0)
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return Column(name, "float32")
    if pa.types.is_float64(t):
        return Column(name, "float64")
    if pa.types.is_decimal(t):
        return Column(name, "decimal", precision=t.precision, scale=t.scale)
    if pa.types.is_boolean(t):
        return Column(name, "bool")
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return Column(name, "text")
    if pa.types.is_null(t):
        return Column(name, "text")
    if pa.types.is_date(t):
        return Column(name, "date")
    if pa.types.is_time(t):
        return Column(name, "time")
    if pa.types.is_timestamp(t):
        return Column(name, "timestamptz" if t.tz else "timestamp")
    if pa.types.is_fixed_size_binary(t) and t.byte_width == 16 and name.lower().endswith("id"):
        return Column(name, "uuid")
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return Column(name, "binary")
    if pa.types.is_binary_view(t):
        return Column(name, "binary")
    if (
        pa.types.is_struct(t)
        or pa.types.is_map(t)
        or pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_list_view(t)
        or pa.types.is_fixed_size_list(t)
    ):
        return Column(name, "json")
    raise SchemaError(
        f"column {name!r}: no SQL column type for Arrow type {field.type}; "
        "cast it to a supported type (int, float, decimal, bool, string, date, "
        "timestamp, binary, struct/list for JSON) before loading"
    )
