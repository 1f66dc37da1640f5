"""The subcommands: each reads its options, calls the library, and prints through
:class:`~bulkframe.cli.report.Output`.  Heavy modules (Polars, PyArrow, SQLAlchemy, the
drivers) are imported here, inside the command that needs them."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bulkframe.backends.registry import DEFAULT_URL
from bulkframe.cli import config
from bulkframe.cli.config import UsageError
from bulkframe.cli.inputs import InputOptions
from bulkframe.cli.report import Output

if TYPE_CHECKING:
    from bulkframe.cli.modes import WriteSpec
    from bulkframe.database import Database


def target_url(args: argparse.Namespace) -> str:
    return str(getattr(args, "url", None) or config.env_url() or DEFAULT_URL)


def batch_size(args: argparse.Namespace, default: int) -> int:
    return int(getattr(args, "batch_size", None) or config.env_int(config.ENV_BATCH_SIZE, default))


def show_progress(args: argparse.Namespace) -> bool:
    if args.progress is not None:
        return bool(args.progress)
    return not (args.quiet or args.json) and sys.stderr.isatty()


def json_option(option: str, text: str | None) -> Any:
    """The JSON value of ``--where``/``--set`` (``None`` when not given)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{option} is not valid JSON ({exc}): {text[:200]!r}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{option} must be a JSON object, got {text[:200]!r}")
    return value


def input_options(args: argparse.Namespace) -> InputOptions:
    return InputOptions(
        format=args.format,
        delimiter=args.delimiter,
        null_string=args.null_string,
        header=args.header,
        encoding=args.encoding,
        columns=tuple(args.columns) if args.columns else None,
    )


def write_spec(args: argparse.Namespace, mode: str, default_batch: int) -> WriteSpec:
    from bulkframe.cli.modes import WriteSpec

    if args.rejects and args.on_error == "stop":
        raise UsageError("--rejects needs --on-error skip or retry (with stop, a bad row writes nothing)")
    return WriteSpec(
        mode=mode,
        key=args.key,
        primary_key=args.primary_key,
        batch_size=batch_size(args, default_batch),
        on_error=args.on_error,
        rejects=args.rejects,
        max_errors=args.max_errors,
        progress=show_progress(args),
        conflict=getattr(args, "conflict", "error"),
    )


def _check_mode(spec: WriteSpec) -> None:
    if spec.conflict != "error" and spec.mode != "append":
        raise UsageError(f"--conflict applies to --mode append only (got --mode {spec.mode})")


# -- load / upsert -------------------------------------------------------------------


def file_data(db: Database, args: argparse.Namespace, spec: WriteSpec) -> tuple[Any, WriteSpec]:
    """The input file as the library should get it (a path, or a stream of Arrow batches),
    and the write spec with the columns of a table bulkframe will create."""
    from bulkframe.cli import inputs, tables

    options = input_options(args)
    declared, whole = inputs.declared_types(args.types, args.schema)
    if args.schema and spec.primary_key is None:
        document = inputs.read_schema_file(args.schema)
        key = document.get("primary_key") if isinstance(document, dict) and "columns" in document else None
        if key is not None:
            spec = replace(spec, primary_key=[key] if isinstance(key, str) else list(key))
    existing = tables.definition(db, args.table)
    creating = existing is None or (spec.mode == "replace" and bool(declared))
    if declared and not creating:
        flags = " and ".join(f for f, given in (("--type", args.types), ("--schema", args.schema)) if given)
        raise UsageError(
            f"{flags} declare the columns of a table bulkframe creates, but table {args.table} exists and "
            "its own column types are used; drop the option, or use --mode replace to create the table anew"
        )
    if creating and not whole:
        if inputs.library_reads(args.file, options) and not declared:
            return args.file, spec
        reader = inputs.open_input(args.file, options, declared or None)
        if not declared:
            return reader, spec
        unknown = sorted(set(declared) - set(reader.schema.names))
        if unknown:
            raise UsageError(
                f"--type names column(s) {unknown} the input does not have; it has {reader.schema.names}"
            )
        return reader, replace(spec, columns=inputs.inferred_columns(reader.schema, declared))
    # the table's columns are known: read every column as text (or let the server parse it)
    target = declared if creating else {c.name: c for c in existing[0]} if existing else {}
    text_file = inputs.server_readable(args.file, options, list(target))
    if creating:
        spec = replace(spec, columns=list(declared.values()))
    spec = replace(spec, text_file=text_file)
    if inputs.library_reads(args.file, options):
        return args.file, spec
    return (lambda: inputs.open_input(args.file, options, target)), spec


