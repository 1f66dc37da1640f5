"""The load modes shared by ``load`` and ``copy``: how a stream of rows reaches a table.

- ``append`` (default): insert; a duplicate key is an error (``--conflict`` of ``load``
  can turn it into skip/update).
- ``replace``: the rows go into a new table built beside the target, which is swapped in
  at the end (drop + rename in one transaction: atomic where DDL is transactional, as in
  PostgreSQL and SQLite).  Until then readers see the old table; a failed load leaves it
  untouched.
- ``truncate``: the rows go into a stage table first; then, in one transaction, every
  row of the target is deleted and the staged rows inserted (the table itself, its
  indexes, grants and foreign keys stay).
- ``upsert``: insert new keys, update existing ones (``--key``, default the primary key).
- ``skip-existing``: insert new keys, leave existing ones alone (counted as skipped).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from bulkframe.cli import tables
from bulkframe.cli.config import MODES, ON_ERROR

if TYPE_CHECKING:
    from bulkframe.backends.base import TextFormat
    from bulkframe.database import Database
    from bulkframe.result import BulkResult
    from bulkframe.types import Column

__all__ = ["MODES", "ON_ERROR", "TextFile", "WriteSpec", "write"]

log = logging.getLogger("bulkframe.cli")


@dataclass(frozen=True)
class TextFile:
    """A plain CSV file the database server may parse itself (``COPY … FROM STDIN``)."""

    path: str
    format: TextFormat
    columns: list[str]


@dataclass(frozen=True)
class WriteSpec:
    """How rows are written (from the command's options)."""

    mode: str = "append"
    key: list[str] | None = None
    primary_key: list[str] | None = None
    batch_size: int = 10_000
    on_error: str = "stop"
    rejects: str | None = None
    max_errors: int | None = None
    progress: bool = False
    #: ``load --conflict``: what ``append`` does with an existing key
    conflict: str = "error"
    #: definitions of a table bulkframe creates (copy: the source's; ``--schema``), else
    #: the table is created from the data
    columns: list[Column] | None = None
    unique: list[tuple[str, ...]] = field(default_factory=list)
    #: the input as a file the server can parse, when it is one (``load`` of a plain CSV)
    text_file: TextFile | None = None

    def error_options(self) -> dict[str, Any]:
        return {
            "error_strategy": ON_ERROR[self.on_error],
            "failed_records_file": self.rejects,
            "max_errors": self.max_errors,
        }


def write(db: Database, table: str, data: Any, spec: WriteSpec) -> BulkResult:
    """Write ``data`` (a path, a stream of Arrow batches, or a function returning one of
    them, called only if the rows go through the client) into ``table`` by ``spec.mode``."""
    found = tables.definition(db, table)
    if spec.mode == "replace":
        return _replace(db, table, data, spec, found)
    if found is None and spec.columns is not None:
        tables.create(db, table, _with_key(spec.columns, spec.primary_key), spec.unique)
        found = tables.definition(db, table)
    if spec.mode == "truncate" and found is not None:
        return _truncate(db, table, data, spec, found[0])
    return _insert(db, table, data, spec, exists=found is not None)


def _with_key(columns: Sequence[Column], primary_key: Sequence[str] | None) -> list[Column]:
    if not primary_key:
        return list(columns)
    names = {c.name for c in columns}
    missing = [k for k in primary_key if k not in names]
    if missing:
        from bulkframe.errors import SchemaError

        raise SchemaError(f"--primary-key {missing} are not columns; columns: {sorted(names)}")
    return [
        replace(c, primary_key=c.name in primary_key, nullable=c.nullable and c.name not in primary_key)
        for c in columns
    ]


def _server_copy(db: Database, table: str, spec: WriteSpec) -> BulkResult | None:
    """Load ``spec.text_file`` with the server's own parser when that is a plain append
    (no key handling; any bad line fails the whole file, which ``--on-error stop`` wants);
    ``None`` when this path does not apply, or when the server refused a line under
    ``--on-error skip|retry`` (the client path then isolates and reports the bad rows)."""
    from bulkframe.backends.base import TableRef
    from bulkframe.errors import DataError, IntegrityError
    from bulkframe.result import BulkResult

    text = spec.text_file
    if text is None or not db.backend.capabilities.copy_text or spec.conflict != "error" or spec.max_errors:
        return None
    started = time.perf_counter()
    try:
        loaded = db.backend.copy_text_file(TableRef(table), text.path, text.columns, text.format)
    except (DataError, IntegrityError) as exc:
        if spec.on_error == "stop":
            raise
        log.warning(
            "the server refused %s (%s); nothing was written: loading it again row by row", text.path, exc
        )
        return None
    result = BulkResult(
        "create",
        table,
        records_processed=loaded,
        success_count=loaded,
        inserted=loaded,
        batches=1,
        batches_committed=1,
        committed_ranges=[(0, loaded)],
        duration_seconds=time.perf_counter() - started,
    )
    result.metrics["copy"] = "server"
    return result


def _insert(db: Database, table: str, data: Any, spec: WriteSpec, *, exists: bool) -> BulkResult:
    if exists and spec.mode == "append":
        copied = _server_copy(db, table, spec)
        if copied is not None:
            return copied
    if callable(data):
        data = data()
    common: dict[str, Any] = {"progress_callback": True if spec.progress else None, **spec.error_options()}
    if spec.mode == "upsert" and exists:
        return db.bulk_upsert(table, data, unique_fields=spec.key, batch_size=spec.batch_size, **common)
    if spec.mode == "upsert":  # a new table: every row is new; repeated keys: the last wins
        conflict, fields = "update", spec.key or spec.primary_key
    elif spec.mode == "skip-existing":
        conflict, fields = "skip", spec.key
    else:
        conflict, fields = spec.conflict, (spec.key if spec.conflict != "error" else None)
    return db.bulk_create(
        table,
        data,
        batch_size=spec.batch_size,
        conflict_resolution=conflict,  # type: ignore[arg-type]
        conflict_fields=fields,
        primary_key=spec.primary_key or (spec.key if spec.mode in ("upsert", "skip-existing") else None),
        **common,
    )


def _replace(
    db: Database,
    table: str,
    data: Any,
    spec: WriteSpec,
    found: tuple[list[Column], list[tuple[str, ...]]] | None,
) -> BulkResult:
    new = tables.scratch_name("new", table)
    columns = spec.columns
    unique = spec.unique
    if columns is None and found is not None:
        columns, unique = found  # the table keeps its definition; --schema/--type change it
    try:
        if columns is not None:
            keep = spec.primary_key is None
            tables.create(db, new, _with_key(tables.plain(columns, keep_key=keep), spec.primary_key), unique)
        result = _insert(db, new, data, replace(spec, mode="append"), exists=columns is not None)
        tables.swap_in(db, new, table)
    except BaseException:
        db.drop_table(new)
        raise
    result.table = table
    result.metrics["mode"] = "replace"
    return result


def _truncate(db: Database, table: str, data: Any, spec: WriteSpec, columns: list[Column]) -> BulkResult:
    stage = tables.scratch_name("load", table)
    generated_key = any(c.primary_key and c.has_default for c in columns)
    staged = [
        replace(c, nullable=True) if c.has_default else c
        for c in tables.plain(columns, keep_key=not generated_key)
    ]
    try:
        tables.create(db, stage, staged)
        result = _insert(db, stage, data, replace(spec, mode="append"), exists=True)
        result.metrics["truncated"] = tables.refill(db, stage, table, columns)
    finally:
        db.drop_table(stage)
    result.table = table
    result.metrics["mode"] = "truncate"
    return result
