"""bulk_create on every backend: inputs, conflicts, atomicity, counts, errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import bulkframe as bf
from bulkframe.errors import IntegrityError, OptionError, SchemaError

ROWS = [
    {"id": i, "name": f"Product {i}", "price": Decimal(f"{i}.99"), "stock": i * 10} for i in range(1, 101)
]


def _typed(rows: list[tuple[Any, ...]] | None) -> list[tuple[tuple[Any, str], ...]] | None:
    """Rows with each value's Python type, so ``1 == 1.0 == True`` cannot pass for each other."""
    return None if rows is None else [tuple((v, type(v).__name__) for v in row) for row in rows]


def _expected(peek: Any, numeric: str) -> list[tuple[tuple[Any, str], ...]] | None:
    """``ROWS`` as the database's own casts store them (``numeric``: the price column's
    declared type, spelled ``DECIMAL(p,s)``, which every database casts to), read by the
    independent client."""
    selects = " UNION ALL ".join(
        f"SELECT {r['id']}, '{r['name']}', CAST('{r['price']}' AS {numeric}), {r['stock']}" for r in ROWS
    )
    return _typed(peek(f"SELECT * FROM ({selects}) AS v ORDER BY 1"))


def _landed(stored: Any, table: str) -> list[tuple[tuple[Any, str], ...]] | None:
    return _typed(stored(table, "id, name, price, stock", "id"))


def _arrow() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([r["id"] for r in ROWS], pa.int64()),
            "name": [r["name"] for r in ROWS],
            "price": pa.array([r["price"] for r in ROWS], pa.decimal128(10, 2)),
            "stock": pa.array([r["stock"] for r in ROWS], pa.int64()),
        }
    )


def _inputs(tmp_path: Path) -> dict[str, object]:
    arrow = _arrow()
    pq.write_table(arrow, tmp_path / "in.parquet")
    pl.from_arrow(arrow).with_columns(pl.col("price").cast(pl.String)).write_csv(tmp_path / "in.csv")
    return {
        "list_of_dicts": list(ROWS),
        "generator": (dict(r) for r in ROWS),
        "polars": pl.from_arrow(arrow),
        "lazyframe": pl.from_arrow(arrow).lazy(),  # type: ignore[union-attr]
        "pandas": arrow.to_pandas(),
        "arrow_table": arrow,
        "record_batch": arrow.combine_chunks().to_batches()[0],
        "reader": pa.RecordBatchReader.from_batches(arrow.schema, arrow.to_batches(max_chunksize=7)),
        "c_stream": pl.from_arrow(arrow),  # Polars frames export __arrow_c_stream__ as well
        "parquet_path": str(tmp_path / "in.parquet"),
        "csv_path": tmp_path / "in.csv",
    }


INPUT_KINDS = [
    "list_of_dicts",
    "generator",
    "polars",
    "lazyframe",
    "pandas",
    "arrow_table",
    "record_batch",
    "reader",
    "c_stream",
    "parquet_path",
    "csv_path",
]


class _CStreamOnly:
    def __init__(self, inner: pl.DataFrame):
        self.inner = inner

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self.inner.__arrow_c_stream__(requested_schema)


@pytest.mark.parametrize("kind", INPUT_KINDS)
def test_every_input_kind_lands_every_row(db, table, sql, peek, stored, tmp_path, kind):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, name text, price numeric(10,2), stock integer)')
    data = _inputs(tmp_path)[kind]
    if kind == "c_stream":
        data = _CStreamOnly(data)  # type: ignore[arg-type]
    result = db.bulk_create(table, data, batch_size=17)
    assert result.records_processed == 100
    assert result.success_count == 100 and result.failure_count == 0
    assert result.inserted == 100
    assert result.batches == 6  # ceil(100 / 17)
    assert _landed(stored, table) == _expected(peek, "DECIMAL(10,2)")


