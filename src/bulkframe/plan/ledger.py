"""The batch ledger: which parts of the input have committed, recorded in the target
database in the same transaction as the rows themselves.

It makes two things exact:

- **retries** (``error_strategy="retry_batch"``): when the connection dies around a
  COMMIT, the ledger says whether the batch landed, so a retry never doubles it;
- **resumable loads** (``resumable=True``): a load killed at any moment (even
  ``kill -9``) resumes after the last committed batch.  ``checkpoint_file`` mirrors the
  ledger (the database is the truth) and names the run; each batch's fingerprint is
  checked on resume, so a checkpoint is never applied to different input.

Rows live in ``_bulkframe_ledger`` (created on first use) and are deleted when the run
finishes (unless ``auto_cleanup=False``).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa

from bulkframe.backends.base import TableRef
from bulkframe.errors import CheckpointError

if TYPE_CHECKING:
    from bulkframe.backends.base import Backend
    from bulkframe.backends.connection import Connection

log = logging.getLogger("bulkframe.ledger")

LEDGER = TableRef("_bulkframe_ledger")
#: ``first_row`` of the row that marks a batch as complete (all its parts committed)
COMPLETE = -2


def fingerprint(raw: pa.Table) -> str:
    """A stable hash of a chunk's input values (row order included)."""
    import polars as pl

    from bulkframe.plan.rejections import plain_record

    frame = plain_record(raw)
    if frame.width == 0:
        return f"empty:{raw.num_rows}"
    hashed = frame.hash_rows(seed=0)
    mixed = (
        hashed.cast(pl.UInt64)
        ^ pl.int_range(0, hashed.len(), eager=True).cast(pl.UInt64) * 0x9E3779B97F4A7C15
    )
    return f"{raw.num_rows}:{int(mixed.sum()) & 0xFFFFFFFFFFFFFFFF:016x}"


