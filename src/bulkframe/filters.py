"""The filter language shared by update, delete and reads.

``{"category": "electronics", "stock": {"$lt": 10, "$gte": 0}, "$or": [...]}`` is parsed
once into a small tree of frozen dataclasses; two back ends walk it: :func:`to_sql`
(SQLAlchemy Core, values always bound) and :func:`to_polars` (a ``pl.Expr``).  Both
select the same rows; ``docs/filters.md`` is the reference (operators, null semantics,
dates, ``$col``, dialect notes).  SQLAlchemy and Polars are imported on first use.
"""

from __future__ import annotations

import difflib
import functools
import math
import operator
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, cast

from bulkframe.errors import FilterError, NotSupportedError, quote_name, quote_names
from bulkframe.portable_sql import PortableCast

if TYPE_CHECKING:
    import polars as pl
    import sqlalchemy as sa
    from sqlalchemy.sql.expression import ColumnElement

    from bulkframe.backends.base import Backend

__all__ = [
    "MAX_DEPTH",
    "STAGE_LIST_OVER",
    "Filter",
    "is_empty",
    "parse",
    "referenced_columns",
    "to_polars",
    "to_sql",
]

#: A filter document; ``None`` means the same as ``{}`` (every row).
Filter = Mapping[str, Any] | None
FIELD_OPERATORS = (
    "$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$in", "$nin",
    "$like", "$ilike", "$regex", "$between", "$null", "$not",
)  # fmt: skip
LOGICAL_OPERATORS = ("$and", "$or", "$not")
_SCALARS = (str, int, float, Decimal, date, time, uuid.UUID)
#: How deeply filter documents may nest (each mapping or ``$and``/``$or``/``$not`` list is a
#: level); deeper documents are refused with a ``FilterError`` instead of exhausting the stack.
MAX_DEPTH = 64
#: ``$in``/``$nin`` lists longer than this are staged in a temporary table and joined (when
#: the caller passes ``stage=`` to :func:`to_sql`, as update/delete do); shorter lists are
#: bound parameters.
STAGE_LIST_OVER = 1000
_DATE_KINDS = ("date", "datetime", "datetime_tz")
_RUST_META = frozenset("\\.+*?()|[]{}^$#&-~")


# The tree: Compare is `field <op> value` (op without "$"), Logical is $and/$or, Not is the
# complement (the rows its child does not select; a null result counts as false), Always is every
# row / no row.  A value is a plain scalar, a ColumnRef ({"$col": "price"}, "excluded.price") or
# Now (":current_timestamp" / ":current_date").
@dataclass(frozen=True)
class ColumnRef:
    name: str


@dataclass(frozen=True)
class Now:
    unit: Literal["timestamp", "date"]


@dataclass(frozen=True)
class Compare:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Logical:
    op: Literal["and", "or"]
    children: tuple[FilterNode, ...]


@dataclass(frozen=True)
class Not:
    child: FilterNode


@dataclass(frozen=True)
class Always:
    value: bool


FilterNode = Compare | Logical | Not | Always
_TOKENS = {":current_timestamp": Now("timestamp"), ":current_date": Now("date")}


def _error(message: str) -> FilterError:
    return FilterError(f"filter: {message}")


def _unknown(what: str, name: str, valid: Iterable[str], where: str = "") -> FilterError:
    choices = sorted(valid)
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    shown = quote_names_sorted(choices) if what == "column" else ", ".join(choices)
    return _error(f"unknown {what} {name!r}{where}{hint}; valid {what}s: {shown}")


# ----------------------------------------------------------------------------- parser
def parse(filter: Filter, _depth: int = 0) -> FilterNode:
    """Parse and validate a filter document into its tree (raises ``FilterError``, an
    ``ExpressionError``).  Documents nested deeper than :data:`MAX_DEPTH` are refused."""
    if filter is None:
        return Always(True)
    if not isinstance(filter, Mapping):
        raise _error(f"expected a mapping like {{'price': {{'$lt': 10}}}}, got {_show(filter)}")
    _check_depth(_depth)
    parts: list[FilterNode] = []
    for key, value in filter.items():
        if not isinstance(key, str) or not key:
            raise _error(f"keys must be column names or operators, got {_show(key)}")
        parts.append(
            _parse_logical(key, value, _depth) if key.startswith("$") else _field(key, value, _depth)
        )
    return _combine("and", parts)


