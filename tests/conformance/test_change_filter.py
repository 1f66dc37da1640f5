"""Change detection's client-side pre-filter on every backend (``bulk_upsert(detect_changes=True)``,
docs/sync.md#change-detection): rows certainly equal to the stored ones are counted
``unchanged`` and never staged (``result.metrics["change_filter"]`` says how many), rows the
client cannot decide go through the SQL comparison, and the counts and contents stay exact.
Contents are read back through an independent client (``peek``); that nothing was written is
checked by an ``AFTER UPDATE`` trigger counting row writes (DuckDB has no triggers)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import bulkframe as bf
from bulkframe.errors import IntegrityError

DDL = "(id bigint primary key, name text, qty integer CHECK (qty >= 0), note text)"
STORED = [{"id": i, "name": f"n{i}", "qty": i, "note": f"note {i}"} for i in range(1, 11)]


def _rows(peek: Any, table: str) -> list[tuple[Any, ...]]:
    return peek(f'SELECT id, name, qty, note FROM "{table}" ORDER BY id')


def _counts(result: bf.BulkResult) -> tuple[int, ...]:
    result.check()
    assert result.records_processed == result.success_count + result.failure_count
    return (result.inserted, result.updated, result.unchanged, result.skipped)


def _filtered(result: bf.BulkResult) -> tuple[int, int, Any]:
    """(rows checked, rows dropped as equal, why it stopped) of the pre-filter."""
    m = result.metrics["change_filter"]
    return (m["checked"], m["equal"], m["stopped"])


@pytest.fixture
def items(db: bf.Database, table: str, sql: Any) -> str:
    sql(f'CREATE TABLE "{table}" {DDL}')
    db.bulk_create(table, STORED)
    return table


def _trigger_ddl(backend: str, table: str, counter: str) -> tuple[list[str], list[str]]:
    if backend == "postgres":
        return (
            [f'CREATE FUNCTION "{table}_f"() RETURNS trigger AS $$ BEGIN UPDATE "{counter}" SET n = n + 1; '
             f"RETURN NULL; END $$ LANGUAGE plpgsql",
             f'CREATE TRIGGER "{table}_u" AFTER UPDATE ON "{table}" FOR EACH ROW EXECUTE FUNCTION "{table}_f"()'],
            [f'DROP TRIGGER "{table}_u" ON "{table}"', f'DROP FUNCTION "{table}_f"()'],
        )  # fmt: skip
    if backend == "sqlite":
        return (
            [
                f'CREATE TRIGGER "{table}_u" AFTER UPDATE ON "{table}" BEGIN UPDATE "{counter}" SET n = n + 1; END'
            ],
            [],
        )
    return (
        [
            f'CREATE TRIGGER "{table}_u" AFTER UPDATE ON "{table}" FOR EACH ROW UPDATE "{counter}" SET n = n + 1'
        ],
        [],
    )


@pytest.fixture
def row_writes(
    db: bf.Database, items: str, sql: Any, peek: Any, suite_backend: Any
) -> Iterator[Callable[[], Any]]:
    """``row_writes()`` → rows of ``items`` updated since the fixture started (an ``AFTER
    UPDATE`` trigger counts them), or ``None`` on a database without triggers."""
    if suite_backend.id == "duckdb":
        yield lambda: None
        return
    counter = items + "_n"
    sql(f'CREATE TABLE "{counter}" (n integer)')
    sql(f'INSERT INTO "{counter}" VALUES (0)')
    create, drop = _trigger_ddl(suite_backend.id, items, counter)
    for statement in create:
        sql(statement)
    yield lambda: peek(f'SELECT n FROM "{counter}"')[0][0]
    for statement in drop:
        sql(statement)
    with bf.connect(db.url) as cleanup:
        cleanup.drop_table(counter)


def test_a_resync_of_unchanged_rows_stages_and_writes_nothing(db, items, peek, row_writes):  # type: ignore[no-untyped-def]
    before = _rows(peek, items)
    result = db.bulk_upsert(items, list(reversed(STORED)), detect_changes=True, batch_size=4)
    assert _counts(result) == (0, 0, 10, 0)
    assert result.records_processed == result.success_count == 10
    assert _filtered(result) == (10, 10, None)  # every row dropped before staging
    assert _rows(peek, items) == before
    assert row_writes() in (0, None)


def test_a_mix_of_unchanged_changed_and_new_rows_is_counted_and_stored_exactly(db, items, peek, row_writes):  # type: ignore[no-untyped-def]
    incoming = [
        *STORED[:6],  # unchanged
        {"id": 7, "name": "n7", "qty": 70, "note": "note 7"},  # changed
        {"id": 8, "name": None, "qty": 8, "note": "note 8"},  # NULL against 'n8': changed
        {"id": 9, "name": "n9", "qty": 9, "note": None},  # changed
        {"id": 11, "name": "new", "qty": 11, "note": None},  # new
        {"id": 12, "name": "n12", "qty": 12, "note": "note 12"},  # new
    ]
    result = db.bulk_upsert(items, incoming, detect_changes=True, batch_size=4)
    assert _counts(result) == (2, 3, 6, 0)
    assert _filtered(result) == (11, 6, None)
    assert _rows(peek, items) == [
        *[(r["id"], r["name"], r["qty"], r["note"]) for r in STORED[:6]],
        (7, "n7", 70, "note 7"),
        (8, None, 8, "note 8"),
        (9, "n9", 9, None),
        (10, "n10", 10, "note 10"),
        (11, "new", 11, None),
        (12, "n12", 12, "note 12"),
    ]
    assert row_writes() in (3, None)


def test_change_detection_fields_and_ignore_fields_decide_what_is_equal(db, items, peek):  # type: ignore[no-untyped-def]
    incoming = [
        {"id": 1, "name": "n1", "qty": 1, "note": "other"},  # equal on name and qty
        {"id": 2, "name": "n2", "qty": 20, "note": "other"},
    ]
    result = db.bulk_upsert(items, incoming, detect_changes=True, change_detection_fields=["name", "qty"])
    assert _counts(result) == (0, 1, 1, 0)
    assert _filtered(result) == (2, 1, None)
    assert _rows(peek, items)[:2] == [(1, "n1", 1, "note 1"), (2, "n2", 20, "other")]
    result = db.bulk_upsert(items, incoming, detect_changes=True, ignore_fields=["note"])
    assert _counts(result) == (0, 0, 2, 0)  # note neither compared nor written
    assert _rows(peek, items)[:2] == [(1, "n1", 1, "note 1"), (2, "n2", 20, "other")]


def test_a_key_staged_by_an_earlier_batch_is_never_dropped(db, items, peek):  # type: ignore[no-untyped-def]
    """dedupe='last' keeps one row per key per batch: key 1 is changed by the first batch and
    set back to its stored value by the second.  The second row equals the stored row
    when it is read, but the first batch's merge is still to come: it must be staged."""
    incoming = [
        {"id": 1, "name": "changed", "qty": 1, "note": "note 1"},
        {"id": 2, "name": "n2", "qty": 2, "note": "note 2"},
        {"id": 1, "name": "n1", "qty": 1, "note": "note 1"},
        {"id": 3, "name": "n3", "qty": 3, "note": "note 3"},
    ]
    result = db.bulk_upsert(items, incoming, detect_changes=True, batch_size=2)
    assert _counts(result) == (0, 2, 2, 0)  # key 1 written twice, in input order
    assert _filtered(result) == (4, 2, None)
    assert _rows(peek, items)[:3] == [(1, "n1", 1, "note 1"), (2, "n2", 2, "note 2"), (3, "n3", 3, "note 3")]


