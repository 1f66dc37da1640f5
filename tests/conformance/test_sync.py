"""Synchronisation on every backend (``bulk_upsert(sync_mode=…)``, docs/sync.md): change
detection, conflict resolutions, incremental / full / delta modes and the audit trail.
Table contents and audit rows are read back through an independent client (``peek``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import bulkframe as bf
from bulkframe.errors import (
    IntegrityError,
    InvalidOptionValueError,
    NotSupportedError,
    SafetyLimitError,
    SchemaError,
)

DDL = "(id bigint primary key, name text, qty integer CHECK (qty >= 0), version integer, note text)"


@pytest.fixture
def items(db: bf.Database, table: str, sql: Any) -> str:
    sql(f'CREATE TABLE "{table}" {DDL}')
    db.bulk_create(
        table, [{"id": i, "name": f"n{i}", "qty": i, "version": 1, "note": "stored"} for i in range(1, 6)]
    )
    return table


@pytest.fixture
def audit_table(db: bf.Database) -> Any:
    name = "bf_audit_" + __import__("uuid").uuid4().hex[:8]
    yield name
    with bf.connect(db.url) as cleanup:
        cleanup.drop_table(name)


def _all(peek: Any, table: str) -> list[tuple[Any, ...]]:
    return peek(f'SELECT id, name, qty, version, note FROM "{table}" ORDER BY id')


def _json(value: Any) -> Any:
    return value if value is None or isinstance(value, (dict, list)) else json.loads(value)


def _audit(peek: Any, table: str) -> list[tuple[Any, ...]]:
    rows = peek(f'SELECT operation, row_key, before_values, after_values, run_id FROM "{table}"')
    out = [(op, _json(k), _json(b), _json(a), run) for op, k, b, a, run in rows]
    return sorted(out, key=lambda r: (r[0], json.dumps(r[1], sort_keys=True)))


def _counts(result: bf.BulkResult) -> tuple[int, ...]:
    result.check()
    return (result.inserted, result.updated, result.unchanged, result.skipped, result.deleted)


# -- change detection ---------------------------------------------------------------------


def test_detect_changes_leaves_equal_rows_unwritten_and_counts_them(db, items, peek):  # type: ignore[no-untyped-def]
    rows = [
        {"id": 1, "name": "n1", "qty": 1, "version": 1},  # equal
        {"id": 2, "name": "n2", "qty": 20, "version": 1},  # qty differs
        {"id": 3, "name": None, "qty": 3, "version": 1},  # NULL vs 'n3' differs
        {"id": 9, "name": "new", "qty": 9, "version": 1},
    ]
    result = db.bulk_upsert(items, rows, detect_changes=True)
    assert _counts(result) == (1, 2, 1, 0, 0)
    assert result.records_processed == result.success_count == 4
    assert _all(peek, items) == [
        (1, "n1", 1, 1, "stored"),
        (2, "n2", 20, 1, "stored"),
        (3, None, 3, 1, "stored"),
        (4, "n4", 4, 1, "stored"),
        (5, "n5", 5, 1, "stored"),
        (9, "new", 9, 1, None),
    ]
    again = db.bulk_upsert(items, rows, detect_changes=True)  # the same rows again: all equal
    assert _counts(again) == (0, 0, 4, 0, 0)


def test_change_detection_fields_and_ignore_fields(db, items, peek):  # type: ignore[no-untyped-def]
    # only qty is compared: a different name alone does not make the row changed
    result = db.bulk_upsert(
        items,
        [{"id": 1, "name": "renamed", "qty": 1}, {"id": 2, "name": "renamed", "qty": 22}],
        detect_changes=True,
        change_detection_fields=["qty"],
    )
    assert _counts(result) == (0, 1, 1, 0, 0)
    assert _all(peek, items)[:2] == [(1, "n1", 1, 1, "stored"), (2, "renamed", 22, 1, "stored")]
    # ignore_fields: neither compared nor written to existing rows; new rows get them
    result = db.bulk_upsert(
        items,
        [
            {"id": 3, "qty": 3, "note": "source"},
            {"id": 4, "qty": 40, "note": "source"},
            {"id": 8, "qty": 8, "note": "n"},
        ],
        detect_changes=True,
        ignore_fields=["note"],
    )
    assert _counts(result) == (1, 1, 1, 0, 0)
    assert peek(f'SELECT id, qty, note FROM "{items}" WHERE id IN (3, 4, 8) ORDER BY id') == [
        (3, 3, "stored"),
        (4, 40, "stored"),
        (8, 8, "n"),
    ]


def test_change_detection_options_are_checked(db, items, peek):  # type: ignore[no-untyped-def]
    before = _all(peek, items)
    with pytest.raises(InvalidOptionValueError, match="change_detection_fields needs detect_changes=True"):
        db.bulk_upsert(items, [{"id": 1, "qty": 5}], change_detection_fields=["qty"])
    with pytest.raises(SchemaError, match=r"ignore_fields \['nope'\] are not columns"):
        db.bulk_upsert(items, [{"id": 1, "qty": 5}], detect_changes=True, ignore_fields=["nope"])
    with pytest.raises(SchemaError, match=r"change_detection_fields \['name'\] are not in the input"):
        db.bulk_upsert(items, [{"id": 1, "qty": 5}], detect_changes=True, change_detection_fields=["name"])
    with pytest.raises(InvalidOptionValueError, match="detect_changes=True has no effect"):
        db.bulk_upsert(items, [{"id": 1, "qty": 5}], detect_changes=True, conflict_resolution="target_wins")
    assert _all(peek, items) == before


def test_detect_changes_compares_json_and_decimal_columns(db, table, sql, peek):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, doc json, price numeric(12,2))')
    db.bulk_create(
        table, [{"id": 1, "doc": {"a": 1}, "price": "1.50"}, {"id": 2, "doc": {"a": 2}, "price": "2.00"}]
    )
    result = db.bulk_upsert(
        table,
        [{"id": 1, "doc": {"a": 1}, "price": "1.50"}, {"id": 2, "doc": {"a": 3}, "price": "2.00"}],
        detect_changes=True,
    )
    assert _counts(result) == (0, 1, 1, 0, 0)
    assert [(i, _json(d)) for i, d in peek(f'SELECT id, doc FROM "{table}" ORDER BY id')] == [
        (1, {"a": 1}),
        (2, {"a": 3}),
    ]


@pytest.mark.postgres
def test_unchanged_rows_get_no_new_row_version(pg_url, table):  # type: ignore[no-untyped-def]
    """No write at all: the row's xmin (the transaction that wrote its version) stays."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as admin, bf.connect(pg_url) as db:
        try:
            admin.execute(f'CREATE TABLE "{table}" (id bigint primary key, v integer)')
            admin.execute(f'INSERT INTO "{table}" VALUES (1, 1), (2, 2)')
            before = dict(admin.execute(f'SELECT id, xmin::text FROM "{table}"').fetchall())
            result = db.bulk_upsert(table, [{"id": 1, "v": 1}, {"id": 2, "v": 20}], detect_changes=True)
            assert (result.updated, result.unchanged) == (1, 1)
            after = dict(admin.execute(f'SELECT id, xmin::text FROM "{table}"').fetchall())
            assert after[1] == before[1] and after[2] != before[2]
        finally:
            admin.execute(f'DROP TABLE IF EXISTS "{table}"')


