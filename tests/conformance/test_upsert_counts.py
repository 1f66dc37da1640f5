"""Exact inserted / updated / skipped counts when some incoming rows equal the stored ones.

MySQL's affected-rows figure cannot tell these apart (1 per insert, 2 per changed row, 0 or
1 per unchanged row); the counts must still be the same as on every other database: an
existing row that the upsert is allowed to update counts as updated even when its values
do not change, one that ``update_if`` excludes as skipped, a new key as inserted."""

from __future__ import annotations

from decimal import Decimal

import pytest

STORED = [{"id": i, "name": f"n{i}", "price": Decimal(f"{i}.25")} for i in range(1, 6)]
INCOMING = [
    {"id": 1, "name": "n1", "price": Decimal("1.25")},  # unchanged
    {"id": 2, "name": "n2", "price": Decimal("2.25")},  # unchanged
    {"id": 3, "name": "changed", "price": Decimal("3.25")},  # changed
    {"id": 4, "name": "n4", "price": Decimal("9.99")},  # changed
    {"id": 6, "name": "n6", "price": Decimal("6.25")},  # new
    {"id": 7, "name": "n7", "price": Decimal("7.25")},  # new
    {"id": 8, "name": "n8", "price": Decimal("8.25")},  # new
]


@pytest.fixture
def stored_rows(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, name text, price numeric(10,2))')
    db.bulk_create(table, STORED)
    return table


def _rows(peek, table):  # type: ignore[no-untyped-def]
    # SQLite's NUMERIC(10,2) hands back a float: compare its shortest text, cents exact
    rows = peek(f'SELECT id, name, price FROM "{table}"')
    return sorted((i, n, Decimal(str(p)).quantize(Decimal("0.01"))) for i, n, p in rows)


def _expected(*, apply: set[int]) -> list[tuple[object, ...]]:
    out = {r["id"]: (r["id"], r["name"], r["price"]) for r in STORED}
    for r in INCOMING:
        if r["id"] in apply or r["id"] not in out:
            out[r["id"]] = (r["id"], r["name"], r["price"])
    return sorted(out.values())


@pytest.mark.parametrize("batch_size", [100, 3])
def test_update_counts_unchanged_rows_as_updated(db, stored_rows, peek, batch_size):  # type: ignore[no-untyped-def]
    result = db.bulk_upsert(stored_rows, INCOMING, unique_fields=["id"], batch_size=batch_size)
    assert (result.inserted, result.updated, result.skipped) == (3, 4, 0)
    assert result.records_processed == result.success_count + result.failure_count == 7
    assert _rows(peek, stored_rows) == _expected(apply={1, 2, 3, 4})


def test_skip_counts_every_existing_row_as_skipped(db, stored_rows, peek):  # type: ignore[no-untyped-def]
    result = db.bulk_upsert(stored_rows, INCOMING, unique_fields=["id"], conflict_resolution="skip")
    assert (result.inserted, result.updated, result.skipped) == (3, 0, 4)
    assert _rows(peek, stored_rows) == _expected(apply=set())


def test_update_if_changed_skips_the_unchanged_rows(db, stored_rows, peek):  # type: ignore[no-untyped-def]
    changed = {
        "$or": [
            {"name": {"$ne": {"$col": "excluded.name"}}},
            {"price": {"$ne": {"$col": "excluded.price"}}},
        ]
    }
    result = db.bulk_upsert(
        stored_rows, INCOMING, unique_fields=["id"], upsert_conditions={"update_if": changed}
    )
    assert (result.inserted, result.updated, result.skipped) == (3, 2, 2)
    assert _rows(peek, stored_rows) == _expected(apply={3, 4})


def test_create_with_update_conflicts_counts_unchanged_rows(db, stored_rows, peek):  # type: ignore[no-untyped-def]
    result = db.bulk_create(stored_rows, INCOMING, conflict_resolution="update", conflict_fields=["id"])
    assert (result.inserted, result.updated, result.skipped) == (3, 4, 0)
    assert _rows(peek, stored_rows) == _expected(apply={1, 2, 3, 4})
    again = db.bulk_create(stored_rows, INCOMING, conflict_resolution="skip", conflict_fields=["id"])
    assert (again.inserted, again.updated, again.skipped) == (0, 0, 7)
