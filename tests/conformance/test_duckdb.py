"""DuckDB-only behaviour: its own types (HUGEINT, ENUM, wide DECIMAL), one DuckDB instance
shared with the user's own ``duckdb.connect`` in the process, the file lock across
processes, in-memory URLs, conflicts classified as transient.  Values are read back
through the ``duckdb`` module (the suite's independent client for DuckDB)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import bulkframe as bf
from bulkframe.errors import NotSupportedError, SchemaError, TransientError
from bulkframe.types import Column


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "copy.duckdb"


def _peek(path: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with duckdb.connect(str(path)) as con:
        return list(con.execute(sql).fetchall())


def test_duckdb_types_round_trip(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TYPE mood AS ENUM ('calm', 'busy'); CREATE TABLE t (id BIGINT PRIMARY KEY, "
            'h HUGEINT, d DECIMAL(38,10), m mood, u UUID, j JSON, b BLOB, "at" TIMESTAMPTZ, tm TIME)'
        )
    key = uuid.uuid4()
    at = dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    row = {
        "id": 1,
        "h": Decimal(10**37 + 7),
        "d": Decimal("1234567890123456789012345678.0123456789"),
        "m": "busy",
        "u": key,
        "j": '{"a": 1.50, "b": [true, null]}',
        "b": b"\x00\xff",
        "at": at,
        "tm": dt.time(12, 34, 56, 789),
    }
    with bf.connect(f"duckdb:///{path}") as db:
        assert db.bulk_create("t", [row]).success_count == 1
        kinds = {c.name: (c.kind, c.precision, c.scale) for c in db.columns("t")}
        assert kinds["h"] == ("decimal", 38, 0) and kinds["m"][0] == "text"
        back = db.read("t").to_dicts()[0]
    assert back["h"] == row["h"] and back["d"] == row["d"] and back["m"] == "busy"
    assert back["u"] == str(key) and back["at"] == at
    stored = _peek(path, 'SELECT h, d, m::VARCHAR, u, j::VARCHAR, b, "at", tm FROM t')
    assert stored == [
        (10**37 + 7, row["d"], "busy", key, row["j"], b"\x00\xff", at, dt.time(12, 34, 56, 789))
    ]


def test_a_value_outside_an_enum_is_refused_and_nothing_lands(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TYPE mood AS ENUM ('calm', 'busy'); CREATE TABLE t (id BIGINT PRIMARY KEY, m mood)"
        )
    with bf.connect(f"duckdb:///{path}") as db, pytest.raises(bf.errors.DataError, match="sleepy"):
        db.bulk_create("t", [{"id": 1, "m": "calm"}, {"id": 2, "m": "sleepy"}])
    assert _peek(path, "SELECT count(*) FROM t") == [(0,)]


def test_a_decimal_wider_than_38_digits_is_refused_when_the_table_is_made(path: Path) -> None:
    with bf.connect(f"duckdb:///{path}") as db, pytest.raises(SchemaError, match=r"'x'.*DECIMAL\(40,2\)"):
        db.create_table(
            "t", [Column("id", "int64", primary_key=True), Column("x", "decimal", precision=40, scale=2)]
        )


def test_varchar_length_is_kept_as_a_check_and_read_back(path: Path) -> None:
    with bf.connect(f"duckdb:///{path}") as db:
        db.create_table("t", [Column("id", "int64", primary_key=True), Column("code", "text", length=3)])
        assert {c.name: c.length for c in db.columns("t")}["code"] == 3
        result = db.bulk_create(
            "t", [{"id": 1, "code": "abc"}, {"id": 2, "code": "abcd"}], error_strategy="continue"
        )
        assert (result.success_count, result.failure_count) == (1, 1)
    with duckdb.connect(str(path)) as con, pytest.raises(duckdb.ConstraintException):
        con.execute("INSERT INTO t VALUES (3, 'long')")  # DuckDB itself keeps the limit too


def test_the_users_own_connection_shares_the_instance(path: Path) -> None:
    """One DuckDB instance per file per process: a ``duckdb.connect`` next to an open
    Database sees what bulkframe committed, and bulkframe sees what it committed."""
    with bf.connect(f"duckdb:///{path}") as db:
        db.bulk_create("t", [{"id": i, "v": i} for i in range(10)], primary_key="id")
        mine = duckdb.connect(str(path))
        try:
            assert mine.execute("SELECT count(*), sum(v) FROM t").fetchall() == [(10, 45)]
            mine.execute("INSERT INTO t VALUES (100, 1)")
            assert db.bulk_upsert("t", [{"id": 100, "v": 2}]).updated == 1
            assert mine.execute("SELECT v FROM t WHERE id = 100").fetchall() == [(2,)]
        finally:
            mine.close()


def test_another_process_waits_for_close(path: Path) -> None:
    script = (
        "import sys, duckdb\n"
        "try:\n    duckdb.connect(sys.argv[1]).close(); print('opened')\n"
        "except duckdb.IOException as e:\n    print('locked' if 'lock' in str(e) else e)\n"
    )

    def other() -> str:
        run = subprocess.run(
            [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
        )
        return run.stdout.strip()

    db = bf.connect(f"duckdb:///{path}")
    db.bulk_create("t", [{"id": 1}], primary_key="id")
    assert other() == "locked"  # the pool keeps a connection open
    db.close()
    assert other() == "opened"


def test_a_locked_file_is_a_transient_error(path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, duckdb; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
         "sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(TransientError, match="lock") as info:
            bf.connect(f"duckdb:///{path}").bulk_create("t", [{"id": 1}])
        assert info.value.sqlstate == "55P03"
    finally:
        holder.communicate("")


def test_memory_urls(tmp_path: Path) -> None:
    with bf.connect("duckdb:///:memory:") as one, bf.connect("duckdb:///:memory:") as two:
        one.bulk_create("t", [{"id": 1, "v": 1}, {"id": 2, "v": 2}], primary_key="id")
        assert one.bulk_update("t", [{"id": 2, "v": 3}]).updated == 1  # another pooled connection
        assert one.read("t", order_by="id")["v"].to_list() == [1, 3]
        assert two.columns("t") is None or not two.columns("t")  # a private database each
    with pytest.raises(NotSupportedError, match="URL options"):
        bf.connect(f"duckdb:///{tmp_path / 'x.duckdb'}?threads=1")


def test_a_conflict_with_another_writer_is_transient(path: Path) -> None:
    with bf.connect(f"duckdb:///{path}") as db:
        db.bulk_create("t", [{"id": 1, "v": 0}], primary_key="id")
        other = duckdb.connect(str(path))
        try:
            other.execute("BEGIN; UPDATE t SET v = 1 WHERE id = 1")
            with pytest.raises(TransientError) as info:
                db.bulk_update("t", [{"id": 1, "v": 2}])
            assert info.value.sqlstate == "40001"
            other.execute("COMMIT")
        finally:
            other.close()
        assert db.read("t")["v"].to_list() == [1]


def test_sequence_ids_follow_the_input_order(path: Path) -> None:
    """DuckDB evaluates DEFAULT nextval(…) on parallel threads; bulkframe draws the ids in
    row order instead, as PostgreSQL and SQLite number rows."""
    n = 30_000
    with bf.connect(f"duckdb:///{path}") as db:
        db.create_table("t", [Column("id", "int64", primary_key=True), Column("i", "int64")], identity="id")
        db.bulk_create("t", [{"i": i} for i in range(n)], batch_size=7_000)  # streamed batches
        db.bulk_create("t", pa.table({"i": pa.array(range(n, 2 * n), pa.int64())}))  # one table
    assert _peek(path, "SELECT count(*) FROM t WHERE id <> i + 1") == [(0,)]
    assert _peek(path, "SELECT max(id) FROM t") == [(2 * n,)]


def test_a_stream_is_inserted_in_bounded_parts_in_input_order(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A streamed load is gathered into tables of bounded size (DuckDB scans a table on all
    its threads): every row arrives once, ids drawn in input order across the parts."""
    import bulkframe.backends.duckdb as duck

    monkeypatch.setattr(duck, "_PART_ROWS", 5_000)
    parts: list[int] = []
    gather = duck._in_memory_parts

    def counted(data: pa.Table | pa.RecordBatchReader) -> object:
        for part in gather(data):
            parts.append(part.num_rows)
            yield part

    monkeypatch.setattr(duck, "_in_memory_parts", counted)
    n = 23_000
    with bf.connect(f"duckdb:///{path}") as db:
        db.create_table("t", [Column("id", "int64", primary_key=True), Column("i", "int64")], identity="id")
        result = db.bulk_create("t", ({"i": i} for i in range(n)), batch_size=2_000)
    assert result.success_count == n
    assert len(parts) >= 4 and sum(parts) == n and max(parts) < 5_000 + 2_000
    assert _peek(path, "SELECT count(*), count(DISTINCT i), min(i), max(i) FROM t") == [(n, n, 0, n - 1)]
    assert _peek(path, "SELECT count(*) FROM t WHERE id <> i + 1") == [(0,)]


