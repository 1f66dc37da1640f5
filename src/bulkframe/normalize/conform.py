"""Cast a chunk to the target table's column types; infer columns for new tables.

The target's types win.  A value that cannot be cast is reported with its column, input
row and value: raised as :class:`SchemaError`, or (``on_error="mask"``) returned as a
per-row mask so the caller can reject just those rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from bulkframe.errors import SchemaError
from bulkframe.normalize.numeric import cast_numeric, reason
from bulkframe.types import Column, kind_of_arrow

_NUMERIC_KINDS = frozenset(("int16", "int32", "int64", "float32", "float64", "decimal"))
_UUID_RE = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


@dataclass(frozen=True)
class Conformed:
    """A chunk cast to the target types.

    ``bad`` maps a column name to a boolean mask of rows whose value could not be cast
    (those values are null in ``table``); empty when every value fit.
    """

    table: pa.Table
    bad: dict[str, pa.ChunkedArray]


def infer_columns(schema: pa.Schema, primary_key: Sequence[str] = ()) -> list[Column]:
    """Columns for a new table, from the input's Arrow schema."""
    missing = [k for k in primary_key if k not in schema.names]
    if missing:
        raise SchemaError(f"primary_key names {missing}, which the data does not have; columns: {schema.names}")
    columns = []
    for field in schema:
        col = kind_of_arrow(field)
        if field.name in primary_key:
            col = Column(col.name, col.kind, nullable=False, primary_key=True,
                         precision=col.precision, scale=col.scale)
        columns.append(col)
    return columns


def conform(
    table: pa.Table,
    columns: Mapping[str, Column],
    *,
    offset: int = 0,
    on_error: str = "raise",
    table_name: str = "",
    hint: str = "",
    exact: bool = False,
) -> Conformed:
    """Cast every column of ``table`` to its target column's Arrow type.

    Columns the target lacks are an error naming them; target columns the input lacks
    are left out (the database fills defaults).  ``hint`` is appended to the error.
    ``exact=True`` refuses decimals that would need rounding to the column's scale
    (for a table bulkframe typed from the first rows of a stream).
    """
    unknown = [name for name in table.column_names if name not in columns]
    if unknown:
        raise SchemaError(
            f"input column(s) {unknown} do not exist in table {table_name!r}; "
            f"its columns are {list(columns)}. Rename or drop them before loading."
        )
    arrays: list[pa.ChunkedArray] = []
    bad: dict[str, pa.ChunkedArray] = {}
    for name in table.column_names:
        column = columns[name]
        source = table.column(name)
        cast, mask = _cast(source, column, exact)
        if mask is not None and len(mask) and pc.any(mask.cast(pa.bool_())).as_py():
            if on_error == "raise":
                row = pc.index(mask, True).as_py()
                value = source[row].as_py()
                if isinstance(value, Decimal) and value.as_tuple().exponent == 0:
                    value = int(value)  # a big Python int travels as a decimal
                why = reason(value, column)
                raise SchemaError(
                    f"column {name!r}, row {offset + row}: value {value!r:.100} cannot be "
                    f"stored as {describe(column)}" + (f": {why}" if why else "") + (f". {hint}" if hint else "")
                )
            bad[name] = mask
        arrays.append(cast)
    return Conformed(pa.table(arrays, names=table.column_names), bad)


def describe(column: Column) -> str:
    """Human name of a column's type, for messages."""
    if column.kind == "decimal":
        return f"decimal({column.precision},{column.scale})"
    return column.kind


