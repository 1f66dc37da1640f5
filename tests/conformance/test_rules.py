"""Rules and error strategies end to end: exactly the planted rows are rejected, with
their reasons, and exactly the good rows land."""

from __future__ import annotations

import datetime as dt
import json
import logging

import polars as pl
import pytest

from bulkframe.errors import (
    ExpressionError,
    InvalidOptionValueError,
    SafetyLimitError,
    SchemaError,
    ValidationError,
)

RULES = {
    "price": {"min": 0.01, "max": 10000},
    "stock": {"min": 0},
    "sku": {"required": True, "pattern": r"^[A-Z]{3}-\d+$", "unique": True},
    "category": {"in": ["electronics", "books"]},
    "name": {"min_length": 2, "max_length": 20},
    "cost": {"expr": "price >= cost"},
}

# planted: input position → the (field, rule) pairs that must be reported
PLANTED = {
    3: {("price", "min")},
    7: {("price", "max"), ("stock", "min")},
    11: {("sku", "required")},
    12: {("sku", "pattern")},
    15: {("category", "in")},
    20: {("name", "min_length")},
    21: {("name", "max_length")},
    30: {("cost", "expr")},
    33: {("sku", "unique")},
    34: {("sku", "unique")},
}


def _rows(n: int = 40) -> list[dict]:  # type: ignore[type-arg]
    rows = [
        {
            "id": i,
            "sku": f"ABC-{i}",
            "name": f"Product {i}",
            "price": 10.0 + i,
            "cost": 5.0,
            "stock": i,
            "category": "electronics" if i % 2 else "books",
        }
        for i in range(n)
    ]
    rows[3]["price"], rows[3]["cost"] = 0.0, 0.0
    rows[7]["price"], rows[7]["stock"] = 20000.0, -1
    rows[11]["sku"] = None
    rows[12]["sku"] = "abc-12"
    rows[15]["category"] = "weapons"
    rows[20]["name"] = "X"
    rows[21]["name"] = "Y" * 21
    rows[30]["cost"] = 1000.0
    rows[33]["sku"] = rows[34]["sku"] = "DUP-1"
    return rows


def _create(sql, table: str) -> None:  # type: ignore[no-untyped-def]
    sql(
        f'CREATE TABLE "{table}" (id bigint primary key, sku text, name text, price double precision, '
        f"cost double precision, stock integer, category text)"
    )


def _reported(errors: pl.DataFrame) -> dict[int, set[tuple[str, str]]]:
    return {
        r["row"]: {(v["field"], v["rule"]) for v in r["violations"]} for r in errors.iter_rows(named=True)
    }


def test_continue_rejects_exactly_the_planted_rows(db, table, sql):  # type: ignore[no-untyped-def]
    _create(sql, table)
    rows = _rows()
    result = db.bulk_create(table, rows, validation_rules=RULES, error_strategy="continue", batch_size=16)
    assert _reported(result.errors) == PLANTED
    assert result.failure_count == len(PLANTED)
    assert result.success_count == result.inserted == len(rows) - len(PLANTED)
    assert result.records_processed == len(rows)
    # each rejected row carries its original values and a readable reason
    row7 = result.errors.filter(pl.col("row") == 7).row(0, named=True)
    assert row7["record"]["price"] == 20000.0 and "stock" in row7["error"] and "price" in row7["error"]
    landed = db.read(table, order_by="id")["id"].to_list()
    assert landed == [i for i in range(len(rows)) if i not in PLANTED]


def test_stop_raises_with_the_full_report_and_writes_nothing(db, table, sql, stored):  # type: ignore[no-untyped-def]
    _create(sql, table)
    with pytest.raises(ValidationError) as info:
        db.bulk_create(table, _rows(), validation_rules=RULES, batch_size=16)
    assert _reported(info.value.errors) == PLANTED  # rows in later batches are reported too
    assert info.value.result.success_count == 0
    assert stored(table) == []


def test_database_constraint_under_continue_isolates_offending_rows(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, sku text UNIQUE, qty integer CHECK (qty < 100))')
    db.bulk_create(table, [{"id": 1000, "sku": "TAKEN", "qty": 1}])
    rows = [{"id": i, "sku": f"S{i}", "qty": i} for i in range(250)]
    rows[17]["sku"] = "TAKEN"  # unique index hit against the table
    rows[42]["id"] = 1000  # primary key hit
    # qty >= 100 breaks the CHECK for rows 100..249
    result = db.bulk_create(table, rows, error_strategy="continue", batch_size=64)
    bad = {17, 42, *range(100, 250)}
    assert set(result.errors["row"].to_list()) == bad
    assert set(result.errors["stage"].to_list()) == {"database"}
    assert result.failure_count == len(bad) and result.success_count == 250 - len(bad)
    landed = set(db.read(table)["id"].to_list())
    assert landed == {1000} | {i for i in range(250) if i not in bad}