@dataclass
class Ledger:
    backend: Backend
    run_key: str
    target: str
    batch_size: int
    checkpoint_file: Path | None = None
    checkpoint_interval: int | None = None
    #: batch_index → list of committed (first_row, last_row, fingerprint)
    committed: dict[int, list[tuple[int, int, str]]] = field(default_factory=dict)
    rows_since_mirror: int = 0

    # -- opening ------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        backend: Backend,
        conn: Connection,
        *,
        target: str,
        batch_size: int,
        checkpoint_file: str | None,
        checkpoint_interval: int | None,
        resumable: bool,
        run_key: str | None = None,
    ) -> Ledger:
        """The ledger of one run: ``run_key`` names it (default: from ``checkpoint_file``
        when resuming, else a new one)."""
        path = Path(checkpoint_file) if checkpoint_file else None
        run_key = run_key or uuid.uuid4().hex
        if resumable and path is not None and path.exists():
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise CheckpointError(f"checkpoint file {path} is unreadable: {exc}") from exc
            if state.get("table") != target or state.get("batch_size") != batch_size:
                raise CheckpointError(
                    f"checkpoint {path} belongs to a load of table {state.get('table')!r} with "
                    f"batch_size={state.get('batch_size')}, not {target!r} with batch_size={batch_size}; "
                    "delete the file to start over"
                )
            run_key = str(state["run_key"])
        ledger = cls(backend, run_key, target, batch_size, path, checkpoint_interval)
        ledger._ensure_table(conn)
        ledger.committed = ledger._load(conn)
        if ledger.committed:
            log.info("resuming %s: %d batch(es) already committed", target, len(ledger.committed))
        ledger.mirror(force=True)
        return ledger

    def _table(self) -> sa.Table:
        return sa.Table(
            LEDGER.name,
            sa.MetaData(),
            sa.Column("run_key", sa.Text),
            sa.Column("batch_index", sa.BigInteger),
            sa.Column("first_row", sa.BigInteger),
            sa.Column("last_row", sa.BigInteger),
            sa.Column("rows", sa.BigInteger),
            sa.Column("fingerprint", sa.Text),
            sa.Column("inserted", sa.BigInteger),
            sa.Column("updated", sa.BigInteger),
            sa.Column("skipped", sa.BigInteger),
        )

    def _ensure_table(self, conn: Connection) -> None:
        self.ensure(self.backend, conn)

    @staticmethod
    def ensure(backend: Backend, conn: Connection) -> None:
        """Create the ledger table if missing (and commit): call it once before writers in
        several processes start, so they do not race to create it.  Its columns get the
        backend's own types (a text key column must be keyable everywhere)."""
        from bulkframe.backends.ddl import create_table_statements
        from bulkframe.types import Column

        keys = ("run_key", "batch_index", "first_row")
        columns = [
            Column(name, "text" if name in ("run_key", "fingerprint") else "int64", nullable=False,
                   primary_key=name in keys)
            for name in ("run_key", "batch_index", "first_row", "last_row", "rows", "fingerprint",
                         "inserted", "updated", "skipped")
        ]  # fmt: skip
        for statement in create_table_statements(backend, LEDGER, columns):
            conn.run(statement)
        conn.commit()

    def _load(self, conn: Connection) -> dict[int, list[tuple[int, int, str]]]:
        t = self._table()
        rows = conn.fetchall(
            sa.select(t.c.batch_index, t.c.first_row, t.c.last_row, t.c.fingerprint)
            .where(t.c.run_key == self.run_key)
            .order_by(t.c.batch_index, t.c.first_row)
        )
        conn.commit()
        out: dict[int, list[tuple[int, int, str]]] = {}
        for batch_index, first, last, fp in rows:
            out.setdefault(int(batch_index), []).append((int(first), int(last), str(fp)))
        return out

    # -- during the run ----------------------------------------------------------------------
    def check(self, batch_index: int, fp: str) -> tuple[bool, list[tuple[int, int]]]:
        """``(complete, committed row ranges)`` of a batch; refuse different input."""
        parts = self.committed.get(batch_index, [])
        for _, _, stored in parts:
            if stored != fp:
                raise CheckpointError(
                    f"checkpoint {self.checkpoint_file or self.run_key}: batch {batch_index} of the input "
                    "differs from the batch committed earlier (fingerprint mismatch); this is not the "
                    "same input. Delete the checkpoint file to load it as a new run."
                )
        complete = any(first == COMPLETE for first, _, _ in parts)
        return complete, [(first, last) for first, last, _ in parts if first >= 0]

    def record(
        self, conn: Connection, batch_index: int, positions: pa.Array, fp: str, counts: Any, *, complete: bool
    ) -> None:
        """Insert ledger rows for committed positions, inside the caller's transaction."""
        t = self._table()
        rows = []
        if len(positions):
            rows.append(
                dict(
                    run_key=self.run_key,
                    batch_index=batch_index,
                    first_row=int(positions[0].as_py()),
                    last_row=int(positions[-1].as_py()),
                    rows=len(positions),
                    fingerprint=fp,
                    inserted=counts.inserted,
                    updated=counts.updated,
                    skipped=counts.skipped,
                )
            )
        if complete:
            rows.append(
                dict(
                    run_key=self.run_key,
                    batch_index=batch_index,
                    first_row=COMPLETE,
                    last_row=COMPLETE,
                    rows=0,
                    fingerprint=fp,
                    inserted=0,
                    updated=0,
                    skipped=0,
                )
            )
        for values in rows:
            conn.run(sa.insert(t).values(**values))

    def landed(self, conn: Connection, batch_index: int, positions: pa.Array) -> tuple[int, int, int] | None:
        """After an ambiguous failure: the counts of this write unit if it committed."""
        if len(positions) == 0:
            return None
        t = self._table()
        rows = conn.fetchall(
            sa.select(t.c.inserted, t.c.updated, t.c.skipped).where(
                t.c.run_key == self.run_key,
                t.c.batch_index == batch_index,
                t.c.first_row == int(positions[0].as_py()),
            )
        )
        conn.commit()
        return (int(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None

    def note_committed(
        self, batch_index: int, positions: pa.Array, fp: str, rows: int, *, complete: bool
    ) -> None:
        parts = self.committed.setdefault(batch_index, [])
        if len(positions):
            parts.append((int(positions[0].as_py()), int(positions[-1].as_py()), fp))
        if complete:
            parts.append((COMPLETE, COMPLETE, fp))
        self.rows_since_mirror += rows
        self.mirror()

    def mirror(self, force: bool = False) -> None:
        """Rewrite the checkpoint file (atomically) every ``checkpoint_interval`` rows."""
        if self.checkpoint_file is None:
            return
        if not force and self.checkpoint_interval and self.rows_since_mirror < self.checkpoint_interval:
            return
        self.rows_since_mirror = 0
        state: dict[str, Any] = {
            "run_key": self.run_key,
            "table": self.target,
            "batch_size": self.batch_size,
            "committed_batches": sorted(self.committed),
            "updated_at": time.time(),
            "ledger_table": LEDGER.name,
        }
        tmp = self.checkpoint_file.with_suffix(self.checkpoint_file.suffix + ".tmp")
        self.checkpoint_file.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.checkpoint_file)

    # -- the end -----------------------------------------------------------------------------
    def finish(self, conn: Connection) -> None:
        """The run completed: forget it (ledger rows and checkpoint file)."""
        t = self._table()
        conn.run(sa.delete(t).where(t.c.run_key == self.run_key))
        conn.commit()
        if self.checkpoint_file is not None and self.checkpoint_file.exists():
            self.checkpoint_file.unlink()
