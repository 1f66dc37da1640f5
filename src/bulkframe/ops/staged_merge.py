"""The staged merge behind ``bulk_upsert``, ``bulk_create(conflict_resolution="update"|"skip")``
and the sync modes: rows staged by COPY are applied by two set-based statements,

1. ``UPDATE target SET … FROM stage WHERE <keys match> [AND <conditions>]`` for keys that
   exist (conditions: ``update_if``, ``newest_wins``, and change detection
   ``t.c IS DISTINCT FROM s.c`` so equal rows are not written at all), then
2. ``INSERT INTO target SELECT … FROM stage WHERE NOT EXISTS (<keys match>)`` for new keys.

Chosen by measurement over ``INSERT … ON CONFLICT`` and ``MERGE`` (PostgreSQL 15, 1M rows
half existing: 4.5 s against 8.2 s for ``ON CONFLICT`` and 4.7 s for ``MERGE``;
docs/sync.md), and it needs no unique index.  Concurrency, through backend hooks:

* a unique index guards the key: :meth:`Backend.serialize_merges` makes bulkframe's own
  merges into the table queue up (their row locks cannot deadlock), and where the backend
  reports inserted rows (:meth:`Backend.upsert_inserted_flag`) the ``INSERT`` carries
  ``ON CONFLICT``, so a key another program inserts while it runs is merged, not refused;
* no unique index: :meth:`Backend.lock_key_space` keeps every other writer out of the
  table until the transaction ends, so no key is inserted twice.

Counts are exact and computed in the transaction: the statements' own row counts, and
one ``count(*)`` when conditions make "matched but not written" ambiguous.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa

from bulkframe.backends.statements import (
    MergeCounts,
    count_flagged,
    count_modified,
    incoming_values,
    merge_from_stage,
)

if TYPE_CHECKING:
    from bulkframe.backends.base import Backend, TableRef
    from bulkframe.backends.connection import Connection
    from bulkframe.filters import Filter
    from bulkframe.ops.audit import Audit
    from bulkframe.types import Column

log = logging.getLogger("bulkframe")


@dataclass
class StagedMerge:
    """One merge plan for a call; :meth:`apply` runs it for one stage (or part of one)."""

    backend: Backend
    ref: TableRef
    target: sa.Table
    columns: Mapping[str, Column]
    keys: list[str]
    #: ``"update"``: existing keys are updated; ``"skip"``: left alone.
    mode: str = "update"
    #: A primary key, unique constraint or unique index covers exactly ``keys``.
    indexed: bool = True
    #: Change detection: the compared columns (``None``: off).
    compare: Sequence[str] | None = None
    #: ``newest_wins``: the timestamp column an update must advance.
    newest: str | None = None
    #: ``update_if`` filter (plain names: the stored row; ``excluded.x``: the incoming one).
    update_if: Filter = None
    audit: Audit | None = None
    #: Each stage holds one batch of a longer input (:class:`~bulkframe.ops.upsert_window.PipelinedWindow`).
    per_batch: bool = False
    _locked: bool = field(default=False, init=False)
    _told: bool = field(default=False, init=False)

    def lock(self, conn: Connection) -> None:
        """Take the lock the merge needs, once per transaction (before the first apply)."""
        if self._locked:
            return
        if self.indexed:
            self.backend.serialize_merges(conn, self.ref)
        else:
            if not self._told:
                self._told = True
                log.info(
                    "%s: no unique index on %s; matching rows by UPDATE … FROM + anti-join INSERT with the "
                    "table locked against other writers until commit. A unique index would be faster and let "
                    "writers run concurrently: CREATE UNIQUE INDEX … ON %s (%s), or pass create_unique_index=True",
                    self.ref,
                    list(self.keys),
                    self.backend.qualified(self.ref),
                    ", ".join(self.backend.quote(k) for k in self.keys),
                )
            self.backend.lock_key_space(conn, self.ref)
        self._locked = True

    def reset(self) -> None:
        """The transaction ended: the next apply locks again."""
        self._locked = False

    # -- clauses -----------------------------------------------------------------------
    def _match(self, stage: sa.Table) -> sa.ColumnElement[bool]:
        return sa.and_(*(self.target.c[k] == stage.c[k] for k in self.keys))

    def _changed(self, incoming: Mapping[str, Any]) -> dict[str, sa.ColumnElement[bool]]:
        return {
            c: self.backend.distinct(self.target.c[c], incoming[c], self.columns[c])
            for c in self.compare or ()
        }

    def _conditions(self, incoming: Mapping[str, Any]) -> list[sa.ColumnElement[bool]]:
        """What a matched stored row must satisfy to be updated, besides being changed."""
        from bulkframe.filters import is_empty
        from bulkframe.filters import to_sql as filter_sql

        out: list[sa.ColumnElement[bool]] = []
        if self.newest is not None:
            stored, new = self.target.c[self.newest], incoming[self.newest]
            out.append(sa.and_(new.is_not(None), sa.or_(stored.is_(None), new > stored)))
        if not is_empty(self.update_if):
            out.append(filter_sql(self.update_if, self.target, others={"excluded": incoming}))
        return out

    # -- the merge -----------------------------------------------------------------------
    def apply(
        self,
        conn: Connection,
        stage: sa.Table,
        *,
        inserted: Sequence[str],
        updated: Sequence[str],
        staged_columns: Sequence[str],
        staged: int,
        stage_where: sa.ColumnElement[bool] | None = None,
        insert_where: sa.ColumnElement[bool] | None = None,
    ) -> MergeCounts:
        """Merge the stage's rows (those ``stage_where`` selects; ``staged`` of them).

        Parameters
        ----------
        inserted, updated
            Columns a new row is inserted with (they include the keys) and columns an
            existing row takes from the stage.
        staged_columns
            Every column the stage holds.
        insert_where
            New rows failing this clause on the stage are skipped.
        """
        self.lock(conn)
        if self._native():
            return merge_from_stage(
                conn, self.target, stage, list(inserted), self.keys, mode=self.mode,
                update_columns=list(updated), insert_where=insert_where, update_if=self.update_if,
                staged_columns=staged_columns, staged=staged, stage_where=stage_where,
            )  # fmt: skip
        # another writer may insert one of the new keys while the INSERT runs (it had inserted
        # the key, uncommitted, when the statement started): where a unique index guards the
        # key, the INSERT carries ON CONFLICT and merges such a key in place.  (A savepoint
        # and a rerun cannot replace it: ADBC PostgreSQL refuses every statement, ROLLBACK TO
        # SAVEPOINT included, once one failed inside the transaction.)
        guarded = (
            self.indexed
            and self.backend.capabilities.concurrent_writers
            and self.backend.capabilities.upsert == "on_conflict"
        )
        return self._pass(
            conn, stage, inserted, updated, staged_columns, staged, stage_where, insert_where, guarded=guarded
        )

    @property
    def plain(self) -> bool:
        """No change detection, ``newest_wins`` or audit, and a unique index on the key:
        one ``INSERT … ON CONFLICT`` / ``ON DUPLICATE KEY UPDATE`` can do the merge."""
        return self.indexed and self.compare is None and self.newest is None and self.audit is None

    def _native(self) -> bool:
        """Merge by the database's own upsert statement (:func:`merge_from_stage`) rather
        than the two statements here: where the backend merges a stage itself (MySQL:
        ``INSERT … SELECT … ON DUPLICATE KEY UPDATE`` with counted duplicates, 2.0 s against
        5.2 s for ``UPDATE … JOIN`` + anti-join ``INSERT`` of 200k rows half existing into
        1M; ``benchmarks/bench_mysql.py``), or for stages of one batch each (``per_batch``:
        the pipelined upsert, where ``UPDATE … FROM`` would scan the table once per batch
        and ``ON CONFLICT`` looks each key up in its index)."""
        native = self.backend.capabilities.upsert == "backend" or self.per_batch
        return native and self.plain

    def _pass(
        self,
        conn: Connection,
        stage: sa.Table,
        inserted: Sequence[str],
        updated: Sequence[str],
        staged_columns: Sequence[str],
        staged: int,
        stage_where: sa.ColumnElement[bool] | None,
        insert_where: sa.ColumnElement[bool] | None,
        *,
        guarded: bool,
    ) -> MergeCounts:
        """One run of the two statements (see :meth:`apply`)."""
        match = self._match(stage)
        scope = stage_where if stage_where is not None else sa.true()
        incoming = {c: stage.c[c] for c in staged_columns}
        changed = self._changed(incoming)
        conditions = self._conditions(incoming)
        any_changed = sa.or_(sa.false(), *changed.values()) if self.compare is not None else None
        # nothing but the key to write: a matched row still counts as updated (as ON CONFLICT
        # DO UPDATE would), unless change detection finds it equal
        written = list(updated) or [self.keys[0]]
        audited = _audited(written, self.compare)
        diff = {c: self.backend.distinct(self.target.c[c], stage.c[c], self.columns[c]) for c in audited}
        n_updated = 0
        # matched rows that will not be written: unchanged (equal) or skipped (a condition said
        # no); where conditions make that ambiguous, the equal ones are counted before the
        # UPDATE (after it, every row it wrote is equal too)
        unchanged: int | None = None
        if self.mode == "update" and any_changed is not None and (conditions or insert_where is not None):
            same = sa.and_(sa.exists().where(sa.and_(match, sa.not_(any_changed))), scope)
            unchanged = int(conn.scalar(sa.select(sa.func.count()).select_from(stage).where(same)))
        if self.mode == "update":
            where = sa.and_(match, scope, *conditions, *([any_changed] if any_changed is not None else []))
            if self.audit is not None and self.audit.level == "full" and any_changed is not None:
                same = sa.and_(match, scope, sa.not_(any_changed))  # before the update makes more rows equal
                self.audit.updates(self.target, stage, self.keys, audited, diff, same, operation="unchanged")
            if self.audit is not None and self.audit.per_row:
                self.audit.updates(self.target, stage, self.keys, audited, diff, where)
            stmt = sa.update(self.target).values({c: stage.c[c] for c in written}).where(where)
            n_updated = self._count_keys(conn, stmt)
        new_rows = sa.and_(
            ~sa.exists().where(match), scope, *([insert_where] if insert_where is not None else [])
        )
        if self.audit is not None and self.audit.per_row:
            self.audit.inserts(stage, self.keys, inserted, new_rows)
        select = sa.select(*(stage.c[c] for c in inserted)).where(new_rows)
        if self.backend.capabilities.concurrent_writers:
            select = select.order_by(*(stage.c[k] for k in self.keys))  # rows locked in key order
        n_inserted, raced = self._insert(
            conn, stage, select, inserted, updated, staged_columns, stage_where, guarded=guarded
        )
        n_updated += raced
        if self.mode == "skip":
            return MergeCounts(n_inserted, n_updated, staged - n_inserted - n_updated)
        if unchanged is None:  # every staged row was inserted, updated or equal
            unchanged = staged - n_inserted - n_updated if self.compare is not None else 0
        return MergeCounts(n_inserted, n_updated, staged - n_inserted - n_updated - unchanged, unchanged)

    def _count_keys(self, conn: Connection, stmt: Any) -> int:
        """Rows an ``UPDATE`` changed, counted as distinct keys: without a unique index the
        table may hold a key twice, and both rows change for one input row."""
        if self.indexed:
            return count_modified(conn, stmt)
        changed = self.backend.modify_returning(conn, stmt, self.target)  # RETURNING where it exists
        return _distinct_rows(changed.select(list(self.keys)))

    def _insert(
        self,
        conn: Connection,
        stage: sa.Table,
        select: sa.Select[Any],
        inserted: Sequence[str],
        updated: Sequence[str],
        staged_columns: Sequence[str],
        stage_where: sa.ColumnElement[bool] | None,
        *,
        guarded: bool,
    ) -> tuple[int, int]:
        """``(inserted, updated)`` by the anti-join ``INSERT``; ``guarded`` adds ``ON
        CONFLICT``, which merges a key another writer inserted meanwhile (counted as
        updated, or skipped in ``"skip"`` mode; the backend reports which rows it inserted)."""
        flag = self.backend.upsert_inserted_flag() if guarded else None
        if flag is None:
            return count_modified(conn, sa.insert(self.target).from_select(list(inserted), select)), 0
        insert = self.backend.upsert_insert(self.target).from_select(list(inserted), select)
        if self.mode == "skip":
            stmt = insert.on_conflict_do_nothing(index_elements=list(self.keys))
        else:
            incoming = incoming_values(
                insert.excluded, stage, inserted, staged_columns, self.keys, self.backend.quote, stage_where
            )
            changed = self._changed(incoming)
            where = [
                *self._conditions(incoming),
                *([sa.or_(sa.false(), *changed.values())] if changed else []),
            ]
            stmt = insert.on_conflict_do_update(
                index_elements=list(self.keys),
                set_={c: incoming[c] for c in list(updated) or [self.keys[0]]},
                where=sa.and_(*where) if where else None,
            )
        written, n_inserted = count_flagged(conn, stmt, flag)
        return n_inserted, written - n_inserted


def _audited(updated: Sequence[str], compare: Sequence[str] | None) -> list[str]:
    """Fields an update's audit row shows: the written ones (compared ones first)."""
    first = [c for c in compare or () if c in updated]
    return first + [c for c in updated if c not in first]


def _distinct_rows(table: pa.Table) -> int:
    if table.num_rows == 0:
        return 0
    return int(table.group_by(table.column_names).aggregate([]).num_rows)