def test_uncastable_values_are_rejections_under_continue(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, qty smallint, day date)')
    rows = [
        {"id": 1, "qty": 5, "day": "2024-01-01"},
        {"id": 2, "qty": 99999, "day": "2024-01-02"},
        {"id": 3, "qty": 7, "day": "yesterday"},
        {"id": 4, "qty": 8, "day": None},
    ]
    result = db.bulk_create(table, rows, error_strategy="continue")
    assert _reported(result.errors) == {1: {("qty", "type")}, 2: {("day", "type")}}
    assert "yesterday" in result.errors.filter(pl.col("row") == 2)["error"][0]
    assert sorted(db.read(table)["id"].to_list()) == [1, 4]


@pytest.mark.not_yet(
    "duckdb",
    raises=AssertionError,
    reason="DuckDB discards the n of VARCHAR(n) (any length is stored): no max_length to reject by",
)
def test_table_constraints_become_row_rejections_before_sending(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, code varchar(5) NOT NULL)')
    rows = [{"id": 1, "code": "ok"}, {"id": 2, "code": None}, {"id": 3, "code": "toolong"}]
    result = db.bulk_create(table, rows, error_strategy="continue")
    assert _reported(result.errors) == {1: {("code", "required")}, 2: {("code", "max_length")}}
    assert set(result.errors["stage"].to_list()) == {"validation"}
    assert db.read(table)["id"].to_list() == [1]


def test_max_errors_stops_and_says_what_was_committed(db, table, sql):  # type: ignore[no-untyped-def]
    _create(sql, table)
    rows = _rows()
    with pytest.raises(SafetyLimitError, match="max_errors=2") as info:
        db.bulk_create(
            table, rows, validation_rules=RULES, error_strategy="continue", max_errors=2, batch_size=10
        )
    result = info.value.result
    # batch 0 (rows 0-9) has 2 rejections: fine; batch 1 (10-19) brings 5: stop after it
    assert result.committed_ranges == [(0, 10), (10, 20)]
    rejected = set(result.errors["row"].to_list())
    assert rejected == {3, 7, 11, 12, 15}
    landed = set(db.read(table)["id"].to_list())
    assert landed == set(range(20)) - rejected
    assert result.records_processed == result.success_count + result.failure_count == 20


@pytest.mark.parametrize("ext", ["jsonl", "json", "csv", "parquet"])
def test_failed_records_file_and_callback(db, table, sql, tmp_path, ext):  # type: ignore[no-untyped-def]
    _create(sql, table)
    path = tmp_path / f"failed.{ext}"
    received = []
    result = db.bulk_create(
        table,
        _rows(),
        validation_rules=RULES,
        error_strategy="continue",
        failed_records_file=str(path),
        failed_records_callback=received.append,
    )
    reader = {"jsonl": pl.read_ndjson, "json": pl.read_json, "csv": pl.read_csv, "parquet": pl.read_parquet}[
        ext
    ]
    written = reader(path)
    assert sorted(written["row"].to_list()) == sorted(PLANTED)
    assert written.height == result.failure_count
    if ext == "csv":
        first = json.loads(written.sort("row")["violations"][0])
        assert first == [{"field": "price", "rule": "min", "value": "0.0", "message": first[0]["message"]}]
    assert len(received) == 1 and received[0].height == len(PLANTED)


def test_rejections_are_logged_at_the_chosen_level(db, table, sql, caplog):  # type: ignore[no-untyped-def]
    _create(sql, table)
    with caplog.at_level(logging.DEBUG, logger="bulkframe"):
        db.bulk_create(
            table, _rows(), validation_rules=RULES, error_strategy="continue", error_log_level="error"
        )
    assert any(r.levelno == logging.ERROR and "rejected" in r.getMessage() for r in caplog.records)


