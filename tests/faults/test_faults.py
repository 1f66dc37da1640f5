"""Recovery under injected faults, on PostgreSQL: killed backends and a killed loader.

Run alone with ``pytest -m faults``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import bulkframe as bf
from bulkframe.errors import CheckpointError

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.slow]

ROWS = 1_000_000


def _with_app_name(url: str, name: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


def _scalar(url: str, sql: str, params: tuple = ()) -> object:  # type: ignore[type-arg]
    with bf.connect(url) as db:
        conn = db.backend.connect()
        try:
            value = conn.scalar(sql, params)
            conn.commit()
            return value
        finally:
            conn.close()


def _table(n: int) -> pa.Table:
    ids = pa.array(range(n), pa.int64())
    return pa.table({"id": ids, "payload": pa.compute.cast(ids, pa.string())})


@pytest.fixture
def pg_table(pg_url: str):  # type: ignore[no-untyped-def]
    name = f"bf_fault_{uuid.uuid4().hex[:8]}"
    yield name
    with bf.connect(pg_url) as db:
        db.drop_table(name)


def test_terminated_backends_are_retried_without_loss_or_duplicates(pg_url, pg_table):  # type: ignore[no-untyped-def]
    app = f"bf_fault_{uuid.uuid4().hex[:8]}"
    loader_url = _with_app_name(pg_url, app)
    _scalar(pg_url, f'CREATE TABLE "{pg_table}" (id bigint PRIMARY KEY, payload text)')
    done = threading.Event()
    kills: list[int] = []

    def killer() -> None:
        time.sleep(0.4)
        while not done.is_set() and len(kills) < 5:
            killed = _scalar(
                pg_url,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                (app,),
            )
            if killed:
                kills.append(int(killed))  # type: ignore[call-overload]
            time.sleep(0.5)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        with bf.connect(loader_url) as db:
            result = db.bulk_create(
                pg_table,
                _table(ROWS),
                batch_size=50_000,
                error_strategy="retry_batch",
                max_retries=20,
                retry_delay=0.05,
                retry_backoff="constant",
            )
    finally:
        done.set()
        thread.join()
    assert kills, "the fault was never injected; the test proved nothing"
    assert result.metrics.get("retries", 0) >= 1
    assert result.success_count == result.inserted == ROWS and result.failure_count == 0
    assert _scalar(pg_url, f'SELECT count(*) FROM "{pg_table}"') == ROWS
    assert _scalar(pg_url, f'SELECT count(DISTINCT id) FROM "{pg_table}"') == ROWS
    assert _scalar(pg_url, f'SELECT sum(id)::bigint FROM "{pg_table}"') == ROWS * (ROWS - 1) // 2


LOADER = textwrap.dedent(
    """
    import json, sys
    import bulkframe as bf
    url, table, path, checkpoint = sys.argv[1:5]
    with bf.connect(url) as db:
        r = db.bulk_create(table, path, batch_size=20_000, resumable=True, checkpoint_file=checkpoint,
                           checkpoint_interval=40_000, error_strategy="continue")
    print(json.dumps({"success": r.success_count, "processed": r.records_processed, "metrics": r.metrics}))
    """
)


def test_kill_minus_nine_then_rerun_resumes_exactly(pg_url, pg_table, tmp_path):  # type: ignore[no-untyped-def]
    data = tmp_path / "input.parquet"
    pq.write_table(_table(ROWS), data, row_group_size=50_000)
    script = tmp_path / "loader.py"
    script.write_text(LOADER)
    checkpoint = tmp_path / "load.checkpoint.json"
    # no primary key: a doubled batch would show up as duplicate rows
    _scalar(pg_url, f'CREATE TABLE "{pg_table}" (id bigint, payload text)')
    args = [sys.executable, str(script), pg_url, pg_table, str(data), str(checkpoint)]
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        landed = _scalar(pg_url, f'SELECT count(*) FROM "{pg_table}"')
        if landed and int(landed) >= 5 * 20_000:  # type: ignore[call-overload]
            break
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    partial = int(_scalar(pg_url, f'SELECT count(*) FROM "{pg_table}"'))  # type: ignore[call-overload]
    assert 0 < partial < ROWS, "the loader was not killed mid-run"
    assert partial % 20_000 == 0, "a batch landed partly: batches must be atomic"
    assert checkpoint.exists()

    second = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout.strip().splitlines()[-1])
    assert report["metrics"]["resumed_rows"] >= partial
    assert report["processed"] == ROWS - report["metrics"]["resumed_rows"]
    assert _scalar(pg_url, f'SELECT count(*) FROM "{pg_table}"') == ROWS
    assert _scalar(pg_url, f'SELECT count(DISTINCT id) FROM "{pg_table}"') == ROWS
    assert not checkpoint.exists()  # auto_cleanup after success


def test_checkpoint_from_different_input_is_refused(pg_url, pg_table, tmp_path):  # type: ignore[no-untyped-def]
    checkpoint = tmp_path / "cp.json"
    _scalar(pg_url, f'CREATE TABLE "{pg_table}" (id bigint, payload text)')
    with bf.connect(pg_url) as db:
        db.bulk_create(
            pg_table,
            _table(100),
            batch_size=10,
            resumable=True,
            checkpoint_file=str(checkpoint),
            auto_cleanup=False,
        )
        assert checkpoint.exists()  # kept: auto_cleanup=False
        other = _table(100).set_column(1, "payload", pa.array([f"other {i}" for i in range(100)]))
        with pytest.raises(CheckpointError, match="fingerprint mismatch"):
            db.bulk_create(pg_table, other, batch_size=10, resumable=True, checkpoint_file=str(checkpoint))
        with pytest.raises(CheckpointError, match="batch_size=10"):
            db.bulk_create(
                pg_table, _table(100), batch_size=20, resumable=True, checkpoint_file=str(checkpoint)
            )
    assert _scalar(pg_url, f'SELECT count(*) FROM "{pg_table}"') == 100
    run_key = json.loads(checkpoint.read_text())["run_key"]
    _scalar(pg_url, 'DELETE FROM "_bulkframe_ledger" WHERE run_key = $1', (run_key,))
    os.remove(checkpoint)
    Path(str(checkpoint) + ".tmp").unlink(missing_ok=True)