def _plain(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """Strip dictionary encoding, views and extension types down to plain storage."""
    t = arr.type
    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.uuid":
            return _uuid_bytes_to_text(pa.chunked_array([c.storage for c in arr.chunks], t.storage_type))
        arr = pa.chunked_array([c.storage for c in arr.chunks], t.storage_type)
        t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_string_view(t):
        arr = arr.cast(pa.large_string())
    elif pa.types.is_binary_view(t):
        arr = arr.cast(pa.large_binary())
    return arr


def _cast(
    arr: pa.ChunkedArray, column: Column, exact: bool = False
) -> tuple[pa.ChunkedArray, pa.ChunkedArray | None]:
    target = column.arrow_type()
    arr = _plain(arr)
    t = arr.type
    if t == target:
        return arr, None
    if pa.types.is_null(t):
        return pa.chunked_array([pa.nulls(len(arr), target)]), None
    kind = column.kind
    if kind == "json":
        return _to_json(arr), None
    if kind == "uuid":
        return _to_uuid(arr)
    if kind in _NUMERIC_KINDS:
        numeric = cast_numeric(arr, column, exact=exact)
        if numeric is not None:
            return numeric
    if kind in ("timestamp", "timestamptz", "date") and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return _parse_temporal(arr, column)
    if pa.types.is_timestamp(t) and kind in ("timestamp", "timestamptz"):
        # tz-aware values keep their instant (stored as UTC); naive values are taken as UTC
        return arr.cast(target, safe=False), None
    if kind == "decimal" and not pa.types.is_integer(t):
        if pa.types.is_decimal(t) and t.scale <= target.scale:
            try:  # exact and ~1000x faster than Polars; an overflow falls through to locate it
                return arr.cast(target, safe=True), None
            except pa.ArrowInvalid:
                pass
        return _polars_cast(arr, column)  # floats, strings and fewer decimals round as the database would
    if kind == "binary" and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return arr.cast(pa.large_binary()), None
    if kind in ("text",) and (pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_large_list(t)):
        raise SchemaError(f"column {column.name!r}: nested values ({t}) cannot be stored in a text column")
    try:
        return arr.cast(target, safe=True), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _polars_cast(arr, column)


def _polars_cast(arr: pa.ChunkedArray, column: Column) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Cast through Polars with ``strict=False`` and report what became null."""
    import polars as pl

    target = column.arrow_type()
    series = pl.Series(arr)
    try:
        dtype = pl.from_arrow(pa.table({"x": pa.array([], target)})).schema["x"]  # type: ignore[union-attr]
        cast = series.cast(dtype, strict=False)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise SchemaError(
            f"column {column.name!r}: values of type {arr.type} cannot be stored as {describe(column)} ({exc})"
        ) from None
    out = cast.to_arrow().cast(target)
    mask = pc.and_(pc.is_null(out), pc.is_valid(arr))
    return pa.chunked_array([out]), pa.chunked_array([mask])


#: ISO 8601 shapes accepted for date/timestamp columns (after " "→"T" and "Z"→"+00:00").
_AWARE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M%:z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


def _parse_temporal(arr: pa.ChunkedArray, column: Column) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Parse ISO strings, each value by its own shape (offsets kept as instants)."""
    import polars as pl

    text = (
        pl.Series(arr).cast(pl.String).str.strip_chars()
        .str.replace(" ", "T", literal=True).str.replace(r"Z$", "+00:00")
    )
    parsed = pl.Series([None] * len(text), dtype=pl.Datetime("us", "UTC"))
    for fmt in _AWARE_FORMATS:
        parsed = parsed.fill_null(text.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC"))
    for fmt in _NAIVE_FORMATS:
        naive = text.str.to_datetime(fmt, strict=False, time_unit="us")
        parsed = parsed.fill_null(naive.dt.replace_time_zone("UTC"))
    if column.kind == "date":
        out = parsed.dt.date().to_arrow()
    elif column.kind == "timestamp":
        out = parsed.dt.replace_time_zone(None).to_arrow()
    else:
        out = parsed.to_arrow()
    out = out.cast(column.arrow_type())
    mask = pc.and_(pc.is_null(out), pc.is_valid(arr))
    return pa.chunked_array([out]), pa.chunked_array([mask])


def _to_json(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return arr.cast(pa.large_string())
    if pa.types.is_struct(t):
        import polars as pl

        encoded = pl.Series(arr).struct.json_encode().to_arrow().cast(pa.large_string())
        # a null struct is SQL NULL, not the JSON text "null"
        valid = pc.is_valid(arr.combine_chunks())
        return pa.chunked_array([pc.if_else(valid, encoded, pa.scalar(None, pa.large_string()))])
    import orjson

    from bulkframe.normalize.sources import _json_default

    values = arr.to_pylist()
    encoded_list = [None if v is None else orjson.dumps(v, default=_json_default).decode() for v in values]
    return pa.chunked_array([pa.array(encoded_list, pa.large_string())])


def _uuid_bytes_to_text(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    import polars as pl

    hexed = pl.col("h")
    text = (
        pl.DataFrame({"h": pl.Series(arr.cast(pa.large_binary())).bin.encode("hex")})
        .select(
            pl.concat_str(
                [hexed.str.slice(0, 8), hexed.str.slice(8, 4), hexed.str.slice(12, 4),
                 hexed.str.slice(16, 4), hexed.str.slice(20, 12)],
                separator="-",
            )
        )
        .to_series()
    )
    return pa.chunked_array([text.to_arrow().cast(pa.large_string())])


def _to_uuid(arr: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray | None]:
    t = arr.type
    if pa.types.is_fixed_size_binary(t) and t.byte_width == 16:
        return _uuid_bytes_to_text(arr), None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = pc.utf8_lower(pc.utf8_trim_whitespace(arr.cast(pa.large_string())))
        # accept the 32-hex-digit form and braces too, as Python's uuid.UUID does
        text = pc.replace_substring_regex(text, r"^\{|\}$", "")
        plain = pc.match_substring_regex(text, r"^[0-9a-f]{32}$")
        dashed = pc.replace_substring_regex(
            text, r"^([0-9a-f]{8})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{12})$", r"\1-\2-\3-\4-\5"
        )
        text = pc.if_else(plain, dashed, text)
        ok = pc.match_substring_regex(text, _UUID_RE)
        mask = pc.and_(pc.invert(pc.fill_null(ok, True)), pc.is_valid(arr))
        return pc.if_else(mask, pa.scalar(None, pa.large_string()), text), mask
    raise SchemaError(f"values of type {t} cannot be stored as uuid; pass strings or uuid.UUID objects")
