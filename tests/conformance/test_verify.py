"""Migration verification and the data-migration options of bulk_create."""

from __future__ import annotations

import polars as pl
import pytest

from bulkframe.errors import InvalidOptionValueError, NotSupportedError
from bulkframe.ops.verify import VerificationError

ROWS = [
    {"id": i, "name": f"n{i}", "price": i / 4, "meta": {"k": i, "tags": ["a", "b"]}} for i in range(1, 501)
]


def test_verify_finds_missing_and_changed_rows(db, table, sql):  # type: ignore[no-untyped-def]
    db.bulk_create(table, ROWS, primary_key="id")
    ok = db.verify(table, ROWS)
    assert ok.ok and ok.checked == ok.matched == 500
    sql(f'DELETE FROM "{table}" WHERE id IN (3, 4)')
    sql(f"UPDATE \"{table}\" SET name = 'changed' WHERE id = 10")
    found = db.verify(table, ROWS)
    assert not found.ok
    assert (found.checked, found.missing, found.mismatched, found.matched) == (500, 2, 1, 497)
    assert sorted(found.missing_keys["id"].to_list()) == [3, 4]
    assert found.differences.to_dicts() == [
        {"id": 10, "field": "name", "expected": "n10", "actual": "changed"}
    ]
    sampled = db.verify(table, ROWS, sample=50, fields=["price"])
    assert sampled.checked == 50 and sampled.fields == ["price"]


def test_verify_migration_after_a_load(db, table):  # type: ignore[no-untyped-def]
    result = db.bulk_create(
        table,
        ROWS,
        primary_key="id",
        migration_mode=True,
        verification_sample=100,
        transformation_rules={"price": "price * 2"},
    )
    v = result.verification
    assert v.ok and v.checked == 100 and result.metrics["verification"]["ok"]
    # the transformed values are what must have landed
    assert db.read(table, order_by="id")["price"].head(2).to_list() == [0.5, 1.0]


@pytest.mark.not_yet("duckdb", raises=NotSupportedError, reason="DuckDB has no triggers")
@pytest.mark.not_yet("mysql", raises=NotSupportedError, reason="MySQL triggers cannot be switched off")
def test_verify_migration_reports_rows_a_trigger_changed(db, table, sql, suite_backend):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, name text)')
    make_trigger, cleanup = suite_backend.upper_trigger(table)
    for statement in make_trigger:
        sql(statement)
    rows = [{"id": i, "name": f"n{i}"} for i in range(20)]
    with pytest.raises(VerificationError, match="20 differ") as info:
        db.bulk_create(table, rows, verify_migration=True)
    assert info.value.result.success_count == 20  # the load itself committed
    assert info.value.verification.differences.filter(pl.col("id") == 3)["actual"].to_list() == ["N3"]
    sql(f'DELETE FROM "{table}"')
    result = db.bulk_create(table, rows, verify_migration=True, disable_triggers=True)
    assert result.verification.ok
    assert db.read(table, order_by="id")["name"][3] == "n3"
    db.bulk_create(table, [{"id": 100, "name": "after"}])  # the trigger is back on
    assert db.read(table, order_by="id")["name"].to_list()[-1] == "AFTER"
    for statement in cleanup:
        sql(statement)


def test_preserve_ids_moves_the_sequence_and_false_drops_ids(db, table):  # type: ignore[no-untyped-def]
    from bulkframe.types import Column

    db.create_table(
        table,
        [Column("id", "int64", primary_key=True, nullable=False), Column("name", "text")],
        identity="id",
    )
    db.bulk_create(table, [{"id": 1000, "name": "kept"}], preserve_ids=True)
    db.bulk_create(table, [{"name": "next"}])  # the id generator continues after 1000
    db.bulk_create(table, [{"id": 5, "name": "renumbered"}], preserve_ids=False)
    got = db.read(table, order_by="id").to_dicts()
    assert got[0] == {"id": 1000, "name": "kept"}
    assert [r["name"] for r in got] == ["kept", "next", "renumbered"]
    assert got[1]["id"] > 1000 and got[2]["id"] > got[1]["id"]


def test_migration_options_are_checked(db, table, stored):  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidOptionValueError, match="verification_fields needs"):
        db.bulk_create(table, ROWS, verification_fields=["name"])
    assert stored(table) is None  # refused before anything was created
    with pytest.raises(InvalidOptionValueError, match="skip"):
        db.bulk_create(table, ROWS, verify_migration=True, conflict_resolution="skip", conflict_fields=["id"])
    assert stored(table) is None  # refused before anything was created
