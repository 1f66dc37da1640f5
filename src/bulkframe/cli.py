"""The ``bulkframe`` command line: ``demo`` and ``load``.

Exit codes: 0 success, 1 a bulkframe error (one line on stderr), 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bulkframe.backends.registry import DEFAULT_URL
from bulkframe.options import ConflictResolution, choices


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bulkframe", description="Fast, honest bulk loads into SQL databases."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what bulkframe does")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="bulk-create synthetic products and print rows/s")
    demo.add_argument("--rows", type=int, default=100_000, help="how many products (default 100000)")
    demo.add_argument("--url", default=DEFAULT_URL, help=f"database URL (default {DEFAULT_URL})")
    demo.add_argument("--table", default="demo_products", help="target table (replaced)")
    demo.add_argument("--batch-size", type=int, default=10_000)

    load = sub.add_parser("load", help="load a Parquet or CSV file into a table")
    load.add_argument("file", help="path to a .parquet or .csv file")
    load.add_argument("--url", default=DEFAULT_URL, help=f"database URL (default {DEFAULT_URL})")
    load.add_argument("--table", required=True)
    load.add_argument("--batch-size", type=int, default=10_000)
    load.add_argument(
        "--conflict",
        choices=choices(ConflictResolution),
        default="error",
        help="what a row whose key exists does (bulk_create's conflict_resolution)",
    )
    load.add_argument(
        "--key",
        nargs="+",
        default=None,
        metavar="COL",
        help="conflict key columns (default: the primary key)",
    )
    load.add_argument(
        "--primary-key", nargs="+", default=None, metavar="COL", help="primary key when the table is created"
    )
    return parser


def demo_products(rows: int) -> object:
    """A synthetic product catalogue as a Polars DataFrame (deterministic)."""
    import polars as pl

    categories = ["electronics", "clothing", "books", "garden", "toys"]
    index = pl.int_range(0, rows, eager=True)
    return pl.DataFrame({"id": index + 1}).with_columns(
        name=pl.format("Product {}", pl.col("id")),
        price=((pl.col("id") * 7919 % 100_000) / 100 + 0.01).cast(pl.Decimal(10, 2)),
        category=pl.lit(pl.Series(categories)).gather(pl.col("id") % len(categories)),
        stock=(pl.col("id") * 31 % 1000).cast(pl.Int32),
        active=pl.col("id") % 7 != 0,
        created_at=pl.datetime(2024, 1, 1, time_zone="UTC") + pl.duration(seconds=pl.col("id")),
    )


def _run(args: argparse.Namespace) -> int:
    import bulkframe as bf

    with bf.connect(args.url) as db:
        if args.command == "demo":
            data = demo_products(args.rows)
            db.drop_table(args.table)
            result = db.bulk_create(
                args.table, data, batch_size=args.batch_size, primary_key="id", progress_callback=True
            )
        else:
            result = db.bulk_create(
                args.table,
                args.file,
                batch_size=args.batch_size,
                conflict_resolution=args.conflict,
                conflict_fields=args.key,
                primary_key=args.primary_key,
                progress_callback=True,
            )
    out = sys.stdout
    out.write(
        f"{result.operation} {result.table}: {result.records_processed:,} processed, "
        f"{result.success_count:,} succeeded ({result.inserted:,} inserted, {result.updated:,} updated, "
        f"{result.skipped:,} skipped), {result.failure_count:,} failed in {result.batches} batches, "
        f"{result.duration_seconds:.2f} s, {result.rows_per_second:,.0f} rows/s\n"
    )
    if args.command == "demo":
        out.write(f"database: {args.url}  table: {args.table}\n")
    return 0 if result.failure_count == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    from bulkframe.errors import BulkframeError

    try:
        return _run(args)
    except BulkframeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        sys.stderr.write(f"bulkframe: error: {first}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("bulkframe: interrupted; the transaction was rolled back\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
