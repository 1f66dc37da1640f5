"""``bulk_create(conflict_resolution="update"|"skip")`` over several batches: exact counts
and values, keys repeating inside a batch and across batches, all or nothing.

In one transaction a keyed merge goes through the upsert's merge window; where the backend
pipelines its stages (``pipelined_stages``, PostgreSQL) each batch after the first is
staged by a second connection while the one before it merges.  These tests prove that path
ran there (and only there), that its results equal the batch-by-batch semantics (each
batch deduplicated — ``update`` keeps a key's last row, ``skip`` its first — then merged in
input order), that a failure in a later batch leaves the table as it was, and that no
shared staging table is left behind."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import bulkframe as bf
from bulkframe.errors import BulkframeError
from suite_backends import role_without_create

DDL = "(id bigint primary key, name text, qty integer CHECK (qty >= 0))"
PIPELINE_LOG = "staging each further batch on a second connection"
STORED = 500  # ids 0..499, name n<id>, qty 1


def _rows(ids: range | list[int], tag: str, qty: int = 1) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"{tag}{i}", "qty": qty} for i in ids]


def _incoming() -> list[dict[str, Any]]:
    """Six batches of 100 (batch_size=100): existing keys, new keys, keys repeated from an
    earlier batch, keys repeated inside a batch, and both at once."""
    twice = [*range(700, 750), *range(700, 750)]
    return [
        *_rows(range(400, 500), "a"),  # batch 0: 100 existing
        *_rows(range(500, 600), "b"),  # batch 1: 100 new
        *_rows(range(550, 650), "c"),  # batch 2: 50 from batch 1, 50 new
        *[{"id": i, "name": f"{'d' if k < 50 else 'e'}{i}", "qty": 2} for k, i in enumerate(twice)],  # 3
        *_rows(range(450, 550), "f"),  # batch 4: 50 stored + 50 from batch 1
        *_rows([*range(640, 690), *range(640, 690)], "g", qty=3),  # batch 5: 10 from batch 2, dup inside
    ]


def _expected(mode: str, batch: int) -> tuple[dict[int, tuple[str, int]], int, int]:
    """What batch-by-batch merging leaves: the table's rows, inserted, and the count of
    rows that hit a key (updated for ``update``, skipped for ``skip``)."""
    table = {i: (f"n{i}", 1) for i in range(STORED)}
    incoming = _incoming()
    inserted = 0
    for start in range(0, len(incoming), batch):
        rows = incoming[start : start + batch]
        kept: dict[int, dict[str, Any]] = {}
        for row in rows:  # dedupe inside the batch: update keeps the last row, skip the first
            if mode == "update" or row["id"] not in kept:
                kept[row["id"]] = row
        for key, row in kept.items():
            if key not in table:
                inserted += 1
                table[key] = (row["name"], row["qty"])
            elif mode == "update":
                table[key] = (row["name"], row["qty"])
    return table, inserted, len(incoming) - inserted


def _shared_stages(db: bf.Database, peek: Any) -> int:
    """Shared (UNLOGGED) staging tables in the database (PostgreSQL; 0 elsewhere)."""
    if db.backend.name != "postgresql":
        return 0
    query = "SELECT count(*) FROM pg_class WHERE relname LIKE '\\_bf\\_stage\\_%' AND relpersistence = 'u'"
    return int(peek(query)[0][0])


@pytest.fixture
def loaded(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" {DDL}')
    db.bulk_create(table, _rows(range(STORED), "n"))
    return table


@pytest.mark.parametrize("mode", ["update", "skip"])
def test_a_long_create_with_conflicts_counts_and_stores_like_batch_by_batch(  # type: ignore[no-untyped-def]
    db, loaded, peek, caplog, mode
) -> None:
    before = _shared_stages(db, peek)
    with caplog.at_level(logging.DEBUG, logger="bulkframe"):
        result = db.bulk_create(loaded, _incoming(), conflict_resolution=mode, batch_size=100)
    stored, inserted, hit = _expected(mode, 100)
    assert inserted == 240 and hit == 360  # the scenario is what it claims to be
    counted = (result.inserted, result.updated, result.skipped)
    assert counted == ((inserted, hit, 0) if mode == "update" else (inserted, 0, hit))
    assert result.deduplicated == 100  # 50 in batch 3, 50 in batch 5
    assert result.records_processed == result.success_count == 600 and result.failure_count == 0
    assert result.batches == result.batches_committed == 6
    piped = any(PIPELINE_LOG in r.getMessage() for r in caplog.records)
    assert piped == db.backend.capabilities.pipelined_stages
    got = {i: (name, qty) for i, name, qty in peek(f'SELECT id, name, qty FROM "{loaded}" ORDER BY id')}
    assert got == stored
    assert _shared_stages(db, peek) == before


@pytest.mark.parametrize("mode", ["update", "skip"])
def test_one_batch_and_many_batches_differ_only_where_batches_do(db, loaded, peek, mode) -> None:  # type: ignore[no-untyped-def]
    """The same rows as one batch: a key repeated across the former batches is now a
    repeat inside the batch (one row kept), so the counts and values follow that."""
    result = db.bulk_create(loaded, _incoming(), conflict_resolution=mode, batch_size=10_000)
    stored, inserted, hit = _expected(mode, 10_000)
    counted = (result.inserted, result.updated, result.skipped)
    assert counted == ((inserted, hit, 0) if mode == "update" else (inserted, 0, hit))
    got = {i: (name, qty) for i, name, qty in peek(f'SELECT id, name, qty FROM "{loaded}" ORDER BY id')}
    assert got == stored


@pytest.mark.parametrize("mode", ["update", "skip"])
@pytest.mark.parametrize("where", ["merge of a middle batch", "merge of the last batch"])
def test_a_failure_in_a_later_batch_leaves_the_table_and_no_stage(db, loaded, peek, mode, where) -> None:  # type: ignore[no-untyped-def]
    before = _shared_stages(db, peek)
    snapshot = peek(f'SELECT id, name, qty FROM "{loaded}" ORDER BY id')
    incoming = _rows(range(450, 1050), "x", qty=3)  # 6 batches: 50 existing, then new keys
    # a new key with a negative qty: the CHECK constraint refuses it when its batch merges
    incoming[350 if where == "merge of a middle batch" else -1]["qty"] = -1
    with pytest.raises(BulkframeError) as info:
        db.bulk_create(loaded, incoming, conflict_resolution=mode, batch_size=100)
    failed = info.value.result  # type: ignore[attr-defined]
    assert (failed.success_count, failed.inserted, failed.updated, failed.skipped) == (0, 0, 0, 0)
    assert failed.failure_count == failed.records_processed > 0
    assert peek(f'SELECT id, name, qty FROM "{loaded}" ORDER BY id') == snapshot
    assert _shared_stages(db, peek) == before
    # the Database is usable afterwards: the same call without the bad row commits
    incoming[350 if where == "merge of a middle batch" else -1]["qty"] = 3
    again = db.bulk_create(loaded, incoming, conflict_resolution=mode, batch_size=100)
    assert (again.inserted, again.updated + again.skipped) == (550, 50)
    assert _shared_stages(db, peek) == before


def test_batches_committed_one_by_one_merge_in_their_own_transaction(db, loaded, peek, caplog) -> None:  # type: ignore[no-untyped-def]
    """error_strategy='continue' commits each batch (and bisects a refused one): no window,
    each batch's counts are its own; a refused row is reported at its input position."""
    incoming = _rows(range(450, 750), "y", qty=4)
    incoming[160]["qty"] = -1  # id 610, in the second batch
    with caplog.at_level(logging.DEBUG, logger="bulkframe"):
        result = db.bulk_create(
            loaded, incoming, conflict_resolution="update", batch_size=100, error_strategy="continue"
        )
    assert not any(PIPELINE_LOG in r.getMessage() for r in caplog.records)
    assert (result.inserted, result.updated, result.failure_count) == (249, 50, 1)
    assert result.records_processed == result.success_count + result.failure_count == 300
    assert [int(r["row"]) for r in result.errors.iter_rows(named=True)] == [160]
    assert peek(f'SELECT count(*) FROM "{loaded}" WHERE id = 610') == [(0,)]
    assert peek(f"""SELECT count(*) FROM "{loaded}" WHERE name LIKE 'y%'""") == [(299,)]


