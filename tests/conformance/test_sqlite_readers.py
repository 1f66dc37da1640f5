"""What bulkframe writes on SQLite is read as what it is by other readers, not only by
bulkframe: SQLAlchemy reflection + select, pandas, Polars, the stdlib ``sqlite3`` with
``PARSE_DECLTYPES`` and DuckDB's sqlite scanner (skipped when the extension cannot be
loaded here: it is downloaded on first use).  Tables written by earlier bulkframe versions
(``TIMESTAMPTZ``, ``DECIMAL_TEXT``, ``UUID_TEXT``, ``T``-separated text) still reflect and
read back.  Decimal filter values work, and a stored decimal is the exact nearest double
(what ``WHERE price = 19.99`` in ``sqlite3`` finds).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import sqlite3
import uuid
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import bulkframe as bf
from bulkframe.types import Column

UTC = dt.timezone.utc
UID = uuid.UUID("12345678-1234-5678-1234-567812345678")

COLUMNS = [
    Column("id", "int64", primary_key=True, nullable=False),
    Column("i16", "int16"),
    Column("i32", "int32"),
    Column("i64", "int64"),
    Column("f64", "float64"),
    Column("price", "decimal", precision=10, scale=2),
    Column("wide", "decimal", precision=38, scale=6),
    Column("flag", "bool"),
    Column("txt", "text"),
    Column("code", "text", length=12),
    Column("day", "date"),
    Column("clock", "time"),
    Column("naive", "timestamp"),
    Column("aware", "timestamptz"),
    Column("doc", "json"),
    Column("uid", "uuid"),
    Column("blob", "binary"),
]

ROW = {
    "id": 1,
    "i16": -32768,
    "i32": 2147483647,
    "i64": -(2**63),
    "f64": 0.1,
    "price": Decimal("19.99"),
    "wide": Decimal("12345678901234567890.123456"),
    "flag": True,
    "txt": "ünï 'x' \"y\"",
    "code": "01234",
    "day": dt.date(2024, 2, 29),
    "clock": dt.time(12, 34, 56, 789),
    "naive": dt.datetime(2024, 1, 2, 3, 4, 5, 6),
    # 14:00+05:30 is 08:30 UTC: other readers see the UTC wall time, naive
    "aware": dt.datetime(2024, 1, 2, 14, 0, 0, 500000, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    "doc": {"a": 1, "b": [1.5, None]},
    "uid": UID,
    "blob": b"\x00\x01\xff",
}
NULLS = {"id": 2, **{c.name: None for c in COLUMNS if c.name != "id"}}
AWARE_UTC = dt.datetime(2024, 1, 2, 8, 30, 0, 500000)

#: What every reader that decodes types (sqlite3 PARSE_DECLTYPES, SQLAlchemy) must see,
#: column by column; readers that do not decode a type see the text/number SQLite holds.
STORED = {
    "id": 1, "i16": -32768, "i32": 2147483647, "i64": -(2**63), "f64": 0.1, "price": 19.99,
    "wide": "12345678901234567890.123456", "flag": 1, "txt": "ünï 'x' \"y\"", "code": "01234",
    "day": "2024-02-29", "clock": "12:34:56.000789", "naive": "2024-01-02 03:04:05.000006",
    "aware": "2024-01-02 08:30:00.500000", "doc": '{"a":1,"b":[1.5,null]}',
    "uid": "12345678-1234-5678-1234-567812345678", "blob": b"\x00\x01\xff",
}  # fmt: skip


@pytest.fixture
def written(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    path = tmp_path / "readers.db"
    url = f"sqlite:///{path}"
    with bf.connect(url) as db:
        db.create_table("t", COLUMNS)
        result = db.bulk_create("t", [ROW, NULLS])
        assert result.success_count == 2
    yield url, path


def _sqlite3(path: Path, **kw: Any) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(path, **kw))


def test_stored_text_and_numbers_are_the_conventional_ones(written: tuple[str, Path]) -> None:
    _, path = written
    names = list(STORED)
    with _sqlite3(path) as conn:
        row = conn.execute(f"SELECT {', '.join(names)} FROM t WHERE id = 1").fetchone()
        assert dict(zip(names, row, strict=True)) == STORED
        assert [type(v) for v in row] == [type(v) for v in STORED.values()]
        # the exact nearest double: a plain float comparison finds the row
        assert conn.execute("SELECT id FROM t WHERE price = 19.99").fetchall() == [(1,)]
        assert conn.execute("SELECT typeof(price), typeof(wide) FROM t WHERE id = 1").fetchone() == (
            "real",
            "text",
        )
        nulls = conn.execute(f"SELECT {', '.join(names[1:])} FROM t WHERE id = 2").fetchone()
        assert nulls == (None,) * (len(names) - 1)


def test_sqlite3_parse_decltypes(written: tuple[str, Path]) -> None:
    _, path = written
    with _sqlite3(path, detect_types=sqlite3.PARSE_DECLTYPES) as conn:
        cur = conn.execute("SELECT * FROM t ORDER BY id")
        names = [d[0] for d in cur.description]
        first, second = (dict(zip(names, r, strict=True)) for r in cur.fetchall())
    assert first == {
        **STORED,
        "day": dt.date(2024, 2, 29),
        "naive": dt.datetime(2024, 1, 2, 3, 4, 5, 6),
        "aware": AWARE_UTC,
    }
    assert type(first["day"]) is dt.date
    assert first["naive"].tzinfo is None and first["aware"].tzinfo is None
    assert all(v is None for k, v in second.items() if k != "id")


def test_sqlalchemy_reflection_and_select(written: tuple[str, Path]) -> None:
    sa = pytest.importorskip("sqlalchemy")
    _, path = written
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        table = sa.Table("t", sa.MetaData(), autoload_with=engine)
        kinds = {c.name: type(c.type).__name__ for c in table.c}
        assert kinds == {
            "id": "INTEGER", "i16": "SMALLINT", "i32": "INTEGER", "i64": "BIGINT", "f64": "DOUBLE",
            "price": "NUMERIC", "wide": "TEXT", "flag": "BOOLEAN", "txt": "TEXT", "code": "VARCHAR",
            "day": "DATE", "clock": "TIME", "naive": "TIMESTAMP", "aware": "TIMESTAMP", "doc": "TEXT",
            "uid": "TEXT", "blob": "BLOB",
        }  # fmt: skip
        assert (table.c.price.type.precision, table.c.price.type.scale) == (10, 2)
        assert table.c.code.type.length == 12
        with engine.connect() as conn, warnings.catch_warnings():
            warnings.simplefilter("ignore", sa.exc.SAWarning)  # "does *not* support Decimal objects natively"
            rows = conn.execute(sa.select(table).order_by(table.c.id)).mappings().all()
    finally:
        engine.dispose()
    assert dict(rows[0]) == {
        **STORED, "price": Decimal("19.99"), "flag": True, "day": dt.date(2024, 2, 29),
        "clock": dt.time(12, 34, 56, 789), "naive": dt.datetime(2024, 1, 2, 3, 4, 5, 6), "aware": AWARE_UTC,
    }  # fmt: skip
    assert type(rows[0]["price"]) is Decimal and type(rows[0]["flag"]) is bool
    assert all(v is None for k, v in rows[1].items() if k != "id")


def test_pandas_read_sql(written: tuple[str, Path]) -> None:
    pd = pytest.importorskip("pandas")
    sa = pytest.importorskip("sqlalchemy")
    _, path = written
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        frame = pd.read_sql_table("t", engine).sort_values("id")
    finally:
        engine.dispose()
    first = frame.iloc[0].to_dict()
    assert first["price"] == 19.99 and first["f64"] == 0.1
    assert first["wide"] == "12345678901234567890.123456"
    assert first["flag"] is True  # a bool, not the integer 1 (the column holds a NULL: object dtype)
    assert first["day"] == pd.Timestamp("2024-02-29")
    assert first["clock"] == dt.time(12, 34, 56, 789)
    assert first["naive"] == pd.Timestamp("2024-01-02 03:04:05.000006")
    assert first["aware"] == pd.Timestamp(AWARE_UTC)
    assert (first["doc"], first["uid"], first["blob"]) == (STORED["doc"], STORED["uid"], STORED["blob"])
    assert str(frame["naive"].dtype).startswith("datetime64") and str(frame["aware"].dtype).startswith(
        "datetime64"
    )
    assert frame.iloc[1].drop("id").isna().all()
    # a plain query through sqlite3 with PARSE_DECLTYPES: dates and timestamps typed
    with _sqlite3(path, detect_types=sqlite3.PARSE_DECLTYPES) as conn:
        queried = pd.read_sql("SELECT price, day, naive, aware FROM t WHERE id = 1", conn).iloc[0].to_dict()
    assert queried["price"] == 19.99
    assert pd.Timestamp(queried["day"]) == pd.Timestamp("2024-02-29")
    assert queried["naive"] == pd.Timestamp("2024-01-02 03:04:05.000006")
    assert queried["aware"] == pd.Timestamp(AWARE_UTC)


def test_polars_read_database(written: tuple[str, Path]) -> None:
    pl = pytest.importorskip("polars")
    url, path = written
    with _sqlite3(path, detect_types=sqlite3.PARSE_DECLTYPES) as conn:
        frame = pl.read_database("SELECT * FROM t ORDER BY id", conn)
    first = frame.row(0, named=True)
    assert first == {
        **STORED,
        "day": dt.date(2024, 2, 29),
        "naive": dt.datetime(2024, 1, 2, 3, 4, 5, 6),
        "aware": AWARE_UTC,
    }
    assert frame.schema["naive"] == pl.Datetime("us") and frame.schema["day"] == pl.Date
    assert frame.schema["price"] == pl.Float64 and frame.schema["blob"] == pl.Binary
    # by URI (connectorx): declared types decide the dtypes
    pytest.importorskip("connectorx")
    by_uri = pl.read_database_uri("SELECT * FROM t ORDER BY id", url)
    assert by_uri.row(0, named=True) == {
        **STORED, "flag": True, "day": dt.date(2024, 2, 29), "naive": dt.datetime(2024, 1, 2, 3, 4, 5, 6),
        "aware": AWARE_UTC,
    }  # fmt: skip
    assert by_uri.schema["flag"] == pl.Boolean and by_uri.schema["aware"] == pl.Datetime("us")
    assert by_uri.row(1, named=True) == {"id": 2, **{c: None for c in STORED if c != "id"}}


def _duckdb_with_sqlite() -> Any:
    """A DuckDB connection with the sqlite extension: installed already, downloadable, or
    from the ``duckdb-ext-sqlite`` package when it matches this DuckDB's version."""
    duckdb = pytest.importorskip("duckdb")
    conn = duckdb.connect()
    try:
        conn.execute("LOAD sqlite")
        return conn
    except Exception as exc:  # the extension is downloaded on first use; no network here
        reason = str(exc).splitlines()[0]
    spec = importlib.util.find_spec("duckdb_ext")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        for candidate in Path(folder).glob(
            f"extensions/v{duckdb.__version__}/*/sqlite_scanner.duckdb_extension"
        ):
            conn.execute(f"LOAD '{candidate}'")
            return conn
    conn.close()
    pytest.skip(f"DuckDB {duckdb.__version__}'s sqlite extension cannot be loaded here: {reason}")