def test_input_is_never_modified(db, table):  # type: ignore[no-untyped-def]
    rows = [{"id": 1, "meta": {"a": [1, 2]}, "when": "2024-01-01T00:00:00+02:00"}]
    frozen = repr(rows)
    db.bulk_create(table, rows, primary_key="id")
    assert repr(rows) == frozen
    frame = pl.DataFrame({"id": [2], "meta": ['{"b": 1}'], "when": ["2024-01-02T00:00:00+00:00"]})
    before = frame.clone()
    db.bulk_create(table, frame)
    assert frame.equals(before)


def test_missing_table_is_created_with_typed_columns_and_primary_key(db, table, peek, stored):  # type: ignore[no-untyped-def]
    result = db.bulk_create(table, ROWS, primary_key="id")
    assert result.inserted == 100
    cols = {c.name: c for c in db.columns(table)}
    assert [(c.name, c.kind, c.primary_key) for c in cols.values()] == [
        ("id", "int64", True),
        ("name", "text", False),
        ("price", "decimal", False),
        ("stock", "int64", False),
    ]
    price = cols["price"]
    assert price.precision is not None and price.scale == 2  # the input's scale: cents stay exact
    # the names alone prove nothing: every value is stored as the database's own cast stores it
    assert _landed(stored, table) == _expected(peek, f"DECIMAL({price.precision},{price.scale})")


def test_keys_absent_from_some_records_become_null(db, table):  # type: ignore[no-untyped-def]
    rows = [{"id": 1, "a": "x"}, {"id": 2, "b": 5}, {"id": 3}]
    db.bulk_create(table, rows, primary_key="id")
    got = db.read(table, order_by="id").to_dicts()
    assert got == [
        {"id": 1, "a": "x", "b": None},
        {"id": 2, "a": None, "b": 5},
        {"id": 3, "a": None, "b": None},
    ]


def test_unknown_input_column_is_an_error_naming_it(db, table, sql, stored):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, name text)')
    with pytest.raises(SchemaError, match="colour"):
        db.bulk_create(table, [{"id": 1, "name": "a", "colour": "red"}])
    assert stored(table) == []


def test_uncastable_value_names_column_row_and_value(db, table, sql, stored):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, stock integer)')
    rows = [{"id": i, "stock": i} for i in range(10)] + [{"id": 10, "stock": "lots"}]
    with pytest.raises(SchemaError) as info:
        db.bulk_create(table, rows, batch_size=4)
    message = str(info.value)
    assert "'stock'" in message and "row 10" in message and "lots" in message
    assert stored(table) == []  # nothing of the call landed


def test_integer_overflow_is_reported_not_wrapped(db, table, sql, stored):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, small smallint)')
    with pytest.raises(SchemaError, match=r"'small', row 1: value 70000"):
        db.bulk_create(table, [{"id": 1, "small": 1}, {"id": 2, "small": 70000}])
    assert stored(table) == []  # not even the valid first row


def test_duplicate_key_with_error_mode_leaves_nothing(db, table, sql, stored):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, name text)')
    db.bulk_create(table, [{"id": 5, "name": "existing"}])
    rows = [{"id": i, "name": f"n{i}"} for i in range(1, 30)]  # id 5 collides in batch 1
    with pytest.raises(IntegrityError) as info:
        db.bulk_create(table, rows, batch_size=10)
    assert info.value.result is not None
    assert info.value.result.success_count == 0
    assert info.value.result.records_processed == info.value.result.failure_count
    assert stored(table) == [(5, "existing")]


def test_failure_in_a_later_batch_rolls_back_earlier_batches(db, table, sql, stored):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, name text)')
    rows = [{"id": i, "name": "x"} for i in range(50)] + [{"id": 3, "name": "dup"}]
    with pytest.raises(IntegrityError):
        db.bulk_create(table, rows, batch_size=10)
    assert stored(table) == []


