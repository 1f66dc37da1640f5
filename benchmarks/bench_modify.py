"""Benchmark: bulk_upsert / bulk_update / bulk_delete on N rows against the floor.

Scenarios on a products table preloaded with N rows (ids 1..N):

* ``upsert``       — N incoming rows, ids N/2+1 .. N/2+N (half exist, half are new);
* ``create-update`` / ``create-skip`` — the same rows through
  ``bulk_create(conflict_resolution="update"|"skip", batch_size=--create-batch-size)``
  (default 100,000, the batch ``bulk_upsert`` uses by default, so several batches overlap
  their staging and merging on PostgreSQL; ``--create-batch-size N`` is one batch, which
  nothing can overlap) (floor: staging + ``ON CONFLICT DO UPDATE`` / ``DO NOTHING``);
* ``resync``       — the N stored rows again, unchanged: ``bulk_upsert(detect_changes=True)``
  against a plain ``bulk_upsert`` of the same rows (goal: ≥ 3x) and the floor;
* ``update-ids``   — N rows ``{id, price, stock}`` updating every row by id;
* ``delete-ids``   — delete N/2 rows given as an id list;
* ``update-where`` — conditional update: ``price = price * 0.9, stock = stock + 1`` where
  ``category IN (6 of 12) AND stock < 5000`` (about N/4 rows).

Contenders per scenario, in the same run, each on a freshly loaded table:

* ``bulkframe``  — the public API (``db.bulk_upsert`` / ``bulk_update`` / ``bulk_delete``);
* ``floor``      — hand-written ADBC: COPY into a temp stage, then ONE statement
  (``INSERT … ON CONFLICT``, ``UPDATE … FROM``, ``DELETE … USING``), or the hand-written
  ``UPDATE … WHERE``; no counting, no checks;
* ``executemany`` — psycopg 3 ``executemany`` of a one-row statement (for the conditional
  update: fetch matching rows, compute in Python, ``executemany`` the updates).  Capped at
  ``--executemany-rows`` (time scaled linearly to N; marked ``*``).

The ratio column is floor time / contender time (≥ 0.9 is the goal for bulkframe).  The
table's contents after each contender are compared with the floor's (a fingerprint over
every column): a mismatch fails the run.  Results go to ``benchmarks/results/bench_modify.json``.

    python benchmarks/bench_modify.py [--rows 1000000] [--url URL] [--only upsert,delete-ids]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import common

TABLE = "bench_modify_products"
CATEGORIES = ["electronics", "books", "garden", "toys", "grocery", "clothing"]


# -- data ------------------------------------------------------------------------------------
def base_table(n: int) -> Any:
    import pyarrow as pa

    return common.product_arrow(n, json_type=pa.json_(pa.string()))


def upsert_input(n: int) -> Any:
    import numpy as np
    import pyarrow as pa

    data = common.product_arrow(n, seed=common.DEFAULT_SEED + 1)
    ids = pa.array(np.arange(n // 2 + 1, n // 2 + n + 1, dtype=np.int64))
    return data.set_column(0, "id", ids)


def update_input(n: int) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = np.arange(1, n + 1, dtype=np.int64)
    cents = (ids * 7919) % 100_000 + 1
    text = pc.binary_join_element_wise(
        pa.array((cents // 100).astype(str)), pa.array([f"{c:02d}" for c in (cents % 100).tolist()]), "."
    )
    return pa.table(
        {
            "id": pa.array(ids),
            "price": text.cast(pa.decimal128(10, 2)),
            "stock": pa.array((ids % 1000).astype(np.int32)),
        }
    )


def delete_ids(n: int) -> list[int]:
    return list(range(1, n + 1, 2))


# -- helpers ---------------------------------------------------------------------------------
def with_db(url: str, call: Callable[[Any], Any]) -> Callable[[], Any]:
    def run() -> Any:
        import bulkframe as bf

        with bf.connect(url) as db:
            return call(db)

    return run


def adbc(url: str) -> Any:
    import adbc_driver_postgresql.dbapi as pg

    return pg.connect(url)


def reload(url: str, n: int, data: Any) -> None:
    common.recreate_table(url, TABLE, common.product_ddl(TABLE))
    with adbc(url) as conn, conn.cursor() as cur:
        cur.adbc_ingest(TABLE, data, mode="append")
        conn.commit()
    common.pg_execute(url, f'VACUUM ANALYZE "{TABLE}"')
    common.checkpoint(url)


def fingerprint(url: str) -> tuple[Any, ...]:
    rows = common.pg_execute(
        url,
        f"""
        SELECT count(*), sum(id), sum(price), sum(stock), sum(hashtext(name)::bigint),
               sum(hashtext(metadata::text)::bigint), sum(extract(epoch FROM created_at))
        FROM "{TABLE}" """,
    )
    return tuple(rows[0])


def floor_stage_and(url: str, data: Any, columns: str, statement: str) -> Callable[[], None]:
    def run() -> None:
        with adbc(url) as conn, conn.cursor() as cur:
            cur.execute(f'CREATE TEMP TABLE s AS SELECT {columns} FROM "{TABLE}" WITH NO DATA')
            cur.adbc_ingest("s", data, mode="append", temporary=True)
            cur.execute(statement)
            conn.commit()

    return run


def psycopg_many(url: str, sql: str, rows: list[tuple[Any, ...]]) -> Callable[[], None]:
    def run() -> None:
        import psycopg

        with psycopg.connect(url) as conn, conn.cursor() as cur:
            cur.executemany(sql, rows)
            conn.commit()

    return run


def _json_staged(data: Any) -> Any:
    """``data`` with its metadata column as the ``arrow.json`` type the floor's COPY takes."""
    import pyarrow as pa

    return data.set_column(
        7, "metadata", pa.ExtensionArray.from_storage(pa.json_(pa.string()), data.column(7).combine_chunks())
    )