def _check_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _error(
            f"the filter is nested more than MAX_DEPTH={MAX_DEPTH} levels deep; flatten it "
            "(a list under one '$and'/'$or' may be any length)"
        )


def _show(value: Any, limit: int = 200) -> str:
    """A value in a message: its repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]


def _combine(op: Literal["and", "or"], parts: list[FilterNode]) -> FilterNode:
    unit, absorbing = Always(op == "and"), Always(op != "and")
    if absorbing in parts:
        return absorbing
    kept = tuple(p for p in parts if p != unit)
    return unit if not kept else kept[0] if len(kept) == 1 else Logical(op, kept)


def _parse_logical(key: str, value: Any, depth: int) -> FilterNode:
    if key == "$not":
        return _negate(parse(value, depth + 1))
    if key not in LOGICAL_OPERATORS:
        raise _unknown("operator", key, LOGICAL_OPERATORS, " at the top level (or a column)")
    if not isinstance(value, list | tuple) or not value:
        raise _error(f"{key} needs a non-empty list of filters, got {_show(value)}")
    return _combine("and" if key == "$and" else "or", [parse(item, depth + 1) for item in value])


def _negate(node: FilterNode) -> FilterNode:
    return Always(not node.value) if isinstance(node, Always) else Not(node)


def _field(field: str, value: Any, depth: int) -> FilterNode:
    if isinstance(value, Mapping) and set(value) != {"$col"}:
        _check_depth(depth + 1)
        if not value or not all(isinstance(k, str) and k.startswith("$") for k in value):
            raise _error(
                f"column {field!r}: expected a value or operators "
                f"({', '.join(FIELD_OPERATORS)}), got {_show(value)}"
            )
        return _combine("and", [_field_op(field, op, v, depth + 1) for op, v in value.items()])
    return _field_op(field, "$eq", value, depth)


def _field_op(field: str, op: str, value: Any, depth: int) -> FilterNode:
    if op not in FIELD_OPERATORS:
        raise _unknown("operator", op, FIELD_OPERATORS, f" on column {field!r}")
    name = op[1:]
    if op == "$not":
        return _negate(_field(field, value, depth + 1))
    if op in ("$eq", "$ne") and value is None:
        return Compare(field, "null", op == "$eq")
    if op in ("$in", "$nin"):
        if not isinstance(value, list | tuple | set | frozenset):
            raise _error(f"{op} on column {field!r} needs a list of values, got {_show(value)}")
        items = tuple(value)
        for item in items:
            if item is not None and not isinstance(item, _SCALARS):
                raise _error(f"{op} on column {field!r}: {item!r} is not a plain value")
        return Compare(field, name, items)
    if op == "$between":
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise _error(f"$between on column {field!r} needs exactly two values [lo, hi], got {value!r}")
        return Compare(field, name, tuple(_operand(field, op, v) for v in value))
    if op in ("$like", "$ilike", "$regex"):
        if not isinstance(value, str):
            raise _error(f"{op} on column {field!r} needs a string pattern, got {value!r}")
        if op != "$regex":
            _like_tokens(value)  # validates escapes
        return Compare(field, name, value)
    if op == "$null":
        if not isinstance(value, bool):
            raise _error(f"$null on column {field!r} needs true or false, got {value!r}")
        return Compare(field, name, value)
    return Compare(field, name, _operand(field, op, value))


def _operand(field: str, op: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        ref = value.get("$col")
        if set(value) != {"$col"} or not isinstance(ref, str) or not ref:
            raise _error(f"{op} on column {field!r}: expected a value or {{'$col': name}}, got {value!r}")
        return ColumnRef(ref)
    if value is None:
        raise _error(f"{op} on column {field!r} cannot compare with null; use '$null': true/false")
    if isinstance(value, str) and value in _TOKENS:
        return _TOKENS[value]
    if not isinstance(value, _SCALARS):
        raise _error(f"{op} on column {field!r}: {value!r} is not a plain value")
    return value


def referenced_columns(filter: Filter) -> set[str]:
    """Return every column name the filter mentions, as written (``"excluded.x"`` too)."""
    found: set[str] = set()

    def walk(node: FilterNode) -> None:
        if isinstance(node, Logical):
            for child in node.children:
                walk(child)
        elif isinstance(node, Not):
            walk(node.child)
        elif isinstance(node, Compare):
            found.add(node.field)
            values = node.value if isinstance(node.value, tuple) else (node.value,)
            found.update(v.name for v in values if isinstance(v, ColumnRef))

    walk(parse(filter))
    return found


def is_empty(filter: Filter) -> bool:
    """Return True when the filter selects every row by construction (``{}``, ``None``).

    Callers use it to refuse ``delete``/``update`` of a whole table by accident.
    """
    return parse(filter) == Always(True)


# ----------------------------------------------------------------------- shared helpers
def _like_tokens(pattern: str) -> list[tuple[str, str]]:
    """Split a LIKE pattern into ``("any"|"one"|"lit", char)``; ``\\`` escapes the next char."""
    tokens, chars = [], iter(pattern)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, None)
            if nxt is None:
                raise _error(f"LIKE pattern {pattern!r} ends with the escape character '\\'")
            tokens.append(("lit", nxt))
        else:
            tokens.append(("any", "") if ch == "%" else ("one", "") if ch == "_" else ("lit", ch))
    return tokens


def like_to_regex(pattern: str, *, ascii_case_insensitive: bool = False) -> str:
    """Translate a LIKE pattern into an anchored (Rust/Polars) regular expression."""
    parts = []
    for kind, ch in _like_tokens(pattern):
        if kind != "lit":
            parts.append(".*" if kind == "any" else ".")
        elif ascii_case_insensitive and ch.isascii() and ch.isalpha():
            parts.append(f"[{ch.lower()}{ch.upper()}]")
        else:
            parts.append("\\" + ch if ch in _RUST_META else ch)
    return "(?s)\\A" + "".join(parts) + "\\z"


def like_to_glob(pattern: str) -> str:
    """Translate a LIKE pattern into an SQLite GLOB pattern (which is case-sensitive)."""
    out = {"any": "*", "one": "?"}
    return "".join(
        out[kind] if kind != "lit" else f"[{ch}]" if ch in "*?[" else ch for kind, ch in _like_tokens(pattern)
    )


def _coerce(value: Any, kind: str, field: str) -> Any:
    """Bind ISO strings as dates/datetimes on date/timestamp columns (naive means UTC)."""
    if kind == "date" and isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise _error(f"column {field!r} holds dates; {value!r} is not an ISO date") from None
    if kind in ("datetime", "datetime_tz"):
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise _error(f"column {field!r} holds timestamps; {value!r} is not ISO 8601") from None
        elif isinstance(value, date) and not isinstance(value, datetime):
            value = datetime.combine(value, time())
        if isinstance(value, datetime):
            utc = value.replace(tzinfo=value.tzinfo or timezone.utc).astimezone(timezone.utc)
            return utc if kind == "datetime_tz" else utc.replace(tzinfo=None)
    return value


def _split_nulls(field: str, kind: str, values: tuple[Any, ...]) -> tuple[list[Any], bool]:
    present = [_coerce(v, kind, field) for v in values if v is not None]
    return present, len(present) < len(values)


# ------------------------------------------------------------------------ SQL back end
def to_sql(
    filter: Filter,
    table: sa.FromClause,
    *,
    others: Mapping[str, Any] | None = None,
    backend: Backend | None = None,
    stage: Callable[[str, list[Any]], Any] | None = None,
) -> ColumnElement[bool]:
    """Compile a filter to a SQLAlchemy Core boolean expression (values bound).

    Parameters
    ----------
    filter
        The filter document; ``{}``/``None`` compile to ``true``.
    table
        The table (or alias) whose columns plain names refer to.
    others
        Namespaces for ``{"$col": "ns.name"}`` operands: a table, alias or column
        collection per name, e.g. ``{"excluded": insert_stmt.excluded}``.
    backend
        The backend the statement runs on, when known: operators its capabilities lack
        fail here instead of at execution (``$regex`` where ``capabilities.regex`` is
        false raises ``NotSupportedError``).  The SQL itself is spelled for the dialect
        when the statement is compiled (see :mod:`bulkframe.portable_sql`).
    stage
        ``stage(column, values)`` puts a long ``$in``/``$nin`` list (more than
        :data:`STAGE_LIST_OVER` values, already converted to the column's type) into a
        temporary table and returns a one-column ``SELECT`` of it; without it every value
        is a bound parameter.

    Every compared value is checked against its column's type first, as the database's
    own cast would read it (``"12"`` on an integer column is ``12``; ``"abc"`` is refused
    with a ``FilterError`` naming column, operator and value), so no mistyped value
    reaches the database.  See ``docs/filters.md`` ("Value types").

    Returns
    -------
    sqlalchemy.ColumnElement[bool]

    Examples
    --------
    >>> import sqlalchemy as sa
    >>> t = sa.table("items", sa.column("stock", sa.Integer))
    >>> str(to_sql({"stock": {"$lt": 10}}, t))
    'items.stock < :stock_1'
    """
    compiler = _SqlBackend(table, others or {}, backend, stage)
    return cast("ColumnElement[bool]", compiler.compile(parse(filter)))


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "lt": operator.lt, "lte": operator.le, "gt": operator.gt,
    "gte": operator.ge, "ne": lambda col, value: col.is_distinct_from(value),
}  # fmt: skip


_INT_RANGES = {"int16": 2**15, "int32": 2**31, "int64": 2**63}
_KIND_WORDS = {
    "int16": "integers (smallint)", "int32": "integers (integer)", "int64": "integers (bigint)",
    "float32": "floating-point numbers", "float64": "floating-point numbers", "decimal": "decimal numbers",
    "bool": "booleans", "text": "text", "date": "dates", "time": "times of day",
    "timestamp": "timestamps", "timestamptz": "timestamps", "uuid": "UUIDs", "json": "JSON", "binary": "binary data",
}  # fmt: skip
_INT_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*")
_NUMBER_TEXT = re.compile(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")
_FLOAT_WORDS = {"nan", "infinity", "+infinity", "-infinity", "inf", "+inf", "-inf"}
#: PostgreSQL's boolean input words (``boolin``), trimmed and case-insensitive.
_BOOL_WORDS = {
    "t": True, "true": True, "y": True, "yes": True, "on": True, "1": True,
    "f": False, "false": False, "n": False, "no": False, "off": False, "0": False,
}  # fmt: skip


def _sql_kind(column: Any) -> str:
    """The column's bulkframe kind: the ``bulkframe_kind`` it was built with (see
    ``Backend.sa_table``), else read from its SQLAlchemy type."""
    import sqlalchemy as sa

    info = getattr(column, "info", None) or {}
    if "bulkframe_kind" in info:
        return str(info["bulkframe_kind"])
    type_ = column.type
    if isinstance(type_, sa.DateTime):
        return "timestamptz" if type_.timezone else "timestamp"
    kinds: list[tuple[Any, str]] = [
        (sa.Date, "date"), (sa.Time, "time"), (sa.Boolean, "bool"), (sa.SmallInteger, "int16"),
        (sa.BigInteger, "int64"), (sa.Integer, "int32"), (sa.Double, "float64"), (sa.Float, "float64"),
        (sa.Numeric, "decimal"), (sa.Uuid, "uuid"), (sa.JSON, "json"), (sa.LargeBinary, "binary"),
        (sa.String, "text"), (sa.types.NullType, "untyped"),
    ]  # fmt: skip
    return next((kind for cls, kind in kinds if isinstance(type_, cls)), "other")


def _refuse(field: str, kind: str, op: str, value: Any, why: str) -> FilterError:
    holds = _KIND_WORDS.get(kind, kind)
    return _error(f"column {quote_name(field)} holds {holds}; ${op} value {_show(value)} {why}")


def _convert(value: Any, kind: str, field: str, op: str) -> Any:
    """``value`` as the column's type would read it, or a ``FilterError`` naming column,
    operator and value.  Numbers stay numbers (an integer column compares them exactly;
    see :meth:`_SqlBackend.int_compare`); strings are parsed as the database's input
    functions parse them."""
    if kind in _INT_RANGES:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            raise _refuse(field, kind, op, value, "is not an integer")
        if isinstance(value, str):
            if not _INT_TEXT.fullmatch(value):
                raise _refuse(field, kind, op, value, "is not an integer")
            number, bound = int(value), _INT_RANGES[kind]
            if not -bound <= number < bound:
                raise _refuse(field, kind, op, value, f"is out of range for {kind}")
            return number
        return value
    if kind in ("float32", "float64", "decimal"):
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            raise _refuse(field, kind, op, value, "is not a number")
        if isinstance(value, str):
            special = value.strip().lower() in _FLOAT_WORDS
            if not (_NUMBER_TEXT.fullmatch(value) or (special and kind != "decimal")):
                raise _refuse(field, kind, op, value, "is not a number")
            return Decimal(value.strip()) if kind == "decimal" else float(value)
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
            return _BOOL_WORDS[value.strip().lower()]
        raise _refuse(
            field,
            kind,
            op,
            value,
            "is not a boolean (true/false, or 't'/'f', 'yes'/'no', 'on'/'off', '1'/'0')",
        )
    if kind == "text":
        if not isinstance(value, str):
            raise _refuse(
                field, kind, op, value, f"is not a string; compare text with text (e.g. {str(value)!r})"
            )
        return value
    if kind == "date":
        if not isinstance(value, str | date):
            raise _refuse(field, kind, op, value, "is not a date or an ISO date string")
        if isinstance(value, datetime):  # PostgreSQL's bind cast would drop the time of day
            if value.tzinfo is not None or value.time() != time():
                raise _refuse(field, kind, op, value, "has a time of day or zone; pass a date")
            return value.date()
        return _coerce(value, "date", field)
    if kind in ("timestamp", "timestamptz"):
        if not isinstance(value, str | date):
            raise _refuse(field, kind, op, value, "is not a datetime or an ISO 8601 string")
        return _coerce(value, "datetime_tz" if kind == "timestamptz" else "datetime", field)
    if kind == "time":
        if isinstance(value, time):
            return value
        if isinstance(value, str):
            try:
                return time.fromisoformat(value.strip())
            except ValueError:
                pass
        raise _refuse(field, kind, op, value, "is not a time of day or an ISO time string")
    if kind == "uuid":
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, str):
            try:
                return str(uuid.UUID(value.strip()))
            except ValueError:
                pass
        raise _refuse(field, kind, op, value, "is not a UUID")
    if kind in ("json", "binary"):
        raise _refuse(field, kind, op, value, "cannot be compared; filter this column with '$null' only")
    return value


def _int_value(value: Any, kind: str) -> tuple[int | None, str]:
    """An integer column's view of a number: ``(n, "")`` when it is an integer in the
    column's range; otherwise ``(None, how)`` with how ∈ {"low", "high", "fraction", "nan"}."""
    if isinstance(value, int):
        number = value
    else:
        if (isinstance(value, float) and math.isnan(value)) or (
            isinstance(value, Decimal) and value.is_nan()
        ):
            return None, "nan"
        if (isinstance(value, float) and math.isinf(value)) or (
            isinstance(value, Decimal) and value.is_infinite()
        ):
            return None, "high" if value > 0 else "low"
        if value != int(value):
            return None, "fraction"
        number = int(value)
    bound = _INT_RANGES[kind]
    if number < -bound:
        return None, "low"
    if number >= bound:
        return None, "high"
    return number, ""


