"""SQL constructs whose spelling differs between databases.

Filters (:mod:`bulkframe.filters`) and rule expressions (:mod:`bulkframe.rules.expressions`)
build these elements; nothing here knows a database.  Each element has one generic
rendering, registered with ``@compiles(Element)``, that follows the SQL standard.  A
backend whose database spells it differently registers its own rendering with
``@compiles(Element, "<dialect name>")`` in its backend module
(``bulkframe/backends/<name>.py``), which is the one place that database's SQL lives.

A backend module registers its renderings when it is imported, and it is imported when a
URL with its scheme is opened.  A statement compiled for a dialect whose backend was never
loaded (``expr.compile(dialect=sqlite.dialect())`` in a script) loads it on first use:
the generic rendering asks the backend registry for the backend of that name first, so
the SQL never depends on import order.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import Cast
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.visitors import InternalTraversal

from bulkframe.errors import NotSupportedError

__all__ = [
    "CaseSensitiveLike",
    "CharLength",
    "ExactInteger",
    "Floor",
    "JsonObject",
    "JsonWithout",
    "PortableCast",
    "RegexSearch",
    "Round",
    "TitleCase",
    "load_dialect_rules",
]


@functools.cache
def load_dialect_rules(dialect: str) -> bool:
    """Import the backend registered under the dialect's name ``dialect`` (its module
    registers its ``@compiles`` renderings); ``False`` when no installed backend has that
    name."""
    from bulkframe.backends.registry import lookup

    entry = lookup(dialect.lower())
    if entry is None:
        return False
    try:
        entry.load()
    except ImportError:  # pragma: no cover - a backend whose driver is missing
        return False
    return True


def _generic(render: Any) -> Any:
    """Wrap a generic rendering: load the dialect's backend once, then render with its
    registration when it has one for this element, else generically."""

    @functools.wraps(render)
    def dispatch(element: Any, compiler: SQLCompiler, **kw: Any) -> str:
        name = compiler.dialect.name
        specs = type(element).__dict__.get("_compiler_dispatcher")
        if specs is not None and name not in specs.specs and load_dialect_rules(name) and name in specs.specs:
            return str(specs.specs[name](element, compiler, **kw))
        return str(render(element, compiler, **kw))

    return dispatch


class CaseSensitiveLike(sa.ColumnElement[bool]):
    """``column LIKE pattern ESCAPE e`` matching letter case exactly, on every database.

    ``glob`` is the same pattern written for ``GLOB``-style matching (``*`` any run, ``?``
    one character, ``[c]`` a literal ``*``, ``?`` or ``[``), for a database whose ``LIKE``
    ignores case; it is a bound value like the pattern, so statements stay cacheable."""

    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's cache-key protocol)
        ("operand", InternalTraversal.dp_clauseelement),
        ("like_clause", InternalTraversal.dp_clauseelement),
        ("glob_pattern", InternalTraversal.dp_clauseelement),
    ]
    type = sa.Boolean()

    def __init__(self, column: Any, pattern: Any, *, escape: str, glob: str) -> None:
        self.operand = column
        self.like_clause = column.like(pattern, escape=escape)
        self.glob_pattern = sa.literal(glob, sa.String())

    def self_group(self, against: Any = None) -> Any:
        return self  # LIKE (and GLOB) bind tighter than AND/OR/NOT everywhere


@compiles(CaseSensitiveLike)
@_generic
def _like(element: CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.like_clause, **kw))


class RegexSearch(sa.ColumnElement[bool]):
    """``column`` holds a match of the regular expression ``pattern`` anywhere (a search,
    not a whole-string match).  Generic: SQLAlchemy's ``regexp_match`` for the dialect
    (PostgreSQL ``~``)."""

    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012 (SQLAlchemy's cache-key protocol)
        ("operand", InternalTraversal.dp_clauseelement),
        ("pattern", InternalTraversal.dp_clauseelement),
    ]
    type = sa.Boolean()

    def __init__(self, column: Any, pattern: Any) -> None:
        self.operand = column
        self.pattern = sa.literal(pattern, sa.String()) if isinstance(pattern, str) else pattern

    def self_group(self, against: Any = None) -> Any:
        return self


@compiles(RegexSearch)
@_generic
def _regex(element: RegexSearch, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.operand.regexp_match(element.pattern), **kw))


class TitleCase(FunctionElement[str]):
    """Upper-case the first letter of each word, lower-case the rest (``initcap``).  No
    standard SQL function does this: the generic rendering refuses."""

    inherit_cache = True
    type = sa.String()


@compiles(TitleCase)
@_generic
def _title(element: TitleCase, compiler: SQLCompiler, **kw: Any) -> str:
    raise NotSupportedError(
        f"title() has no SQL equivalent on {compiler.dialect.name}; transform with Polars instead"
    )


class CharLength(FunctionElement[int]):
    """The number of characters of a text (generic: ``length(x)``)."""

    inherit_cache = True
    type = sa.Integer()


@compiles(CharLength)
@_generic
def _char_length(element: CharLength, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(sa.func.length(*element.clauses.clauses), **kw))


class Round(FunctionElement[float]):
    """``round(x[, digits])`` of any number (generic: ``round(x, digits)``)."""

    inherit_cache = True
    type = sa.Float()


@compiles(Round)
@_generic
def _round(element: Round, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(sa.func.round(*element.clauses.clauses), **kw))


class Floor(FunctionElement[float]):
    """The largest integer not greater than ``x`` (generic: ``floor(x)``)."""

    inherit_cache = True
    type = sa.Float()


@compiles(Floor)
@_generic
def _floor(element: Floor, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(sa.func.floor(*element.clauses.clauses), **kw))


class PortableCast(Cast[Any]):
    """``CAST(x AS type)``, for target types some database spells as a function (a text
    read as a date).  The target type is part of the statement's cache key, as in
    ``Cast``."""

    inherit_cache = True


@compiles(PortableCast)
@_generic
def _cast(element: PortableCast, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.visit_cast(element, **kw))  # type: ignore[no-untyped-call]


class ExactInteger(sa.ColumnElement[Any]):
    """An integer computed in SQL (an update's expression or atomic op, stored into an
    integer column) that must fail rather than change when it leaves the 64-bit range or
    stops being whole.  Generic: the value itself; the database raises on overflow
    (PostgreSQL: "bigint out of range").  A database that silently turns such a result
    into something else renders its own guard."""

    inherit_cache = True
    _traverse_internals = [("value", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, value: sa.ColumnElement[Any]) -> None:
        self.value = value
        self.type = value.type


@compiles(ExactInteger)
@_generic
def _exact_integer(element: ExactInteger, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.value, **kw))


def _sql_string(text: str) -> str:
    """``text`` as an SQL string literal (for names the statement spells, never values)."""
    return "'" + text.replace("'", "''") + "'"


class JsonObject(sa.ColumnElement[Any]):
    """A JSON object built from ``names`` (column names, rendered as string literals) and
    the SQL values beside them (generic: ``json_object('a', x, 'b', y)``)."""

    inherit_cache = False

    def __init__(self, names: list[str], values: list[Any]) -> None:
        self.names = list(names)
        self.values = list(values)
        self.type = sa.Text()


@compiles(JsonObject)
@_generic
def _json_object(element: JsonObject, compiler: SQLCompiler, **kw: Any) -> str:
    parts = [
        f"{_sql_string(n)}, {compiler.process(v, **kw)}"
        for n, v in zip(element.names, element.values, strict=True)
    ]
    return f"json_object({', '.join(parts)})"


class JsonWithout(sa.ColumnElement[Any]):
    """The JSON object ``obj`` without the members whose condition holds (``drops``:
    ``[(name, condition), ...]``).  Generic: ``json_remove(obj, CASE WHEN c THEN '$."a"'
    ELSE <a path no column has> END, ...)`` (removing an absent member changes nothing)."""

    inherit_cache = False

    def __init__(self, obj: Any, drops: list[tuple[str, Any]]) -> None:
        self.obj = obj
        self.drops = list(drops)
        self.type = sa.Text()


@compiles(JsonWithout)
@_generic
def _json_without(element: JsonWithout, compiler: SQLCompiler, **kw: Any) -> str:
    if not element.drops:
        return str(compiler.process(element.obj, **kw))
    absent = _sql_string(json_path(" bulkframe:absent "))
    paths = [
        f"CASE WHEN {compiler.process(cond, **kw)} THEN {_sql_string(json_path(name))} ELSE {absent} END"
        for name, cond in element.drops
    ]
    return f"json_remove({compiler.process(element.obj, **kw)}, {', '.join(paths)})"


def json_path(name: str) -> str:
    """The JSON path of member ``name`` (``$."name"``, with ``"`` and ``\\`` escaped)."""
    return '$."' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
