"""Tests of bulkframe.filters: errors, golden SQL, and "every back end selects the same rows".

SQLite always runs; PostgreSQL comes from ``BULKFRAME_TEST_POSTGRES_URL`` (default
``postgresql://root@127.0.0.1:5432/test``) and is expected to be up.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bulkframe.backends.base import Backend
from bulkframe.backends.postgres import PostgresBackend
from bulkframe.backends.registry import load_backend
from bulkframe.backends.sqlite import SQLiteBackend
from bulkframe.errors import ExpressionError, FilterError, NotSupportedError
from bulkframe.filters import (
    MAX_DEPTH,
    is_empty,
    like_to_glob,
    like_to_regex,
    parse,
    referenced_columns,
    to_polars,
    to_sql,
)
from suite_backends import TEST_BACKENDS, SuiteBackend

HOSTILE = "'; DROP TABLE x; --"
STRINGS = [
    "apple", "Apple", "APPLE pie", "banana", "café", "naïve", "日本語", "O'Brien",
    'say "hi"', "100%", "50% off", "a_b", "axb", "a\\b", "snake_case_name", "", " ",
    "line\nbreak", HOSTILE, "Ünïcødé", "ß", "emoji 🎉", "*star?", "[bracket]", "x.y+z",
    "tab\tsep", "b", "B", "zeta",
]  # fmt: skip
SCHEMA: dict[str, Any] = {
    "id": pl.Int64, "n": pl.Int64, "x": pl.Float64, "s": pl.String, "flag": pl.Boolean,
    "d": pl.Date, "ts": pl.Datetime("us", "UTC"), "nts": pl.Datetime("us"), "select": pl.Int64,
}  # fmt: skip


def _maybe(rng: random.Random, value: Any) -> Any:
    return None if rng.random() < 0.12 else value


def _rows() -> list[dict[str, Any]]:
    rng, base = random.Random(20240601), datetime(2021, 1, 1, tzinfo=timezone.utc)
    rows = []
    for i in range(200):
        ts = base + timedelta(seconds=rng.randrange(3 * 365 * 86400))
        rows.append({
            "id": i, "n": _maybe(rng, rng.randint(-50, 50)),
            "x": _maybe(rng, round(rng.uniform(-100, 100), 3)),
            "s": _maybe(rng, rng.choice(STRINGS)), "flag": _maybe(rng, rng.random() < 0.5),
            "d": _maybe(rng, (base + timedelta(days=rng.randrange(1000))).date()),
            "ts": _maybe(rng, ts), "nts": _maybe(rng, ts.replace(tzinfo=None)),
            "select": _maybe(rng, rng.randint(0, 9)),
        })  # fmt: skip
    return rows


ROWS = _rows()
FRAME = pl.DataFrame(ROWS, schema=SCHEMA)


def _table(metadata: sa.MetaData, name: str, text: sa.Text | None = None) -> sa.Table:
    text = text if text is not None else sa.Text()  # SuiteBackend.code_point_text orders by code point
    return sa.Table(
        name, metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False), sa.Column("n", sa.Integer),
        sa.Column("x", sa.Double), sa.Column("s", text), sa.Column("flag", sa.Boolean),
        sa.Column("d", sa.Date), sa.Column("ts", sa.DateTime(timezone=True)),
        sa.Column("nts", sa.DateTime), sa.Column("select", sa.Integer),
    )  # fmt: skip


def _sqlite_url(request: pytest.FixtureRequest) -> str:
    return next(b for b in TEST_BACKENDS if b.id == "sqlite").engine_url(request)


@functools.cache
def _backend(engine: sa.Engine) -> Backend:
    """bulkframe's backend for the database ``engine`` reaches (its capabilities)."""
    # (the engine URL's query holds the test client's own connect arguments)
    return load_backend(engine.url.set(query={}).render_as_string(hide_password=False))


@pytest.fixture(scope="module", params=[pytest.param(b, marks=b.marks, id=b.id) for b in TEST_BACKENDS])
def loaded(request: pytest.FixtureRequest) -> Iterator[tuple[sa.Engine, sa.Table]]:
    """The ROWS in a uniquely named table on each database, dropped afterwards."""
    backend: SuiteBackend = request.param
    engine = sa.create_engine(backend.engine_url(request))
    metadata = sa.MetaData()
    table = _table(metadata, f"bf_filters_{uuid.uuid4().hex[:10]}", backend.code_point_text)
    metadata.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(table.insert(), ROWS)
        yield engine, table
    finally:
        metadata.drop_all(engine)
        engine.dispose()


