"""Transformation rules: ``{"price": "price * 1.1", "category": "category.lower()"}``.

Each rule is one expression of :mod:`bulkframe.rules.expressions`, compiled once to a
Polars expression aliased to its target column (which may be new).  All rules run in a
single ``with_columns``, so every rule sees the *original* values: with
``{"a": "b", "b": "a"}`` the two columns swap.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TypeVar

import polars as pl

from bulkframe.errors import ExpressionError
from bulkframe.rules.expressions import to_polars

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


def compile_transformations(rules: Mapping[str, str], columns: Collection[str]) -> list[pl.Expr]:
    """Compile transformation rules to Polars expressions, one per target column.

    Parameters
    ----------
    rules : Mapping[str, str]
        Target column -> expression.  A target that is not an input column is added.
    columns : Collection[str]
        The input's column names, or its schema (``Mapping[str, pl.DataType]``), which
        lets ``cast()`` parse string columns.

    Returns
    -------
    list[pl.Expr]
        Expressions aliased to their target columns, for :func:`apply_transformations`.

    Raises
    ------
    ExpressionError
        Naming the target column and the offending token.

    Examples
    --------
    >>> compiled = compile_transformations({"total": "price * qty"}, ["price", "qty"])
    >>> apply_transformations(pl.DataFrame({"price": [2.0], "qty": [3]}), compiled)["total"].to_list()
    [6.0]
    """
    compiled = []
    for target, text in rules.items():
        try:
            compiled.append(to_polars(text, columns).alias(target))
        except ExpressionError as exc:
            raise ExpressionError(f"transformation rule for column {target!r}: {exc}") from exc
    return compiled


def apply_transformations(
    df: FrameT, compiled: list[pl.Expr], *, rules: Mapping[str, str] | None = None, offset: int = 0
) -> FrameT:
    """Apply compiled rules in one ``with_columns``; returns the same frame type.

    The input is not modified; a LazyFrame stays lazy.  On a DataFrame, a rule that
    cannot be evaluated (integer overflow, operands of types it cannot combine) raises
    :class:`ExpressionError` naming the rule and, when the data is at fault, the first
    failing input row (``offset`` + position) and its values; ``rules`` supplies the
    rule texts for the message.
    """
    if not compiled:
        return df
    if isinstance(df, pl.LazyFrame):
        return df.with_columns(compiled)
    try:
        return df.with_columns(compiled)
    except pl.exceptions.PolarsError as exc:
        raise _explain(df, compiled, rules or {}, offset, exc) from None


def _fails(df: pl.DataFrame, expr: pl.Expr) -> bool:
    try:
        df.select(expr)
    except pl.exceptions.PolarsError:
        return True
    return False


def _explain(
    df: pl.DataFrame, compiled: list[pl.Expr], rules: Mapping[str, str], offset: int, exc: Exception
) -> ExpressionError:
    """Find which rule fails, and on which row (bisection: log2(n) evaluations)."""
    from bulkframe.rules.expressions import referenced_columns

    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    failing = next((e for e in compiled if _fails(df, e)), None)
    if failing is None:
        return ExpressionError(f"transformation rules could not be evaluated: {detail}")
    target = failing.meta.output_name()
    text = rules.get(target)
    where = f"transformation rule for column {target!r}" + (f" ({text!r})" if text else "")
    if _fails(df.head(0), failing):  # fails on no rows at all: the types do not fit
        return ExpressionError(
            f"{where} does not fit the column types: {detail}. Convert operands with cast(x, 'int'), "
            "cast(x, 'float') or cast(x, 'str'), or fix the rule"
        )
    low, high = 0, df.height
    while high - low > 1:
        mid = (low + high) // 2
        if _fails(df.slice(low, mid - low), failing):
            high = mid
        else:
            low = mid
    names = sorted(referenced_columns(text)) if text else []
    shown = ", ".join(f"{n}={df[n][low]!r}" for n in names if n in df.columns)
    if "i128" in detail and "i64" in detail:
        detail = (
            "integer overflow: the result is outside the 64-bit integer range (as in SQL, it is an error)"
        )
    return ExpressionError(
        f"{where} fails at input row {offset + low}" + (f" ({shown})" if shown else "") + f": {detail}"
    )