def test_it_stops_when_the_first_batches_are_mostly_changed(db, items, peek, caplog):  # type: ignore[no-untyped-def]
    incoming = [{**r, "qty": r["qty"] + 100} for r in STORED] + [
        {"id": i, "name": f"n{i}", "qty": i, "note": None} for i in range(11, 15)
    ]
    with caplog.at_level(logging.INFO, logger="bulkframe"):
        result = db.bulk_upsert(items, incoming, detect_changes=True, batch_size=4)
    assert _counts(result) == (4, 10, 0, 0)
    checked, equal, stopped = _filtered(result)
    assert (checked, equal) == (4, 0)  # only the first batch was read back
    assert stopped == "0 of the 4 rows checked were equal"
    assert any("stops comparing on the client" in r.getMessage() for r in caplog.records)
    assert [r[2] for r in _rows(peek, items)] == [i + 100 for i in range(1, 11)] + list(range(11, 15))


def test_values_equal_only_in_sql_are_decided_by_sql(db, table, sql, peek, suite_backend):  # type: ignore[no-untyped-def]
    """-0.0 against a stored 0.0 has other bits: the client keeps the row and SQL finds it
    equal; text differing only in case is equal under a case-insensitive collation."""
    nocase = {
        "sqlite": "text COLLATE NOCASE",
        "duckdb": "VARCHAR COLLATE NOCASE",
        "mysql": "VARCHAR(255) COLLATE utf8mb4_general_ci",
        "postgres": "text",  # a case-insensitive collation needs ICU
    }[suite_backend.id]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, x double precision, label {nocase})')
    db.bulk_create(table, [{"id": 1, "x": 0.0, "label": "abc"}, {"id": 2, "x": 1.5, "label": "abc"}])
    result = db.bulk_upsert(
        table,
        [{"id": 1, "x": -0.0, "label": "abc"}, {"id": 2, "x": 1.5, "label": "ABC"}],
        detect_changes=True,
    )
    assert result.metrics["change_filter"]["equal"] == 0  # neither is certainly equal on the client
    # MySQL/MariaDB compare the stage's binary-collated text with the column: case decides
    case_blind = suite_backend.id in ("sqlite", "duckdb")
    assert _counts(result) == (0, 0 if case_blind else 1, 2 if case_blind else 1, 0)
    assert peek(f'SELECT id, label FROM "{table}" ORDER BY id') == [
        (1, "abc"),
        (2, "abc" if case_blind else "ABC"),
    ]