def test_conflict_skip_counts_and_keeps_existing(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, name text)')
    db.bulk_create(table, [{"id": 1, "name": "old1"}, {"id": 2, "name": "old2"}])
    rows = [
        {"id": 2, "name": "new2"},
        {"id": 3, "name": "new3"},
        {"id": 3, "name": "dup3"},
        {"id": 4, "name": "new4"},
    ]
    result = db.bulk_create(table, rows, conflict_resolution="skip", batch_size=3)
    assert (result.inserted, result.updated, result.skipped) == (2, 0, 2)
    assert result.success_count == 4 and result.records_processed == 4
    got = db.read(table, order_by="id").to_dicts()
    assert got == [
        {"id": 1, "name": "old1"},
        {"id": 2, "name": "old2"},
        {"id": 3, "name": "new3"},
        {"id": 4, "name": "new4"},
    ]


def test_conflict_update_counts_and_updates(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, name text, stock integer)')
    db.bulk_create(table, [{"id": 1, "name": "old1", "stock": 1}, {"id": 2, "name": "old2", "stock": 2}])
    rows = [{"id": 2, "name": "new2"}, {"id": 3, "name": "first3"}, {"id": 3, "name": "last3"}]
    result = db.bulk_create(table, rows, conflict_resolution="update")
    assert (result.inserted, result.updated, result.skipped) == (1, 2, 0)
    assert result.deduplicated == 1
    got = db.read(table, order_by="id").to_dicts()
    assert got == [
        {"id": 1, "name": "old1", "stock": 1},
        {"id": 2, "name": "new2", "stock": 2},  # stock not in the input: untouched
        {"id": 3, "name": "last3", "stock": None},
    ]


def test_conflict_fields_other_than_primary_key(db, table, sql):  # type: ignore[no-untyped-def]
    sql(
        f'CREATE TABLE "{table}" (id bigint primary key, name text, category text, price double precision, '
        f"UNIQUE (name, category))"
    )
    db.bulk_create(table, [{"id": 1, "name": "a", "category": "c", "price": 1.0}])
    result = db.bulk_create(
        table,
        [
            {"id": 2, "name": "a", "category": "c", "price": 2.0},
            {"id": 3, "name": "b", "category": "c", "price": 3.0},
        ],
        conflict_resolution="update",
        conflict_fields=["name", "category"],
    )
    assert (result.inserted, result.updated) == (1, 1)
    got = db.read(table, order_by="name").to_dicts()
    assert got == [
        {"id": 2, "name": "a", "category": "c", "price": 2.0},
        {"id": 3, "name": "b", "category": "c", "price": 3.0},
    ]


def test_skip_without_any_key_is_a_clear_error(db, table, sql, stored):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (name text)')
    with pytest.raises(SchemaError, match="conflict_fields"):
        db.bulk_create(table, [{"name": "a"}], conflict_resolution="skip")
    assert stored(table) == []


def test_unknown_option_is_refused_with_a_suggestion(db, table, stored):  # type: ignore[no-untyped-def]
    with pytest.raises(OptionError, match=r"'batchsize' \(did you mean 'batch_size'\?\)"):
        db.bulk_create(table, ROWS, batchsize=10)
    assert stored(table) is None  # refused before anything was created
    with pytest.raises(ValueError, match="conflict_resolution='replace'"):
        db.bulk_create(table, ROWS, conflict_resolution="replace")
    assert stored(table) is None


def test_empty_input_is_a_clean_no_op(db, table):  # type: ignore[no-untyped-def]
    result = db.bulk_create(table, [])
    assert (result.records_processed, result.success_count, result.failure_count) == (0, 0, 0)


def test_result_fields_and_to_dict(db, table):  # type: ignore[no-untyped-def]
    result = db.bulk_create(table, ROWS, primary_key="id", batch_size=40)
    d = result.to_dict()
    for key in (
        "records_processed",
        "success_count",
        "failure_count",
        "inserted",
        "updated",
        "skipped",
        "batches",
        "duration_seconds",
        "rows_per_second",
    ):
        assert key in d
    assert d["records_processed"] == d["success_count"] + d["failure_count"] == 100
    assert d["batches"] == 3
    assert d["duration_seconds"] > 0 and d["rows_per_second"] > 0


