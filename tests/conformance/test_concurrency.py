"""One ``Database`` shared by threads (a bounded connection pool), and concurrent writers
that overlap on keys: atomic_ops are applied in SQL (``x = x + n``) under row locks taken
in key order, upserts into one table queue behind a transaction-scoped lock, and
``retry_batch`` retries a deadlocked upsert as a whole.  Stored values are read back through an independent client
(``peek``)."""

from __future__ import annotations

import multiprocessing as mp
import random
import threading
import time
import uuid
from typing import Any

import pytest

import bulkframe as bf
from bulkframe.errors import (
    DatabaseClosedError,
    InvalidOptionValueError,
    OptionError,
    PoolTimeoutError,
    TransientError,
)
from bulkframe.types import Column

THREADS = 8
ROUNDS = 6
ROWS = 20
CREATED = 50


def _run_threads(n: int, work: Any) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(seed: int) -> None:
        try:
            work(seed)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(s,)) for s in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hangs"
    return errors


def test_threads_share_one_database(db, table, sql, peek):  # type: ignore[no-untyped-def]
    """8 threads on ONE db: concurrent $inc on the same ids (in different orders) and
    bulk_create into a table each; every value ends exact, no call fails."""
    sql(f'CREATE TABLE "{table}" (id bigint primary key, stock integer, views integer)')
    db.bulk_create(table, [{"id": i, "stock": 1000, "views": 0} for i in range(ROWS)])
    tables = [f"{table}_t{t}" for t in range(THREADS)]
    start = threading.Barrier(THREADS)

    def work(seed: int) -> None:
        start.wait()
        for r in range(ROUNDS):
            ids = list(range(ROWS))
            if (seed + r) % 2:
                ids.reverse()  # different orders must queue, not deadlock
            rows = [
                {"id": i, "atomic_ops": {"stock": {"$inc": -1}, "views": {"$inc": seed + 1}}} for i in ids
            ]
            result = db.bulk_update(table, rows, ensure_atomic=True)
            assert result.updated == ROWS
            created = db.bulk_create(
                tables[seed], [{"id": r * CREATED + i, "who": seed} for i in range(CREATED)], primary_key="id"
            )
            assert created.success_count == CREATED

    try:
        errors = _run_threads(THREADS, work)
        assert not errors, errors
        assert peek(f'SELECT id, stock, views FROM "{table}" ORDER BY id') == [
            (i, 1000 - THREADS * ROUNDS, ROUNDS * sum(s + 1 for s in range(THREADS))) for i in range(ROWS)
        ]
        for seed, name in enumerate(tables):
            assert peek(f'SELECT count(*), count(DISTINCT id), min(who), max(who) FROM "{name}"') == [
                (ROUNDS * CREATED, ROUNDS * CREATED, seed, seed)
            ]
        status = db.pool_status()
        assert status["checked_out"] == 0 and 1 <= status["checked_in"] <= status["size"]
    finally:
        for name in tables:
            db.drop_table(name)


def test_pool_is_bounded_and_callers_wait(url, table, sql, peek):  # type: ignore[no-untyped-def]
    """More threads than connections: the calls wait for a free one, never exceed it."""
    with bf.connect(url, pool_size=2, max_overflow=0, pool_timeout=120) as db:
        sql(f'CREATE TABLE "{table}" (id bigint primary key, n integer)')
        db.bulk_create(table, [{"id": i, "n": 0} for i in range(5)])
        peak = [0]
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], db.pool_status()["checked_out"])
                time.sleep(0.001)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            errors = _run_threads(
                6,
                lambda seed: [
                    db.bulk_update(table, [{"id": i, "atomic_ops": {"n": {"$inc": 1}}} for i in range(5)])
                    for _ in range(4)
                ],
            )
        finally:
            done.set()
            watcher.join()
        assert not errors, errors
        assert peak[0] == 2  # both connections were in use at once, never a third
        assert peek(f'SELECT id, n FROM "{table}" ORDER BY id') == [(i, 24) for i in range(5)]