@pytest.mark.postgres
def test_a_new_key_another_writer_commits_meanwhile_is_merged(pg_url):  # type: ignore[no-untyped-def]
    """The merge's INSERT waits for a key another transaction inserted (uncommitted); when
    that one commits, the INSERT's ON CONFLICT merges it: the key is updated, not refused,
    and counted once."""
    import threading
    import time
    import uuid

    import psycopg

    table = f"bf_test_{uuid.uuid4().hex[:10]}"
    out: dict[str, Any] = {}
    with psycopg.connect(pg_url, autocommit=True) as admin, psycopg.connect(pg_url) as other:
        try:
            admin.execute(f'CREATE TABLE "{table}" (id bigint primary key, v integer)')
            admin.execute(f'INSERT INTO "{table}" VALUES (1, 1)')
            other.execute(f'INSERT INTO "{table}" VALUES (2, -2)')  # not committed yet

            def upsert() -> None:
                try:
                    with bf.connect(pg_url) as db:
                        rows = [{"id": 1, "v": 10}, {"id": 2, "v": 20}, {"id": 3, "v": 30}]
                        out["result"] = db.bulk_upsert(table, rows)
                except BaseException as exc:
                    out["error"] = exc

            thread = threading.Thread(target=upsert)
            thread.start()
            deadline = time.monotonic() + 30
            while not admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                (f'%INSERT INTO "{table}"%',),  # ADBC runs it as COPY (INSERT … RETURNING …)
            ).fetchone()[0]:  # type: ignore[index]
                assert time.monotonic() < deadline, "the merge's INSERT never waited for key 2"
                time.sleep(0.01)
            other.commit()
            thread.join(timeout=60)
            assert not thread.is_alive() and "error" not in out, out.get("error")
            result = out["result"]
            assert (result.inserted, result.updated, result.skipped) == (1, 2, 0)
            assert admin.execute(f'SELECT id, v FROM "{table}" ORDER BY id').fetchall() == [
                (1, 10),
                (2, 20),
                (3, 30),
            ]
        finally:
            other.rollback()  # a failed wait must not leave the merge (and the DROP) blocked
            admin.execute(f'DROP TABLE IF EXISTS "{table}"')


