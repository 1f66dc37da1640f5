"""A long upsert (several batches): exact counts and values whichever way the batches are
staged.  Where the backend pipelines its stages (capability ``pipelined_stages``,
PostgreSQL) each batch after the first is staged by a second connection while the batch
before it merges; these tests prove that path ran there, that every staging table is gone
afterwards, and that a failure in a late batch leaves the table as it was."""

from __future__ import annotations

import logging

import pytest

import bulkframe as bf
from bulkframe.errors import BulkframeError
from suite_backends import role_without_create

DDL = "(id bigint primary key, name text, qty integer CHECK (qty >= 0))"
PIPELINE_LOG = "staging each further batch on a second connection"


def _rows(n: int, start: int = 0, tag: str = "n", qty: int = 1) -> list[dict[str, object]]:
    return [{"id": i, "name": f"{tag}{i}", "qty": qty} for i in range(start, start + n)]


def _stages(db: bf.Database, peek) -> int:  # type: ignore[no-untyped-def]
    """Shared staging tables left in the database (PostgreSQL's catalog; 0 elsewhere)."""
    if db.backend.name != "postgresql":
        return 0
    return int(
        peek("SELECT count(*) FROM pg_class WHERE relname LIKE '\\_bf\\_stage\\_%' AND relpersistence = 'u'")[
            0
        ][0]
    )


@pytest.fixture
def loaded(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" {DDL}')
    db.bulk_create(table, _rows(500))
    return table


def test_a_long_upsert_counts_and_stores_every_batch(db, loaded, peek, caplog) -> None:  # type: ignore[no-untyped-def]
    before = _stages(db, peek)
    incoming = _rows(700, start=250, tag="u", qty=7)  # 250 existing, 450 new
    with caplog.at_level(logging.DEBUG, logger="bulkframe"):
        result = db.bulk_upsert(loaded, incoming, unique_fields=["id"], batch_size=100)
    assert (result.inserted, result.updated, result.skipped, result.failure_count) == (450, 250, 0, 0)
    assert result.records_processed == result.success_count == 700
    piped = any(PIPELINE_LOG in r.getMessage() for r in caplog.records)
    assert piped == db.backend.capabilities.pipelined_stages
    assert peek(f'SELECT count(*), sum(id), sum(qty) FROM "{loaded}"') == [
        (950, sum(range(950)), 250 + 700 * 7)
    ]
    got = dict(peek(f'SELECT id, name FROM "{loaded}" ORDER BY id'))
    assert got == {i: (f"n{i}" if i < 250 else f"u{i}") for i in range(950)}
    assert _stages(db, peek) == before


def test_a_key_in_several_batches_is_merged_in_input_order(db, loaded, peek) -> None:  # type: ignore[no-untyped-def]
    # dedupe="last" keeps one row per key per batch: the later batch's row wins
    incoming = (
        _rows(100, start=600, tag="a") + _rows(100, start=600, tag="b") + _rows(100, start=650, tag="c")
    )
    result = db.bulk_upsert(loaded, incoming, unique_fields=["id"], batch_size=100)
    assert (result.inserted, result.updated) == (150, 150)
    got = dict(peek(f'SELECT id, name FROM "{loaded}" WHERE id >= 600 ORDER BY id'))
    assert got == {i: (f"b{i}" if i < 650 else f"c{i}") for i in range(600, 750)}


def test_a_failure_in_a_late_batch_leaves_the_table_as_it_was(db, loaded, peek) -> None:  # type: ignore[no-untyped-def]
    before = _stages(db, peek)
    snapshot = peek(f'SELECT id, name, qty FROM "{loaded}" ORDER BY id')
    incoming = _rows(600, start=300, tag="x", qty=3)
    incoming[-1]["qty"] = -1  # the CHECK constraint refuses it in the last batch's merge
    with pytest.raises(BulkframeError):
        db.bulk_upsert(loaded, incoming, unique_fields=["id"], batch_size=100)
    assert peek(f'SELECT id, name, qty FROM "{loaded}" ORDER BY id') == snapshot
    assert _stages(db, peek) == before


def test_without_a_spare_connection_the_batches_stage_in_the_writing_transaction(  # type: ignore[no-untyped-def]
    url, loaded, peek, caplog
) -> None:
    with (
        bf.connect(url, pool_size=1, max_overflow=0, pool_timeout=1) as one,
        caplog.at_level(logging.DEBUG, logger="bulkframe"),
    ):
        result = one.bulk_upsert(loaded, _rows(300, start=400, tag="p"), unique_fields=["id"], batch_size=100)
    assert (result.inserted, result.updated) == (200, 100)
    assert not any(PIPELINE_LOG in r.getMessage() for r in caplog.records)
    assert peek(f"""SELECT count(*) FROM "{loaded}" WHERE name LIKE 'p%'""") == [(300,)]


def test_a_user_who_cannot_create_tables_still_upserts(db, url, loaded, peek, sql, caplog) -> None:  # type: ignore[no-untyped-def]
    """The shared stage needs CREATE in the schema (PostgreSQL 15 grants it on ``public``
    to no one by default); without it the batches stage in the writing transaction."""
    if not db.backend.capabilities.pipelined_stages:
        pytest.skip("the backend stages every batch in the writing transaction")
    with (
        role_without_create(url, loaded, sql, peek) as limited,
        bf.connect(limited) as other,
        caplog.at_level(logging.DEBUG, logger="bulkframe"),
    ):
        result = other.bulk_upsert(
            loaded, _rows(300, start=400, tag="q"), unique_fields=["id"], batch_size=100
        )
    assert (result.inserted, result.updated) == (200, 100)
    assert any("no shared stage" in r.getMessage() for r in caplog.records)
    assert not any(PIPELINE_LOG in r.getMessage() for r in caplog.records)
    assert peek(f"""SELECT count(*) FROM "{loaded}" WHERE name LIKE 'q%'""") == [(300,)]
