"""bulk_upsert on every backend: staging + INSERT … ON CONFLICT with exact counts,
update/insert fields, conditions, dedupe, unique-index checks, atomicity, hostile input."""

from __future__ import annotations

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

DDL = (
    "(id bigint primary key, sku text unique, name text, category text, price numeric(10,2), "
    "stock integer, active boolean, updated_at timestamptz, note text)"
)


@pytest.fixture
def products(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" {DDL}')
    db.bulk_create(
        table,
        [
            {
                "id": i,
                "sku": f"SKU-{i}",
                "name": f"P{i}",
                "category": "c",
                "price": Decimal(f"{i}.00"),
                "stock": i,
                "active": True,
                "updated_at": f"2024-01-0{i}T00:00:00+00:00",
                "note": "old",
            }
            for i in range(1, 6)
        ],
    )
    return table


def _rows(db: bf.Database, table: str) -> dict[int, dict[str, object]]:
    return {r["id"]: r for r in db.read(table, order_by="id").to_dicts()}


def _incoming(ids: range, **extra: object) -> list[dict[str, object]]:
    return [
        {
            "id": i,
            "sku": f"SKU-{i}",
            "name": f"N{i}",
            "category": "c",
            "price": Decimal(f"{i}.50"),
            "stock": 100 + i,
            "active": i % 2 == 0,
            **extra,
        }
        for i in ids
    ]


def test_inserts_new_and_updates_existing_with_exact_counts(db, products):  # type: ignore[no-untyped-def]
    result = db.bulk_upsert(products, _incoming(range(3, 9)))
    assert (result.inserted, result.updated, result.skipped) == (3, 3, 0)
    assert result.records_processed == result.success_count == 6 and result.failure_count == 0
    rows = _rows(db, products)
    assert sorted(rows) == list(range(1, 9))
    assert (rows[1]["name"], rows[1]["stock"]) == ("P1", 1)
    for i in range(3, 9):
        assert (rows[i]["name"], rows[i]["price"], rows[i]["stock"]) == (f"N{i}", Decimal(f"{i}.50"), 100 + i)
    assert rows[3]["note"] == "old" and rows[7]["note"] is None  # not in the input: kept / default


def test_skip_leaves_existing_rows(db, products):  # type: ignore[no-untyped-def]
    result = db.bulk_upsert(products, _incoming(range(4, 8)), conflict_resolution="skip")
    assert (result.inserted, result.updated, result.skipped) == (2, 0, 2)
    rows = _rows(db, products)
    assert rows[4]["name"] == "P4" and rows[7]["name"] == "N7"


def test_update_and_insert_fields_are_honoured_exactly(db, products):  # type: ignore[no-untyped-def]
    result = db.bulk_upsert(
        products,
        _incoming(range(4, 7), note="new"),
        unique_fields=["sku"],
        update_fields=["price", "stock", "note"],
        insert_fields=["id", "sku", "name", "price"],
    )
    assert (result.inserted, result.updated) == (1, 2)
    rows = _rows(db, products)
    for i in (4, 5):  # updated: only the update fields changed, even `note` (not inserted)
        assert (rows[i]["price"], rows[i]["stock"], rows[i]["note"]) == (Decimal(f"{i}.50"), 100 + i, "new")
        assert (rows[i]["name"], rows[i]["active"]) == (f"P{i}", True)
    new = rows[6]  # inserted: only the insert fields
    assert (new["sku"], new["name"], new["price"]) == ("SKU-6", "N6", Decimal("6.50"))
    assert new["stock"] is None and new["note"] is None and new["active"] is None


def test_empty_update_fields_means_insert_only(db, products):  # type: ignore[no-untyped-def]
    result = db.bulk_upsert(products, _incoming(range(5, 7)), update_fields=[])
    assert (result.inserted, result.updated, result.skipped) == (1, 0, 1)
    assert _rows(db, products)[5]["name"] == "P5"


def test_update_if_compares_stored_with_incoming(db, products):  # type: ignore[no-untyped-def]
    incoming = _incoming(range(1, 5))
    for row, day in zip(incoming, ["2023-12-31", "2024-01-02", "2024-02-01", "2024-03-01"], strict=True):
        row["updated_at"] = f"{day}T00:00:00+00:00"
    result = db.bulk_upsert(
        products,
        incoming,
        upsert_conditions={"update_if": {"updated_at": {"$lt": {"$col": "excluded.updated_at"}}}},
    )
    # stored updated_at is 2024-01-0{i}: rows 3 and 4 are newer, 1 older, 2 equal
    assert (result.inserted, result.updated, result.skipped) == (0, 2, 2)
    rows = _rows(db, products)
    assert [rows[i]["name"] for i in (1, 2, 3, 4)] == ["P1", "P2", "N3", "N4"]


def test_insert_if_filters_new_rows_only(db, products):  # type: ignore[no-untyped-def]
    result = db.bulk_upsert(
        products,
        _incoming(range(4, 10)),
        upsert_conditions={"insert_if": {"active": True}, "update_if": {"stock": {"$lt": 5}}},
    )
    # existing 4 (stock 4 < 5) updated, 5 (stock 5) skipped; new 6, 8 inserted, 7, 9 skipped
    assert (result.inserted, result.updated, result.skipped) == (2, 1, 3)
    rows = _rows(db, products)
    assert sorted(rows) == [1, 2, 3, 4, 5, 6, 8]
    assert rows[4]["name"] == "N4" and rows[5]["name"] == "P5"


def test_spec_conditional_upsert_with_current_timestamp(db, products):  # type: ignore[no-untyped-def]
    result = db.bulk_upsert(
        products,
        _incoming(range(2, 4)),
        unique_fields=["sku"],
        upsert_conditions={
            "update_if": {"updated_at": {"$lt": ":current_timestamp"}},
            "insert_if": {"active": True},
        },
        conflict_resolution="update",
    )
    assert (result.inserted, result.updated, result.skipped) == (0, 2, 0)


@pytest.mark.parametrize(("dedupe", "name", "dropped"), [("last", "second", 1), ("first", "first", 1)])
def test_duplicate_keys_in_input(db, products, dedupe, name, dropped):  # type: ignore[no-untyped-def]
    rows = [
        {"id": 9, "sku": "SKU-9", "name": "first"},
        {"id": 2, "sku": "SKU-2", "name": "x"},
        {"id": 9, "sku": "SKU-9", "name": "second"},
    ]
    result = db.bulk_upsert(products, rows, dedupe=dedupe)
    assert (result.inserted, result.updated, result.skipped, result.deduplicated) == (1, 1, dropped, dropped)
    assert _rows(db, products)[9]["name"] == name


def test_dedupe_first_and_error_span_batches(db, products):  # type: ignore[no-untyped-def]
    rows = [
        {"id": 9, "sku": "SKU-9", "name": "first"},
        {"id": 10, "sku": "SKU-10", "name": "a"},
        {"id": 9, "sku": "SKU-9", "name": "second"},
    ]
    result = db.bulk_upsert(products, rows, dedupe="first", batch_size=2)
    assert (result.inserted, result.skipped, result.deduplicated) == (2, 1, 1)
    assert _rows(db, products)[9]["name"] == "first"
    before = _rows(db, products)
    with pytest.raises(SchemaError, match="duplicate"):
        db.bulk_upsert(products, rows, dedupe="error", batch_size=2)
    with pytest.raises(SchemaError, match="duplicate"):
        db.bulk_upsert(products, rows, dedupe="error")
    assert _rows(db, products) == before


def test_dedupe_last_across_batches_applies_in_order(db, products):  # type: ignore[no-untyped-def]
    rows = [
        {"id": 9, "sku": "SKU-9", "name": "first"},
        {"id": 10, "sku": "SKU-10", "name": "a"},
        {"id": 9, "sku": "SKU-9", "name": "second"},
        {"id": 1, "sku": "SKU-1", "name": "b"},
    ]
    result = db.bulk_upsert(
        products, rows, batch_size=2, update_fields=["name"], insert_fields=["id", "sku", "name"]
    )
    assert (result.inserted, result.updated, result.skipped, result.batches) == (2, 2, 0, 2)
    rows_after = _rows(db, products)
    assert (rows_after[9]["name"], rows_after[10]["name"], rows_after[1]["name"]) == ("second", "a", "b")
    # `name` updated but not inserted: read from the stage by key, within the batch
    again = [
        {"id": 9, "sku": "SKU-9", "name": "x"},
        {"id": 11, "sku": "SKU-11", "name": "y"},
        {"id": 9, "sku": "SKU-9", "name": "z"},
    ]
    result = db.bulk_upsert(
        products, again, batch_size=2, update_fields=["name"], insert_fields=["id", "sku"]
    )
    assert (result.inserted, result.updated) == (1, 2)
    rows_after = _rows(db, products)
    assert (rows_after[9]["name"], rows_after[11]["name"]) == ("z", None)


def test_unique_fields_without_a_unique_index_match_under_a_lock(db, products, peek, caplog):  # type: ignore[no-untyped-def]
    """Issue 12: no index on (name, category): rows are still matched (UPDATE … FROM +
    anti-join INSERT, table locked), counts are exact, and a log line says an index would
    be faster."""
    caplog.set_level("INFO", logger="bulkframe")
    result = db.bulk_upsert(
        products,
        [
            {"id": 60, "name": "P1", "category": "c", "stock": 70},  # matches row 1 by (name, category)
            {"id": 61, "name": "Fresh", "category": "c", "stock": 71},
            {"id": 62, "name": "P2", "category": "other", "stock": 72},  # other category: new
        ],
        unique_fields=["name", "category"],
        update_fields=["stock"],
    )
    assert (result.inserted, result.updated, result.skipped) == (2, 1, 0)
    assert peek(
        f'SELECT id, name, category, stock FROM "{products}" WHERE id IN (1, 60, 61, 62) ORDER BY id'
    ) == [
        (1, "P1", "c", 70),
        (61, "Fresh", "c", 71),
        (62, "P2", "other", 72),
    ]
    assert any("no unique index on ['name', 'category']" in r.getMessage() for r in caplog.records)
    assert any("A unique index would be faster" in r.getMessage() for r in caplog.records)
    result = db.bulk_upsert(
        products,
        [
            {"id": 50, "name": "P1", "category": "c", "stock": 0},
            {"id": 51, "name": "New", "category": "c", "stock": 1},
        ],
        unique_fields=["name", "category"],
        update_fields=["stock"],
        create_unique_index=True,
    )
    assert (result.inserted, result.updated) == (1, 1)
    rows = _rows(db, products)
    assert rows[1]["stock"] == 0 and rows[51]["name"] == "New"


@pytest.mark.not_yet(
    "mysql",
    raises=NotSupportedError,
    reason="keyless matching counts keys from the UPDATE's changed rows; MySQL has no UPDATE … RETURNING and "
    "its read-back needs a primary key, which these tables lack",
)
def test_keyless_match_counts_keys_when_the_table_holds_a_key_twice(db, table, sql, peek):  # type: ignore[no-untyped-def]
    """Without a unique index the table may hold a key twice: both rows take the update,
    and the count is per input row (one key), so the counts still add up."""
    sql(f'CREATE TABLE "{table}" (code text, qty integer)')
    sql(f"INSERT INTO \"{table}\" VALUES ('a', 1), ('a', 2), ('b', 3)")
    result = db.bulk_upsert(table, [{"code": "a", "qty": 9}, {"code": "c", "qty": 4}], unique_fields="code")
    assert (result.inserted, result.updated, result.skipped) == (1, 1, 0)
    assert result.records_processed == result.success_count == 2
    assert sorted(peek(f'SELECT code, qty FROM "{table}"')) == [("a", 9), ("a", 9), ("b", 3), ("c", 4)]


def test_batches_and_frame_input(db, products):  # type: ignore[no-untyped-def]
    frame = pl.DataFrame(
        {"id": list(range(1, 41)), "sku": [f"SKU-{i}" for i in range(1, 41)], "stock": list(range(1, 41))}
    )
    result = db.bulk_upsert(products, frame, batch_size=15)
    assert (result.inserted, result.updated, result.batches) == (35, 5, 3)
    assert len(_rows(db, products)) == 40


def test_a_failing_batch_rolls_back_the_whole_call(db, products):  # type: ignore[no-untyped-def]
    before = _rows(db, products)
    rows = [*_incoming(range(3, 9)), {"id": 99, "sku": "SKU-3"}]  # sku collides with id 3's
    with pytest.raises(IntegrityError):
        db.bulk_upsert(products, rows, batch_size=4)
    assert _rows(db, products) == before


def test_bad_options_are_refused(db, products):  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidOptionValueError, match="'update', 'skip'"):
        db.bulk_upsert(products, _incoming(range(1, 2)), conflict_resolution="replace")
    with pytest.raises(InvalidOptionValueError, match="dedupe"):
        db.bulk_upsert(products, _incoming(range(1, 2)), dedupe="any")
    with pytest.raises(InvalidOptionValueError, match="update_when"):
        db.bulk_upsert(products, _incoming(range(1, 2)), upsert_conditions={"update_when": {}})
    with pytest.raises(OptionError, match="unique_fields"):
        db.bulk_upsert(products, _incoming(range(1, 2)), unique_field=["id"])
    with pytest.raises(SchemaError, match="insert_fields"):
        db.bulk_upsert(products, _incoming(range(1, 2)), insert_fields=["name"])
    with pytest.raises(ExpressionError, match="colour"):
        db.bulk_upsert(products, _incoming(range(1, 2)), upsert_conditions={"insert_if": {"colour": 1}})


