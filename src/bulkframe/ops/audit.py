"""The audit trail of a sync: rows written by ``INSERT … SELECT`` in the sync's own
transaction, before the change they describe (so a rolled-back sync leaves none).

The audit table (created on first use; ``docs/sync.md``):

============== =========== ==========================================================
column         kind        meaning
============== =========== ==========================================================
run_id         text        one id per call (a uuid4 hex)
synced_at      timestamptz when the call ran (UTC)
table_name     text        the synced table
operation      text        ``insert``, ``update``, ``delete``, ``unchanged`` (level
                           ``full``) or ``summary``
row_key        json        ``{"key column": value, …}`` (NULL for ``summary``)
before_values  json        the stored values (``update``: the changed fields, or every
                           compared field at level ``full``; ``delete``: the row)
after_values   json        the new values (``insert``: the row; ``update``: the changed
                           fields; ``summary``: the counts)
============== =========== ==========================================================
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bulkframe.backends.base import TableRef
from bulkframe.errors import SchemaError, plain_name
from bulkframe.portable_sql import JsonObject, JsonWithout
from bulkframe.types import Column

if TYPE_CHECKING:
    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions
    from bulkframe.result import BulkResult

log = logging.getLogger("bulkframe")

#: The audit table's columns, in order.
AUDIT_COLUMNS = (
    Column("run_id", "text", nullable=False),
    Column("synced_at", "timestamptz", nullable=False),
    Column("table_name", "text", nullable=False),
    Column("operation", "text", nullable=False),
    Column("row_key", "json"),
    Column("before_values", "json"),
    Column("after_values", "json"),
)


class Audit:
    """Writes one sync's audit rows into ``table`` on the sync's connection."""

    def __init__(
        self, sessions: Sessions, conn: Connection, table: TableRef, synced: TableRef, level: str
    ) -> None:
        self.sessions, self.conn, self.level = sessions, conn, level
        self.synced = str(synced)
        self.run_id = uuid.uuid4().hex
        self.now = dt.datetime.now(dt.timezone.utc)
        columns = sessions.backend.reflect(conn, table)
        if columns is None:
            log.info("creating the sync audit table %s", table)
            sessions.backend.create_table(conn, table, AUDIT_COLUMNS)
            columns = list(AUDIT_COLUMNS)
        missing = [c.name for c in AUDIT_COLUMNS if c.name not in {x.name for x in columns}]
        if missing:
            raise SchemaError(
                f"audit_table {plain_name(table)} exists but lacks the audit columns {missing}; "
                "name a new table (it is created on first use) or add them (docs/sync.md)"
            )
        self.table = sessions.backend.sa_table(
            table, [c for c in columns if c.name in {a.name for a in AUDIT_COLUMNS}]
        )
        self.rows = 0

    @property
    def per_row(self) -> bool:
        """Rows are recorded one per key (levels ``changes_only`` and ``full``)."""
        return self.level != "summary"

    def _fixed(self, operation: str) -> list[Any]:
        return [
            sa.literal(self.run_id, sa.Text()),
            sa.literal(self.now, sa.DateTime(timezone=True)),
            sa.literal(self.synced, sa.Text()),
            sa.literal(operation, sa.Text()),
        ]

    def _insert(self, select: sa.Select[Any]) -> None:
        stmt = sa.insert(self.table).from_select([c.name for c in AUDIT_COLUMNS], select)
        from bulkframe.backends.statements import count_modified

        self.rows += count_modified(self.conn, stmt)

    def updates(
        self,
        target: sa.Table,
        stage: sa.Table,
        keys: Sequence[str],
        fields: Sequence[str],
        changed: Mapping[str, sa.ColumnElement[bool]],
        where: sa.ColumnElement[bool],
        *,
        operation: str = "update",
    ) -> None:
        """Rows about to be updated: before/after of ``fields`` (at level ``changes_only``
        only those that differ, per row: ``changed[name]``)."""
        before = JsonObject(list(fields), [target.c[f] for f in fields])
        after = JsonObject(list(fields), [stage.c[f] for f in fields])
        if self.level == "changes_only":
            drops = [(f, sa.not_(changed[f])) for f in fields if f in changed]
            before, after = JsonWithout(before, drops), JsonWithout(after, drops)  # type: ignore[assignment]
        key = JsonObject(list(keys), [target.c[k] for k in keys])
        self._insert(sa.select(*self._fixed(operation), key, before, after).select_from(target).where(where))

    def inserts(self, stage: sa.Table, keys: Sequence[str], fields: Sequence[str], where: Any) -> None:
        """Stage rows about to be inserted: their key and inserted values."""
        key = JsonObject(list(keys), [stage.c[k] for k in keys])
        after = JsonObject(list(fields), [stage.c[f] for f in fields])
        self._insert(sa.select(*self._fixed("insert"), key, sa.null(), after).select_from(stage).where(where))

    def deletes(self, target: sa.Table, keys: Sequence[str], where: sa.ColumnElement[bool]) -> None:
        """Stored rows about to be deleted (or soft-deleted): key and every stored value."""
        names = [c.name for c in target.columns]
        key = JsonObject(list(keys), [target.c[k] for k in keys])
        before = JsonObject(names, [target.c[n] for n in names])
        self._insert(
            sa.select(*self._fixed("delete"), key, before, sa.null()).select_from(target).where(where)
        )

    def summary(self, result: BulkResult, extra: Mapping[str, Any]) -> None:
        """One row with the call's counts (level ``summary``)."""
        counts: dict[str, Any] = {
            k: getattr(result, k)
            for k in (
                "records_processed",
                "inserted",
                "updated",
                "deleted",
                "skipped",
                "unchanged",
                "not_found",
            )
        }
        counts.update(extra)
        values = [
            sa.literal(v, sa.BigInteger())
            if isinstance(v, int) and not isinstance(v, bool)
            else sa.literal(str(v), sa.Text())
            for v in counts.values()
        ]
        after = JsonObject(list(counts), values)
        self._insert(sa.select(*self._fixed("summary"), sa.null(), sa.null(), after))