def test_duckdb_sqlite_scanner(written: tuple[str, Path]) -> None:
    _, path = written
    conn = _duckdb_with_sqlite()
    try:
        conn.execute(f"ATTACH '{path}' AS s (TYPE sqlite, READ_ONLY)")
        types = {name: kind for name, kind, *_ in conn.execute("DESCRIBE s.t").fetchall()}
        cur = conn.execute("SELECT * FROM s.t ORDER BY id")
        names = [d[0] for d in cur.description]
        first, second = (dict(zip(names, r, strict=True)) for r in cur.fetchall())
        found = conn.execute("SELECT id FROM s.t WHERE price = 19.99").fetchall()
    finally:
        conn.close()
    assert types["day"] == "DATE" and types["naive"] == "TIMESTAMP" and types["aware"] == "TIMESTAMP"
    assert types["clock"] == "VARCHAR" and types["price"] == "DOUBLE" and types["blob"] == "BLOB"
    assert first == {
        **STORED,
        "day": dt.date(2024, 2, 29),
        "naive": dt.datetime(2024, 1, 2, 3, 4, 5, 6),
        "aware": AWARE_UTC,
    }
    assert all(v is None for k, v in second.items() if k != "id")
    assert found == [(1,)]


def test_bulkframe_reads_its_own_kinds_back(written: tuple[str, Path]) -> None:
    url, _ = written
    with bf.connect(url) as db:
        kinds = {c.name: (c.kind, c.precision, c.scale, c.length) for c in db.columns("t")}
        rows = db.read("t", order_by="id").to_dicts()
    want = {c.name: (c.kind, c.precision, c.scale, c.length) for c in COLUMNS}
    want["i32"] = ("int64", None, None, None)  # INTEGER is read as 64-bit (SQLite's INTEGER is)
    assert kinds == want
    assert rows[0] == {
        **ROW,
        "aware": AWARE_UTC.replace(tzinfo=UTC),
        "doc": STORED["doc"],
        "uid": STORED["uid"],
    }
    assert rows[1] == NULLS