# -- conflict resolution ----------------------------------------------------------------------


def test_source_target_and_newest_wins(db, items, peek):  # type: ignore[no-untyped-def]
    incoming = [
        {"id": 1, "name": "src", "qty": 10, "version": 2},
        {"id": 2, "name": "src", "qty": 20, "version": 0},
    ]
    result = db.bulk_upsert(items, incoming, conflict_resolution="target_wins")
    assert _counts(result) == (0, 0, 0, 2, 0)
    assert _all(peek, items)[:2] == [(1, "n1", 1, 1, "stored"), (2, "n2", 2, 1, "stored")]
    result = db.bulk_upsert(
        items, incoming, conflict_resolution="newest_wins", sync_timestamp_field="version"
    )
    assert _counts(result) == (0, 1, 0, 1, 0)  # row 2's version 0 is older than the stored 1
    assert _all(peek, items)[:2] == [(1, "src", 10, 2, "stored"), (2, "n2", 2, 1, "stored")]
    result = db.bulk_upsert(items, incoming, conflict_resolution="source_wins")
    assert _counts(result) == (0, 2, 0, 0, 0)
    assert _all(peek, items)[:2] == [(1, "src", 10, 2, "stored"), (2, "src", 20, 0, "stored")]


def test_newest_wins_needs_its_timestamp(db, items, peek):  # type: ignore[no-untyped-def]
    before = _all(peek, items)
    with pytest.raises(SchemaError, match=r"'updated_at', which .* does not have"):
        db.bulk_upsert(items, [{"id": 1, "qty": 3}], conflict_resolution="newest_wins")
    with pytest.raises(SchemaError, match="needs 'version' in the input"):
        db.bulk_upsert(
            items, [{"id": 1, "qty": 3}], conflict_resolution="newest_wins", sync_timestamp_field="version"
        )
    with pytest.raises(
        InvalidOptionValueError, match=r"conflict_resolution='bogus' is not valid.*'newest_wins'"
    ):
        db.bulk_upsert(items, [{"id": 1, "qty": 3}], conflict_resolution="bogus")  # type: ignore[arg-type]
    assert _all(peek, items) == before


# -- incremental --------------------------------------------------------------------------------