def test_pool_timeout_is_a_clear_error_and_writes_nothing(url, table, peek):  # type: ignore[no-untyped-def]
    with bf.connect(url, pool_size=1, max_overflow=0, pool_timeout=0.2) as db:
        held = db.connection()
        try:
            with pytest.raises(PoolTimeoutError) as info:
                db.bulk_create(table, [{"id": 1}], primary_key="id")
        finally:
            db.release(held)
        message = str(info.value)
        assert "pool_timeout=0.2s" in message and "pool_size=1" in message and "max_overflow=0" in message
        assert db.columns(table) is None  # nothing was created
        assert db.bulk_create(table, [{"id": 1}], primary_key="id").success_count == 1
        assert peek(f'SELECT id FROM "{table}"') == [(1,)]


def test_pool_options_are_checked(url):  # type: ignore[no-untyped-def]
    with pytest.raises(OptionError, match="did you mean 'pool_size'"):
        bf.connect(url, pool_sise=3)
    for option, value in (("pool_size", 0), ("max_overflow", -1), ("pool_timeout", 0), ("pool_size", True)):
        with pytest.raises(InvalidOptionValueError, match=option):
            bf.connect(url, **{option: value})


def test_connection_pool_size_must_fit_the_pool(url, table):  # type: ignore[no-untyped-def]
    with bf.connect(url, pool_size=2, max_overflow=1) as db:
        with pytest.raises(
            InvalidOptionValueError, match=r"connection_pool_size=4 cannot be honoured.*at most 3"
        ):
            db.bulk_create(table, [{"id": 1}], connection_pool_size=4)
        assert db.columns(table) is None


def test_checkouts_share_no_transaction_or_staging_table(url, table, peek):  # type: ignore[no-untyped-def]
    """A connection comes back from the pool rolled back and without staging tables
    (also ones a per-batch run committed), whatever the previous caller left."""
    with bf.connect(url, pool_size=1, max_overflow=0) as db:
        db.bulk_create(table, [{"id": 1, "v": "a"}], primary_key="id")
        conn = db.connection()
        stage = db.backend.create_stage(conn, [Column("id", "int64")])
        conn.commit()  # the staging table outlives this transaction
        conn.run(f"INSERT INTO \"{table}\" (id, v) VALUES (2, 'uncommitted')")
        db.release(conn)  # neither the row nor the staging table may reach the next caller
        again = db.connection()
        try:
            assert again.raw is conn.raw  # the same pooled connection
            assert again.scalar(f'SELECT count(*) FROM "{table}"') == 1
            with pytest.raises(bf.errors.DatabaseError):
                again.scalar(f"SELECT count(*) FROM {db.backend.qualified(stage)}")
            again.rollback()
        finally:
            db.release(again)
        assert peek(f'SELECT id, v FROM "{table}"') == [(1, "a")]


def test_closed_database_refuses_calls(url, table):  # type: ignore[no-untyped-def]
    db = bf.connect(url)
    db.bulk_create(table, [{"id": 1}], primary_key="id")
    db.close()
    db.close()  # idempotent
    assert db.closed
    with pytest.raises(DatabaseClosedError, match=r"closed.*bulkframe.connect"):
        db.bulk_create(table, [{"id": 2}])
    with pytest.raises(DatabaseClosedError):
        db.read(table)
    with bf.connect(url) as other:
        assert other.read(table)["id"].to_list() == [1]
        other.drop_table(table)


# --------------------------------------------------------------------- PostgreSQL only


@pytest.mark.postgres
def test_dead_pooled_connection_is_replaced(pg_url):  # type: ignore[no-untyped-def]
    import psycopg

    table = f"bf_test_{uuid.uuid4().hex[:10]}"
    with bf.connect(pg_url, pool_size=1, max_overflow=0) as db:
        conn = db.connection()
        pid = conn.scalar("SELECT pg_backend_pid()")
        conn.commit()
        db.release(conn)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
            try:
                result = db.bulk_create(table, [{"id": 1}, {"id": 2}], primary_key="id")
                assert result.success_count == 2
                assert admin.execute(f'SELECT id FROM "{table}" ORDER BY id').fetchall() == [(1,), (2,)]
                conn = db.connection()
                try:
                    assert conn.scalar("SELECT pg_backend_pid()") != pid
                finally:
                    db.release(conn)
            finally:
                admin.execute(f'DROP TABLE IF EXISTS "{table}"')