class _SqlBackend:
    def __init__(
        self,
        table: Any,
        others: Mapping[str, Any],
        backend: Backend | None,
        stage: Callable[[str, list[Any]], Any] | None = None,
    ):
        import sqlalchemy as sa

        self.sa, self.table, self.others, self.backend = sa, table, others, backend
        self.stage = stage

    def column(self, name: str) -> Any:
        if name in self.table.c:
            return self.table.c[name]
        namespace, dot, rest = name.partition(".")
        if dot and namespace in self.others:
            other = self.others[namespace]
            cols = other.c if hasattr(other, "c") else other
            if rest in cols:
                return cols[rest]
            raise _unknown("column", rest, cols.keys(), f" in namespace {namespace!r}")
        extra = f" (namespaces: {quote_names_sorted(self.others)})" if self.others else ""
        raise _unknown("column", name, self.table.c.keys(), extra)

    def operand(self, value: Any, kind: str, field: str, op: str) -> Any:
        if isinstance(value, ColumnRef):
            return self.column(value.name)
        if isinstance(value, Now):
            func = self.sa.func
            return func.current_timestamp() if value.unit == "timestamp" else func.current_date()
        value = _convert(value, kind, field, op)
        if isinstance(value, bool):  # SQLAlchemy renders bare True/False inline and refuses `<`
            return self.sa.literal(value, self.sa.Boolean())
        if kind == "uuid":  # bound as text, read by the column's type (PostgreSQL: uuid)
            return PortableCast(self.sa.literal(value, self.sa.String()), self.sa.Uuid(as_uuid=False))
        return value

    def compile(self, node: FilterNode) -> Any:
        sa = self.sa
        if isinstance(node, Always):
            return sa.true() if node.value else sa.false()
        if isinstance(node, Logical):
            parts = [self.compile(child) for child in node.children]
            return sa.and_(*parts) if node.op == "and" else sa.or_(*parts)
        if isinstance(node, Not):
            return sa.not_(sa.func.coalesce(self.compile(node.child), sa.false()))
        return self.compare(node)

    def int_compare(self, col: Any, op: str, value: Any, kind: str) -> Any:
        """``col <op> value`` on an integer column, exact for any number: a fraction or a
        value beyond the column's range is never bound (PostgreSQL would cast it to the
        column's type, rounding or failing); the comparison is decided or moved to the
        nearest integer instead, as comparing the numbers would."""
        sa = self.sa
        number, how = _int_value(value, kind)
        if number is not None:
            return _COMPARE[op](col, number)
        if how == "nan" or op == "eq":
            return sa.true() if op == "ne" else sa.false()
        if op == "ne":
            return sa.true()
        if how == "fraction":
            low = math.floor(value) if op in ("lt", "lte") else math.ceil(value)
            return self.int_compare(col, "lte" if op in ("lt", "lte") else "gte", low, kind)
        below = op in ("lt", "lte")
        everything = (how == "high") == below  # e.g. col < +huge: every non-null row
        return col.is_not(None) if everything else sa.false()

    def compare(self, node: Compare) -> Any:
        sa, col, op, value = self.sa, self.column(node.field), node.op, node.value
        kind = _sql_kind(col)
        if op == "null":
            return col.is_(None) if value else col.is_not(None)
        if op in ("like", "ilike", "regex"):
            if kind not in ("text", "untyped"):
                raise _error(f"${op} needs a text column; {node.field!r} is {col.type}")
            if op == "regex" and self.backend is not None and not self.backend.capabilities.regex:
                raise NotSupportedError(
                    f"filter: $regex (on column {node.field!r}) is not supported on {self.backend.name}, "
                    "which runs no regular expressions (capability regex); use $like instead"
                )
            from bulkframe.portable_sql import CaseSensitiveLike, RegexSearch

            if op == "regex":
                return RegexSearch(col, value)
            if op == "ilike":
                return col.ilike(value, escape="\\")

            return CaseSensitiveLike(col, value, escape="\\", glob=like_to_glob(value))
        if op in ("in", "nin"):
            return self.membership(node, col, kind)
        if op == "between":
            # not BETWEEN: PostgreSQL's BETWEEN grammar refuses the `$1::VARCHAR COLLATE "C"`
            # bind casts SQLAlchemy renders for columns declared with a collation
            low, high = value
            return sa.and_(
                self.side(col, "gte", low, kind, node.field, "between"),
                self.side(col, "lte", high, kind, node.field, "between"),
            )
        return self.side(col, op, value, kind, node.field, op)

    def side(self, col: Any, op: str, value: Any, kind: str, field: str, given: str) -> Any:
        """``col <op> value`` (``given``: the operator as the user wrote it, for messages)."""
        rhs = self.operand(value, kind, field, given)
        if kind in _INT_RANGES and not isinstance(value, ColumnRef | Now):
            return self.int_compare(col, op, rhs, kind)
        return _COMPARE[op](col, rhs)

    def membership(self, node: Compare, col: Any, kind: str) -> Any:
        sa, op = self.sa, node.op
        present = [_convert(v, kind, node.field, op) for v in node.value if v is not None]
        has_null = len(present) < len(node.value)
        if kind in _INT_RANGES:  # a fraction or an out-of-range number equals no stored integer
            present = [n for n in (_int_value(v, kind)[0] for v in present) if n is not None]
        if len(present) > STAGE_LIST_OVER and self.stage is not None and node.field in self.table.c:
            values: Any = self.stage(node.field, list(dict.fromkeys(present)))
        elif kind == "uuid":
            values = [
                PortableCast(self.sa.literal(v, self.sa.String()), self.sa.Uuid(as_uuid=False))
                for v in present
            ]
        else:
            values = present
        if op == "in":
            member = col.in_(values) if present else sa.false()
            return sa.or_(member, col.is_(None)) if has_null else member
        outside = col.not_in(values) if present else sa.true()
        return sa.and_(outside, col.is_not(None)) if has_null else sa.or_(outside, col.is_(None))


