"""Property: a number lands exactly as the database's own cast stores it, or is refused.

PostgreSQL: random ints, floats, decimals and strings of numbers are written by bulkframe
into typed columns, read back through psycopg, and compared with the server's own
``SELECT CAST(%s AS <type>)`` of the same value (an int is sent as an integer, a float as
``float8``, a ``Decimal`` as ``numeric``, a string as an untyped literal).  A row is
refused by bulkframe exactly when that server cast fails, with ONE deliberate exception:

    a float or Decimal with a fractional part into an integer column is refused, although
    PostgreSQL would round it (``2.7::float8::int`` = 3, ``2.5::numeric::int`` = 3);
    bulkframe does not guess a rounding for whole-number columns.

Not generated (documented limits): NaN and infinities (``numeric`` NaN has no Arrow
decimal; bulkframe refuses it), and strings within 0.3% of ``real``'s largest value,
where glibc's ``strtof`` reports overflow for values that round to FLT_MAX.

SQLite: the same ints and floats into SMALLINT / MEDIUMINT / INTEGER / REAL columns,
read back through the stdlib ``sqlite3``, against the values the rules above give.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bulkframe as bf

PG_TYPES = ["smallint", "integer", "bigint", "numeric(5,2)", "numeric(12,4)",
            "numeric(30,8)", "double precision", "real"]  # fmt: skip
INT_TYPES = {"smallint", "integer", "bigint"}
_ids = itertools.count(0, 100)

ints = st.one_of(
    st.integers(-40_000, 40_000),
    st.integers(-(2**31) - 5, 2**31 + 5),
    st.integers(-(2**64), 2**64),
    st.sampled_from([2**15, -(2**15) - 1, 2**31, 2**63 - 1, -(2**63), 2**63, 10**20, 10**40]),
)
floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.integers(-(2**40), 2**40).map(float),
    st.integers(-1000, 1000).map(lambda i: i + 0.5),
    st.integers(-100_000, 100_000).map(lambda i: i / 1000 + 0.0005),
    st.sampled_from(
        [
            0.0,
            -0.0,
            1.005,
            -1.005,
            2.7,
            1e-40,
            1e-50,
            1e39,
            3.5e38,
            9.2233720368547748e18,
            2.0**63,
            0.30000000000000004,
            123456789012345678.0,
            32767.0,
            32768.0,
        ]
    ),
)
decimals = st.builds(
    lambda i, s: Decimal(i).scaleb(-s), st.integers(-(10**14), 10**14), st.integers(0, 9)
) | st.sampled_from(
    [
        Decimal("1.005"),
        Decimal("-1.005"),
        Decimal("99999.995"),
        Decimal("999.995"),
        Decimal("0.0005"),
        Decimal("-0.005"),
        Decimal("1E+3"),
        Decimal("12345678.9"),
    ]
)


def _string_float(x: float) -> bool:
    return not 3.39e38 <= abs(x) < 3.41e38


strings = st.one_of(
    ints.map(str),
    decimals.map(str),
    floats.filter(_string_float).map(repr),
    st.sampled_from(["2.0", "1e3", " 12 ", "+5", ".5", "5.", "1E+1", "abc", "1_000", "1e-50", "1e400", "-0"]),
)
#: one Python type per column, as real data has it
values = st.one_of(*(st.lists(s, min_size=1, max_size=12) for s in (ints, floats, decimals, strings)))


def _fractional(value: Any) -> bool:
    return isinstance(value, (float, Decimal)) and value != int(value)


TRY_CAST = """
CREATE OR REPLACE FUNCTION pg_temp.bf_try_cast(v anyelement, t text) RETURNS text AS $$
DECLARE r text;
BEGIN
  EXECUTE format('SELECT CAST($1 AS %s)::text', t) INTO r USING v;
  RETURN coalesce(r, 'NULL');
EXCEPTION WHEN others THEN
  RETURN NULL;
