"""``bulk_create``: normalize → (rules) → plan → backend → result, for inserts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from bulkframe.backends.base import TableRef
from bulkframe.backends.statements import merge_from_stage
from bulkframe.errors import BulkframeError, SchemaError, check_choice
from bulkframe.normalize import Chunk, conform, infer_columns, open_source
from bulkframe.normalize.dedupe import dedupe_keys
from bulkframe.progress import Reporter
from bulkframe.result import BulkResult

if TYPE_CHECKING:
    from bulkframe.database import Database

log = logging.getLogger("bulkframe")

CONFLICT_MODES = ("error", "skip", "update")


def bulk_create(
    db: Database,
    ref: TableRef,
    data: Any,
    *,
    batch_size: int,
    conflict_resolution: str,
    conflict_fields: Sequence[str] | None,
    primary_key: Sequence[str] | str | None,
    progress_callback: bool | Callable[..., Any] | None,
    progress_interval: int | None,
    progress_format: str,
) -> BulkResult:
    check_choice("conflict_resolution", conflict_resolution, CONFLICT_MODES)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise SchemaError(f"batch_size must be a positive int, got {batch_size!r}")
    pk = [primary_key] if isinstance(primary_key, str) else list(primary_key or ())
    source = open_source(data)
    result = BulkResult("create", str(ref))
    started = time.perf_counter()
    reporter = Reporter(progress_callback, total=source.total, interval=progress_interval,
                        fmt=progress_format, description=f"create {ref}")
    backend = db.backend
    conn = db.connection()
    json_columns: set[str] = set()
    stage = None
    try:
        columns = backend.reflect(conn, ref)
        chunks = source.chunks(batch_size, json_columns)
        first = next(chunks, None)
        if columns is not None:
            json_columns.update(c.name for c in columns if c.kind == "json")
            if pk:
                table_pk = [c.name for c in columns if c.primary_key]
                if table_pk != pk:
                    raise SchemaError(
                        f"primary_key={pk} given, but table {ref} exists with primary key {table_pk}; "
                        "primary_key only applies when bulkframe creates the table"
                    )
        if first is None:
            log.info("bulk_create %s: empty input, nothing to do", ref)
            conn.commit()
            return _finish(result, started, reporter)
        if columns is None:
            columns = infer_columns(first.table.schema, pk)
            backend.create_table(conn, ref, columns)
            json_columns.update(c.name for c in columns if c.kind == "json")
        by_name = {c.name: c for c in columns}
        keys: list[str] = []
        if conflict_resolution != "error":
            keys = list(conflict_fields or [c.name for c in columns if c.primary_key])
            if not keys:
                raise SchemaError(
                    f"conflict_resolution={conflict_resolution!r} needs conflict_fields, and table "
                    f"{ref} has no primary key to default to"
                )
            missing = [k for k in keys if k not in by_name]
            if missing:
                raise SchemaError(f"conflict_fields {missing} are not columns of {ref}; columns: {list(by_name)}")
        target = None
        for chunk in _chain(first, chunks):
            result.batches += 1
            rows = chunk.table.num_rows
            result.records_processed += rows
            shaped = conform(chunk.table, by_name, offset=chunk.offset, table_name=str(ref)).table
            if conflict_resolution == "error":
                conn.ingest(ref, backend.to_ingest(shaped, by_name))
                result.inserted += rows
                reporter.advance(rows, rows, 0)
                continue
            missing_keys = [k for k in keys if k not in shaped.column_names]
            if missing_keys:
                raise SchemaError(f"conflict_fields {missing_keys} are missing from the input")
            shaped, dropped = dedupe_keys(shaped, keys, keep="last" if conflict_resolution == "update" else "first")
            result.deduplicated += dropped
            stage_cols = [by_name[n] for n in shaped.column_names]
            if stage is None:
                stage = backend.create_stage(conn, stage_cols)
                stage_table = backend.sa_table(stage, stage_cols)
                target = backend.sa_table(ref, columns)
            else:
                conn.run(f"DELETE FROM {backend.qualified(stage)}")
            backend.ingest_stage(conn, stage, backend.to_ingest(shaped, by_name))
            counts = merge_from_stage(conn, target, stage_table, shaped.column_names, keys,
                                      mode=conflict_resolution)
            result.inserted += counts.inserted
            result.updated += counts.updated + (dropped if conflict_resolution == "update" else 0)
            result.skipped += counts.skipped + (dropped if conflict_resolution == "skip" else 0)
            reporter.advance(rows, rows, 0)
        if stage is not None:
            backend.drop_table(conn, stage)
            stage = None
        conn.commit()
        result.batches_committed = result.batches
    except BaseException as exc:
        conn.rollback()
        reporter.close()
        _mark_nothing_committed(result, started)
        if isinstance(exc, BulkframeError) and exc.result is None:
            exc.result = result
        raise
    finally:
        db.release(conn)
    result.success_count = result.inserted + result.updated + result.skipped
    return _finish(result, started, reporter)


def _chain(first: Chunk, rest: Any) -> Any:
    yield first
    yield from rest


def _mark_nothing_committed(result: BulkResult, started: float) -> None:
    """After a rollback nothing of the call landed: every processed row failed."""
    result.failure_count = result.records_processed
    result.success_count = result.inserted = result.updated = result.skipped = 0
    result.batches_committed = 0
    result.duration_seconds = time.perf_counter() - started


def _finish(result: BulkResult, started: float, reporter: Reporter) -> BulkResult:
    reporter.close()
    result.duration_seconds = time.perf_counter() - started
    result.check()
    log.info("%r", result)
    return result

