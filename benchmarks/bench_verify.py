"""Benchmark: two-way verification of two N-row tables against the alternatives.

Two PostgreSQL tables ``bench_verify_a`` (the source) and ``bench_verify_b`` (the
target) of N rows (odd ids 1, 3, …; columns text, numeric(12,2), integer, double
precision, timestamptz, boolean).  In ``b``, 0.1 % of the rows are changed, spread over
the key space: for every 1,000th row one of — deleted (only in ``a``), a new even id
inserted next to it (only in ``b``), ``name`` changed, ``price`` changed, ``qty`` and
``score`` changed.  The expected counts follow from the construction.

Contenders, each in its own interpreter (time and peak RSS of that process):

* ``bulkframe``   — ``db.verify("bench_verify_b", bf.TableSource(db, "bench_verify_a"))``:
  both tables in one database, so one ``FULL OUTER JOIN`` returns only the differing rows,
  diffed in Polars;
* ``bulkframe hashes`` — the same call with the source named by another URL, as if it
  were another server: key-range hashes computed inside PostgreSQL (both sides at once),
  only differing ranges fetched;
* ``full join``   — the floor: ONE hand-written ``FULL OUTER JOIN`` in the database
  returning the same per-column counts (no samples);
* ``reladiff``    — ``reladiff.diff_tables`` (the maintained data-diff fork; for two
  tables in one database its ``auto`` algorithm is a join per key segment), counts
  derived from its ``+``/``-`` rows;
* ``reladiff hashdiff`` — the same with ``algorithm="hashdiff"``: checksums of key
  segments and bisection, its cross-database algorithm (compare with ``bulkframe hashes``);
* ``datacompy``   — both tables read into pandas (connectorx), ``datacompy.Compare``.

Each contender's counts are checked against the expected ones (a mismatch is printed
with the reason).  Ratios are contender time / bulkframe time (> 1: bulkframe is faster)
and bulkframe time / full-join time (goal ≤ 1.5).  Times start after the contender's
modules are imported (connecting is timed).

    python benchmarks/bench_verify.py [--rows 1000000] [--url URL] [--only bulkframe,reladiff]

Needs ``pip install reladiff psycopg2-binary datacompy`` (not in any extra: datacompy 1.1
pins ``polars<1.45`` and ``pandas<3.1``; install it with ``--no-deps`` into an environment
that has bulkframe's versions).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import common

A, B = "bench_verify_a", "bench_verify_b"
FIELDS = ["name", "price", "qty", "score", "ts", "flag"]


def setup(url: str, n: int) -> dict[str, Any]:
    """Create both tables; return the expected counts."""
    cols = (
        "id bigint PRIMARY KEY, name text, price numeric(12,2), qty integer, "
        "score double precision, ts timestamptz, flag boolean"
    )
    common.pg_execute(
        url,
        f"DROP TABLE IF EXISTS {A}",
        f"DROP TABLE IF EXISTS {B}",
        f"CREATE TABLE {A} ({cols})",
        f"INSERT INTO {A} SELECT 2 * g - 1, 'name ' || g, (g % 100000) / 100.0, g % 1000, g * 0.37, "
        f"timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second', g % 2 = 0 "
        f"FROM generate_series(1, {n}) g",
        f"CREATE TABLE {B} ({cols})",
        f"INSERT INTO {B} SELECT * FROM {A}",
        # every 1,000th row (g = 1000k + r) gets one kind of change, by k % 5
        f"DELETE FROM {B} WHERE (id + 1) / 2 % 1000 = 500 AND (id + 1) / 2 / 1000 % 5 = 0",
        f"INSERT INTO {B} SELECT id + 1, name, price, qty, score, ts, flag FROM {A} "
        f"WHERE (id + 1) / 2 % 1000 = 500 AND (id + 1) / 2 / 1000 % 5 = 1",
        f"UPDATE {B} SET name = name || '!' WHERE (id + 1) / 2 % 1000 = 500 AND (id + 1) / 2 / 1000 % 5 = 2",
        f"UPDATE {B} SET price = price + 0.01 WHERE (id + 1) / 2 % 1000 = 500 AND (id + 1) / 2 / 1000 % 5 = 3",
        f"UPDATE {B} SET qty = qty + 1, score = score * 2 + 1 "
        f"WHERE (id + 1) / 2 % 1000 = 500 AND (id + 1) / 2 / 1000 % 5 = 4",
        f"VACUUM ANALYZE {A}",
        f"VACUUM ANALYZE {B}",
    )
    per_kind = [sum(1 for g in range(500, n + 1, 1000) if (g // 1000) % 5 == k) for k in range(5)]
    return {
        "only_source": per_kind[0],
        "only_target": per_kind[1],
        "differing": per_kind[2] + per_kind[3] + per_kind[4],
        "columns": {"name": per_kind[2], "price": per_kind[3], "qty": per_kind[4], "score": per_kind[4]},
    }


# -- contenders (run in a child process) -------------------------------------------------------
def run_bulkframe(url: str, source_url: str | None = None) -> dict[str, Any]:
    common.ensure_src_on_path()
    import bulkframe as bf

    with bf.connect(url) as db:
        v = db.verify(B, bf.TableSource(source_url or db, A))
    cols = {k: n for k, n in v.column_differences.items() if n}
    keep = ("strategy", "levels", "hashed_in", "rows_fetched", "hash_seconds", "seconds")
    return {
        "only_source": v.missing,
        "only_target": v.only_in_table,
        "differing": v.mismatched,
        "columns": cols,
        "detail": {k: v.metrics[k] for k in keep if k in v.metrics},
    }


def run_bulkframe_hashes(url: str) -> dict[str, Any]:
    """The cross-database path on the same tables: the source named by a URL that differs
    from the target's (an extra ``application_name``), so bulkframe cannot join them and
    compares key-range hashes computed in PostgreSQL, as it would across two servers."""
    sep = "&" if "?" in url else "?"
    return run_bulkframe(url, f"{url}{sep}application_name=bench_verify_source")


def run_full_join(url: str) -> dict[str, Any]:
    import psycopg

    both = "a.id IS NOT NULL AND b.id IS NOT NULL"
    per_col = ", ".join(f"count(*) FILTER (WHERE {both} AND a.{c} IS DISTINCT FROM b.{c})" for c in FIELDS)
    row = ", ".join(f"a.{c}" for c in FIELDS), ", ".join(f"b.{c}" for c in FIELDS)
    sql = (
        f"SELECT count(*) FILTER (WHERE b.id IS NULL), count(*) FILTER (WHERE a.id IS NULL), "
        f"count(*) FILTER (WHERE {both} AND ({row[0]}) IS DISTINCT FROM ({row[1]})), {per_col} "
        f"FROM {A} a FULL OUTER JOIN {B} b ON a.id = b.id"
    )
    with psycopg.connect(url) as conn:
        got = conn.execute(sql).fetchone()
    assert got is not None
    cols = {c: int(n) for c, n in zip(FIELDS, got[3:], strict=True) if n}
    return {"only_source": got[0], "only_target": got[1], "differing": got[2], "columns": cols}


def run_reladiff(url: str, algorithm: str = "auto") -> dict[str, Any]:
    import reladiff

    a = reladiff.connect_to_table(url, A, "id", thread_count=2)
    b = reladiff.connect_to_table(url, B, "id", thread_count=2)
    minus: dict[Any, tuple[Any, ...]] = {}
    plus: dict[Any, tuple[Any, ...]] = {}
    diff = reladiff.diff_tables(
        a, b, extra_columns=tuple(FIELDS), max_threadpool_size=2, algorithm=reladiff.Algorithm(algorithm)
    )
    for sign, row in diff:
        (minus if sign == "-" else plus)[row[0]] = row[1:]
    both = minus.keys() & plus.keys()
    cols: dict[str, int] = {}
    for key in both:
        for name, x, y in zip(FIELDS, minus[key], plus[key], strict=True):
            if x != y:
                cols[name] = cols.get(name, 0) + 1
    return {
        "only_source": len(minus.keys() - both),
        "only_target": len(plus.keys() - both),
        "differing": len(both),
        "columns": cols,
    }


def run_reladiff_hashdiff(url: str) -> dict[str, Any]:
    """reladiff's cross-database algorithm (checksums of key segments, bisection), which
    its ``auto`` choice skips for two tables in one database (it joins them instead)."""
    return run_reladiff(url, "hashdiff")


def run_datacompy(url: str) -> dict[str, Any]:
    import datacompy
    import polars as pl

    a = pl.read_database_uri(f"SELECT * FROM {A}", url, engine="connectorx").to_pandas()
    b = pl.read_database_uri(f"SELECT * FROM {B}", url, engine="connectorx").to_pandas()
    cmp = datacompy.PandasCompare(a, b, join_columns="id")
    cols = {s["column"]: int(s["unequal_cnt"]) for s in cmp.column_stats if s["unequal_cnt"]}
    return {
        "only_source": len(cmp.df1_unq_rows),
        "only_target": len(cmp.df2_unq_rows),
        "differing": len(cmp.all_mismatch()),
        "columns": cols,
    }


CONTENDERS = {
    "bulkframe": run_bulkframe,
    "bulkframe hashes": run_bulkframe_hashes,
    "full join": run_full_join,
    "reladiff": run_reladiff,
    "reladiff hashdiff": run_reladiff_hashdiff,
    "datacompy": run_datacompy,
}


#: Modules each contender imports, loaded before its clock starts (import time is a cost
#: of the process, not of the comparison).
IMPORTS = {
    "bulkframe": ["polars", "pyarrow", "sqlalchemy", "adbc_driver_postgresql.dbapi"],
    "full join": ["psycopg"],
    "reladiff": ["reladiff", "psycopg2"],
    "datacompy": ["datacompy", "polars", "pandas", "connectorx"],
}


def child(name: str, url: str, result_file: Path) -> int:
    import importlib

    common.ensure_src_on_path()
    modules = IMPORTS.get(name) or IMPORTS[name.split()[0]]
    for module in modules + (["bulkframe"] if name.startswith("bulkframe") else []):
        importlib.import_module(module)
    start = time.perf_counter()
    try:
        out = CONTENDERS[name](url)
        out["seconds"] = time.perf_counter() - start
    except Exception as exc:
        out = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result_file.write_text(json.dumps(out, default=str))
    return 0 if "error" not in out else 1


def why_differs(expected: dict[str, Any], got: dict[str, Any]) -> str:
    wrong = [k for k in ("only_source", "only_target", "differing") if got.get(k) != expected[k]]
    if got.get("columns") != expected["columns"]:
        wrong.append(f"columns {got.get('columns')}")
    return "exact" if not wrong else "differs: " + ", ".join(wrong)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url")
    parser.add_argument("--only", help="comma-separated contenders")
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender (best time kept)")
    parser.add_argument("--keep-tables", action="store_true", help="leave both tables for inspection")
    parser.add_argument("--child")
    parser.add_argument("--result-file", type=Path)
    args = parser.parse_args()
    url = common.postgres_url(args.url)
    if args.child:
        return child(args.child, url, args.result_file)
    names = args.only.split(",") if args.only else list(CONTENDERS)
    print(f"setting up two {args.rows:,}-row tables …", file=sys.stderr)
    expected = setup(url, args.rows)
    print(f"expected: {expected}", file=sys.stderr)
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        best: dict[str, Any] | None = None
        for _ in range(args.repeat):
            out = common.run_child(Path(__file__), ["--child", name, "--url", url], env=common.child_env())
            got = out.result if out.ok else {"error": out.error, **out.result}
            if best is None or ("seconds" in got and got["seconds"] < best.get("seconds", float("inf"))):
                best = got
        assert best is not None
        results[name] = best
    base = results.get("bulkframe", {}).get("seconds")
    floor = results.get("full join", {}).get("seconds")
    rows = []
    for name, got in results.items():
        seconds = got.get("seconds")
        rows.append(
            [
                name,
                common.fmt_float(seconds, 2, " s"),
                common.fmt_float(got.get("peak_rss_mb"), 0, " MB"),
                common.fmt_float(seconds / base if seconds and base else None, 2, "x"),
                got.get("error") or why_differs(expected, got),
            ]
        )
    print(common.format_table(["contender", "time", "peak RSS", "time / bulkframe", "counts"], rows))
    if base and floor:
        print(f"bulkframe / full join = {base / floor:.2f} (goal <= 1.5)")
    for name in ("bulkframe", "bulkframe hashes"):
        if "detail" in results.get(name, {}):
            print(f"{name} detail: {results[name]['detail']}")
    print(f"load average (1 min) at the end: {common.machine_info().get('load_average_1m')}")
    if not args.keep_tables:
        common.drop_table(url, A)
        common.drop_table(url, B)
    return 0


if __name__ == "__main__":
    sys.exit(main())