@pytest.mark.not_yet("mysql", raises=SchemaError, reason="MySQL identifiers cannot hold emoji")
def test_hostile_identifiers_and_values(db):  # type: ignore[no-untyped-def]
    name = 'ups"; DROP TABLE x; -- ü'
    key = 'k"; --'
    evil = "'); DELETE FROM x; --"
    db.drop_table(name)
    try:
        db.bulk_create(name, [{key: evil, "v 🚀": "a"}, {key: "b", "v 🚀": "b"}], primary_key=key)
        result = db.bulk_upsert(
            name,
            [{key: evil, "v 🚀": evil}, {key: "ünï", "v 🚀": "--"}],
            upsert_conditions={"update_if": {"v 🚀": {"$ne": {"$col": "excluded.v 🚀"}}}},
        )
        assert (result.inserted, result.updated) == (1, 1)
        landed = {r[key]: r["v 🚀"] for r in db.read(name).to_dicts()}
        assert landed == {evil: evil, "b": "b", "ünï": "--"}
    finally:
        db.drop_table(name)


def test_upsert_applies_rules_and_reports_rejections(db, table, sql):  # type: ignore[no-untyped-def]
    """The rules stage runs on upsert too: under "continue" rejected rows are reported
    and the rest merged; under "stop" nothing is written."""
    sql(f'CREATE TABLE "{table}" (id bigint primary key, name text, price double precision)')
    db.bulk_create(table, [{"id": 1, "name": "old", "price": 1.0}])
    rows = [
        {"id": 1, "name": "NEW", "price": 2.0},
        {"id": 2, "name": "two", "price": -5.0},
        {"id": 3, "name": "three", "price": 3.0},
    ]
    rules = {"price": {"min": 0}}
    with pytest.raises(ValidationError) as info:
        db.bulk_upsert(table, rows, validation_rules=rules)
    assert info.value.errors["row"].to_list() == [1]
    assert db.read(table).to_dicts() == [{"id": 1, "name": "old", "price": 1.0}]
    seen = []
    result = db.bulk_upsert(
        table,
        rows,
        validation_rules=rules,
        error_strategy="continue",
        transformation_rules={"name": "name.lower()"},
        progress_callback=seen.append,
    )
    assert (result.inserted, result.updated, result.failure_count) == (1, 1, 1)
    assert result.records_processed == result.success_count + result.failure_count == 3
    assert result.errors.to_dicts()[0]["violations"][0]["rule"] == "min"
    assert [p.processed for p in seen] == [3]
    assert db.read(table, order_by="id").to_dicts() == [
        {"id": 1, "name": "new", "price": 2.0},
        {"id": 3, "name": "three", "price": 3.0},
    ]
    # retry_batch reruns the whole call, so it needs an input it can read twice
    with pytest.raises(InvalidOptionValueError, match=r"retry_batch.*generator can be read only once"):
        db.bulk_upsert(table, (r for r in rows), error_strategy="retry_batch")
    with pytest.raises(
        InvalidOptionValueError, match="max_retries only apply to error_strategy='retry_batch'"
    ):
        db.bulk_upsert(table, rows, max_retries=2)
    assert db.read(table, order_by="id").to_dicts() == [
        {"id": 1, "name": "new", "price": 2.0},
        {"id": 3, "name": "three", "price": 3.0},
    ]