def test_a_part_of_small_batches_is_inserted_as_one_chunk(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bulkframe's 10,000-row batches are copied into one chunk before DuckDB inserts them
    (each chunk would fill row groups of its own); chunks of a row group or more are kept."""
    import bulkframe.backends.duckdb as duck

    small = pa.Table.from_batches(pa.table({"i": list(range(50_000))}).to_batches(max_chunksize=10_000))
    assert small.column(0).num_chunks == 5
    assert duck._whole_row_groups(small).column(0).num_chunks == 1
    assert duck._whole_row_groups(small).equals(small)
    rows = 2 * duck._ROW_GROUP
    big = pa.Table.from_batches(pa.table({"i": list(range(rows))}).to_batches(max_chunksize=duck._ROW_GROUP))
    assert duck._whole_row_groups(big) is big
    inserted: list[int] = []
    whole = duck._whole_row_groups

    def seen(part: pa.Table) -> pa.Table:
        out = whole(part)
        inserted.append(out.column(0).num_chunks)
        return out

    monkeypatch.setattr(duck, "_whole_row_groups", seen)
    n = 30_000
    data = pa.table({"id": list(range(n)), "s": [str(i) for i in range(n)]})
    with bf.connect(f"duckdb:///{path}") as db:
        db.bulk_create("t", data, batch_size=1_000)
    assert inserted == [1]
    assert _peek(path, "SELECT count(*), sum(id), count(DISTINCT s) FROM t") == [(n, sum(range(n)), n)]
