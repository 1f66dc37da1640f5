"""Two-way (full) verification by key-range hashes, on every backend."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import bulkframe as bf
from bulkframe.errors import DataError, InvalidOptionValueError, NotSupportedError, SchemaError
from bulkframe.ops.verify_canon import row_hashes
from bulkframe.ops.verify_sides import FrameSide, TableSide
from bulkframe.types import Column

UTC = dt.timezone.utc
COLUMNS = [
    Column("id", "int64", primary_key=True, nullable=False),
    Column("name", "text"),
    Column("price", "decimal", precision=10, scale=2),
    Column("score", "float64"),
    Column("ts", "timestamptz"),
    Column("qty", "int32"),
]


def _rows(n: int, start: int = 0) -> pl.DataFrame:
    ids = list(range(start, start + n))
    return pl.DataFrame(
        {
            "id": ids,
            "name": [f"n{i}" for i in ids],
            "price": [Decimal(i % 1000) / 100 for i in ids],
            "score": [i * 0.37 for i in ids],
            "ts": [
                dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=i, microseconds=i % 7) for i in ids
            ],
            "qty": [i % 50 for i in ids],
        },
        schema_overrides={"price": pl.Decimal(10, 2), "qty": pl.Int32},
    )


def _load(db: bf.Database, table: str, frame: pl.DataFrame) -> None:
    db.create_table(table, COLUMNS)
    db.bulk_create(table, frame)


def test_full_mode_finds_each_kind_of_difference_with_exact_counts(db, table, sql):  # type: ignore[no-untyped-def]
    source = _rows(2000)
    _load(db, table, source)
    assert db.verify(table, source).mode == "keys"  # rows as data: one-way unless asked
    clean = db.verify(table, source, mode="full")
    assert clean.mode == "full" and clean.ok
    assert (clean.checked, clean.matched, clean.table_rows, clean.only_in_table) == (2000, 2000, 2000, 0)

    sql(f'DELETE FROM "{table}" WHERE id IN (5, 900, 1999)')  # only in the source
    db.bulk_create(table, _rows(2, start=5000))  # only in the table
    sql(f"UPDATE \"{table}\" SET name = 'changed' WHERE id IN (10, 11, 12, 1500)")
    sql(f'UPDATE "{table}" SET qty = qty + 1 WHERE id IN (12, 700)')  # 12: two columns differ
    found = db.verify(table, source, mode="full", max_samples=2, leaf_size=8)
    assert not found.ok
    assert (found.missing, found.only_in_table, found.mismatched) == (3, 2, 5)
    assert found.column_differences == {"name": 4, "price": 0, "score": 0, "ts": 0, "qty": 2}
    assert (found.checked, found.table_rows, found.matched) == (2000, 1999, 2000 - 3 - 5)
    # samples are bounded, counts are not
    assert found.differences.height == 2 and found.source_only.height == 2 and found.table_only.height == 2
    assert set(found.differences.columns) == {"id", "field", "expected", "actual"}
    assert set(found.source_only["id"]) <= {5, 900, 1999} and set(found.table_only["id"]) == {5000, 5001}
    everything = db.verify(table, source, mode="full")
    diffs = everything.differences.sort("id", "field").to_dicts()
    assert {"id": 12, "field": "qty", "expected": "12", "actual": "13"} in diffs
    assert {"id": 1500, "field": "name", "expected": "n1500", "actual": "changed"} in diffs
    assert sorted(everything.missing_keys["id"]) == [5, 900, 1999]
    # only ranges that differ were fetched
    fetched = everything.metrics["rows_fetched"]
    assert fetched["target"] < 2000 if everything.metrics["hashed_in"]["target"] == "database" else True
    assert "by column: name=4, qty=2" in repr(everything)


@pytest.mark.not_yet(
    "mysql", raises=DataError, reason="a MySQL DOUBLE holds no infinity: the load refuses it"
)
def test_backend_hashes_agree_with_client_side_hashes(db, table):  # type: ignore[no-untyped-def]
    """The in-database digest (PostgreSQL) and the client-side Polars digest agree on the
    same logical values, edge cases included; on SQLite both are client-side over the rows
    read back, so the read path is checked too."""
    cols = [
        Column("id", "int64", primary_key=True, nullable=False),
        Column("i16", "int16"),
        Column("dec", "decimal", precision=12, scale=4),
        Column("f", "float64"),
        Column("f4", "float32"),
        Column("b", "bool"),
        Column("t", "text"),
        Column("d", "date"),
        Column("tm", "time"),
        Column("ts", "timestamp"),
        Column("tz", "timestamptz"),
        Column("u", "uuid"),
        Column("bin", "binary"),
    ]
    frame = pl.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "i16": [-32768, 0, None, 7],
            "dec": [Decimal("1.5000"), Decimal("-0.0100"), Decimal("12345678.9000"), None],
            "f": [-0.0, float("-inf"), 1e300, 0.1],  # (SQLite stores NaN as NULL)
            "f4": [1.5, None, -2.25, 3.0],
            "b": [True, False, None, True],
            "t": ["héllo ✓", "", None, "a\tb"],
            "d": [dt.date(1969, 12, 31), dt.date(2024, 2, 29), None, dt.date(1, 1, 1)],
            "tm": [dt.time(0, 0), dt.time(23, 59, 59, 999999), None, dt.time(12, 0, 0, 5)],
            "ts": [
                dt.datetime(1960, 1, 1),
                dt.datetime(2024, 5, 6, 7, 8, 9, 123456),
                None,
                dt.datetime(2000, 1, 1),
            ],
            "tz": [
                dt.datetime(2024, 1, 1, tzinfo=UTC),
                None,
                dt.datetime(1999, 12, 31, 23, 59, tzinfo=UTC),
                None,
            ],
            "u": ["0b2f5b6e-5c6b-4f5e-9f43-0d3f0e8a9c11", None, "ffffffff-ffff-ffff-ffff-ffffffffffff", None],
            "bin": [b"\x00\xff", b"", None, b"abc"],
        },
        schema_overrides={"i16": pl.Int16, "dec": pl.Decimal(12, 4), "f4": pl.Float32},
    )
    db.create_table(table, cols)
    db.bulk_create(table, frame)
    names = [c.name for c in cols]
    families = {n: _family(c.kind) for n, c in zip(names, cols, strict=True)}
    for tolerance in (None, 0.01):
        side = TableSide(db.sessions, bf.database._table_ref(table, None), 1000)
        client = FrameSide(frame, side.columns, 1000, table)
        try:
            for s in (side, client):
                s.prepare(names, families, tolerance)
            db_stats = side.bucket_stats(0, 1, None).sort("bucket")
            client_stats = client.bucket_stats(0, 1, None).sort("bucket")
        finally:
            side.close()
        assert db_stats.height == 4
        assert db_stats.equals(client_stats), (side.hashed_in, db_stats, client_stats)
    # and the digest is not trivially constant: one changed value changes the row's sum
    changed = frame.with_columns(
        pl.when(pl.col("id") == 2).then(pl.lit("x")).otherwise(pl.col("t")).alias("t")
    )
    hashed = row_hashes(changed, families, None)["__h1"].to_list()
    assert hashed != row_hashes(frame, families, None)["__h1"].to_list()


def _family(kind: str) -> str:
    from bulkframe.ops.verify_canon import FAMILIES

    return FAMILIES[kind]


def test_table_in_another_database_is_the_source(db, table, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The source is a SQLite file (another database); the target is the suite's backend."""
    source_frame = _rows(500)
    _load(db, table, source_frame.filter(pl.col("id") != 42))
    with bf.connect(f"sqlite:///{tmp_path / 'old.db'}") as old:
        old.create_table("legacy", COLUMNS)
        old.bulk_create("legacy", source_frame.with_columns(
            pl.when(pl.col("id") == 7).then(pl.lit("old")).otherwise(pl.col("name")).alias("name")
        ))  # fmt: skip
        found = db.verify(table, bf.TableSource(old, "legacy"))
    assert (found.checked, found.missing, found.mismatched, found.only_in_table) == (500, 1, 1, 0)
    assert found.column_differences["name"] == 1
    assert found.differences.to_dicts() == [{"id": 7, "field": "name", "expected": "old", "actual": "n7"}]
    # a URL works too, and the other direction: the suite's table as the source of a SQLite one
    by_url = db.verify(table, bf.TableSource(f"sqlite:///{tmp_path / 'old.db'}", "legacy"), mode="full")
    assert (by_url.missing, by_url.mismatched) == (1, 1)
    with bf.connect(f"sqlite:///{tmp_path / 'old.db'}") as old:
        back = old.verify("legacy", bf.TableSource(db, table))
    assert (back.missing, back.only_in_table, back.mismatched) == (0, 1, 1)


