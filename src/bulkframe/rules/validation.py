"""Validation rules compiled to Polars expressions, and the accepted/rejected split.

``{"price": {"min": 0.01}, "sku": {"required": True, "pattern": "^[A-Z]{3}-\\d+$"}}``
compiles to one :class:`Check` per (column, rule).  :func:`split` evaluates every check in
one vectorised pass and returns the accepted rows and the rejected rows, each rejected
row with all of its violations.  Only ``required`` and ``expr`` fire on a null value; the
other rules treat null as passing.  The rule kinds are documented in ``docs/rules.md``.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import polars as pl

from bulkframe.errors import ExpressionError, SchemaError, quote_name, quote_names
from bulkframe.rules.expressions import CAST_TYPES, polars_cast, to_polars

#: Placeholder in :attr:`Check.message` for the offending value.
VALUE = "{value}"
VIOLATIONS = "__violations__"
VIOLATION_DTYPE = pl.List(
    pl.Struct({"field": pl.String, "rule": pl.String, "value": pl.String, "message": pl.String})
)
ColumnMeta = tuple[str, bool, int | None, int | None, int | None]


@dataclass(frozen=True)
class Check:
    """One compiled rule.

    Attributes
    ----------
    field : str
        The column (or, for ``expr``, any label) the rule belongs to.
    rule : str
        The rule kind, e.g. ``"min"``.
    param : Any
        The rule's parameter as given.
    violated : pl.Expr
        True where a row breaks the rule; never null.
    message : str
        Human message; ``{value}`` stands for the row's value, e.g.
        ``"price={value} is below min 0.01"``.
    """

    field: str
    rule: str
    param: Any
    violated: pl.Expr
    message: str


def _fail(field: str, rule: str, why: str) -> ExpressionError:
    return ExpressionError(f"validation rule {rule!r} on column {field!r}: {why}")


def _literal(field: str, rule: str, value: Any, dtype: pl.DataType) -> Any:
    """Convert a bound to the column's type (ISO strings for date and datetime columns)."""
    if dtype.is_numeric() and isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return value
    try:
        if dtype == pl.Date and isinstance(value, (str, dt.date)) and not isinstance(value, dt.datetime):
            return dt.date.fromisoformat(value) if isinstance(value, str) else value
        if isinstance(dtype, pl.Datetime) and isinstance(value, (str, dt.datetime)):
            value = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
            if (value.tzinfo is None) != (dtype.time_zone is None):
                raise _fail(field, rule, f"{value} and the column must both have a time zone or neither")
            return value
        if dtype == pl.String and isinstance(value, str):
            return value
    except ValueError as exc:
        raise _fail(field, rule, f"{value!r} is not an ISO date/datetime ({exc})") from None
    raise _fail(field, rule, f"{value!r} cannot be compared with a {dtype} column")


def _bound(op: str) -> Callable[[str, Any, pl.DataType], tuple[pl.Expr, str]]:
    def build(field: str, param: Any, dtype: pl.DataType) -> tuple[pl.Expr, str]:
        if not (dtype.is_numeric() or dtype.is_temporal()):
            raise _fail(field, op, f"needs a numeric, date or datetime column, not {dtype}")
        bound = pl.lit(_literal(field, op, param, dtype))
        if isinstance(dtype, pl.Datetime) and dtype.time_zone:  # Polars compares one zone only
            bound = bound.dt.convert_time_zone(dtype.time_zone)
        col = pl.col(field)
        broken = col < bound if op == "min" else col > bound
        return (
            broken,
            f"{quote_name(field, plain=True)}={VALUE} is {'below' if op == 'min' else 'above'} {op} {param}",
        )

    return build


def _flag(field: str, param: Any, rule: str) -> bool:
    if not isinstance(param, bool):
        raise _fail(field, rule, f"expects True or False, got {param!r}")
    return param


def _required(field: str, param: Any, dtype: pl.DataType) -> tuple[pl.Expr, str] | None:
    if not _flag(field, param, "required"):
        return None
    return pl.col(field).is_null(), f"{quote_name(field, plain=True)} is required but is null"