@pytest.fixture(scope="module")
def sqlite_loaded(request: pytest.FixtureRequest) -> Iterator[tuple[sa.Engine, sa.Table]]:
    engine, metadata = sa.create_engine(_sqlite_url(request)), sa.MetaData()
    table = _table(metadata, "rows")
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), ROWS)
    yield engine, table
    engine.dispose()


def _sql_ids(engine: sa.Engine, table: sa.Table, filter: Any) -> set[int]:
    where = to_sql(filter, table, backend=_backend(engine))
    with engine.connect() as conn:
        return set(conn.execute(sa.select(table.c.id).where(where)).scalars())


def _polars_ids(filter: Any, frame: pl.DataFrame = FRAME) -> set[int]:
    return set(frame.filter(to_polars(filter, frame.schema))["id"].to_list())


X_VALUES = [r["x"] for r in ROWS if r["x"] is not None][:3]
D_VALUES = [r["d"].isoformat() for r in ROWS if r["d"] is not None][:3]
TS_VALUE = next(r["ts"] for r in ROWS if r["ts"] is not None).astimezone(timezone(timedelta(hours=3)))
FILTERS: list[dict[str, Any]] = [
    {}, {"n": 5}, {"n": None}, {"n": {"$eq": None}}, {"n": {"$ne": 5}}, {"n": {"$ne": None}},
    {"n": {"$lt": 0, "$gte": -20}}, {"x": {"$gt": 10.5}}, {"x": {"$lte": -3}},
    {"n": {"$in": [1, 2, 3, 40]}}, {"n": {"$in": [1, None]}}, {"n": {"$nin": [1, 2, 3]}},
    {"n": {"$nin": [1, None]}}, {"n": {"$in": []}}, {"n": {"$nin": []}},
    {"n": {"$in": [1.0, 2.5, 3]}}, {"x": {"$in": [*X_VALUES, 7]}},
    {"s": "apple"}, {"s": {"$like": "a%"}}, {"s": {"$like": "A%"}}, {"s": {"$ilike": "a%"}},
    {"s": {"$ilike": "%CAF%"}}, {"s": {"$like": "%\\%%"}}, {"s": {"$like": "%\\_%"}},
    {"s": {"$like": "a_b"}}, {"s": {"$like": "%*%"}}, {"s": {"$like": "[%"}},
    {"s": {"$like": "%\\\\%"}}, {"s": {"$like": "%\n%"}}, {"s": {"$like": "%é%"}},
    {"s": {"$like": "x.y+z"}}, {"s": {"$like": "_"}}, {"s": {"$not": {"$like": "%a%"}}},
    {"s": {"$lt": "b"}}, {"s": {"$gte": "B", "$lte": "b"}}, {"s": HOSTILE},
    # regression: BETWEEN on a COLLATE "C" column was a PostgreSQL syntax error (bind casts)
    {"s": {"$between": ["B", "b"]}},
    {"s": {"$in": ["O'Brien", 'say "hi"', "日本語", HOSTILE]}}, {"s": {"$ne": "apple"}},
    {"flag": True}, {"flag": {"$ne": True}}, {"flag": {"$null": True}},
    {"flag": {"$null": False}}, {"d": {"$gte": "2022-01-01"}},
    {"d": {"$between": ["2021-06-01", "2021-12-31"]}}, {"d": {"$in": D_VALUES}},
    {"d": {"$nin": [D_VALUES[0], None]}}, {"ts": {"$lt": "2022-06-01T12:00:00+02:00"}},
    {"ts": {"$gte": "2022-06-01"}}, {"ts": {"$in": [TS_VALUE.isoformat()]}},
    {"nts": {"$lt": "2022-06-01T10:00:00Z"}}, {"nts": {"$gt": "2023-01-01T00:00:00-05:00"}},
    {"ts": {"$lt": ":current_timestamp"}}, {"d": {"$lt": ":current_date"}},
    {"nts": {"$gt": ":current_timestamp"}},
    {"$or": [{"n": {"$lt": -40}}, {"s": {"$like": "b%"}}]},
    {"$and": [{"n": {"$gt": 0}}, {"flag": False}]}, {"$not": {"n": {"$gt": 0}}},
    {"$not": {"$or": [{"n": {"$gt": 0}}, {"flag": True}]}},
    {"$or": [{"n": None}, {"$not": {"x": {"$lt": 0}}}]}, {"$not": {}},
    {"n": {"$gt": {"$col": "select"}}}, {"n": {"$ne": {"$col": "select"}}},
    {"select": {"$between": [2, 5]}}, {"x": {"$between": [-10, {"$col": "n"}]}},
    {"n": {"$not": {"$in": [1, 2]}}}, {"$or": [{"$and": [{"select": 3}, {"flag": True}]}, {"d": None}]},
]  # fmt: skip
REGEX_FILTERS = [
    {"s": {"$regex": "^a"}}, {"s": {"$regex": "[0-9]"}}, {"s": {"$regex": "é"}},
    {"s": {"$regex": "e$"}}, {"s": {"$regex": "^(apple|banana)$"}},
    {"$not": {"s": {"$regex": "a"}}},
]  # fmt: skip


