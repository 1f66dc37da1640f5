"""Text and bytes that a bulk path's own format could confuse land exactly: NULL, the empty
text and the text ``NULL`` stay three values; backslashes, quotes, tabs, newlines and
characters outside ASCII are stored as given (MySQL's ``LOAD DATA`` text format escapes
them; COPY and ADBC have their own encodings).  Read back through the independent client."""

from __future__ import annotations

import pytest

TEXTS = [
    None,
    "",
    "NULL",
    "null",
    "\\N",
    "\\",
    "a\\b",
    "\\\\",
    "ends with \\",
    "tab\there",
    "\t",
    "line\nbreak",
    "\n",
    "crlf\r\nend",
    "\r",
    "'single' \"double\" `back`",
    ",;|",
    "  spaces  ",
    "ünïcödé ß €",
    "emoji 🚀 and 𝄞",
    "日本語",
    "\\t is not a tab",
    "\\n is not a newline",
]

BYTES = [None, b"", b"\x00", b"\\", b"\t\n\r", bytes(range(256)), b"NULL", b"\\N"]


def _texts(rows: list[tuple[object, ...]]) -> list[object]:
    return [r[1] for r in sorted(rows)]


def test_text_values_round_trip_exactly_into_a_new_table(db, table, peek):  # type: ignore[no-untyped-def]
    rows = [{"id": i, "v": v} for i, v in enumerate(TEXTS)]
    result = db.bulk_create(table, rows, primary_key="id")
    assert result.inserted == len(TEXTS)
    assert _texts(peek(f'SELECT id, v FROM "{table}"')) == TEXTS


def test_text_values_round_trip_exactly_into_an_existing_table_and_through_upsert(db, table, sql, peek):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, v text)')
    db.bulk_create(table, [{"id": i, "v": "x"} for i in range(len(TEXTS))])
    result = db.bulk_upsert(table, [{"id": i, "v": v} for i, v in enumerate(TEXTS)], unique_fields=["id"])
    assert (result.inserted, result.updated) == (0, len(TEXTS))
    assert _texts(peek(f'SELECT id, v FROM "{table}"')) == TEXTS
    # and the read path gives them back as well
    assert db.read(table, order_by="id")["v"].to_list() == TEXTS


def test_null_empty_and_the_word_null_are_three_values(db, table, peek):  # type: ignore[no-untyped-def]
    db.bulk_create(
        table, [{"id": 1, "v": None}, {"id": 2, "v": ""}, {"id": 3, "v": "NULL"}], primary_key="id"
    )
    assert peek(f'SELECT id FROM "{table}" WHERE v IS NULL') == [(1,)]
    assert peek(f"SELECT id FROM \"{table}\" WHERE v = ''") == [(2,)]
    assert peek(f"SELECT id FROM \"{table}\" WHERE v = 'NULL'") == [(3,)]


def test_binary_values_round_trip_exactly(db, table, peek):  # type: ignore[no-untyped-def]
    rows = [{"id": i, "b": v} for i, v in enumerate(BYTES)]
    db.bulk_create(table, rows, primary_key="id")
    got = [None if r[1] is None else bytes(r[1]) for r in sorted(peek(f'SELECT id, b FROM "{table}"'))]
    assert got == BYTES


@pytest.mark.parametrize("value", ["a\tb", "a\nb", "a\\b", "", "NULL"])
def test_keys_made_of_escapable_text_match_on_upsert(db, table, sql, peek, value):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (k text primary key, n integer)')
    db.bulk_create(table, [{"k": value, "n": 1}])
    result = db.bulk_upsert(table, [{"k": value, "n": 2}, {"k": value + "x", "n": 3}], unique_fields=["k"])
    assert (result.inserted, result.updated) == (1, 1)
    assert sorted(peek(f'SELECT k, n FROM "{table}"')) == sorted([(value, 2), (value + "x", 3)])