def _unique(field: str, param: Any, dtype: pl.DataType) -> tuple[pl.Expr, str] | None:
    if not _flag(field, param, "unique"):
        return None
    col = pl.col(field)
    return (
        col.is_duplicated() & col.is_not_null(),
        f"{quote_name(field, plain=True)}={VALUE} appears more than once in the input",
    )


def _pattern(field: str, param: Any, dtype: pl.DataType) -> tuple[pl.Expr, str]:
    if not isinstance(param, str) or dtype != pl.String:
        raise _fail(field, "pattern", "needs a regex string and a string column")
    full = rf"\A(?:{param})\z"
    try:
        pl.select(pl.lit("").str.contains(full))
    except pl.exceptions.PolarsError as exc:
        raise _fail(field, "pattern", f"invalid regular expression {param!r}: {exc}") from None
    return ~pl.col(field).str.contains(
        full
    ), f"{quote_name(field, plain=True)}={VALUE} does not match pattern {param}"


def _members(rule: str) -> Callable[[str, Any, pl.DataType], tuple[pl.Expr, str]]:
    def build(field: str, param: Any, dtype: pl.DataType) -> tuple[pl.Expr, str]:
        if isinstance(param, (str, bytes)) or not isinstance(param, Iterable):
            raise _fail(field, rule, f"expects a list of values, got {param!r}")
        # null passes anyway; ISO strings become dates; the Series checks every other type
        values = [
            _literal(field, rule, v, dtype) if dtype.is_temporal() else v for v in param if v is not None
        ]
        try:
            series = pl.Series(field, values, dtype=dtype, strict=True)
        except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
            raise _fail(field, rule, f"values {values!r} do not fit a {dtype} column ({exc})") from None
        found = pl.col(field).is_in(series.implode())
        shown = ", ".join(map(str, param))
        if rule == "in":
            return ~found, f"{quote_name(field, plain=True)}={VALUE} is not one of: {shown}"
        return found, f"{quote_name(field, plain=True)}={VALUE} is one of the refused values: {shown}"

    return build


def _length(rule: str) -> Callable[[str, Any, pl.DataType], tuple[pl.Expr, str]]:
    def build(field: str, param: Any, dtype: pl.DataType) -> tuple[pl.Expr, str]:
        if not isinstance(param, int) or isinstance(param, bool) or param < 0:
            raise _fail(field, rule, f"expects a non-negative int, got {param!r}")
        if dtype == pl.String:
            length = pl.col(field).str.len_chars()
        elif isinstance(dtype, pl.List):
            length = pl.col(field).list.len()
        else:
            raise _fail(field, rule, f"needs a string or list column, not {dtype}")
        if rule == "min_length":
            return (
                length < param,
                f"{quote_name(field, plain=True)}={VALUE} is shorter than {param} characters",
            )
        return length > param, f"{quote_name(field, plain=True)}={VALUE} is longer than {param} characters"

    return build


def _type(field: str, param: Any, dtype: pl.DataType) -> tuple[pl.Expr, str]:
    if param not in CAST_TYPES:
        raise _fail(field, "type", f"unknown type {param!r}; choose one of: {', '.join(CAST_TYPES)}")
    col = pl.col(field)
    broken = col.is_not_null() & polars_cast(col, param, dtype).is_null()
    if param == "int" and dtype.is_float():  # a non-strict cast would truncate 1.5
        broken = broken | (col != col.floor())
    return broken, f"{quote_name(field, plain=True)}={VALUE} is not a valid {param}"


def _precision(field: str, param: Any, dtype: pl.DataType) -> tuple[pl.Expr, str]:
    precision, scale = param
    if not dtype.is_numeric():
        raise _fail(field, "precision", f"needs a numeric column, not {dtype}")
    limit = 10 ** (precision - scale)
    return pl.col(
        field
    ).abs() >= limit, f"{quote_name(field, plain=True)}={VALUE} does not fit NUMERIC({precision}, {scale})"