def load(args: argparse.Namespace, out: Output, *, mode: str | None = None) -> int:
    import bulkframe as bf
    from bulkframe.cli import modes

    spec = write_spec(args, mode or args.mode or "append", 10_000)
    _check_mode(spec)
    with bf.connect(target_url(args)) as db:
        data, spec = file_data(db, args, spec)
        result = modes.write(db, args.table, data, spec)
    return out.result(result, extra={"mode": spec.mode, "rejects_file": spec.rejects})


def upsert(args: argparse.Namespace, out: Output) -> int:
    args.conflict = "error"
    return load(args, out, mode="upsert")


# -- copy ----------------------------------------------------------------------------


def copy(args: argparse.Namespace, out: Output) -> int:
    import bulkframe as bf
    from bulkframe.backends.base import TableRef
    from bulkframe.cli import modes, tables
    from bulkframe.errors import SchemaError
    from bulkframe.ops.read import stream_table

    source_url = args.source_url or config.env_url(config.ENV_SOURCE_URL)
    dest_url = args.target_url or config.env_url()
    if not source_url or not dest_url:
        raise UsageError(
            f"copy needs a source and a target URL (arguments, or ${config.ENV_SOURCE_URL} and ${config.ENV_URL})"
        )
    if bool(args.tables) == bool(args.all):
        raise UsageError("name the tables to copy with --table T (repeatable), or pass --all")
    if args.to and len(args.tables) != 1:
        raise UsageError("--to renames one table; pass exactly one --table with it")
    where = json_option("--where", args.where)
    mode = args.mode or ("upsert" if args.incremental else "append")
    if args.incremental:
        if not args.update_key:
            raise UsageError(
                "--incremental needs --update-key COL (the column whose high-water mark is kept)"
            )
        if mode not in ("append", "upsert"):
            raise UsageError(f"--incremental works with --mode append or upsert, not {mode}")
    elif args.update_key:
        raise UsageError("--update-key is used by --incremental; add --incremental")
    spec = write_spec(args, mode, 10_000)
    code = config.EXIT_OK
    with bf.connect(source_url) as src, bf.connect(dest_url) as dst:
        names = list(args.tables)
        if args.all:
            with src.session(write=False) as conn:
                names = src.backend.table_names(conn)
        for name in names:
            found = tables.definition(src, name)
            if found is None:
                raise SchemaError(f"source table {name} does not exist")
            columns, unique = found
            if args.select:
                by_name = {c.name: c for c in columns}
                unknown = [c for c in args.select if c not in by_name]
                if unknown:
                    raise SchemaError(f"--select {unknown}: not columns of {name}; columns: {list(by_name)}")
                columns = [by_name[c] for c in args.select]
            keep_key = all(c.name in {s.name for s in columns} for c in found[0] if c.primary_key)
            to = args.to or name
            row_filter = where
            high_water = None
            if args.incremental:
                high_water = tables.high_water_mark(dst, to, args.update_key)
                if high_water is not None:
                    newer = {args.update_key: {"$gt": high_water}}
                    row_filter = {"$and": [where, newer]} if where else newer
            key = spec.key or [c.name for c in columns if c.primary_key and keep_key] or None
            table_spec = replace(
                spec,
                key=spec.key or (key if mode in ("upsert", "skip-existing") else None),
                columns=tables.plain(columns, keep_key=keep_key),
                unique=unique,
            )
            _, reader = stream_table(
                src,
                TableRef(name),
                columns=[c.name for c in columns],
                filter=row_filter,
                batch_rows=spec.batch_size,
            )
            result = modes.write(dst, to, reader, table_spec)
            if args.verify:
                if not key:
                    raise SchemaError(f"--verify needs a key: {name} has no primary key; pass --key")
                _, again = stream_table(
                    src,
                    TableRef(name),
                    columns=[c.name for c in columns],
                    filter=row_filter,
                    batch_rows=spec.batch_size,
                )
                result.verification = dst.verify(to, again, key=key, batch_size=max(spec.batch_size, 10_000))
            extra = {"mode": mode, "source_table": name, "rejects_file": spec.rejects}
            if args.incremental:
                extra["high_water_mark"] = high_water
            code = max(code, out.result(result, extra=extra))
    return code