def test_progress_callback_sees_monotone_counts(db, table):  # type: ignore[no-untyped-def]
    seen: list[bf.Progress] = []
    db.bulk_create(table, ROWS, batch_size=10, progress_callback=seen.append, progress_interval=25)
    processed = [p.processed for p in seen]
    assert processed == sorted(processed) and processed[-1] == 100
    assert processed == [30, 50, 80, 100]  # first batch end at or past each 25-row mark
    assert all(p.total == 100 for p in seen)


def test_hostile_identifiers_and_values_are_stored_literally(db):  # type: ignore[no-untyped-def]
    name = 'weird"; DROP TABLE x; --'
    rows = [{"id": 1, 'col"; --': "'); DROP TABLE students; --", "ü ñ": "ünïcødé 🚀"}]
    try:
        db.bulk_create(name, rows, primary_key="id")
        assert db.read(name).to_dicts() == rows
    finally:
        db.drop_table(name)


def test_naive_and_aware_timestamps_from_strings(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, "at" timestamptz, day date)')
    db.bulk_create(table, [{"id": 1, "at": "2024-01-01T12:00:00+02:00", "day": "2024-02-29"}])
    got = db.read(table).to_dicts()[0]
    assert got["at"] == dt.datetime(2024, 1, 1, 10, 0, tzinfo=dt.timezone.utc)
    assert got["day"] == dt.date(2024, 2, 29)


def test_pandas_input_with_nulls(db, table):  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({"id": [1, 2], "x": [1.5, None], "s": ["a", None]})
    db.bulk_create(table, frame, primary_key="id")
    got = db.read(table, order_by="id").to_dicts()
    assert got == [{"id": 1, "x": 1.5, "s": "a"}, {"id": 2, "x": None, "s": None}]


def test_batches_with_different_columns_stream_in_runs(db, table, sql):  # type: ignore[no-untyped-def]
    """Plain appends stream through one bulk call per run of equal columns; a batch with
    other columns starts a new call, and defaults still apply to the columns it lacks."""
    sql(f"CREATE TABLE \"{table}\" (id bigint primary key, a bigint, b text DEFAULT 'dflt')")
    rows = [{"id": i, "a": i} for i in range(25)] + [{"id": 100 + i, "b": "x"} for i in range(10)]
    result = db.bulk_create(table, rows, batch_size=10)
    assert (result.inserted, result.batches) == (35, 4)
    got = {r["id"]: r for r in db.read(table).to_dicts()}
    assert got[3] == {"id": 3, "a": 3, "b": "dflt"}  # batch without "b": the default
    assert got[24] == {"id": 24, "a": 24, "b": None}  # batch 3 mixes both kinds: absent keys are NULL
    assert got[105] == {"id": 105, "a": None, "b": "x"}


def test_progress_format_renders_for_callbacks_and_the_bar_follows_the_interval(db, table, capsys):  # type: ignore[no-untyped-def]
    texts: list[str] = []
    db.bulk_create(
        table,
        ROWS,
        batch_size=50,
        progress_callback=lambda p: texts.append(str(p)),
        progress_format="percentage",
        primary_key="id",
    )
    assert texts[0].startswith("50%,") and texts[-1].startswith("100%,")
    db.bulk_create(
        table,
        ROWS,
        batch_size=10,
        conflict_resolution="skip",
        progress_callback=True,
        progress_interval=50,
        progress_format="count",
    )
    err = capsys.readouterr().err
    assert "100/100" in err and "%|" not in err  # the count layout, no percentage bar


def test_bar_updates_every_progress_interval_rows() -> None:
    from bulkframe.progress import Reporter

    reporter = Reporter(True, total=100, interval=50, fmt="count")
    seen = []
    for _ in range(10):
        reporter.advance(10, 10, 0)
        seen.append(reporter.bar.n)
    reporter.close()
    assert seen == [0, 0, 0, 0, 50, 50, 50, 50, 50, 100]
