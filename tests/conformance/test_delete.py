"""bulk_delete on every backend: filter / ids, soft and hard, cascade, dry_run,
max_delete_count, confirmation, backups, key-range batches, hostile input."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

import bulkframe as bf
from bulkframe.errors import (
    ExpressionError,
    InvalidOptionValueError,
    NotSupportedError,
    OptionError,
    SafetyLimitError,
    SchemaError,
)

DDL = (
    "(id bigint primary key, name text, category text, price numeric(10,2), stock integer, "
    "active boolean, created_at date, deleted_at timestamptz)"
)


def _products(n: int) -> list[dict[str, object]]:
    return [
        {
            "id": i,
            "name": f"P{i}",
            "category": "discontinued" if i % 4 == 0 else "live",
            "price": Decimal(f"{i}.25"),
            "stock": i % 3,
            "active": i % 2 == 0,
            "created_at": f"202{i % 4}-06-01",
        }
        for i in range(1, n + 1)
    ]


@pytest.fixture
def products(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" {DDL}')
    db.bulk_create(table, _products(40))
    return table


@pytest.fixture
def children(db, products, sql):  # type: ignore[no-untyped-def]
    """reviews (FK to products) and ratings (a product_id column without a FK)."""
    names = (f"{products}_reviews", f"{products}_ratings")
    sql(
        f'CREATE TABLE "{names[0]}" (rid bigint primary key, '
        f'product_id bigint REFERENCES "{products}" (id), body text, deleted_at timestamptz)'
    )
    sql(f'CREATE TABLE "{names[1]}" (rid bigint primary key, product_id bigint, stars integer)')
    db.bulk_create(names[0], [{"rid": i, "product_id": (i % 40) + 1, "body": "ok"} for i in range(80)])
    db.bulk_create(names[1], [{"rid": i, "product_id": (i % 40) + 1, "stars": 5} for i in range(40)])
    yield names
    for name in names:
        db.drop_table(name)


def _ids(db: bf.Database, table: str) -> list[int]:
    return db.read(table, order_by=db.read(table).columns[0])[db.read(table).columns[0]].to_list()


def _snapshot(db: bf.Database, *tables: str) -> list[pl.DataFrame]:
    return [db.read(t, order_by=db.columns(t)[0].name) for t in tables]


def test_filter_delete(db, products):  # type: ignore[no-untyped-def]
    spec = {"active": False, "created_at": {"$lt": "2022-01-01"}, "stock": 0}
    expected = [
        r["id"]
        for r in _products(40)
        if not r["active"] and str(r["created_at"]) < "2022-01-01" and r["stock"] == 0
    ]
    result = db.bulk_delete(products, spec, batch_size=1000)
    assert result.deleted == result.records_processed == result.success_count == len(expected) > 0
    assert _ids(db, products) == [i for i in range(1, 41) if i not in expected]


def test_ids_short_and_long_lists_with_not_found(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" {DDL}')
    db.bulk_create(table, _products(3000))
    short = db.bulk_delete(table, ids=[1, 2, 3, 4, 5, 999_999], hard_delete=True, batch_size=100)
    assert (short.deleted, short.not_found, short.not_found_ids) == (5, 1, [999_999])
    assert (short.records_processed, short.success_count, short.failure_count) == (6, 5, 1)
    long_ids = [-7, *range(6, 2006), -1, -2, 6]  # staged join; a repeated id counts once
    result = db.bulk_delete(table, ids=long_ids)
    # listed in input order, whatever plan the server picks
    assert (result.deleted, result.not_found, result.not_found_ids) == (2000, 3, [-7, -1, -2])
    assert result.records_processed == 2003
    assert _ids(db, table) == list(range(2006, 3001))


def test_ids_on_a_composite_key(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (a text, b integer, v text, PRIMARY KEY (a, b))')
    db.bulk_create(table, [{"a": x, "b": y, "v": "."} for x in "xyz" for y in range(3)])
    result = db.bulk_delete(table, ids=[("x", 0), ("y", 2), ("q", 1)])
    assert (result.deleted, result.not_found_ids) == (2, [("q", 1)])
    left = {(r["a"], r["b"]) for r in db.read(table).to_dicts()}
    assert ("x", 0) not in left and ("y", 2) not in left and len(left) == 7


def test_empty_selection_needs_all_rows(db, products, sql):  # type: ignore[no-untyped-def]
    for empty in (None, {}, {"$and": [{}]}):
        with pytest.raises(InvalidOptionValueError, match="all_rows"):
            db.bulk_delete(products, empty)
    assert len(_ids(db, products)) == 40
    assert db.bulk_delete(products, ids=[]).deleted == 0
    assert db.bulk_delete(products, all_rows=True).deleted == 40
    assert sql(f'SELECT count(*) FROM "{products}"') == [(0,)]


def test_soft_delete_sets_deleted_at_and_skips_marked_rows(db, products):  # type: ignore[no-untyped-def]
    result = db.bulk_delete(products, {"category": "discontinued"}, soft_delete=True)
    assert result.deleted == 10
    frame = db.read(products, order_by="id")
    marked = frame.filter(pl.col("deleted_at").is_not_null())["id"].to_list()
    assert marked == [i for i in range(1, 41) if i % 4 == 0] and len(frame) == 40
    again = db.bulk_delete(products, ids=[4, 8, 1], soft_delete=True)
    assert (again.deleted, again.skipped, again.records_processed) == (1, 2, 3)


def test_soft_delete_without_the_column_is_a_clear_error(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, name text)')
    db.bulk_create(table, [{"id": 1, "name": "a"}])
    with pytest.raises(SchemaError, match="ALTER TABLE"):
        db.bulk_delete(table, ids=[1], soft_delete=True)
    with pytest.raises(InvalidOptionValueError, match="contradict"):
        db.bulk_delete(table, ids=[1], soft_delete=True, hard_delete=True)
    assert _ids(db, table) == [1]


@pytest.mark.not_yet(
    "duckdb",
    raises=NotSupportedError,
    reason="DuckDB checks a foreign key against the rows as they were when the transaction began: "
    "a parent cannot be deleted in the transaction that deleted its children",
)
def test_cascade_by_foreign_key_and_by_named_column(db, products, children):  # type: ignore[no-untyped-def]
    reviews, ratings = children
    result = db.bulk_delete(products, {"id": {"$in": [1, 2]}}, cascade=[reviews])
    assert result.deleted == 2 and result.metrics["cascade"] == {reviews: 4}
    result = db.bulk_delete(products, ids=[3], cascade={reviews: "product_id", ratings: "product_id"})
    assert result.metrics["cascade"] == {reviews: 2, ratings: 1}
    assert sorted(set(db.read(reviews)["product_id"])) == list(range(4, 41))
    assert sorted(set(db.read(ratings)["product_id"])) == [1, 2, *range(4, 41)]
    before = _snapshot(db, products, reviews, ratings)
    with pytest.raises(SchemaError, match="no foreign key"):
        db.bulk_delete(products, ids=[5], cascade=[ratings])
    assert all(a.equals(b) for a, b in zip(before, _snapshot(db, products, reviews, ratings), strict=True))


def test_soft_cascade(db, products, children):  # type: ignore[no-untyped-def]
    reviews, _ = children
    result = db.bulk_delete(products, ids=[7], soft_delete=True, cascade=[reviews])
    assert result.deleted == 1 and result.metrics["cascade"] == {reviews: 2}
    rows = db.read(reviews).filter(pl.col("product_id") == 7)
    assert rows["deleted_at"].is_not_null().all() and len(rows) == 2


def test_dry_run_changes_nothing(db, products, children):  # type: ignore[no-untyped-def]
    reviews, ratings = children
    before = _snapshot(db, products, reviews, ratings)
    result = db.bulk_delete(
        products,
        {"category": "discontinued"},
        dry_run=True,
        sample_size=3,
        cascade=[reviews],
        backup_before_delete=True,
        backup_location="/nonexistent/x.csv",
    )
    assert result.dry_run and result.deleted == 10 and result.metrics["cascade"] == {reviews: 20}
    assert isinstance(result.data, pl.DataFrame) and len(result.data) == 3
    assert set(result.data["category"]) == {"discontinued"}
    assert all(a.equals(b) for a, b in zip(before, _snapshot(db, products, reviews, ratings), strict=True))


def test_dry_run_with_a_long_id_list_reports_missing_ids(db, products):  # type: ignore[no-untyped-def]
    ids = [*range(1, 1500)]
    result = db.bulk_delete(products, ids=ids, dry_run=True)
    assert (result.deleted, result.not_found, result.records_processed) == (40, 1459, 1499)
    assert result.not_found_ids[:2] == [41, 42]
    assert len(_ids(db, products)) == 40


def test_max_delete_count(db, products):  # type: ignore[no-untyped-def]
    before = _snapshot(db, products)
    with pytest.raises(SafetyLimitError, match="10 rows") as info:
        db.bulk_delete(products, {"category": "discontinued"}, max_delete_count=9)
    assert info.value.result is not None and info.value.result.deleted == 0
    assert _snapshot(db, products)[0].equals(before[0])
    assert db.bulk_delete(products, {"category": "discontinued"}, max_delete_count=10).deleted == 10


def test_confirm_delete_with_a_callable(db, products):  # type: ignore[no-untyped-def]
    seen: list[tuple[int, int]] = []

    def no(count: int, sample: pl.DataFrame) -> bool:
        seen.append((count, len(sample)))
        return False

    before = _snapshot(db, products)
    result = db.bulk_delete(products, {"category": "discontinued"}, confirm_delete=no, sample_size=4)
    assert seen == [(10, 4)] and result.deleted == 0 and result.skipped == 10 and result.warnings
    assert _snapshot(db, products)[0].equals(before[0])
    result = db.bulk_delete(products, {"category": "discontinued"}, confirm_delete=lambda n, s: n == 10)
    assert result.deleted == 10


def test_confirm_delete_true_needs_a_terminal(db, products, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    with pytest.raises(SafetyLimitError, match="no terminal"):
        db.bulk_delete(products, ids=[1], confirm_delete=True)
    assert 1 in _ids(db, products)

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Tty("y\n"))
    assert db.bulk_delete(products, ids=[1], confirm_delete=True).deleted == 1
    monkeypatch.setattr("sys.stdin", Tty("n\n"))
    assert db.bulk_delete(products, ids=[2], confirm_delete=True).deleted == 0
    assert _ids(db, products)[:2] == [2, 3]


@pytest.mark.not_yet(
    "duckdb",
    raises=NotSupportedError,
    reason="DuckDB checks a foreign key against the rows as they were when the transaction began: "
    "a parent cannot be deleted in the transaction that deleted its children",
)
@pytest.mark.parametrize("suffix", [".parquet", ".json", ".jsonl", ".csv"])
def test_backup_before_delete(db, products, children, tmp_path, suffix):  # type: ignore[no-untyped-def]
    reviews, _ = children
    location = tmp_path / "backup" / f"deleted{suffix}"
    expected = db.read(products, order_by="id").filter(pl.col("category") == "discontinued")
    result = db.bulk_delete(
        products,
        {"category": "discontinued"},
        cascade=[reviews],
        backup_before_delete=True,
        backup_location=str(location),
    )
    assert result.deleted == 10 and result.metrics["backup_location"] == str(location)
    saved = _read_backup(location)
    assert sorted(saved["id"].to_list()) == expected["id"].to_list()
    assert [str(v) for v in saved.sort("id")["price"].to_list()] == [str(v) for v in expected["price"]]
    child = _read_backup(location.with_name(f"deleted.{reviews}{suffix}"))
    assert len(child) == 20 and set(child["product_id"]) == set(expected["id"])


def _read_backup(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    if path.suffix == ".csv":
        return pl.read_csv(path)
    if path.suffix == ".jsonl":
        return pl.read_ndjson(path)
    return pl.DataFrame(json.loads(path.read_text()))


def test_failed_backup_deletes_nothing(db, products, tmp_path):  # type: ignore[no-untyped-def]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    before = _snapshot(db, products)
    with pytest.raises(SafetyLimitError, match="nothing was deleted"):
        db.bulk_delete(
            products,
            ids=[1, 2],
            backup_before_delete=True,
            backup_location=str(blocker / "sub" / "b.parquet"),
        )
    assert _snapshot(db, products)[0].equals(before[0])
    with pytest.raises(InvalidOptionValueError, match=r"\.xlsx"):
        db.bulk_delete(products, ids=[1], backup_before_delete=True, backup_location=str(tmp_path / "b.xlsx"))
    with pytest.raises(InvalidOptionValueError, match="backup_before_delete"):
        db.bulk_delete(products, ids=[1], backup_location=str(tmp_path / "b.csv"))


def test_batch_size_bounds_rows_per_statement(db, products):  # type: ignore[no-untyped-def]
    result = db.bulk_delete(products, {"id": {"$gt": 5}}, batch_size=8)
    assert result.deleted == 35 and result.batches == 5
    assert _ids(db, products) == [1, 2, 3, 4, 5]


def test_unknown_options_and_columns(db, products):  # type: ignore[no-untyped-def]
    with pytest.raises(OptionError, match="cleanup_related"):
        db.bulk_delete(products, {"id": 1}, cleanup_related=True)
    with pytest.raises(ExpressionError, match="colour"):
        db.bulk_delete(products, {"colour": "red"})
    with pytest.raises(InvalidOptionValueError, match="max_delete_count"):
        db.bulk_delete(products, {"id": 1}, max_delete_count=-1)
    with pytest.raises(InvalidOptionValueError, match="ids"):
        db.bulk_delete(products, ids="1,2")
    assert len(_ids(db, products)) == 40


def test_hostile_identifiers_and_values(db, tmp_path):  # type: ignore[no-untyped-def]
    name = 'del"; DROP TABLE x; -- ü'
    col = 'v"; --'
    evil = "'); DELETE FROM x; --"
    db.drop_table(name)
    try:
        db.bulk_create(
            name, [{"id": 1, col: evil}, {"id": 2, col: "🚀"}, {"id": 3, col: "x"}], primary_key="id"
        )
        assert db.bulk_delete(name, {col: evil}).deleted == 1
        assert (
            db.bulk_delete(
                name,
                {col: {"$in": ["🚀", "'; --"]}},
                backup_before_delete=True,
                backup_location=str(tmp_path / "hostile.jsonl"),
            ).deleted
            == 1
        )
        assert [r[col] for r in db.read(name).to_dicts()] == ["x"]
    finally:
        db.drop_table(name)