# -- scenarios -------------------------------------------------------------------------------
COLS = "id, name, price, category, stock, active, created_at, metadata"
SET_ALL = ", ".join(f"{c} = excluded.{c}" for c in COLS.split(", ")[1:])
WHERE = (
    "category IN ('electronics', 'books', 'garden', 'toys', 'grocery', 'clothing') "
    "AND stock < 5000"
)  # about a quarter of the rows


def scenario(
    name: str, n: int, em_rows: int, url: str, create_batch: int = 100_000
) -> dict[str, Callable[[], Any]]:
    if name == "upsert":
        data = upsert_input(n)
        import pyarrow as pa

        staged = _json_staged(data)
        rows = [tuple(r.values()) for r in data.slice(0, em_rows).to_pylist()]
        return {
            "bulkframe": with_db(url, lambda db: db.bulk_upsert(TABLE, data)),
            "floor": floor_stage_and(
                url,
                staged,
                COLS,
                f'INSERT INTO "{TABLE}" SELECT * FROM s WHERE true ON CONFLICT (id) DO UPDATE SET {SET_ALL}',
            ),
            "executemany": psycopg_many(
                url,
                f'INSERT INTO "{TABLE}" ({COLS}) VALUES '
                f"(%s, %s, %s, %s, %s, %s, %s, %s::jsonb) ON CONFLICT (id) DO UPDATE SET {SET_ALL}",
                rows,
            ),
        }
    if name in ("create-update", "create-skip"):
        data = upsert_input(n)
        staged = _json_staged(data)
        conflict = name.split("-")[1]
        action = f"DO UPDATE SET {SET_ALL}" if conflict == "update" else "DO NOTHING"
        return {
            "bulkframe": with_db(
                url,
                lambda db: db.bulk_create(TABLE, data, conflict_resolution=conflict, batch_size=create_batch),
            ),
            "floor": floor_stage_and(
                url,
                staged,
                COLS,
                f'INSERT INTO "{TABLE}" SELECT * FROM s WHERE true ON CONFLICT (id) {action}',
            ),
        }
    if name == "resync":
        data = base_table(n)
        plain = common.product_arrow(n)  # the same rows, metadata as plain JSON text
        return {
            "bulkframe": with_db(url, lambda db: db.bulk_upsert(TABLE, plain, detect_changes=True)),
            "floor": floor_stage_and(
                url,
                data,
                COLS,
                f'INSERT INTO "{TABLE}" SELECT * FROM s WHERE true ON CONFLICT (id) DO UPDATE SET {SET_ALL}',
            ),
            "bulkframe plain upsert": with_db(url, lambda db: db.bulk_upsert(TABLE, plain)),
        }
    if name == "update-ids":
        data = update_input(n)
        rows = [(r["price"], r["stock"], r["id"]) for r in data.slice(0, em_rows).to_pylist()]
        return {
            "bulkframe": with_db(url, lambda db: db.bulk_update(TABLE, data)),
            "floor": floor_stage_and(
                url,
                data,
                "id, price, stock",
                f'UPDATE "{TABLE}" t SET price = s.price, stock = s.stock FROM s WHERE t.id = s.id',
            ),
            "executemany": psycopg_many(
                url, f'UPDATE "{TABLE}" SET price = %s, stock = %s WHERE id = %s', rows
            ),
        }
    if name == "delete-ids":
        import pyarrow as pa

        ids = delete_ids(n)
        return {
            "bulkframe": with_db(url, lambda db: db.bulk_delete(TABLE, ids=ids)),
            "floor": floor_stage_and(
                url,
                pa.table({"id": pa.array(ids, pa.int64())}),
                "id",
                f'DELETE FROM "{TABLE}" t USING s WHERE t.id = s.id',
            ),
            "executemany": psycopg_many(
                url, f'DELETE FROM "{TABLE}" WHERE id = %s', [(i,) for i in ids[:em_rows]]
            ),
        }
    if name == "update-where":

        def floor() -> None:
            with adbc(url) as conn, conn.cursor() as cur:
                cur.execute(f'UPDATE "{TABLE}" SET price = price * 0.9, stock = stock + 1 WHERE {WHERE}')
                conn.commit()

        def naive() -> None:
            import psycopg

            with psycopg.connect(url) as conn, conn.cursor() as cur:
                cur.execute(
                    f'SELECT id, price, stock FROM "{TABLE}" WHERE {WHERE} ORDER BY id LIMIT {em_rows}'
                )
                rows = [(p * 9 / 10, s + 1, i) for i, p, s in cur.fetchall()]
                cur.executemany(f'UPDATE "{TABLE}" SET price = %s, stock = %s WHERE id = %s', rows)
                conn.commit()

        return {
            "bulkframe": with_db(
                url,
                lambda db: db.bulk_update(
                    TABLE,
                    {"price": "price * 0.9", "stock": "stock + 1"},
                    filter={"category": {"$in": CATEGORIES}, "stock": {"$lt": 5000}},
                ),
            ),
            "floor": floor,
            "executemany": naive,
        }
    raise SystemExit(f"unknown scenario {name!r}")


