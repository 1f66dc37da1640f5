"""The command line's vocabulary: one option means the same thing in every subcommand.

Stdlib only (argparse): building the parser imports nothing heavy, so ``bulkframe
--help`` starts in a few tens of milliseconds.
"""

from __future__ import annotations

import argparse

from bulkframe.backends.registry import DEFAULT_URL
from bulkframe.choices import (
    AuditLevel,
    ConflictResolution,
    SyncMode,
    UpsertConflictResolution,
    VerifyMode,
    choices,
)
from bulkframe.cli import config
from bulkframe.cli.config import MODES, ON_ERROR
from bulkframe.cli.inputs import FORMAT_CHOICES

EPILOG = f"""\
exit codes: {config.EXIT_OK} success, {config.EXIT_FAILED} failure (error on stderr), \
{config.EXIT_USAGE} bad usage, {config.EXIT_PARTIAL} partial load (rows rejected), \
{config.EXIT_MISMATCH} verification found differences, {config.EXIT_INTERRUPTED} interrupted.
environment: {config.ENV_URL} (target database URL), {config.ENV_SOURCE_URL} (copy/verify \
source URL), {config.ENV_BATCH_SIZE} (default --batch-size). Passwords in URLs are masked \
in every message.
"""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _columns(text: str) -> list[str]:
    names = [c.strip() for c in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated column names")
    return names


def _output(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument(
        "--json", action="store_true", help="print the result as JSON (one object per table) on stdout"
    )
    g.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing but errors (no summary, no progress)"
    )
    g.add_argument(
        "-v", "--verbose", action="count", default=0, help="log what bulkframe does (-vv: SQL too)"
    )
    g.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )


def _target(p: argparse.ArgumentParser, *, table_required: bool = True) -> None:
    p.add_argument(
        "--url",
        default=None,
        help=f"database URL (default ${config.ENV_URL}, else {DEFAULT_URL})",
    )
    p.add_argument("--table", required=table_required, help="target table")


def _batch(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--batch-size",
        type=_positive,
        default=None,
        help=f"rows per batch (default ${config.ENV_BATCH_SIZE}, else 10000 for load/copy, 100000 for upsert/update)",
    )


def _write(p: argparse.ArgumentParser, *, modes: bool = True) -> None:
    g = p.add_argument_group("writing")
    if modes:
        g.add_argument(
            "--mode",
            choices=MODES,
            default=None,
            help="append (default), replace (new table swapped in at the end), truncate (empty it "
            "first, in the same transaction), upsert (--key), skip-existing (--key)",
        )
    g.add_argument(
        "--key",
        type=_columns,
        default=None,
        metavar="COL[,COL]",
        help="key columns (default: the primary key)",
    )
    g.add_argument(
        "--primary-key",
        type=_columns,
        default=None,
        metavar="COL[,COL]",
        help="primary key of a table bulkframe creates",
    )
    _batch(g)  # type: ignore[arg-type]
    _bad_rows(p)


def _bad_rows(p: argparse.ArgumentParser) -> None:
    e = p.add_argument_group("bad rows")
    e.add_argument(
        "--on-error",
        choices=tuple(ON_ERROR),
        default="stop",
        help="stop: any bad row writes nothing (default); skip: write the good rows, report the bad ones; "
        "retry: like skip, and retry batches that hit a transient error",
    )
    e.add_argument(
        "--rejects",
        metavar="FILE",
        help="write rejected rows and reasons to FILE (.csv, .jsonl, .json, .parquet)",
    )
    e.add_argument(
        "--max-errors",
        type=_non_negative,
        default=None,
        metavar="N",
        help="fail once more than N rows were rejected",
    )


