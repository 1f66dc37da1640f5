"""Numeric conversions that agree with PostgreSQL's own casts, value for value.

Rules (each checked against the server's ``CAST`` by ``tests/conformance/test_numeric_property.py``):

* **into integer columns** — a value lands only when it is a whole number inside the
  column's range.  Floats and decimals with a fractional part are *refused*, not rounded
  or truncated (PostgreSQL would round ``2.7::int`` to 3; bulkframe refuses to guess).
  ``2.0`` lands as 2.  Text is parsed like PostgreSQL parses an integer: optional spaces
  and sign, digits only (``"2.0"`` and ``"1e3"`` are refused, as by the server).
* **into numeric(p, s)** — rounded to ``s`` decimals *half away from zero*, like
  PostgreSQL (``1.005`` → ``1.01``, ``-1.005`` → ``-1.01``).  A float goes through its
  15-significant-digit text first, as PostgreSQL's ``float8 → numeric`` cast does
  (``0.30000000000000004`` → ``0.300000000000000``).  More than ``p - s`` integer digits,
  NaN and infinities are refused.
* **into real / double precision** — decimals and text are parsed to the nearest float
  (the server's ``strtod``/``strtof``); a double into ``real`` is rounded to nearest.  A
  finite value that would become infinite, or a non-zero value that would become 0, is
  refused (PostgreSQL: "value out of range: overflow/underflow").

Each function returns the converted array and a mask of the rows refused (their
values are null in the array); the caller names column, row and value.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bulkframe.types import Column

INT_RANGE = {"int16": (-(2**15), 2**15 - 1), "int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_PL_INT = {"int16": "Int16", "int32": "Int32", "int64": "Int64"}
#: PostgreSQL's numeric input syntax (PG 15): sign, digits with an optional point, exponent.
_NUMERIC_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INF_WORDS = ["inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"]
_FLOAT15 = Context(prec=15, rounding=ROUND_HALF_EVEN)  # printf("%.15g") of the exact binary value
_WIDE = Context(prec=2000, Emax=10**6, Emin=-(10**6))

Result = tuple[pa.ChunkedArray, pa.ChunkedArray | None]


def is_string(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def cast_numeric(arr: pa.ChunkedArray, column: Column, *, exact: bool = False) -> Result | None:
    """Convert ``arr`` (plain storage) for a numeric ``column``; ``None`` when the pair is
    not one this module handles (the generic cast applies).  ``exact=True`` refuses a
    decimal that would need rounding to the column's scale."""
    kind, t = column.kind, arr.type
    if kind in INT_RANGE:
        if pa.types.is_floating(t):
            return _float_to_int(arr, kind)
        if pa.types.is_decimal128(t):
            return _decimal_to_int(arr, kind)
        if is_string(t):
            return _string_to_int(arr, kind)
        return None
    if kind in ("float32", "float64"):
        if pa.types.is_floating(t):
            return _float_to_float(arr, kind)
        if pa.types.is_decimal(t):
            # Arrow's decimal → string is exact and its string → float is correctly
            # rounded (as the server's strtod/strtof); decimal → float directly is not
            return pa.chunked_array([arr.cast(pa.string()).cast(column.arrow_type())]), None
        if is_string(t):
            return _string_to_float(arr, kind)
        return None
    if kind == "decimal":
        if pa.types.is_decimal128(t) and t.scale > column.arrow_type().scale:
            return _decimal_to_decimal(arr, column, exact)
        if pa.types.is_floating(t):
            return _text_to_decimal(arr, column, _from_float, exact)
        if is_string(t):
            return _text_to_decimal(arr, column, _from_text, exact)
    return None


def reason(value: Any, column: Column) -> str:
    """Why ``value`` was refused for a numeric ``column`` (for the error message)."""
    kind = column.kind
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return "it is not a finite number"
    if kind in INT_RANGE:
        lo, hi = INT_RANGE[kind]
        if isinstance(value, (float, Decimal)) and value == value and abs(value) != float("inf"):
            if value != int(value):
                return (
                    "it has a fractional part; bulkframe never truncates or rounds into an integer "
                    "column: round the values first, or store them in a numeric/float column"
                )
            return f"it is outside the range of {kind} ({lo}..{hi})"
        if isinstance(value, int):
            return f"it is outside the range of {kind} ({lo}..{hi})"
        if isinstance(value, str):
            return "it is not an integer literal (digits with an optional sign)"
    if kind == "decimal":
        p, s = column.arrow_type().precision, column.arrow_type().scale
        if isinstance(value, str) and _from_text(value) is None:
            return "it is not a number"
        if isinstance(value, float) and _from_float(value) is None:
            return "NaN and infinity have no decimal value"
        return f"it needs more than {p - s} digit(s) before the decimal point (numeric({p},{s}))"
    if kind in ("float32", "float64"):
        return "it is not a number, or out of range for the column's floating-point type"
    return ""


