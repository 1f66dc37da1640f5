"""Retry, "did it land?", bisection and rollback paths, driven by an in-process faulty
connection (see ``faulty.py``) on SQLite and PostgreSQL.

The faults are injected into the real ADBC connection: every statement that is not failed
runs on the real server, and what was stored is read back through the independent client
(``stored`` / ``peek``).  They are fast (well under a second each) and run in the default
suite; ``test_faults.py`` keeps the real thing (killed PostgreSQL sessions, a killed
loader).  Each test checks that its fault took effect, so none passes without it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from faulty import Faults, install

import bulkframe as bf
from bulkframe.errors import TransientError

ROWS = 50
BATCH = 10
LEDGER_INSERT = r"^\s*INSERT INTO \"?_bulkframe_ledger"


def _ledger_row_of(offset: int) -> Any:
    """Bound parameters of the ledger row recording the rows of the batch at input row
    ``offset`` (``run_key, batch_index, first_row, …``), written after those rows, in the
    same transaction."""
    return lambda params: params is not None and params[2] == offset


def _data(n: int = ROWS) -> pa.Table:
    ids = pa.array(range(n), pa.int64())
    return pa.table({"id": ids, "name": pa.array([f"row {i}" for i in range(n)])})


def _rows(ids: Any) -> list[tuple[int, str]]:
    return [(i, f"row {i}") for i in ids]


def _ledger_rows_of_run(peek: Any, faults: Faults) -> int:
    """Ledger rows left by this test's run (its run key, read from the ledger INSERTs that
    went through the wrapper; other runs may share the database)."""
    keys = {params[0] for sql, params in faults.statements if params and re.match(LEDGER_INSERT, sql)}
    assert len(keys) == 1 and re.fullmatch(r"[0-9a-f]{32}", next(iter(keys))), keys
    return int(peek(f"SELECT count(*) FROM \"_bulkframe_ledger\" WHERE run_key = '{keys.pop()}'")[0][0])


@pytest.fixture
def faulty(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[bf.Database, Faults]]:
    database, plan = install(url, monkeypatch)
    yield database, plan
    database.close()


@pytest.fixture
def faults(faulty: tuple[bf.Database, Faults]) -> Faults:
    """The fault plan of ``fdb``."""
    return faulty[1]


@pytest.fixture
def fdb(faulty: tuple[bf.Database, Faults]) -> bf.Database:
    """A Database on the test's URL whose connections go through the faulty wrapper."""
    return faulty[0]


def _errors(result: Any) -> list[tuple[int, str]]:
    """``(input row, rule)`` of every rejected row."""
    frame = result.errors
    if frame is None:
        return []
    return [(int(r["row"]), str(r["violations"][0]["rule"])) for r in frame.iter_rows(named=True)]


# -- retry_batch: a transient failure is retried, and nothing is doubled ---------------------


@pytest.mark.parametrize("fault", ["serialization_failure_at_statement", "connection_lost_mid_ingest"])
def test_transient_failure_is_retried_once_without_duplicates(fdb, table, stored, peek, faults, fault):  # type: ignore[no-untyped-def]
    if fault == "serialization_failure_at_statement":
        # the 3rd batch's ledger row (written after its rows, in the same transaction)
        faults.fail_statement(match=LEDGER_INSERT, when=_ledger_row_of(20), sqlstate="40001", drop=False)
    else:
        faults.fail_ingest(nth=3, match=re.escape(table), sqlstate="08006", drop=True)
    result = fdb.bulk_create(table, _data(), batch_size=BATCH, error_strategy="retry_batch", retry_delay=0)
    assert faults.fired == 1, "the fault was never injected; the test proved nothing"
    assert (result.records_processed, result.success_count, result.inserted, result.failure_count) == (
        50,
        50,
        50,
        0,
    )
    assert result.metrics["retries"] == 1
    assert (result.batches, result.batches_committed) == (5, 5)
    assert sorted(result.committed_ranges) == [(i, i + BATCH) for i in range(0, ROWS, BATCH)]
    assert stored(table, "id, name", "id") == _rows(range(ROWS))  # no primary key: a doubled batch would show
    if fault == "connection_lost_mid_ingest":
        assert faults.connects == 2  # the dead connection was replaced for the retry
    assert _ledger_rows_of_run(peek, faults) == 0  # the run's ledger rows are gone after success


