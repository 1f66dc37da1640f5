"""Rules: the safe expression language, transformations and validation.

- :mod:`~bulkframe.rules.expressions` — parse ``"price * 0.9"`` once, compile to Polars
  (:func:`to_polars`) or SQLAlchemy Core (:func:`to_sql`).
- :mod:`~bulkframe.rules.transform` — ``{"column": "expression"}`` rules applied in one
  ``with_columns``.
- :mod:`~bulkframe.rules.validation` — ``{"column": {"min": 0}}`` rules, split into
  accepted and rejected rows.

The language reference is ``docs/rules.md``.
"""

from bulkframe.rules.expressions import (
    Expr,
    ExprNode,
    Literal,
    classify_update_value,
    parse,
    referenced_columns,
    to_polars,
    to_sql,
)
from bulkframe.rules.transform import apply_transformations, compile_transformations
from bulkframe.rules.validation import Check, compile_rules, constraint_rules, split

__all__ = [
    "Check",
    "Expr",
    "ExprNode",
    "Literal",
    "apply_transformations",
    "classify_update_value",
    "compile_rules",
    "compile_transformations",
    "constraint_rules",
    "parse",
    "referenced_columns",
    "split",
    "to_polars",
    "to_sql",
]
