"""Parallel batches, cleanup and resumability on every backend (PostgreSQL writes in
parallel; SQLite refuses it clearly)."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest

import bulkframe as bf
from bulkframe.errors import InvalidOptionValueError, NotSupportedError, ValidationError
from suite_backends import SuiteBackend

N = 20_000


def _data(n: int = N) -> pa.Table:
    ids = pa.array(range(n), pa.int64())
    return pa.table({"id": ids, "qty": pa.compute.cast(pa.compute.bit_wise_and(ids, 1023), pa.int64())})


def _staging_tables(db: bf.Database, suite_backend: SuiteBackend) -> list[str]:
    conn = db.backend.connect()
    try:
        rows = conn.fetchall(suite_backend.staging_tables_sql)
        conn.commit()
        return [r[0] for r in rows]
    finally:
        conn.close()


def test_parallel_batches_write_every_row_exactly_once(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, qty integer CHECK (qty < 1000))')
    if not db.backend.capabilities.concurrent_writers:
        with pytest.raises(NotSupportedError, match="one writer"):
            db.bulk_create(table, _data(), parallel_batches=4, error_strategy="continue")
        return
    result = db.bulk_create(
        table,
        _data(),
        batch_size=1000,
        parallel_batches=4,
        max_workers=3,
        connection_pool_size=3,
        load_balancing="round_robin",
        error_strategy="continue",
    )
    bad = {i for i in range(N) if (i & 1023) >= 1000}  # refused by the CHECK constraint
    assert set(result.errors["row"].to_list()) == bad
    assert result.success_count == N - len(bad) and result.failure_count == len(bad)
    assert result.batches == result.batches_committed == N // 1000
    assert result.committed_ranges == [(i, i + 1000) for i in range(0, N, 1000)]
    assert sorted(db.read(table)["id"].to_list()) == sorted(set(range(N)) - bad)


def test_parallel_options_are_checked(db, table, stored):  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidOptionValueError, match="connection_pool_size=2"):
        db.bulk_create(table, _data(10), parallel_batches=4, connection_pool_size=2)
    assert stored(table) is None  # refused before anything was created
    with pytest.raises(InvalidOptionValueError, match="load_balancing='least_loaded'"):
        db.bulk_create(table, _data(10), parallel_batches=2, load_balancing="least_loaded")
    assert stored(table) is None  # refused before anything was created
    with pytest.raises(InvalidOptionValueError, match="resumable=True"):
        db.bulk_create(table, _data(10), checkpoint_file="x.json")
    assert stored(table) is None  # refused before anything was created


def test_no_staging_table_survives_success_failure_or_interrupt(db, table, sql, suite_backend):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, qty integer)')
    db.bulk_create(table, _data(1000), conflict_resolution="update", batch_size=300)
    assert _staging_tables(db, suite_backend) == []
    with pytest.raises(ValidationError):
        db.bulk_create(
            table,
            _data(1000),
            conflict_resolution="update",
            batch_size=300,
            validation_rules={"qty": {"max": 500}},
        )
    assert _staging_tables(db, suite_backend) == []

    def interrupt(progress: bf.Progress) -> None:
        if progress.processed >= 600:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        db.bulk_create(
            table, _data(2000), conflict_resolution="update", batch_size=300, progress_callback=interrupt
        )
    assert _staging_tables(db, suite_backend) == []
    assert db.read(table).height == 1000  # the interrupted call left nothing


def test_cleanup_connections_closes_the_connection(db, table):  # type: ignore[no-untyped-def]
    db.bulk_create(table, _data(10), primary_key="id")
    assert db.pool_status()["checked_in"] == 1  # kept in the pool for the next call
    db.bulk_create(table, _data(10), conflict_resolution="skip", cleanup_connections=True)
    assert db.pool_status() == {"size": 5, "max_overflow": 10, "checked_in": 0, "checked_out": 0}


def _ledger_rows(db: bf.Database) -> int:
    if db.columns("_bulkframe_ledger") is None:
        return 0
    return db.read("_bulkframe_ledger").height


def test_resumable_run_cleans_its_checkpoint(db, table, tmp_path):  # type: ignore[no-untyped-def]
    checkpoint = tmp_path / f"{uuid.uuid4().hex}.json"
    before = _ledger_rows(db)
    seen = []
    result = db.bulk_create(
        table,
        _data(1000),
        batch_size=100,
        primary_key="id",
        resumable=True,
        checkpoint_file=str(checkpoint),
        checkpoint_interval=300,
        progress_callback=lambda p: seen.append(checkpoint.exists()),
    )
    assert all(seen) and len(seen) == 10  # the checkpoint existed while the load ran
    assert result.success_count == 1000 and result.batches_committed == 10
    assert not checkpoint.exists()
    assert _ledger_rows(db) == before


def test_resumable_stop_keeps_committed_batches_and_resumes(db, table, sql, tmp_path):  # type: ignore[no-untyped-def]
    """With resumable=True each batch commits; "stop" stops at the first bad batch, and a
    rerun (with the data fixed) resumes after the committed batches."""
    sql(f'CREATE TABLE "{table}" (id bigint primary key, qty integer)')
    checkpoint = tmp_path / "cp.json"
    rows = [{"id": i, "qty": i} for i in range(100)]
    rows[55]["qty"] = "broken"
    with pytest.raises(ValidationError) as info:
        db.bulk_create(
            table,
            rows,
            batch_size=10,
            resumable=True,
            checkpoint_file=str(checkpoint),
            validation_rules={"qty": {"min": 0}},
        )
    assert info.value.result.committed_ranges == [(i, i + 10) for i in range(0, 50, 10)]
    assert sorted(db.read(table)["id"].to_list()) == list(range(50))
    rows[55]["qty"] = 55
    # a fixed row changes batch 5's fingerprint, but batch 5 never committed: resume is allowed
    result = db.bulk_create(table, rows, batch_size=10, resumable=True, checkpoint_file=str(checkpoint))
    assert result.metrics["resumed_batches"] == 5 and result.records_processed == 50
    assert sorted(db.read(table)["id"].to_list()) == list(range(100))


def test_metrics_per_batch_and_totals_written_as_json(db, table, tmp_path):  # type: ignore[no-untyped-def]
    import json

    metrics_file, report_file = tmp_path / "m.json", tmp_path / "r.json"
    result = db.bulk_create(
        table,
        _data(1000),
        batch_size=250,
        primary_key="id",
        collect_metrics=True,
        metrics_file=str(metrics_file),
        metrics_interval=500,
        monitor_memory=True,
        monitor_cpu=True,
        monitor_disk_io=True,
        monitor_network=True,
        performance_report=True,
        report_format="json",
        report_file=str(report_file),
    )
    m = result.metrics
    assert [b["rows"] for b in m["batch_metrics"]] == [250] * 4
    assert [b["offset"] for b in m["batch_metrics"]] == [0, 250, 500, 750]
    assert all(b["seconds"] > 0 and b["bytes"] > 0 and b["retries"] == 0 for b in m["batch_metrics"])
    assert [s["rows"] for s in m["snapshots"]] == [500, 1000]
    assert m["records_processed"] == 1000 and m["peak_rss_bytes"] > 0 and m["cpu_seconds"] > 0
    assert "disk_write_bytes" in m and "host_net_sent_bytes" in m
    assert json.loads(metrics_file.read_text())["batch_metrics"] == m["batch_metrics"]
    assert json.loads(report_file.read_text())["records_processed"] == 1000


def test_metric_options_that_cannot_be_honoured_are_refused(db, table, stored):  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidOptionValueError, match="report_format='csv'"):
        db.bulk_create(table, _data(10), performance_report=True, report_format="csv", report_file="x.csv")
    assert stored(table) is None  # refused before anything was created
    with pytest.raises(InvalidOptionValueError, match="metrics_file needs collect_metrics"):
        db.bulk_create(table, _data(10), metrics_file="m.json")
    assert stored(table) is None  # refused before anything was created
    with pytest.raises(InvalidOptionValueError, match="benchmark_iterations and benchmark_warmup need"):
        db.bulk_create(table, _data(10), benchmark_iterations=5)
    assert stored(table) is None  # refused before anything was created