def test_retry_batch_gives_up_after_max_retries_with_the_result_attached(fdb, table, stored, faults):  # type: ignore[no-untyped-def]
    # the 2nd batch fails every time; max_retries is the default (3)
    faults.fail_statement(
        match=LEDGER_INSERT, when=_ledger_row_of(10), times=None, sqlstate="40001", drop=False
    )
    with pytest.raises(TransientError, match="could not serialize") as info:
        fdb.bulk_create(table, _data(), batch_size=BATCH, error_strategy="retry_batch", retry_delay=0)
    assert faults.fired == 4  # the first attempt and 3 retries
    assert info.value.sqlstate == "40001"
    result = info.value.result  # type: ignore[attr-defined]
    assert result is not None and result.metrics["retries"] == 3
    # the first batch committed on its own; nothing of the failing batch is left
    assert (result.success_count, result.inserted, result.batches_committed) == (10, 10, 1)
    assert result.committed_ranges == [(0, 10)]
    assert result.failure_count == result.records_processed - 10
    assert stored(table, "id, name", "id") == _rows(range(10))


# -- the default policy (stop): one transaction, rolled back whole -----------------------------


def test_connection_lost_mid_stream_rolls_back_the_whole_call(fdb, table, stored, faults):  # type: ignore[no-untyped-def]
    """Two batches reach the server inside the COPY, then the connection drops: the table
    (created in the same transaction) and its rows are gone, and the error carries a result
    that says nothing was written."""
    fault = faults.fail_ingest(nth=1, after_batches=2, match=re.escape(table), sqlstate="08006", drop=True)
    with pytest.raises(TransientError, match="server closed the connection") as info:
        fdb.bulk_create(table, _data(), batch_size=BATCH)
    assert fault.fired == 1 and faults.ingests == [(table, 20)]  # 20 rows were sent before the drop
    result = info.value.result  # type: ignore[attr-defined]
    assert (result.success_count, result.inserted, result.batches_committed) == (0, 0, 0)
    assert result.failure_count == result.records_processed > 0
    assert result.committed_ranges == []
    assert stored(table, "id, name", "id") is None
    # the default policy does not retry; without transactional DDL the table the call
    # created is dropped on a fresh connection
    assert faults.connects == (1 if fdb.backend.capabilities.transactional_ddl else 2)


def test_transient_error_mid_stream_on_a_live_connection_leaves_the_table_unchanged(
    fdb, table, stored, sql, faults
):  # type: ignore[no-untyped-def]
    """The connection survives (a serialization failure): bulkframe itself must roll the
    partly ingested rows back, before the connection is used again."""
    sql(f'CREATE TABLE "{table}" (id bigint, name text)')
    sql(f"INSERT INTO \"{table}\" (id, name) VALUES (1000, 'row 1000')")
    faults.fail_ingest(nth=1, after_batches=3, match=re.escape(table), sqlstate="40001", drop=False)
    with pytest.raises(TransientError, match="could not serialize") as info:
        fdb.bulk_create(table, _data(), batch_size=BATCH)
    assert faults.ingests == [(table, 30)]
    assert info.value.result.success_count == 0  # type: ignore[attr-defined]
    assert stored(table, "id, name", "id") == _rows([1000])
    # the same Database (and its kept connection) goes on to write exactly the next call's rows
    result = fdb.bulk_create(table, _data(5), batch_size=BATCH)
    assert result.inserted == 5
    assert stored(table, "id, name", "id") == _rows([0, 1, 2, 3, 4, 1000])


def test_failed_commit_rolls_back_the_whole_call(fdb, table, stored, faults):  # type: ignore[no-untyped-def]
    fault = faults.fail_commit(nth=1, landed=False)
    with pytest.raises(TransientError) as info:
        fdb.bulk_create(table, _data(), batch_size=BATCH)
    assert fault.fired == 1
    assert info.value.result.success_count == 0  # type: ignore[attr-defined]
    assert stored(table, "id, name", "id") is None