END $$ LANGUAGE plpgsql"""


def _server_casts(cur: Any, vals: list[Any], type_: str) -> list[str | None]:
    """The server's own ``CAST(value AS type_)::text`` of each value (``None``: it errors).
    psycopg sends the list as int8[]/numeric[], float8[], numeric[] or text[]."""
    array = "%s::text[]" if isinstance(vals[0], str) else "%s"  # strings: untyped literals, read as text
    cur.execute(
        f"SELECT pg_temp.bf_try_cast(x, %s) FROM unnest({array}) WITH ORDINALITY AS u(x, n) ORDER BY n",
        (type_, vals),
    )
    return [row[0] for row in cur.fetchall()]


@pytest.fixture(scope="module")
def pg_tables(pg_url: str) -> Any:
    import psycopg

    names = {t: f"bf_prop_{uuid.uuid4().hex[:8]}" for t in PG_TYPES}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for type_, name in names.items():
            conn.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v {type_})")
    yield names
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for name in names.values():
            conn.execute(f"DROP TABLE IF EXISTS {name}")


@pytest.mark.postgres
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(vals=values)
def test_numbers_land_as_the_servers_cast_or_are_refused(
    pg_url: str, pg_tables: dict[str, str], vals: list[Any]
) -> None:
    import psycopg

    base = next(_ids)  # fresh ids per example: no TRUNCATE (it would wait on bulkframe's connection)
    rows = [{"id": base + i, "v": v} for i, v in enumerate(vals)]
    with psycopg.connect(pg_url, autocommit=True) as conn, conn.cursor() as cur, bf.connect(pg_url) as db:
        cur.execute(TRY_CAST)
        # PostgreSQL 16 reads digit separators in numeric input ('1_000'); bulkframe reads a
        # string as PostgreSQL 15 does and refuses them (refusing is allowed, storing a
        # different value is not)
        separators = conn.info.server_version >= 160000
        for type_, name in pg_tables.items():
            casts = _server_casts(cur, vals, type_)
            expected = {
                base + i: cast
                for i, (v, cast) in enumerate(zip(vals, casts, strict=True))
                if cast is not None
                and not (type_ in INT_TYPES and _fractional(v))
                and not (separators and isinstance(v, str) and "_" in v)
            }
            result = db.bulk_create(name, rows, error_strategy="continue")
            errors = result.errors
            refused = (
                {base + r for r in errors["row"].to_list()} if errors is not None and len(errors) else set()
            )
            # read back through psycopg (not bulkframe), as the server's text of the stored value
            cur.execute(f"SELECT id, v::text FROM {name} WHERE id >= %s ORDER BY id", (base,))
            stored = dict(cur.fetchall())
            assert refused == {r["id"] for r in rows} - set(expected), (type_, vals, refused, expected)
            assert stored == expected, (type_, vals)
            assert result.success_count == len(expected)
            assert result.failure_count == len(vals) - len(expected)


# --------------------------------------------------------------------------- SQLite
SQLITE_TYPES = {"SMALLINT": (-(2**15), 2**15 - 1), "MEDIUMINT": (-(2**31), 2**31 - 1),
                "INTEGER": (-(2**63), 2**63 - 1), "REAL": None}  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same Python type (floats: same sign of zero too)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b


def _expected_sqlite(value: Any, type_: str) -> tuple[bool, Any]:
    bounds = SQLITE_TYPES[type_]
    if bounds is None:  # REAL is a double: nearest double, as PostgreSQL's float8 cast
        try:  # SQLite itself stores an integral REAL as an integer: -0.0 reads back as 0.0
            return True, float(value) or 0.0
        except OverflowError:
            return False, None
    if isinstance(value, float) and value != int(value):
        return False, None
    whole = int(value)
    return (bounds[0] <= whole <= bounds[1]), whole


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(vals=st.one_of(st.lists(ints, min_size=1, max_size=12), st.lists(floats, min_size=1, max_size=12)))
def test_sqlite_ints_and_floats_land_exactly_or_are_refused(
    tmp_path_factory: pytest.TempPathFactory, vals: list[Any]
) -> None:
    import sqlite3

    path = tmp_path_factory.mktemp("prop") / "p.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for type_ in SQLITE_TYPES:
            conn.execute(f"CREATE TABLE t_{type_} (id INTEGER PRIMARY KEY, v {type_})")
        conn.commit()
    rows = [{"id": i, "v": v} for i, v in enumerate(vals)]
    with bf.connect(f"sqlite:///{path}") as db:
        for type_ in SQLITE_TYPES:
            expected = {i: e for i, v in enumerate(vals) for ok, e in [_expected_sqlite(v, type_)] if ok}
            result = db.bulk_create(f"t_{type_}", rows, error_strategy="continue")
            refused = (
                set(result.errors["row"].to_list())
                if result.errors is not None and len(result.errors)
                else set()
            )
            assert refused == set(range(len(vals))) - set(expected), (type_, vals)
            with contextlib.closing(sqlite3.connect(path)) as conn:
                stored = dict(conn.execute(f"SELECT id, v FROM t_{type_} ORDER BY id").fetchall())
            assert set(stored) == set(expected)
            for i, want in expected.items():
                assert _same(stored[i], want), (type_, vals[i], stored[i], want)