_BUILDERS: dict[str, Callable[[str, Any, pl.DataType], tuple[pl.Expr, str] | None]] = {
    "min": _bound("min"), "max": _bound("max"), "required": _required, "pattern": _pattern,
    "in": _members("in"), "not_in": _members("not_in"), "min_length": _length("min_length"),
    "max_length": _length("max_length"), "unique": _unique, "type": _type,
    "precision": _precision,
}  # fmt: skip
#: Every rule kind :func:`compile_rules` accepts.
RULE_KINDS = (*_BUILDERS, "expr")


def _expr_check(field: str, param: Any, schema: Mapping[str, pl.DataType]) -> Check:
    try:
        expr = to_polars(param, schema)
        dtype = pl.LazyFrame(schema=dict(schema)).select(expr.alias("x")).collect_schema()["x"]
    except ExpressionError as exc:
        raise _fail(field, "expr", str(exc)) from exc
    except pl.exceptions.PolarsError as exc:  # the first line; not Polars' query plan
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _fail(
            field, "expr", f"{param!r}: {first}. Convert operands with cast(x, 'int'), cast(x, 'str'), ..."
        ) from None
    if dtype != pl.Boolean:
        raise _fail(field, "expr", f"{param!r} must give true/false, but gives {dtype}")
    message = (
        f"{quote_name(field, plain=True)}={VALUE} fails {param}"
        if field in schema
        else f"{quote_name(field, plain=True)}: {param} is not true"
    )
    return Check(field, "expr", param, ~expr.fill_null(False), message)


def compile_rules(rules: Mapping[str, Mapping[str, Any]], schema: Mapping[str, pl.DataType]) -> list[Check]:
    """Compile validation rules for a frame with ``schema``.

    Parameters
    ----------
    rules : Mapping[str, Mapping[str, Any]]
        Column -> {rule kind: parameter}.  Kinds: ``min``, ``max`` (numbers, dates,
        datetimes; ISO strings accepted for dates), ``required``, ``pattern`` (full
        match), ``in``, ``not_in``, ``min_length``, ``max_length``, ``unique`` (within
        the input), ``type`` (castable to a ``cast()`` type), ``precision``
        (``(precision, scale)``), ``expr`` (a boolean expression; its key may be any
        label, e.g. ``"row"``).
    schema : Mapping[str, pl.DataType]
        The schema of the frames the checks will run on.

    Returns
    -------
    list[Check]

    Raises
    ------
    ExpressionError
        An unknown rule kind or column, or a parameter that does not fit the column.

    Examples
    --------
    >>> checks = compile_rules({"price": {"min": 0.01}}, {"price": pl.Float64})
    >>> accepted, rejected = split(pl.DataFrame({"price": [1.0, -5.0]}), checks)
    >>> rejected["__violations__"].to_list()[0][0]["message"]
    'price=-5.0 is below min 0.01'
    """
    checks = []
    for field, spec in rules.items():
        if not isinstance(spec, Mapping):
            raise ExpressionError(f"rules for {field!r} must map rule kinds to parameters, e.g. {{'min': 0}}")
        for rule, param in spec.items():
            if rule not in RULE_KINDS:
                close = difflib.get_close_matches(str(rule), RULE_KINDS, n=1)
                raise ExpressionError(
                    f"unknown validation rule {rule!r} on {field!r}"
                    + (f" (did you mean {close[0]!r}?)" if close else "")
                    + f"; valid kinds: {', '.join(RULE_KINDS)}"
                )
            if rule == "expr":
                checks.append(_expr_check(field, param, schema))
                continue
            if field not in schema:
                raise ExpressionError(
                    f"validation rule {rule!r} on unknown column {field!r}; columns: {quote_names(schema)}"
                )
            built = _BUILDERS[rule](field, param, schema[field])
            if built is not None:
                checks.append(Check(field, rule, param, built[0].fill_null(False), built[1]))
    return checks