def test_decimal_filters_on_sqlite(written: tuple[str, Path]) -> None:
    url, path = written
    with bf.connect(url) as db:
        for flt, hits in [
            ({"price": Decimal("19.99")}, 1),
            ({"price": 19.99}, 1),
            ({"price": {"$in": [Decimal("1"), Decimal("19.99")]}}, 1),
            ({"price": {"$gt": Decimal("19.985"), "$lt": Decimal("19.995")}}, 1),
            ({"price": Decimal("19.990")}, 1),
            ({"price": Decimal("19.991")}, 0),
            ({"wide": Decimal("12345678901234567890.123456")}, 1),
            ({"wide": Decimal("12345678901234567890.1234560")}, 1),
            ({"wide": Decimal("12345678901234567890.1234561")}, 0),
            ({"wide": {"$in": [Decimal("12345678901234567890.123456")]}}, 1),
            ({"wide": {"$gt": Decimal("12345678901234567890.1234559")}}, 1),
            ({"wide": {"$gt": Decimal("12345678901234567890.123456")}}, 0),
            ({"wide": {"$lte": Decimal("12345678901234567890.1234569")}}, 1),
            ({"wide": {"$lt": Decimal("9" * 20)}}, 1),
            ({"wide": {"$lt": Decimal("-1")}}, 0),
            (
                {
                    "aware": dt.datetime(
                        2024, 1, 2, 14, 0, 0, 500000, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))
                    )
                },
                1,
            ),
            ({"naive": {"$gte": dt.datetime(2024, 1, 2, 3, 4, 5, 6)}}, 1),
            ({"naive": {"$gt": dt.datetime(2024, 1, 2, 3, 4, 5, 6)}}, 0),
            ({"day": "2024-02-29"}, 1),
            ({"clock": dt.time(12, 34, 56, 789)}, 1),
        ]:
            result = db.bulk_update("t", {"txt": "hit"}, filter=flt)
            assert result.success_count == hits, flt
    with _sqlite3(path) as conn:
        assert conn.execute("SELECT id, txt FROM t ORDER BY id").fetchall() == [(1, "hit"), (2, None)]