@pytest.mark.parametrize("filter", FILTERS, ids=repr)
def test_sql_and_polars_select_the_same_rows(loaded: Any, filter: dict[str, Any]) -> None:
    engine, table = loaded
    assert _sql_ids(engine, table, filter) == _polars_ids(filter)


# regression (Polars filter simplifier): `is_null() & ~is_in(..., nulls_equal=True)` on one
# column was folded to "no row" by DataFrame.filter, though evaluating it gave True for nulls
NULL_AND_NIN = [
    ({"$and": [{"d": None}, {"d": {"$nin": ["2020-12-01"]}}]}, lambda r: r["d"] is None),
    ({"$and": [{"n": {"$null": True}}, {"n": {"$nin": [1, 2]}}]}, lambda r: r["n"] is None),
    ({"$and": [{"s": None}, {"$not": {"s": {"$in": ["apple"]}}}]}, lambda r: r["s"] is None),
    ({"$and": [{"x": None}, {"x": {"$nin": [X_VALUES[0], None]}}]}, lambda r: False),
    ({"$and": [{"n": {"$nin": [1]}}, {"n": {"$null": False}}]}, lambda r: r["n"] not in (None, 1)),
]  # fmt: skip


@pytest.mark.parametrize(("filter", "predicate"), NULL_AND_NIN, ids=[repr(f) for f, _ in NULL_AND_NIN])
def test_nin_with_null_check_on_same_column_keeps_null_rows_in_polars(
    loaded: Any, filter: dict[str, Any], predicate: Any
) -> None:
    engine, table = loaded
    expected = {r["id"] for r in ROWS if predicate(r)}
    mask = FRAME.select(to_polars(filter, FRAME.schema)).to_series()  # evaluated, not optimized
    assert set(FRAME.filter(mask)["id"]) == expected
    assert _polars_ids(filter) == expected  # through DataFrame.filter's optimizer
    assert _sql_ids(engine, table, filter) == expected


def test_filters_are_not_trivial() -> None:
    selected = [len(_polars_ids(f)) for f in FILTERS[1:-8]]
    assert sum(0 < n < len(ROWS) for n in selected) > len(selected) * 0.8


@pytest.mark.parametrize("filter", REGEX_FILTERS, ids=repr)
def test_regex_matches_polars_or_is_refused_by_capability(loaded: Any, filter: dict[str, Any]) -> None:
    engine, table = loaded
    if not _backend(engine).capabilities.regex:
        with pytest.raises(NotSupportedError, match=r"\$regex.*capability regex.*\$like"):
            _sql_ids(engine, table, filter)
    else:
        assert _sql_ids(engine, table, filter) == _polars_ids(filter)


def test_hostile_value_is_matched_literally(loaded: Any) -> None:
    engine, table = loaded
    expected = {r["id"] for r in ROWS if r["s"] == HOSTILE}
    assert expected and _sql_ids(engine, table, {"s": HOSTILE}) == expected
    assert _sql_ids(engine, table, {"s": {"$like": HOSTILE}}) == expected
    with engine.connect() as conn:  # the table is still there
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == len(ROWS)