# ---------------------------------------------------------------------------- integers
def _float_to_int(arr: pa.ChunkedArray, kind: str) -> Result:
    lo, hi = INT_RANGE[kind]
    a = arr.cast(pa.float64())  # float32 → float64 is exact
    whole = pc.equal(pc.trunc(a), a)  # NaN is not whole; ±inf fail the range below
    inside = pc.and_(
        pc.greater_equal(a, float(lo)), pc.less(a, float(hi) + 1.0)
    )  # float(hi)+1 == 2**k exactly
    bad = pc.and_(pc.invert(pc.fill_null(pc.and_(whole, inside), True)), pc.is_valid(a))
    clean = pc.if_else(bad, pa.scalar(None, pa.float64()), a)
    return clean.cast(INT_TYPES[kind]), bad


def _decimal_to_int(arr: pa.ChunkedArray, kind: str) -> Result:
    import polars as pl

    t = arr.type
    if t.precision >= 38:
        return _python_int(arr, kind)
    roomy = arr.cast(pa.decimal128(t.precision + 1, t.scale))  # Arrow wants room for the rounded value
    whole_part = pc.round(roomy, ndigits=0, round_mode="towards_zero")
    frac = pc.not_equal(whole_part, roomy)
    digits = max(1, t.precision - t.scale)
    as_int = pl.Series(whole_part.cast(pa.decimal128(min(38, digits + 1), 0))).cast(
        getattr(pl, _PL_INT[kind]), strict=False
    )
    out = as_int.to_arrow().cast(INT_TYPES[kind])
    overflow = pc.and_(pc.is_null(out), pc.is_valid(arr.combine_chunks()))
    bad = pc.or_(pc.fill_null(frac.combine_chunks(), False), overflow)
    return pa.chunked_array([pc.if_else(bad, pa.scalar(None, out.type), out)]), pa.chunked_array([bad])


def _python_int(arr: pa.ChunkedArray, kind: str) -> Result:
    lo, hi = INT_RANGE[kind]
    out: list[int | None] = []
    bad: list[bool] = []
    for value in arr.to_pylist():
        ok = value is None or (value == value.to_integral_value() and lo <= value <= hi)
        out.append(int(value) if value is not None and ok else None)
        bad.append(not ok)
    return pa.chunked_array([pa.array(out, INT_TYPES[kind])]), pa.chunked_array([pa.array(bad, pa.bool_())])


def _string_to_int(arr: pa.ChunkedArray, kind: str) -> Result:
    import polars as pl

    out = pl.Series(arr).str.strip_chars().cast(getattr(pl, _PL_INT[kind]), strict=False).to_arrow()
    out = out.cast(INT_TYPES[kind])
    bad = pc.and_(pc.is_null(out), pc.is_valid(arr.combine_chunks()))
    return pa.chunked_array([out]), pa.chunked_array([bad])


INT_TYPES = {"int16": pa.int16(), "int32": pa.int32(), "int64": pa.int64()}


# ------------------------------------------------------------------------------ floats
def _float_to_float(arr: pa.ChunkedArray, kind: str) -> Result:
    target = pa.float32() if kind == "float32" else pa.float64()
    out = arr.cast(target, safe=False)  # round to nearest, as C's (float) cast in PostgreSQL's dtof()
    if kind == "float64":
        return out, None
    bad = _range_mask(arr.cast(pa.float64()), out)
    return pc.if_else(bad, pa.scalar(None, target), out), bad


def _range_mask(wide: pa.ChunkedArray, out: pa.ChunkedArray) -> pa.ChunkedArray:
    overflow = pc.and_(pc.is_finite(wide), pc.invert(pc.is_finite(out)))
    underflow = pc.and_(pc.not_equal(wide, 0.0), pc.equal(out, 0.0))
    return pc.fill_null(pc.or_(overflow, underflow), False)


def _string_to_float(arr: pa.ChunkedArray, kind: str) -> Result:
    import polars as pl

    text = pl.Series(arr).cast(pl.String).str.strip_chars()
    dtype = pl.Float32 if kind == "float32" else pl.Float64
    value = text.cast(dtype, strict=False)
    frame = pl.DataFrame({"t": text, "v": value})
    bad = (
        frame.select(
            (pl.col("t").is_not_null() & pl.col("v").is_null())
            # "1e400" parses as inf, "1e-400" as 0: the server refuses both as out of range
            | (pl.col("v").is_infinite() & ~pl.col("t").str.to_lowercase().is_in(_INF_WORDS))
            | ((pl.col("v") == 0) & pl.col("t").str.contains(r"^[+-]?[0-9.]*[1-9]"))
        )
        .to_series()
        .fill_null(False)
    )
    out = value.to_arrow().cast(pa.float32() if kind == "float32" else pa.float64())
    mask = bad.to_arrow()
    return pa.chunked_array([pc.if_else(mask, pa.scalar(None, out.type), out)]), pa.chunked_array([mask])


