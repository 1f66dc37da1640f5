"""Cast a chunk to the target table's column types; infer columns for new tables.

The target's types win.  A value that cannot be cast is reported with its column, input
row and value: raised as :class:`SchemaError`, or (``on_error="mask"``) returned as a
per-row mask so the caller can reject just those rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

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
        raise SchemaError(
            f"primary_key names {missing}, which the data does not have; columns: {schema.names}"
        )
    columns = []
    for field in schema:
        col = kind_of_arrow(field)
        if field.name in primary_key:
            col = Column(
                col.name, col.kind, nullable=False, primary_key=True, precision=col.precision, scale=col.scale
            )
        columns.append(col)
    return columns


def conform(
    table: pa.Table,
    columns: Mapping[str, Column],
    *,
    offset: int = 0,
    on_error: str = "raise",
    table_name: str = "",
    where: Callable[[int], str] | None = None,
    hint: str = "",
    exact: bool = False,
) -> Conformed:
    """Cast every column of ``table`` to its target column's Arrow type.

    Columns the target lacks are an error naming them; target columns the input lacks
    are left out (the database fills defaults).  ``where(row)`` (optional) names where an
    input row sits in its source, e.g. its CSV line, for the error message.  ``hint`` is
    appended to the error.  ``exact=True`` refuses decimals that would need rounding to the
    column's scale (for a table bulkframe typed from the first rows of a stream).
    """
    unknown = [name for name in table.column_names if name not in columns]
    if unknown:
        raise SchemaError(
            f"input column(s) {unknown} do not exist in table {table_name!r}; "
            f"its columns are {list(columns)}. Rename or drop them before loading."
        )
    duplicated = sorted({n for n in table.column_names if table.column_names.count(n) > 1})
    if duplicated:
        raise SchemaError(
            f"the input has duplicate column name(s) {duplicated}; rename or drop the duplicates"
        )
    unsupported = [columns[n] for n in table.column_names if columns[n].unsupported]
    if unsupported:
        raise SchemaError(unsupported_message(unsupported, table_name))
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
                at = f"row {offset + row}" + (f" ({where(offset + row)})" if where is not None else "")
                raise SchemaError(
                    f"column {name!r}, {at}: value {value!r:.100} cannot be "
                    f"stored as {describe(column)}"
                    + (f": {why}" if why else _hint(column, value))
                    + (f". {hint}" if hint else "")
                )
            bad[name] = mask
        arrays.append(cast)
    return Conformed(pa.table(arrays, names=table.column_names), bad)


def unsupported_message(columns: Sequence[Column], table_name: str) -> str:
    """The refusal for writing columns whose database type bulkframe does not map."""
    named = ", ".join(f"{c.name!r} ({c.unsupported})" for c in columns)
    return (
        f"table {table_name!r}: bulkframe cannot write column(s) {named}: their database type is not "
        "supported. Leave them out of the input (the database fills their default or NULL), or change "
        "the column type (e.g. to text, numeric or jsonb)."
    )


def _hint(column: Column, value: Any) -> str:
    if column.kind == "bool" and isinstance(value, str):
        return " (accepted: true/false, t/f, yes/no, y/n, on/off, 1/0, as PostgreSQL accepts them)"
    if column.kind == "json" and isinstance(value, str):
        return " (a str for a JSON column must be a JSON document; invalid JSON)"
    if column.kind == "text" and not isinstance(value, str):
        return f" (a {type(value).__name__}; a text column takes str, int or bool values: convert it to str first)"
    return ""


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
    if t == target and column.kind not in ("json", "uuid"):  # JSON and uuid text is checked below
        return arr, None
    if pa.types.is_null(t):
        return pa.chunked_array([pa.nulls(len(arr), target)]), None
    kind = column.kind
    if kind == "json":
        return _to_json(arr)
    if kind == "uuid":
        return _to_uuid(arr)
    if kind in _NUMERIC_KINDS:
        numeric = cast_numeric(arr, column, exact=exact)
        if numeric is not None:
            return numeric
    if kind == "bool" and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return _parse_bool(arr)
    if (
        kind == "text"
        and not (
            pa.types.is_string(t)
            or pa.types.is_large_string(t)
            or pa.types.is_integer(t)
            or pa.types.is_boolean(t)
        )
        and not (pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_large_list(t))
    ):
        # floats, decimals, dates, bytes … have no one text spelling: refuse, naming the first value
        mask = pc.is_valid(arr)
        return pa.chunked_array([pa.nulls(len(arr), target)]), mask
    if kind in ("timestamp", "timestamptz", "date") and (
        pa.types.is_string(t) or pa.types.is_large_string(t)
    ):
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
        return _text_to_bytea(arr)
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
        pl.Series(arr)
        .cast(pl.String)
        .str.strip_chars()
        .str.replace(" ", "T", literal=True)
        .str.replace(r"Z$", "+00:00")
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


_BOOL_SPACE = " \t\n\r\v\f"
#: every spelling PostgreSQL's boolin accepts (after trimming and lower-casing): unique
#: prefixes of true/false/yes/no, on/off with at least two letters, and 1/0
_TRUE = ["t", "tr", "tru", "true", "y", "ye", "yes", "on", "1"]
_FALSE = ["f", "fa", "fal", "fals", "false", "n", "no", "of", "off", "0"]


def _parse_bool(arr: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Boolean strings as PostgreSQL reads them; anything else is masked (and named)."""
    text = pc.utf8_lower(pc.utf8_trim(arr.cast(pa.large_string()), _BOOL_SPACE))
    true = pc.is_in(text, value_set=pa.array(_TRUE, pa.large_string()))
    false = pc.is_in(text, value_set=pa.array(_FALSE, pa.large_string()))
    ok = pc.or_(true, false)
    out = pc.if_else(ok, true, pa.scalar(None, pa.bool_()))
    mask = pc.and_(pc.invert(ok), pc.is_valid(arr))
    return out, mask


