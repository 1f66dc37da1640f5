"""Errors a user can act on (issue 9), on every backend, state read back through an
independent client (``peek``): mistyped filter values, deep filters, long ``$in`` lists,
Ctrl-C, identifiers in messages, ``bulk_delete`` safety options, counts on failure."""

from __future__ import annotations

import base64
import json
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

import bulkframe as bf
from bulkframe.errors import BulkframeError, FilterError, SafetyLimitError
from bulkframe.filters import MAX_DEPTH
from bulkframe.types import Column

U = uuid.UUID("6f1c2a9e-0b7d-4c55-9a3e-2f4d8c1b7e90")
DDL = (
    "(id bigint primary key, name text, price numeric(10,2), stock integer, active boolean, "
    "created_at date, ts timestamp, f double precision, u uuid)"
)


def _rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "name": f"P{i}",
            "price": Decimal(f"{i}.25"),
            "stock": i % 3,
            "active": i % 2 == 0,
            "created_at": f"202{i % 4}-06-01",
            "ts": f"2024-01-01T00:00:{i % 60:02d}",
            "f": i + 0.5,
            "u": str(U if i == 7 else uuid.uuid5(U, str(i))),
        }
        for i in range(1, n + 1)
    ]


@pytest.fixture
def products(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" {DDL}')
    db.bulk_create(table, _rows(40))
    return table


def _count(peek: Any, table: str, where: str = "1=1") -> int:
    return int(peek(f'SELECT count(*) FROM "{table}" WHERE {where}')[0][0])


# ------------------------------------------------------------ 1. mistyped filter values
REFUSED = [
    ({"id": "abc"}, "'id'", "$eq", "'abc'"),
    ({"id": {"$in": [1, "abc"]}}, "'id'", "$in", "'abc'"),
    ({"id": True}, "'id'", "$eq", "True"),
    ({"stock": "1.5"}, "'stock'", "$eq", "'1.5'"),
    ({"stock": {"$gt": "99999999999999999999"}}, "'stock'", "$gt", "'99999999999999999999'"),
    ({"price": "x"}, "'price'", "$eq", "'x'"),
    ({"price": {"$lt": True}}, "'price'", "$lt", "True"),
    ({"created_at": 5}, "'created_at'", "$eq", "5"),
    ({"ts": {"$gte": 5}}, "'ts'", "$gte", "5"),
    ({"name": 5}, "'name'", "$eq", "5"),
    ({"active": 1}, "'active'", "$eq", "1"),
    ({"active": "maybe"}, "'active'", "$eq", "'maybe'"),
    ({"u": "not-a-uuid"}, "'u'", "$eq", "'not-a-uuid'"),
    ({"f": {"$between": ["1", "x"]}}, "'f'", "$between", "'x'"),
    ({"created_at": datetime(2021, 6, 1, 12)}, "'created_at'", "$eq", "datetime.datetime(2021, 6, 1, 12, 0)"),
]


@pytest.mark.parametrize(("spec", "column", "op", "value"), REFUSED, ids=repr)
def test_mistyped_filter_values_are_refused_before_any_sql(  # type: ignore[no-untyped-def]
    db, products, peek, spec, column, op, value
):
    for call in (
        lambda: db.bulk_delete(products, spec),
        lambda: db.bulk_update(products, {"name": "changed"}, filter=spec),
    ):
        with pytest.raises(FilterError) as info:
            call()
        message = str(info.value)
        assert f"column {column}" in message and f"{op} value {value}" in message, message
        assert "operator does not exist" not in message and "SELECT" not in message
    assert _count(peek, products) == 40 and _count(peek, products, "name = 'changed'") == 0


ACCEPTED = [
    ({"id": "12"}, 1),  # the integer input function's reading of the text
    ({"id": " +12 "}, 1),
    ({"stock": 2.5}, 0),  # no integer equals 2.5 (PostgreSQL's bind cast would round it to 3)
    ({"stock": {"$ne": 2.5}}, 40),
    ({"stock": {"$lt": 1.5}}, 27),  # stock 0 or 1
    ({"stock": {"$gte": 1.5}}, 13),
    ({"stock": {"$between": [0.5, 1.5]}}, 14),
    ({"stock": {"$lt": 10**30}}, 40),  # beyond the column's range: decided, never bound
    ({"stock": {"$gt": 10**30}}, 0),
    ({"stock": {"$gt": -(10**30)}}, 40),
    ({"stock": {"$in": [1, 1.5, 10**30]}}, 14),
    ({"id": 2**70}, 0),
    ({"active": "t"}, 20),
    ({"active": " No "}, 20),
    ({"f": "7.5"}, 1),
    ({"u": str(U).upper()}, 1),
    ({"u": U}, 1),
    ({"created_at": "2021-06-01"}, 10),
    ({"created_at": datetime(2021, 6, 1)}, 10),  # midnight: the date itself
]


@pytest.mark.parametrize(("spec", "expected"), ACCEPTED, ids=repr)
def test_filter_values_convert_as_the_database_reads_them(  # type: ignore[no-untyped-def]
    db, products, peek, spec, expected
):
    result = db.bulk_update(products, {"name": "hit"}, filter=spec)
    assert result.updated == expected
    assert _count(peek, products, "name = 'hit'") == expected


# ------------------------------------------------------------------- 2. depth limit
def test_deep_filter_is_refused_naming_the_limit(db, products, peek):  # type: ignore[no-untyped-def]
    deep: dict[str, Any] = {"id": {"$gte": 3}}
    for _ in range(500):
        deep = {"$not": deep}
    with pytest.raises(FilterError, match=f"MAX_DEPTH={MAX_DEPTH}"):
        db.bulk_delete(products, deep)
    ok: dict[str, Any] = {"id": {"$gte": 3}}
    for _ in range(MAX_DEPTH - 2):  # an even number of $not: the same rows
        ok = {"$not": ok}
    assert db.bulk_delete(products, ok).deleted == 38
    assert [r[0] for r in peek(f'SELECT id FROM "{products}" ORDER BY id')] == [1, 2]


# ---------------------------------------------------------------- 3. long $in / $nin
def test_in_and_nin_with_70000_values(db, table, peek):  # type: ignore[no-untyped-def]
    db.bulk_create(table, pl.DataFrame({"id": range(100_000), "v": ["x"] * 100_000}))
    values = list(range(0, 140_000, 2))  # 70,000 values; the 50,000 even ids exist
    assert db.bulk_update(table, {"v": "u"}, filter={"id": {"$in": values}}).updated == 50_000
    assert _count(peek, table, "v = 'u'") == 50_000 and _count(peek, table, "v = 'u' AND id % 2 = 1") == 0
    by_rows = db.bulk_update(
        table, [{"id": 0, "v": "r"}, {"id": 1, "v": "r"}], key_fields=["id"], filter={"id": {"$in": values}}
    )
    assert (by_rows.updated, by_rows.skipped) == (1, 1)
    assert peek(f'SELECT id, v FROM "{table}" WHERE id < 2 ORDER BY id') == [(0, "r"), (1, "x")]
    deleted = db.bulk_delete(table, {"id": {"$nin": [*values, None]}})
    assert deleted.deleted == deleted.records_processed == 50_000
    assert _count(peek, table) == 50_000 and _count(peek, table, "id % 2 = 1") == 0
    assert db.bulk_delete(table, {"id": {"$in": values[:60_000]}}).deleted == 50_000
    assert _count(peek, table) == 0


# -------------------------------------------------------------------- 4. Ctrl-C
def _stream(n: int, *, interrupt_at: int, how: str) -> Iterator[dict[str, Any]]:
    for i in range(n):
        if i == interrupt_at:
            if how == "raise":
                raise KeyboardInterrupt
            signal.raise_signal(signal.SIGINT)  # as Ctrl-C: lands in the driver's handler
            time.sleep(0.3)  # let the driver's cancel reach the running COPY
        yield {"id": 1000 + i, "name": "new", "stock": 1}


@pytest.mark.parametrize("how", ["raise", "sigint"])
@pytest.mark.parametrize("op", ["create", "upsert", "update"])
def test_ctrl_c_stays_keyboard_interrupt_and_writes_nothing(  # type: ignore[no-untyped-def]
    db, products, peek, op, how
):
    before = peek(f'SELECT id, name, stock FROM "{products}" ORDER BY id')
    data = _stream(60_000, interrupt_at=20_000, how=how)
    with pytest.raises(KeyboardInterrupt) as info:
        if op == "create":
            db.bulk_create(products, data, batch_size=5_000)
        elif op == "upsert":
            db.bulk_upsert(products, data, unique_fields=["id"], batch_size=5_000)
        else:
            db.bulk_update(products, ({**r, "id": r["id"] % 40 + 1} for r in data), batch_size=5_000)
    assert type(info.value) is KeyboardInterrupt
    assert peek(f'SELECT id, name, stock FROM "{products}" ORDER BY id') == before
    result = getattr(info.value, "result", None)
    if result is not None:
        assert result.records_processed == result.success_count + result.failure_count
        assert result.success_count == 0


def test_ctrl_c_in_a_progress_callback(db, products, peek):  # type: ignore[no-untyped-def]
    calls: list[Any] = []

    def progress(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt

    rows = [{"id": 1000 + i, "name": "new"} for i in range(20_000)]
    with pytest.raises(KeyboardInterrupt):
        db.bulk_create(products, rows, batch_size=1_000, progress_callback=progress, progress_interval=1)
    assert len(calls) == 2 and _count(peek, products) == 40


# ------------------------------------------------------ 5. identifiers in messages
HOSTILE = "x) ; DROP TABLE y;--"
QUOTED = "we'ird\ncol"


def test_messages_quote_hostile_identifiers(db, table, sql, peek):  # type: ignore[no-untyped-def]
    q = db.backend.quote
    sql(f'CREATE TABLE "{table}" (id bigint primary key, {q(HOSTILE)} integer, {q(QUOTED)} text)')
    db.bulk_create(table, [{"id": 1, HOSTILE: 1, QUOTED: "a"}])
    with pytest.raises(FilterError) as info:
        db.bulk_delete(table, {HOSTILE: "abc"})
    assert f"column {HOSTILE!r} holds integers" in str(info.value)
    with pytest.raises(FilterError) as info:
        db.bulk_delete(table, {QUOTED: 5})
    assert repr(QUOTED) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(FilterError) as info:
        db.bulk_delete(table, {"nope": 1})
    assert f"valid columns: id, {QUOTED!r}, {HOSTILE!r}" in str(info.value)
    result = db.bulk_create(
        table,
        [{"id": 2, HOSTILE: -5, QUOTED: "b"}, {"id": 3, HOSTILE: "zz", QUOTED: "c"}],
        validation_rules={HOSTILE: {"min": 0}},
        error_strategy="continue",
    )
    messages = sorted(result.errors["error"].to_list())
    assert messages[0].startswith(f"{HOSTILE!r}=-5 is below min 0"), messages
    assert messages[1].startswith(f"{HOSTILE!r}=zz cannot be stored as"), messages
    assert _count(peek, table) == 1  # the table is still there, with its one row
    with pytest.raises(bf.errors.SchemaError) as missing:
        db.bulk_delete(HOSTILE, {"id": 1})
    assert f"table {HOSTILE!r} does not exist" in str(missing.value)


# ---------------------------------------------------------------- 6. safety options
@pytest.mark.parametrize("answer", [False, "n", "N", " no ", "No"])
def test_confirm_delete_declined(db, products, peek, answer):  # type: ignore[no-untyped-def]
    result = db.bulk_delete(products, {"stock": 0}, confirm_delete=lambda n, s: answer)
    assert result.deleted == 0 and result.metrics["confirmed"] is False and result.warnings
    assert _count(peek, products) == 40


@pytest.mark.parametrize("answer", [1, "1", None, "", "maybe", "yes please", "nope", 0, [True]])
def test_confirm_delete_refuses_anything_but_a_real_answer(  # type: ignore[no-untyped-def]
    db, products, peek, answer
):
    with pytest.raises(
        SafetyLimitError, match=r"confirm_delete: the callable answered .*Nothing was deleted"
    ) as info:
        db.bulk_delete(products, {"stock": 0}, confirm_delete=lambda n, s: answer)
    assert repr(answer) in str(info.value)
    assert _count(peek, products) == 40


@pytest.mark.parametrize("answer", [True, "y", "Y", " yes ", "YES"])
def test_confirm_delete_yes(db, products, peek, answer):  # type: ignore[no-untyped-def]
    assert db.bulk_delete(products, {"stock": 0}, confirm_delete=lambda n, s: answer).deleted == 13
    assert _count(peek, products) == 27 and _count(peek, products, "stock = 0") == 0


def test_backup_never_overwrites_a_file(db, products, peek, tmp_path):  # type: ignore[no-untyped-def]
    existing = tmp_path / "rows.parquet"
    existing.write_bytes(b"keep me")
    with pytest.raises(SafetyLimitError, match=r"rows\.parquet' already exists.*Nothing was deleted"):
        db.bulk_delete(products, {"stock": 0}, backup_before_delete=True, backup_location=str(existing))
    assert existing.read_bytes() == b"keep me" and _count(peek, products) == 40
    with pytest.raises(bf.errors.OptionError, match="overwrite"):
        db.bulk_delete(
            products,
            {"stock": 0},
            backup_before_delete=True,
            backup_location=str(tmp_path / "new.parquet"),
            overwrite=True,
        )
    assert _count(peek, products) == 40 and not (tmp_path / "new.parquet").exists()


def test_json_backup_of_a_binary_column(db, table, sql, peek, tmp_path):  # type: ignore[no-untyped-def]
    blob = db.backend.ddl_type(Column("b", "binary"))
    sql(f'CREATE TABLE "{table}" (id bigint primary key, b {blob})')
    payloads = [b"\x00\xff\x10", b"", None, bytes(range(256))]
    db.bulk_create(table, [{"id": i, "b": p} for i, p in enumerate(payloads)])
    for suffix in (".json", ".jsonl", ".csv"):
        location = tmp_path / f"rows{suffix}"
        result = db.bulk_delete(
            table,
            {"id": {"$lte": 1}} if suffix == ".json" else {"id": {"$gte": 0}},
            backup_before_delete=True,
            backup_location=str(location),
        )
        if suffix == ".json":
            saved = {r["id"]: r["b"] for r in json.loads(location.read_text())}
            assert result.deleted == 2 and saved == {0: base64.b64encode(payloads[0]).decode(), 1: ""}
            assert [r[0] for r in peek(f'SELECT id FROM "{table}" ORDER BY id')] == [2, 3]
        elif suffix == ".jsonl":
            lines = [json.loads(x) for x in location.read_text().splitlines()]
            assert result.deleted == 2 and {r["id"]: r["b"] for r in lines} == {
                2: None,
                3: base64.b64encode(payloads[3]).decode(),
            }
            assert _count(peek, table) == 0
        else:
            assert result.deleted == 0 and location.exists()


# ------------------------------------------------------------- 7. counts on failure
@pytest.mark.parametrize(
    "op", ["create", "upsert", "update_rows", "update_filter", "delete_limit", "delete_backup"]
)
def test_failed_operations_count_every_processed_row_as_failed(  # type: ignore[no-untyped-def]
    db, table, sql, peek, tmp_path, op
):
    sql(f'CREATE TABLE "{table}" (id bigint primary key, stock integer CHECK (stock >= 0))')
    db.bulk_create(table, [{"id": i, "stock": 1} for i in range(1, 4)])
    bad = [{"id": 2, "stock": 5}, {"id": 3, "stock": -1}, {"id": 9, "stock": 2}]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    calls = {
        "create": lambda: db.bulk_create(table, [{"id": 7, "stock": 1}, {"id": 8, "stock": -1}]),
        "upsert": lambda: db.bulk_upsert(table, bad, unique_fields=["id"]),
        "update_rows": lambda: db.bulk_update(table, bad[:2]),
        "update_filter": lambda: db.bulk_update(table, {"stock": -1}, filter={"id": {"$gte": 2}}),
        "delete_limit": lambda: db.bulk_delete(table, ids=[1, 2, 3], max_delete_count=1),
        "delete_backup": lambda: db.bulk_delete(
            table,
            ids=[1, 2, 3],
            backup_before_delete=True,
            backup_location=str(blocker / "sub" / "b.parquet"),
        ),
    }
    before = peek(f'SELECT id, stock FROM "{table}" ORDER BY id')
    with pytest.raises(BulkframeError) as info:
        calls[op]()
    result = info.value.result
    # a failed update by filter never learns how many rows matched: 0 processed, 0 failed
    assert result is not None and (result.records_processed > 0 or op == "update_filter")
    assert result.records_processed == result.success_count + result.failure_count
    assert result.success_count == 0 and result.failure_count == result.records_processed
    assert result.inserted == result.updated == result.deleted == 0
    assert peek(f'SELECT id, stock FROM "{table}" ORDER BY id') == before