def test_incremental_applies_newer_rows_and_keeps_the_high_water_mark(db, items, peek, audit_table):  # type: ignore[no-untyped-def]
    state = audit_table + "_state"
    rows = [
        {"id": 1, "qty": 11, "version": 5},
        {"id": 2, "qty": 12, "version": 2},  # not newer than 2: skipped
        {"id": 7, "qty": 7, "version": 9},
        {"id": 8, "qty": 8, "version": None},  # no timestamp: applied
    ]
    try:
        result = db.bulk_upsert(
            items,
            rows,
            sync_mode="incremental",
            sync_timestamp_field="version",
            last_sync_timestamp=2,
            sync_state_table=state,
        )
        assert _counts(result) == (2, 1, 0, 1, 0)
        assert result.high_water_mark == 9 and result.metrics["sync"]["not_newer"] == 1
        assert peek(f'SELECT id, qty FROM "{items}" ORDER BY id') == [
            (1, 11),
            (2, 2),
            (3, 3),
            (4, 4),
            (5, 5),
            (7, 7),
            (8, 8),
        ]
        assert peek(f'SELECT sync_name, high_water_mark FROM "{state}"') == [(items, "9")]
        # the next run starts from the kept mark without the caller passing it
        result = db.bulk_upsert(
            items,
            [{"id": 1, "qty": 99, "version": 9}, {"id": 3, "qty": 33, "version": 10}],
            sync_mode="incremental",
            sync_timestamp_field="version",
            sync_state_table=state,
        )
        assert _counts(result) == (0, 1, 0, 1, 0) and result.high_water_mark == 10
        assert peek(f'SELECT id, qty FROM "{items}" WHERE id IN (1, 3) ORDER BY id') == [(1, 11), (3, 33)]
        assert peek(f'SELECT high_water_mark FROM "{state}"') == [("10",)]
    finally:
        with bf.connect(db.url) as cleanup:
            cleanup.drop_table(state)


def test_incremental_timestamps_are_compared_exactly(db, table, sql, peek):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, v integer, updated_at timestamptz)')
    at = lambda d: dt.datetime(2024, 1, d, tzinfo=dt.timezone.utc)  # noqa: E731
    rows = [{"id": 1, "v": 1, "updated_at": at(1)}, {"id": 2, "v": 2, "updated_at": at(3)}]
    result = db.bulk_upsert(table, rows, sync_mode="incremental", last_sync_timestamp="2024-01-02T00:00:00Z")
    assert (result.inserted, result.skipped, result.high_water_mark) == (1, 1, at(3))
    assert peek(f'SELECT id, v FROM "{table}"') == [(2, 2)]
    with pytest.raises(
        InvalidOptionValueError, match="is naive, but 'updated_at' is a timestamp with time zone"
    ):
        db.bulk_upsert(table, rows, sync_mode="incremental", last_sync_timestamp="2024-01-02T00:00:00")
    with pytest.raises(InvalidOptionValueError, match="last_sync_timestamp only appl"):
        db.bulk_upsert(table, rows, last_sync_timestamp="2024-01-02T00:00:00Z")


# -- full ---------------------------------------------------------------------------------------


def test_full_sync_deletes_absent_keys_within_the_scope(db, items, peek):  # type: ignore[no-untyped-def]
    source = [{"id": 1, "name": "n1", "qty": 1, "version": 1}, {"id": 2, "qty": 22}, {"id": 6, "qty": 6}]
    result = db.bulk_upsert(
        items, source, sync_mode="full", sync_scope={"id": {"$lt": 5}}, detect_changes=True
    )
    assert _counts(result) == (1, 1, 1, 0, 2)  # 3 and 4 deleted; 5 is out of scope
    assert result.records_processed == result.success_count == 5
    assert peek(f'SELECT id, qty FROM "{items}" ORDER BY id') == [(1, 1), (2, 22), (5, 5), (6, 6)]