def _to_json(arr: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray | None]:
    """JSON text for a JSON column.  A string is a JSON *document*: it is checked and kept
    as written (invalid JSON is masked); other values are encoded."""
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = arr.cast(pa.large_string())
        mask = _invalid_json_mask(text)
        if mask is None:
            return text, None
        return pc.if_else(mask, pa.scalar(None, pa.large_string()), text), pa.chunked_array([mask])
    if pa.types.is_struct(t) and not _has_decimal(t):  # Polars encodes decimals as JSON strings
        import polars as pl

        encoded = pl.Series(arr).struct.json_encode().to_arrow().cast(pa.large_string())
        # a null struct is SQL NULL, not the JSON text "null"
        valid = pc.is_valid(arr.combine_chunks())
        return pa.chunked_array([pc.if_else(valid, encoded, pa.scalar(None, pa.large_string()))]), None
    import orjson

    from bulkframe.normalize.sources import _json_default

    values = arr.to_pylist()
    encoded_list = [None if v is None else orjson.dumps(v, default=_json_default).decode() for v in values]
    return pa.chunked_array([pa.array(encoded_list, pa.large_string())]), None


def _invalid_json_mask(text: pa.ChunkedArray) -> pa.Array | None:
    """True where a text is not one JSON document (``None``: every text is one).  Each
    distinct text is checked once when the column repeats itself (status payloads, small
    settings objects: 1M rows of 392 distinct texts checked in 0.04 s instead of 0.6 s);
    a column of mostly distinct texts is checked value by value."""
    from bulkframe.normalize.sources import invalid_json

    distinct = pc.unique(text)
    if len(distinct) * 2 <= len(text):
        bad = invalid_json(distinct.to_pylist())
        if not bad:
            return None
        refused = distinct.take(pa.array(bad, pa.int64()))
        return pc.fill_null(pc.is_in(text, value_set=refused), False).combine_chunks()
    positions = invalid_json(text.to_pylist())
    if not positions:
        return None
    return pc.is_in(pa.array(range(len(text)), pa.int64()), value_set=pa.array(positions, pa.int64()))


def _text_to_bytea(arr: pa.ChunkedArray) -> tuple[pa.ChunkedArray, pa.ChunkedArray | None]:
    """Text for a binary column, read as PostgreSQL's ``bytea`` input reads it: ``\\x``
    followed by hex digits (whitespace between pairs allowed), or the escape format (bytes
    as written; ``\\\\`` is one backslash and ``\\ooo`` an octal byte); other backslashes are
    refused."""
    text = arr.cast(pa.large_string())
    has_backslash = pc.fill_null(pc.match_substring(text, "\\"), False)
    if not pc.any(has_backslash).as_py():
        return text.cast(pa.large_binary()), None
    values = text.to_pylist()
    out: list[bytes | None] = []
    bad: list[bool] = []
    for v in values:
        decoded = None if v is None else _bytea_in(v)
        out.append(decoded)
        bad.append(v is not None and decoded is None)
    return pa.chunked_array([pa.array(out, pa.large_binary())]), pa.chunked_array([pa.array(bad)])


def _bytea_in(value: str) -> bytes | None:
    import re

    if value.startswith("\\x"):
        digits = re.sub(r"\s", "", value[2:])
        try:
            return bytes.fromhex(digits) if len(digits) % 2 == 0 else None
        except ValueError:
            return None
    out = bytearray()
    i = 0
    raw = value.encode()
    while i < len(raw):
        if raw[i] != 0x5C:  # backslash
            out.append(raw[i])
            i += 1
        elif raw[i + 1 : i + 2] == b"\\":
            out.append(0x5C)
            i += 2
        elif re.fullmatch(rb"[0-3][0-7][0-7]", raw[i + 1 : i + 4]):
            out.append(int(raw[i + 1 : i + 4], 8))
            i += 4
        else:
            return None
    return bytes(out)


def _has_decimal(t: pa.DataType) -> bool:
    if pa.types.is_decimal(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_decimal(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _has_decimal(t.value_type)
    return False


def _uuid_bytes_to_text(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    import polars as pl

    hexed = pl.col("h")
    text = (
        pl.DataFrame({"h": pl.Series(arr.cast(pa.large_binary())).bin.encode("hex")})
        .select(
            pl.concat_str(
                [
                    hexed.str.slice(0, 8),
                    hexed.str.slice(8, 4),
                    hexed.str.slice(12, 4),
                    hexed.str.slice(16, 4),
                    hexed.str.slice(20, 12),
                ],
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
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        # 16 raw bytes are a uuid (as uuid.UUID(bytes=…)); any other length is refused
        ok = pc.equal(pc.binary_length(arr), 16)
        mask = pc.invert(pc.fill_null(ok, True))
        raw = pc.if_else(ok, arr, pa.scalar(bytes(16), arr.type)).cast(pa.binary(16))
        text = _uuid_bytes_to_text(raw)
        return pc.if_else(pc.fill_null(ok, False), text, pa.scalar(None, pa.large_string())), mask
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
