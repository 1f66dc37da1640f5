"""Benchmark: bulk-load N product rows into a fresh DuckDB table.

bulkframe's ``bulk_create`` (from Arrow and from Polars) against DuckDB's own
``INSERT INTO t SELECT * FROM arrow_table`` through the ``duckdb`` module (the floor), and
against the ADBC driver inside the same wheel (``adbc_ingest``), which bulkframe does not
use (see ``src/bulkframe/backends/duckdb.py``: one DuckDB instance per file per process).
Every contender loads into its own fresh database file with the same DDL; the clock covers
the load and its commit only.  After each load the row count and a fingerprint of the
stored values are compared with the floor's; a mismatch fails the run.

    python benchmarks/bench_duckdb.py [--rows 1000000] [--repeat 3] [--only a,b] [--no-json]

``--no-json`` drops the JSON column from the data and the table: bulkframe checks that each
JSON text is one JSON document before sending (to name the row of a bad one), which the
floor does not; the two runs together show what that check costs.

Goal: bulkframe from Arrow ≥ 0.8x the floor's speed.  Exit status: 0 goal met, 1 missed,
2 a contender broke (error or wrong data).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import common

common.ensure_src_on_path()

TABLE = "products"
GOAL = 0.8
COLUMNS = (
    "id BIGINT PRIMARY KEY, name VARCHAR, price DECIMAL(10,2), category VARCHAR, stock INTEGER, "
    "active BOOLEAN, created_at TIMESTAMPTZ"
)
FINGERPRINT = (
    "SELECT count(*), sum(id), sum(price), sum(stock), count(*) FILTER (WHERE active), "
    "sum(epoch_us(created_at)), sum(length(name)), count(DISTINCT category)"
)


def ddl(json: bool) -> str:
    return f'CREATE TABLE "{TABLE}" ({COLUMNS}{", metadata JSON" if json else ""})'


def _fresh(path: Path, json: bool) -> None:
    import duckdb

    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute(ddl(json))


def _fingerprint(path: Path, json: bool) -> tuple[Any, ...]:
    import duckdb

    extra = ", sum(length(metadata::VARCHAR))" if json else ""
    with duckdb.connect(str(path)) as con:
        row = con.execute(f'{FINGERPRINT}{extra} FROM "{TABLE}"').fetchone()
        assert row is not None
        return tuple(row)


def floor(path: Path, data: Any) -> Callable[[], None]:
    """DuckDB's own path: ``INSERT INTO t SELECT * FROM <Arrow table>``, one statement."""
    import duckdb

    con = duckdb.connect(str(path))

    def load() -> None:
        con.register("arrow_data", data)
        con.execute(f'INSERT INTO "{TABLE}" SELECT * FROM arrow_data')
        con.unregister("arrow_data")
        con.close()

    return load


def adbc(path: Path, data: Any) -> Callable[[], None]:
    """The ADBC driver shipped in the duckdb wheel: ``adbc_ingest(mode="append")``."""
    import adbc_driver_duckdb.dbapi as duck_adbc

    conn = duck_adbc.connect(str(path))

    def load() -> None:
        with conn.cursor() as cur:
            cur.adbc_ingest(TABLE, data, mode="append")
        conn.commit()
        conn.close()

    return load


def bulkframe(path: Path, data: Any) -> Callable[[], None]:
    import bulkframe as bf

    db = bf.connect(f"duckdb:///{path}")

    def load() -> None:
        result = db.bulk_create(TABLE, data)
        assert result.success_count == len(data), result
        db.close()

    return load


def _warm_up() -> None:
    """Import what each contender's first call would import, before any clock runs."""
    import adbc_driver_duckdb.dbapi  # noqa: F401
    import duckdb

    import bulkframe as bf

    with bf.connect("duckdb:///:memory:") as db:
        db.bulk_create("warm", common.product_arrow(10), primary_key="id")  # JSON check included
    duckdb.connect(":memory:").close()


def _versions() -> dict[str, Any]:
    import platform

    info: dict[str, Any] = {"python": platform.python_version()}
    for module in ("bulkframe", "duckdb", "pyarrow", "polars", "adbc_driver_manager"):
        try:
            info[module] = getattr(__import__(module), "__version__", "?")
        except ImportError:
            info[module] = None
    return info