def test_transformations_apply_before_validation(db, table, sql):  # type: ignore[no-untyped-def]
    sql(
        f'CREATE TABLE "{table}" (id bigint primary key, price double precision, category text, created_at timestamptz)'
    )
    t0 = dt.datetime(2020, 5, 5, tzinfo=dt.timezone.utc)
    rows = [
        {"id": 1, "price": 10.0, "category": "ELECTRONICS", "created_at": t0},
        {"id": 2, "price": 9000.0, "category": "Books", "created_at": None},
        {"id": 3, "price": 20.0, "category": "Books", "created_at": None},
    ]
    before = dt.datetime.now(dt.timezone.utc)
    result = db.bulk_create(
        table,
        rows,
        error_strategy="continue",
        transformation_rules={
            "price": "price * 1.1",
            "category": "category.lower()",
            "created_at": "coalesce(created_at, now())",
        },
        validation_rules={"price": {"max": 9500}},  # 9000 * 1.1 = 9900 fails after transformation
    )
    after = dt.datetime.now(dt.timezone.utc)
    assert _reported(result.errors) == {1: {("price", "max")}}
    got = db.read(table, order_by="id").to_dicts()
    stamped = got[1].pop("created_at")
    assert got == [
        {"id": 1, "price": pytest.approx(11.0), "category": "electronics", "created_at": t0},
        {"id": 3, "price": pytest.approx(22.0), "category": "books"},
    ]
    # coalesce(created_at, now()): the missing timestamp is the time of the call
    assert type(stamped) is dt.datetime and stamped.tzinfo is not None
    assert before <= stamped <= after, (before, stamped, after)


def test_hostile_expression_is_refused_before_anything_is_written(db, table, sql, stored):  # type: ignore[no-untyped-def]
    _create(sql, table)
    with pytest.raises(ExpressionError, match="__import__"):
        db.bulk_create(table, _rows(), transformation_rules={"name": "__import__('os').system('echo pwned')"})
    assert stored(table) == []


def test_skip_validation_skips_rules_but_not_casting(db, table, sql, stored):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, qty smallint, code varchar(3))')
    result = db.bulk_create(table, [{"id": 1, "qty": 1, "code": "abc"}], skip_validation=True)
    assert result.inserted == 1
    with pytest.raises(SchemaError, match="qty"):
        db.bulk_create(table, [{"id": 2, "qty": 10**6}], skip_validation=True)
    with pytest.raises(InvalidOptionValueError, match="skip_validation"):
        db.bulk_create(
            table, [{"id": 3, "qty": 1}], skip_validation=True, validation_rules={"qty": {"min": 0}}
        )
    assert stored(table, "id, qty, code") == [(1, 1, "abc")]  # only the first call's row


def test_bad_options_are_refused(db, table, stored):  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidOptionValueError, match="error_strategy='ignore'"):
        db.bulk_create(table, _rows(), error_strategy="ignore")
    assert stored(table) is None  # refused before anything was created
    with pytest.raises(InvalidOptionValueError, match="unknown extension"):
        db.bulk_create(table, _rows(), failed_records_file="/tmp/x.xlsx")
    assert stored(table) is None  # refused before anything was created
    with pytest.raises(InvalidOptionValueError, match="callable"):
        db.bulk_create(table, _rows(), failed_records_callback="handle_failed_records")
    assert stored(table) is None  # refused before anything was created
    with pytest.raises(ExpressionError, match="minimum"):
        db.bulk_create(table, _rows(), validation_rules={"price": {"minimum": 1}})
    assert stored(table) is None  # refused before anything was created


def test_retry_options_without_retry_batch_are_refused(db, table, stored):  # type: ignore[no-untyped-def]
    with pytest.raises(
        InvalidOptionValueError, match="max_retries, retry_delay only apply to error_strategy='retry_batch'"
    ):
        db.bulk_create(table, _rows(), error_strategy="continue", max_retries=3, retry_delay=1.0)
    assert stored(table) is None  # refused before anything was created


def test_retry_failed_records_means_retry_batch(db, table, sql):  # type: ignore[no-untyped-def]
    _create(sql, table)
    result = db.bulk_create(
        table,
        _rows(),
        validation_rules=RULES,
        error_strategy="continue",
        retry_failed_records=True,
        max_retries=3,
        retry_delay=0.01,
    )
    assert result.failure_count == len(PLANTED)  # data errors are never retried
    with pytest.raises(InvalidOptionValueError, match="retry_failed_records=True needs"):
        db.bulk_create(table, _rows(), retry_failed_records=True)
