"""Validation of update rows: the rules stage for ``bulk_update(rows)``.

Update rows may set different columns: a value counts only where the row sets that
column (its mask), so a column a row leaves alone is never checked.  Rules on table
columns the batch does not set are skipped; the table's own NOT NULL and ``varchar(n)``
constraints are checked on the values that are set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import polars as pl

from bulkframe.plan.rejections import entries, report_rows

if TYPE_CHECKING:
    from bulkframe.ops._rows import RowBatch
    from bulkframe.types import Column


def validate_rows(
    batch: RowBatch, columns: Mapping[str, Column], rules: Mapping[str, Mapping[str, Any]] | None
) -> pl.DataFrame | None:
    """The report of rejected rows of ``batch`` (``None`` when every row passes)."""
    from bulkframe.errors import ExpressionError
    from bulkframe.rules import compile_rules, constraint_rules

    data = batch.data
    names = [n for n in data.column_names if not n.startswith("__bf_")]
    frame = pl.from_arrow(data.select(names))
    assert isinstance(frame, pl.DataFrame)
    meta = [
        (c.name, c.nullable, c.length if c.kind == "text" else None, None, None)
        for c in (columns[n] for n in names if n in columns)
    ]
    spec: dict[str, dict[str, Any]] = {k: dict(v) for k, v in constraint_rules(meta).items()}
    for field, rule in (rules or {}).items():
        if field in columns and field not in names:
            continue  # this batch does not set the column
        if field not in columns and "expr" not in rule:
            raise ExpressionError(
                f"validation rule on {field!r}: not a column of the table; columns: {list(columns)}"
            )
        spec.setdefault(field, {}).update(rule)
    if not spec:
        return None
    long = []
    for check in compile_rules(spec, frame.schema):
        try:
            violated = frame.select(check.violated).to_series()
        except pl.exceptions.PolarsError as exc:
            raise ExpressionError(
                f"validation rule {check.rule!r} on {check.field!r} could not be evaluated on input rows "
                f"{batch.offset}..{batch.offset + frame.height - 1}: {str(exc).strip().splitlines()[0]}. Check "
                "that the rule compares or computes values of compatible types (convert with cast(x, 'int'), "
                "cast(x, 'str'), ...)"
            ) from None
        mask = batch.masks.get(check.field)
        if mask is not None:
            violated = violated & pl.Series(data.column(mask)).cast(pl.Boolean)
        rows = violated.arg_true()
        if rows.len() == 0:
            continue
        values = (
            frame[check.field].gather(rows).cast(pl.String, strict=False) if check.field in names else None
        )
        text = [
            check.message.replace("{value}", "null" if v is None else str(v))
            for v in (values.to_list() if values is not None else [None] * rows.len())
        ]
        long.append(
            entries(rows, "validation", check.field, check.rule, pl.Series(text, dtype=pl.String), values)
        )
    if not long:
        return None
    return report_rows(pl.concat(long, how="vertical_relaxed"), data.select(names), batch.offset)
