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


def apply_transformations(df: FrameT, compiled: list[pl.Expr]) -> FrameT:
    """Apply compiled rules in one ``with_columns``; returns the same frame type.

    The input is not modified; a LazyFrame stays lazy.
    """
    return df.with_columns(compiled) if compiled else df