def test_without_a_unique_index_on_the_conflict_fields_nothing_is_pipelined(  # type: ignore[no-untyped-def]
    db, table, sql, peek, caplog
) -> None:
    if db.backend.name == "mariadb":
        pytest.skip("MariaDB merges without a unique index only into a table with a primary key")
    sql(f'CREATE TABLE "{table}" (id bigint, name text, qty integer)')
    db.bulk_create(table, _rows(range(100), "n"))
    with caplog.at_level(logging.DEBUG, logger="bulkframe"):
        result = db.bulk_create(
            table,
            _rows(range(50, 350), "z"),
            conflict_resolution="update",
            conflict_fields=["id"],
            batch_size=100,
        )
    assert not any(PIPELINE_LOG in r.getMessage() for r in caplog.records)
    assert (result.inserted, result.updated) == (250, 50)
    assert peek(f"""SELECT count(*), count(DISTINCT id) FROM "{table}" WHERE name LIKE 'z%'""") == [
        (300, 300)
    ]


@pytest.mark.parametrize("mode", ["update", "skip"])
def test_without_a_spare_connection_the_batches_merge_in_the_writing_transaction(  # type: ignore[no-untyped-def]
    url, loaded, peek, caplog, mode
) -> None:
    with (
        bf.connect(url, pool_size=1, max_overflow=0, pool_timeout=1) as one,
        caplog.at_level(logging.DEBUG, logger="bulkframe"),
    ):
        result = one.bulk_create(loaded, _incoming(), conflict_resolution=mode, batch_size=100)
    assert not any(PIPELINE_LOG in r.getMessage() for r in caplog.records)
    stored, inserted, hit = _expected(mode, 100)
    counted = (result.inserted, result.updated, result.skipped)
    assert counted == ((inserted, hit, 0) if mode == "update" else (inserted, 0, hit))
    got = {i: (name, qty) for i, name, qty in peek(f'SELECT id, name, qty FROM "{loaded}" ORDER BY id')}
    assert got == stored


def test_a_user_who_cannot_create_tables_still_creates_with_conflicts(
    db, url, loaded, peek, sql, caplog
) -> None:  # type: ignore[no-untyped-def]
    """The shared stage needs CREATE in the schema; without it the batches stage in the
    writing transaction (a temporary stage) and the counts and values are the same."""
    if not db.backend.capabilities.pipelined_stages:
        pytest.skip("the backend stages every batch in the writing transaction")
    with (
        role_without_create(url, loaded, sql, peek) as limited,
        bf.connect(limited) as other,
        caplog.at_level(logging.DEBUG, logger="bulkframe"),
    ):
        result = other.bulk_create(loaded, _incoming(), conflict_resolution="update", batch_size=100)
    assert any("no shared stage" in r.getMessage() for r in caplog.records)
    assert not any(PIPELINE_LOG in r.getMessage() for r in caplog.records)
    stored, inserted, hit = _expected("update", 100)
    assert (result.inserted, result.updated, result.skipped) == (inserted, hit, 0)
    got = {i: (name, qty) for i, name, qty in peek(f'SELECT id, name, qty FROM "{loaded}" ORDER BY id')}
    assert got == stored
