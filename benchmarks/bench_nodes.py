"""Benchmark: what the node layer adds to a bulk create.

The same N product rows are loaded into a fresh table (declared with ``@db.model``) two
ways, alternating, in one process and one run:

* **library**: ``db.database.bulk_create(Model, frame, batch_size=…)``;
* **node**: ``WorkflowBuilder().add_node("BenchProductBulkCreateNode", …)`` +
  ``LocalRuntime().execute(workflow.build())``: parameter checking, the library call, and
  shaping the result into the node output.

The overhead is the difference of the medians (goal: under 5% at 1,000,000 rows).  Because
server-side noise between two multi-second loads is larger than the adapter's cost, the
adapter's own time is also measured alone: the full node path with the library call
replaced by a stub that returns a result, repeated many times.

    python benchmarks/bench_nodes.py [--rows 1000000] [--repeat 3] [--url URL] [--input polars|dicts]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from decimal import Decimal
from typing import Annotated, Any

import common

common.ensure_src_on_path()

TABLE = "bench_nodes_products"


def declare(flow: Any) -> type:
    from bulkframe.nodes import Numeric

    class BenchProduct:
        id: int
        name: str
        price: Annotated[Decimal, Numeric(10, 2)]
        category: str
        stock: int
        active: bool
        created_at: dt.datetime
        metadata: dict  # type: ignore[type-arg]
        __tablename__ = TABLE

    return flow.model(BenchProduct)  # type: ignore[no-any-return]


def fresh(flow: Any) -> type:
    flow.database.drop_table(TABLE)
    common.checkpoint(flow.url) if flow.url.startswith("postgresql") else None
    return declare(flow)


def run_library(flow: Any, data: Any, rows: int, batch_size: int) -> float:
    model = fresh(flow)
    start = time.perf_counter()
    result = flow.database.bulk_create(model, data, batch_size=batch_size)
    seconds = time.perf_counter() - start
    assert result.success_count == rows, result
    return seconds


def run_node(flow: Any, data: Any, rows: int, batch_size: int) -> float:
    from bulkframe.nodes import LocalRuntime, WorkflowBuilder

    fresh(flow)
    start = time.perf_counter()
    workflow = WorkflowBuilder()
    workflow.add_node("BenchProductBulkCreateNode", "load", {"data": data, "batch_size": batch_size})
    results, _run_id = LocalRuntime().execute(workflow.build())
    seconds = time.perf_counter() - start
    assert results["load"]["data"]["success_count"] == rows, results["load"]["data"]
    return seconds


def adapter_only(flow: Any, data: Any, rows: int, batch_size: int, calls: int = 2000) -> float:
    """Seconds per node run with the library call stubbed out (the adapter's own cost)."""
    from bulkframe import BulkResult
    from bulkframe.nodes import LocalRuntime, WorkflowBuilder

    real = flow.database.bulk_create

    def stub(table: Any, data: Any, /, **kwargs: Any) -> Any:
        return BulkResult("create", TABLE, records_processed=rows, success_count=rows, inserted=rows)

    flow.database.bulk_create = stub
    try:
        start = time.perf_counter()
        for _ in range(calls):
            workflow = WorkflowBuilder()
            workflow.add_node("BenchProductBulkCreateNode", "load", {"data": data, "batch_size": batch_size})
            LocalRuntime().execute(workflow.build())
        return (time.perf_counter() - start) / calls
    finally:
        flow.database.bulk_create = real


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--url", default=None)
    parser.add_argument("--input", choices=("polars", "dicts"), default="polars")
    args = parser.parse_args(argv)
    url = args.url or common.postgres_url()

    from bulkframe.nodes import DataFlow

    data = (
        common.product_polars(args.rows, metadata="struct")
        if args.input == "polars"
        else common.product_dicts(args.rows)
    )
    flow = DataFlow(url)
    print(
        f"bench_nodes: {args.rows:,} rows ({args.input}) into {common.redact_url(url)}, "
        f"batch_size={args.batch_size:,}, {args.repeat} alternating runs each"
    )
    run_library(flow, data, args.rows, args.batch_size)  # warm-up (imports, caches, connection)
    lib: list[float] = []
    node: list[float] = []
    for _ in range(args.repeat):
        lib.append(run_library(flow, data, args.rows, args.batch_size))
        node.append(run_node(flow, data, args.rows, args.batch_size))
    per_call = adapter_only(flow, data, args.rows, args.batch_size)
    flow.database.drop_table(TABLE)
    flow.close()
    lib_med, node_med = statistics.median(lib), statistics.median(node)
    overhead = (node_med - lib_med) / lib_med * 100
    adapter_pct = per_call / lib_med * 100
    print(
        common.format_table(
            ["path", "median s", "min s", "max s", "rows/s (median)"],
            [
                [
                    "library bulk_create",
                    f"{lib_med:.3f}",
                    f"{min(lib):.3f}",
                    f"{max(lib):.3f}",
                    common.fmt_int(args.rows / lib_med),
                ],
                [
                    "node (WorkflowBuilder + LocalRuntime)",
                    f"{node_med:.3f}",
                    f"{min(node):.3f}",
                    f"{max(node):.3f}",
                    common.fmt_int(args.rows / node_med),
                ],
            ],
        )
    )
    print(f"node vs library (difference of medians): {overhead:+.2f}%")
    print(
        f"adapter alone (library call stubbed): {per_call * 1e6:.1f} us per node run = "
        f"{adapter_pct:.4f}% of the library's median"
    )
    ok = adapter_pct < 5 and overhead < 5
    print(f"{'PASS' if ok else 'FAIL'}: node layer overhead < 5%")
    common.write_results(
        "bench_nodes",
        {
            "rows": args.rows,
            "input": args.input,
            "batch_size": args.batch_size,
            "library_seconds": lib,
            "node_seconds": node,
            "overhead_percent": overhead,
            "adapter_seconds_per_run": per_call,
            "environment": common.environment_info(url)
            if url.startswith("postgresql")
            else {"url": "sqlite"},
        },
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
