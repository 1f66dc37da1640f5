"""Every supported type written, read back and compared value by value, per backend."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

BIG = "ß∂ƒ©˙∆˚¬…æ" * 10_000  # ~100 kB of multi-byte text
UTC = dt.timezone.utc
PLUS5 = dt.timezone(dt.timedelta(hours=5, minutes=30))

# (column, arrow type, values) — the last value of every column is NULL
DECIMAL_SCALES = {
    0: ["1000000000", "-2000000000", "999999999999", "0"],
    1: ["1000000000.5", "-0.1", "12.0", "3000000000.0"],
    2: ["1000000000.25", "-0.01", "99.99", "2000000000.10"],
    3: ["1000000000.125", "0.001", "-5.500", "4000000000.000"],
    5: ["1000000000.12345", "0.00001", "3.14159", "-9000000000.00001"],
    8: ["1000000000.12345678", "0.00000001", "-2.5", "5000000000.00000001"],
}

COLUMNS: list[tuple[str, pa.DataType, list[Any]]] = [
    ("i16", pa.int16(), [-32768, 0, 32767]),
    ("i32", pa.int32(), [-2147483648, 7, 2147483647]),
    ("i64", pa.int64(), [-(2**63), 42, 2**63 - 1]),
    ("f64", pa.float64(), [0.1, -1.5e300, 3.141592653589793]),
    *[(f"dec{s}", pa.decimal128(20, s), [Decimal(v) for v in vals]) for s, vals in DECIMAL_SCALES.items()],
    ("flag", pa.bool_(), [True, False, True]),
    ("txt", pa.string(), ["ünïcødé 🚀 \"quoted\" 'single' ; --", "", BIG]),
    ("day", pa.date32(), [dt.date(1970, 1, 1), dt.date(2024, 2, 29), dt.date(9999, 12, 31)]),
    (
        "naive",
        pa.timestamp("us"),
        [
            dt.datetime(2024, 1, 1, 12, 30, 45, 123456),
            dt.datetime(1999, 12, 31, 23, 59, 59),
            dt.datetime(2038, 1, 19, 3, 14, 8),
        ],
    ),
    (
        "aware",
        pa.timestamp("us", tz="UTC"),
        [
            dt.datetime(2024, 1, 1, 12, 0, tzinfo=PLUS5),
            dt.datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=UTC),
            dt.datetime(1900, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-8))),
        ],
    ),
    (
        "doc",
        None,
        [{"a": 1, "nested": {"b": [1, 2, None]}, "s": 'x"y'}, {"other": "keys", "ü": True}, [1, "two", 3.5]],
    ),
    ("items", None, [[1, 2, 3], [], ["a", {"k": "v"}]]),
    ("uid", None, [uuid.UUID("12345678-1234-5678-1234-567812345678"), uuid.uuid4(), uuid.uuid4()]),
    ("blob", pa.binary(), [b"\x00\x01\xff", b"", bytes(range(256)) * 10]),
]


def _records() -> list[dict[str, Any]]:
    n = len(COLUMNS[0][2])
    rows = [{"id": i, **{name: values[i] for name, _, values in COLUMNS}} for i in range(n)]
    rows.append({"id": n, **{name: None for name, _, _ in COLUMNS}})  # NULL in every column
    return rows


def _same(name: str, got: Any, want: Any) -> bool:
    if want is None or got is None:
        return got is None and want is None
    if name in ("doc", "items"):
        return json.loads(got) == want
    if name == "uid":
        return str(got) == str(want)
    if name.startswith("dec"):
        return Decimal(got) == want
    if name == "aware":
        return got == want  # aware datetimes compare as instants
    return bool(got == want)


def _assert_integers_stored(peek: Any, table: str, rows: list[dict[str, Any]]) -> None:
    """The integer columns as the independent client reads them: the exact values, as
    ``int`` (not a float, a bool or text that compares equal)."""
    got = [
        tuple((v, type(v).__name__) for v in r)
        for r in peek(f'SELECT i16, i32, i64 FROM "{table}" ORDER BY id')
    ]
    want = [tuple((r[n], type(r[n]).__name__) for n in ("i16", "i32", "i64")) for r in rows]
    assert got == want


def _assert_roundtrip(db: Any, table: str, rows: list[dict[str, Any]]) -> None:
    got = db.read(table, order_by="id").to_dicts()
    assert len(got) == len(rows)
    mismatches = [
        (row["id"], name, got_row[name], row[name])
        for row, got_row in zip(rows, got, strict=True)
        for name, _, _ in COLUMNS
        if not _same(name, got_row[name], row[name])
    ]
    assert not mismatches, mismatches[:5]


def test_roundtrip_from_dicts_into_new_table(db, table, peek):  # type: ignore[no-untyped-def]
    rows = _records()
    # the first chunk defines the new table's types: JSON, uuid and decimals included
    db.bulk_create(table, rows, primary_key="id")
    cols = {c.name: c for c in db.columns(table)}
    assert cols["doc"].kind == "json" and cols["items"].kind == "json"
    assert cols["uid"].kind == "uuid" and cols["aware"].kind == "timestamptz"
    assert cols["naive"].kind == "timestamp" and cols["blob"].kind == "binary"
    # Python ints give no width: every integer column is created as int64
    assert (cols["i16"].kind, cols["i32"].kind, cols["i64"].kind) == ("int64", "int64", "int64")
    _assert_integers_stored(peek, table, rows)
    _assert_roundtrip(db, table, rows)


def test_roundtrip_from_typed_arrow(db, table, peek):  # type: ignore[no-untyped-def]
    rows = _records()
    arrays = {"id": pa.array([r["id"] for r in rows], pa.int64())}
    for name, arrow_type, _ in COLUMNS:
        values = [r[name] for r in rows]
        if name in ("doc", "items"):
            arrays[name] = pa.array(
                [None if v is None else json.dumps(v) for v in values], pa.json_(pa.string())
            )
        elif name == "uid":
            arrays[name] = pa.array(values, pa.uuid())
        else:
            arrays[name] = pa.array(values, arrow_type)
    db.bulk_create(table, pa.table(arrays), primary_key="id")
    cols = {c.name: c for c in db.columns(table)}
    for s in DECIMAL_SCALES:
        assert (cols[f"dec{s}"].precision, cols[f"dec{s}"].scale) == (20, s)
    # the Arrow width is kept (SQLite: declared SMALLINT / BIGINT; its INTEGER reads back as int64)
    assert (cols["i16"].kind, cols["i64"].kind) == ("int16", "int64")
    _assert_integers_stored(peek, table, rows)
    _assert_roundtrip(db, table, rows)


@pytest.mark.parametrize("scale", sorted(DECIMAL_SCALES))
def test_decimal_multiples_of_1e9_into_existing_numeric(db, table, sql, scale):  # type: ignore[no-untyped-def]
    """ADBC's COPY writer has corrupted numerics like these in some driver versions."""
    db.bulk_create(
        table,
        pa.table({"id": pa.array([0], pa.int64()), "v": pa.array([Decimal(0)], pa.decimal128(30, scale))}),
        primary_key="id",
    )
    values = [Decimal(k * 10**9) + Decimal(1).scaleb(-scale) * j for k in range(1, 6) for j in (0, 1, 7)]
    values += [-v for v in values] + [Decimal(10**9 * 10**9)]
    rows = [{"id": i + 1, "v": v} for i, v in enumerate(values)]
    db.bulk_create(table, rows)
    got = {r["id"]: r["v"] for r in db.read(table).to_dicts()}
    assert [got[r["id"]] for r in rows] == values


def test_columns_that_start_with_nulls_read_back_typed(db, table):  # type: ignore[no-untyped-def]
    """ADBC SQLite types a result column from its first batch; leading NULLs must not
    make a text or float column unreadable (regression)."""
    rows = [
        {
            "id": i,
            "s": None if i < 3000 else f"v{i}",
            "f": None if i < 3000 else i / 2,
            "day": None if i < 3000 else dt.date(2024, 1, 1 + i % 28),
        }
        for i in range(5000)
    ]
    db.bulk_create(table, rows[3000:3001], primary_key="id")  # types from a non-null row
    db.bulk_create(table, rows[:3000] + rows[3001:])
    got = db.read(table, order_by="id").to_dicts()
    assert got == rows


def test_empty_table_reads_back_with_its_types(db, table):  # type: ignore[no-untyped-def]
    db.bulk_create(
        table, [{"id": 1, "price": Decimal("1.50"), "day": dt.date(2020, 1, 1), "s": "x"}], primary_key="id"
    )
    db.bulk_delete(table, all_rows=True)
    frame = db.read(table)
    assert frame.height == 0 and frame.columns == ["id", "price", "day", "s"]
