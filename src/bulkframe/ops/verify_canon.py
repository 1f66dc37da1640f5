"""The canonical row hash that full verification compares, computed client-side in Polars.

A row's hash is the MD5 of its *canonical text*: the canonical text of each compared value
(key columns first), joined by U+001F, a NULL written as U+001E.  The first 8 bytes of the
digest, read as two big-endian signed 32-bit integers, are the row's two hash parts; a key
range is summarised by its row count and the 64-bit sums of both parts.  A backend that
computes the same text and MD5 inside its database (:meth:`Backend.verify_digest`) is
compared with any other side range by range; the definition below is the contract both
keep, so PostgreSQL, a Parquet file read here and SQLite rows streamed here agree on the
same logical values.

Canonical text by *family* (the pair of column kinds compared must share one):

============  =====================================================================
``number``    ints and decimals: plain decimal text without trailing fractional zeros
              (``1.50`` and ``1.5000`` → ``1.5``; ``2.00`` → ``2``) — decimal scale
              never makes two equal values differ
``float``     the IEEE-754 bits of the value as a double, as signed int64 text
              (``-0.0`` → ``0``, any NaN → ``NaN``); with ``float_tolerance=t`` the bits
              of ``floor(x / t)`` instead (see :func:`float_canonical`)
``bool``      ``true`` / ``false``
``text``      the text itself (``uuid`` in its canonical lowercase 8-4-4-4-12 form)
``date``      days since 1970-01-01
``time``      microseconds since midnight
``instant``   ``timestamp`` and ``timestamptz``: microseconds since 1970-01-01 00:00 UTC
              (a naive timestamp is read as UTC wall time) — two zones showing the
              same instant are equal
``binary``    lowercase hex
``json``      the document with sorted keys and no spaces (client-side only: no backend
              hashes JSON in the database)
============  =====================================================================

A collision needs text values that contain U+001E or U+001F arranged to mimic a column
boundary, or an MD5 collision in the 64 bits kept; both only make a changed range look
equal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import polars as pl

from bulkframe.errors import SchemaError
from bulkframe.types import Column

SEPARATOR = "\x1f"
NULL = "\x1e"

FAMILIES: Mapping[str, str] = {
    "int16": "number",
    "int32": "number",
    "int64": "number",
    "decimal": "number",
    "float32": "float",
    "float64": "float",
    "bool": "bool",
    "text": "text",
    "uuid": "text",
    "date": "date",
    "time": "time",
    "timestamp": "instant",
    "timestamptz": "instant",
    "binary": "binary",
    "json": "json",
}


def family(source: Column, target: Column) -> str:
    """The family two compared columns share; ``SchemaError`` when they share none."""
    a, b = FAMILIES[source.kind], FAMILIES[target.kind]
    if a != b:
        raise SchemaError(
            f"column {target.name!r} cannot be compared: the source holds {source.kind} and the "
            f"table {target.kind} (compare numbers with numbers, text with text, timestamps with timestamps)"
        )
    return a


def float_canonical(expr: pl.Expr, tolerance: float | None) -> pl.Expr:
    """Bits of the double as int64 text (``-0.0`` as ``0``, NaN as ``NaN``).

    With a tolerance ``t`` the value hashed is ``floor(x / t)``: two values in the same
    bin of width ``t`` are within ``t`` of each other, so equal hashes never hide a
    difference larger than the tolerance; values on either side of a bin edge hash
    differently and their range is fetched, where the leaf comparison
    ``|a - b| <= t`` decides by value."""
    x = expr.cast(pl.Float64)
    if tolerance is not None:
        x = (x / tolerance).floor()
    x = pl.when(x == 0).then(pl.lit(0.0)).otherwise(x)
    bits = x.map_batches(_float_bits, return_dtype=pl.Int64).cast(pl.String)
    return pl.when(x.is_nan()).then(pl.lit("NaN")).otherwise(bits)


def _float_bits(series: pl.Series) -> pl.Series:
    """The float64 values' bits as int64 (Arrow buffers reinterpreted; no numpy)."""
    import pyarrow as pa

    arr = series.cast(pl.Float64).to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    bits = pa.Array.from_buffers(
        pa.int64(), len(arr), arr.buffers(), null_count=arr.null_count, offset=arr.offset
    )
    out = pl.from_arrow(bits)
    assert isinstance(out, pl.Series)
    return out.alias(series.name)