def test_json_is_dropped_only_when_certainly_the_same_document(db, table, sql, peek, suite_backend):  # type: ignore[no-untyped-def]
    """Same text: equal everywhere.  Other spacing or key order: PostgreSQL compares jsonb
    (equal; the client predicts jsonb's printed form for flat objects), the others compare
    the text (changed)."""
    sql(f'CREATE TABLE "{table}" (id bigint primary key, doc jsonb)')
    docs = {1: '{"a": 1, "b": "x"}', 2: '{"a": 1, "b": [1, 2]}', 3: '{"a": 1, "b": "x"}'}
    db.bulk_create(table, [{"id": i, "doc": d} for i, d in docs.items()])
    stored = dict(peek(f'SELECT id, CAST(doc AS TEXT) FROM "{table}"'))
    incoming = [
        {"id": 1, "doc": stored[1]},  # the stored text itself
        {"id": 2, "doc": '{"b":[1,2],"a":1}'},  # nested: only SQL can tell
        {"id": 3, "doc": '{"b":"x","a":1}'},  # flat, other order and spacing
    ]
    result = db.bulk_upsert(table, incoming, detect_changes=True)
    jsonb = suite_backend.id == "postgres"
    assert _filtered(result) == (3, 2 if jsonb else 1, None)
    # MariaDB ≥ 10.7 compares its JSON columns as JSON too (JSON_EQUALS)
    as_json = jsonb or (suite_backend.id == "mysql" and db.backend.server_version >= (10, 7))
    assert _counts(result) == (0, 0, 3, 0) if as_json else (0, 2, 1, 0)
    assert peek(
        f'SELECT id FROM "{table}" WHERE CAST(doc AS {"TEXT" if jsonb else "CHAR"}) = \'{{"b":"x","a":1}}\''
    ) == ([] if as_json else [(3,)])