# -- update / delete -------------------------------------------------------------------


def update(args: argparse.Namespace, out: Output) -> int:
    import bulkframe as bf

    set_values = json_option("--set", args.set_values)
    where = json_option("--where", args.where)
    if (args.file is None) == (set_values is None):
        raise UsageError("update takes rows from a FILE (by --key) or --set JSON with --where, not both")
    if set_values is not None and not where and not args.all_rows:
        raise UsageError(
            "--set without --where would update every row; add --where JSON, or --all-rows --yes"
        )
    if args.all_rows and not args.yes:
        raise UsageError("--all-rows updates every row; add --yes to confirm")
    with bf.connect(target_url(args)) as db:
        if set_values is not None:
            result = db.bulk_update(
                args.table, set_values, filter=where, all_rows=args.all_rows, batch_size=args.batch_size
            )
        else:
            from bulkframe.cli import inputs, tables

            options = input_options(args)
            found = tables.definition(db, args.table)
            data: Any = args.file
            if found is not None and not inputs.library_reads(args.file, options):
                data = inputs.open_input(args.file, options, {c.name: c for c in found[0]})
            result = db.bulk_update(
                args.table, data, filter=where, key_fields=args.key, batch_size=batch_size(args, 100_000)
            )
    return out.result(result)


def delete(args: argparse.Namespace, out: Output) -> int:
    import bulkframe as bf

    where = json_option("--where", args.where)
    if not where and not args.all_rows:
        raise UsageError("delete needs --where JSON (or --all-rows to delete every row)")
    if where and args.all_rows:
        raise UsageError("--all-rows deletes every row; it cannot be combined with --where")
    confirm: bool = False
    if not args.yes and not args.dry_run:
        if not sys.stdin.isatty():
            raise UsageError(
                "delete changes data: pass --yes (or --dry-run to see what would be deleted); "
                "stdin is not a terminal, so bulkframe cannot ask"
            )
        confirm = True  # the library shows the count and a sample and asks
    with bf.connect(target_url(args)) as db:
        result = db.bulk_delete(
            args.table,
            where,
            all_rows=args.all_rows,
            dry_run=args.dry_run,
            max_delete_count=args.max_delete,
            confirm_delete=confirm,
            backup_before_delete=bool(args.backup),
            backup_location=args.backup,
            soft_delete=args.soft,
            deleted_at_field=args.deleted_at_field,
        )
    return out.result(result, extra={"backup_file": args.backup} if args.backup else None)


# -- verify ----------------------------------------------------------------------------