def run_shape(json: bool, args: argparse.Namespace) -> tuple[dict[str, list[float]], bool]:
    """Time every contender on one data shape; repeats go round-robin over the contenders,
    so a change in the machine's load hits them alike."""
    import polars as pl

    arrow = common.product_arrow(args.rows, args.seed)
    if not json:
        arrow = arrow.drop_columns(["metadata"])
    frame = pl.from_arrow(arrow)
    contenders = {
        "floor": (floor, arrow),
        "adbc": (adbc, arrow),
        "bf-arrow": (bulkframe, arrow),
        "bf-polars": (bulkframe, frame),
    }
    only = [k for k in args.only.split(",") if k]
    keys = [k for k in contenders if not only or k in only or k == "floor"]  # ratios need the floor
    times: dict[str, list[float]] = {k: [] for k in keys}
    broken = False
    with tempfile.TemporaryDirectory(prefix="bench_duckdb_") as tmp:
        reference: tuple[Any, ...] | None = None
        for _ in range(args.repeat):
            for key in keys:
                make, data = contenders[key]
                path = Path(tmp) / f"{key}.duckdb"
                _fresh(path, json)
                load = make(path, data)
                gc.collect()
                start = time.perf_counter()
                try:
                    load()
                except Exception as exc:
                    print(f"{LABELS[key]}: FAILED {type(exc).__name__}: {exc}", file=sys.stderr)
                    broken = True
                    continue
                times[key].append(time.perf_counter() - start)
                got = _fingerprint(path, json)
                reference = reference or got
                if got != reference or got[0] != args.rows:
                    print(f"{LABELS[key]}: WRONG DATA {got} != {reference}", file=sys.stderr)
                    broken = True
    return {k: v for k, v in times.items() if v}, broken


LABELS = {
    "floor": "duckdb INSERT … SELECT * FROM arrow (floor)",
    "adbc": "ADBC adbc_ingest (duckdb wheel)",
    "bf-arrow": "bulkframe bulk_create(Arrow)",
    "bf-polars": "bulkframe bulk_create(Polars)",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per contender (best kept)")
    parser.add_argument("--only", default="", help="comma-separated contender keys: " + ", ".join(LABELS))
    parser.add_argument("--seed", type=int, default=common.DEFAULT_SEED)
    parser.add_argument("--no-json", action="store_true", help="only the data shape without the JSON column")
    args = parser.parse_args()
    _warm_up()
    payload: dict[str, Any] = {
        "rows": args.rows,
        "repeat": args.repeat,
        "goal": GOAL,
        "environment": _versions(),
    }
    ok, broken = True, False
    for json in [False] if args.no_json else [True, False]:
        times, shape_broken = run_shape(json, args)
        broken |= shape_broken
        best = {k: min(v) for k, v in times.items()}
        median = {k: statistics.median(v) for k, v in times.items()}
        rows = [
            [
                LABELS[k],
                common.fmt_float(best[k], 3, " s"),
                common.fmt_float(median[k], 3, " s"),
                common.fmt_int(args.rows / best[k]),
                common.fmt_float(best["floor"] / best[k], 2, "x"),
                common.fmt_float(median["floor"] / median[k], 2, "x"),
            ]
            for k in times
        ]
        shape = "with a JSON column" if json else "without the JSON column"
        print(f"\n{args.rows:,} rows ({shape}) into a fresh DuckDB table, {args.repeat} runs each")
        headers = ["contender", "best", "median", "rows/s (best)", "vs floor (best)", "vs floor (median)"]
        print(common.format_table(headers, rows, align="lrrrrr"))
        if "bf-arrow" in best:
            ratio = best["floor"] / best["bf-arrow"]
            ok &= ratio >= GOAL
            verdict = "PASS" if ratio >= GOAL else "FAIL"
            print(f"bulkframe (Arrow) vs floor, best runs: {ratio:.2f}x  (goal >= {GOAL}x): {verdict}")
        payload["json" if json else "no_json"] = {
            "seconds": times,
            "ratio_vs_floor_best": {k: best["floor"] / v for k, v in best.items()},
            "ratio_vs_floor_median": {k: median["floor"] / v for k, v in median.items()},
        }
    common.write_results("bench_duckdb", payload)
    if broken:
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