def quote_names_sorted(names: Iterable[str]) -> str:
    return quote_names(sorted(names))


# --------------------------------------------------------------------- Polars back end
def to_polars(
    filter: Filter,
    schema: Mapping[str, pl.DataType | type[pl.DataType]],
    *,
    others_suffix: Mapping[str, str] | None = None,
) -> pl.Expr:
    """Compile a filter to a boolean Polars expression selecting the same rows as SQL.

    Parameters
    ----------
    filter
        The filter document; ``{}``/``None`` compile to ``pl.lit(True)``.
    schema
        Column name to dtype of the frame the expression runs on (``df.schema``).
    others_suffix
        Namespace to column-name suffix for ``{"$col": "ns.name"}`` operands:
        ``{"excluded": "_excluded"}`` resolves ``"excluded.price"`` to the column
        ``"price_excluded"``.

    Returns
    -------
    polars.Expr
        Null results (from null cells) mean "not selected", as in SQL ``WHERE``.

    Examples
    --------
    >>> import polars as pl
    >>> df = pl.DataFrame({"stock": [3, 20, None]})
    >>> df.filter(to_polars({"stock": {"$lt": 10}}, df.schema))["stock"].to_list()
    [3]
    """
    return cast("pl.Expr", _PolarsBackend(schema, others_suffix or {}).compile(parse(filter)))


