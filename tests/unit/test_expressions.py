"""The expression language: parser refusals, Polars and SQL back ends, transformations."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from bulkframe.backends.postgres import PostgresBackend
from bulkframe.backends.sqlite import SQLiteBackend
from bulkframe.errors import ExpressionError, NotSupportedError
from bulkframe.rules import (
    Expr,
    Literal,
    apply_transformations,
    classify_update_value,
    compile_transformations,
    parse,
    referenced_columns,
    to_polars,
    to_sql,
)
from bulkframe.rules.expressions import BinOp, Call, Field, Value

COLUMNS = ["id", "a", "b", "f", "s", "t"]

# --------------------------------------------------------------------------- parser


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("__import__('os').system('rm -rf /')", "'__import__'"),
        ("().__class__", "'__class__'"),
        ("price.__class__", "'__class__'"),
        ("open('x')", "unknown function 'open'"),
        ("lambda x: x", "lambda"),
        ("lambda x:x", "lambda"),
        ("[x for x in y]", "list comprehension '[x for x in y]'"),
        ("{k: 1 for k in y}", "dict comprehension"),
        ("(x for x in y)", "generator expression"),
        ("price.foo()", "unknown method 'foo'"),
        ("price.lowr()", "did you mean 'lower'?"),
        ("pricee * 2", "unknown column 'pricee' (did you mean 'price'?)"),
        ("a[0]", "subscript 'a[0]'"),
        ("f'{a}'", "f-string"),
        ("a if b else c", "conditional expression"),
        ("lower(s=1)", "keyword argument 's='"),
        ("coalesce(*a)", "'*' unpacking"),
        ("lower(**a)", "'**' unpacking"),
        ("(a := 1)", "':=' assignment"),
        ("a & b", "operator '&'"),
        ("~a", "operator '~'"),
        ("a is None", "operator 'is'"),
        ("a.b", "attribute access '.b'"),
        ("a._private()", "attribute '_private'"),
        ("__builtins__", "name '__builtins__'"),
        ("b'x'", "bytes literal"),
        ("1j", "complex literal"),
        ("{'a': 1}", "dict literal"),
        ("[1, 2]", "list literal"),
        ("a in b", "'in' without a literal list"),
        ("a in (b, 1)", "non-literal"),
        ("a in (None, 1)", "None inside an 'in' list"),
        ("a in (1, 'x')", "mixing"),
        ("getattr(a, 'x')", "unknown function 'getattr'"),
        ("cast(a, 'money')", "unknown type 'money'"),
        ("cast(a, b)", "the type must be a literal"),
        ("round(a, b)", "round(): the number of digits"),
        ("s.slice(-1)", "slice(): start and length must be >= 0"),
        ("s.startswith(t)", "startswith(): the text to look for"),
        ("case(a > 1, 2)", "case() takes at least 3 argument(s), got 2"),
        ("case(a > 1, 2, a > 2, 3)", "case() takes pairs"),
        ("lower()", "lower() takes 1 argument(s), got 0"),
        ("s.lower(1)", "lower() takes 0 argument(s), got 1"),
        (":tomorrow", "unknown token ':tomorrow'"),
        ("a +", "invalid syntax"),
        ("a\nb", "invalid syntax"),
    ],
)
def test_refused_with_the_token_named(text: str, token: str) -> None:
    with pytest.raises(ExpressionError) as info:
        to_polars(text, ["price", "a", "b", "c", "s", "t", "y"])
    assert token in str(info.value)


def test_errors_are_value_errors_and_parse_is_cached() -> None:
    with pytest.raises(ValueError, match="lambda"):
        parse("lambda: 1")
    assert parse("a + 1") is parse("a + 1")
    with pytest.raises(ExpressionError, match="longer than"):
        parse("a+" * 6000 + "a")
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse("-" * 5000 + "a")
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse("not " * 101 + "a")
    assert parse("not " * 99 + "a")
    with pytest.raises(ExpressionError, match="must be a string"):
        parse(3)  # type: ignore[arg-type]


def test_tree_and_tokens() -> None:
    assert parse("price * 0.9") == BinOp("*", Field("price"), Value(0.9))
    assert parse("-2") == Value(-2)
    assert parse(":current_timestamp") == Call("now", ())
    assert parse(":current_date") == parse("today()") == parse(":today")
    assert parse("coalesce(x, :now)") == Call("coalesce", (Field("x"), Call("now", ())))
    assert parse("concat(s, ':now')") == Call("concat", (Field("s"), Value(":now")))  # not in strings
    assert parse("name.lower()") == parse("lower(name)")


def test_referenced_columns() -> None:
    assert referenced_columns("coalesce(a, b.lower(), now()) + c * 2 in (1, 2)") == {"a", "b", "c"}
    assert referenced_columns(parse("if_else(x > 1, 'a', y)")) == {"x", "y"}
    assert referenced_columns("1 + 2") == set()


# ------------------------------------------------------- Polars and SQLite agree

FRAME = pl.DataFrame(
    {
        "id": [0, 1, 2, 3],
        "a": [1, -7, None, 10],
        "b": [2, 3, 1, None],
        "f": [2.5, -1.25, None, 0.125],
        "s": ["Apple", " pie ", None, "a_b%c"],
        "t": ["2024-01-02", "x", None, "2024-12-31"],
    }
)
N = None
CASES: list[tuple[str, list[Any]]] = [
    ("a", [1, -7, N, 10]),
    ("7", [7, 7, 7, 7]),
    ("2.5", [2.5] * 4),
    ("'x'", ["x"] * 4),
    ("True", [True] * 4),
    ("-a", [-1, 7, N, -10]),
    ("+a", [1, -7, N, 10]),
    ("a + b", [3, -4, N, N]),
    ("a - b", [-1, -10, N, N]),
    ("a * b", [2, -21, N, N]),
    ("a / b", [0.5, -7 / 3, N, N]),
    ("a // b", [0, -3, N, N]),
    ("a % b", [1, 2, N, N]),
    ("f // 1", [2.0, -2.0, N, 0.0]),
    ("a ** 2", [1.0, 49.0, N, 100.0]),
    ("(a + 1) * 2 - b / 4", [3.5, -12.75, N, N]),
    ("a == 1", [True, False, N, False]),
    ("a != 1", [False, True, N, True]),
    ("a < b", [True, True, N, N]),
    ("a <= 1", [True, True, N, False]),
    ("a > b", [False, False, N, N]),
    ("a >= 10", [False, False, N, True]),
    ("0 < a < 5", [True, False, N, False]),
    ("a > 0 and b > 2", [False, False, False, N]),  # null and false is false
    ("a > 0 or b > 2", [True, True, N, True]),
    ("not a > 1", [True, True, N, False]),
    ("not (a > 1 or b == 3)", [True, False, N, False]),
    ("a in (1, 10)", [True, False, N, True]),
    ("a not in (1, 10)", [False, True, N, False]),
    ("s in ('Apple', 'x')", [True, False, N, False]),
    ("f in (2.5, 1)", [True, False, N, False]),
    ("a in (1.0, 1.5)", [True, False, N, False]),
    ("a in ()", [False] * 4),  # SQL: nothing is in an empty list, not even null
    ("s not in ()", [True] * 4),
    ("(a > 0) in (True,)", [True, False, N, True]),
    ("s.lower()", ["apple", " pie ", N, "a_b%c"]),
    ("s.upper()", ["APPLE", " PIE ", N, "A_B%C"]),
    ("lower(s)", ["apple", " pie ", N, "a_b%c"]),
    ("upper(s)", ["APPLE", " PIE ", N, "A_B%C"]),
    ("s.strip()", ["Apple", "pie", N, "a_b%c"]),
    ("s.replace('p', 'P')", ["APPle", " Pie ", N, "a_b%c"]),
    ("s.replace('%', '')", ["Apple", " pie ", N, "a_bc"]),
    ("s.slice(1, 3)", ["ppl", "pie", N, "_b%"]),
    ("s.slice(2)", ["ple", "ie ", N, "b%c"]),
    ("s.len()", [5, 5, N, 5]),
    ("s.startswith('A')", [True, False, N, False]),
    ("s.startswith('a')", [False, False, N, True]),  # case-sensitive on SQLite too
    ("s.startswith('a_')", [False, False, N, True]),
    ("s.startswith('_')", [False, False, N, False]),  # '_' is not a wildcard
    ("s.contains('%')", [False, False, N, True]),
    ("s.contains('p')", [True, True, N, False]),
    ("s.contains('P')", [False, False, N, False]),
    ("s.contains('*')", [False, False, N, False]),  # nor is '*'
    ("s + '!'", ["Apple!", " pie !", N, "a_b%c!"]),
    ("coalesce(a, b, 0)", [1, -7, 1, 10]),
    ("coalesce(s, 'none').upper()", ["APPLE", " PIE ", "NONE", "A_B%C"]),
    ("round(f, 1)", [2.5, -1.3, N, 0.1]),
    ("round(f)", [3.0, -1.0, N, 0.0]),
    ("abs(a)", [1, 7, N, 10]),
    ("concat(s, '-', a)", ["Apple-1", " pie --7", N, "a_b%c-10"]),
    ("concat(s, ':now')", ["Apple:now", " pie :now", N, "a_b%c:now"]),
    ("cast(a, 'str')", ["1", "-7", N, "10"]),
    ("cast(a, 'float')", [1.0, -7.0, N, 10.0]),
    ("cast(f, 'int')", [2, -1, N, 0]),
    ("cast(a, 'bool')", [True, True, N, True]),
    ("cast(f, 'decimal')", [Decimal("2.5"), Decimal("-1.25"), N, Decimal("0.125")]),
    ("cast(t, 'date')", [dt.date(2024, 1, 2), N, N, dt.date(2024, 12, 31)]),
    ("cast(t, 'datetime')", [dt.datetime(2024, 1, 2), N, N, dt.datetime(2024, 12, 31)]),
    ("cast('41', 'int') + 1", [42] * 4),
    ("if_else(a > 0, 'pos', 'neg')", ["pos", "neg", "neg", "pos"]),
    ("case(a > 5, 'big', a > 0, 'small', 'neg')", ["small", "neg", "neg", "big"]),
    ("is_null(a)", [False, False, True, False]),
    ("is_not_null(s)", [True, True, False, True]),
    ("if_else(is_null(b), -1, b * 10)", [20, 30, 10, -1]),
]


def _same(actual: list[Any], expected: list[Any]) -> bool:
    def eq(x: Any, y: Any) -> bool:
        if isinstance(x, float) or isinstance(y, float):
            return x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9)
        return bool(x == y and (type(x) is type(y) or {type(x), type(y)} <= {int, bool}))

    return len(actual) == len(expected) and all(eq(x, y) for x, y in zip(actual, expected, strict=True))


def _polars(text: str) -> list[Any]:
    return FRAME.select(pl.col("id"), to_polars(text, FRAME.schema).alias("out"))["out"].to_list()


@pytest.fixture(scope="module")
def sqlite_table() -> Any:
    metadata = sa.MetaData()
    table = sa.Table(
        "frame",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("a", sa.Integer),
        sa.Column("b", sa.Integer),
        sa.Column("f", sa.Float),
        sa.Column("s", sa.String),
        sa.Column("t", sa.String),
    )
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), FRAME.to_dicts())
    with engine.connect() as conn:
        yield conn, table
    engine.dispose()


def _sql(sqlite_table: Any, text: str) -> list[Any]:
    conn, table = sqlite_table
    query = sa.select(to_sql(text, table.c)).select_from(table).order_by(table.c.id)
    return list(conn.execute(query).scalars())


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_polars_and_sqlite_agree(sqlite_table: Any, text: str, expected: list[Any]) -> None:
    assert _same(_polars(text), expected), _polars(text)
    assert _same(_sql(sqlite_table, text), expected), _sql(sqlite_table, text)


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_polars_with_column_names_only(text: str, expected: list[Any]) -> None:
    out = FRAME.select(pl.col("id"), to_polars(text, FRAME.columns).alias("out"))["out"].to_list()
    assert _same(out, expected), out


def test_names_only_still_parse_dates_and_bools() -> None:
    frame = pl.DataFrame({"t": ["2024-01-02", "no", None], "d": [dt.datetime(2024, 5, 6, 7), None, None]})
    out = frame.select(
        to_polars("cast(t, 'date')", ["t"]).alias("date"),
        to_polars("cast(d, 'date')", ["d"]).alias("from_datetime"),
        to_polars("cast(t, 'bool')", ["t"]).alias("bool"),
    )
    assert out.to_dict(as_series=False) == {
        "date": [dt.date(2024, 1, 2), None, None],
        "from_datetime": [dt.date(2024, 5, 6), None, None],
        "bool": [None, False, None],
    }


def test_now_and_today_are_utc(sqlite_table: Any) -> None:
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    for text in ("now()", ":current_timestamp", ":now"):
        for value in _polars(text) + _sql(sqlite_table, text):
            assert isinstance(value, dt.datetime) and abs(value - now) < dt.timedelta(minutes=1)
    for text in ("today()", ":current_date", ":today"):
        for value in _polars(text) + _sql(sqlite_table, text):
            assert type(value) is dt.date and abs(value - now.date()) <= dt.timedelta(days=1)


@pytest.mark.parametrize("columns", ["names", "schema"])
def test_now_takes_the_type_of_the_column_it_meets(columns: str) -> None:
    old = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    frame = pl.DataFrame(
        {"aware": [None, old], "naive": [None, old.replace(tzinfo=None)], "day": [None, old.date()]}
    ).with_columns(pl.col("aware").dt.convert_time_zone("Europe/Berlin"))
    known = frame.schema if columns == "schema" else frame.columns
    out = frame.select(
        to_polars("coalesce(aware, now())", known).alias("aware"),
        to_polars("coalesce(naive, :current_timestamp)", known).alias("naive"),
        to_polars("coalesce(day, today())", known).alias("day"),
        to_polars("aware < now()", known).alias("before"),
        to_polars("if_else(is_null(aware), now(), aware)", known).alias("branch"),
    )
    assert out.schema == pl.Schema(
        {
            "aware": pl.Datetime("us", "Europe/Berlin"),
            "naive": pl.Datetime("us"),
            "day": pl.Date,
            "before": pl.Boolean,
            "branch": pl.Datetime("us", "Europe/Berlin"),
        }
    )
    now = dt.datetime.now(dt.timezone.utc)
    first = out.row(0, named=True)
    assert abs(first["aware"] - now) < dt.timedelta(minutes=1)  # the same instant, in Berlin
    assert abs(first["naive"] - now.replace(tzinfo=None)) < dt.timedelta(minutes=1)  # UTC wall clock
    assert out["aware"][1] == old and out["before"].to_list() == [None, True]


def test_title_is_polars_and_postgresql_only(sqlite_table: Any) -> None:
    assert _polars("s.title()") == ["Apple", " Pie ", None, "A_B%C"]
    with pytest.raises(NotSupportedError, match="title"):
        _sql(sqlite_table, "s.title()")


# ------------------------------------------------------------- golden SQL per dialect

TABLE = sa.table(
    "t", sa.column("price", sa.Float), sa.column("qty", sa.Integer), sa.column("name", sa.String)
)
GOLDEN = [
    (
        "price * 0.9",
        "t.price * ?",
        "t.price * $1",
    ),
    (
        "qty / 2",
        "CAST(t.qty AS FLOAT) / ?",
        "CAST(t.qty AS FLOAT) / $1::INTEGER",
    ),
    (
        "qty // 2",
        "CAST(CAST(CAST(t.qty AS FLOAT) / ? AS INTEGER) - CAST(CAST(t.qty AS FLOAT) / ? < "
        "CAST(CAST(t.qty AS FLOAT) / ? AS INTEGER) AS INTEGER) AS INTEGER)",
        "CAST(floor(CAST(t.qty AS FLOAT) / $1::INTEGER) AS INTEGER)",
    ),
    (
        "price // 2.5",
        "CAST(CAST(t.price AS FLOAT) / ? AS INTEGER) - CAST(CAST(t.price AS FLOAT) / ? < "
        "CAST(CAST(t.price AS FLOAT) / ? AS INTEGER) AS INTEGER)",
        "floor(CAST(t.price AS FLOAT) / $1)",
    ),
    (
        "qty % 3",
        "(t.qty % ? + ?) % ?",
        "(t.qty % $1::INTEGER + $1::INTEGER) % $1::INTEGER",
    ),
    (
        "coalesce(name, 'n/a').lower()",
        "lower(coalesce(t.name, ?))",
        "lower(coalesce(t.name, $1::VARCHAR))",
    ),
    (
        "name.startswith('50%_off')",
        "t.name GLOB ?",
        "t.name LIKE $1::VARCHAR ESCAPE '/'",
    ),
    (
        "name.contains('a')",
        "t.name GLOB ?",
        "t.name LIKE $1::VARCHAR ESCAPE '/'",
    ),
    (
        "name.slice(0, 3)",
        "substr(t.name, ?, ?)",
        "substr(t.name, $1::INTEGER, $2::INTEGER)",
    ),
    ("name.title()", None, "initcap(t.name)"),
    ("name.len()", "length(t.name)", "length(t.name)"),
    ("round(price, 2)", "round(t.price, ?)", "round(CAST(t.price AS NUMERIC), $1::INTEGER)"),
    ("cast(name, 'date')", "date(t.name)", "CAST(t.name AS DATE)"),
    ("cast(name, 'datetime')", "datetime(t.name)", "CAST(t.name AS TIMESTAMP WITHOUT TIME ZONE)"),
    ("cast(price, 'decimal')", "CAST(t.price AS NUMERIC(38, 10))", "CAST(t.price AS NUMERIC(38, 10))"),
    (
        "concat(name, '-', qty)",
        "t.name || ? || CAST(t.qty AS VARCHAR)",
        "t.name || $1::VARCHAR || CAST(t.qty AS VARCHAR)",
    ),
    ("qty in (1, 2)", "t.qty IN (__[POSTCOMPILE_qty_1])", "t.qty IN (__[POSTCOMPILE_qty_1])"),
    (
        "coalesce(price, :current_timestamp)",
        "coalesce(t.price, CURRENT_TIMESTAMP)",
        "coalesce(t.price, CURRENT_TIMESTAMP)",
    ),
    (":current_date", "CURRENT_DATE", "CURRENT_DATE"),
    (
        "if_else(qty > 0, name, None)",
        "CASE WHEN (t.qty > ?) THEN t.name ELSE NULL END",
        "CASE WHEN (t.qty > $1::INTEGER) THEN t.name ELSE NULL END",
    ),
    (
        "is_null(name) or qty != 1",
        "t.name IS NULL OR t.qty != ?",
        "t.name IS NULL OR t.qty != $1::INTEGER",
    ),
]


@pytest.mark.parametrize(("text", "sqlite_sql", "postgresql_sql"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_sql(text: str, sqlite_sql: str | None, postgresql_sql: str) -> None:
    expr = to_sql(text, TABLE.c)
    assert str(expr.compile(dialect=PostgresBackend.dialect)) == postgresql_sql
    if sqlite_sql is None:
        with pytest.raises(NotSupportedError):
            expr.compile(dialect=SQLiteBackend.dialect)
    else:
        assert str(expr.compile(dialect=SQLiteBackend.dialect)) == sqlite_sql


@pytest.mark.parametrize(
    ("dialect", "like_param"),
    [(SQLiteBackend.dialect, "50%_off*"), (PostgresBackend.dialect, "50/%/_off%")],
    ids=["sqlite", "postgresql"],
)
def test_values_are_bound_parameters(dialect: Any, like_param: str) -> None:
    hostile = "x'); DROP TABLE t; --"
    expr = to_sql(f"if_else(name == {hostile!r}, price * 0.5, 123456789)", TABLE.c)
    compiled = expr.compile(dialect=dialect)
    assert "DROP" not in str(compiled) and "123456789" not in str(compiled) and "0.5" not in str(compiled)
    assert set(compiled.params.values()) == {hostile, 0.5, 123456789}
    like = to_sql("name.startswith('50%_off')", TABLE.c).compile(dialect=dialect)
    assert list(like.params.values()) == [like_param]  # GLOB or LIKE pattern, as the dialect matches


def test_statements_that_compile_differently_have_different_cache_keys() -> None:
    """The dialect-dependent elements (``bulkframe.portable_sql``) are cacheable: whatever
    changes their SQL is in the statement cache key, so a cached compilation is never
    reused for a different expression."""
    seen: dict[Any, tuple[str, str]] = {}
    for text, sqlite_sql, _ in GOLDEN:
        expr = sa.select(to_sql(text, TABLE.c))
        key = expr._generate_cache_key()
        assert key is not None, text  # cacheable
        lite = str(expr.compile(dialect=SQLiteBackend.dialect)) if sqlite_sql is not None else ""
        sql = (lite, str(expr.compile(dialect=PostgresBackend.dialect)))
        assert seen.setdefault(key.key, sql) == sql, text


def test_unknown_sql_column_lists_columns() -> None:
    with pytest.raises(ExpressionError, match=r"unknown column 'cost'.*available columns: name, price, qty"):
        to_sql("cost * 2", TABLE.c)


# ---------------------------------------------------------------- update SET values


@pytest.mark.parametrize(
    ("value", "kind", "result"),
    [
        ("price * 0.9", "expr", parse("price * 0.9")),
        ("stock + 100", "expr", parse("stock + 100")),
        (":current_timestamp", "expr", Call("now", ())),
        (":current_date", "expr", Call("today", ())),
        ("coalesce(price, 0)", "expr", parse("coalesce(price, 0)")),
        ("now()", "expr", Call("now", ())),
        ("restocked", "literal", "restocked"),
        ("N/A", "literal", "N/A"),
        ("price", "literal", "price"),  # a bare column name stays text: use Expr("price")
        ("2024-12-31", "literal", "2024-12-31"),
        ("42", "literal", "42"),
        ("True", "literal", "True"),
        ("hello world", "literal", "hello world"),
        ("unknown_col * 2", "literal", "unknown_col * 2"),
        ("price.foo()", "literal", "price.foo()"),
        ("", "literal", ""),
        (15.99, "literal", 15.99),
        (None, "literal", None),
        ({"a": 1}, "literal", {"a": 1}),
        (Literal("price * 0.9"), "literal", "price * 0.9"),
        (Expr("price"), "expr", Field("price")),
        ({"$expr": "stock - 1"}, "expr", parse("stock - 1")),
    ],
)
def test_classify_update_value(value: Any, kind: str, result: Any) -> None:
    assert classify_update_value(value, ["price", "stock"]) == (kind, result)


def test_explicit_expression_must_be_valid() -> None:
    with pytest.raises(ExpressionError, match="unknown column 'cost'"):
        classify_update_value(Expr("cost * 2"), ["price"])
    with pytest.raises(ExpressionError, match="unknown token ':yesterday'"):
        classify_update_value(":yesterday", ["price"])


# ------------------------------------------------------------------ transformations


def test_transformations_see_original_values_and_add_columns() -> None:
    frame = pl.DataFrame({"price": [10.0, None], "category": ["Toys", "BOOKS"], "a": [1, 2], "b": [3, 4]})
    rules = {
        "price": "price * 1.1",
        "category": "category.lower()",
        "a": "b",
        "b": "a",
        "label": "concat(category, ':', a)",
    }
    out = apply_transformations(frame, compile_transformations(rules, frame.schema))
    assert out.to_dict(as_series=False) == {
        "price": [pytest.approx(11.0), None],
        "category": ["toys", "books"],
        "a": [3, 4],
        "b": [1, 2],
        "label": ["Toys:1", "BOOKS:2"],
    }
    assert frame["a"].to_list() == [1, 2]  # input untouched


def test_transformations_keep_lazy_frames_lazy() -> None:
    lazy = pl.LazyFrame(
        {"created_at": [None, dt.datetime(2020, 1, 1)]}, schema={"created_at": pl.Datetime("us")}
    )
    compiled = compile_transformations({"created_at": "coalesce(created_at, now())"}, ["created_at"])
    out = apply_transformations(lazy, compiled)
    assert isinstance(out, pl.LazyFrame)
    values = out.collect()["created_at"].to_list()
    assert values[0] is not None and values[1] == dt.datetime(2020, 1, 1)
    assert apply_transformations(lazy, []) is lazy


def test_transformation_errors_name_target_and_token() -> None:
    with pytest.raises(ExpressionError, match=r"column 'total'.*unknown column 'qtty'"):
        compile_transformations({"total": "price * qtty"}, ["price", "qty"])
    with pytest.raises(ExpressionError, match=r"column 'x'.*name '__import__'"):
        compile_transformations({"x": "__import__('os')"}, ["price"])
