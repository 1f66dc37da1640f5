"""Run prepared batches through a write function under an :class:`ErrorPolicy`.

- ``stop``: one transaction; the first rejected row stops writing (the rest of the
  input is still checked, for a full report), then everything is rolled back.
- ``continue`` / ``retry_batch``: a transaction per batch.  A batch the database refuses
  with a data/constraint error is split in halves, recursively, until the offending rows
  are isolated and reported; all other rows commit.  Transient errors reconnect and
  retry (``retry_batch``) or reject the batch (``continue``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import polars as pl
import pyarrow as pa

from bulkframe.errors import (
    BulkframeError,
    DatabaseError,
    DataError,
    IntegrityError,
    SafetyLimitError,
    TransientError,
    ValidationError,
)
from bulkframe.plan.policy import ErrorPolicy
from bulkframe.plan.rejections import Rejections, entries, report_rows

if TYPE_CHECKING:
    from bulkframe.backends.connection import Connection
    from bulkframe.ops.prepare import Prepared
    from bulkframe.progress import Reporter
    from bulkframe.result import BulkResult

log = logging.getLogger("bulkframe")


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    skipped: int = 0
    deleted: int = 0
    #: input rows whose key repeated inside their batch (already counted above)
    deduplicated: int = 0

    def add(self, other: Counts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.skipped += other.skipped
        self.deleted += other.deleted
        self.deduplicated += other.deduplicated

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.skipped + self.deleted


class Writer(Protocol):
    """What an operation gives the executor: write accepted rows inside a transaction."""

    def __call__(self, conn: Connection, table: pa.Table) -> Counts: ...

    def reset(self) -> None:
        """Forget per-transaction state (a rollback dropped the staging table)."""

    def finish(self, conn: Connection) -> None:
        """Clean up (drop staging tables) before the final commit."""


@dataclass
class Session:
    """The connection an execution uses, replaceable after a lost connection."""

    connect: Callable[[], Connection]
    conn: Connection
    reconnects: int = 0

    def reconnect(self) -> Connection:
        self.conn.rollback()
        self.conn.close()
        self.conn = self.connect()
        self.reconnects += 1
        return self.conn


@dataclass
class Execution:
    policy: ErrorPolicy
    result: BulkResult
    rejections: Rejections
    reporter: Reporter
    counts: Counts = field(default_factory=Counts)

    def run(self, session: Session, batches: Iterable[Prepared], write: Writer) -> None:
        if self.policy.per_batch:
            self._per_batch(session, batches, write)
        else:
            self._single_transaction(session, batches, write)

    # -- stop: all or nothing ------------------------------------------------------------
    def _single_transaction(self, session: Session, batches: Iterable[Prepared], write: Writer) -> None:
        result = self.result
        failed = False
        try:
            for batch in batches:
                self._seen(batch)
                if batch.rejected is not None:
                    failed = True
                if failed or batch.table.num_rows == 0:
                    self.reporter.advance(batch.rows, 0, batch.rejected_count)
                    continue
                counts = write(session.conn, batch.table)
                self.counts.add(counts)
                self.reporter.advance(batch.rows, batch.rows, 0)
            if failed:
                raise ValidationError(
                    f"{self.rejections.count} row(s) rejected; nothing was written "
                    "(error_strategy='stop'). See .errors for every row and reason, or use "
                    "error_strategy='continue' to write the valid rows.",
                )
            write.finish(session.conn)
            session.conn.commit()
        except BaseException as exc:
            session.conn.rollback()
            write.reset()
            self.counts = Counts()
            result.failure_count = result.records_processed
            result.batches_committed = 0
            if isinstance(exc, ValidationError):
                exc.errors = self.rejections.frame()
            raise
        result.batches_committed = result.batches
        result.committed_ranges = [(0, result.records_processed)] if result.records_processed else []
        result.failure_count = 0

    # -- continue / retry_batch: a transaction per batch ---------------------------------------
    def _per_batch(self, session: Session, batches: Iterable[Prepared], write: Writer) -> None:
        for batch in batches:
            self._seen(batch)
            before = self.rejections.count
            if batch.table.num_rows:
                self._write_batch(session, batch, write)
            self.result.batches_committed += 1
            self.result.committed_ranges.append((batch.offset, batch.offset + batch.rows))
            failed_here = self.rejections.count - before
            self.reporter.advance(batch.rows, batch.rows - failed_here, failed_here)
            self.result.failure_count = self.rejections.count
            limit = self.policy.max_errors
            if limit is not None and self.rejections.count > limit:
                raise SafetyLimitError(
                    f"max_errors={limit} exceeded: {self.rejections.count} rows rejected; stopped "
                    f"after input row {batch.offset + batch.rows - 1}. Committed: the rows of "
                    f"result.committed_ranges except those in result.errors.",
                )
        write.finish(session.conn)
        session.conn.commit()

    def _write_batch(self, session: Session, batch: Prepared, write: Writer) -> None:
        attempt = 0
        while True:
            try:
                self.counts.add(write(session.conn, batch.table))
                session.conn.commit()
                return
            except (IntegrityError, DataError) as exc:
                session.conn.rollback()
                write.reset()
                self._bisect(session, batch, write, pa.array(range(batch.table.num_rows), pa.int64()), exc)
                return
            except TransientError as exc:
                write.reset()
                session.reconnect()
                attempt += 1
                if self.policy.strategy == "retry_batch" and attempt <= self.policy.max_retries:
                    delay = self.policy.delay(attempt)
                    log.warning("batch at row %d: transient error (%s); retry %d/%d in %.1fs",
                                batch.offset, exc, attempt, self.policy.max_retries, delay)
                    self.result.metrics["retries"] = self.result.metrics.get("retries", 0) + 1
                    time.sleep(delay)
                    continue
                if self.policy.strategy == "retry_batch":
                    raise
                self._reject(batch, pa.array(range(batch.table.num_rows), pa.int64()), exc)
                return
            except DatabaseError:
                session.conn.rollback()
                write.reset()
                raise

    def _bisect(self, session: Session, batch: Prepared, write: Writer, idx: pa.Array, exc: DatabaseError) -> None:
        """Split ``idx`` (rows of ``batch.table``) until the refused rows are isolated."""
        if len(idx) == 1:
            self._reject(batch, idx, exc)
            return
        mid = len(idx) // 2
        for part in (idx[:mid], idx[mid:]):
            try:
                self.counts.add(write(session.conn, batch.table.take(part)))
                session.conn.commit()
            except (IntegrityError, DataError) as sub:
                session.conn.rollback()
                write.reset()
                self._bisect(session, batch, write, part, sub)

    def _reject(self, batch: Prepared, idx: pa.Array, exc: BaseException) -> None:
        raw_rows = pl.Series(batch.raw_index.take(idx)).cast(pl.Int64)
        rule = getattr(exc, "sqlstate", None) or "database"
        message = str(exc).splitlines()[0]
        frame = report_rows(entries(raw_rows, "database", None, str(rule), message), batch.raw, batch.offset)
        self.rejections.add(frame)

    def _seen(self, batch: Prepared) -> None:
        self.result.batches += 1
        self.result.records_processed += batch.rows
        if batch.rejected is not None:
            self.rejections.add(batch.rejected)


def attach(exc: BaseException, result: BulkResult) -> None:
    """Give a bulkframe error the operation's (partial) result."""
    if isinstance(exc, BulkframeError) and getattr(exc, "result", None) is None:
        exc.result = result