def test_mysql_compares_text_of_any_collation_byte_for_byte(db, table, peek, suite_backend):  # type: ignore[no-untyped-def]
    """A column the user declared ``json`` (MariaDB: LONGTEXT utf8mb4_bin) or text under a
    binary or case-insensitive collation, against the stage's ``utf8mb4_nopad_bin``: no
    "illegal mix of collations" (error 1267), and a change of case or trailing space is a
    change, written."""
    if suite_backend.id != "mysql":
        pytest.skip("MySQL/MariaDB collations")
    from suite_backends import MYSQL_URL, _mysql_query

    _mysql_query(
        MYSQL_URL,
        f'CREATE TABLE "{table}" (id int PRIMARY KEY, doc json, b text COLLATE utf8mb4_bin, '
        "ci varchar(20) COLLATE utf8mb4_general_ci)",
    )
    db.bulk_create(
        table,
        [{"id": 1, "doc": '{"a": 1}', "b": "x", "ci": "ABC"}, {"id": 2, "doc": None, "b": "y", "ci": "q"}],
    )
    result = db.bulk_upsert(
        table,
        [{"id": 1, "doc": '{"a": 2}', "b": "x", "ci": "abc"}, {"id": 2, "doc": None, "b": "y ", "ci": "q"}],
        detect_changes=True,
    )
    assert _counts(result) == (0, 2, 0, 0)
    assert peek(f'SELECT id, doc, b, ci FROM "{table}" ORDER BY id') == [
        (1, '{"a": 2}', "x", "abc"),
        (2, None, "y ", "q"),
    ]
    again = db.bulk_upsert(table, [{"id": 1, "doc": '{"a": 2}', "b": "x", "ci": "abc"}], detect_changes=True)
    assert _counts(again) == (0, 0, 1, 0)


def test_a_value_of_another_storage_class_is_compared_in_sql(db, table, sql, peek, suite_backend):  # type: ignore[no-untyped-def]
    """SQLite: a BLOB in a text column reads back (cast to text) as the same string, but
    SQL compares it as a BLOB: it differs, and the row is updated."""
    if suite_backend.id != "sqlite":
        pytest.skip("storage classes per value are SQLite's")
    sql(f'CREATE TABLE "{table}" (id integer primary key, name text, qty integer)')
    sql(f"INSERT INTO \"{table}\" VALUES (1, CAST('n1' AS BLOB), 1), (2, 'n2', '2')")
    result = db.bulk_upsert(
        table, [{"id": 1, "name": "n1", "qty": 1}, {"id": 2, "name": "n2", "qty": 2}], detect_changes=True
    )
    assert _filtered(result) == (2, 1, None)
    assert _counts(result) == (0, 1, 1, 0)
    assert peek(f'SELECT id, typeof(name), name FROM "{table}" ORDER BY id') == [
        (1, "text", "n1"),
        (2, "text", "n2"),
    ]


def test_where_dropping_could_change_the_result_it_does_not_run(db, items, peek, table):  # type: ignore[no-untyped-def]
    audit = table + "_a"
    try:
        result = db.bulk_upsert(
            items, STORED[:2], detect_changes=True, audit_sync=True, audit_table=audit, audit_level="full"
        )
        assert _counts(result) == (0, 0, 2, 0)
        assert "change_filter" not in result.metrics  # level full records each unchanged row
        assert len(peek(f"SELECT operation FROM \"{audit}\" WHERE operation = 'unchanged'")) == 2
    finally:
        with bf.connect(db.url) as cleanup:
            cleanup.drop_table(audit)
    result = db.bulk_upsert(
        items,
        STORED[:2],
        detect_changes=True,
        audit_sync=True,
        audit_table=audit + "s",
        audit_level="summary",
    )
    try:
        assert _filtered(result) == (2, 2, None)
        ((after,),) = peek(f'SELECT after_values FROM "{audit}s"')
        after = after if isinstance(after, dict) else json.loads(after)
        assert (after["records_processed"], after["unchanged"], after["updated"]) == (2, 2, 0)
    finally:
        with bf.connect(db.url) as cleanup:
            cleanup.drop_table(audit + "s")


