"""Recovery under injected faults on MySQL/MariaDB: the loader's connection is killed
(``KILL <id>``) while it loads; ``retry_batch`` reconnects and the table ends with every row
exactly once.  Run alone with ``pytest -m faults``; skipped, saying why, without a server."""

from __future__ import annotations

import threading
import time
import uuid

import pyarrow as pa
import pytest

import bulkframe as bf
from suite_backends import MYSQL_URL, _mysql_down, _mysql_query

pytestmark = [pytest.mark.faults, pytest.mark.mysql, pytest.mark.slow]

ROWS = 300_000


@pytest.fixture
def mysql_table():  # type: ignore[no-untyped-def]
    reason = _mysql_down(MYSQL_URL)
    if reason is not None:
        pytest.skip(reason)
    name = f"bf_fault_{uuid.uuid4().hex[:8]}"
    yield name
    _mysql_query(MYSQL_URL, f'DROP TABLE IF EXISTS "{name}"')


def test_killed_connections_are_retried_without_loss_or_duplicates(mysql_table):  # type: ignore[no-untyped-def]
    _mysql_query(MYSQL_URL, f'CREATE TABLE "{mysql_table}" (id bigint PRIMARY KEY, payload varchar(20))')
    done = threading.Event()
    kills: list[int] = []

    def killer() -> None:
        while not done.is_set() and len(kills) < 3:
            loading = _mysql_query(
                MYSQL_URL,
                "SELECT id FROM information_schema.processlist WHERE info LIKE %s AND id <> CONNECTION_ID()",
                (f"LOAD DATA LOCAL INFILE%{mysql_table}%",),
            )
            for (thread_id,) in loading:
                try:
                    _mysql_query(MYSQL_URL, f"KILL {int(thread_id)}")
                    kills.append(int(thread_id))
                except Exception:  # it finished meanwhile
                    pass
            time.sleep(0.01 if not kills else 0.3)

    ids = pa.array(range(ROWS), pa.int64())
    data = pa.table({"id": ids, "payload": pa.compute.cast(ids, pa.string())})
    thread = threading.Thread(target=killer)
    thread.start()
    try:
        with bf.connect(MYSQL_URL) as db:
            result = db.bulk_create(
                mysql_table,
                data,
                # batches that each take a while to load (~0.2 s): the killer, polling every
                # 10 ms, finds one in progress however fast the machine is (20,000-row
                # batches finished between polls on a quiet machine)
                batch_size=100_000,
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
    count, distinct, total = _mysql_query(
        MYSQL_URL, f'SELECT count(*), count(DISTINCT id), sum(id) FROM "{mysql_table}"'
    )[0]
    assert (count, distinct, int(total)) == (ROWS, ROWS, ROWS * (ROWS - 1) // 2)
