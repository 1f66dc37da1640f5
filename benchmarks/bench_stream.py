"""Benchmark: latency of a stream — the time from a row being yielded to its batch's
commit — at a fixed offered load.

A generator yields rows on a fixed schedule (row ``i`` at ``start + i / rate``; it sleeps
when ahead, never skips); ``bulk_create`` reads it as a stream and publishes an event after
each commit to a callable that notes the time.  Per row, latency = event time − yield
time.  Printed: p50 / p99 / max per offered load and setting (``max_latency=1.0``, the
spec's, and ``process_immediately=True``), and whether the generator kept its schedule
(a source that falls behind offers less than the nominal load).

    python benchmarks/bench_stream.py [--rates 1000,20000] [--seconds 5] [--url URL]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from typing import Any

import common

TABLE = "bench_stream_rows"


def paced(rate: int, seconds: float, yielded: list[float]) -> Iterator[dict[str, Any]]:
    total = int(rate * seconds)
    start = time.monotonic()
    for i in range(total):
        due = start + i / rate
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        yielded.append(time.monotonic())
        yield {"id": i, "name": f"row {i}", "price": i * 0.25}


def run(url: str, rate: int, seconds: float, options: dict[str, Any]) -> dict[str, Any]:
    common.ensure_src_on_path()
    import bulkframe as bf

    common.drop_table(url, TABLE)
    yielded: list[float] = []
    commits: list[tuple[float, int, int]] = []
    with bf.connect(url) as db:
        began = time.monotonic()
        result = db.bulk_create(
            TABLE,
            paced(rate, seconds, yielded),
            primary_key="id",
            batch_size=100_000,
            publish_events=True,
            event_sink=lambda e: commits.append((time.monotonic(), e["first_row"], e["last_row"])),
            **options,
        )
        wall = time.monotonic() - began
    latencies = [at - yielded[row] for at, first, last in commits for row in range(first, last + 1)]
    if len(latencies) != len(yielded) or common.count_rows(url, TABLE) != len(yielded):
        raise SystemExit("not every row was committed exactly once")
    latencies.sort()
    return {
        "rows": len(yielded),
        "offered_rows_per_second": rate,
        "achieved_rows_per_second": len(yielded) / (yielded[-1] - yielded[0]) if len(yielded) > 1 else 0.0,
        "batches": result.batches,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "max": latencies[-1],
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,20000")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    url = common.postgres_url(args.url)
    settings = {
        "max_latency=1.0": {"max_latency": 1.0},
        "process_immediately": {"process_immediately": True},
    }
    rows = []
    for rate in (int(r) for r in args.rates.split(",")):
        for name, options in settings.items():
            r = run(url, rate, args.seconds, options)
            rows.append(
                [f"{rate:,}", name, common.fmt_int(r["achieved_rows_per_second"]), common.fmt_int(r["rows"]),
                 str(r["batches"]), f"{r['p50'] * 1000:,.0f} ms", f"{r['p99'] * 1000:,.0f} ms",
                 f"{r['max'] * 1000:,.0f} ms"]
            )  # fmt: skip
    common.drop_table(url, TABLE)
    print(
        common.format_table(
            ["offered rows/s", "setting", "achieved rows/s", "rows", "batches", "p50", "p99", "max"], rows
        )
    )
    print("\nlatency = commit seen by an event callable − row yielded by the generator")


if __name__ == "__main__":
    main()
