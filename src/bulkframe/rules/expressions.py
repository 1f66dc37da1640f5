"""One safe expression language, compiled to Polars and to SQLAlchemy Core.

Text such as ``"price * 0.9"``, ``"category.lower()"`` or ``"coalesce(created_at, now())"``
is parsed once with :func:`ast.parse` and checked against an explicit whitelist into a
small tree of frozen dataclasses (:data:`ExprNode`).  Two back ends walk that tree:
:func:`to_polars` (transformations, validation) and :func:`to_sql` (update ``SET``
values).  Nothing is evaluated with ``eval``; anything outside the grammar raises
:class:`~bulkframe.errors.ExpressionError` naming the offending token.  ``docs/rules.md``
is the reference (grammar, functions, null semantics, dialect notes).
"""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import functools
import operator
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import polars as pl
import sqlalchemy as sa

from bulkframe import portable_sql as portable
from bulkframe.errors import ExpressionError, quote_names

# --------------------------------------------------------------------------- the tree


@dataclass(frozen=True, slots=True)
class Field:
    name: str


@dataclass(frozen=True, slots=True)
class Value:
    value: bool | int | float | str | None


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-", "+", "not"
    operand: ExprNode


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str  # + - * / // % ** == != < <= > >=
    left: ExprNode
    right: ExprNode


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: str  # "and", "or"
    operands: tuple[ExprNode, ...]


@dataclass(frozen=True, slots=True)
class IsIn:
    operand: ExprNode
    values: tuple[bool | int | float | str, ...]
    negated: bool


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # a function or method; a method's receiver is args[0]
    args: tuple[ExprNode, ...]


ExprNode = Field | Value | Unary | BinOp | BoolOp | IsIn | Call

# ------------------------------------------------------------------------ the grammar

#: name -> (min, max or None) arguments; a method's receiver is not counted.
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "coalesce": (1, None), "now": (0, 0), "today": (0, 0), "round": (1, 2), "abs": (1, 1),
    "concat": (1, None), "cast": (2, 2), "if_else": (3, 3), "case": (3, None),
    "lower": (1, 1), "upper": (1, 1), "is_null": (1, 1), "is_not_null": (1, 1),
}  # fmt: skip
METHODS: dict[str, tuple[int, int | None]] = {
    "lower": (0, 0), "upper": (0, 0), "strip": (0, 0), "title": (0, 0), "replace": (2, 2),
    "slice": (1, 2), "len": (0, 0), "startswith": (1, 1), "contains": (1, 1),
}  # fmt: skip
#: Arguments that must be literals: name -> {position: (allowed type, what it is)}.
_LITERAL_ARGS: dict[str, dict[int, tuple[type, str]]] = {
    "cast": {1: (str, "the type")}, "round": {1: (int, "the number of digits (an int)")},
    "slice": {1: (int, "start (an int)"), 2: (int, "length (an int)")},
    "startswith": {1: (str, "the text to look for (a string)")},
    "contains": {1: (str, "the text to look for (a string)")},
}  # fmt: skip
#: The type names of ``cast(x, "...")`` and of the validation rule ``type``.
CAST_TYPES = ("int", "float", "decimal", "str", "bool", "date", "datetime")
#: ``:token`` -> the call it stands for (outside string literals).
TOKENS = {"current_timestamp": "now()", "current_date": "today()", "now": "now()", "today": "today()"}
_ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
               ast.Mod: "%", ast.Pow: "**"}  # fmt: skip
_COMPARISONS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_REFUSED_OPS = {ast.BitAnd: ("&", "use 'and'"), ast.BitOr: ("|", "use 'or'"), ast.BitXor: ("^", ""),
                ast.LShift: ("<<", ""), ast.RShift: (">>", ""), ast.MatMult: ("@", ""),
                ast.Invert: ("~", "use 'not'"), ast.Is: ("is", "use is_null(x)"),
                ast.IsNot: ("is not", "use is_not_null(x)")}  # fmt: skip