def verify(args: argparse.Namespace, out: Output) -> int:
    import bulkframe as bf

    source = args.source or config.env_url(config.ENV_SOURCE_URL)
    if not source:
        raise UsageError(f"verify needs a SOURCE (file, '-' or database URL, or ${config.ENV_SOURCE_URL})")
    where = json_option("--where", args.where)
    is_url = "://" in source
    if where and not is_url:
        raise UsageError("--where filters a source database; the source is a file")
    from bulkframe.cli import tables

    options: dict[str, Any] = {
        "key": args.key,
        "fields": args.fields,
        "sample": args.sample,
        "batch_size": batch_size(args, 100_000),
        "mode": args.mode,
    }
    with bf.connect(target_url(args)) as db:
        if is_url and not where:  # table against table: the library's two-way comparison
            found = db.verify(args.table, bf.TableSource(source, args.from_table or args.table), **options)
        elif is_url:
            from bulkframe.backends.base import TableRef
            from bulkframe.ops.read import stream_table

            columns = None
            if args.fields:  # read only the key and the compared columns
                target = tables.definition(db, args.table)
                key = args.key or ([c.name for c in target[0] if c.primary_key] if target else [])
                columns = list(dict.fromkeys([*key, *args.fields]))
            with bf.connect(source) as src:
                _, rows = stream_table(
                    src,
                    TableRef(args.from_table or args.table),
                    columns=columns,
                    filter=where,
                    batch_rows=options["batch_size"],
                )
                found = db.verify(args.table, rows, **options)
        else:
            from bulkframe.cli import inputs

            input_opts = input_options(args)
            existing = tables.definition(db, args.table)
            data: Any = source
            if existing is not None and not inputs.library_reads(source, input_opts):
                data = inputs.open_input(source, input_opts, {c.name: c for c in existing[0]})
            found = db.verify(args.table, data, **options)
    return out.verification(found)


# -- sync ------------------------------------------------------------------------------

_ONLY = {
    "incremental": (("since", "--since"), ("state_table", "--state-table"), ("sync_name", "--sync-name")),
    "delta": (("op_column", "--op-column"),),
    "full": (("scope", "--scope"),),
}
_DELETING = (("max_delete", "--max-delete"), ("backup", "--backup"), ("soft", "--soft"))


def _sync_checks(args: argparse.Namespace) -> None:
    for mode, options in _ONLY.items():
        for attr, flag in options:
            if getattr(args, attr) is not None and args.mode != mode:
                raise UsageError(f"{flag} applies to --mode {mode} only (got --mode {args.mode})")
    if args.mode == "incremental":
        for attr, flag in _DELETING:
            if getattr(args, attr):
                raise UsageError(
                    f"{flag} applies to --mode full and delta (an incremental sync deletes nothing)"
                )
    if args.timestamp_field and args.mode != "incremental" and args.conflict != "newest_wins":
        raise UsageError("--timestamp-field is used by --mode incremental and --conflict newest_wins")
    if args.compare and not args.detect_changes:
        raise UsageError("--compare names the columns --detect-changes compares; add --detect-changes")
    if args.audit_level and not args.audit_table:
        raise UsageError("--audit-level needs --audit-table TABLE")
    if args.deleted_at_field and not args.soft:
        raise UsageError("--deleted-at-field is the column --soft sets; add --soft")
    if args.rejects and args.on_error == "stop":
        raise UsageError("--rejects needs --on-error skip or retry (with stop, a bad row writes nothing)")
    if args.mode == "full" and args.on_error != "stop":
        raise UsageError(
            "--mode full needs --on-error stop: a rejected row would look absent and its stored row be deleted"
        )


