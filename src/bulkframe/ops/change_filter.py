"""Change detection's client-side pre-filter: rows certainly equal to the stored ones are
counted ``unchanged`` and never staged.

The staged merge compares every staged row with the stored one in SQL
(:meth:`~bulkframe.ops.staged_merge.StagedMerge._changed`), but staging a row costs more
than comparing it: a re-sync of unchanged rows spent most of its time copying them.  So
per batch, before staging, :class:`ChangeFilter` reads the stored key and compared columns
of the batch's keys (in the writing transaction, after the merge lock), joins them with the
batch on the key, and drops the rows whose compared values are **certainly** equal: the
same value read back exactly (capability ``client_compare_kinds``,
:meth:`Backend.exact_read_guard`), null-safe; floats only with the same bits; JSON with the
same text, or with the text the database prints for the incoming document
(:meth:`Backend.canonical_json`).  Everything else — a value that might be equal in SQL
(``1.10`` and ``1.1`` in a text column, ``-0.0`` and ``0.0``, JSON spelled otherwise) — is
staged and decided by SQL as before, so the counts stay exact.

It runs only where dropping an equal row changes nothing: ``mode="update"`` (in
``target_wins``/``skip`` an existing row counts as skipped, not unchanged), a unique index
on the key (one stored row per key), no ``audit_level="full"`` (which records each
unchanged row).  ``update_if``, ``newest_wins`` and ``insert_if`` keep it: an equal row is
never written and is counted unchanged whatever they say, and ``insert_if`` only looks at
new keys.  With ``dedupe="last"`` a key may come back in a later batch: a row whose key was
staged earlier in the call is never dropped (the stored row is not yet what that merge
will write).  When the rows checked so far were less than a quarter equal, it stops for
the rest of the call (a first sync of new rows pays for one read).

The read runs on the writing connection; the comparison of a batch runs in a worker thread
while the caller stages the batch before it and reads the next (Polars and the driver
release the GIL), so batches come back one step late, in input order.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa

from bulkframe.errors import SchemaError
from bulkframe.ops import sync as syncing
from bulkframe.ops._modify import analyze_stage, create_stage, fill_stage
from bulkframe.types import Column

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions
    from bulkframe.ops.upsert_window import MergeSpec
    from bulkframe.options import ChangeDetection

log = logging.getLogger("bulkframe")

#: Stop pre-filtering once fewer than this share of the rows checked were equal.
MIN_EQUAL_SHARE = 0.25
#: A single integer key is read by range (``BETWEEN min AND max``) when the range holds at
#: most this many times the batch's keys; otherwise the keys go into a key stage.
DENSE_RANGE = 2
_ROW, _EXACT, _STORED, _PRINTED = "__bf_row", "__bf_exact", "__bf_stored_", "__bf_printed"
_INTEGER = ("int16", "int32", "int64")


class ChangeFilter:
    """The pre-filter of one call (see the module doc); :meth:`push` per batch, :meth:`finish` at the end."""

    def __init__(self, sessions: Sessions, spec: MergeSpec, track_staged: bool) -> None:
        self.sessions = sessions
        self.spec = spec
        self.backend = sessions.backend
        plan = spec.plan
        self.target, self.keys, self.columns = plan.target, list(plan.keys), plan.columns
        #: keys staged so far (``dedupe="last"``: a later batch may repeat them)
        self.track_staged = track_staged
        self.staged: pl.DataFrame | None = None
        self.active = True
        self.checked = self.equal = self.batches = 0
        self.stopped: str | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[pa.Table, Future[np.ndarray[Any, Any]]] | None = None

    @classmethod
    def open(cls, sessions: Sessions, spec: MergeSpec, *, mode: str, dedupe: str) -> ChangeFilter | None:
        """The pre-filter for a call, or ``None`` where it cannot be exact (module doc)."""
        changes: ChangeDetection = spec.changes
        if not changes.detect_changes or mode != "update":
            return None
        plan, kinds = spec.plan, sessions.backend.capabilities.client_compare_kinds
        why = None
        if not plan.indexed:
            why = "no unique index on the key (a key may match several stored rows)"
        elif plan.audit is not None and plan.audit.level == "full":
            why = "audit_level='full' records every unchanged row"
        elif any(plan.columns[k].kind not in kinds or "float" in plan.columns[k].kind for k in plan.keys):
            why = "the key's type is not compared on the client"
        if why is not None:
            log.debug("%s: change detection compares every row in SQL: %s", plan.ref, why)
            return None
        return cls(sessions, spec, track_staged=dedupe == "last")

    def metrics(self) -> dict[str, Any]:
        return {"checked": self.checked, "equal": self.equal, "stopped": self.stopped}

    def _stop(self, why: str) -> None:
        if not self.active:
            return
        self.active, self.stopped, self.staged = False, why, None
        log.info("%s: change detection stops comparing on the client: %s", self.spec.plan.ref, why)

    def push(self, conn: Connection, table: pa.Table) -> list[tuple[pa.Table, int]]:
        """Hand in the next deduplicated batch; get back, in input order, the batches whose
        comparison has finished, each as ``(rows to stage, rows dropped as unchanged)``.

        The stored rows of a batch are read here, on the writing connection; the batch is
        compared with them in a worker thread while the caller stages the batch before it
        and prepares the next one (the worker never touches the connection)."""
        wanted = self._wanted(table) if self.active and table.num_rows else None
        if wanted is None:
            return [*self.finish(), (table, 0)]
        self.spec.plan.lock(conn)  # read what the merge will compare with
        stored = self._read(conn, table.select(self.keys), wanted[0])
        ready = self.finish()
        if not self.active:  # the batch before said: stop
            return [*ready, (table, 0)]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bf-compare")
        incoming = table.select(wanted[0])
        self._pending = (table, self._pool.submit(self._equal_rows, incoming, stored, wanted[1], self.staged))
        return ready

    def finish(self) -> list[tuple[pa.Table, int]]:
        """The batch still being compared, if any (call before the last flush)."""
        if self._pending is None:
            return []
        table, comparing = self._pending
        self._pending = None
        equal = comparing.result()
        out = table.filter(_mask(table.num_rows, equal)) if len(equal) else table
        self.batches += 1
        self.checked += table.num_rows
        self.equal += len(equal)
        log.debug("%s: batch %d: %d of %d rows equal to the stored ones, not staged",
                  self.spec.plan.ref, self.batches, len(equal), table.num_rows)  # fmt: skip
        if self.equal < MIN_EQUAL_SHARE * self.checked:
            self._stop(f"{self.equal} of the {self.checked} rows checked were equal")
        elif self.track_staged:
            self._remember(out)
        return [(out, len(equal))]

    def close(self) -> None:
        """Wait for the worker (after a failure too)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _wanted(self, table: pa.Table) -> tuple[list[str], list[str]] | None:
        """``(columns read back, columns compared)`` for ``table``'s columns, or ``None``
        (and the filter stops) where the client cannot compare them."""
        from bulkframe.ops.upsert_window import merge_fields

        names = table.column_names
        _, updated = merge_fields(names, self.keys, self.spec.insert_fields, self.spec.update_fields)
        changes = self.spec.changes
        compare = syncing.compared_fields(changes, syncing.without_ignored(changes, updated), names) or []
        kinds = self.backend.capabilities.client_compare_kinds
        odd = [c for c in compare if self.columns[c].kind not in kinds]
        if odd:
            self._stop(f"columns {odd} compare in SQL only")
            return None
        wanted = [*self.keys, *(c for c in compare if c not in self.keys)]
        typed = [n for n in wanted if table.schema.field(n).type != self.columns[n].arrow_type()]
        if typed:
            self._stop(f"columns {typed} are not in the table's types")
            return None
        return wanted, compare

    # -- reading ---------------------------------------------------------------------------
    def _read(self, conn: Connection, keys: pa.Table, wanted: Sequence[str]) -> pa.Table:
        """The stored rows of ``keys``: the ``wanted`` columns and, where the backend
        guards its reads, whether each row was read exactly (``_EXACT``)."""
        backend, target = self.backend, self.target
        guards = [
            g for c in wanted if (g := backend.exact_read_guard(target.c[c], self.columns[c])) is not None
        ]
        read = [backend.read_column(target.c[c], self.columns[c]) for c in wanted]
        if guards:
            read.append(sa.case((sa.and_(*guards), 1), else_=0).label(_EXACT))
        select = sa.select(*read)
        (key,) = self.keys if len(self.keys) == 1 else (None,)
        if key is not None and self.columns[key].kind in _INTEGER:
            import pyarrow.compute as pc

            bounds = pc.min_max(keys.column(key)).as_py()
            low, high = bounds["min"], bounds["max"]
            if low is None:  # every key null: nothing stored matches
                return self._cast(conn.fetch_arrow(select.where(sa.false())), wanted)
            if high - low + 1 <= DENSE_RANGE * keys.num_rows:
                # the bounds written into the SQL (they are ints): ADBC PostgreSQL reads a query
                # without parameters through COPY, one with parameters row by row (2x slower)
                low_sql, high_sql = (sa.literal_column(str(int(v)), target.c[key].type) for v in (low, high))
                return self._cast(
                    conn.fetch_arrow(select.where(target.c[key].between(low_sql, high_sql))), wanted
                )
        return self._read_staged(conn, select, keys)

    def _read_staged(self, conn: Connection, select: sa.Select[Any], keys: pa.Table) -> pa.Table:
        """Keys that are no dense integer range: through a key stage joined to the table."""
        columns = [dataclasses.replace(self.columns[k], primary_key=False, nullable=True) for k in self.keys]
        ref, stage = create_stage(conn, self.sessions, columns)
        try:
            fill_stage(conn, self.sessions, ref, keys, {c.name: c for c in columns}, first=True)
            analyze_stage(conn, self.sessions, ref)
            match = sa.and_(*(self.target.c[k] == stage.c[k] for k in self.keys))
            rows = conn.fetch_arrow(select.where(sa.exists().where(match)))
        finally:
            self.backend.drop_table(conn, ref)
        return self._cast(rows, [c for c in rows.column_names if c != _EXACT])

    def _cast(self, rows: pa.Table, wanted: Sequence[str]) -> pa.Table:
        """The rows read, in the table's types; none where a stored value has no such value
        (a ``NaN`` or a longer fraction in a ``numeric`` column): SQL compares that batch."""
        try:
            cast = self.backend.read_cast(rows.select(list(wanted)), {c: self.columns[c] for c in wanted})
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, SchemaError) as exc:
            log.debug(
                "%s: stored values the client cannot hold (%s); comparing in SQL", self.spec.plan.ref, exc
            )
            return pa.table({c: pa.array([], self.columns[c].arrow_type()) for c in wanted})
        if _EXACT in rows.column_names:
            cast = cast.append_column(_EXACT, rows.column(_EXACT).cast(pa.int8()))
        return cast

    # -- comparing ---------------------------------------------------------------------------
    def _equal_rows(
        self, incoming: pa.Table, stored: pa.Table, compare: Sequence[str], staged: pl.DataFrame | None
    ) -> np.ndarray[Any, Any]:
        """Positions of the incoming rows certainly equal to their stored row (``staged``:
        keys staged earlier in the call, never dropped)."""
        import numpy as np
        import polars as pl

        none = np.empty(0, dtype=np.int64)
        if stored.num_rows == 0:
            return none
        wanted = incoming.column_names
        if [stored.schema.field(c).type for c in wanted] != [incoming.schema.field(c).type for c in wanted]:
            log.debug(
                "%s: stored types read back differ from the table's; comparing in SQL", self.spec.plan.ref
            )
            return none
        left = pl.from_arrow(_comparable(incoming, self.columns))
        right = pl.from_arrow(_comparable(stored, self.columns))
        assert isinstance(left, pl.DataFrame) and isinstance(right, pl.DataFrame)
        right = right.rename({c: _STORED + c for c in compare if c not in self.keys})
        joined = left.with_row_index(_ROW).join(right, on=self.keys, how="inner")
        same = [pl.col(_EXACT) == 1] if _EXACT in stored.column_names else []
        for c in compare:
            mine, theirs = pl.col(c), pl.col(_STORED + c) if c not in self.keys else pl.col(c)
            test = mine.eq_missing(theirs)
            if self.columns[c].kind == "json":
                printed = self.backend.canonical_json(incoming.column(c))
                if printed is not None:
                    joined = joined.with_columns(pl.Series(_PRINTED, printed).gather(joined[_ROW]))
                    test = test | pl.col(_PRINTED).eq(theirs).fill_null(False)
            same.append(test)
        equal = joined.filter(pl.all_horizontal(same)).select(_ROW, *self.keys)
        if staged is not None and equal.height:
            equal = equal.join(staged, on=self.keys, how="anti")  # its key's merge is still to come
        rows: np.ndarray[Any, Any] = equal[_ROW].cast(pl.Int64).to_numpy()
        return rows

    def _remember(self, staged: pa.Table) -> None:
        import polars as pl

        frame = pl.from_arrow(staged.select(self.keys))
        assert isinstance(frame, pl.DataFrame)
        self.staged = frame if self.staged is None else pl.concat([self.staged, frame])


def _comparable(table: pa.Table, columns: dict[str, Column] | Any) -> pa.Table:
    """Floats as their bits (``-0.0`` and ``0.0`` differ, a NaN equals only itself)."""
    arrays = []
    for name in table.column_names:
        arr = table.column(name)
        if pa.types.is_floating(arr.type):
            width = pa.int64() if arr.type.bit_width == 64 else pa.int32()
            arr = pa.chunked_array([chunk.view(width) for chunk in arr.chunks], width)
        arrays.append(arr)
    return pa.table(arrays, names=table.column_names)


def _mask(n: int, drop: np.ndarray[Any, Any]) -> pa.Array:
    import numpy as np

    keep = np.ones(n, dtype=bool)
    keep[drop] = False
    return pa.array(keep)