def _input(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input")
    g.add_argument(
        "--format",
        choices=FORMAT_CHOICES,
        default=None,
        help="input format (default: from the extension; stdin: csv)",
    )
    g.add_argument(
        "--delimiter",
        default=None,
        help="CSV field delimiter (one character; \\t for tab; default , or tab for .tsv)",
    )
    g.add_argument(
        "--null-string",
        default=None,
        metavar="TEXT",
        help="CSV text meaning NULL (default: an unquoted empty field)",
    )
    g.add_argument(
        "--header",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the CSV's first line names the columns (default); --no-header: columns from --columns or the table",
    )
    g.add_argument(
        "--columns",
        type=_columns,
        default=None,
        metavar="A,B,C",
        help="column names of a file without a header",
    )
    g.add_argument("--encoding", default=None, help="input text encoding (default utf-8)")
    g.add_argument(
        "--type",
        action="append",
        default=[],
        metavar="COL=TYPE",
        dest="types",
        help="column type of a table bulkframe creates (repeatable): int64, decimal(12,2), text, text(20), "
        "date, timestamptz, bool, json, uuid, …",
    )
    g.add_argument(
        "--schema",
        metavar="FILE",
        help='JSON {"col": "type", …} (or {"columns": {…}, "primary_key": [...]}): every column of a table bulkframe creates',
    )


def _source_read(p: argparse.ArgumentParser) -> None:
    p.add_argument("--select", type=_columns, default=None, metavar="A,B", help="copy only these columns")
    p.add_argument(
        "--where",
        default=None,
        metavar="JSON",
        help='rows to copy, in bulkframe\'s filter language: \'{"status": "paid", "amount": {"$gt": 100}}\'',
    )


def build() -> argparse.ArgumentParser:
    """The ``bulkframe`` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="bulkframe",
        description="Fast, honest bulk loads into SQL databases.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    load = sub.add_parser(
        "load", help="load a CSV, JSON Lines or Parquet file (or stdin) into a table", epilog=EPILOG
    )
    load.add_argument("file", help="input file; '-' reads standard input; .gz/.zst are decompressed")
    _target(load)
    _write(load)
    load.add_argument(
        "--conflict",
        choices=choices(ConflictResolution),
        default="error",
        help="append mode: what a row whose --key exists does (default error)",
    )
    _input(load)
    _output(load)

    copy = sub.add_parser("copy", help="copy tables from one database to another, streamed", epilog=EPILOG)
    copy.add_argument(
        "source_url", nargs="?", default=None, help=f"source database URL (default ${config.ENV_SOURCE_URL})"
    )
    copy.add_argument(
        "target_url", nargs="?", default=None, help=f"target database URL (default ${config.ENV_URL})"
    )
    copy.add_argument(
        "--table", action="append", default=[], dest="tables", help="table to copy (repeatable)"
    )
    copy.add_argument("--all", action="store_true", help="copy every table of the source")
    copy.add_argument("--to", default=None, metavar="NAME", help="target table name (one --table only)")
    _source_read(copy)
    _write(copy)
    copy.add_argument(
        "--incremental",
        action="store_true",
        help="copy only rows newer than the target's largest --update-key",
    )
    copy.add_argument(
        "--update-key",
        default=None,
        metavar="COL",
        help="change timestamp (or increasing id) column for --incremental",
    )
    copy.add_argument(
        "--verify", action="store_true", help="afterwards compare every copied row with the source"
    )
    _output(copy)

    upsert = sub.add_parser(
        "upsert", help="insert new rows and update existing ones from a file", epilog=EPILOG
    )
    upsert.add_argument("file", help="input file; '-' reads standard input")
    _target(upsert)
    _write(upsert, modes=False)
    _input(upsert)
    _output(upsert)

    update = sub.add_parser(
        "update", help="update rows: from a file by key, or --set with --where", epilog=EPILOG
    )
    update.add_argument("file", nargs="?", default=None, help="rows to update, by --key (or use --set)")
    _target(update)
    update.add_argument(
        "--key",
        type=_columns,
        default=None,
        metavar="COL[,COL]",
        help="key columns (default: the primary key)",
    )
    update.add_argument(
        "--set",
        default=None,
        metavar="JSON",
        dest="set_values",
        help='\'{"price": "price * 0.9", "status": "sale"}\'',
    )
    update.add_argument("--where", default=None, metavar="JSON", help="rows to update (filter language)")
    update.add_argument(
        "--all-rows", action="store_true", help="allow --set without --where (every row; needs --yes)"
    )
    update.add_argument("--yes", action="store_true", help="do not ask before updating every row")
    _batch(update)
    _input(update)
    _output(update)

    delete = sub.add_parser("delete", help="delete the rows a filter selects, safely", epilog=EPILOG)
    _target(delete)
    delete.add_argument("--where", default=None, metavar="JSON", help="rows to delete (filter language)")
    delete.add_argument("--all-rows", action="store_true", help="delete every row (no --where)")
    delete.add_argument(
        "--dry-run",
        action="store_true",
        help="change nothing; report how many rows would go and show a sample",
    )
    delete.add_argument(
        "--max-delete",
        type=_non_negative,
        default=None,
        metavar="N",
        help="refuse (delete nothing) when more than N rows match",
    )
    delete.add_argument(
        "--yes", action="store_true", help="do not ask for confirmation (needed when stdin is not a terminal)"
    )
    delete.add_argument(
        "--backup",
        metavar="FILE",
        help="write the deleted rows to FILE (.parquet, .csv, .jsonl, .json) before committing",
    )
    delete.add_argument("--soft", action="store_true", help="set --deleted-at-field instead of deleting")
    delete.add_argument(
        "--deleted-at-field",
        default="deleted_at",
        metavar="COL",
        help="column --soft sets (default deleted_at)",
    )
    _output(delete)

    verify = sub.add_parser(
        "verify", help="check that a table holds a file's or another table's rows", epilog=EPILOG
    )
    verify.add_argument(
        "source",
        nargs="?",
        default=None,
        help=f"input file, '-', or a source database URL (default ${config.ENV_SOURCE_URL})",
    )
    _target(verify)
    verify.add_argument(
        "--from", dest="from_table", default=None, metavar="TABLE", help="source table (default: --table)"
    )
    verify.add_argument(
        "--key",
        type=_columns,
        default=None,
        metavar="COL[,COL]",
        help="key columns (default: the primary key)",
    )
    verify.add_argument(
        "--fields", type=_columns, default=None, metavar="A,B", help="columns to compare (default: all)"
    )
    verify.add_argument(
        "--sample", type=_positive, default=None, metavar="N", help="compare a random sample of N rows"
    )
    verify.add_argument(
        "--where", default=None, metavar="JSON", help="source database: rows to check (filter language)"
    )
    verify.add_argument(
        "--mode",
        choices=choices(VerifyMode),
        default=None,
        help="full: two-way (rows missing, different, and only in the table; default for a source table); "
        "keys: every source row looked up by key (default for a file); sample: --sample N rows",
    )
    _batch(verify)
    _input(verify)
    _output(verify)

    sync = sub.add_parser(
        "sync",
        help="synchronise a table with a file: full (delete absent rows), incremental or delta",
        epilog=EPILOG,
    )
    sync.add_argument("file", help="input file; '-' reads standard input")
    sync.add_argument(
        "target_url", nargs="?", default=None, help=f"database URL (or --url; default ${config.ENV_URL})"
    )
    _target(sync)
    _sync(sync)
    _input(sync)
    _output(sync)

    demo = sub.add_parser("demo", help="bulk-create synthetic products and print rows/s")
    demo.add_argument("--rows", type=_positive, default=100_000, help="how many products (default 100000)")
    demo.add_argument(
        "--url", default=None, help=f"database URL (default ${config.ENV_URL}, else {DEFAULT_URL})"
    )
    demo.add_argument("--table", default="demo_products", help="target table (replaced)")
    _batch(demo)
    _output(demo)
    return parser


def _sync(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("synchronisation")
    g.add_argument(
        "--mode",
        choices=choices(SyncMode),
        required=True,
        help="full: make the table equal to the input (rows whose key the input lacks are deleted); "
        "incremental: apply only rows newer than --since; delta: the input is a change set (--op-column)",
    )
    g.add_argument(
        "--key",
        type=_columns,
        default=None,
        metavar="COL[,COL]",
        help="key columns (default: the primary key)",
    )
    g.add_argument(
        "--conflict",
        choices=[c for c in choices(UpsertConflictResolution) if c not in ("update", "skip")],
        default="source_wins",
        help="what an existing row does: source_wins (take the input's values; default), target_wins "
        "(keep it), newest_wins (take them when the input's --timestamp-field is later)",
    )
    _batch(g)  # type: ignore[arg-type]
    c = p.add_argument_group("change detection and audit")
    c.add_argument(
        "--detect-changes",
        action="store_true",
        help="write only rows that differ from the stored ones; the others are counted unchanged",
    )
    c.add_argument(
        "--compare",
        type=_columns,
        default=None,
        metavar="A,B",
        help="--detect-changes: the columns compared (default: every column the update writes)",
    )
    c.add_argument(
        "--ignore",
        type=_columns,
        default=None,
        metavar="A,B",
        help="columns neither compared nor written to existing rows (new rows still get them)",
    )
    c.add_argument(
        "--audit-table",
        default=None,
        metavar="TABLE",
        help="record what the sync changed in TABLE (created on first use), in the same transaction",
    )
    c.add_argument(
        "--audit-level",
        choices=choices(AuditLevel),
        default=None,
        help="changes_only (default): one row per changed key; full: also unchanged rows; summary: the counts",
    )
    i = p.add_argument_group("incremental (--mode incremental)")
    i.add_argument(
        "--timestamp-field",
        default=None,
        metavar="COL",
        help="the column saying when a row last changed (default updated_at; also used by newest_wins)",
    )
    i.add_argument(
        "--since",
        default=None,
        metavar="VALUE",
        help="apply only rows whose --timestamp-field is later (ISO-8601 time or a number)",
    )
    i.add_argument(
        "--state-table",
        default=None,
        metavar="TABLE",
        help="keep each run's high-water mark in TABLE and start the next run from it",
    )
    i.add_argument(
        "--sync-name", default=None, metavar="NAME", help="the name the mark is kept under (default: --table)"
    )
    d = p.add_argument_group("delta (--mode delta)")
    d.add_argument(
        "--op-column",
        default=None,
        metavar="COL",
        help="the input column saying insert, update or delete per row (default operation)",
    )
    s = p.add_argument_group("deleting (--mode full and delta)")
    s.add_argument(
        "--scope",
        default=None,
        metavar="JSON",
        help="full: the stored rows the input stands for (filter language); rows outside are never deleted",
    )
    s.add_argument(
        "--dry-run",
        action="store_true",
        help="change nothing; report what the sync would do and show a sample of the rows it would delete",
    )
    s.add_argument(
        "--max-delete",
        type=_non_negative,
        default=None,
        metavar="N",
        help="refuse (change nothing) when more than N rows would be deleted",
    )
    s.add_argument(
        "--yes",
        action="store_true",
        help="do not ask before deleting (needed when stdin is not a terminal and rows would be deleted)",
    )
    s.add_argument(
        "--backup",
        metavar="FILE",
        help="write the deleted rows to FILE (.parquet, .csv, .jsonl, .json) before committing",
    )
    s.add_argument("--soft", action="store_true", help="set --deleted-at-field instead of deleting")
    s.add_argument(
        "--deleted-at-field",
        default=None,
        metavar="COL",
        help="column --soft sets (default deleted_at)",
    )
    _bad_rows(p)
