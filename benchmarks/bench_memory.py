"""Benchmark: a large Parquet file loaded with ``memory_limit`` vs without.

Writes an N-row Parquet file (row groups of 100,000 rows), then loads it into a fresh
PostgreSQL table twice, each time in its own interpreter:

- *unlimited*: ``bulk_create(table, path, batch_size=B)``;
- *limited*: the same with ``memory_limit=LIMIT``.

The peak resident memory of each loading process is the kernel's (``ru_maxrss`` from
``wait4`` on the child: whole-process, never sampled) — the interpreter and its imports
included, as a container limit counts it.  Throughput is rows / seconds of the
``bulk_create`` call.  After each load the row count and ``sum(id)`` are checked.

    python benchmarks/bench_memory.py [--rows 10000000] [--limit 512MB] [--batch-size 1000000] [--url URL]

Prints both runs and the ratios the issue asks for: limited peak RSS / limit (< 1) and
limited / unlimited throughput (target ≥ 0.9).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common

TABLE = "bench_memory_rows"
SCRIPT = Path(__file__).resolve()


def write_parquet(path: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    step = 100_000
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("name", pa.string()),
            ("price", pa.float64()),
            ("category", pa.string()),
            ("stock", pa.int32()),
            ("created_at", pa.timestamp("us", tz="UTC")),
        ]
    )
    rng = np.random.default_rng(common.DEFAULT_SEED)
    categories = np.array(common.CATEGORIES)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for start in range(0, rows, step):
            n = min(step, rows - start)
            ids = np.arange(start, start + n, dtype=np.int64)
            table = pa.table(
                {
                    "id": ids,
                    "name": pa.array([f"product {i}" for i in ids]),
                    "price": np.round(rng.random(n) * 1000, 2),
                    "category": pa.array(categories[rng.integers(0, len(categories), n)]),
                    "stock": rng.integers(0, 1000, n, dtype=np.int32),
                    "created_at": pa.array(1_700_000_000_000_000 + ids * 1000, pa.timestamp("us", tz="UTC")),
                },
                schema=schema,
            )
            writer.write_table(table, row_group_size=step)


def child(args: argparse.Namespace) -> None:
    common.ensure_src_on_path()
    import bulkframe as bf

    options: dict[str, Any] = {"batch_size": args.batch_size}
    if args.limit != "none":
        options["memory_limit"] = args.limit
    with bf.connect(args.url) as db:
        began = time.perf_counter()
        result = db.bulk_create(TABLE, args.parquet, **options)
        seconds = time.perf_counter() - began
    Path(args.result_file).write_text(
        json.dumps(
            {
                "rows": result.success_count,
                "seconds": seconds,
                "batches": result.batches,
                "memory": result.metrics.get("memory"),
            }
        )
    )


def run_load(args: argparse.Namespace, parquet: Path, limit: str) -> dict[str, Any]:
    common.drop_table(args.url, TABLE)
    common.checkpoint(args.url)
    with tempfile.TemporaryDirectory(prefix="bf-bench-mem-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(SCRIPT), "--child", "--url", args.url, "--parquet", str(parquet),
               "--limit", limit, "--batch-size", str(args.batch_size), "--result-file", str(out)]  # fmt: skip
        proc = subprocess.Popen(cmd, env=common.child_env())
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"the {limit} load failed (exit {proc.returncode})")
        outcome: dict[str, Any] = json.loads(out.read_text())
    outcome["peak_rss_bytes"] = usage.ru_maxrss * 1024  # Linux: KiB
    count, total = common.pg_execute(args.url, f"SELECT count(*), sum(id) FROM {TABLE}")[0]
    expected = args.rows * (args.rows - 1) // 2
    if (count, int(total or 0)) != (args.rows, expected):
        raise SystemExit(
            f"the {limit} load stored {count} rows (sum {total}), expected {args.rows} ({expected})"
        )
    outcome["rows_per_second"] = args.rows / outcome["seconds"]
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--limit", default="512MB")
    parser.add_argument("--batch-size", type=int, default=1_000_000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--parquet", default=None, help="reuse this file (must hold --rows rows)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.url = common.postgres_url(args.url)
    if args.child:
        child(args)
        return
    common.ensure_src_on_path()
    from bulkframe.options import parse_size

    with tempfile.TemporaryDirectory(prefix="bf-bench-mem-") as tmp:
        parquet = Path(args.parquet) if args.parquet else Path(tmp) / "rows.parquet"
        if not args.parquet:
            began = time.perf_counter()
            write_parquet(parquet, args.rows)
            print(
                f"wrote {args.rows:,} rows to {parquet} in {time.perf_counter() - began:.1f} s",
                file=sys.stderr,
            )
        runs = {"unlimited": run_load(args, parquet, "none"), "limited": run_load(args, parquet, args.limit)}
    common.drop_table(args.url, TABLE)
    limit = parse_size(args.limit)
    rows = [
        [name, common.fmt_int(r["rows"]), common.fmt_float(r["seconds"], 1, " s"),
         common.fmt_int(r["rows_per_second"]), common.fmt_float(r["peak_rss_bytes"] / 2**20, 0, " MiB"),
         str(r["batches"])]
        for name, r in runs.items()
    ]  # fmt: skip
    print(common.format_table(["run", "rows", "load", "rows/s", "peak RSS (kernel)", "batches"], rows))
    ratio = runs["limited"]["rows_per_second"] / runs["unlimited"]["rows_per_second"]
    under = runs["limited"]["peak_rss_bytes"] / limit
    print(f"\nmemory_limit={args.limit} ({limit:,} bytes), batch_size={args.batch_size:,}")
    print(f"limited peak RSS / limit: {under:.2f} ({'under' if under < 1 else 'OVER'} the limit)")
    print(f"limited / unlimited throughput: {ratio:.2f} (target >= 0.9)")
    print(f"limited run's memory report: {json.dumps(runs['limited']['memory'])}")


if __name__ == "__main__":
    main()