def constraint_rules(columns_meta: Iterable[ColumnMeta]) -> dict[str, dict[str, Any]]:
    """Rules that mirror a table's constraints, for the columns present in the input.

    Parameters
    ----------
    columns_meta : Iterable[tuple[str, bool, int | None, int | None, int | None]]
        ``(name, nullable, max_length, precision, scale)`` per column.

    Returns
    -------
    dict[str, dict[str, Any]]
        ``required`` for NOT NULL, ``max_length`` for VARCHAR(n), ``precision`` for
        NUMERIC(p, s) (absolute value must be below ``10 ** (p - s)``).

    Examples
    --------
    >>> constraint_rules([("sku", False, 12, None, None), ("price", True, None, 10, 2)])
    {'sku': {'required': True, 'max_length': 12}, 'price': {'precision': (10, 2)}}
    """
    rules: dict[str, dict[str, Any]] = {}
    for name, nullable, max_length, precision, scale in columns_meta:
        rule: dict[str, Any] = {}
        if not nullable:
            rule["required"] = True
        if max_length is not None:
            rule["max_length"] = max_length
        if precision is not None:
            rule["precision"] = (precision, scale or 0)
        if rule:
            rules[name] = rule
    return rules


def _rendered(check: Check, schema: Mapping[str, pl.DataType]) -> tuple[pl.Expr, pl.Expr]:
    dtype = schema.get(check.field)
    if dtype is None or dtype.is_nested() or dtype == pl.Object:
        value = pl.lit(None, dtype=pl.String)
    else:
        value = pl.col(check.field).cast(pl.String, strict=False)
    before, placeholder, after = check.message.partition(VALUE)
    if not placeholder:
        return value, pl.lit(check.message)
    return value, pl.concat_str([pl.lit(before), value.fill_null("null"), pl.lit(after)])


def split(
    df: pl.DataFrame, checks: list[Check], *, row_column: str = "__row__"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``df`` into accepted rows and rejected rows with every violation listed.

    Parameters
    ----------
    df : pl.DataFrame
        The batch; not modified.
    checks : list[Check]
        From :func:`compile_rules`.
    row_column : str
        Name of the rejected frame's column holding each row's 0-based index in ``df``.

    Returns
    -------
    tuple[pl.DataFrame, pl.DataFrame]
        ``(accepted, rejected)``.  ``accepted`` has ``df``'s columns only.  ``rejected``
        has ``row_column`` (Int64), ``df``'s columns and ``__violations__``, a list of
        ``{field, rule, value, message}`` structs (value as text, null as None).
    """
    if row_column in df.columns or VIOLATIONS in df.columns:
        raise SchemaError(
            f"the input already has a column named {row_column!r} or {VIOLATIONS!r}; pass row_column="
        )
    if not checks:
        empty = df.clear().select(
            pl.lit(None, pl.Int64).alias(row_column),
            pl.all(),
            pl.lit(None, VIOLATION_DTYPE).alias(VIOLATIONS),
        )
        return df, empty
    flags = [f"__bulkframe_check_{i}__" for i in range(len(checks))]
    violated = df.select(c.violated.alias(f) for c, f in zip(checks, flags, strict=True))  # one pass
    bad = violated.select(pl.any_horizontal(pl.all())).to_series()
    rows = pl.concat(
        [bad.arg_true().cast(pl.Int64).alias(row_column).to_frame(), df.filter(bad), violated.filter(bad)],
        how="horizontal",
    ).lazy()
    entries = []  # one (row, violation) entry per broken check, then grouped per row
    for check, flag in zip(checks, flags, strict=True):
        value, message = _rendered(check, df.schema)
        entry = pl.struct(field=pl.lit(check.field), rule=pl.lit(check.rule), value=value, message=message)
        entries.append(rows.filter(pl.col(flag)).select(row_column, entry.alias(VIOLATIONS)))
    grouped = pl.concat(entries).group_by(row_column).agg(VIOLATIONS)
    rejected = rows.select(row_column, *df.columns).join(
        grouped, on=row_column, how="left", maintain_order="left"
    )
    return df.filter(~bad), rejected.collect()