#: the statement dropping a staging table (MySQL: DROP TEMPORARY TABLE, backquoted)
STAGE_DROP = r'^\s*DROP (TEMPORARY )?TABLE IF EXISTS ["`]_bf_stage_'


@pytest.mark.parametrize("fault", ["connection_lost_while_staging", "serialization_failure_after_the_merge"])
def test_upsert_failure_leaves_the_table_unchanged(fdb, table, stored, sql, faults, fault):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, name text)')
    sql(f"INSERT INTO \"{table}\" (id, name) VALUES (1, 'old 1'), (2, 'old 2')")
    if fault == "connection_lost_while_staging":
        faults.fail_ingest(nth=2, sqlstate="08006", drop=True)  # the second batch's staging COPY
    else:  # the merge has run in the open transaction; dropping the stage then fails
        faults.fail_statement(match=STAGE_DROP, sqlstate="40001", drop=False)
    with pytest.raises(TransientError) as info:
        fdb.bulk_upsert(table, _data(), batch_size=BATCH)
    assert faults.fired == 1
    assert info.value.result.success_count == 0  # type: ignore[attr-defined]
    assert stored(table, "id, name", "id") == [(1, "old 1"), (2, "old 2")]
    # the next call on the same Database commits its own row and nothing left over
    again = fdb.bulk_upsert(table, [{"id": 2, "name": "new 2"}])
    assert (again.inserted, again.updated) == (0, 1)
    assert stored(table, "id, name", "id") == [(1, "old 1"), (2, "new 2")]


def _shared_stages(url: str, peek: Any) -> int:
    """Shared (UNLOGGED) staging tables in the database (PostgreSQL; 0 elsewhere)."""
    if not url.startswith("postgres"):
        return 0
    query = "SELECT count(*) FROM pg_class WHERE relname LIKE '\\_bf\\_stage\\_%' AND relpersistence = 'u'"
    return int(peek(query)[0][0])


@pytest.mark.parametrize("mode", ["update", "skip"])
@pytest.mark.parametrize("fault", ["connection_lost_staging_batch_3", "serialization_failure_at_batch_3"])
def test_create_with_conflicts_failure_in_a_later_batch_leaves_the_table_unchanged(  # type: ignore[no-untyped-def]
    url, fdb, table, stored, sql, peek, faults, fault, mode
):
    """bulk_create(conflict_resolution=…) is one transaction: a batch that fails after
    others merged (PostgreSQL: staged on the helper connection, or merged on the writing
    one) leaves the table as it was and no shared staging table."""
    sql(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, name text)')
    sql(f"INSERT INTO \"{table}\" (id, name) VALUES (1, 'old 1'), (2, 'old 2')")
    before = _shared_stages(url, peek)
    if fault == "connection_lost_staging_batch_3":
        faults.fail_ingest(nth=3, match="_bf_stage_", sqlstate="08006", drop=True)
    elif url.startswith("postgres"):  # the third batch's merge (one INSERT … ON CONFLICT per batch)
        faults.fail_statement(nth=3, match=f'INSERT INTO "{table}"', sqlstate="40001", drop=False)
    else:  # the statement emptying the stage for the third batch, after two batches merged
        faults.fail_statement(nth=2, match=r'^\s*DELETE FROM ["`]?_bf_stage_', sqlstate="40001", drop=False)
    with pytest.raises(TransientError) as info:
        fdb.bulk_create(table, _data(), conflict_resolution=mode, batch_size=BATCH)
    assert faults.fired == 1
    assert info.value.result.success_count == 0  # type: ignore[attr-defined]
    assert stored(table, "id, name", "id") == [(1, "old 1"), (2, "old 2")]
    assert _shared_stages(url, peek) == before
    again = fdb.bulk_create(table, _data(), conflict_resolution=mode, batch_size=BATCH)
    assert (again.inserted, again.updated + again.skipped) == (48, 2)
    old = [(1, "old 1"), (2, "old 2")] if mode == "skip" else _rows([1, 2])
    assert stored(table, "id, name", "id") == [(0, "row 0"), *old, *_rows(range(3, ROWS))]
    assert _shared_stages(url, peek) == before


