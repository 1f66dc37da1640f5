"""``Database.session()`` / ``Sessions.session()``: the one way operations hold a
connection.  Checked through an independent client and the pool's own counts."""

from __future__ import annotations

import threading

import pytest

import bulkframe as bf
from bulkframe.errors import SchemaError, ValidationError
from bulkframe.plan.run import OperationRun
from bulkframe.types import Column
from suite_backends import independent_query


def _make(db: bf.Database, table: str) -> None:
    db.create_table(table, [Column("id", "int64", nullable=False, primary_key=True)])


def _count(url: str, table: str) -> int:
    return int(independent_query(url, f'SELECT count(*) FROM "{table}"')[0][0])


def test_a_write_session_commits_when_the_block_ends(db: bf.Database, table: str) -> None:
    _make(db, table)
    with db.session() as conn:
        conn.run(f'INSERT INTO "{table}" (id) VALUES (1)')
    assert _count(db.url, table) == 1
    assert db.pool_status()["checked_out"] == 0


def test_a_read_session_rolls_back(db: bf.Database, table: str) -> None:
    _make(db, table)
    with db.session(write=False) as conn:
        conn.run(f'INSERT INTO "{table}" (id) VALUES (1)')
    assert _count(db.url, table) == 0
    assert db.pool_status()["checked_out"] == 0


def test_an_error_in_the_block_rolls_back_and_returns_the_connection(db: bf.Database, table: str) -> None:
    _make(db, table)
    with pytest.raises(RuntimeError, match="boom"), db.session() as conn:
        conn.run(f'INSERT INTO "{table}" (id) VALUES (1)')
        raise RuntimeError("boom")
    assert _count(db.url, table) == 0
    status = db.pool_status()
    assert status["checked_out"] == 0 and status["checked_in"] >= 1


def test_the_lock_is_taken_before_the_block(db: bf.Database, table: str) -> None:
    """``lock=`` runs the backend's ``begin_write`` before the block.  Where the backend
    serializes writers itself (no ``SELECT … FOR UPDATE``), a second writer's session on
    the same table waits until the first one ends; elsewhere it is not held up."""
    _make(db, table)
    entered = threading.Event()

    def second_writer() -> None:
        with bf.connect(db.url) as other, other.session(lock=table) as conn:
            entered.set()
            conn.run(f'INSERT INTO "{table}" (id) VALUES (2)')

    with db.session(lock=table) as conn:
        conn.run(f'INSERT INTO "{table}" (id) VALUES (1)')
        thread = threading.Thread(target=second_writer)
        thread.start()
        if db.backend.capabilities.select_for_update:
            assert entered.wait(60), "the second writer was held up"
        else:
            assert not entered.wait(1.0), "the second writer got in while the first held the lock"
    thread.join(60)
    assert not thread.is_alive()
    assert sorted(independent_query(db.url, f'SELECT id FROM "{table}"')) == [(1,), (2,)]


def test_a_failed_run_attaches_its_partial_result() -> None:
    op = OperationRun("create", "t")
    op.result.records_processed = 3
    op.result.failure_count = 3
    exc = ValidationError("3 rows rejected")
    op.failed(exc)
    assert exc.result is op.result
    interrupt = KeyboardInterrupt()
    OperationRun("delete", "t").failed(interrupt)
    assert interrupt.result.operation == "delete"  # type: ignore[attr-defined]
    other = RuntimeError("not ours")
    op.failed(other)
    assert not hasattr(other, "result")


def test_finish_checks_the_invariant() -> None:
    op = OperationRun("update", "t")
    op.result.records_processed = 2
    op.result.success_count = 1
    with pytest.raises(AssertionError, match="count invariant"):
        op.finish()
    op.result.failure_count = 1
    assert op.finish() is op.result


def test_operations_attach_the_result_to_their_errors(db: bf.Database, table: str) -> None:
    with pytest.raises(SchemaError) as info:
        db.bulk_update(table, [{"id": 1, "x": 2}])
    assert info.value.result is not None and info.value.result.operation == "update"
