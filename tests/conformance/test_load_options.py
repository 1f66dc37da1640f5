"""``bulk_create``'s load options: honoured where the database gives them a meaning (its
``capabilities.load_options``), refused by name elsewhere; ``disable_autocommit`` is what
bulkframe always does.  Read back through the independent client."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bulkframe.errors import IntegrityError, InvalidOptionValueError, NotSupportedError

TEXTS = [None, "", "NULL", "\\N", "a,b", "a\tb", "line\nbreak", "back\\slash", "q'uo\"te", "ü 🚀", ","]


def _honours(db, name: str) -> bool:  # type: ignore[no-untyped-def]
    return name in db.backend.capabilities.load_options


def _texts(peek, table: str) -> list[object]:  # type: ignore[no-untyped-def]
    return [r[1] for r in sorted(peek(f'SELECT id, v FROM "{table}"'))]


def test_use_load_data_false_writes_the_same_values(db, table, peek):  # type: ignore[no-untyped-def]
    rows = [{"id": i, "v": v, "d": Decimal("12.345") * i} for i, v in enumerate(TEXTS)]
    if not _honours(db, "use_load_data"):
        with pytest.raises(NotSupportedError, match="use_load_data is not supported on"):
            db.bulk_create(table, rows, primary_key="id", use_load_data=False)
        return
    result = db.bulk_create(table, rows, primary_key="id", use_load_data=False, batch_size=4)
    assert result.inserted == len(TEXTS)
    assert _texts(peek, table) == TEXTS
    assert [r[0] for r in peek(f'SELECT d FROM "{table}" ORDER BY id')] == [r["d"] for r in rows]


def test_mysql_options_separators_and_header_lines(db, table, peek):  # type: ignore[no-untyped-def]
    rows = [{"id": i, "v": v} for i, v in enumerate(TEXTS)]
    options = {
        "local_infile": True,
        "ignore_lines": 1,
        "fields_terminated_by": ",",
        "lines_terminated_by": ";\n",
    }
    if not _honours(db, "mysql_options"):
        with pytest.raises(NotSupportedError, match="mysql_options is not supported on"):
            db.bulk_create(table, rows, primary_key="id", mysql_options=options)
        return
    result = db.bulk_create(table, rows, primary_key="id", mysql_options=options)
    assert result.inserted == len(TEXTS)
    assert _texts(peek, table) == TEXTS


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"fields_enclosed_by": '"'}, NotSupportedError, "'fields_enclosed_by' describes a file"),
        ({"compression": True}, NotSupportedError, "'compression' is not supported; supported: local_infile"),
        ({"local_infile": False}, InvalidOptionValueError, "local_infile=False"),
        ({"ignore_lines": -1}, InvalidOptionValueError, "ignore_lines"),
        ({"fields_terminated_by": "\\"}, InvalidOptionValueError, "fields_terminated_by"),
    ],
)
def test_mysql_options_keys_without_a_meaning_are_refused_by_name(db, table, stored, options, error, match):  # type: ignore[no-untyped-def]
    if not _honours(db, "mysql_options"):
        error, match = NotSupportedError, "mysql_options is not supported on"
    with pytest.raises(error, match=match):
        db.bulk_create(table, [{"id": 1, "v": "x"}], primary_key="id", mysql_options=options)
    assert stored(table) is None  # nothing created, nothing written


def test_disable_foreign_keys_loads_orphans_and_is_restored(db, table, sql, peek):  # type: ignore[no-untyped-def]
    parent = f"{table}_p"
    sql(f'CREATE TABLE "{parent}" (id bigint primary key)')
    sql(f'CREATE TABLE "{table}" (id bigint primary key, parent_id bigint REFERENCES "{parent}" (id))')
    if _honours(db, "disable_foreign_keys"):  # MySQL ignores an inline column REFERENCES
        sql(f'ALTER TABLE "{table}" ADD FOREIGN KEY (parent_id) REFERENCES "{parent}" (id)')
    try:
        orphans = [{"id": 1, "parent_id": 7}, {"id": 2, "parent_id": 8}]
        if not _honours(db, "disable_foreign_keys"):
            with pytest.raises(NotSupportedError, match="disable_foreign_keys is not supported on"):
                db.bulk_create(table, orphans, disable_foreign_keys=True)
            return
        with pytest.raises(IntegrityError):
            db.bulk_create(table, orphans)
        assert peek(f'SELECT count(*) FROM "{table}"') == [(0,)]
        result = db.bulk_create(table, orphans, disable_foreign_keys=True)
        assert result.inserted == 2
        assert sorted(peek(f'SELECT id, parent_id FROM "{table}"')) == [(1, 7), (2, 8)]
        # the checks are back on for the next call on the same pooled connection
        with pytest.raises(IntegrityError):
            db.bulk_create(table, [{"id": 3, "parent_id": 9}])
        assert peek(f'SELECT count(*) FROM "{table}"') == [(2,)]
    finally:
        db.close()
        sql(f'DROP TABLE "{table}"')
        sql(f'DROP TABLE "{parent}"')


def test_disable_autocommit_is_what_bulkframe_always_does(db, table, peek):  # type: ignore[no-untyped-def]
    assert db.bulk_create(table, [{"id": 1}], disable_autocommit=True).inserted == 1
    with pytest.raises(InvalidOptionValueError, match="disable_autocommit=False is not supported"):
        db.bulk_create(table, [{"id": 2}], disable_autocommit=False)
    assert peek(f'SELECT id FROM "{table}"') == [(1,)]