@pytest.mark.parametrize("fault", ["connection_lost_while_staging", "serialization_failure_after_the_merge"])
def test_upsert_retry_batch_reruns_the_whole_call_exactly_once(fdb, table, stored, sql, faults, fault):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, name text)')
    sql(f"INSERT INTO \"{table}\" (id, name) VALUES (1, 'old 1'), (2, 'old 2')")
    if fault == "connection_lost_while_staging":
        faults.fail_ingest(nth=2, sqlstate="08006", drop=True)
    else:
        faults.fail_statement(match=STAGE_DROP, sqlstate="40001", drop=False)
    result = fdb.bulk_upsert(table, _data(), batch_size=BATCH, error_strategy="retry_batch", retry_delay=0)
    assert faults.fired == 1
    assert (result.records_processed, result.inserted, result.updated, result.failure_count) == (50, 48, 2, 0)
    assert stored(table, "id, name", "id") == _rows(range(ROWS))


# -- continue: bisection isolates exactly the refused rows ------------------------------------


def test_continue_bisects_a_refused_batch_down_to_the_bad_rows(fdb, table, stored, faults):  # type: ignore[no-untyped-def]
    bad = [3, 17, 18, 41]
    refusal = faults.refuse_rows("id", bad)
    result = fdb.bulk_create(table, _data(), batch_size=20, error_strategy="continue")
    assert refusal.fired > 0
    assert _errors(result) == [(i, "23514") for i in bad]
    assert [r["record"]["id"] for r in result.errors.iter_rows(named=True)] == bad
    assert (result.records_processed, result.success_count, result.failure_count) == (50, 46, 4)
    assert stored(table, "id, name", "id") == _rows(i for i in range(ROWS) if i not in bad)


def test_continue_rejects_a_batch_lost_to_a_transient_error_and_writes_the_rest(fdb, table, stored, faults):  # type: ignore[no-untyped-def]
    faults.fail_ingest(nth=2, match=re.escape(table), sqlstate="08006", drop=True)
    result = fdb.bulk_create(table, _data(), batch_size=BATCH, error_strategy="continue")
    assert _errors(result) == [(i, "08006") for i in range(10, 20)]
    assert (result.success_count, result.failure_count) == (40, 10)
    assert stored(table, "id, name", "id") == _rows(i for i in range(ROWS) if not 10 <= i < 20)


# -- "did it land?": the ledger decides after a COMMIT whose answer was lost -------------------


@pytest.mark.parametrize("strategy", ["stop", "continue", "retry_batch"])
def test_commit_that_landed_is_not_written_again(fdb, table, stored, faults, tmp_path, strategy):  # type: ignore[no-untyped-def]
    """The server committed the 3rd batch, then the connection dropped before the client
    heard: the ledger row committed with it says so; nothing is retried or doubled."""
    fault = faults.fail_commit(nth=3, landed=True)
    options: dict[str, Any] = {"retry_delay": 0} if strategy == "retry_batch" else {}
    result = fdb.bulk_create(
        table,
        _data(),
        batch_size=BATCH,
        error_strategy=strategy,
        resumable=True,
        checkpoint_file=str(tmp_path / "load.json"),
        **options,
    )
    assert fault.fired == 1 and faults.connects == 2
    assert (result.records_processed, result.success_count, result.inserted, result.failure_count) == (
        50,
        50,
        50,
        0,
    )
    assert result.errors is None and "retries" not in result.metrics
    assert result.batches_committed == 5
    assert stored(table, "id, name", "id") == _rows(range(ROWS))
    assert not (tmp_path / "load.json").exists()


def test_commit_that_did_not_land_is_retried_once(fdb, table, stored, faults, tmp_path):  # type: ignore[no-untyped-def]
    fault = faults.fail_commit(nth=3, landed=False)
    result = fdb.bulk_create(
        table,
        _data(),
        batch_size=BATCH,
        error_strategy="retry_batch",
        retry_delay=0,
        resumable=True,
        checkpoint_file=str(tmp_path / "load.json"),
    )
    assert fault.fired == 1
    assert (result.success_count, result.inserted, result.failure_count) == (50, 50, 0)
    assert result.metrics["retries"] == 1
    assert stored(table, "id, name", "id") == _rows(range(ROWS))