def test_like_is_case_sensitive_on_every_backend(loaded: Any) -> None:
    engine, table = loaded
    expected = {r["id"] for r in ROWS if r["s"] and r["s"].startswith("A")}
    assert expected and _sql_ids(engine, table, {"s": {"$like": "A%"}}) == expected


# ------------------------------------------------------------------ golden SQL
_T = sa.Table(
    "t", sa.MetaData(), sa.Column("select", sa.Integer), sa.Column('we"ird', sa.Text),
    sa.Column("d", sa.Date), sa.Column("ts", sa.DateTime(timezone=True)),
)  # fmt: skip
_UTC8 = datetime(2022, 1, 1, 8, tzinfo=timezone.utc)
GOLDEN = [
    (
        {"select": {"$gte": 1, "$ne": 2}, 'we"ird': HOSTILE},
        't."select" >= ? AND t."select" IS NOT ? AND t."we""ird" = ?',
        't."select" >= $1::INTEGER AND t."select" IS DISTINCT FROM $2::INTEGER AND t."we""ird" = $3::VARCHAR',
        [1, 2, HOSTILE],
    ),
    (
        {"select": {"$nin": [1, 2]}, 'we"ird': {"$like": "a\\%*_"}},
        '((t."select" NOT IN (?, ?)) OR t."select" IS NULL) AND t."we""ird" GLOB ?',
        '((t."select" NOT IN ($2::INTEGER, $3::INTEGER)) OR t."select" IS NULL) AND t."we""ird" LIKE $1::VARCHAR ESCAPE \'\\\'',
        [1, 2, "a%[*]?"],  # sqlite's GLOB pattern; postgresql binds the LIKE pattern
    ),
    (
        {"$not": {"ts": {"$lt": "2022-01-01T10:00:00+02:00"}}, "d": {"$between": ["2022-01-01", ":current_date"]}},
        "coalesce(t.ts < ?, 0) = 0 AND t.d >= ? AND t.d <= CURRENT_DATE",
        'NOT coalesce(t.ts < $1::TIMESTAMP WITH TIME ZONE, false) AND t.d >= $2::DATE AND t.d <= CURRENT_DATE',
        [_UTC8, date(2022, 1, 1)],
    ),
    (
        {"$or": [{"select": None}, {'we"ird': {"$ilike": "x%"}}]},
        't."select" IS NULL OR lower(t."we""ird") LIKE lower(?) ESCAPE \'\\\'',
        't."select" IS NULL OR t."we""ird" ILIKE $1::VARCHAR ESCAPE \'\\\'',
        ["x%"],
    ),
]  # fmt: skip


@pytest.mark.parametrize(("filter", "sqlite_sql", "pg_sql", "params"), GOLDEN)
def test_golden_sql(filter: Any, sqlite_sql: str, pg_sql: str, params: list[Any]) -> None:
    expr = to_sql(filter, _T)
    kw: dict[str, Any] = {"compile_kwargs": {"render_postcompile": True}}
    lite = expr.compile(dialect=SQLiteBackend.dialect, **kw)
    pg = expr.compile(dialect=PostgresBackend.dialect, **kw)
    assert (str(lite), str(pg)) == (sqlite_sql, pg_sql)
    assert [lite.params[k] for k in lite.positiontup or []] == params  # values are bound
    assert len(pg.params) == len(params) and HOSTILE not in str(lite) + str(pg)


@pytest.mark.parametrize(
    ("pattern", "predicate"),
    [("A%", lambda s: s.startswith("A")), ("a%", lambda s: s.startswith("a")),
     ("%a%", lambda s: "a" in s), ("b", lambda s: s == "b")],
)  # fmt: skip
def test_like_patterns_rebind_through_the_statement_cache(
    sqlite_loaded: Any, pattern: str, predicate: Any
) -> None:
    engine, table = sqlite_loaded  # same statement shape each time: a cache hit, new values
    expected = {r["id"] for r in ROWS if r["s"] is not None and predicate(r["s"])}
    assert _sql_ids(engine, table, {"s": {"$like": pattern}}) == expected