def test_dataframe_and_parquet_sources(db, table, tmp_path: Path, sql) -> None:  # type: ignore[no-untyped-def]
    frame = _rows(3000)
    _load(db, table, frame)
    sql(f'DELETE FROM "{table}" WHERE id = 2500')
    path = tmp_path / "source.parquet"
    frame.write_parquet(path, row_group_size=500)
    for source in (frame, frame.lazy(), frame.to_arrow(), path, str(path)):
        found = db.verify(table, source, batch_size=700, mode="full")
        assert (found.checked, found.missing, found.mismatched, found.only_in_table) == (3000, 1, 0, 0), type(
            source
        )
        assert found.missing_keys["id"].to_list() == [2500]


def test_decimal_scale_and_time_zones_are_normalised(db, table, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db.create_table(
        table,
        [
            Column("id", "int64", primary_key=True, nullable=False),
            Column("amount", "decimal", precision=10, scale=2),
            Column("at", "timestamp"),
        ],
    )
    db.bulk_create(
        table,
        [
            {"id": 1, "amount": Decimal("1.50"), "at": dt.datetime(2024, 1, 1, 10, 0)},
            {"id": 2, "amount": Decimal("2.00"), "at": dt.datetime(2024, 1, 1, 11, 0)},
        ],
    )
    with bf.connect(f"sqlite:///{tmp_path / 'src.db'}") as src:
        src.create_table(
            "s",
            [
                Column("id", "int64", primary_key=True, nullable=False),
                Column("amount", "decimal", precision=20, scale=6),  # stored as exact text
                Column("at", "timestamptz"),
            ],
        )
        berlin = dt.timezone(dt.timedelta(hours=2))
        src.bulk_create(
            "s",
            [
                {"id": 1, "amount": Decimal("1.500000"), "at": dt.datetime(2024, 1, 1, 12, 0, tzinfo=berlin)},
                {"id": 2, "amount": Decimal("2.000001"), "at": dt.datetime(2024, 1, 1, 11, 0, tzinfo=UTC)},
            ],
        )
        found = db.verify(table, bf.TableSource(src, "s"))
    # 1.500000 == 1.50 and 12:00+02:00 == 10:00 (UTC wall time); 2.000001 != 2.00
    assert (found.mismatched, found.column_differences) == (1, {"amount": 1, "at": 0})
    assert found.differences.to_dicts() == [
        {"id": 2, "field": "amount", "expected": "2.000001", "actual": "2.00"}
    ]


def test_float_tolerance_compares_by_value(db, table) -> None:  # type: ignore[no-untyped-def]
    frame = _rows(1000)
    _load(db, table, frame)
    nudged = frame.with_columns(
        pl.when(pl.col("id") % 100 == 0)
        .then(pl.col("score") + 1e-9)
        .otherwise(pl.col("score"))
        .alias("score")
    )
    assert db.verify(table, nudged, mode="full").column_differences["score"] == 10  # bit-exact by default
    close = db.verify(table, nudged, mode="full", float_tolerance=1e-6)
    assert close.ok and close.column_differences["score"] == 0
    far = nudged.with_columns(
        pl.when(pl.col("id") == 3).then(pl.col("score") + 0.5).otherwise(pl.col("score"))
    )
    found = db.verify(table, far, mode="full", float_tolerance=1e-6)
    assert (found.mismatched, found.column_differences["score"]) == (1, 1)
    assert db.verify(table, far, mode="keys", float_tolerance=1e-6).mismatched == 1


def test_sample_mode_says_how_confident_a_clean_sample_is(db, table) -> None:  # type: ignore[no-untyped-def]
    frame = _rows(1000)
    _load(db, table, frame)
    clean = db.verify(table, frame, sample=300)
    assert clean.ok and clean.mode == "sample" and clean.checked == 300 and clean.population == 1000
    assert clean.max_difference_rate == pytest.approx(3 / 300)
    assert "no difference in 300 sampled rows" in clean.confidence and "rule of three" in clean.confidence
    assert "rule of three" in repr(clean)
    bad = frame.with_columns(pl.col("name") + "x")
    dirty = db.verify(table, bad, mode="sample")
    assert dirty.checked == 1000 and dirty.mismatched == 1000 and "every one" in dirty.confidence
    some = db.verify(table, bad, sample=100)
    assert some.mismatched == 100 and some.max_difference_rate == pytest.approx(1.0)
    assert math.isclose(db.verify(table, frame, sample=10).max_difference_rate, 0.3)


def test_full_mode_needs_an_integer_key_and_options_are_checked(db, table) -> None:  # type: ignore[no-untyped-def]
    rows = [{"code": f"c{i}", "v": i} for i in range(10)]
    db.bulk_create(table, rows, primary_key="code")
    with pytest.raises(NotSupportedError, match="one integer key column"):
        db.verify(table, rows, mode="full")
    auto = db.verify(table, rows)  # a text key: every row looked up by key
    assert auto.mode == "keys" and auto.ok and auto.only_in_table is None
    with pytest.raises(
        InvalidOptionValueError, match="mode='both' is not valid; choose one of: 'full', 'keys', 'sample'"
    ):
        db.verify(table, rows, mode="both")
    with pytest.raises(InvalidOptionValueError, match="float_tolerance must be a positive"):
        db.verify(table, rows, float_tolerance=-1)
    with pytest.raises(InvalidOptionValueError, match="sample= applies to mode='sample'"):
        db.verify(table, rows, sample=3, mode="full")
    with pytest.raises(SchemaError, match="cannot be compared"):
        _mismatched_kinds(db, table)


def _mismatched_kinds(db: bf.Database, table: str) -> Any:
    other = f"{table}_o"
    db.create_table(other, [Column("id", "int64", primary_key=True), Column("v", "text")])
    try:
        db.create_table(f"{table}_n", [Column("id", "int64", primary_key=True), Column("v", "int64")])
        try:
            return db.verify(f"{table}_n", bf.TableSource(db, other))
        finally:
            db.drop_table(f"{table}_n")
    finally:
        db.drop_table(other)


@pytest.mark.not_yet(
    "mysql", raises=KeyError, reason="MySQL has no FULL OUTER JOIN: verify compares by key-range hashes"
)
def test_tables_in_the_same_database_are_compared_by_one_join(db, table, sql) -> None:  # type: ignore[no-untyped-def]
    """Same counts as the hash path, any key (here text), float tolerance and JSON by meaning."""
    source = f"{table}_src"
    rows = [{"code": f"c{i:04d}", "x": i / 3, "meta": {"a": i, "b": [1, 2]}, "n": i} for i in range(300)]
    db.bulk_create(source, rows, primary_key="code")
    try:
        db.bulk_create(table, rows, primary_key="code")
        same = db.verify(table, bf.TableSource(db, source))
        assert same.ok and same.metrics["strategy"] == "join" and same.checked == same.table_rows == 300
        sql(f"DELETE FROM \"{table}\" WHERE code IN ('c0001', 'c0002')")
        sql(f"UPDATE \"{table}\" SET n = n + 1 WHERE code = 'c0100'")
        sql(f"UPDATE \"{table}\" SET x = x + 0.000001 WHERE code = 'c0200'")
        db.bulk_create(table, [{"code": "zzz", "x": 1.0, "meta": None, "n": 1}])
        found = db.verify(table, bf.TableSource(db.url, source), mode="full")
        assert (found.missing, found.only_in_table, found.mismatched) == (2, 1, 2)
        assert found.column_differences == {"x": 1, "meta": 0, "n": 1}
        assert found.table_only["code"].to_list() == ["zzz"]
        assert sorted(found.missing_keys["code"]) == ["c0001", "c0002"]
        assert db.verify(table, bf.TableSource(db, source), float_tolerance=1e-3).column_differences["x"] == 0
    finally:
        db.drop_table(source)


def test_a_join_by_unique_keys_walks_the_indexes_only_inside_its_own_transaction(  # type: ignore[no-untyped-def]
    db, table, monkeypatch
) -> None:
    """Both tables unique on the key: the backend's ``prefer_ordered_join`` runs in the
    verification's read transaction (PostgreSQL: ``SET LOCAL enable_hashjoin = off``) and
    nothing of it is left on the pooled connection afterwards.  Without a unique key on
    one side the planner is left alone."""
    if not db.backend.capabilities.full_outer_join:
        pytest.skip("no FULL OUTER JOIN: verify compares key-range hashes")
    source = f"{table}_src"
    calls: list[object] = []
    hook = type(db.backend).prefer_ordered_join
    monkeypatch.setattr(
        type(db.backend), "prefer_ordered_join", lambda self, conn: calls.append(hook(self, conn))
    )
    rows = [{"id": i, "v": f"v{i}"} for i in range(50)]
    db.bulk_create(source, rows, primary_key="id")
    try:
        db.bulk_create(table, rows[:-1], primary_key="id")
        found = db.verify(table, bf.TableSource(db, source), mode="full")
        assert (found.missing, found.mismatched, found.metrics["strategy"]) == (1, 0, "join")
        assert len(calls) == 1
        if db.backend.name == "postgresql":
            with db.session(write=False) as conn:
                assert conn.scalar("SELECT current_setting('enable_hashjoin')") == "on"
        db.drop_table(table)
        db.bulk_create(table, rows)  # no key at all on this side
        assert db.verify(table, bf.TableSource(db, source), mode="full", key="id").ok
        assert len(calls) == 1
    finally:
        db.drop_table(source)
