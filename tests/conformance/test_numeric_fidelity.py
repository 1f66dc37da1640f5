"""Numbers land exactly as the database's own cast stores them, or the call is refused.

Every stored value is read back through an independent client (``peek``: psycopg or the
stdlib ``sqlite3``).  After a refused call nothing was written.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

import bulkframe as bf
from bulkframe.errors import DataError, ExpressionError, SchemaError, ValidationError

DDL = "(id integer PRIMARY KEY, qty integer, small smallint, big bigint, ratio double precision)"

Peek = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def ints(db: bf.Database, table: str, sql: Any) -> str:
    sql(f'CREATE TABLE "{table}" {DDL}')
    return table


def _rows(peek: Peek, table: str) -> list[tuple[Any, ...]]:
    return peek(f'SELECT id, qty, small, big FROM "{table}" ORDER BY id')


def _refused(exc: pytest.ExceptionInfo[BaseException], *parts: str) -> None:
    for part in parts:
        assert part in str(exc.value), (part, str(exc.value))


# ------------------------------------------------------------ fractional → integer
@pytest.mark.parametrize("value", [2.7, -0.5, Decimal("1.5"), float("nan"), float("inf")])
def test_fractional_float_into_integer_column_is_refused_on_create(
    db: bf.Database, ints: str, peek: Peek, value: Any
) -> None:
    with pytest.raises(SchemaError) as exc:
        db.bulk_create(ints, [{"id": 1, "qty": 2}, {"id": 2, "qty": value}])
    _refused(exc, "'qty'", "row 1", repr(value)[:3], "cannot be stored as int")
    assert _rows(peek, ints) == []


def test_fractional_floats_from_a_dataframe_are_refused_whole_floats_land(
    db: bf.Database, ints: str, peek: Peek
) -> None:
    frame = pl.DataFrame({"id": [1, 2, 3], "qty": [2.0, 3.0, 2.5]})
    with pytest.raises(SchemaError) as exc:
        db.bulk_create(ints, frame)
    _refused(exc, "'qty'", "row 2", "2.5", "fractional")
    assert _rows(peek, ints) == []
    result = db.bulk_create(ints, frame.head(2))
    assert result.success_count == 2
    assert _rows(peek, ints) == [(1, 2, None, None), (2, 3, None, None)]


def test_whole_floats_and_decimals_land_in_integer_columns(db: bf.Database, ints: str, peek: Peek) -> None:
    db.bulk_create(ints, [{"id": 1, "qty": 2.0, "small": Decimal("7.00"), "big": 9.2233720368547748e18}])
    assert _rows(peek, ints) == [(1, 2, 7, 9223372036854774784)]


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [("small", 70000, "70000"), ("small", -32769, "-32769"),
     ("big", 2**63, "9223372036854775808"), ("big", -(2**63) - 1, "-9223372036854775809"),
     ("big", 1e19, "1e+19"), ("small", "40000", "40000")],
)  # fmt: skip
def test_out_of_range_integers_are_refused_never_wrapped(
    db: bf.Database, ints: str, peek: Peek, column: str, value: Any, shown: str
) -> None:
    with pytest.raises(SchemaError) as exc:
        db.bulk_create(ints, [{"id": 1, column: 1}, {"id": 2, column: value}])
    _refused(exc, f"'{column}'", "row 1", shown)
    assert _rows(peek, ints) == []


def test_out_of_range_from_arrow_is_refused(db: bf.Database, ints: str, peek: Peek) -> None:
    data = pa.table({"id": pa.array([1, 2], pa.int64()), "small": pa.array([1, 70000], pa.int64())})
    with pytest.raises(SchemaError) as exc:
        db.bulk_create(ints, data)
    _refused(exc, "'small'", "row 1", "70000", "int16")
    assert _rows(peek, ints) == []


def test_error_strategy_continue_rejects_just_the_bad_rows(db: bf.Database, ints: str, peek: Peek) -> None:
    rows = [{"id": 1, "qty": 1.0}, {"id": 2, "qty": 2.5}, {"id": 3, "qty": 3}, {"id": 4, "qty": 2**63}]
    result = db.bulk_create(ints, rows, error_strategy="continue")
    assert (result.success_count, result.failure_count) == (2, 2)
    assert result.errors["row"].to_list() == [1, 3]
    assert _rows(peek, ints) == [(1, 1, None, None), (3, 3, None, None)]


# ------------------------------------------------------------------------- updates
@pytest.fixture
def filled(db: bf.Database, ints: str) -> str:
    db.bulk_create(
        ints, [{"id": 1, "qty": 10, "small": 1, "big": 5}, {"id": 2, "qty": 20, "small": 2, "big": 6}]
    )
    return ints


BEFORE = [(1, 10, 1, 5), (2, 20, 2, 6)]


@pytest.mark.parametrize(
    "updates",
    [
        [{"id": 1, "qty": 11}, {"id": 2, "qty": 3.7}],
        [{"id": 1, "small": 70000}],
        [{"id": 1, "atomic_ops": {"qty": {"$inc": 1.5}}}],
        [{"id": 1, "atomic_ops": {"qty": {"$mul": 2.5}}}],
        [{"id": 1, "atomic_ops": {"big": {"$inc": 2**63}}}],
        [{"id": 1, "atomic_ops": {"qty": {"$set": 0.5}}}],
    ],
)
def test_update_by_rows_refuses_fractional_and_out_of_range(
    db: bf.Database, filled: str, peek: Peek, updates: list[dict[str, Any]]
) -> None:
    with pytest.raises(SchemaError) as exc:
        db.bulk_update(filled, updates)
    assert "row" in str(exc.value) and (
        "'qty'" in str(exc.value) or "'small'" in str(exc.value) or "'big'" in str(exc.value)
    )
    assert _rows(peek, filled) == BEFORE


@pytest.mark.parametrize("value", [5.5, 70000.0, Decimal("0.1")])
def test_update_literal_refuses_fractional(db: bf.Database, filled: str, peek: Peek, value: Any) -> None:
    column = "small" if value == 70000.0 else "qty"
    with pytest.raises(SchemaError) as exc:
        db.bulk_update(filled, {column: value}, filter={"id": 1})
    _refused(exc, f"'{column}'", str(value)[:3])
    assert _rows(peek, filled) == BEFORE


def test_update_with_whole_floats_lands(db: bf.Database, filled: str, peek: Peek) -> None:
    db.bulk_update(filled, [{"id": 1, "qty": 12.0, "atomic_ops": {"big": {"$inc": 2.0}}}])
    db.bulk_update(filled, {"small": 9.0}, filter={"id": 2})
    assert _rows(peek, filled) == [(1, 12, 1, 7), (2, 20, 9, 6)]


# --------------------------------------------------------------- expression overflow
def test_integer_overflow_in_a_transformation_is_an_error_naming_rule_and_row(
    db: bf.Database, ints: str, peek: Peek
) -> None:
    rows = [{"id": 1, "big": -5}, {"id": 2, "big": 0}, {"id": 3, "big": 5}]
    with pytest.raises(ExpressionError) as exc:
        db.bulk_create(ints, rows, transformation_rules={"big": "big + 9223372036854775807"})
    _refused(exc, "'big'", "big + 9223372036854775807", "row 2", "big=5", "overflow")
    assert _rows(peek, ints) == []
    with pytest.raises(ExpressionError) as exc:
        db.bulk_create(ints, rows, transformation_rules={"big": "big * 4611686018427387904"})
    _refused(exc, "row 0", "big=-5", "overflow")
    with pytest.raises(ExpressionError) as exc:
        db.bulk_create(ints, [{"id": 1, "big": -(2**63)}], transformation_rules={"big": "-big"})
    _refused(exc, "row 0", "overflow")
    assert _rows(peek, ints) == []
    # no overflow: the exact values land
    db.bulk_create(ints, rows, transformation_rules={"big": "big + 9223372036854775802"})
    assert [r[3] for r in _rows(peek, ints)] == [
        9223372036854775797,
        9223372036854775802,
        9223372036854775807,
    ]


def test_a_literal_beyond_64_bits_is_an_error_not_null(db: bf.Database, ints: str, peek: Peek) -> None:
    with pytest.raises(ExpressionError) as exc:
        db.bulk_create(
            ints, [{"id": 1, "big": 5}], transformation_rules={"big": "big + 99999999999999999999"}
        )
    _refused(exc, "'big'", "99999999999999999999", "64-bit")
    assert _rows(peek, ints) == []


def test_narrow_integers_widen_and_the_target_range_is_checked(
    db: bf.Database, ints: str, peek: Peek
) -> None:
    with pytest.raises(ValidationError) as exc:  # 32767 + 1 is exact, but does not fit smallint
        db.bulk_create(ints, [{"id": 1, "small": 32767}], transformation_rules={"small": "small + 1"})
    errors = exc.value.errors
    assert errors["row"].to_list() == [0] and errors["stage"].to_list() == ["transform"]
    assert "small=32768 cannot be stored as int16" in errors["error"][0]
    assert _rows(peek, ints) == []
    db.bulk_create(ints, [{"id": 1, "small": 32767}], transformation_rules={"big": "small + 1"})
    assert _rows(peek, ints) == [(1, None, 32767, 32768)]


def test_type_errors_in_expressions_are_bulkframe_errors(db: bf.Database, ints: str, peek: Peek) -> None:
    with pytest.raises(ExpressionError) as exc:
        db.bulk_create(ints, [{"id": 1, "big": 5}], transformation_rules={"big": "big + 'x'"})
    _refused(exc, "'big'", "cast(")
    assert _rows(peek, ints) == []


# --------------------------------------------------------------------- PostgreSQL
@pytest.mark.postgres
@pytest.mark.parametrize(
    ("value", "stored"),
    [(Decimal("1.005"), "1.01"), (Decimal("-1.005"), "-1.01"), (Decimal("2.344999"), "2.34"),
     ("2.345", "2.35"), (" -0.125 ", "-0.13"), ("1E+1", "10.00"), (1.005, "1.01"), (-2.675, "-2.68"),
     (0.30000000000000004, "0.30"), (7, "7.00"), (Decimal("9999.994"), "9999.99")],
)  # fmt: skip
def test_decimals_round_half_away_from_zero_like_postgresql(pg_url: str, value: Any, stored: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bf_num_round")
        conn.execute("CREATE TABLE bf_num_round (id int PRIMARY KEY, n numeric(6,2))")
        server = conn.execute("SELECT CAST(%s AS numeric(6,2))::text", (value,)).fetchone()
        assert server is not None and server[0] == stored  # the server's own cast agrees
    try:
        with bf.connect(pg_url) as db:
            db.bulk_create("bf_num_round", [{"id": 1, "n": value}])
        with psycopg.connect(pg_url, autocommit=True) as conn:
            assert conn.execute("SELECT n::text FROM bf_num_round").fetchall() == [(stored,)]
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS bf_num_round")


@pytest.mark.postgres
@pytest.mark.parametrize("value", [Decimal("9999.995"), "10000", 12345.0, "1_000", "NaN", float("nan")])
def test_decimal_overflow_and_non_numbers_are_refused(pg_url: str, value: Any) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bf_num_over")
        conn.execute("CREATE TABLE bf_num_over (id int PRIMARY KEY, n numeric(6,2))")
    try:
        with bf.connect(pg_url) as db, pytest.raises(SchemaError) as exc:
            db.bulk_create("bf_num_over", [{"id": 1, "n": 1}, {"id": 2, "n": value}])
        _refused(exc, "'n'", "row 1", "decimal(6,2)")
        with psycopg.connect(pg_url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM bf_num_over").fetchall() == [(0,)]
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS bf_num_over")


# ------------------------------------------------------------- new-table inference
def _absent(peek: Peek, table: str) -> bool:
    try:
        peek(f'SELECT count(*) FROM "{table}"')
    except Exception as exc:  # psycopg: UndefinedTable; sqlite3: OperationalError
        return any(s in str(exc) for s in ("does not exist", "doesn't exist", "no such table"))
    return False


def test_inference_reads_every_row_of_a_list_not_the_first_batch(
    db: bf.Database, table: str, peek: Peek
) -> None:
    rows = [{"id": 1, "x": 1}, {"id": 2, "x": 2}, {"id": 3, "x": 1.5}]
    result = db.bulk_create(table, rows, batch_size=1, primary_key="id")
    assert result.success_count == 3
    stored = peek(f'SELECT id, x FROM "{table}" ORDER BY id')
    assert stored == [(1, 1.0), (2, 2.0), (3, 1.5)]
    assert all(type(x) is float for _, x in stored)  # a float column, not an integer one


def test_inference_of_ints_beyond_64_bits_is_an_exact_decimal(
    db: bf.Database, table: str, peek: Peek
) -> None:
    rows = [{"id": 1, "x": 5}, {"id": 2, "x": 10**20 + 1}, {"id": 3, "x": -(2**63) - 1}]
    db.bulk_create(table, rows, batch_size=1, primary_key="id")
    stored = peek(f'SELECT id, x FROM "{table}" ORDER BY id')
    assert [Decimal(str(x)) for _, x in stored] == [5, 10**20 + 1, -(2**63) - 1]


def test_inference_refuses_ints_no_created_column_holds(db: bf.Database, table: str, peek: Peek) -> None:
    with pytest.raises(SchemaError) as exc:
        db.bulk_create(table, [{"x": 5}, {"x": 10**40}], batch_size=1)
    _refused(exc, "'x'", "row 1", str(10**40), "41 digits", "Create the table first")
    assert _absent(peek, table)


@pytest.mark.parametrize(
    ("values", "shown"),
    [([1, "a"], ["int (row 0: 1)", "str (row 1: 'a')"]),
     ([None, 2.5, True], ["float (row 1: 2.5)", "bool (row 2: True)"]),
     ([Decimal("1.5"), "x"], ["Decimal (row 0", "str (row 1: 'x')"])],
)  # fmt: skip
def test_inference_refuses_conflicting_kinds(
    db: bf.Database, table: str, peek: Peek, values: list[Any], shown: list[str]
) -> None:
    with pytest.raises(SchemaError) as exc:
        db.bulk_create(table, [{"x": v} for v in values], batch_size=1)
    _refused(exc, "'x'", "mixes", *shown)
    assert _absent(peek, table)


def test_inference_decimal_scale_covers_every_row(db: bf.Database, table: str, peek: Peek) -> None:
    rows = [{"id": 1, "x": Decimal("1.5")}, {"id": 2, "x": Decimal("123456.789")}, {"id": 3, "x": 7}]
    db.bulk_create(table, rows, batch_size=1, primary_key="id")
    stored = peek(f'SELECT id, x FROM "{table}" ORDER BY id')
    assert [Decimal(str(x)) for _, x in stored] == [Decimal("1.5"), Decimal("123456.789"), 7]


@pytest.mark.parametrize(
    ("values", "row", "shown"),
    [([1, 2, 2.5], "row 2", "2.5"), ([1, 2, 2**63], "row 2", "9223372036854775808"),
     ([Decimal("1.5"), Decimal("2.5"), Decimal("1.25")], "row 2", "1.25")],
)  # fmt: skip
def test_streamed_input_later_values_that_do_not_fit_are_refused_clearly(
    db: bf.Database, table: str, peek: Peek, values: list[Any], row: str, shown: str
) -> None:
    rows = iter([{"id": i, "x": v} for i, v in enumerate(values)])
    with pytest.raises(SchemaError) as exc:
        db.bulk_create(table, rows, batch_size=2, primary_key="id")
    _refused(exc, "'x'", row, shown, "first 2 row(s)", "Create the table first", "typed data")
    assert _absent(peek, table)


def test_streamed_input_first_batch_decides_from_all_its_rows(
    db: bf.Database, table: str, peek: Peek
) -> None:
    rows = iter([{"id": 1, "x": 1}, {"id": 2, "x": 1.5}, {"id": 3, "x": 3}])
    db.bulk_create(table, rows, batch_size=2, primary_key="id")
    assert peek(f'SELECT id, x FROM "{table}" ORDER BY id') == [(1, 1.0), (2, 1.5), (3, 3.0)]


def test_validation_rule_errors_are_bulkframe_errors(db: bf.Database, filled: str, peek: Peek) -> None:
    with pytest.raises(ExpressionError) as exc:
        db.bulk_create(filled, [{"id": 3, "qty": 5}], validation_rules={"qty": {"expr": "qty + 'x' > 1"}})
    _refused(exc, "'qty'", "qty + 'x' > 1", "cast(")
    assert "Resolved plan" not in str(exc.value)  # one line, not Polars' query plan
    with pytest.raises(ExpressionError) as exc:
        db.bulk_create(filled, [{"id": 3, "big": 2**62}], validation_rules={"big": {"expr": "big * 4 > 1"}})
    _refused(exc, "rows 0..0", "integer overflow")
    with pytest.raises(ExpressionError) as exc:
        db.bulk_update(filled, [{"id": 1, "qty": 5}], validation_rules={"qty": {"expr": "qty + 'x' > 1"}})
    _refused(exc, "'qty'", "cast(")
    assert _rows(peek, filled) == BEFORE


@pytest.mark.parametrize(
    ("updates", "kwargs"),
    [({"big": "big + 9223372036854775807"}, {"filter": {"id": 1}}),
     ([{"id": 1, "atomic_ops": {"big": {"$inc": 9223372036854775807}}}], {}),
     ([{"id": 2, "atomic_ops": {"big": {"$mul": 2**62}}}], {})],
)  # fmt: skip
def test_overflow_in_sql_updates_is_an_error_on_every_backend(
    db: bf.Database, filled: str, peek: Peek, updates: Any, kwargs: dict[str, Any]
) -> None:
    """SQLite would turn the result into a REAL 9.2e18 in the INTEGER column; PostgreSQL
    raises "bigint out of range": both become one readable DataError, nothing changes."""
    with pytest.raises(DataError) as exc:
        db.bulk_update(filled, updates, **kwargs)
    _refused(exc, "'big'", "integer overflow")
    assert "UPDATE" not in str(exc.value)  # no SQL text in the message
    assert _rows(peek, filled) == BEFORE
    db.bulk_update(filled, [{"id": 1, "atomic_ops": {"big": {"$inc": 9223372036854775802}}}])
    assert _rows(peek, filled)[0] == (1, 10, 1, 9223372036854775807)