# ---------------------------------------------------------------------------- decimals
def _decimal_to_decimal(arr: pa.ChunkedArray, column: Column, exact: bool = False) -> Result:
    """More scale than the column: round half away from zero (vectorized), then narrow."""
    import polars as pl

    target = column.arrow_type()
    t = arr.type
    if t.precision >= 38:
        return _python_decimal(arr, column, lambda v: v, exact)
    roomy = arr.cast(pa.decimal128(t.precision + 1, t.scale))  # 99.995 → 100.000 needs a digit
    rounded = pc.round(roomy, ndigits=target.scale, round_mode="half_towards_infinity")
    digits = t.precision + 1 - t.scale + target.scale
    narrowed = rounded.cast(pa.decimal128(min(38, digits), target.scale))
    out = pl.Series(narrowed).cast(pl.Decimal(target.precision, target.scale), strict=False).to_arrow()
    out = out.cast(target)
    bad = pc.and_(pc.is_null(out), pc.is_valid(arr.combine_chunks()))
    if exact:
        bad = pc.or_(bad, pc.fill_null(pc.not_equal(rounded, roomy), False).combine_chunks())
        out = pc.if_else(bad, pa.scalar(None, target), out)
    return pa.chunked_array([out]), pa.chunked_array([bad])


def float_to_decimal(value: float) -> Decimal:
    """PostgreSQL's ``float8 → numeric``: ``printf("%.15g")`` of the exact binary value
    (15 significant digits, trailing zeros dropped)."""
    return _FLOAT15.create_decimal_from_float(value).normalize(_FLOAT15)


def _from_float(value: float) -> Decimal | None:
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return float_to_decimal(value)


def _from_text(value: str) -> Decimal | None:
    text = value.strip()
    if not _NUMERIC_TEXT.match(text):
        return None
    return Decimal(text)


#: plain decimal text that Arrow casts exactly into ``_ROOMY``
_PLAIN = r"^[+-]?\d{1,18}(\.\d{0,18})?$"
_ROOMY = pa.decimal128(36, 18)


def _text_to_decimal(arr: pa.ChunkedArray, column: Column, parse: Any, exact: bool) -> Result:
    """Floats or text into ``numeric``: vectorized for the values whose exact decimal is
    plain text of at most 18 + 18 digits (for floats: a shortest repr of at most 15
    significant digits, which is then also their ``%.15g``), each other value by
    :func:`_python_decimal` with ``parse``.  Same results either way."""
    import polars as pl

    if column.arrow_type().scale > _ROOMY.scale:
        return _python_decimal(arr, column, parse, exact)
    series = pl.Series(arr)
    if series.dtype.is_float():
        text = series.cast(pl.Float64).cast(pl.String)
        digits = text.str.replace_all(r"[-+.]", "").str.strip_chars_start("0").str.len_chars()
        fast = text.str.contains(_PLAIN) & (digits <= 15)
    else:
        text = series.cast(pl.String).str.strip_chars()
        fast = text.str.contains(_PLAIN)
    fast_arrow = fast.fill_null(False).to_arrow()
    exact_text = pc.if_else(fast_arrow, text.to_arrow().cast(pa.string()), pa.scalar(None, pa.string()))
    out, bad = _decimal_to_decimal(pa.chunked_array([exact_text.cast(_ROOMY)]), column, exact)
    assert bad is not None  # _decimal_to_decimal always reports a mask
    slow = pc.and_(pc.invert(fast_arrow), pc.is_valid(arr.combine_chunks()))
    if not pc.any(slow).as_py():
        return out, bad
    slow_out, slow_bad = _python_decimal(arr.filter(slow), column, parse, exact)
    assert slow_bad is not None
    merged = pc.replace_with_mask(out.combine_chunks(), slow, slow_out.combine_chunks())
    merged_bad = pc.replace_with_mask(bad.combine_chunks(), slow, slow_bad.combine_chunks())
    return pa.chunked_array([merged]), pa.chunked_array([merged_bad])


def _python_decimal(arr: pa.ChunkedArray, column: Column, parse: Any, exact: bool = False) -> Result:
    """Per value, with :mod:`decimal`: ``ROUND_HALF_UP`` is PostgreSQL's rounding."""
    target = column.arrow_type()
    quantum = Decimal(1).scaleb(-target.scale)
    limit = target.precision - target.scale  # integer digits allowed
    out: list[Decimal | None] = []
    bad: list[bool] = []
    for value in arr.to_pylist():
        if value is None:
            out.append(None)
            bad.append(False)
            continue
        d = parse(value)
        if d is not None and d.is_finite() and d.adjusted() < limit + 1:
            try:
                rounded = d.quantize(quantum, rounding=ROUND_HALF_UP, context=_WIDE)
                d = None if exact and rounded != d else rounded
            except InvalidOperation:
                d = None
            if d is not None and (d.is_zero() or d.adjusted() < limit):
                out.append(d)
                bad.append(False)
                continue
        out.append(None)
        bad.append(True)
    return pa.chunked_array([pa.array(out, target)]), pa.chunked_array([pa.array(bad, pa.bool_())])