def test_retry_batch_without_resumable_also_asks_the_ledger(fdb, table, stored, faults):  # type: ignore[no-untyped-def]
    fault = faults.fail_commit(nth=2, landed=True)
    result = fdb.bulk_create(table, _data(), batch_size=BATCH, error_strategy="retry_batch", retry_delay=0)
    assert fault.fired == 1
    assert (result.success_count, result.inserted, result.failure_count) == (50, 50, 0)
    assert "retries" not in result.metrics
    assert stored(table, "id, name", "id") == _rows(range(ROWS))


def test_resumable_stop_stops_at_a_commit_that_did_not_land_and_resumes(fdb, table, stored, faults, tmp_path):  # type: ignore[no-untyped-def]
    """``stop`` with ``resumable=True`` commits per batch and "stops at the first failure";
    the rerun with the same checkpoint writes exactly the rest."""
    checkpoint = str(tmp_path / "load.json")
    faults.fail_commit(nth=3, landed=False)
    with pytest.raises(TransientError) as info:
        fdb.bulk_create(table, _data(), batch_size=BATCH, resumable=True, checkpoint_file=checkpoint)
    result = info.value.result  # type: ignore[attr-defined]
    assert (result.success_count, result.committed_ranges) == (20, [(0, 10), (10, 20)])
    assert stored(table, "id, name", "id") == _rows(range(20))
    again = fdb.bulk_create(table, _data(), batch_size=BATCH, resumable=True, checkpoint_file=checkpoint)
    assert again.metrics["resumed_rows"] == 20 and again.inserted == 30
    assert stored(table, "id, name", "id") == _rows(range(ROWS))


def test_the_wrapper_is_transparent_when_no_fault_is_armed(fdb, table, stored, faults):  # type: ignore[no-untyped-def]
    """Control: the wrapper itself changes nothing (same counts, every statement reaches the server)."""
    result = fdb.bulk_create(table, _data(), batch_size=BATCH)
    assert (result.inserted, result.success_count, faults.fired, faults.connects) == (50, 50, 0, 1)
    assert faults.ingests == [(table, -1)]  # one streamed COPY / ingest for the whole call
    assert stored(table, "id, name", "id") == _rows(range(ROWS))


def test_continue_commit_that_landed_is_counted_as_written(fdb, table, stored, faults):  # type: ignore[no-untyped-def]
    fault = faults.fail_commit(nth=3, landed=True)
    result = fdb.bulk_create(table, _data(), batch_size=BATCH, error_strategy="continue")
    assert fault.fired == 1
    assert stored(table, "id, name", "id") == _rows(range(ROWS))
    assert (result.success_count, result.failure_count, result.errors) == (50, 0, None)


@pytest.mark.parametrize("op", ["create", "upsert"])
def test_database_is_usable_after_a_call_lost_its_connection(fdb, table, stored, sql, faults, op):  # type: ignore[no-untyped-def]
    """The pool pings a used connection on checkout: the dead one is replaced, not reused."""
    sql(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, name text)')
    faults.fail_ingest(nth=1, sqlstate="08006", drop=True)
    write = fdb.bulk_create if op == "create" else fdb.bulk_upsert
    with pytest.raises(TransientError):
        write(table, _data(), batch_size=BATCH)
    assert stored(table, "id, name", "id") == []
    result = write(table, _data(5), batch_size=BATCH)  # the next cell of the notebook
    assert result.inserted == 5 and faults.connects == 2
    assert stored(table, "id, name", "id") == _rows(range(5))


def test_failed_non_resumable_run_leaves_no_ledger_rows(fdb, table, peek, faults):  # type: ignore[no-untyped-def]
    faults.fail_statement(
        match=LEDGER_INSERT, when=_ledger_row_of(10), times=None, sqlstate="40001", drop=False
    )
    with pytest.raises(TransientError):
        fdb.bulk_create(table, _data(), batch_size=BATCH, error_strategy="retry_batch", retry_delay=0)
    assert _ledger_rows_of_run(peek, faults) == 0