def test_update_if_and_newest_wins_count_equal_rows_unchanged_as_before(db, items, peek):  # type: ignore[no-untyped-def]
    """An equal row is unchanged whatever the conditions say; a row the condition lets
    through is updated, and not also counted unchanged (the SQL count of equal rows runs
    before the UPDATE makes it equal)."""
    incoming = [STORED[0], {**STORED[1], "qty": 20}]
    result = db.bulk_upsert(
        items, incoming, detect_changes=True, upsert_conditions={"update_if": {"qty": {"$gt": 100}}}
    )
    assert _counts(result) == (0, 0, 1, 1)  # row 2 held back by update_if; row 1 equal
    assert _filtered(result) == (2, 1, None)
    result = db.bulk_upsert(
        items, incoming, detect_changes=True, conflict_resolution="newest_wins", sync_timestamp_field="qty"
    )
    assert _counts(result) == (0, 1, 1, 0)
    assert _rows(peek, items)[:2] == [(1, "n1", 1, "note 1"), (2, "n2", 20, "note 2")]


def test_a_failure_after_dropped_batches_applies_nothing(db, items, peek):  # type: ignore[no-untyped-def]
    before = _rows(peek, items)
    incoming = [
        *STORED[:4],
        {"id": 5, "name": "x", "qty": 50, "note": None},
        {"id": 20, "name": "bad", "qty": -1, "note": None},
    ]
    with pytest.raises(IntegrityError) as info:
        db.bulk_upsert(items, incoming, detect_changes=True, batch_size=4)
    assert info.value.result is not None
    assert info.value.result.success_count == 0 and info.value.result.unchanged == 0
    assert _rows(peek, items) == before


@pytest.mark.postgres
def test_the_predicted_jsonb_text_is_what_postgresql_prints(pg_url):  # type: ignore[no-untyped-def]
    """Wherever the client predicts jsonb's printed form, PostgreSQL prints exactly that
    (random flat objects: keys of several byte lengths and scripts, integers, strings with
    commas and colons, literals, spacing); documents it cannot predict are null."""
    import random

    import psycopg
    import pyarrow as pa

    from bulkframe.backends.json_canonical import sorted_object_text

    rng = random.Random(13)
    keys = ["a", "b", "ab", "ba", "é", "z", "zz", "é1", "日本", "key", "Key", "k,:", "a b"]
    values = [
        '"x"',
        '"x, y: z"',
        '""',
        '"é"',
        "0",
        "-7",
        "123456789012345678901234567890",
        "true",
        "false",
        "null",
    ]
    docs = []
    for _ in range(400):
        pairs = [(rng.choice(keys), rng.choice(values)) for _ in range(rng.randint(0, 5))]
        sep = rng.choice([",", ", ", " ,\n"])
        docs.append("{" + sep.join(f'"{k}"{rng.choice([":", " : "])}{v}' for k, v in pairs) + "}")
    unpredictable = [
        '{"a": 1.0}',
        '{"a": [1]}',
        '{"a": {"b": 1}}',
        '{"a\\u00e9": 1}',
        '{"a": -0}',
        "[1]",
        "1",
    ]
    printed = sorted_object_text(pa.array(docs + unpredictable, pa.large_string())).to_pylist()
    assert printed[len(docs) :] == [None] * len(unpredictable)
    with psycopg.connect(pg_url) as conn:
        truth = [r[0] for r in conn.execute("SELECT d::jsonb::text FROM unnest(%s::text[]) AS d", (docs,))]
    predicted = [(p, t) for p, t in zip(printed[: len(docs)], truth, strict=True) if p is not None]
    assert len(predicted) > 150  # many are predicted (not those repeating a key)
    assert all(p == t for p, t in predicted)