def test_full_sync_soft_deletes(db, table, sql, peek):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, v integer, deleted_at timestamp)')
    db.bulk_create(table, [{"id": i, "v": i} for i in (1, 2, 3)])
    result = db.bulk_upsert(table, [{"id": 1, "v": 1}], sync_mode="full", soft_delete=True)
    assert (result.updated, result.deleted) == (1, 2)
    assert peek(f'SELECT id, deleted_at IS NULL FROM "{table}" ORDER BY id') == [
        (1, True),
        (2, False),
        (3, False),
    ]
    again = db.bulk_upsert(table, [{"id": 1, "v": 1}], sync_mode="full", soft_delete=True)
    assert again.deleted == 0  # already marked rows are not marked again


def test_full_sync_guards_its_deletes_like_bulk_delete(db, items, peek, tmp_path: Path):  # type: ignore[no-untyped-def]
    before = _all(peek, items)
    source = [{"id": 1, "qty": 100}, {"id": 9, "qty": 9}]
    with pytest.raises(
        SafetyLimitError, match=r"4 rows .* absent from the input, more than max_delete_count=3"
    ):
        db.bulk_upsert(items, source, sync_mode="full", max_delete_count=3)
    assert _all(peek, items) == before  # the upsert half rolled back too
    dry = db.bulk_upsert(items, source, sync_mode="full", dry_run=True)
    assert dry.dry_run and _counts(dry) == (1, 1, 0, 0, 4)
    assert sorted(dry.data["id"].to_list()) == [2, 3, 4, 5]
    assert _all(peek, items) == before
    with pytest.raises(SafetyLimitError, match="empty input would delete every row"):
        db.bulk_upsert(items, [], sync_mode="full")
    backup = tmp_path / "gone.parquet"
    result = db.bulk_upsert(
        items, source, sync_mode="full", backup_before_delete=True, backup_location=str(backup)
    )
    assert _counts(result) == (1, 1, 0, 0, 4)
    saved = pl.read_parquet(backup).sort("id")
    assert saved["id"].to_list() == [2, 3, 4, 5] and saved["note"].to_list() == ["stored"] * 4
    assert peek(f'SELECT id, qty FROM "{items}" ORDER BY id') == [(1, 100), (9, 9)]
    with pytest.raises(SafetyLimitError, match="already exists"):
        db.bulk_upsert(
            items, source, sync_mode="full", backup_before_delete=True, backup_location=str(backup)
        )


def test_delete_options_need_a_deleting_mode(db, items):  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidOptionValueError, match="max_delete_count only appl"):
        db.bulk_upsert(items, [{"id": 1}], max_delete_count=2)
    with pytest.raises(InvalidOptionValueError, match="needs error_strategy='stop'"):
        db.bulk_upsert(items, [{"id": 1}], sync_mode="full", error_strategy="continue")


# -- delta --------------------------------------------------------------------------------------


def test_delta_applies_changes_in_order_with_counts_per_operation(db, items, peek):  # type: ignore[no-untyped-def]
    changes = [
        {"id": 1, "operation": "update", "qty": 10},
        {"id": 1, "operation": "delete"},
        {"id": 1, "operation": "insert", "name": "back", "qty": 100},
        {"id": 2, "operation": "delete"},
        {"id": 2, "operation": "insert", "name": "two", "qty": 200},
        {"id": 3, "operation": "insert", "name": "dup", "qty": 300},  # key exists: updates it
        {"id": 40, "operation": "delete"},  # not found
        {"id": 41, "operation": "update", "qty": 1},  # not found
        {"id": 42, "operation": "insert", "name": "new", "qty": 42},
        {"id": 42, "operation": "update", "qty": 43},  # an absent key is NULL, as in every input
    ]
    result = db.bulk_upsert(items, changes, sync_mode="delta", batch_size=4)
    assert result.metrics["delta"] == {
        "insert": {"rows": 4, "inserted": 3, "updated": 1, "skipped": 0, "unchanged": 0},
        "update": {"rows": 3, "updated": 2, "skipped": 0, "unchanged": 0, "not_found": 1},
        "delete": {"rows": 3, "deleted": 2, "not_found": 1},
    }
    assert (result.records_processed, result.success_count, result.failure_count, result.not_found) == (
        10,
        8,
        2,
        2,
    )
    assert peek(f'SELECT id, name, qty FROM "{items}" ORDER BY id') == [
        (1, "back", 100),
        (2, "two", 200),
        (3, "dup", 300),
        (4, "n4", 4),
        (5, "n5", 5),
        (42, None, 43),
    ]