def _pl_kind(dtype: Any) -> str:
    import polars as pl

    if isinstance(dtype, pl.Datetime):
        return "datetime_tz" if dtype.time_zone else "datetime"
    if isinstance(dtype, pl.Date):
        return "date"
    if isinstance(dtype, pl.String | pl.Categorical | pl.Enum):
        return "string"
    return "other"


def _pl_value_kind(dtype: Any) -> str:
    """The column kind (:func:`_convert`'s vocabulary) a Polars dtype's values have."""
    import polars as pl

    if dtype.is_integer():
        return "int64"  # ranges only matter for parsing strings; numbers compare as numbers
    if isinstance(dtype, pl.Decimal):
        return "decimal"
    if dtype.is_float():
        return "float64"
    simple: list[tuple[Any, str]] = [
        (pl.Boolean, "bool"), (pl.Date, "date"), (pl.Time, "time"), (pl.Binary, "binary"),
        (pl.String | pl.Categorical | pl.Enum, "text"),
    ]  # fmt: skip
    if isinstance(dtype, pl.Datetime):
        return "timestamptz" if dtype.time_zone else "timestamp"
    return next((kind for cls, kind in simple if isinstance(dtype, cls)), "untyped")


class _PolarsBackend:
    def __init__(self, schema: Mapping[str, Any], suffixes: Mapping[str, str]):
        import polars as pl

        self.pl, self.suffixes = pl, suffixes
        self.schema = {k: v() if isinstance(v, type) else v for k, v in schema.items()}

    def column(self, name: str) -> tuple[Any, Any]:
        namespace, dot, rest = name.partition(".")
        if name not in self.schema and dot and namespace in self.suffixes:
            target = rest + self.suffixes[namespace]
            if target not in self.schema:
                raise _unknown("column", target, self.schema, f" (for {name!r})")
            name = target
        elif name not in self.schema:
            raise _unknown("column", name, self.schema)
        return self.pl.col(name), self.schema[name]

    def literal(self, value: Any, dtype: Any, kind: str, field: str, op: str) -> Any:
        pl = self.pl
        if isinstance(value, ColumnRef):
            return self.column(value.name)[0]
        if isinstance(value, Now):
            now = datetime.now(timezone.utc)
            value = now if value.unit == "timestamp" else now.date()
        else:  # the same checks and conversions as SQL (see _convert)
            value = _convert(value, _pl_value_kind(dtype), field, op)
        value = _coerce(value, kind, field)
        same = isinstance(value, datetime) == (kind != "date")  # a date is not truncated
        if kind in _DATE_KINDS and isinstance(value, date) and same:
            return pl.lit(value).cast(dtype)
        return pl.lit(value)

    def compile(self, node: FilterNode) -> Any:
        pl = self.pl
        if isinstance(node, Always):
            return pl.lit(node.value)
        if isinstance(node, Logical):
            join = operator.and_ if node.op == "and" else operator.or_
            return functools.reduce(join, (self.compile(c) for c in node.children))
        if isinstance(node, Not):
            return ~self.compile(node.child).fill_null(False)
        return self.compare(node)

    def compare(self, node: Compare) -> Any:
        pl, op, value = self.pl, node.op, node.value
        col, dtype = self.column(node.field)
        kind = _pl_kind(dtype)
        if op == "null":
            return col.is_null() if value else col.is_not_null()
        if op in ("like", "ilike", "regex"):
            if kind != "string":
                raise _error(f"${op} needs a text column; {node.field!r} is {dtype}")
            text = col if isinstance(dtype, pl.String) else col.cast(pl.String)
            if op == "regex":
                return text.str.contains(value)
            return text.str.contains(like_to_regex(value, ascii_case_insensitive=op == "ilike"))
        if op in ("in", "nin"):
            checked = tuple(
                v if v is None else _convert(v, _pl_value_kind(dtype), node.field, op) for v in value
            )
            present, has_null = _split_nulls(node.field, kind, checked)
            member = self.is_in(col, dtype, kind, present, node.field)
            if op == "in":
                return member | col.is_null() if has_null else member
            return ~member & col.is_not_null() if has_null else ~member
        if op == "between":
            low, high = (self.literal(v, dtype, kind, node.field, op) for v in value)
            return col.is_between(low, high, closed="both")
        rhs = self.literal(value, dtype, kind, node.field, op)
        return col.ne_missing(rhs) if op == "ne" else _COMPARE[op](col, rhs)

    def is_in(self, col: Any, dtype: Any, kind: str, values: list[Any], field: str) -> Any:
        """Membership that is False (never null) for null cells, like SQL IN then OR.

        Spelled ``is_in(...).fill_null(False)``, not ``is_in(..., nulls_equal=True)``: the
        two agree when evaluated, but Polars' filter optimizer (seen on 2.1.0; not with
        ``simplify_expression=False``) folded ``is_null() & ~is_in(..., nulls_equal=True)``
        on one column (``{"$and": [{"d": None}, {"d": {"$nin": [...]}}]}``) to "no row" in
        ``DataFrame.filter``, while ``select`` evaluated it to True for the null rows.
        """
        pl = self.pl
        try:
            if dtype.is_integer():  # a fraction or an out-of-range number equals no stored integer
                low, high = pl.select(dtype.min().alias("l"), dtype.max().alias("h")).row(0)
                values = [
                    int(v) for v in values
                    if (not isinstance(v, float | Decimal) or float(v).is_integer()) and low <= v <= high
                ]  # fmt: skip
            elif dtype.is_float():
                values = [float(v) for v in values]
            series = pl.Series(values).cast(dtype) if kind in _DATE_KINDS else pl.Series(values, dtype=dtype)
        except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
            raise _error(f"$in/$nin values {values!r} do not fit column {field!r} ({dtype})") from exc
        if series.is_empty():
            return pl.lit(False)
        return col.is_in(pl.lit(series).implode()).fill_null(False)
