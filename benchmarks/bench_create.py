"""Benchmark: bulk-load N product rows into a fresh PostgreSQL table.

bulkframe's ``bulk_create`` (from Arrow, Polars and a list of dicts) against the raw
ADBC floor, ``from_pylist`` + ADBC, psycopg COPY, Polars ``write_database``, pandas
``to_sql`` and SQLAlchemy Core ``executemany``.  Every contender runs in its own fresh
interpreter (so peak RSS is its own), loads into a freshly created table with the same
DDL, and is timed wall-clock for the load only (the input is prepared before the clock
starts, except conversions inherent to the path, such as dicts → Arrow).  After each
load the table's row count *and* a fingerprint of its values are checked against the
generated data; a mismatch fails the run.

    python benchmarks/bench_create.py [--rows 1000000] [--url URL] [--only a,b] [--repeat 1]

See benchmarks/README.md for the contenders and the targets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common

TABLE = "bench_create_products"
SCRIPT = Path(__file__).resolve()
PANDAS_MAX_ROWS = 100_000
SQLALCHEMY_MAX_ROWS = 200_000
PANDAS_CHUNKSIZE = 10_000
COPY_TYPES = ["int8", "text", "numeric", "text", "int4", "bool", "timestamptz", "jsonb"]


# -- contenders ---------------------------------------------------------------------------------


@dataclass
class Ctx:
    url: str
    rows: int  # rows this contender loads (may be capped below --rows)
    batch_size: int
    seed: int


@dataclass
class Prepared:
    """A contender ready to run: ``load()`` is the timed part."""

    load: Callable[[], Any]
    warm: Callable[[], Any] = lambda: None  # after the table exists, before the clock
    close: Callable[[], Any] = lambda: None


@dataclass(frozen=True)
class Contender:
    key: str
    name: str
    prepare: Callable[[Ctx], Prepared]
    note: str
    max_rows: int | None = None
    may_fail: bool = False  # an error is a reported outcome, not a broken benchmark


def _bulkframe(ctx: Ctx, data: Any) -> Prepared:
    import bulkframe as bf

    db = bf.connect(ctx.url)

    def load() -> Any:
        res = db.bulk_create(TABLE, data, batch_size=ctx.batch_size)
        if res.success_count != ctx.rows or res.records_processed != ctx.rows:
            raise AssertionError(f"bulkframe reported {res!r}, expected {ctx.rows} rows")
        return {"bulkframe_duration_seconds": res.duration_seconds, "batches": res.batches}

    return Prepared(load, warm=lambda: db.columns(TABLE), close=db.close)


def prep_bf_arrow(ctx: Ctx) -> Prepared:
    return _bulkframe(ctx, common.product_arrow(ctx.rows, ctx.seed))


def prep_bf_polars(ctx: Ctx) -> Prepared:
    return _bulkframe(ctx, common.product_polars(ctx.rows, ctx.seed, metadata="json"))


def prep_bf_polars_struct(ctx: Ctx) -> Prepared:
    return _bulkframe(ctx, common.product_polars(ctx.rows, ctx.seed, metadata="struct"))


def prep_bf_dicts(ctx: Ctx) -> Prepared:
    return _bulkframe(ctx, common.product_dicts(ctx.rows, ctx.seed))


def _adbc_connect(url: str) -> Any:
    import adbc_driver_postgresql.dbapi as pg

    return pg.connect(url)


def _rechunk(table: Any, rows_per_batch: int) -> Any:
    """The same table as record batches of ``rows_per_batch`` rows (zero-copy).  One
    ``adbc_ingest`` call over 100k-row batches measured 10-25 % faster than over a single
    1M-row chunk (the driver can send one batch while encoding the next), so the floor
    gets that shape."""
    import pyarrow as pa

    return pa.Table.from_batches(table.to_batches(max_chunksize=rows_per_batch), table.schema)


def prep_raw_adbc(ctx: Ctx) -> Prepared:
    import pyarrow as pa

    data = _rechunk(common.product_arrow(ctx.rows, ctx.seed, json_type=pa.json_(pa.string())), ctx.batch_size)
    conn = _adbc_connect(ctx.url)

    def load() -> None:
        with conn.cursor() as cur:
            cur.adbc_ingest(TABLE, data, mode="append")
        conn.commit()

    return Prepared(load, close=conn.close)


def prep_pylist_adbc(ctx: Ctx) -> Prepared:
    import orjson
    import pyarrow as pa

    rows = common.product_dicts(ctx.rows, ctx.seed)
    json_type = pa.json_(pa.string())
    full = common.product_arrow_schema(json_type)
    scalar_schema = pa.schema([f for f in full if f.name != "metadata"])  # from_pylist skips metadata
    conn = _adbc_connect(ctx.url)

    def load() -> None:
        table = pa.Table.from_pylist(rows, schema=scalar_schema)
        dumps = orjson.dumps
        # .decode() at once: orjson's bytes results over-allocate, keeping 1M of them is slow
        encoded = pa.array([dumps(r["metadata"]).decode() for r in rows], pa.string())
        table = table.append_column(
            full.field("metadata"), pa.ExtensionArray.from_storage(json_type, encoded)
        )
        table = _rechunk(table, ctx.batch_size)
        with conn.cursor() as cur:
            cur.adbc_ingest(TABLE, table, mode="append")
        conn.commit()

    return Prepared(load, close=conn.close)


def prep_psycopg_copy(ctx: Ctx) -> Prepared:
    import psycopg

    rows = common.product_dicts(ctx.rows, ctx.seed)
    conn = psycopg.connect(ctx.url)
    cols = ", ".join(f'"{name}"' for name, _ in common.PRODUCT_COLUMNS)
    sql = f'COPY "{TABLE}" ({cols}) FROM STDIN (FORMAT BINARY)'

    def load() -> None:
        with conn.cursor() as cur, cur.copy(sql) as copy:
            copy.set_types(COPY_TYPES)
            write = copy.write_row
            for r in rows:
                write(
                    (
                        r["id"],
                        r["name"],
                        r["price"],
                        r["category"],
                        r["stock"],
                        r["active"],
                        r["created_at"],
                        r["metadata"],
                    )
                )
        conn.commit()

    return Prepared(load, close=conn.close)


def prep_polars_adbc(ctx: Ctx) -> Prepared:
    df = common.product_polars(ctx.rows, ctx.seed, metadata="json")

    def load() -> None:
        df.write_database(TABLE, connection=ctx.url, if_table_exists="append", engine="adbc")

    return Prepared(load)


def _sa_engine(url: str) -> Any:
    import sqlalchemy as sa

    return sa.create_engine(common.sqlalchemy_url(url, "psycopg"))


def _warm_engine(engine: Any) -> Callable[[], None]:
    def warm() -> None:
        with engine.connect() as conn:  # one pooled connection, reused by the load
            conn.exec_driver_sql("SELECT 1")

    return warm


def prep_pandas(ctx: Ctx) -> Prepared:
    import pandas as pd
    import sqlalchemy as sa
    from sqlalchemy.dialects.postgresql import JSONB

    df = pd.DataFrame.from_records(common.product_dicts(ctx.rows, ctx.seed))
    engine = _sa_engine(ctx.url)
    dtype = {"price": sa.Numeric(10, 2), "metadata": JSONB()}

    def load() -> None:
        df.to_sql(
            TABLE,
            engine,
            if_exists="append",
            index=False,
            chunksize=PANDAS_CHUNKSIZE,
            method=None,
            dtype=dtype,
        )

    return Prepared(load, warm=_warm_engine(engine), close=engine.dispose)


def prep_sqlalchemy(ctx: Ctx) -> Prepared:
    import sqlalchemy as sa
    from sqlalchemy.dialects.postgresql import JSONB

    rows = common.product_dicts(ctx.rows, ctx.seed)
    engine = _sa_engine(ctx.url)
    table = sa.Table(
        TABLE,
        sa.MetaData(),
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.Text),
        sa.Column("price", sa.Numeric(10, 2)),
        sa.Column("category", sa.Text),
        sa.Column("stock", sa.Integer),
        sa.Column("active", sa.Boolean),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("metadata", JSONB),
    )

    def load() -> None:
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)

    return Prepared(load, warm=_warm_engine(engine), close=engine.dispose)


CONTENDERS: tuple[Contender, ...] = (
    Contender(
        "bf-arrow",
        "bulkframe (Arrow)",
        prep_bf_arrow,
        "db.bulk_create(table, pyarrow.Table) with exact types; metadata = JSON text (string)",
    ),
    Contender(
        "bf-polars",
        "bulkframe (Polars)",
        prep_bf_polars,
        "db.bulk_create(table, polars.DataFrame); metadata = JSON String column",
    ),
    Contender(
        "bf-polars-struct",
        "bulkframe (Polars struct)",
        prep_bf_polars_struct,
        "extra: as bf-polars but metadata = Struct{color,size} (bulkframe JSON-encodes it)",
    ),
    Contender(
        "bf-dicts",
        "bulkframe (list of dicts)",
        prep_bf_dicts,
        "db.bulk_create(table, list_of_dicts): Decimal, tz-aware datetime, dict metadata",
    ),
    Contender(
        "raw-adbc",
        "raw adbc_ingest",
        prep_raw_adbc,
        "adbc_driver_postgresql dbapi: cur.adbc_ingest(table, arrow_with_json_ext, mode='append') "
        "+ commit; one call, the table as batch-size record batches (the floor)",
    ),
    Contender(
        "pylist-adbc",
        "raw from_pylist + adbc_ingest",
        prep_pylist_adbc,
        "pa.Table.from_pylist(dicts, schema) + orjson-encoded metadata column, rechunked, "
        "+ adbc_ingest (the floor for dict input; conversion timed)",
    ),
    Contender(
        "psycopg-copy",
        "psycopg COPY",
        prep_psycopg_copy,
        "psycopg 3 COPY ... FROM STDIN (FORMAT BINARY), set_types, write_row per dict "
        "(default json.dumps for jsonb)",
    ),
    Contender(
        "polars-adbc",
        "polars write_database(adbc)",
        prep_polars_adbc,
        "df.write_database(table, url, if_table_exists='append', engine='adbc'); "
        "metadata = JSON String column",
        may_fail=True,
    ),
    Contender(
        "pandas",
        "pandas to_sql",
        prep_pandas,
        f"DataFrame.to_sql(if_exists='append', method=None (executemany -> SQLAlchemy "
        f"insertmanyvalues), chunksize={PANDAS_CHUNKSIZE:,}), postgresql+psycopg, "
        f"dtype price=Numeric(10,2) metadata=JSONB",
        max_rows=PANDAS_MAX_ROWS,
    ),
    Contender(
        "sqlalchemy",
        "SQLAlchemy Core executemany",
        prep_sqlalchemy,
        "conn.execute(table.insert(), list_of_dicts) in engine.begin(); postgresql+psycopg, "
        "insertmanyvalues (default page size)",
        max_rows=SQLALCHEMY_MAX_ROWS,
    ),
)
BY_KEY = {c.key: c for c in CONTENDERS}
BY_NAME = {c.name.lower(): c for c in CONTENDERS}


def resolve(names: str | None) -> list[Contender]:
    if not names:
        return list(CONTENDERS)
    chosen = []
    for raw in names.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        contender = BY_KEY.get(name) or BY_NAME.get(name)
        if contender is None:
            keys = ", ".join(BY_KEY)
            raise SystemExit(f"unknown contender {raw!r}; choose from: {keys}")
        chosen.append(contender)
    return chosen


# -- child: run one contender --------------------------------------------------------------------


def run_contender(contender: Contender, args: argparse.Namespace) -> dict[str, Any]:
    """Prepare, then ``--repeat`` times: fresh table, timed load, verify, drop."""
    common.ensure_src_on_path()
    url = common.postgres_url(args.url)
    rows = min(args.rows, contender.max_rows) if contender.max_rows else args.rows
    ctx = Ctx(url, rows, args.batch_size, args.seed)
    out: dict[str, Any] = {
        "key": contender.key,
        "name": contender.name,
        "rows": rows,
        "note": contender.note,
        "capped": rows < args.rows,
    }
    # the expected fingerprint comes from the parent, so this process holds only its own input
    expected = json.loads(args.expect)[str(rows)] if args.expect else expected_fingerprint(rows, args.seed)
    started = time.perf_counter()
    prepared = contender.prepare(ctx)
    out["prepare_seconds"] = time.perf_counter() - started
    times: list[float] = []
    peaks: list[float] = []
    try:
        for attempt in range(args.repeat):
            common.recreate_table(url, TABLE, common.product_ddl(TABLE))
            prepared.warm()
            common.checkpoint(url)
            with common.PeakRSS() as mem, common.stopwatch() as clock:
                extra = prepared.load()
            times.append(clock["seconds"])
            peaks.append(mem.peak)
            out.update(extra or {})
            out["rss_before_mb"] = mem.before
            out["rss_method"] = mem.method
            count = common.count_rows(url, TABLE)
            if count != rows:
                raise AssertionError(
                    f"{contender.name}: table has {count:,} rows after the load, expected {rows:,}"
                )
            got = [str(v) for v in common.pg_execute(url, common.FINGERPRINT_SQL.format(table=TABLE))[0]]
            if got != expected:
                raise AssertionError(
                    f"{contender.name}: stored values differ from the generated data\n"
                    f"  fingerprint expected {expected}\n  fingerprint got      {got}"
                )
            common.drop_table(url, TABLE)
            print(
                f"  {contender.name}: run {attempt + 1}/{args.repeat}: {clock['seconds']:.3f} s "
                f"({rows / clock['seconds']:,.0f} rows/s), verified",
                file=sys.stderr,
                flush=True,
            )
    finally:
        prepared.close()
        common.drop_table(url, TABLE)
    best = min(times)
    out.update(
        seconds=best,
        median_seconds=sorted(times)[len(times) // 2],
        all_seconds=times,
        rows_per_second=rows / best,
        peak_rss_mb=max(peaks),
        load_rss_mb=max(peaks) - out["rss_before_mb"],
    )
    return out


def expected_fingerprint(rows: int, seed: int) -> list[str]:
    """What the fingerprint query must return after loading ``rows`` generated rows."""
    return [str(v) for v in common.fingerprint_of_arrow(common.product_arrow(rows, seed))]


def child_main(args: argparse.Namespace) -> int:
    (contender,) = resolve(args.only)
    result_file = Path(args.result_file)
    try:
        result = run_contender(contender, args)
    except Exception as exc:
        first = f"{type(exc).__name__}: {exc}".strip().splitlines()
        message = first[0] if first else type(exc).__name__
        if len(message) > 300:
            message = message[:297] + "..."
        result = {
            "key": contender.key,
            "name": contender.name,
            "error": message,
            "error_detail": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
        result_file.write_text(json.dumps(result, default=str))
        if contender.may_fail:
            print(f"  {contender.name}: {message}", file=sys.stderr)
        else:
            traceback.print_exc()
        return 1
    result_file.write_text(json.dumps(result, default=str))
    return 0


# -- parent: run all, print, judge ------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    subject: str
    other: str
    factor: float

    def describe(self) -> str:
        return f"{BY_KEY[self.subject].name} >= {self.factor:g}x {BY_KEY[self.other].name} (rows/s)"


BF_KEYS = ("bf-arrow", "bf-polars", "bf-dicts")
TARGETS: tuple[Target, ...] = (
    Target("bf-arrow", "raw-adbc", 0.9),
    Target("bf-polars", "raw-adbc", 0.9),
    Target("bf-dicts", "pylist-adbc", 0.75),
    *(Target(k, "pandas", 10) for k in BF_KEYS),
    *(Target(k, "sqlalchemy", 6) for k in BF_KEYS),
)


def judge(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    lines = []
    for t in TARGETS:
        a, b = results.get(t.subject), results.get(t.other)
        if not a or not b or "rows_per_second" not in a or "rows_per_second" not in b:
            lines.append((t.describe(), "-", "-", "SKIP"))
            continue
        ratio = a["rows_per_second"] / b["rows_per_second"]
        lines.append(
            (t.describe(), f"{ratio:.2f}x", f">= {t.factor:g}x", "PASS" if ratio >= t.factor else "FAIL")
        )
    return lines


def parent_main(args: argparse.Namespace) -> int:
    url = common.postgres_url(args.url)
    chosen = resolve(args.only)
    env = common.child_env()
    common.ensure_src_on_path()
    info = common.environment_info(url)
    print(
        f"bench_create: {args.rows:,} rows -> PostgreSQL {info['postgres']} at {common.redact_url(url)}; "
        f"bulkframe batch_size={args.batch_size:,}; repeat={args.repeat} (best of); seed={args.seed}",
        flush=True,
    )
    row_counts = {min(args.rows, c.max_rows) if c.max_rows else args.rows for c in chosen}
    expect = json.dumps({str(n): expected_fingerprint(n, args.seed) for n in sorted(row_counts)})
    results: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    for contender in chosen:
        print(f"- {contender.name} ...", file=sys.stderr, flush=True)
        child_args = [
            "--child",
            "--only",
            contender.key,
            "--rows",
            str(args.rows),
            "--url",
            url,
            "--repeat",
            str(args.repeat),
            "--batch-size",
            str(args.batch_size),
            "--seed",
            str(args.seed),
            "--expect",
            expect,
        ]
        outcome = common.run_child(SCRIPT, child_args, env=env, timeout=args.timeout)
        result = outcome.result or {"key": contender.key, "name": contender.name}
        if not outcome.ok:
            result["error"] = outcome.error
            if not contender.may_fail:
                failures.append(f"{contender.name}: {outcome.error}")
        results[contender.key] = result

    raw = results.get("raw-adbc", {}).get("rows_per_second")
    bfa = results.get("bf-arrow", {}).get("rows_per_second")
    rows_out: list[list[str]] = []
    errors: list[str] = []
    for contender in chosen:
        r = results[contender.key]
        if "error" in r:
            rows_out.append([contender.name, "-", "-", "ERROR (below)", "-", "-", "-", "-"])
            detail = "\n    ".join(str(r.get("error_detail") or r["error"]).splitlines()[:4])
            errors.append(f"  {contender.name}: {detail}")
            continue
        rps = r["rows_per_second"]
        label = contender.name + (" *" if r.get("capped") else "")
        rows_out.append(
            [
                label,
                common.fmt_int(r["rows"]),
                f"{r['seconds']:.3f}",
                common.fmt_int(rps),
                common.fmt_float(rps / raw if raw else None, 2, "x"),
                common.fmt_float(bfa / rps if bfa else None, 2, "x"),
                common.fmt_int(r["peak_rss_mb"]),
                common.fmt_int(r["load_rss_mb"]),
            ]
        )
    table = common.format_table(
        [
            "contender",
            "rows",
            "seconds",
            "rows/s",
            "vs raw adbc",
            "bf(Arrow) is",
            "peak RSS MiB",
            "load +MiB",
        ],
        rows_out,
    )
    print()
    print(table)
    if any(r.get("capped") for r in results.values()):
        print(
            f"* capped: pandas to_sql runs on min(rows, {PANDAS_MAX_ROWS:,}), SQLAlchemy on "
            f"min(rows, {SQLALCHEMY_MAX_ROWS:,}); ratios compare rows/s."
        )
    print(
        "vs raw adbc = rows/s / raw adbc_ingest rows/s;  bf(Arrow) is = bulkframe (Arrow) rows/s / "
        "this row's rows/s;\npeak RSS = process peak during the load (fresh process per contender, "
        "input already in memory); load +MiB = peak minus RSS before the load."
    )
    if errors:
        print("errors:", *errors, sep="\n")
    verdicts = judge(results)
    print()
    print(common.format_table(["target", "measured", "needed", "result"], verdicts, "lrrl"))
    print()
    for contender in chosen:
        print(f"  {contender.name}: {contender.note}")
    path = common.write_results(
        "bench_create",
        {
            "benchmark": "bench_create",
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "rows": args.rows,
            "batch_size": args.batch_size,
            "repeat": args.repeat,
            "seed": args.seed,
            "url": common.redact_url(url),
            "environment": info,
            "results": list(results.values()),
            "targets": [
                dict(zip(("target", "measured", "needed", "result"), v, strict=True)) for v in verdicts
            ],
            "table": table,
        },
    )
    print(f"\nresults written to {path}")
    if failures:
        print("\nFAILED contenders (the benchmark is broken, not just slow):", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        return 2
    return 1 if any(v[3] == "FAIL" for v in verdicts) else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", type=int, default=1_000_000, help="rows to load (default 1,000,000)")
    p.add_argument(
        "--url", default=None, help=f"PostgreSQL URL (default ${common.URL_ENV} or {common.DEFAULT_URL})"
    )
    p.add_argument(
        "--only",
        default=None,
        help="comma-separated contenders: " + ", ".join(BY_KEY) + " (or their display names)",
    )
    p.add_argument("--repeat", type=int, default=1, help="timed runs per contender; the best is reported")
    p.add_argument("--batch-size", type=int, default=100_000, help="bulkframe batch_size (default 100,000)")
    p.add_argument("--seed", type=int, default=common.DEFAULT_SEED, help="data generator seed")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per contender process")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    p.add_argument("--expect", default=None, help=argparse.SUPPRESS)  # JSON {rows: fingerprint}
    args = p.parse_args(argv)
    if args.rows <= 0 or args.repeat <= 0 or args.batch_size <= 0:
        p.error("--rows, --repeat and --batch-size must be positive")
    if args.child and (not args.result_file or not args.only or "," in args.only):
        p.error("--child needs --result-file and exactly one --only contender")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return child_main(args) if args.child else parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