def _deadlock_upsert(pg_url: str, table: str, **options: Any) -> tuple[Any, BaseException | None]:
    """An upsert of ids 1, 2 (its UPDATE visits row 1 first) deadlocks with a writer that
    locks 2, then 1.

    Returns the upsert's result or error once both are done (the other writer commits)."""
    import psycopg

    out: dict[str, Any] = {}
    with psycopg.connect(pg_url, autocommit=True) as admin, psycopg.connect(pg_url) as other:
        admin.execute(f'CREATE TABLE "{table}" (id bigint primary key, v integer)')
        admin.execute(f'INSERT INTO "{table}" VALUES (1, 0), (2, 0)')
        # the upsert's deadlock check (deadlock_timeout 1 s) must fire first, also on a busy machine
        other.execute("SET deadlock_timeout = '60s'")
        other.execute(f'UPDATE "{table}" SET v = 200 WHERE id = 2')  # holds row 2

        def upsert() -> None:
            try:
                with bf.connect(pg_url) as db:
                    out["result"] = db.bulk_upsert(table, [{"id": 1, "v": 1}, {"id": 2, "v": 2}], **options)
            except BaseException as exc:
                out["error"] = exc

        thread = threading.Thread(target=upsert)
        thread.start()
        deadline = time.monotonic() + 30
        while not admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
            (f'%"{table}"%',),  # the merge's UPDATE … FROM waits for row 2
        ).fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline, "the upsert never waited for row 2"
            time.sleep(0.01)
        other.execute(f'UPDATE "{table}" SET v = 100 WHERE id = 1')  # the upsert holds row 1: a cycle
        other.commit()
        thread.join(timeout=60)
        assert not thread.is_alive()
    return out.get("result"), out.get("error")


@pytest.mark.postgres
def test_upsert_deadlock_surfaces_without_retry_and_writes_nothing(pg_url):  # type: ignore[no-untyped-def]
    import psycopg

    table = f"bf_test_{uuid.uuid4().hex[:10]}"
    try:
        result, error = _deadlock_upsert(pg_url, table)
        assert result is None and isinstance(error, TransientError)
        assert "deadlock detected" in str(error) and error.sqlstate == "40P01"
        assert error.result is not None and error.result.success_count == 0
        with psycopg.connect(pg_url) as check:
            assert check.execute(f'SELECT id, v FROM "{table}" ORDER BY id').fetchall() == [
                (1, 100),
                (2, 200),
            ]
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP TABLE IF EXISTS "{table}"')


@pytest.mark.postgres
def test_upsert_retry_batch_retries_a_deadlock_with_exact_counts(pg_url):  # type: ignore[no-untyped-def]
    import psycopg

    table = f"bf_test_{uuid.uuid4().hex[:10]}"
    try:
        result, error = _deadlock_upsert(
            pg_url, table, error_strategy="retry_batch", max_retries=2, retry_delay=0.05
        )
        assert error is None, error
        assert (result.inserted, result.updated, result.skipped) == (0, 2, 0)  # counted once
        assert result.records_processed == result.success_count == 2 and result.failure_count == 0
        assert result.metrics["retries"] == 1
        with psycopg.connect(pg_url) as check:  # the retry ran after the other writer committed
            assert check.execute(f'SELECT id, v FROM "{table}" ORDER BY id').fetchall() == [(1, 1), (2, 2)]
    finally:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP TABLE IF EXISTS "{table}"')


# two processes, random order --------------------------------------------------------

UPSERT_KEYS = 20_000
UPSERT_BATCH = 4_000
UPSERT_ROUNDS = 5
UPDATE_KEYS = 10_000
UPDATE_ROUNDS = 3