def test_delta_refuses_an_unknown_operation_naming_row_and_value(db, items, peek):  # type: ignore[no-untyped-def]
    before = _all(peek, items)
    with pytest.raises(SchemaError, match=r"row 1: operation='upsert' is not an operation"):
        db.bulk_upsert(
            items, [{"id": 1, "operation": "delete"}, {"id": 2, "operation": "upsert"}], sync_mode="delta"
        )
    with pytest.raises(SchemaError, match="needs the operation column 'op'"):
        db.bulk_upsert(items, [{"id": 1, "qty": 2}], sync_mode="delta", operation_field="op")
    assert _all(peek, items) == before


def test_delta_target_wins_soft_delete_and_delete_limit(db, table, sql, peek):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, v integer, deleted_at timestamp)')
    db.bulk_create(table, [{"id": i, "v": i} for i in (1, 2, 3)])
    changes = [{"id": 1, "op": "insert", "v": 10}, {"id": 2, "op": "delete"}, {"id": 3, "op": "delete"}]
    with pytest.raises(SafetyLimitError, match="max_delete_count=1"):
        db.bulk_upsert(table, changes, sync_mode="delta", operation_field="op", max_delete_count=1)
    result = db.bulk_upsert(
        table,
        changes,
        sync_mode="delta",
        operation_field="op",
        conflict_resolution="target_wins",
        soft_delete=True,
    )
    assert (result.skipped, result.deleted) == (1, 2)
    assert peek(f'SELECT id, v, deleted_at IS NULL FROM "{table}" ORDER BY id') == [
        (1, 1, True),
        (2, 2, False),
        (3, 3, False),
    ]


# -- audit --------------------------------------------------------------------------------------


def test_audit_changes_only_records_each_changed_key(db, items, peek, audit_table):  # type: ignore[no-untyped-def]
    result = db.bulk_upsert(
        items,
        [
            {"id": 1, "name": "n1", "qty": 1},
            {"id": 2, "name": "n2", "qty": 20},
            {"id": 9, "name": "new", "qty": 9},
        ],
        sync_mode="full",
        sync_scope={"id": {"$in": [1, 2, 3]}},
        detect_changes=True,
        audit_sync=True,
        audit_table=audit_table,
    )
    assert _counts(result) == (1, 1, 1, 0, 1)
    audit = _audit(peek, audit_table)
    assert [(op, key, before, after) for op, key, before, after, _ in audit] == [
        ("delete", {"id": 3}, {"id": 3, "name": "n3", "qty": 3, "version": 1, "note": "stored"}, None),
        ("insert", {"id": 9}, None, {"id": 9, "name": "new", "qty": 9}),
        ("update", {"id": 2}, {"qty": 2}, {"qty": 20}),  # only the changed field
    ]
    assert len({run for *_, run in audit}) == 1


def test_audit_full_and_summary_levels(db, items, peek, audit_table):  # type: ignore[no-untyped-def]
    rows = [{"id": 1, "qty": 1}, {"id": 2, "qty": 20}]
    db.bulk_upsert(
        items, rows, detect_changes=True, audit_sync=True, audit_table=audit_table, audit_level="full"
    )
    audit = _audit(peek, audit_table)
    assert [(op, key, before, after) for op, key, before, after, _ in audit] == [
        ("unchanged", {"id": 1}, {"qty": 1}, {"qty": 1}),
        ("update", {"id": 2}, {"qty": 2}, {"qty": 20}),
    ]
    summary = audit_table + "_s"
    try:
        result = db.bulk_upsert(
            items, rows, detect_changes=True, audit_sync=True, audit_table=summary, audit_level="summary"
        )
        (row,) = _audit(peek, summary)
        assert row[0] == "summary" and row[1] is None
        assert {k: row[3][k] for k in ("records_processed", "updated", "unchanged", "inserted")} == {
            "records_processed": 2,
            "updated": 0,
            "unchanged": 2,
            "inserted": 0,
        }
        assert result.unchanged == 2
    finally:
        with bf.connect(db.url) as cleanup:
            cleanup.drop_table(summary)


