"""Parallel bulk create: 1,000,000 product rows into PostgreSQL with 1, 2 and 4 writers,
each on its own connection, against bulkframe's own serial create, same run.

    python benchmarks/bench_parallel.py [--rows 1000000] [--repeat 3] [--url URL]

Goal (issue 5): parallel create reaches at least 1.2x bulkframe's serial create.
Raw ADBC with two writers is measured too, as the ceiling on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

common.ensure_src_on_path()


def raw_parallel(url: str, table: str, data: object, writers: int, batch_size: int) -> float:
    """The ceiling: plain adbc_ingest from ``writers`` threads, a batch per transaction."""
    import adbc_driver_postgresql.dbapi as pg
    import pyarrow as pa

    assert isinstance(data, pa.Table)
    slices = [data.slice(o, batch_size) for o in range(0, data.num_rows, batch_size)]
    lock = threading.Lock()

    def work() -> None:
        with pg.connect(url) as conn:
            while True:
                with lock:
                    if not slices:
                        return
                    part = slices.pop(0)
                with conn.cursor() as cur:
                    cur.adbc_ingest(table, part, mode="append")
                conn.commit()

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=125_000)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    url = common.postgres_url(args.url)

    import pyarrow as pa

    import bulkframe as bf

    data = common.product_arrow(args.rows)
    ingest = common.product_arrow(args.rows, json_type=pa.json_(pa.string()))
    table = "bench_parallel"
    configs = {
        "bulkframe serial (one transaction)": {},
        "bulkframe serial, batch commits": {"error_strategy": "continue"},
        "bulkframe parallel_batches=2": {"parallel_batches": 2, "error_strategy": "continue"},
        "bulkframe parallel_batches=4": {"parallel_batches": 4, "error_strategy": "continue"},
    }
    times: dict[str, list[float]] = {
        name: [] for name in [*configs, "raw adbc_ingest, 1 writer", "raw adbc_ingest, 2 writers"]
    }
    with bf.connect(url) as db:
        for _ in range(args.repeat):
            for name, options in configs.items():
                common.recreate_table(url, table, common.product_ddl(table))
                common.checkpoint(url)
                result = db.bulk_create(table, data, batch_size=args.batch_size, **options)
                assert result.success_count == args.rows and common.count_rows(url, table) == args.rows
                times[name].append(result.duration_seconds)
            for writers in (1, 2):
                common.recreate_table(url, table, common.product_ddl(table))
                common.checkpoint(url)
                times[f"raw adbc_ingest, {writers} writer{'s' if writers > 1 else ''}"].append(
                    raw_parallel(url, table, ingest, writers, args.batch_size)
                )
                assert common.count_rows(url, table) == args.rows
    common.drop_table(url, table)
    serial = statistics.median(times["bulkframe serial (one transaction)"])
    rows = [
        [
            name,
            common.fmt_float(statistics.median(ts), 3),
            common.fmt_int(args.rows / statistics.median(ts)),
            common.fmt_float(serial / statistics.median(ts), 2, "x"),
        ]
        for name, ts in times.items()
    ]
    print(
        f"{args.rows:,} rows, batch_size {args.batch_size:,}, median of {args.repeat}, "
        f"PostgreSQL {common.server_version(url)}"
    )
    print(common.format_table(["configuration", "seconds", "rows/s", "vs bulkframe serial"], rows))
    best = max(serial / statistics.median(times[k]) for k in configs if "parallel" in k)
    print(f"\ntarget: parallel ≥ 1.2x bulkframe serial  →  {'PASS' if best >= 1.2 else 'FAIL'} ({best:.2f}x)")
    common.write_results(
        "bench_parallel",
        {"rows": args.rows, "times": times, "best_ratio": best, "environment": common.environment_info(url)},
    )


if __name__ == "__main__":
    main()