_REFUSED_NODES = {ast.Lambda: "lambda", ast.ListComp: "list comprehension",
                  ast.SetComp: "set comprehension", ast.DictComp: "dict comprehension",
                  ast.GeneratorExp: "generator expression", ast.JoinedStr: "f-string",
                  ast.Subscript: "subscript", ast.Dict: "dict literal", ast.Set: "set literal",
                  ast.List: "list literal", ast.Tuple: "tuple", ast.IfExp: "conditional expression",
                  ast.NamedExpr: "':=' assignment", ast.Starred: "'*' unpacking"}  # fmt: skip
_HINTS = {ast.IfExp: "use if_else(cond, a, b)", ast.Subscript: "use x.slice(start, length)",
          ast.List: "lists are allowed only after 'in'", ast.Tuple: "tuples are allowed only after 'in'"}  # fmt: skip
_STRING_RE = r"'''.*?'''|\"\"\".*?\"\"\"|'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\""
_TOKEN_RE = re.compile(rf"({_STRING_RE})|:([A-Za-z_]\w*)", re.S)
MAX_LENGTH, MAX_DEPTH = 10_000, 100


def _refused(text: str, what: str, hint: str = "") -> ExpressionError:
    return ExpressionError(f"{what} is not allowed in expression {text!r}" + (f"; {hint}" if hint else ""))


