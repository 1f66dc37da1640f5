"""Two processes upsert the same keys in different random orders: count deadlocks.

    python benchmarks/repro_upsert_deadlock.py [--rounds 6] [--keys 20000] [--batch 2000] [--op update]

Each round both processes (multiprocessing, spawn) upsert the same ``--keys`` keys, each
shuffled with its own seed, in batches of ``--batch`` rows, into one table (half of the
keys exist before the round).  Both write the same values, so the final table is known
exactly.  ``--op update`` runs ``bulk_update`` by rows instead (every key exists
before the round).  Prints, per round, what each process got (``ok`` or the error class and first
line) and whether the table is exact, then a summary line.  Plain script, no pytest.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sys
import uuid

URL = os.environ.get("BULKFRAME_TEST_POSTGRES_URL", "postgresql://root@127.0.0.1:5432/test")


def _rows(keys: list[int], rnd: int) -> list[dict[str, int]]:
    return [{"id": k, "v": k * 10 + rnd} for k in keys]


def _worker(
    url: str,
    table: str,
    keys: int,
    batch: int,
    rnd: int,
    seed: int,
    op: str,
    start: mp.synchronize.Barrier,
    out: mp.Queue,
) -> None:  # type: ignore[type-arg]
    import bulkframe as bf

    order = list(range(keys))
    random.Random(seed).shuffle(order)
    try:
        with bf.connect(url) as db:
            start.wait()
            if op == "update":
                result = db.bulk_update(table, _rows(order, rnd), batch_size=batch)
            else:
                result = db.bulk_upsert(table, _rows(order, rnd), batch_size=batch)
            out.put(("ok", result.inserted, result.updated))
    except Exception as exc:
        out.put((type(exc).__name__, str(exc).splitlines()[0][:120], None))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--url", default=URL)
    parser.add_argument("--op", choices=("upsert", "update"), default="upsert")
    args = parser.parse_args()

    import psycopg

    table = f"bf_deadlock_{uuid.uuid4().hex[:8]}"
    ctx = mp.get_context("spawn")
    failures = 0
    with psycopg.connect(args.url, autocommit=True) as pg:
        pg.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, v bigint NOT NULL)')
        try:
            for rnd in range(args.rounds):
                pg.execute(f'TRUNCATE "{table}"')
                pg.execute(
                    f'INSERT INTO "{table}" SELECT g, -1 FROM generate_series(0, %s, %s) g',
                    (args.keys - 1, 1 if args.op == "update" else 2),
                )
                start = ctx.Barrier(2)
                out = ctx.Queue()
                procs = [
                    ctx.Process(
                        target=_worker,
                        args=(args.url, table, args.keys, args.batch, rnd, rnd * 2 + p, args.op, start, out),
                    )
                    for p in range(2)
                ]
                for p in procs:
                    p.start()
                got = [out.get(timeout=120) for _ in procs]
                for p in procs:
                    p.join()
                count, wrong = pg.execute(
                    f'SELECT count(*), count(*) FILTER (WHERE v <> id * 10 + %s) FROM "{table}"', (rnd,)
                ).fetchone()
                bad = [g for g in got if g[0] != "ok"]
                failures += bool(bad)
                print(f"round {rnd}: {got}; rows={count} wrong_values={wrong}")
        finally:
            pg.execute(f'DROP TABLE IF EXISTS "{table}"')
    print(f"SUMMARY: {failures} of {args.rounds} rounds had an error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