SCENARIOS = ("upsert", "create-update", "create-skip", "resync", "update-ids", "delete-ids", "update-where")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument(
        "--executemany-rows",
        type=int,
        default=50_000,
        help="rows psycopg executemany runs (time scaled to --rows); default 50,000",
    )
    p.add_argument("--url", default=None)
    p.add_argument("--only", default=None, help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    p.add_argument("--repeat", type=int, default=1, help="timed runs per contender (best reported)")
    p.add_argument(
        "--create-batch-size",
        type=int,
        default=100_000,
        help="batch_size of the create-update/create-skip scenarios (default 100,000)",
    )
    args = p.parse_args(argv)
    common.ensure_src_on_path()
    url = common.postgres_url(args.url)
    n = args.rows
    em_rows = min(args.executemany_rows, n)
    base = base_table(n)
    print(f"bench_modify: {n:,} rows on {common.redact_url(url)} (PostgreSQL {common.server_version(url)})")
    table_rows: list[list[Any]] = []
    records: list[dict[str, Any]] = []
    speedups: dict[str, dict[str, float]] = {}
    status = 0
    for name in args.only.split(",") if args.only else SCENARIOS:
        contenders = scenario(name, n, em_rows, url, args.create_batch_size)
        times: dict[str, float] = {}
        prints: dict[str, Any] = {}
        for who, run in contenders.items():
            best = float("inf")
            for _ in range(args.repeat):
                reload(url, n, base)
                start = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - start)
            prints[who] = fingerprint(url)
            times[who] = best
        matched = "yes" if prints["bulkframe"] == prints["floor"] else "NO"
        if matched == "NO":
            status = 2
            print(
                f"{name}: bulkframe left {prints['bulkframe']}, floor left {prints['floor']}", file=sys.stderr
            )
        for who, seconds in times.items():
            mark = ""
            if who == "executemany":
                seconds, mark = seconds * n / em_rows, "*" if em_rows < n else ""
            label = "psycopg executemany" if who == "executemany" else who
            same = matched if who == "bulkframe" else ("yes" if prints[who] == prints["floor"] else "NO")
            if who == "executemany":
                same = ""  # capped: it wrote only --executemany-rows rows
            if same == "NO":
                status = 2
            table_rows.append(
                [
                    name,
                    label,
                    f"{seconds:,.2f}{mark}",
                    common.fmt_int(n / seconds),
                    f"{times['floor'] / seconds:.2f}x",
                    same if who != "floor" else "",
                ]
            )
            records.append(
                {
                    "scenario": name,
                    "contender": label,
                    "rows": n,
                    "seconds": seconds,
                    "rows_per_second": n / seconds,
                    "vs_floor": times["floor"] / seconds,
                    "capped_rows": em_rows if mark else None,
                    "same_rows_as_floor": (same == "yes") if same else None,
                }
            )
        done = [r for r in table_rows if r[0] == name]
        print("  " + "; ".join(f"{r[1]} {r[2]} s ({r[4]} of the floor)" for r in done), flush=True)
        if "bulkframe plain upsert" in times:
            speedup = times["bulkframe plain upsert"] / times["bulkframe"]
            print(
                f"{name}: detect_changes is {speedup:.2f}x the plain upsert of the same rows (goal ≥ 3x)",
                flush=True,
            )
            speedups[name] = {"detect_changes_vs_plain_upsert": speedup}
        if times["floor"] / times["bulkframe"] < 0.9:
            status = max(status, 1)
    print(
        common.format_table(
            ["scenario", "contender", "seconds", "rows/s", "vs floor", "same rows"],
            table_rows,
            align="llrrrl",
        )
    )
    if em_rows < n:
        print(f"* executemany ran {em_rows:,} rows; time scaled linearly to {n:,}")
    verdict = (
        "PASS"
        if status == 0
        else ("FAIL: bulkframe below 0.9x the floor" if status == 1 else "FAIL: wrong data")
    )
    print(verdict)
    path = common.write_results(
        "bench_modify",
        {
            "rows": n,
            "executemany_rows": em_rows,
            "repeat": args.repeat,
            "create_batch_size": args.create_batch_size,
            "results": records,
            "speedups": speedups,
            "verdict": verdict,
            "environment": common.environment_info(url),
        },
    )
    print(f"results written to {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
