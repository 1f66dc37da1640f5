"""bulk_update on every backend: by filter (expressions, literals, key ranges) and by rows
(staging + UPDATE … FROM, atomic_ops, not-found keys), atomicity, hostile input."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest

import bulkframe as bf
from bulkframe.errors import (
    ExpressionError,
    IntegrityError,
    InvalidOptionValueError,
    NotSupportedError,
    OptionError,
    SchemaError,
    ValidationError,
)
from bulkframe.rules import Expr, Literal

DDL = (
    "(id bigint primary key, name text, category text, price numeric(10,2), stock integer, "
    "active boolean, status text, restock_date date, updated_at timestamptz, views integer)"
)


def _products(n: int = 10) -> list[dict[str, object]]:
    return [
        {
            "id": i,
            "name": f"Product {i}",
            "category": ["electronics", "clothing", "books"][i % 3],
            "price": Decimal(f"{i}.50"),
            "stock": i,
            "active": i % 2 == 0,
            "status": "new",
            "views": 0,
        }
        for i in range(1, n + 1)
    ]


@pytest.fixture
def products(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" {DDL}')
    db.bulk_create(table, _products())
    return table


def _server_today(db: bf.Database) -> dt.date:
    conn = db.backend.connect()
    try:
        value = conn.scalar("SELECT CURRENT_DATE")
        conn.commit()
    finally:
        conn.close()
    return dt.date.fromisoformat(str(value))


def _rows(db: bf.Database, table: str) -> dict[int, dict[str, object]]:
    return {r["id"]: r for r in db.read(table, order_by="id").to_dicts()}


# ---------------------------------------------------------------- by filter
def test_filter_update_with_expressions_and_literals(db, products):  # type: ignore[no-untyped-def]
    before = _rows(db, products)
    result = db.bulk_update(
        products,
        {"price": "price * 0.9", "updated_at": ":current_timestamp", "status": "restocked"},
        filter={"category": "electronics"},
    )
    after = _rows(db, products)
    hit = [i for i, r in before.items() if r["category"] == "electronics"]
    assert result.updated == result.records_processed == result.success_count == len(hit) == 3
    assert result.failure_count == 0
    for i, row in after.items():
        if i in hit:
            assert row["price"] == (before[i]["price"] * Decimal("0.9")).quantize(Decimal("0.01"))  # type: ignore[operator]
            assert row["status"] == "restocked"
            assert isinstance(row["updated_at"], dt.datetime)
            assert abs(
                row["updated_at"].replace(tzinfo=dt.timezone.utc)  # type: ignore[union-attr]
                - dt.datetime.now(dt.timezone.utc)
            ) < dt.timedelta(minutes=5)
        else:
            assert row == before[i]


def test_spec_restock_example_returns_updated_rows(db, products):  # type: ignore[no-untyped-def]
    result = db.bulk_update(
        products,
        {"stock": "stock + 100", "restock_date": ":current_date", "status": "restocked"},
        filter={"stock": {"$lt": 10}, "active": True, "category": {"$in": ["electronics", "clothing"]}},
        batch_size=1000,
        return_updated=True,
    )
    expected_ids = [i for i in range(1, 10) if i % 2 == 0 and i % 3 in (0, 1)]
    assert result.updated == len(expected_ids) == 2
    frame = result.data
    assert isinstance(frame, pl.DataFrame)
    assert sorted(frame["id"].to_list()) == expected_ids
    assert set(frame["status"]) == {"restocked"}
    assert sorted(frame["stock"].to_list()) == [i + 100 for i in expected_ids]
    assert frame.schema["restock_date"] == pl.Date
    # :current_date is the server's CURRENT_DATE: today there (or yesterday, if midnight
    # passed since the update), for every updated row
    today = _server_today(db)
    assert frame["restock_date"].to_list() in ([today] * 2, [today - dt.timedelta(days=1)] * 2)
    landed = _rows(db, products)
    assert [landed[i]["stock"] for i in expected_ids] == [i + 100 for i in expected_ids]


def test_literal_values_of_every_type_land_exactly(db, table, sql):  # type: ignore[no-untyped-def]
    sql(
        f'CREATE TABLE "{table}" (id bigint primary key, d numeric(12,4), day date, "at" timestamptz, '
        "meta jsonb, flag boolean, note text)"
    )
    db.bulk_create(table, [{"id": 1, "note": "x"}, {"id": 2, "note": "y"}])
    at = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc)
    result = db.bulk_update(
        table,
        {
            "d": Decimal("12345678.9012"),
            "day": dt.date(2024, 2, 29),
            "at": at,
            "meta": {"k": [1, "two"]},
            "flag": True,
            "note": None,
        },
        filter={"id": 1},
    )
    assert result.updated == 1
    rows = _rows(db, table)
    assert rows[1]["d"] == Decimal("12345678.9012")
    assert rows[1]["day"] == dt.date(2024, 2, 29)
    assert rows[1]["at"] == at
    assert rows[1]["meta"] is not None and '"two"' in str(rows[1]["meta"])
    assert rows[1]["flag"] is True and rows[1]["note"] is None
    assert rows[2]["note"] == "y" and rows[2]["d"] is None


def test_strings_that_look_like_literals_stay_literal(db, products):  # type: ignore[no-untyped-def]
    db.bulk_update(products, {"status": "N/A", "name": "2024-12-31"}, filter={"id": 1})
    db.bulk_update(products, {"status": Literal("price * 2")}, filter={"id": 2})
    db.bulk_update(products, {"name": Expr("category")}, filter={"id": 3})
    rows = _rows(db, products)
    assert rows[1]["status"] == "N/A"
    assert rows[1]["name"] == "2024-12-31"
    assert rows[2]["status"] == "price * 2"
    assert rows[3]["name"] == rows[3]["category"]


def test_batch_size_walks_key_ranges(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" {DDL}')
    db.bulk_create(table, _products(95))
    result = db.bulk_update(table, {"views": "views + 1"}, filter={"id": {"$gt": 0}}, batch_size=10)
    assert result.updated == 95 and result.batches == 10
    again = db.bulk_update(
        table, {"views": "views + 1"}, filter={"stock": {"$lte": 50}}, batch_size=7, ensure_atomic=False
    )
    assert again.updated == 50 and again.batches == 8 and again.batches_committed == 8
    rows = _rows(db, table)
    assert all(r["views"] == (2 if r["id"] <= 50 else 1) for r in rows.values())  # type: ignore[operator]


def test_batch_size_cannot_move_the_key(db, products):  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidOptionValueError, match="key"):
        db.bulk_update(products, {"id": "id + 100"}, filter={"id": 1}, batch_size=10)


def test_empty_filter_needs_all_rows(db, products):  # type: ignore[no-untyped-def]
    before = _rows(db, products)
    with pytest.raises(InvalidOptionValueError, match="all_rows"):
        db.bulk_update(products, {"status": "x"})
    assert _rows(db, products) == before
    result = db.bulk_update(products, {"status": "x"}, all_rows=True)
    assert result.updated == 10
    assert {r["status"] for r in _rows(db, products).values()} == {"x"}


def test_filter_update_errors_name_the_problem(db, products):  # type: ignore[no-untyped-def]
    with pytest.raises(SchemaError, match="nope"):
        db.bulk_update(products, {"nope": 1}, filter={"id": 1})
    with pytest.raises(ExpressionError, match="colour"):
        db.bulk_update(products, {"status": "x"}, filter={"colour": "red"})
    with pytest.raises(OptionError, match="return_updated"):
        db.bulk_update(products, {"status": "x"}, filter={"id": 1}, return_update=True)
    with pytest.raises(InvalidOptionValueError):
        db.bulk_update(products, {"status": "x"}, filter={"id": 1}, batch_size=0)
    with pytest.raises(InvalidOptionValueError, match="updates"):
        db.bulk_update(products, filter={"id": 1})


def test_failing_filter_update_changes_nothing(db, products):  # type: ignore[no-untyped-def]
    before = _rows(db, products)
    with pytest.raises(IntegrityError):
        db.bulk_update(products, {"id": 1}, filter={"id": {"$in": [2, 3]}})
    assert _rows(db, products) == before


# ------------------------------------------------------------------ by rows
def test_rows_set_different_columns_and_unknown_ids_are_listed(db, products):  # type: ignore[no-untyped-def]
    before = _rows(db, products)
    result = db.bulk_update(
        products,
        [
            {"id": 1, "price": Decimal("15.99"), "stock": 200},
            {"id": 2, "price": Decimal("25.99"), "stock": 150},
            {"id": 3, "stock": 0},
            {"id": 404, "stock": 1},
            {"id": 405, "price": 1},
        ],
        batch_size=1000,
    )
    assert (result.updated, result.not_found, result.records_processed) == (3, 2, 5)
    assert result.not_found_ids == [404, 405]
    assert (result.success_count, result.failure_count) == (3, 2)
    after = _rows(db, products)
    assert (after[1]["price"], after[1]["stock"]) == (Decimal("15.99"), 200)
    assert (after[2]["price"], after[2]["stock"]) == (Decimal("25.99"), 150)
    assert (after[3]["price"], after[3]["stock"]) == (before[3]["price"], 0)  # price not given: kept
    assert {k: v for k, v in after.items() if k > 3} == {k: v for k, v in before.items() if k > 3}
    assert set(after) == set(before)


def test_setting_null_differs_from_not_setting(db, products):  # type: ignore[no-untyped-def]
    db.bulk_update(products, [{"id": 1, "status": None}, {"id": 2, "stock": 7}])
    rows = _rows(db, products)
    assert rows[1]["status"] is None and rows[1]["stock"] == 1
    assert rows[2]["status"] == "new" and rows[2]["stock"] == 7


def test_atomic_ops(db, products, sql):  # type: ignore[no-untyped-def]
    sql(f'UPDATE "{products}" SET views = NULL WHERE id = 4')
    result = db.bulk_update(
        products,
        [
            {"id": 1, "atomic_ops": {"stock": {"$inc": -5}}},
            {"id": 2, "atomic_ops": {"stock": {"$inc": -3}, "views": {"$inc": 2}}},
            {"id": 3, "atomic_ops": {"views": {"$inc": 1}}, "status": "viewed"},
            {"id": 4, "atomic_ops": {"views": {"$inc": 10}, "price": {"$mul": 2}}},
            {"id": 5, "atomic_ops": {"stock": {"$min": 1}, "views": {"$max": 9}}},
            {"id": 6, "atomic_ops": {"stock": {"$max": 1}, "views": {"$min": 9}}},
            {"id": 7, "atomic_ops": {"status": {"$set": "set"}}},
        ],
        ensure_atomic=True,
    )
    assert result.updated == 7
    rows = _rows(db, products)
    assert rows[1]["stock"] == -4
    assert (rows[2]["stock"], rows[2]["views"]) == (-1, 2)
    assert (rows[3]["views"], rows[3]["status"], rows[3]["stock"]) == (1, "viewed", 3)
    assert (rows[4]["views"], rows[4]["price"]) == (10, Decimal("9.00"))  # NULL + 10 counts from 0
    assert (rows[5]["stock"], rows[5]["views"]) == (1, 9)
    assert (rows[6]["stock"], rows[6]["views"]) == (6, 0)
    assert rows[7]["status"] == "set"


def test_repeated_keys_apply_in_input_order(db, products):  # type: ignore[no-untyped-def]
    result = db.bulk_update(
        products,
        [
            {"id": 1, "atomic_ops": {"stock": {"$inc": 1}}},
            {"id": 1, "atomic_ops": {"stock": {"$inc": 1}}},
            {"id": 2, "status": "first"},
            {"id": 1, "atomic_ops": {"stock": {"$mul": 10}}},
            {"id": 2, "status": "last"},
        ],
        return_updated=True,
    )
    assert result.updated == 5 and result.records_processed == 5
    rows = _rows(db, products)
    assert rows[1]["stock"] == 30 and rows[2]["status"] == "last"
    assert sorted(result.data["id"].to_list()) == [1, 2]


def test_bad_atomic_ops_are_refused(db, products):  # type: ignore[no-untyped-def]
    before = _rows(db, products)
    with pytest.raises(SchemaError, match=r"\$incr"):
        db.bulk_update(products, [{"id": 1, "atomic_ops": {"stock": {"$incr": 1}}}])
    with pytest.raises(SchemaError, match="both"):
        db.bulk_update(products, [{"id": 1, "stock": 1, "atomic_ops": {"stock": {"$inc": 1}}}])
    with pytest.raises(SchemaError, match="needs a value"):
        db.bulk_update(products, [{"id": 1, "atomic_ops": {"stock": {"$inc": None}}}])
    with pytest.raises(SchemaError, match="missing"):
        db.bulk_update(products, [{"stock": 1}])
    assert _rows(db, products) == before


def test_rows_from_a_polars_frame_in_batches(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" {DDL}')
    db.bulk_create(table, _products(50))
    frame = pl.DataFrame({"id": list(range(1, 61)), "stock": [i * 2 for i in range(1, 61)]})
    result = db.bulk_update(table, frame, batch_size=16)
    assert (result.updated, result.not_found, result.batches) == (50, 10, 4)
    assert result.not_found_ids == list(range(51, 61))
    assert all(r["stock"] == 2 * r["id"] for r in _rows(db, table).values())  # type: ignore[operator]


def test_not_found_ids_come_in_input_order(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" {DDL}')
    db.bulk_create(table, _products(50))
    ids = [9005, 40, 9001, *range(1, 40), 9003, 9002, 9004]
    result = db.bulk_update(table, [{"id": i, "stock": 1} for i in ids], batch_size=1000)
    assert (result.updated, result.not_found_ids) == (40, [9005, 9001, 9003, 9002, 9004])


def test_keys_repeated_across_batches_apply_in_order(db, products):  # type: ignore[no-untyped-def]
    rows = [
        {"id": 1, "stock": 5},
        {"id": 2, "stock": 6},
        {"id": 1, "stock": 7},
        {"id": 3, "stock": 8},
        {"id": 1, "atomic_ops": {"stock": {"$inc": 1}}},
    ]
    frame = pl.DataFrame(rows[:4])
    result = db.bulk_update(products, frame, batch_size=2)
    assert result.updated == 4 and _rows(db, products)[1]["stock"] == 7
    result = db.bulk_update(products, rows, batch_size=2)
    assert result.updated == 5 and _rows(db, products)[1]["stock"] == 8


def test_rows_with_filter_skip_rows_it_excludes(db, products):  # type: ignore[no-untyped-def]
    result = db.bulk_update(
        products, [{"id": i, "status": "sold"} for i in (1, 2, 3, 4)], filter={"active": True}
    )
    assert (result.updated, result.skipped, result.success_count) == (2, 2, 4)
    rows = _rows(db, products)
    assert [rows[i]["status"] for i in (1, 2, 3, 4)] == ["new", "sold", "new", "sold"]


def test_key_fields_other_than_primary_key(db, products):  # type: ignore[no-untyped-def]
    result = db.bulk_update(products, [{"name": "Product 5", "stock": 55}], key_fields=["name"])
    assert result.updated == 1 and _rows(db, products)[5]["stock"] == 55


def test_failure_in_a_later_batch_rolls_back_everything(db, products):  # type: ignore[no-untyped-def]
    before = _rows(db, products)
    rows = [{"id": i, "stock": 1000} for i in range(1, 9)] + [{"id": 9, "stock": "lots"}]
    with pytest.raises(SchemaError) as info:
        db.bulk_update(products, rows, batch_size=4)
    assert _rows(db, products) == before
    assert info.value.result is not None and info.value.result.success_count == 0


def test_without_ensure_atomic_each_batch_commits(db, products):  # type: ignore[no-untyped-def]
    rows = [{"id": i, "stock": 1000} for i in range(1, 9)] + [{"id": 9, "stock": "lots"}]
    with pytest.raises(SchemaError) as info:
        db.bulk_update(products, rows, batch_size=4, ensure_atomic=False)
    after = _rows(db, products)
    assert [after[i]["stock"] for i in range(1, 10)] == [1000] * 8 + [9]
    partial = info.value.result
    assert partial is not None and partial.updated == 8 and partial.batches_committed == 2
    assert partial.records_processed == partial.success_count + partial.failure_count


# ----------------------------------------------------------------- hostile
@pytest.mark.not_yet("mysql", raises=SchemaError, reason="MySQL identifiers cannot hold emoji")
def test_hostile_identifiers_and_values(db):  # type: ignore[no-untyped-def]
    name = 'upd"; DROP TABLE x; -- ü'
    col = 'pri"ce; --'
    evil = "'); DROP TABLE students; --"
    db.drop_table(name)
    try:
        db.bulk_create(
            name, [{"id": i, col: i, "ñ 🚀": evil if i == 1 else "ok"} for i in (1, 2, 3)], primary_key="id"
        )
        result = db.bulk_update(name, {col: 0, "ñ 🚀": "x'; --"}, filter={"ñ 🚀": evil})
        assert result.updated == 1
        db.bulk_update(name, [{"id": 2, "ñ 🚀": evil}, {"id": 3, "atomic_ops": {col: {"$inc": 5}}}])
        rows = _rows(db, name)
        assert (rows[1][col], rows[1]["ñ 🚀"]) == (0, "x'; --")
        assert rows[2]["ñ 🚀"] == evil
        assert rows[3][col] == 8
    finally:
        db.drop_table(name)


@pytest.mark.not_yet(
    "duckdb",
    raises=AssertionError,
    reason="DuckDB discards the n of VARCHAR(n) (any length is stored): no max_length to reject by",
)
def test_update_rows_are_validated_on_the_values_they_set(db, table, sql):  # type: ignore[no-untyped-def]
    """Issue 3 on update rows: rules and NOT NULL/varchar constraints see only the
    columns a row sets; any rejection writes nothing and reports every row."""
    sql(f'CREATE TABLE "{table}" (id bigint primary key, code varchar(3) NOT NULL, price double precision)')
    db.bulk_create(table, [{"id": i, "code": "a", "price": 1.0} for i in range(1, 6)])
    rules = {"price": {"min": 0}}
    rows = [
        {"id": 1, "price": 2.0},  # sets price only: code is not checked
        {"id": 2, "price": -1.0},  # breaks min
        {"id": 3, "code": None},  # NULL into NOT NULL
        {"id": 4, "code": "toolong"},  # longer than varchar(3)
        {"id": 5, "code": "ok", "price": 3.0},
    ]
    with pytest.raises(ValidationError) as info:
        db.bulk_update(table, rows, validation_rules=rules, batch_size=2)
    got = {
        r["row"]: {(v["field"], v["rule"]) for v in r["violations"]}
        for r in info.value.errors.iter_rows(named=True)
    }
    assert got == {1: {("price", "min")}, 2: {("code", "required")}, 3: {("code", "max_length")}}
    assert db.read(table, order_by="id")["price"].to_list() == [1.0] * 5  # nothing written
    result = db.bulk_update(table, [rows[0], rows[4]], validation_rules=rules)
    assert result.updated == 2
    with pytest.raises(InvalidOptionValueError, match="validation_rules apply to updates given as rows"):
        db.bulk_update(table, {"price": 5.0}, filter={"id": 1}, validation_rules=rules)


@pytest.mark.not_yet(
    "sqlite", "mysql", raises=NotSupportedError, reason="title() has no SQLite or MySQL SQL spelling"
)
def test_filter_update_with_title_case(db, products, peek):  # type: ignore[no-untyped-def]
    result = db.bulk_update(products, {"status": "upper(name).title()"}, filter={"id": {"$lte": 2}})
    assert result.updated == result.success_count == 2
    assert peek(f'SELECT id, status FROM "{products}" ORDER BY id') == [
        (1, "Product 1"), (2, "Product 2"), *((i, "new") for i in range(3, 11))]  # fmt: skip
