"""Synchronisation on top of the staged merge (``bulk_upsert(sync_mode=…)``; docs/sync.md).

* **incremental** — input rows whose change timestamp is not later than the last sync's
  are dropped before staging (vectorized, per batch); the result carries the new
  high-water mark, kept in a sync-state table when one is named (:class:`SyncState`).
* **full** — every input key also goes to a key stage; after the merge, stored rows whose
  key is not there (within ``sync_scope``) are deleted or soft-deleted, guarded exactly
  as ``bulk_delete`` guards (count → ``max_delete_count`` → ``dry_run`` sample → delete
  with ``RETURNING *`` for a backup → re-check → backup written → commit), with the
  same machinery (:mod:`bulkframe.ops.delete`, :mod:`bulkframe.ops._safety`).
* **delta** — :mod:`bulkframe.ops.delta`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from bulkframe import filters
from bulkframe.backends.base import TableRef
from bulkframe.errors import InvalidOptionValueError, SafetyLimitError, SchemaError, plain_name
from bulkframe.ops._modify import create_stage, fill_stage, read_rows
from bulkframe.ops._safety import check_backup_location, refuse_existing, write_backup
from bulkframe.ops.delete import _modify, _require_column
from bulkframe.ops.delete import _run as run_delete
from bulkframe.types import Column

if TYPE_CHECKING:
    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions
    from bulkframe.ops.audit import Audit
    from bulkframe.options import ChangeDetection, DeleteSafety, SyncOptions
    from bulkframe.result import BulkResult

log = logging.getLogger("bulkframe")

#: Column kinds a change timestamp may have (anything ordered that the table stores).
ORDERED_KINDS = (
    "timestamp",
    "timestamptz",
    "date",
    "int16",
    "int32",
    "int64",
    "decimal",
    "float32",
    "float64",
)

#: The sync-state table's columns.
STATE_COLUMNS = (
    Column("sync_name", "text", nullable=False, primary_key=True),
    Column("table_name", "text", nullable=False),
    Column("high_water_mark", "text"),
    Column("synced_at", "timestamptz", nullable=False),
)


# -- checks -----------------------------------------------------------------------------


def check_sync_options(
    sync: SyncOptions,
    changes: ChangeDetection,
    safety: DeleteSafety,
    *,
    conflict: str,
    strategy: str,
) -> Path | None:
    """Refuse combinations that cannot be honoured; return the backup path, if any."""
    deleting = sync.sync_mode in ("full", "delta")
    given = [
        name
        for name, value, default in (
            ("soft_delete", safety.soft_delete, False),
            ("deleted_at_field", safety.deleted_at_field, "deleted_at"),
            ("max_delete_count", safety.max_delete_count, None),
            ("backup_before_delete", safety.backup_before_delete, False),
        )
        if value != default
    ]
    if given and not deleting:
        raise InvalidOptionValueError(
            f"{', '.join(given)} only apply to the deletes of sync_mode='full' or 'delta' "
            f"(got sync_mode={sync.sync_mode!r}); use bulk_delete to delete rows"
        )
    if sync.sync_mode in ("full", "delta") and strategy != "stop":
        raise InvalidOptionValueError(
            f"sync_mode={sync.sync_mode!r} needs error_strategy='stop': a rejected input row would otherwise "
            "be missing from the change set (full: its stored row would be deleted)"
        )
    if changes.detect_changes and conflict in ("skip", "target_wins"):
        raise InvalidOptionValueError(
            f"detect_changes=True has no effect with conflict_resolution={conflict!r} (existing rows are "
            "never written); drop one of them"
        )
    backup = check_backup_location(safety.backup_location) if safety.backup_before_delete else None
    if backup is not None:
        refuse_existing([backup])
    return backup


def compared_fields(
    changes: ChangeDetection, updated: Sequence[str], names: Sequence[str]
) -> list[str] | None:
    """The columns change detection compares for a window whose update columns are
    ``updated`` (``None``: detection is off)."""
    if not changes.detect_changes:
        return None
    ignore = set(changes.ignore_fields or ())
    if changes.change_detection_fields is not None:
        missing = [c for c in changes.change_detection_fields if c not in names]
        if missing:
            raise SchemaError(
                f"change_detection_fields {missing} are not in the input; input columns: {list(names)}"
            )
        return list(changes.change_detection_fields)
    return [c for c in updated if c not in ignore]


def without_ignored(changes: ChangeDetection, updated: Sequence[str]) -> list[str]:
    """Update columns minus ``ignore_fields`` (never written to existing rows)."""
    ignore = set(changes.ignore_fields or ())
    return [c for c in updated if c not in ignore]


def check_fields_exist(changes: ChangeDetection, by_name: Mapping[str, Column], ref: TableRef) -> None:
    for option in ("change_detection_fields", "ignore_fields"):
        absent = [c for c in getattr(changes, option) or () if c not in by_name]
        if absent:
            raise SchemaError(
                f"{option} {absent} are not columns of {plain_name(ref)}; columns: {list(by_name)}"
            )


# -- incremental ----------------------------------------------------------------------------


def timestamp_column(by_name: Mapping[str, Column], name: str, ref: TableRef, why: str) -> Column:
    column = by_name.get(name)
    if column is None:
        raise SchemaError(
            f"{why} reads the change timestamp from column {name!r}, which {plain_name(ref)} does not have; "
            f"name it with sync_timestamp_field='…' (columns: {list(by_name)})"
        )
    if column.kind not in ORDERED_KINDS:
        raise SchemaError(
            f"sync_timestamp_field {name!r} is a {column.kind} column; a change timestamp must be a "
            f"timestamp, date or number"
        )
    return column


class _Mismatch(Exception):
    """A mark of the wrong time kind (aware vs naive)."""


def parse_mark(value: Any, column: Column, *, option: str) -> Any:
    """``last_sync_timestamp`` (or a stored high-water mark) as a value of ``column``'s
    kind; refused when it cannot be compared exactly (e.g. a naive time against an
    aware column)."""
    if value is None:
        return None
    kind = column.kind
    try:
        if kind in ("timestamp", "timestamptz"):
            if isinstance(value, str):
                text = value.strip()
                value = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
            elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                value = dt.datetime(value.year, value.month, value.day)
            if not isinstance(value, dt.datetime):
                raise TypeError(type(value).__name__)
            aware = value.tzinfo is not None and value.utcoffset() is not None
            if aware != (kind == "timestamptz"):
                raise _Mismatch(
                    f"{option}={value.isoformat()!r} is {'time-zone aware' if aware else 'naive'}, but "
                    f"{column.name!r} is a {'timestamp with' if kind == 'timestamptz' else 'timestamp without'} "
                    "time zone; give the same kind of time so the comparison is exact"
                )
            return value.astimezone(dt.timezone.utc) if aware else value
        if kind == "date":
            if isinstance(value, str):
                return dt.date.fromisoformat(value.strip())
            if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
                raise TypeError(type(value).__name__)
            return value
        if kind == "decimal":
            return decimal.Decimal(str(value))
        if kind.startswith("float"):
            return float(value)
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise TypeError(type(value).__name__)
        return int(value)
    except _Mismatch as exc:
        raise InvalidOptionValueError(str(exc)) from None
    except (TypeError, ValueError, decimal.InvalidOperation) as exc:
        raise InvalidOptionValueError(
            f"{option}={value!r} is not a {kind} value for column {column.name!r}"
        ) from exc


def mark_text(value: Any) -> str | None:
    """A high-water mark as the text the sync-state table keeps."""
    if value is None:
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def newer_rows(table: pa.Table, field: str, bound: Any) -> tuple[pa.Table, int, Any]:
    """``(rows later than bound or without a timestamp, rows dropped, latest timestamp)``."""
    col = table.column(field)
    latest = pc.max(col).as_py() if col.null_count < len(col) else None
    if bound is None:
        return table, 0, latest
    scalar = pa.scalar(bound, type=col.type)
    keep = pc.or_kleene(pc.greater(col, scalar), pc.is_null(col))
    kept = table.filter(keep)
    return kept, table.num_rows - kept.num_rows, latest


class SyncState:
    """The high-water marks of incremental syncs, one row per sync name, in the target
    database (written in the sync's transaction)."""

    def __init__(self, sessions: Sessions, conn: Connection, ref: TableRef) -> None:
        self.sessions, self.conn = sessions, conn
        columns = sessions.backend.reflect(conn, ref)
        if columns is None:
            log.info("creating the sync state table %s", ref)
            sessions.backend.create_table(conn, ref, STATE_COLUMNS)
            columns = list(STATE_COLUMNS)
        missing = [c.name for c in STATE_COLUMNS if c.name not in {x.name for x in columns}]
        if missing:
            raise SchemaError(
                f"sync_state_table {plain_name(ref)} lacks the columns {missing} (docs/sync.md)"
            )
        self.table = sessions.backend.sa_table(ref, list(STATE_COLUMNS))

    def read(self, name: str) -> str | None:
        rows = self.conn.fetchall(
            sa.select(self.table.c.high_water_mark).where(self.table.c.sync_name == name)
        )
        return rows[0][0] if rows else None

    def write(self, name: str, table: str, mark: str | None) -> None:
        t = self.table
        self.conn.run(sa.delete(t).where(t.c.sync_name == name))
        self.conn.run(
            sa.insert(t).values(
                sync_name=name,
                table_name=table,
                high_water_mark=mark,
                synced_at=dt.datetime.now(dt.timezone.utc),
            )
        )


# -- full --------------------------------------------------------------------------------------


@dataclass
class KeyStage:
    """Every input key of a full sync, staged (one column per key column)."""

    keys: list[str]
    ref: TableRef | None = None
    table: sa.Table | None = None
    rows: int = 0
    _columns: dict[str, Column] = field(default_factory=dict)

    def add(
        self, conn: Connection, sessions: Sessions, shaped: pa.Table, by_name: Mapping[str, Column]
    ) -> None:
        if self.ref is None:
            self._columns = {
                k: Column(k, by_name[k].kind, precision=by_name[k].precision, scale=by_name[k].scale)
                for k in self.keys
            }
            self.ref, self.table = create_stage(conn, sessions, list(self._columns.values()))
        fill_stage(conn, sessions, self.ref, shaped.select(self.keys), self._columns, first=True)
        self.rows += shaped.num_rows


def delete_absent(
    sessions: Sessions,
    conn: Connection,
    ref: TableRef,
    target: sa.Table,
    columns: Sequence[Column],
    keys: Sequence[str],
    staged: KeyStage,
    sync: SyncOptions,
    safety: DeleteSafety,
    backup: Path | None,
    audit: Audit | None,
    result: BulkResult,
    *,
    sample_size: int = 10,
) -> None:
    """The delete half of a full sync: stored rows in scope whose key the input lacks."""
    by_name = {c.name: c for c in columns}
    if staged.rows == 0 and safety.max_delete_count is None:
        raise SafetyLimitError(
            f"sync_mode='full' with an empty input would delete every row of {plain_name(ref)} in scope; "
            "pass max_delete_count=… to allow it (nothing was changed)"
        )
    where: sa.ColumnElement[bool] = filters.to_sql(sync.sync_scope, target, backend=sessions.backend)
    if staged.table is not None:
        k = staged.table
        where = sa.and_(where, ~sa.exists().where(sa.and_(*(k.c[n] == target.c[n] for n in keys))))
    if safety.soft_delete:
        _require_column(by_name, safety.deleted_at_field, ref, sessions)
        where = sa.and_(where, target.c[safety.deleted_at_field].is_(None))
    count = int(conn.scalar(sa.select(sa.func.count()).select_from(target).where(where)))
    if safety.max_delete_count is not None and count > safety.max_delete_count:
        raise SafetyLimitError(
            f"sync_mode='full': {count} rows of {plain_name(ref)} are absent from the input, more than "
            f"max_delete_count={safety.max_delete_count}; nothing was changed"
        )
    if safety.dry_run:
        result.deleted = count
        result.records_processed += count  # the stored rows the sync deletes are processed too
        result.data = read_rows(
            sessions, [conn.fetch_arrow(sa.select(*target.c).where(where).limit(sample_size))], columns
        )
        return
    if audit is not None and audit.per_row:
        audit.deletes(target, keys, where)
    kept: list[pa.Table] | None = [] if backup is not None else None
    deleted = run_delete(
        conn, _modify(target, where, safety.soft_delete, safety.deleted_at_field), target, kept
    )
    if safety.max_delete_count is not None and deleted > safety.max_delete_count:
        raise SafetyLimitError(
            f"sync_mode='full': {deleted} rows of {plain_name(ref)} matched when deleting, but {count} were "
            f"counted (max_delete_count={safety.max_delete_count}); rows changed concurrently, nothing was changed"
        )
    result.deleted = deleted
    result.records_processed += deleted  # the stored rows the sync deletes are processed too
    if backup is not None and kept is not None:
        write_backup_or_fail(sessions, kept, columns, backup)
        result.metrics["backup_location"] = str(backup)


def write_backup_or_fail(
    sessions: Sessions, tables: list[pa.Table], columns: Sequence[Column], path: Path
) -> None:
    """Write the deleted rows to ``path`` before the commit; a failure changes nothing."""
    try:
        write_backup(read_rows(sessions, tables, columns), path)
    except SafetyLimitError:
        raise
    except BaseException as exc:  # Polars reports some writer gaps as a Rust panic (BaseException)
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        raise SafetyLimitError(
            f"backup_before_delete: writing {path} failed ({type(exc).__name__}: {exc}); nothing was changed"
        ) from exc