LEGACY_DDL = (
    'CREATE TABLE "old" ("id" INTEGER, "amount" NUMERIC(10,2), "wide" DECIMAL_TEXT(38,6), '
    '"at" TIMESTAMPTZ, "naive" TIMESTAMP, "clock" TIME, "doc" JSON, "uid" UUID_TEXT, PRIMARY KEY ("id"))'
)


def test_tables_of_earlier_versions_still_reflect_and_read(tmp_path: Path) -> None:
    path = tmp_path / "legacy.db"
    with _sqlite3(path) as conn:
        conn.execute(LEGACY_DDL)
        conn.execute(
            "INSERT INTO old VALUES (1, 19.990000000000002, '12345678901234567890.123456', "
            "'2024-01-02T08:30:00.500000', '2024-01-02T03:04:05.000006', '12:34:56.000789', '{\"a\":1}', ?)",
            (str(UID),),
        )
        conn.commit()
    with bf.connect(f"sqlite:///{path}") as db:
        kinds = {c.name: (c.kind, c.precision, c.scale) for c in db.columns("old")}
        assert kinds == {
            "id": ("int64", None, None), "amount": ("decimal", 10, 2), "wide": ("decimal", 38, 6),
            "at": ("timestamptz", None, None), "naive": ("timestamp", None, None), "clock": ("time", None, None),
            "doc": ("json", None, None), "uid": ("uuid", None, None),
        }  # fmt: skip
        new = {
            "id": 2,
            "amount": Decimal("0.10"),
            "wide": Decimal("-1.5"),
            "at": AWARE_UTC.replace(tzinfo=UTC),
            "naive": dt.datetime(2025, 1, 1),
            "clock": dt.time(1, 2, 3),
            "doc": [1],
            "uid": UID,
        }
        assert db.bulk_create("old", [new]).success_count == 1
        rows = db.read("old", order_by="id").to_dicts()
    assert rows == [
        {"id": 1, "amount": Decimal("19.99"), "wide": Decimal("12345678901234567890.123456"),
         "at": AWARE_UTC.replace(tzinfo=UTC), "naive": dt.datetime(2024, 1, 2, 3, 4, 5, 6),
         "clock": dt.time(12, 34, 56, 789), "doc": '{"a":1}', "uid": str(UID)},
        {**new, "wide": Decimal("-1.500000"), "doc": "[1]", "uid": str(UID)},
    ]  # fmt: skip
    with _sqlite3(path) as conn:
        assert conn.execute("SELECT amount, wide, at FROM old WHERE id = 2").fetchone() == (
            0.1,
            "-1.500000",
            "2024-01-02 08:30:00.500000",
        )


