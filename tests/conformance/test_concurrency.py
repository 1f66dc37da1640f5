"""Concurrent runs never lose an update: atomic_ops are applied in SQL (``x = x + n``)."""

from __future__ import annotations

import threading

import bulkframe as bf

THREADS = 4
ROUNDS = 15
ROWS = 20


def test_concurrent_increments_are_exact(db, table, sql):  # type: ignore[no-untyped-def]
    sql(f'CREATE TABLE "{table}" (id bigint primary key, stock integer, views integer)')
    db.bulk_create(table, [{"id": i, "stock": 1000, "views": 0} for i in range(ROWS)])
    db.close()
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work(seed: int) -> None:
        try:
            with bf.connect(db.url) as mine:
                start.wait()
                for r in range(ROUNDS):
                    ids = list(range(ROWS))
                    if (seed + r) % 2:
                        ids.reverse()  # different orders must queue, not deadlock
                    rows = [{"id": i, "atomic_ops": {"stock": {"$inc": -1}, "views": {"$inc": seed + 1}}}
                            for i in ids]
                    result = mine.bulk_update(table, rows, ensure_atomic=True)
                    assert result.updated == ROWS
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    frame = db.read(table, order_by="id")
    assert frame["stock"].to_list() == [1000 - THREADS * ROUNDS] * ROWS
    assert frame["views"].to_list() == [ROUNDS * sum(s + 1 for s in range(THREADS))] * ROWS