def test_a_sync_failing_half_way_applies_nothing_and_audits_nothing(db, items, peek, audit_table):  # type: ignore[no-untyped-def]
    """The UPDATE of existing keys and its audit rows run, then the INSERT of a new row
    violates the CHECK constraint: the whole call rolls back, audit rows included."""
    db.bulk_upsert(items, [{"id": 1, "qty": 7}], audit_sync=True, audit_table=audit_table)
    before, audited = _all(peek, items), _audit(peek, audit_table)
    assert len(audited) == 1
    with pytest.raises(IntegrityError) as info:
        db.bulk_upsert(
            items,
            [{"id": 2, "qty": 50}, {"id": 3, "qty": 60}, {"id": 10, "qty": -1}],
            sync_mode="full",
            audit_sync=True,
            audit_table=audit_table,
            batch_size=2,
        )
    assert info.value.result is not None and info.value.result.success_count == 0
    assert _all(peek, items) == before
    assert _audit(peek, audit_table) == audited


# -- matching without a unique index (issue 12) ------------------------------------------------


@pytest.mark.not_yet(
    "mysql",
    raises=NotSupportedError,
    reason="keyless matching counts keys from the UPDATE's changed rows; MySQL has no UPDATE … RETURNING and "
    "its read-back needs a primary key, which these tables lack",
)
def test_create_conflict_update_and_skip_without_a_unique_index(db, table, sql, peek):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id integer, code text, qty integer)')
    db.bulk_create(table, [{"id": 1, "code": "a", "qty": 1}, {"id": 2, "code": "b", "qty": 2}])
    incoming = [{"id": 10, "code": "a", "qty": 10}, {"id": 11, "code": "c", "qty": 11}]
    result = db.bulk_create(table, incoming, conflict_resolution="update", conflict_fields=["code"])
    assert (result.inserted, result.updated, result.skipped) == (1, 1, 0)
    assert peek(f'SELECT id, code, qty FROM "{table}" ORDER BY code') == [
        (10, "a", 10),
        (2, "b", 2),
        (11, "c", 11),
    ]
    result = db.bulk_create(
        table,
        [{"id": 20, "code": "b", "qty": 0}, {"id": 21, "code": "d", "qty": 1}],
        conflict_resolution="skip",
        conflict_fields=["code"],
    )
    assert (result.inserted, result.skipped) == (1, 1)
    assert peek(f'SELECT id, code, qty FROM "{table}" ORDER BY code') == [
        (10, "a", 10),
        (2, "b", 2),
        (11, "c", 11),
        (21, "d", 1),
    ]


def test_plain_upsert_dry_run_changes_nothing(db, items, peek):  # type: ignore[no-untyped-def]
    before = _all(peek, items)
    result = db.bulk_upsert(items, [{"id": 1, "qty": 9}, {"id": 20, "qty": 1}], dry_run=True)
    assert result.dry_run and (result.inserted, result.updated) == (1, 1)
    assert _all(peek, items) == before


def test_sync_options_are_refused_on_the_streamed_path(db, items, peek):  # type: ignore[no-untyped-def]
    """Streams, events and memory limits write batch by batch through the executor, which has
    no change detection, sync or audit: the combination is refused by name, nothing written."""
    from bulkframe.errors import NotSupportedError

    before = _all(peek, items)
    with pytest.raises(
        NotSupportedError, match=r"detect_changes, audit_sync cannot be combined with streaming"
    ):
        db.bulk_upsert(items, [{"id": 1, "qty": 9}], detect_changes=True, audit_sync=True, spill_to_disk=True)
    assert _all(peek, items) == before