def test_keys_that_are_no_dense_range_are_read_through_a_key_stage(db, table, sql, peek):  # type: ignore[no-untyped-def]
    """A composite key (text, integer) and sparse integers: the stored rows are read by
    joining a stage of the batch's keys, with the same counts and contents."""
    sql(f'CREATE TABLE "{table}" (code text, n bigint, qty integer, PRIMARY KEY (code, n))')
    stored = [{"code": c, "n": n, "qty": n} for c in ("a", "B", "é") for n in (1, 1_000, 1_000_000)]
    db.bulk_create(table, stored)
    incoming = [
        *stored[:5],
        {"code": "a", "n": 1_000, "qty": 7},  # a later batch changes stored[1], equal in the first
        {"code": "b", "n": 1, "qty": 1},  # new: 'b' is not 'B'
        {"code": "é", "n": 1_000_000, "qty": -5 + 5},  # changed (0)
    ]
    result = db.bulk_upsert(table, incoming, detect_changes=True, unique_fields=["code", "n"], batch_size=3)
    assert _counts(result) == (1, 2, 5, 0)
    assert _filtered(result) == (8, 5, None)
    assert sorted(peek(f'SELECT code, n, qty FROM "{table}"')) == sorted(
        [
            *[
                (r["code"], r["n"], r["qty"])
                for r in stored
                if (r["code"], r["n"]) not in (("a", 1_000), ("é", 1_000_000))
            ],
            ("a", 1_000, 7),
            ("é", 1_000_000, 0),
            ("b", 1, 1),
        ]
    )
    sparse = table + "_s"
    sql(f'CREATE TABLE "{sparse}" (id bigint primary key, qty integer)')
    try:
        db.bulk_create(sparse, [{"id": 10**i, "qty": i} for i in range(8)])
        result = db.bulk_upsert(
            sparse, [{"id": 10**i, "qty": i if i % 2 else -i} for i in range(8)], detect_changes=True
        )
        assert _counts(result) == (0, 3, 5, 0)  # qty 0 equals -0 for integers
        assert _filtered(result) == (8, 5, None)
    finally:
        with bf.connect(db.url) as cleanup:
            cleanup.drop_table(sparse)


def test_a_full_sync_keeps_the_rows_it_found_equal(db, items, peek):  # type: ignore[no-untyped-def]
    """Rows dropped as equal are still input keys: a full sync deletes only the absent ones."""
    incoming = [*STORED[:5], {**STORED[5], "qty": 60}]
    result = db.bulk_upsert(items, incoming, detect_changes=True, sync_mode="full", batch_size=4)
    assert (result.inserted, result.updated, result.unchanged, result.deleted) == (0, 1, 5, 4)
    assert _filtered(result) == (6, 5, None)
    assert [r[0] for r in _rows(peek, items)] == [1, 2, 3, 4, 5, 6]
    assert _rows(peek, items)[5] == (6, "n6", 60, "note 6")


@pytest.mark.postgres
def test_stored_values_the_client_cannot_hold_leave_the_batch_to_sql(pg_url):  # type: ignore[no-untyped-def]
    """A NaN, or a fraction longer than bulkframe's default scale, in a PostgreSQL numeric
    column reads back as no decimal: that batch is compared in SQL, and the call works."""
    import uuid

    import psycopg

    table = f"bf_test_{uuid.uuid4().hex[:10]}"

    with psycopg.connect(pg_url, autocommit=True) as admin, bf.connect(pg_url) as db:
        try:
            admin.execute(f'CREATE TABLE "{table}" (id bigint primary key, x numeric, y numeric(10,2))')
            admin.execute(
                f"INSERT INTO \"{table}\" VALUES (1, 'NaN', 1), (2, 1.123456789012345, 2), (3, 5, 3)"
            )
            result = db.bulk_upsert(
                table,
                [{"id": 1, "x": "1", "y": "1"}, {"id": 2, "x": "2", "y": "2"}, {"id": 3, "x": "5", "y": "3"}],
                detect_changes=True,
            )
            assert _counts(result) == (0, 2, 1, 0)
            assert _filtered(result)[:2] == (3, 0)
            rows = admin.execute(f'SELECT id, x::text, y::text FROM "{table}" ORDER BY id').fetchall()
            assert rows == [(1, "1", "1.00"), (2, "2", "2.00"), (3, "5", "3.00")]
        finally:
            admin.execute(f'DROP TABLE IF EXISTS "{table}"')