def _writer_process(
    url: str, table: str, op: str, keys: int, rounds: int, seed: int, barrier: Any, out: Any
) -> None:
    """One process: each round write every key, shuffled by its own seed, in batches."""
    try:
        db = bf.connect(url)
    except BaseException as exc:
        out.put((seed, -1, "error", repr(exc)))
        raise
    with db:
        for rnd in range(rounds):
            order = list(range(keys))
            random.Random(seed * 1000 + rnd).shuffle(order)
            rows = [{"id": k, "v": k * 10 + rnd} for k in order]
            barrier.wait(timeout=120)  # the parent has reset the table
            try:
                if op == "upsert":
                    result = db.bulk_upsert(table, rows, batch_size=UPSERT_BATCH)
                else:
                    result = db.bulk_update(table, rows, batch_size=UPSERT_BATCH)
                out.put((seed, rnd, "ok", (result.inserted, result.updated, result.skipped)))
            except Exception as exc:
                out.put((seed, rnd, type(exc).__name__, str(exc).splitlines()[0]))
            barrier.wait(timeout=120)  # the parent checks the table


def _two_writers(pg_url: str, op: str, keys: int, rounds: int) -> None:
    """Both processes write the same keys in different random orders at the same moment;
    each round must end with no error and an exact table and exact counts."""
    import psycopg

    table = f"bf_test_{uuid.uuid4().hex[:10]}"
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(3)
    out = ctx.Queue()
    existing = 2 if op == "upsert" else 1  # upsert: every other key exists; update: all do
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE TABLE "{table}" (id bigint primary key, v bigint not null)')
        procs = [
            ctx.Process(target=_writer_process, args=(pg_url, table, op, keys, rounds, seed, barrier, out))
            for seed in (1, 2)
        ]
        for p in procs:
            p.start()
        finished = False
        try:
            for rnd in range(rounds):
                admin.execute(f'TRUNCATE "{table}"')
                admin.execute(
                    f'INSERT INTO "{table}" SELECT g, -1 FROM generate_series(0, %s, %s) g',
                    (keys - 1, existing),
                )
                barrier.wait(timeout=120)
                got = sorted(out.get(timeout=120) for _ in procs)
                assert [g[2] for g in got] == ["ok", "ok"], got
                if op == "upsert":  # each new key inserted by exactly one process
                    assert sum(g[3][0] for g in got) == keys // 2, got
                    assert all(g[3][0] + g[3][1] == keys and g[3][2] == 0 for g in got), got
                else:
                    assert [g[3][1:] for g in got] == [(keys, 0), (keys, 0)], got
                assert admin.execute(
                    f'SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE v = id * 10 + %s) FROM "{table}"',
                    (rnd,),
                ).fetchone() == (keys, keys, keys)
                barrier.wait(timeout=120)
            finished = True
        finally:
            if not finished:
                barrier.abort()  # release the workers
            for p in procs:
                p.join(timeout=30)
                if p.is_alive():
                    p.kill()
            admin.execute(f'DROP TABLE IF EXISTS "{table}"')
        assert [p.exitcode for p in procs] == [0, 0]


@pytest.mark.postgres
def test_two_processes_upsert_overlapping_keys_in_random_order(pg_url):  # type: ignore[no-untyped-def]
    """20k keys (half of them new), 5 rounds, batches of 4,000: no deadlock error surfaces
    (the merges queue behind a transaction-scoped lock) and the table is exact: every
    key once, with the value both wrote, each new key counted as inserted by exactly one
    process. Before key order, 4 of 6 such rounds failed with "deadlock detected"."""
    _two_writers(pg_url, "upsert", UPSERT_KEYS, UPSERT_ROUNDS)


@pytest.mark.postgres
def test_two_processes_update_overlapping_rows_in_random_order(pg_url):  # type: ignore[no-untyped-def]
    """bulk_update by rows locks its target rows in key order first: the same race ends
    exact (before, 3 of 4 rounds of 20k keys deadlocked)."""
    _two_writers(pg_url, "update", UPDATE_KEYS, UPDATE_ROUNDS)