def _trim_decimal(text: pl.Expr) -> pl.Expr:
    stripped = text.str.replace(r"(\.\d*?)0+$", "${1}").str.replace(r"\.$", "")
    return pl.when(stripped == "-0").then(pl.lit("0")).otherwise(stripped)


def canonical_expr(name: str, fam: str, dtype: pl.DataType, tolerance: float | None) -> pl.Expr:
    """The canonical text of column ``name`` (Polars dtype ``dtype``) in family ``fam``."""
    col = pl.col(name)
    if fam == "number":
        if isinstance(dtype, pl.Decimal) or dtype == pl.String:
            return _trim_decimal(col.cast(pl.String))
        return col.cast(pl.Int64).cast(pl.String)
    if fam == "float":
        return float_canonical(col, tolerance)
    if fam == "bool":
        return pl.when(col).then(pl.lit("true")).otherwise(pl.lit("false"))
    if fam == "text":
        return col.cast(pl.String)
    if fam == "date":
        return col.cast(pl.Date).cast(pl.Int32).cast(pl.String)
    if fam == "time":
        return (col.cast(pl.Time).cast(pl.Int64) // 1000).cast(pl.String)
    if fam == "instant":
        return col.dt.epoch("us").cast(pl.String)
    if fam == "binary":
        return col.bin.encode("hex")
    if fam == "json":
        return col.map_batches(_json_canonical, return_dtype=pl.String)
    raise AssertionError(fam)  # pragma: no cover - FAMILIES lists every family


def _json_canonical(series: pl.Series) -> pl.Series:
    import orjson

    return pl.Series(
        series.name,
        [
            None if v is None else orjson.dumps(orjson.loads(v), option=orjson.OPT_SORT_KEYS).decode()
            for v in series.to_list()
        ],
        dtype=pl.String,
    )


def canonical_text(frame: pl.DataFrame, families: Mapping[str, str], tolerance: float | None) -> pl.Series:
    """One canonical text per row of ``frame`` over the columns of ``families`` (in order)."""
    parts = [
        canonical_expr(name, fam, frame.schema[name], tolerance).fill_null(NULL)
        for name, fam in families.items()
    ]
    return frame.select(pl.concat_str(parts, separator=SEPARATOR).alias("text")).to_series()


def hash_parts(texts: pl.Series) -> tuple[pl.Series, pl.Series]:
    """The two signed int32 hash parts (first 8 MD5 bytes, big-endian) of each text."""
    md5, word = hashlib.md5, int.from_bytes
    words = pl.Series(
        [word(md5(t.encode()).digest()[:8], "big", signed=True) for t in texts.to_list()], dtype=pl.Int64
    )
    high = words // (1 << 32)  # floor division: the arithmetic shift right by 32
    low = words - high * (1 << 32)  # the low 32 bits, unsigned …
    low = pl.select(pl.when(low >= 1 << 31).then(low - (1 << 32)).otherwise(low)).to_series()  # … signed
    return high, low


def row_hashes(frame: pl.DataFrame, families: Mapping[str, str], tolerance: float | None) -> pl.DataFrame:
    """``frame`` with ``__h1`` and ``__h2``: the row hash parts (see module docstring)."""
    if frame.height == 0:
        return frame.with_columns(__h1=pl.lit(0, pl.Int64), __h2=pl.lit(0, pl.Int64)).clear()
    h1, h2 = hash_parts(canonical_text(frame, families, tolerance))
    return frame.with_columns(pl.Series("__h1", h1), pl.Series("__h2", h2))


def check_families(
    names: Sequence[str], source: Mapping[str, Column], target: Mapping[str, Column]
) -> dict[str, str]:
    """``{column: family}`` for the compared columns (raises on a kind mismatch)."""
    return {n: family(source[n], target[n]) for n in names}
