"""The MySQL backend's own machinery: the LOAD DATA text encoding, the choice between
connectorx and the driver for reads, error classification and the URL.  Tests that need a
server use ``BULKFRAME_TEST_MYSQL_URL`` and skip, saying why, when none answers."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

import bulkframe as bf
from bulkframe.backends.mysql import SQLSTATE_BY_ERRNO, MySQLBackend
from bulkframe.backends.mysql_load import encode_batch
from bulkframe.errors import NotSupportedError, TransientError
from bulkframe.types import Column
from suite_backends import MYSQL_URL, _mysql_down, _mysql_query


def test_load_text_escapes_structure_and_keeps_null_empty_and_the_word_null_apart() -> None:
    batch = pa.table(
        {"v": pa.array([None, "", "NULL", "a\tb\nc\\d\re\0f", "\\N"]), "n": pa.array([1, 2, 3, 4, 5])}
    )
    text = bytes(encode_batch(batch, [False, False]) or b"").decode()
    assert text.split("\n")[:-1] == ["\\N\t1", "\t2", "NULL\t3", "a\\tb\\nc\\\\d\\re\\0f\t4", "\\\\N\t5"]


def test_load_text_with_custom_separators_escapes_them_and_writes_header_lines() -> None:
    batch = pa.table({"v": pa.array(["a,b", "c;d"])})
    text = bytes(encode_batch(batch, [False], fields=",", lines=";\n", header=1) or b"").decode()
    assert text == "v;\na\\,b;\nc\\;d;\n"


def test_binary_is_written_as_hex() -> None:
    batch = pa.table({"b": pa.array([b"\x00\xff", None], pa.binary())})
    assert bytes(encode_batch(batch, [True]) or b"") == b"00ff\n\\N\n"


@pytest.mark.parametrize(
    ("errno", "transient"), [(1213, True), (1205, True), (2013, True), (2006, True), (1062, False)]
)
def test_deadlock_lock_timeout_and_lost_connection_are_transient(errno: int, transient: bool) -> None:
    backend = MySQLBackend("mysql://root@127.0.0.1:3306/x")
    error = backend.translate_error(Exception(errno, "boom"), "test")
    assert isinstance(error, TransientError) is transient
    assert error.sqlstate == SQLSTATE_BY_ERRNO[errno]


def test_url_options_are_checked() -> None:
    with pytest.raises(NotSupportedError, match="'compress' is not supported"):
        MySQLBackend("mysql://root@127.0.0.1:3306/x?compress=1")
    with pytest.raises(NotSupportedError, match="names no database"):
        MySQLBackend("mysql://root@127.0.0.1:3306/")


@pytest.fixture
def mysql_db() -> Any:
    reason = _mysql_down(MYSQL_URL)
    if reason is not None:
        pytest.skip(reason)
    db = bf.connect(MYSQL_URL)
    yield db
    db.close()


ROWS = [
    {
        "id": 1,
        "d": Decimal("12345678901234567890.12345670"),
        "wide": Decimal("1.123456789012345678"),
        "f": 0.1,
        "b": True,
        "t": "x\ty",
        "day": dt.date(2024, 2, 29),
        "at": dt.time(23, 59, 59, 999999),
        "ts": dt.datetime(2024, 1, 2, 3, 4, 5, 6),
        "tz": dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc),
        "j": '{"a": 1.50}',
        "u": str(uuid.UUID(int=12345)),
        "bin": b"\x00\x01\xff",
    },
    dict.fromkeys(("d", "wide", "f", "b", "t", "day", "at", "ts", "tz", "j", "u", "bin")) | {"id": 2},
]
COLUMNS = [
    Column("id", "int64", nullable=False, primary_key=True),
    Column("d", "decimal", precision=28, scale=8),
    Column("wide", "decimal", precision=30, scale=18),
    Column("f", "float64"),
    Column("b", "bool"),
    Column("t", "text"),
    Column("day", "date"),
    Column("at", "time"),
    Column("ts", "timestamp"),
    Column("tz", "timestamptz"),
    Column("j", "json"),
    Column("u", "uuid"),
    Column("bin", "binary"),
]


def test_connectorx_and_driver_reads_agree_on_every_kind(mysql_db: Any, monkeypatch: Any) -> None:
    table = f"bf_cx_{uuid.uuid4().hex[:8]}"
    mysql_db.create_table(table, COLUMNS)
    try:
        mysql_db.bulk_create(table, ROWS)
        used: list[bool] = []
        original = MySQLBackend.arrow_rows

        def spy(self: MySQLBackend, cursor: Any) -> pa.Table:
            used.append(cursor.pending is not None)
            return original(self, cursor)

        monkeypatch.setattr(MySQLBackend, "arrow_rows", spy)
        narrow = [c.name for c in COLUMNS if c.name not in ("wide", "at")]  # DECIMAL(28,8) fits
        through_cx = mysql_db.read(table, columns=narrow, order_by="id")
        assert used == [True]  # committed data, exact types: connectorx read it
        monkeypatch.setattr(MySQLBackend, "use_connectorx", False)
        through_driver = mysql_db.read(table, columns=narrow, order_by="id")
        assert through_cx.to_dicts() == through_driver.to_dicts()
        monkeypatch.setattr(MySQLBackend, "use_connectorx", True)
        everything = mysql_db.read(table, order_by="id").to_dicts()  # wide DECIMAL, TIME: the driver
        assert everything[0]["wide"] == Decimal("1.123456789012345678")
        assert everything[0]["at"] == dt.time(23, 59, 59, 999999)
        assert {k: v for k, v in everything[0].items() if k in narrow} == through_cx.to_dicts()[0]
        expected = dict(ROWS[0])
        expected["tz"] = expected["tz"].replace(tzinfo=dt.timezone.utc)
        assert everything[0] == expected
        assert everything[1] == ROWS[1]
        # and the independent client sees the values as stored (timestamptz: UTC wall time)
        raw = _mysql_query(MYSQL_URL, f'SELECT d, wide, tz, j, bin FROM "{table}" WHERE id = 1')[0]
        assert raw[:3] == (ROWS[0]["d"], ROWS[0]["wide"], dt.datetime(2024, 1, 2, 3, 4, 5, 6))
        assert raw[3] == '{"a": 1.50}' and bytes(raw[4]) == b"\x00\x01\xff"
    finally:
        mysql_db.drop_table(table)
