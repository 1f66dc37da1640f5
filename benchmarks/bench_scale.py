"""Benchmark: distributed writers — bulkframe inside Ray Data and Dask against the engines'
built-in SQL writers and against bulkframe in one process.

Contenders (same rows: the products data set of ``common.py`` without its jsonb column):

* ``bulkframe single process``: ``Database.bulk_create`` from one Arrow table;
* ``bulkframe-in-Ray, W writers``: ``ds.write_datasink(BulkDatasink(...), concurrency=W)``
  over a materialized dataset of ``--parts`` blocks;
* ``Ray write_sql``: Ray Data's ``Dataset.write_sql`` (psycopg ``executemany`` of one
  ``INSERT`` per row, per block) — run on ``--builtin-rows`` rows only and scaled;
* ``bulkframe-in-Dask, W workers``: ``bulkframe.dask.to_database`` on a
  ``distributed.LocalCluster`` of W single-threaded worker processes;
* ``Dask to_sql``: ``dask.dataframe.to_sql`` (pandas ``to_sql``, ``method=None``: one
  ``INSERT`` per row through SQLAlchemy ``executemany``) on the same cluster — also on the
  subset, scaled.

Every load goes into a freshly created table; the row count and ``sum(id)`` are checked
after each.  Times are wall clock for the write only (the dataset / DataFrame is built
before the clock starts; cluster start-up is excluded).  "Equal cores" compares a
1-writer run of each engine with the single process.  Results go to
``benchmarks/results/bench_scale.json``.

    python benchmarks/bench_scale.py [--rows 1000000] [--builtin-rows 20000] [--parts 8] [--url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import common

common.ensure_src_on_path()

TABLE = "bench_scale"
COLUMNS = [c for c in common.PRODUCT_COLUMNS if c[0] != "metadata"]


#: pandas would send the Decimal column as text (refused by numeric): tell to_sql its type
SQL_TYPES: dict[str, Any] = {}


def ddl() -> str:
    return f'CREATE TABLE "{TABLE}" ({", ".join(f"{n} {t}" for n, t in COLUMNS)})'


def fresh(url: str) -> None:
    common.recreate_table(url, TABLE, ddl())
    common.checkpoint(url)


def check(url: str, n: int) -> None:
    found = common.pg_execute(url, f'SELECT count(*), coalesce(sum(id), 0) FROM "{TABLE}"')[0]
    if tuple(found) != (n, n * (n + 1) // 2):
        raise SystemExit(f"wrong data after the load: count, sum(id) = {tuple(found)}, expected {n} rows")


def timed(url: str, n: int, load: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        fresh(url)
        began = time.perf_counter()
        load()
        times.append(time.perf_counter() - began)
        check(url, n)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--builtin-rows", type=int, default=20_000)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--url", default=None)
    parser.add_argument("--skip", default="", help="comma-separated: ray,dask")
    args = parser.parse_args()
    url = common.postgres_url(args.url)
    skip = set(filter(None, args.skip.split(",")))

    import pyarrow as pa

    import bulkframe as bf

    data = common.product_arrow(args.rows).drop_columns(["metadata"])
    ids = pa.array(range(1, args.rows + 1), pa.int64())  # sum(id) check: ids 1..n
    data = data.set_column(0, "id", ids)
    size = -(-args.rows // args.parts)
    parts = [data.slice(i * size, size) for i in range(args.parts)]
    subset = data.slice(0, args.builtin_rows)
    sub_parts = [subset.slice(i * (args.builtin_rows // 2), args.builtin_rows // 2) for i in range(2)]
    seconds: dict[str, float] = {}
    rows_of: dict[str, int] = {}

    def run(name: str, n: int, load: Callable[[], Any]) -> None:
        seconds[name] = timed(url, n, load, args.repeat)
        rows_of[name] = n
        print(f"  {name}: {seconds[name]:.2f} s for {n:,} rows ({n / seconds[name]:,.0f} rows/s)", flush=True)

    with bf.connect(url) as db:
        run("bulkframe single process", args.rows, lambda: db.bulk_create(TABLE, data))

    if "ray" not in skip:
        import ray

        from bulkframe.ray import BulkDatasink

        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": str(common.SRC_DIR)}},
        )
        ray.data.DataContext.get_current().enable_progress_bars = False
        ds = ray.data.from_arrow(parts).materialize()
        small = ray.data.from_arrow(sub_parts).materialize()
        ds.limit(1).write_datasink(BulkDatasink(url, "bench_scale_warm"))  # start the workers
        common.drop_table(url, "bench_scale_warm")
        for writers in (1, 2):
            run(
                f"bulkframe-in-Ray, {writers} writer(s)",
                args.rows,
                lambda w=writers: ds.write_datasink(BulkDatasink(url, TABLE), concurrency=w),
            )

        def factory() -> Any:
            import psycopg

            return psycopg.connect(url)

        placeholders = ", ".join(["%s"] * len(COLUMNS))
        insert = f'INSERT INTO "{TABLE}" VALUES ({placeholders})'
        run(
            "Ray write_sql, 2 writers",
            args.builtin_rows,
            lambda: small.write_sql(insert, factory, concurrency=2),
        )
        ray.shutdown()

    if "dask" not in skip:
        import dask.dataframe as dd
        import distributed
        import sqlalchemy as sa

        from bulkframe.dask import to_database

        SQL_TYPES["price"] = sa.Numeric(10, 2)
        frames = [p.to_pandas() for p in parts]
        sub_frames = [p.to_pandas() for p in sub_parts]
        os.environ.setdefault("PYTHONPATH", str(common.SRC_DIR))
        for workers in (1, 2):
            with (
                distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, dashboard_address=None, silence_logs=40
                ) as cluster,
                distributed.Client(cluster),
            ):
                ddf = dd.from_map(lambda f: f, frames).persist()
                distributed.wait(ddf)
                run(
                    f"bulkframe-in-Dask, {workers} worker(s)",
                    args.rows,
                    lambda d=ddf: to_database(d, url, TABLE),
                )
                if workers == 2:
                    small_ddf = dd.from_map(lambda f: f, sub_frames).persist()
                    run(
                        "Dask to_sql, 2 workers",
                        args.builtin_rows,
                        lambda s=small_ddf: s.to_sql(
                            TABLE,
                            common.sqlalchemy_url(url),
                            if_exists="append",
                            index=False,
                            dtype=SQL_TYPES,
                        ),
                    )
    common.drop_table(url, TABLE)

    rate = {k: rows_of[k] / s for k, s in seconds.items()}
    single = rate["bulkframe single process"]
    table = [
        [name, common.fmt_int(rows_of[name]), common.fmt_float(seconds[name], 2), common.fmt_int(rate[name])]
        for name in seconds
    ]
    print(
        f"\n{args.rows:,} rows in {args.parts} parts; built-in writers on {args.builtin_rows:,} rows (scaled)"
    )
    print(common.format_table(["contender", "rows", "seconds", "rows/s"], table))
    ratios: dict[str, float] = {}
    if "ray" not in skip:
        ratios["Ray: bulkframe (2 writers) / write_sql (2 writers)"] = (
            rate["bulkframe-in-Ray, 2 writer(s)"] / rate["Ray write_sql, 2 writers"]
        )
        ratios["Ray: bulkframe 1 writer / single process (equal cores)"] = (
            rate["bulkframe-in-Ray, 1 writer(s)"] / single
        )
        ratios["Ray: 2 writers / 1 writer"] = (
            rate["bulkframe-in-Ray, 2 writer(s)"] / rate["bulkframe-in-Ray, 1 writer(s)"]
        )
    if "dask" not in skip:
        ratios["Dask: bulkframe (2 workers) / to_sql (2 workers)"] = (
            rate["bulkframe-in-Dask, 2 worker(s)"] / rate["Dask to_sql, 2 workers"]
        )
        ratios["Dask: bulkframe 1 worker / single process (equal cores)"] = (
            rate["bulkframe-in-Dask, 1 worker(s)"] / single
        )
        ratios["Dask: 2 workers / 1 worker"] = (
            rate["bulkframe-in-Dask, 2 worker(s)"] / rate["bulkframe-in-Dask, 1 worker(s)"]
        )
    print()
    failed = False
    for name, value in ratios.items():
        goal = 10.0 if "write_sql" in name or "to_sql" in name else 0.9 if "equal cores" in name else None
        verdict = "" if goal is None else (" PASS" if value >= goal else " FAIL") + f" (goal ≥ {goal}x)"
        failed = failed or verdict.startswith(" FAIL")
        print(f"{name}: {value:.2f}x{verdict}")
    common.write_results(
        "bench_scale",
        {
            "rows": args.rows,
            "builtin_rows": args.builtin_rows,
            "parts": args.parts,
            "seconds": seconds,
            "rows_timed": rows_of,
            "rows_per_second": rate,
            "ratios": ratios,
            "environment": common.environment_info(url),
        },
    )
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