# ------------------------------------------------------------- errors and helpers
@pytest.mark.parametrize(
    ("filter", "match"),
    [
        ({"flg": 1}, r"unknown column 'flg' \(did you mean 'flag'\?\); valid columns: d, flag, id"),
        ({"n": {"$lten": 1}}, r"unknown operator '\$lten' on column 'n'.*\$lte.*\$between"),
        ({"$xor": []}, r"unknown operator '\$xor'.*\$and, \$not, \$or"),
        ({"n": {"$in": 5}}, r"\$in on column 'n' needs a list.*5"),
        ({"n": {"$nin": "abc"}}, r"\$nin on column 'n' needs a list"),
        ({"n": {"$between": [1]}}, r"\$between on column 'n' needs exactly two values"),
        ({"n": {"$between": [1, 2, 3]}}, r"exactly two values"),
        ({"n": {"$lt": None}}, r"\$lt on column 'n' cannot compare with null.*\$null"),
        ({"n": {"$null": "yes"}}, r"\$null on column 'n' needs true or false"),
        ({"s": {"$like": "ab\\"}}, r"ends with the escape character"),
        ({"s": {"$like": 5}}, r"\$like on column 's' needs a string pattern"),
        ({"n": {}}, r"column 'n': expected a value or operators"),
        ({"n": {"a": 1}}, r"column 'n': expected a value or operators"),
        ({"$or": []}, r"\$or needs a non-empty list"),
        ({"n": [1, 2]}, r"\[1, 2\] is not a plain value"),
        ({"n": {"$gt": {"$col": "excluded.n"}}}, r"unknown column 'excluded.n'"),
        ({"n": {"$like": "a%"}}, r"\$like needs a text column; 'n'"),
        ({"d": {"$gt": "yesterday"}}, r"column 'd' holds dates; 'yesterday' is not an ISO date"),
        ({"ts": {"$gt": "2022-13-01T00:00"}}, r"column 'ts' holds timestamps"),
    ],
)
def test_errors_name_the_offending_token(filter: Any, match: str) -> None:
    table = _table(sa.MetaData(), "t")
    with pytest.raises(ExpressionError, match=match):
        to_sql(filter, table)
    with pytest.raises(ExpressionError, match=match):
        to_polars(filter, SCHEMA)


def test_regex_without_the_capability_raises_not_supported_naming_the_operator(url: str) -> None:
    backend = load_backend(url)
    table = _table(sa.MetaData(), "t")
    if backend.capabilities.regex:
        compiled = str(
            to_sql({"s": {"$regex": "^a"}}, table, backend=backend).compile(dialect=backend.dialect)
        )
        assert "~" in compiled or "regexp_matches(" in compiled or "REGEXP" in compiled, compiled

        class WithoutRegex(type(backend)):  # type: ignore[misc]
            capabilities = dataclasses.replace(backend.capabilities, regex=False)

        backend = WithoutRegex(url)
    with pytest.raises(
        NotSupportedError,
        match=rf"\$regex.*'s'.*not supported on {backend.name}.*capability regex.*use \$like",
    ):
        to_sql({"s": {"$regex": "^a"}}, table, backend=backend)
    to_sql({"s": {"$regex": "^a"}}, table)  # no backend given: nothing to check against


def test_is_empty_and_referenced_columns() -> None:
    assert is_empty({}) and is_empty(None) and is_empty({"$and": [{}]})
    assert is_empty({"$or": [{}, {"n": 1}]})  # matches everything
    assert not is_empty({"n": 1}) and not is_empty({"$not": {}})
    assert str(to_sql({}, _T).compile(dialect=PostgresBackend.dialect)) == "true"
    f = {
        "n": 1,
        "$or": [{"s": {"$gt": {"$col": "excluded.s"}}}],
        "$not": {"d": {"$between": [1, {"$col": "x"}]}},
    }
    assert referenced_columns(f) == {"n", "s", "excluded.s", "d", "x"}