def sync(args: argparse.Namespace, out: Output) -> int:
    import bulkframe as bf
    from bulkframe.cli import inputs, tables

    if args.target_url and args.url and args.target_url != args.url:
        raise UsageError("give the database URL once: as the URL argument or as --url")
    _sync_checks(args)
    url = args.target_url or target_url(args)
    options: dict[str, Any] = {
        "unique_fields": args.key,
        "conflict_resolution": args.conflict,
        "batch_size": batch_size(args, 100_000),
        "sync_mode": args.mode,
        "detect_changes": args.detect_changes,
        "change_detection_fields": args.compare,
        "ignore_fields": args.ignore,
        "audit_sync": bool(args.audit_table),
        "error_strategy": config.ON_ERROR[args.on_error],
        "failed_records_file": args.rejects,
        "max_errors": args.max_errors,
        "progress_callback": True if show_progress(args) else None,
    }
    optional = {
        "audit_table": args.audit_table,
        "audit_level": args.audit_level,
        "sync_timestamp_field": args.timestamp_field,
        "last_sync_timestamp": args.since,
        "sync_state_table": args.state_table,
        "sync_name": args.sync_name,
        "sync_scope": json_option("--scope", args.scope),
        "operation_field": args.op_column,
        "deleted_at_field": args.deleted_at_field,
    }
    options.update({k: v for k, v in optional.items() if v is not None})
    if args.mode != "incremental":
        options.update(
            dry_run=args.dry_run,
            max_delete_count=args.max_delete,
            soft_delete=args.soft,
            backup_before_delete=bool(args.backup),
            backup_location=args.backup,
        )
    elif args.dry_run:
        options["dry_run"] = True
    ask = args.mode != "incremental" and not (args.yes or args.dry_run)
    if ask and args.file == "-":
        raise UsageError(
            f"sync --mode {args.mode} may delete rows and its input is standard input, which can be read only "
            "once, so bulkframe cannot count the deletes first: pass --yes (or --dry-run)"
        )
    input_opts = input_options(args)
    with bf.connect(url) as db:
        found = tables.definition(db, args.table)

        def data() -> Any:
            if inputs.library_reads(args.file, input_opts):
                return args.file
            return inputs.open_input(args.file, input_opts, {c.name: c for c in found[0]} if found else None)

        if ask:  # count the deletes first: a dry run, rolled back
            preview = db.bulk_upsert(
                args.table, data(), **{**options, "dry_run": True, "progress_callback": None}
            )
            if preview.deleted:
                _confirm_sync(args, preview)
                # never delete more rows than were shown and confirmed
                options["max_delete_count"] = preview.deleted
            else:
                options["max_delete_count"] = 0
        result = db.bulk_upsert(args.table, data(), **options)
    extra: dict[str, Any] = {"mode": args.mode, "rejects_file": args.rejects}
    if args.backup:
        extra["backup_file"] = args.backup
    return out.result(result, extra=extra)


def _confirm_sync(args: argparse.Namespace, preview: Any) -> None:
    """Ask on the terminal before a sync deletes ``preview.deleted`` rows; refuse (exit 2)
    when stdin is not a terminal or the answer is not yes."""
    what = "soft-delete" if args.soft else "delete"
    if not sys.stdin.isatty():
        raise UsageError(
            f"sync --mode {args.mode} would {what} {preview.deleted:,} rows of {args.table}: pass --yes "
            "(or --dry-run to see them); stdin is not a terminal, so bulkframe cannot ask"
        )
    sys.stderr.write(f"sync --mode {args.mode} would {what} {preview.deleted:,} rows of {args.table}")
    sample = getattr(preview, "data", None)
    if sample is not None:
        sys.stderr.write(f", for example:\n{sample}\n")
    else:
        sys.stderr.write(".\n")
    sys.stderr.write("Proceed? [y/N] ")
    sys.stderr.flush()
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        raise UsageError("not confirmed; nothing was changed")


# -- demo ------------------------------------------------------------------------------


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


def demo(args: argparse.Namespace, out: Output) -> int:
    import bulkframe as bf

    url = target_url(args)
    with bf.connect(url) as db:
        data = demo_products(args.rows)
        db.drop_table(args.table)
        result = db.bulk_create(
            args.table,
            data,
            batch_size=batch_size(args, 10_000),
            primary_key="id",
            progress_callback=True
            if show_progress(args) or (args.progress is None and not args.quiet)
            else None,
        )
    code = out.result(result)
    if not (out.as_json or out.quiet):
        sys.stdout.write(f"database: {config.mask_url(url)}  table: {args.table}\n")
    return code


COMMANDS = {
    "load": load,
    "copy": copy,
    "upsert": upsert,
    "update": update,
    "delete": delete,
    "verify": verify,
    "sync": sync,
    "demo": demo,
}