def parse(text: str) -> ExprNode:
    """Parse ``text`` into a :data:`ExprNode` tree, refusing anything outside the grammar.

    ``:current_timestamp`` / ``:now`` and ``:current_date`` / ``:today`` outside string
    literals stand for ``now()`` and ``today()``.  Results are cached per text.

    Raises
    ------
    ExpressionError
        On a syntax error or a construct outside the whitelist; the message names it.

    Examples
    --------
    >>> parse("price * 0.9")
    BinOp(op='*', left=Field(name='price'), right=Value(value=0.9))
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters")
    return _parse_cached(text)


@functools.lru_cache(maxsize=4096)
def _parse_cached(text: str) -> ExprNode:
    source = _TOKEN_RE.sub(lambda m: m.group(1) or TOKENS.get(m.group(2), m.group(0)), text).strip()
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        unknown = [m.group(2) for m in _TOKEN_RE.finditer(source) if m.group(2)]
        if unknown:
            known = ", ".join(f":{t}" for t in TOKENS)
            raise ExpressionError(
                f"unknown token ':{unknown[0]}' in expression {text!r}; known tokens: {known}"
            ) from None
        raise ExpressionError(f"invalid syntax in expression {text!r}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"expression {text[:40]!r}... is nested too deeply") from None
    for node in ast.walk(tree):  # private names first: they are the dangerous ones
        if isinstance(node, ast.Name) and node.id.startswith("__"):
            raise _refused(text, f"name {node.id!r}")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise _refused(text, f"attribute {node.attr!r}")
    return _Builder(text, source).build(tree.body)


class _Builder:
    """Turns a Python ``ast`` into :data:`ExprNode`, refusing everything not whitelisted."""

    def __init__(self, text: str, source: str) -> None:
        self.text, self.source, self.depth = text, source, 0

    def build(self, node: ast.AST) -> ExprNode:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"expression {self.text[:40]!r}... is nested too deeply")
        try:
            return self._build(node)
        finally:
            self.depth -= 1

    def _build(self, node: ast.AST) -> ExprNode:
        match node:
            case ast.Name(id=name):
                return Field(name)
            case ast.Constant(value=None | bool() | int() | float() | str() as value):
                return Value(value)
            case ast.Constant(value=value):
                raise _refused(self.text, f"{type(value).__name__} literal {value!r}")
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                return Unary("not", self.build(operand))
            case ast.UnaryOp(op=ast.USub() | ast.UAdd() as op, operand=operand):
                inner, sign = self.build(operand), "-" if isinstance(op, ast.USub) else "+"
                if isinstance(inner, Value) and type(inner.value) in (int, float):  # fold -2 into a literal
                    return Value(-inner.value if sign == "-" else inner.value)  # type: ignore[operator]
                return Unary(sign, inner)
            case ast.BinOp(left=left, op=op, right=right) if type(op) in _ARITHMETIC:
                return BinOp(_ARITHMETIC[type(op)], self.build(left), self.build(right))
            case ast.BinOp(op=op) | ast.UnaryOp(op=op):
                symbol, hint = _REFUSED_OPS.get(type(op), (type(op).__name__, ""))
                raise _refused(self.text, f"operator {symbol!r}", hint)
            case ast.BoolOp(op=op, values=values):
                return BoolOp("and" if isinstance(op, ast.And) else "or", tuple(map(self.build, values)))
            case ast.Compare(left=left, ops=ops, comparators=rights):
                parts = [
                    self.compare(a, op, b) for a, op, b in zip([left, *rights], ops, rights, strict=False)
                ]
                return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))
            case ast.Call(func=ast.Name(id=name) | ast.Attribute(attr=name) as func, args=args, keywords=[]):
                receiver = [self.build(func.value)] if isinstance(func, ast.Attribute) else []
                return self.call(name, receiver, args)
            case ast.Call(keywords=[ast.keyword(arg=kw), *_]):
                raise _refused(self.text, f"keyword argument '{kw}='" if kw else "'**' unpacking")
            case ast.Attribute(attr=attr):
                raise _refused(
                    self.text, f"attribute access '.{attr}'", "string methods are called: name.lower()"
                )
        what = _REFUSED_NODES.get(type(node), type(node).__name__)
        segment = ast.get_source_segment(self.source, node)
        raise _refused(self.text, f"{what} {segment!r}" if segment else what, _HINTS.get(type(node), ""))

    def compare(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> ExprNode:
        if type(op) in _COMPARISONS:
            return BinOp(_COMPARISONS[type(op)], self.build(left), self.build(right))
        if not isinstance(op, (ast.In, ast.NotIn)):
            symbol, hint = _REFUSED_OPS[type(op)]
            raise _refused(self.text, f"operator {symbol!r}", hint)
        if not isinstance(right, (ast.List, ast.Tuple)):
            raise _refused(self.text, "'in' without a literal list", "write x in ('a', 'b')")
        items = [self.build(v) for v in right.elts]
        values = tuple(v.value for v in items if isinstance(v, Value) and v.value is not None)
        if len(values) < len(items):
            raise _refused(self.text, "a non-literal or None inside an 'in' list", "use is_null(x) for None")
        if len({str if type(v) is str else bool if type(v) is bool else float for v in values}) > 1:
            raise _refused(self.text, "an 'in' list mixing strings, numbers and booleans")
        return IsIn(self.build(left), values, isinstance(op, ast.NotIn))

    def call(self, name: str, receiver: list[ExprNode], args: list[ast.expr]) -> ExprNode:
        table, kind = (METHODS, "method") if receiver else (FUNCTIONS, "function")
        if name not in table:
            close = difflib.get_close_matches(name, table, n=1)
            raise ExpressionError(
                f"unknown {kind} {name!r} in expression {self.text!r}"
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + f"; supported {kind}s: {', '.join(sorted(table))}"
            )
        low, high = table[name]
        if len(args) < low or (high is not None and len(args) > high):
            count = str(low) if low == high else f"{low} to {high}" if high else f"at least {low}"
            raise ExpressionError(
                f"{name}() takes {count} argument(s), got {len(args)}, in expression {self.text!r}"
            )
        built = (*receiver, *map(self.build, args))
        for position, (type_, what) in _LITERAL_ARGS.get(name, {}).items():
            arg = built[position] if position < len(built) else Value(0)
            if not (isinstance(arg, Value) and type(arg.value) is type_):
                raise ExpressionError(f"{name}(): {what} must be a literal, in expression {self.text!r}")
            if name == "slice" and isinstance(arg.value, int) and arg.value < 0:
                raise ExpressionError(f"slice(): start and length must be >= 0, in expression {self.text!r}")
        if name == "cast" and _const(built[1]) not in CAST_TYPES:
            raise ExpressionError(
                f"cast(): unknown type {_const(built[1])!r}; choose one of: {', '.join(CAST_TYPES)}"
            )
        if name == "case" and len(built) % 2 == 0:
            raise ExpressionError(f"case() takes pairs of (condition, value) then a default: {self.text!r}")
        return Call(name, built)


def _const(node: ExprNode) -> Any:
    return node.value if isinstance(node, Value) else None


def walk(node: ExprNode) -> Iterator[ExprNode]:
    """Yield ``node`` and every node below it."""
    yield node
    match node:
        case Unary(operand=x) | IsIn(operand=x):
            yield from walk(x)
        case BinOp(left=a, right=b):
            yield from walk(a)
            yield from walk(b)
        case BoolOp(operands=xs) | Call(args=xs):
            for x in xs:
                yield from walk(x)


def referenced_columns(text_or_node: str | ExprNode) -> set[str]:
    """Return the names of the columns an expression reads."""
    node = parse(text_or_node) if isinstance(text_or_node, str) else text_or_node
    return {n.name for n in walk(node) if isinstance(n, Field)}


def _checked(text_or_node: str | ExprNode, columns: Collection[str]) -> ExprNode:
    """Parse if needed, and refuse references to columns not in ``columns``."""
    node = parse(text_or_node) if isinstance(text_or_node, str) else text_or_node
    missing = sorted(referenced_columns(node) - set(columns))
    if missing:
        known = sorted(columns)
        close = difflib.get_close_matches(missing[0], known, n=1)
        listed = quote_names(known[:30]) + (", ..." if len(known) > 30 else "")
        raise ExpressionError(
            f"unknown column {missing[0]!r}"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + (f" in expression {text_or_node!r}" if isinstance(text_or_node, str) else "")
            + f"; available columns: {listed or '(none)'}"
        )
    return node


def utcnow() -> dt.datetime:
    """The ``now()`` of the Polars back end: naive UTC (like SQLite's CURRENT_TIMESTAMP)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


# ----------------------------------------------------------------- update SET values


class Expr(str):
    """A string that is always an expression (``Expr("price")`` copies a column)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Literal:
    """A value that is always a literal, even a string that looks like an expression."""

    value: Any


def classify_update_value(value: Any, columns: Collection[str]) -> tuple[str, Any]:
    """Decide whether an update ``SET`` value is an expression or a literal.

    The rule, first match wins:

    1. ``Expr("...")`` or ``{"$expr": "..."}`` is an expression; ``Literal(v)`` is ``v``.
    2. A non-string is a literal.
    3. A string starting with ``:`` (``":current_timestamp"``) is an expression.
    4. Any other string is an expression only if it parses, is not a bare name or a
       constant, reads at least one column or calls a function, and every name it reads
       is a column.  Otherwise it is a literal string: ``"restocked"``, ``"N/A"``,
       ``"2024-12-31"``, ``"42"``, and also ``"price"`` (a bare column name).  Write
       ``Expr("price")`` to copy a column and ``Literal("stock + 1")`` to store that text.

    Parameters
    ----------
    value : Any
        The value given for one column.
    columns : Collection[str]
        The target table's columns.

    Returns
    -------
    tuple[str, Any]
        ``("expr", ExprNode)`` or ``("literal", value)``.

    Raises
    ------
    ExpressionError
        Only for an explicit expression (rules 1 and 3) that does not compile.

    Examples
    --------
    >>> classify_update_value("price * 0.9", ["price"])[0]
    'expr'
    >>> classify_update_value("N/A", ["price"])
    ('literal', 'N/A')
    """
    if isinstance(value, Literal):
        return "literal", value.value
    if isinstance(value, Mapping) and set(value) == {"$expr"}:
        value = Expr(value["$expr"])
    if isinstance(value, Expr) or (isinstance(value, str) and value.lstrip().startswith(":")):
        return "expr", _checked(str(value), columns)
    if not isinstance(value, str):
        return "literal", value
    try:
        node = parse(value)
    except ExpressionError:
        return "literal", value
    names = referenced_columns(node)
    calls = any(isinstance(n, Call) for n in walk(node))
    if isinstance(node, (Field, Value)) or not (names or calls) or not names <= set(columns):
        return "literal", value
    return "expr", node


# ------------------------------------------------------------------- Polars back end

_PL_TYPES: dict[str, Any] = {"int": pl.Int64, "float": pl.Float64, "decimal": pl.Decimal(38, 10),
                             "str": pl.String, "bool": pl.Boolean, "date": pl.Date,
                             "datetime": pl.Datetime("us")}  # fmt: skip
_INT64 = (-(2**63), 2**63 - 1)
#: Operators whose integer results are computed exactly and checked for overflow.
_INT_ARITHMETIC = ("+", "-", "*", "//", "%")
_TRUE, _FALSE = ["true", "t", "yes", "y", "on"], ["false", "f", "no", "n", "off"]
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


def polars_cast(expr: pl.Expr, to: str, source: pl.DataType | None = None) -> pl.Expr:
    """Cast ``expr`` to a :data:`CAST_TYPES` name; a value that does not convert is null.

    Strings (and values of unknown type, ``source=None``) are parsed: dates as
    ``YYYY-MM-DD``, datetimes as naive ISO 8601, booleans from true/false, t/f, yes/no,
    y/n, on/off (any case) or numbers (non-zero is true).
    """
    if (source is None or source == pl.String) and to in ("date", "datetime", "bool"):
        text = expr if source == pl.String else expr.cast(pl.String, strict=False)
        if to == "date":  # 10 characters: a datetime's text also gives its date
            return text.str.slice(0, 10 if source is None else None).str.to_date("%Y-%m-%d", strict=False)
        if to == "datetime":
            return text.str.to_datetime(strict=False, time_unit="us")
        word, number = text.str.strip_chars().str.to_lowercase(), text.cast(pl.Float64, strict=False)
        return (
            pl.when(word.is_in(_TRUE)).then(True).when(word.is_in(_FALSE)).then(False).otherwise(number != 0)
        )
    return expr.cast(_PL_TYPES[to], strict=False)


class _Polars:
    def __init__(self, schema: Mapping[str, Any] | None) -> None:
        self.schema = dict(schema or {})

    def dtype(self, node: ExprNode) -> pl.DataType | None:
        try:
            return (
                pl.LazyFrame(schema=self.schema).select(self.compile(node).alias("x")).collect_schema()["x"]
            )
        except pl.exceptions.PolarsError:
            return None  # only names known: the caller assumes nothing

    def peers(self, nodes: tuple[ExprNode, ...]) -> list[pl.Expr]:
        """Compile operands whose values meet (``coalesce``, branches, ``<``, ``-``, ...).

        ``now()`` and ``today()`` take the type of the first other operand that is not a
        literal, so ``coalesce(created_at, now())`` works for naive, time-zone-aware (the
        UTC instant, in the column's zone) and date columns alike.
        """
        clocks = [isinstance(n, Call) and n.name in ("now", "today") for n in nodes]
        ref = next(
            (n for n, clock in zip(nodes, clocks, strict=True) if not clock and not isinstance(n, Value)),
            None,
        )
        out = [self.compile(n) for n in nodes]
        if ref is not None and any(clocks):
            dtype = pl.dtype_of(self.compile(ref))
            out = [e.cast(dtype, strict=False) if clock else e for e, clock in zip(out, clocks, strict=True)]
        return out

    def dtype_of(self, expr: pl.Expr) -> pl.DataType | None:
        if not self.schema:
            return None
        try:
            return pl.LazyFrame(schema=self.schema).select(expr.alias("x")).collect_schema()["x"]
        except pl.exceptions.PolarsError:
            return None

    def exact_int(self, plain: pl.Expr, op: Callable[..., Any], operands: Sequence[pl.Expr]) -> pl.Expr:
        """Integer arithmetic as SQL does it: exact, or an error on overflow (never wrapped).

        Computed in 128 bits and cast back to 64 with ``strict=True``, which raises when a
        result is outside the 64-bit range; ``apply_transformations`` names rule and row.
        Narrower integers widen to 64 bits (the target column's range is checked later).
        """
        types = [self.dtype_of(e) for e in operands]
        if not types or not all(t is not None and t.is_integer() for t in types):
            return plain
        wide = op(*(e.cast(pl.Int128) for e in operands))
        return cast(pl.Expr, wide).cast(pl.Int64, strict=True)

    def boolean(self, node: ExprNode) -> pl.Expr:
        return self.compile(node).cast(pl.Boolean)  # Kleene logic, never bitwise on ints

    def compile(self, node: ExprNode) -> pl.Expr:
        c = self.compile
        match node:
            case Field(name=name):
                return pl.col(name)
            case Value(value=int() as value) if (
                not isinstance(value, bool) and not _INT64[0] <= value <= _INT64[1]
            ):
                raise ExpressionError(
                    f"integer literal {value} is outside the 64-bit integer range "
                    f"({_INT64[0]}..{_INT64[1]}); write it as a float ({value}.0) or split the computation"
                )
            case Value(value=value):
                return pl.lit(value)
            case Unary(op="-", operand=x):
                operand = c(x)
                return self.exact_int(-operand, lambda e: pl.lit(0, pl.Int128) - e, (operand,))
            case Unary(op=op, operand=x):
                return ~self.boolean(x) if op == "not" else c(x)
            case BinOp(op="**", left=a, right=b):
                return c(a).cast(pl.Float64) ** c(b)
            case BinOp(op=op, left=a, right=b) if op in _INT_ARITHMETIC:
                pair = self.peers((a, b))
                return self.exact_int(_OPERATORS[op](*pair), _OPERATORS[op], pair)
            case BinOp(op=op, left=a, right=b):
                return _OPERATORS[op](*self.peers((a, b)))  # type: ignore[no-any-return]
            case BoolOp(op=op, operands=xs):
                return functools.reduce(operator.and_ if op == "and" else operator.or_, map(self.boolean, xs))
            case IsIn(operand=x, values=values, negated=negated):
                if not values:  # like SQL: nothing is in an empty list, not even null
                    return pl.lit(negated)
                operand, dtype = c(x), cast(pl.DataType, pl.Float64())  # Polars 2 is_in wants one dtype
                if all(type(v) in (int, float) for v in values):
                    operand = operand.cast(pl.Float64)
                else:
                    dtype = self.dtype(x) or pl.Series(values).dtype
                found = operand.is_in(pl.Series(values, dtype=dtype, strict=False).implode())
                return ~found if negated else found
            case Call(name="now"):
                return pl.lit(utcnow())
            case Call(name="today"):
                return pl.lit(utcnow().date())
            case Call(name=name, args=args):
                return self.call(name, args, c(args[0]))
        raise AssertionError(node)

    def call(self, name: str, args: tuple[ExprNode, ...], x: pl.Expr) -> pl.Expr:
        c, lit = self.compile, [_const(a) for a in args]
        match name:
            case "coalesce":
                return pl.coalesce(self.peers(args))
            case "concat":
                return pl.concat_str([c(a) for a in args])
            case "round":
                return x.round(lit[1] if len(args) == 2 else 0, mode="half_away_from_zero")
            case "abs":
                return self.exact_int(
                    x.abs(), lambda e: pl.when(e < 0).then(pl.lit(0, pl.Int128) - e).otherwise(e), (x,)
                )
            case "cast":
                return polars_cast(x, lit[1], self.dtype(args[0]))
            case "if_else" | "case":
                chain: Any = pl
                values = self.peers((*args[1:-1:2], args[-1]))
                for cond, value in zip(args[:-1:2], values, strict=False):
                    chain = chain.when(self.boolean(cond)).then(value)
                return chain.otherwise(values[-1])  # type: ignore[no-any-return]
            case "is_null":
                return x.is_null()
            case "is_not_null":
                return x.is_not_null()
            case "lower":
                return x.str.to_lowercase()
            case "upper":
                return x.str.to_uppercase()
            case "strip":
                return x.str.strip_chars(" ")  # like SQL trim(): spaces only
            case "title":
                return x.str.to_titlecase()
            case "replace":
                return x.str.replace_all(c(args[1]), c(args[2]), literal=True)
            case "slice":
                return x.str.slice(lit[1], lit[2] if len(args) == 3 else None)
            case "len":
                return x.str.len_chars()
            case "startswith":
                return x.str.starts_with(lit[1])
            case "contains":
                return x.str.contains(lit[1], literal=True)
        raise AssertionError(name)


def to_polars(text_or_node: str | ExprNode, columns: Collection[str]) -> pl.Expr:
    """Compile an expression to a Polars expression.

    Parameters
    ----------
    text_or_node : str or ExprNode
        The expression text or a tree from :func:`parse`.
    columns : Collection[str]
        The input's column names, or its schema (``Mapping[str, pl.DataType]``); with a
        schema, ``in`` and ``cast()`` know the operand types (names alone also work).

    Returns
    -------
    pl.Expr
        ``now()`` / ``today()`` are fixed when this is called (naive UTC).

    Examples
    --------
    >>> pl.DataFrame({"a": [1, 2]}).select(to_polars("a / 2", ["a"]))["a"].to_list()
    [0.5, 1.0]
    """
    schema = columns if isinstance(columns, Mapping) else None
    return _Polars(schema).compile(_checked(text_or_node, columns))


# ---------------------------------------------------------------------- SQL back end


def _Portable(kind: str, *args: Any, type_: Any, param: Any = None) -> Any:
    """A function whose SQL depends on the dialect: one element of
    :mod:`bulkframe.portable_sql` each, spelled per dialect when the statement is compiled
    (each backend module registers its own spelling)."""
    x: Any = args[0]
    if kind in ("startswith", "contains"):  # case-sensitive everywhere
        like = param.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"
        glob = re.sub(r"([*?\[])", r"[\1]", param) + "*"
        if kind == "contains":
            like, glob = "%" + like, "*" + glob
        return portable.CaseSensitiveLike(x, sa.literal(like), escape="/", glob=glob)
    if kind == "cast":
        return portable.PortableCast(x, type_)
    element = {"title": portable.TitleCase, "len": portable.CharLength, "round": portable.Round,
               "floor": portable.Floor}[kind]  # fmt: skip
    return element(*args)


_SQL_TYPES: dict[str, Any] = {"int": sa.Integer(), "float": sa.Float(), "decimal": sa.Numeric(38, 10),
                              "str": sa.String(), "bool": sa.Boolean(), "date": sa.Date(),
                              "datetime": sa.DateTime()}  # fmt: skip


def _is_int(e: Any) -> bool:
    return isinstance(e.type, sa.Integer)


class _Sql:
    def __init__(self, columns: Mapping[str, Any]) -> None:
        self.columns = columns

    def compile(self, node: ExprNode) -> Any:
        c = self.compile
        match node:
            case Field(name=name):
                return self.columns[name]
            case Value(value=value):
                return sa.null() if value is None else sa.literal(value)
            case Unary(op=op, operand=x):
                return sa.not_(c(x)) if op == "not" else -c(x) if op == "-" else c(x)
            case BinOp(op="/", left=a, right=b):  # true division, as in Polars
                return sa.cast(c(a), sa.Float).op("/", precedence=8, return_type=sa.Float)(c(b))
            case BinOp(op="//", left=a, right=b):
                a2, b2 = c(a), c(b)
                out = _Portable("floor", sa.cast(a2, sa.Float).op("/", precedence=8)(b2), type_=sa.Float())
                return sa.cast(out, sa.Integer) if _is_int(a2) and _is_int(b2) else out
            case BinOp(op="%", left=a, right=b):  # floored, as in Python and Polars
                a2, b2 = c(a), c(b)
                return ((a2 % b2) + b2) % b2
            case BinOp(op="**", left=a, right=b):
                return sa.func.power(c(a), c(b), type_=sa.Float)
            case BinOp(op=op, left=a, right=b):
                return _OPERATORS[op](c(a), c(b))
            case BoolOp(op=op, operands=xs):
                return (sa.and_ if op == "and" else sa.or_)(*map(c, xs))
            case IsIn(operand=x, values=values, negated=negated):
                return c(x).not_in(values) if negated else c(x).in_(values)
            case Call(name="now"):
                return sa.func.current_timestamp()
            case Call(name="today"):
                return sa.func.current_date()
            case Call(name=name, args=args):
                return self.call(name, args, [c(a) for a in args])
        raise AssertionError(node)

    def call(self, name: str, args: tuple[ExprNode, ...], xs: list[Any]) -> Any:
        x, lit, text = xs[0], [_const(a) for a in args], sa.String()
        match name:
            case "coalesce":
                return sa.func.coalesce(*xs)
            case "concat":
                parts = [e if isinstance(e.type, sa.String) else sa.cast(e, sa.String) for e in xs]
                return functools.reduce(lambda a, b: a.concat(b), parts)
            case "round":
                return _Portable("round", *xs, type_=sa.Float())
            case "abs":
                return sa.func.abs(x, type_=x.type)
            case "cast":
                return _Portable("cast", x, type_=_SQL_TYPES[lit[1]], param=lit[1])
            case "if_else" | "case":
                return sa.case(*zip(xs[:-1:2], xs[1:-1:2], strict=True), else_=xs[-1])
            case "is_null":
                return x.is_(None)
            case "is_not_null":
                return x.is_not(None)
            case "lower" | "upper" | "replace":
                return getattr(sa.func, name)(*xs, type_=text)
            case "strip":
                return sa.func.trim(x, type_=text)
            case "slice":
                return sa.func.substr(x, lit[1] + 1, *xs[2:], type_=text)
            case "title" | "len":
                return _Portable(name, x, type_=text if name == "title" else sa.Integer())
            case "startswith" | "contains":
                return _Portable(name, x, type_=sa.Boolean(), param=lit[1])
        raise AssertionError(name)


def to_sql(text_or_node: str | ExprNode, columns: Mapping[str, Any]) -> Any:
    """Compile an expression to a SQLAlchemy Core column expression.

    Literals are bound parameters.  Functions whose SQL differs between databases
    (``title``, ``len``, ``round``, ``//``, ``startswith``, ``contains``, ``cast`` to a
    date) are rendered for the dialect when the statement is compiled.

    Parameters
    ----------
    text_or_node : str or ExprNode
        The expression text or a tree from :func:`parse`.
    columns : Mapping[str, ColumnElement]
        Name -> SQLAlchemy column, e.g. ``table.c``.

    Returns
    -------
    sqlalchemy.ColumnElement

    Examples
    --------
    >>> t = sa.table("t", sa.column("price", sa.Float))
    >>> str(to_sql("price * 0.9", t.c))
    't.price * :param_1'
    """
    return _Sql(columns).compile(_checked(text_or_node, list(columns.keys())))