@pytest.mark.parametrize(
    ("pattern", "regex", "glob"),
    [
        ("a%b_c", r"(?s)\Aa.*b.c\z", "a*b?c"),
        ("50\\%.*", r"(?s)\A50%\.\*\z", "50%.[*]"),
        ("[x]?\\_\\\\", r"(?s)\A\[x\]\?_\\\z", "[[]x][?]_\\"),
        ("(a|b)$^", r"(?s)\A\(a\|b\)\$\^\z", "(a|b)$^"),
    ],
)
def test_like_translation(pattern: str, regex: str, glob: str) -> None:
    assert (like_to_regex(pattern), like_to_glob(pattern)) == (regex, glob)
    assert like_to_regex("aB1", ascii_case_insensitive=True) == r"(?s)\A[aA][bB]1\z"


# --------------------------------------------------------- $col and namespaces
def test_conditional_upsert_with_excluded_namespace(loaded: Any) -> None:
    engine, _ = loaded
    if _backend(engine).capabilities.upsert != "on_conflict":
        pytest.skip("the database has no INSERT … ON CONFLICT (capability upsert); its merge is its own")
    md = sa.MetaData()
    table = sa.Table(
        f"bf_upsert_{uuid.uuid4().hex[:10]}", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False), sa.Column("v", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
    )  # fmt: skip
    old, new = datetime(2022, 1, 1, tzinfo=timezone.utc), datetime(2023, 1, 1, tzinfo=timezone.utc)
    insert = _backend(engine).upsert_insert
    condition = {"updated_at": {"$lt": {"$col": "excluded.updated_at"}}}
    md.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"id": 1, "v": "old", "updated_at": old},
                                          {"id": 2, "v": "newer", "updated_at": new}])  # fmt: skip
            stmt = insert(table).values([{"id": 1, "v": "in", "updated_at": new},
                                         {"id": 2, "v": "in", "updated_at": old}])  # fmt: skip
            where = to_sql(condition, table, others={"excluded": stmt.excluded})
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["id"], set_={"v": stmt.excluded.v}, where=where))  # fmt: skip
            stored = dict(conn.execute(sa.select(table.c.id, table.c.v)).all())
        assert stored == {1: "in", 2: "newer"}
    finally:
        md.drop_all(engine)
    frame = pl.DataFrame({"id": [1, 2], "updated_at": [old, new], "updated_at_excluded": [new, old]})
    expr = to_polars(condition, frame.schema, others_suffix={"excluded": "_excluded"})
    assert frame.filter(expr)["id"].to_list() == [1]


def test_unknown_namespace_lists_the_known_ones() -> None:
    with pytest.raises(ExpressionError, match=r"'excluded.n'.*namespaces: incoming"):
        to_sql({"n": {"$col": "excluded.n"}}, _table(sa.MetaData(), "t"), others={"incoming": _T})
    with pytest.raises(ExpressionError, match=r"unknown column 'n_new' \(for 'excluded.n'\)"):
        to_polars({"n": {"$col": "excluded.n"}}, SCHEMA, others_suffix={"excluded": "_new"})


# ------------------------------------------------------------------- Hypothesis
_PATTERN = st.lists(
    st.sampled_from(["a", "A", "b", "é", " ", "'", "*", "?", "[", "%", "_", "\\%", "\\_", "\\\\", "\n"]),
    max_size=5,
).map("".join)
_DATES = st.dates(date(2020, 12, 1), date(2024, 2, 1))
_STAMPS = st.datetimes(datetime(2020, 12, 1), datetime(2024, 2, 1), timezones=st.sampled_from(
    [timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]))  # fmt: skip
_CMP = st.sampled_from(["$eq", "$ne", "$lt", "$lte", "$gt", "$gte"])


