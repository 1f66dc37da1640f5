"""Benchmark: N rows into MariaDB/MySQL, and back out.

Loads (into a fresh table with the same DDL each time, timed wall-clock from an Arrow
table in memory to committed rows):

* ``floor``: hand-written ``LOAD DATA LOCAL INFILE`` of the same rows: ``pyarrow.csv``
  writes a tab-separated file (the rows hold no character that needs escaping), then
  mysqlclient loads it, in one transaction;
* ``bulkframe``: ``db.bulk_create(table, arrow)`` (LOAD DATA from Arrow, exact escaping);
* ``bulkframe_insert``: ``use_load_data=False`` (multi-row INSERTs), on a subset, scaled;
* ``pandas``: ``DataFrame.to_sql(method="multi")`` through SQLAlchemy + mysqlclient, on a
  subset, scaled;
* ``sqlalchemy``: Core ``executemany`` of the rows as dicts, on a subset, scaled;
* the drivers: the same LOAD DATA through PyMySQL (mysqlclient is bulkframe's driver).

Reads of the N-row table: connectorx into Arrow, mysqlclient's and PyMySQL's fetch
(converted to Arrow), and ``db.read``.  Upsert of N/5 rows (half existing and changed, half
new) into the N-row table: ``db.bulk_upsert`` against the hand-written floor (temporary
staging table, LOAD DATA, ``INSERT … SELECT … ON DUPLICATE KEY UPDATE``, commit).

Every load is checked (row count and sum of ids; the upsert also the changed values).

    python benchmarks/bench_mysql.py [--rows 1000000] [--repeat 3] [--url mysql://root@127.0.0.1:3306/test]

The fast contenders (LOAD DATA floor, PyMySQL, bulkframe; upsert floor and bulkframe) run
``--repeat`` rounds, alternating within each round, and the best time of each is reported
(single runs on a 2-core machine vary by ±30 %, and the first load of a session pays for
InnoDB's warm-up); every round's times are kept in the JSON.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

TABLE = "bench_mysql_products"
DDL = (
    "(id BIGINT PRIMARY KEY, name VARCHAR(64), price DECIMAL(10,2), qty INT, active BOOLEAN, "
    "created DATETIME(6), note LONGTEXT)"
)


def rows(n: int, start: int = 0, salt: str = "") -> pa.Table:
    ids = pa.array(range(start, start + n), pa.int64())
    cents = pc.add(pc.multiply(pc.bit_wise_and(ids, 65535), 7), 99)
    base = pa.scalar(1_700_000_000_000_000, pa.int64())
    return pa.table(
        {
            "id": ids,
            "name": pc.binary_join_element_wise(pa.scalar(f"product{salt} "), pc.cast(ids, pa.string()), ""),
            "price": cents_to_decimal(cents),
            "qty": pc.cast(pc.bit_wise_and(ids, 1023), pa.int32()),
            "active": pc.equal(pc.bit_wise_and(ids, 1), 0),
            "created": pc.cast(pc.add(base, pc.multiply(ids, 1_000_003)), pa.timestamp("us")),
            "note": pc.binary_join_element_wise(
                pa.scalar("note "), pc.cast(pc.bit_wise_and(ids, 255), pa.string()), ""
            ),
        }
    )


def cents_to_decimal(cents: pa.Array) -> pa.Array:
    """Integer cents as decimal(10,2) (the unscaled 128-bit values written directly)."""
    import numpy as np

    c = cents.to_numpy().astype(np.int64)
    words = np.zeros(2 * len(c), dtype=np.int64)
    words[0::2] = c
    return pa.Array.from_buffers(pa.decimal128(10, 2), len(c), [None, pa.py_buffer(words.tobytes())])


def connect_args(url: str) -> dict[str, Any]:
    from urllib.parse import unquote, urlsplit

    u = urlsplit(url)
    return {
        "host": u.hostname or "127.0.0.1",
        "port": u.port or 3306,
        "user": unquote(u.username or "root"),
        "password": unquote(u.password or ""),
        "database": u.path.lstrip("/"),
    }


def mysqlclient(url: str) -> Any:
    import MySQLdb

    return MySQLdb.connect(**connect_args(url), local_infile=True, charset="utf8mb4", autocommit=False)


def pymysql_conn(url: str) -> Any:
    import pymysql

    return pymysql.connect(**connect_args(url), local_infile=True, charset="utf8mb4", autocommit=False)


def run_sql(url: str, *statements: str) -> list[tuple[Any, ...]]:
    conn = mysqlclient(url)
    try:
        cur = conn.cursor()
        out: list[tuple[Any, ...]] = []
        for s in statements:
            cur.execute(s)
            out = list(cur.fetchall()) if cur.description else []
        conn.commit()
        return out
    finally:
        conn.close()


def fresh(url: str) -> None:
    run_sql(url, f"DROP TABLE IF EXISTS {TABLE}", f"CREATE TABLE {TABLE} {DDL}")


def check(url: str, n: int, start: int = 0) -> None:
    count, total = run_sql(url, f"SELECT count(*), sum(id) FROM {TABLE}")[0]
    want = sum(range(start, start + n))
    if (int(count), int(total or 0)) != (n, want):
        raise SystemExit(f"check failed: {count} rows, sum {total}; expected {n}, {want}")


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def load_data_file(table: pa.Table, path: str) -> None:
    pacsv.write_csv(
        table, path, pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    )


def hand_load(connect: Callable[[str], Any], url: str, table: pa.Table, target: str = TABLE) -> None:
    with tempfile.NamedTemporaryFile(suffix=".tsv") as f:
        text = table.set_column(
            table.schema.get_field_index("active"), "active", pc.cast(table["active"], pa.int8())
        )
        load_data_file(text, f.name)
        conn = connect(url)
        try:
            cur = conn.cursor()
            cur.execute(
                f"LOAD DATA LOCAL INFILE '{f.name}' INTO TABLE {target} FIELDS TERMINATED BY '\\t' "
                f"LINES TERMINATED BY '\\n' ({', '.join(table.column_names)})"
            )
            conn.commit()
        finally:
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of the fast loads and the upserts (alternating; best kept)",
    )
    parser.add_argument("--subset", type=int, default=50_000, help="rows for the slow contenders (scaled)")
    parser.add_argument(
        "--url", default=os.environ.get("BULKFRAME_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
    )
    args = parser.parse_args()
    import bulkframe as bf
    import bulkframe.ops.create
    import bulkframe.ops.upsert

    n, url = args.rows, args.url
    data = rows(n)
    subset = data.slice(0, min(args.subset, n))
    out: dict[str, Any] = {"rows": n, "subset": subset.num_rows, "seconds": {}, "ratios": {}}
    sec = out["seconds"]

    # -- loads: the fast contenders alternate, --repeat rounds, best of each --------------------
    def bulkframe_load() -> None:
        with bf.connect(url) as db:
            db.columns(TABLE)  # the pool's first connection is opened outside the clock, as for the floor's
            sec_round["bulkframe"] = timed(lambda: db.bulk_create(TABLE, data, batch_size=100_000))

    fast: dict[str, Callable[[], None]] = {
        "floor_load_data": lambda: sec_round.__setitem__(
            "floor_load_data", timed(lambda: hand_load(mysqlclient, url, data))
        ),
        "pymysql_load_data": lambda: sec_round.__setitem__(
            "pymysql_load_data", timed(lambda: hand_load(pymysql_conn, url, data))
        ),
        "bulkframe": bulkframe_load,
    }
    sec_round: dict[str, float] = {}
    rounds: list[dict[str, float]] = []
    for _ in range(args.repeat):
        for run in fast.values():
            fresh(url)
            run()
            check(url, n)
        rounds.append(dict(sec_round))
    for name in fast:
        sec[name] = min(r[name] for r in rounds)
    out["load_rounds"] = rounds
    fresh(url)
    with bf.connect(url) as db:
        db.columns(TABLE)
        t = timed(lambda: db.bulk_create(TABLE, subset, use_load_data=False, batch_size=10_000))
    check(url, subset.num_rows)
    sec["bulkframe_insert_scaled"] = t * n / subset.num_rows

    import sqlalchemy as sa

    engine_url = sa.make_url(url).set(drivername="mysql+mysqldb")
    engine = sa.create_engine(engine_url)
    fresh(url)
    frame = subset.to_pandas()
    t = timed(
        lambda: frame.to_sql(TABLE, engine, if_exists="append", index=False, method="multi", chunksize=5_000)
    )
    check(url, subset.num_rows)
    sec["pandas_to_sql_scaled"] = t * n / subset.num_rows
    fresh(url)
    meta = sa.MetaData()
    target = sa.Table(TABLE, meta, autoload_with=engine)
    dicts = subset.to_pylist()

    def executemany() -> None:
        with engine.begin() as c:
            c.execute(sa.insert(target), dicts)

    t = timed(executemany)
    check(url, subset.num_rows)
    sec["sqlalchemy_executemany_scaled"] = t * n / subset.num_rows
    engine.dispose()

    # -- reads of the N-row table --------------------------------------------------------------
    fresh(url)
    hand_load(mysqlclient, url, data)
    import connectorx as cx

    query = f"SELECT * FROM {TABLE}"
    cx_url = url.replace("mariadb://", "mysql://", 1)
    sec["read_connectorx"] = timed(lambda: cx.read_sql(cx_url, query, return_type="arrow"))

    def driver_fetch(connect: Callable[[str], Any]) -> Callable[[], Any]:
        def run() -> pa.Table:
            conn = connect(url)
            try:
                cur = conn.cursor()
                cur.execute(query)
                names = [d[0] for d in cur.description]
                got = cur.fetchall()
                return pa.table([pa.array(list(col)) for col in zip(*got, strict=True)], names=names)
            finally:
                conn.close()

        return run

    sec["read_mysqlclient_fetch"] = timed(driver_fetch(mysqlclient))
    sec["read_pymysql_fetch"] = timed(driver_fetch(pymysql_conn))
    with bf.connect(url) as db:
        db.columns(TABLE)
        sec["read_bulkframe"] = timed(lambda: db.read(TABLE))

    # -- upsert -------------------------------------------------------------------------------
    m = n // 5
    incoming = rows(m, start=n - m // 2, salt="*")  # half existing (renamed), half new
    total = n + m - m // 2

    def upsert_floor() -> None:
        conn = mysqlclient(url)
        try:
            cur = conn.cursor()
            cur.execute(f"CREATE TEMPORARY TABLE bench_stage {DDL.replace(' PRIMARY KEY', '')}")
            conn.commit()
            with tempfile.NamedTemporaryFile(suffix=".tsv") as f:
                text = incoming.set_column(4, "active", pc.cast(incoming["active"], pa.int8()))
                load_data_file(text, f.name)
                cur.execute(
                    f"LOAD DATA LOCAL INFILE '{f.name}' INTO TABLE bench_stage FIELDS TERMINATED BY '\\t' "
                    f"LINES TERMINATED BY '\\n' ({', '.join(incoming.column_names)})"
                )
            cols = ", ".join(incoming.column_names)
            sets = ", ".join(f"{c} = VALUES({c})" for c in incoming.column_names if c != "id")
            cur.execute(
                f"INSERT INTO {TABLE} ({cols}) SELECT {cols} FROM bench_stage ORDER BY id "
                f"ON DUPLICATE KEY UPDATE {sets}"
            )
            conn.commit()
        finally:
            conn.close()

    def renamed() -> int:
        return int(run_sql(url, f"SELECT count(*) FROM {TABLE} WHERE name LIKE 'product* %'")[0][0])

    def upsert_bulkframe() -> float:
        with bf.connect(url) as db:
            db.columns(TABLE)
            result: list[Any] = []
            took = timed(lambda: result.append(db.bulk_upsert(TABLE, incoming, unique_fields=["id"])))
        r = result[0]
        assert (r.inserted, r.updated, r.skipped) == (m - m // 2, m // 2, 0), r
        return took

    upserts: dict[str, Callable[[], float]] = {
        "upsert_floor": lambda: timed(upsert_floor),
        "upsert_bulkframe": upsert_bulkframe,
    }
    upsert_rounds: list[dict[str, float]] = []
    for _ in range(args.repeat):
        one: dict[str, float] = {}
        for name, run_upsert in upserts.items():
            fresh(url)
            hand_load(mysqlclient, url, data)
            one[name] = run_upsert()
            check(url, total)
            assert renamed() == m
        upsert_rounds.append(one)
    for name in upserts:
        sec[name] = min(r[name] for r in upsert_rounds)
    out["upsert_rounds"] = upsert_rounds
    run_sql(url, f"DROP TABLE IF EXISTS {TABLE}")

    ratio = out["ratios"]
    ratio["bulkframe_vs_load_data_floor"] = sec["floor_load_data"] / sec["bulkframe"]
    ratio["bulkframe_vs_pandas_to_sql"] = sec["pandas_to_sql_scaled"] / sec["bulkframe"]
    ratio["bulkframe_vs_sqlalchemy_executemany"] = sec["sqlalchemy_executemany_scaled"] / sec["bulkframe"]
    ratio["bulkframe_vs_bulkframe_insert"] = sec["bulkframe_insert_scaled"] / sec["bulkframe"]
    ratio["mysqlclient_vs_pymysql_load"] = sec["pymysql_load_data"] / sec["floor_load_data"]
    ratio["mysqlclient_vs_pymysql_fetch"] = sec["read_pymysql_fetch"] / sec["read_mysqlclient_fetch"]
    ratio["connectorx_vs_mysqlclient_fetch"] = sec["read_mysqlclient_fetch"] / sec["read_connectorx"]
    ratio["bulkframe_read_vs_connectorx"] = sec["read_connectorx"] / sec["read_bulkframe"]
    ratio["upsert_vs_floor"] = sec["upsert_floor"] / sec["upsert_bulkframe"]
    out["python"] = platform.python_version()
    out["server"] = run_sql(url, "SELECT VERSION()")[0][0]
    print(f"{n:,} rows into {out['server']} ({url}); slow contenders on {subset.num_rows:,} rows, scaled")
    for name, value in sec.items():
        print(f"  {name:32s} {value:9.2f} s   {n / value:12,.0f} rows/s")
    print("ratios (>1: the first is faster; goals: >=0.9 vs the floors, >=10 vs pandas):")
    for name, value in ratio.items():
        print(f"  {name:40s} {value:7.2f}x")
    import common

    print(f"wrote {common.write_results('bench_mysql', out)}")


if __name__ == "__main__":
    main()