def test_clock_defaults_use_the_stored_format(tmp_path: Path) -> None:
    path = tmp_path / "defaults.db"
    aware = dt.datetime(2024, 1, 2, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    with bf.connect(f"sqlite:///{path}") as db:
        db.create_table(
            "d",
            [Column("id", "int64", primary_key=True), Column("at", "timestamptz"), Column("day", "date"),
             Column("fixed", "timestamptz")],
            defaults={"at": ":current_timestamp", "day": ":current_date", "fixed": aware},
        )  # fmt: skip
        before = dt.datetime.now(UTC).replace(tzinfo=None)
        db.bulk_create("d", [{"id": 1}])
        after = dt.datetime.now(UTC).replace(tzinfo=None)
    with _sqlite3(path) as conn:
        at, day, fixed = conn.execute("SELECT at, day, fixed FROM d").fetchone()
    assert fixed == "2024-01-02 08:30:00.000000"
    assert len(at) == len("2024-01-02 08:30:00.000000") and at[10] == " "
    parsed = dt.datetime.strptime(at, "%Y-%m-%d %H:%M:%S.%f")
    assert before - dt.timedelta(seconds=1) <= parsed <= after + dt.timedelta(seconds=1)
    assert dt.date.fromisoformat(day) in (before.date(), after.date())