def _leaf(column: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    compare = st.builds(lambda op, v: {column: {op: v}}, _CMP, values)
    member = st.builds(lambda op, vs: {column: {op: vs}}, st.sampled_from(["$in", "$nin"]),
                       st.lists(values | st.none(), max_size=4))  # fmt: skip
    between = st.builds(lambda lo, hi: {column: {"$between": [lo, hi]}}, values, values)
    null = st.builds(lambda b: {column: {"$null": b}}, st.booleans())
    return compare | member | between | null | st.just({column: None})


_LEAVES = (
    _leaf("n", st.integers(-55, 55))
    | _leaf("x", st.floats(-110, 110, allow_nan=False) | st.sampled_from(X_VALUES))
    | _leaf("s", st.sampled_from(STRINGS))
    | _leaf("flag", st.booleans())
    | _leaf("d", _DATES.map(date.isoformat))
    | _leaf("ts", _STAMPS.map(datetime.isoformat))
    | _leaf("nts", _STAMPS.map(datetime.isoformat))
    | st.builds(lambda op, p: {"s": {op: p}}, st.sampled_from(["$like", "$ilike"]), _PATTERN)
    | st.builds(lambda op: {"n": {op: {"$col": "select"}}}, _CMP)
)
_FILTERS = st.recursive(
    _LEAVES,
    lambda inner: (
        st.builds(lambda fs: {"$and": fs}, st.lists(inner, min_size=1, max_size=3))
        | st.builds(lambda fs: {"$or": fs}, st.lists(inner, min_size=1, max_size=3))
        | st.builds(lambda f: {"$not": f}, inner)
    ),
    max_leaves=6,
)


@settings(max_examples=250, deadline=None, derandomize=True)  # the same examples on every CI run
@given(filter=_FILTERS)
@example(filter={"$and": [{"d": None}, {"d": {"$nin": ["2020-12-01"]}}]})  # see NULL_AND_NIN
def test_random_filters_agree_between_sqlite_and_polars(sqlite_loaded: Any, filter: Any) -> None:
    engine, table = sqlite_loaded
    expr = to_polars(filter, FRAME.schema)
    evaluated = set(FRAME.filter(FRAME.select(expr).to_series())["id"])  # no filter optimizer
    assert _sql_ids(engine, table, filter) == _polars_ids(filter) == evaluated


# ------------------------------------------------------- value types (issue 9)
@pytest.mark.parametrize(
    ("filter", "match"),
    [
        ({"n": "abc"}, r"column 'n' holds integers \(integer\); \$eq value 'abc' is not an integer"),
        ({"n": {"$in": [1, "x"]}}, r"column 'n' .*\$in value 'x' is not an integer"),
        ({"x": {"$gt": "x"}}, r"column 'x' holds floating-point numbers; \$gt value 'x' is not a number"),
        ({"flag": 1}, r"column 'flag' holds booleans; \$eq value 1 is not a boolean"),
        ({"s": 5}, r"column 's' holds text; \$eq value 5 is not a string"),
        ({"d": 5}, r"column 'd' holds dates; \$eq value 5"),
        ({"d": datetime(2022, 1, 1, 12)}, r"column 'd' holds dates; .* has a time of day"),
        ({"ts": {"$between": [5, 6]}}, r"column 'ts' holds timestamps; \$between value 5"),
    ],
)
def test_mistyped_values_are_refused_by_both_back_ends(filter: Any, match: str) -> None:
    with pytest.raises(FilterError, match=match):
        to_sql(filter, _table(sa.MetaData(), "t"))
    with pytest.raises(FilterError, match=match.replace(r"\(integer\)", r"\(bigint\)")):
        to_polars(filter, SCHEMA)


@pytest.mark.parametrize(
    "filter",
    [{"n": "5"}, {"n": {"$in": ["1", " 2 ", None]}}, {"x": {"$lt": "10.5"}}, {"flag": "yes"},
     {"flag": {"$ne": "f"}}, {"n": 2.5}, {"n": {"$lt": 2.5}}, {"n": {"$gte": -1.5}}, {"n": {"$ne": 2.5}},
     {"n": {"$between": [-10.5, 10.5]}}, {"n": {"$lt": 10**30}}, {"n": {"$gt": -(10**30)}},
     {"n": {"$nin": [1.5, 10**30, 3]}}, {"d": datetime(2022, 1, 1)}],
    ids=repr,
)  # fmt: skip
def test_converted_values_select_the_same_rows(loaded: Any, filter: dict[str, Any]) -> None:
    engine, table = loaded
    assert _sql_ids(engine, table, filter) == _polars_ids(filter)


def test_nesting_is_limited() -> None:
    deep: dict[str, Any] = {"n": 1}
    for _ in range(MAX_DEPTH + 1):
        deep = {"$not": deep}
    with pytest.raises(FilterError, match=f"MAX_DEPTH={MAX_DEPTH}"):
        parse(deep)
    with pytest.raises(FilterError, match="MAX_DEPTH"):
        parse(functools.reduce(lambda f, _: {"$or": [f, {"n": 2}]}, range(500), {"n": 1}))
