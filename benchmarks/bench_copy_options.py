"""Benchmark: a CSV/text file with ``copy_options`` into PostgreSQL, two ways.

The same N-row tab-delimited file (the spec's ``copy_options``: ``delimiter="\\t"``,
``null_string="\\N"``, ``format="csv"``) is loaded into a fresh table, alternating, in one
run:

* **server**: the create node's server path: the file streams unchanged into
  ``COPY … FROM STDIN (FORMAT csv, DELIMITER E'\\t', NULL '\\N', HEADER true)`` (psycopg),
  the server parses every value;
* **arrow**: the client path the node takes elsewhere (and for loads the server path does
  not cover): Arrow's CSV reader with the same options, every column as text, cast by
  bulkframe to the table's types, written by binary COPY (ADBC).

Both loads must store the same rows (a fingerprint of the table is compared); the script
prints the medians and the ratio.

    python benchmarks/bench_copy_options.py [--rows 1000000] [--repeat 3] [--url URL]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import common

common.ensure_src_on_path()

TABLE = "bench_copy_options_products"


def write_file(path: Path, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    cats = ["electronics", "clothing", "books", "toys"]
    with open(path, "w") as f:
        f.write("name\tprice\tcategory\tstock\tnote\n")
        for i in range(rows):
            note = "\\N" if i % 5 == 0 else f"note {i}"
            f.write(
                f"Product {i}\t{round(rng.uniform(1, 1000), 2)}\t{cats[i % 4]}\t{rng.randrange(1000)}\t{note}\n"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default=None)
    args = parser.parse_args(argv)
    url = common.postgres_url(args.url)

    from bulkframe.nodes import DataFlow
    from bulkframe.nodes.copy_options import _reader, parse

    options = {"delimiter": "\t", "null_string": "\\N", "format": "csv"}
    fmt, _ = parse(options, "bench")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "products.tsv"
        write_file(path, args.rows, common.DEFAULT_SEED)
        size_mb = path.stat().st_size / 1e6
        times: dict[str, list[float]] = {"server": [], "arrow": []}
        prints: dict[str, set[tuple]] = {"server": set(), "arrow": set()}  # type: ignore[type-arg]
        for _ in range(args.repeat):
            for way in ("server", "arrow"):
                flow = DataFlow(url)
                flow.database.drop_table(TABLE)

                class Product:
                    name: str
                    price: float
                    category: str
                    stock: int
                    note: str | None = None
                    __tablename__ = TABLE
                    __timestamps__ = False

                model = flow.model(Product)
                names = ["name", "price", "category", "stock", "note"]
                started = time.perf_counter()
                if way == "server":
                    loaded = flow.database.backend.copy_text_file(flow.table_of(model), str(path), names, fmt)
                else:
                    loaded = flow.database.bulk_create(model, _reader(path, fmt, names, False)).inserted
                times[way].append(time.perf_counter() - started)
                assert loaded == args.rows, (way, loaded)
                conn = flow.database.connection()
                try:
                    prints[way].add(
                        tuple(
                            conn.fetchall(
                                f"SELECT count(*), count(note), sum(price)::text, sum(stock), "
                                f"md5(string_agg(name || category, ',' ORDER BY name)) FROM {TABLE}"
                            )[0]
                        )
                    )
                    conn.commit()
                finally:
                    flow.database.release(conn)
                flow.database.drop_table(TABLE)
                flow.close()
    if len(prints["server"] | prints["arrow"]) != 1:
        print(f"MISMATCH: the two paths stored different rows: {prints}", file=sys.stderr)
        return 1
    server, arrow = statistics.median(times["server"]), statistics.median(times["arrow"])
    print(
        f"{args.rows:,} rows, {size_mb:.1f} MB tab-delimited file, {args.repeat} runs each, same rows stored"
    )
    print(f"{'path':<8} {'median s':>9} {'rows/s':>12}")
    for way, med in (("server", server), ("arrow", arrow)):
        print(f"{way:<8} {med:>9.2f} {args.rows / med:>12,.0f}")
    print(f"arrow / server time: {arrow / server:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
