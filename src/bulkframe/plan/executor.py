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
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from bulkframe.errors import (
    DatabaseError,
    DataError,
    IntegrityError,
    SafetyLimitError,
    TransientError,
    ValidationError,
)
from bulkframe.plan.batch import Counts, Prepared, Writer
from bulkframe.plan.policy import ErrorPolicy
from bulkframe.plan.rejections import Rejections, entries, report_rows
from bulkframe.types import arange

if TYPE_CHECKING:
    from bulkframe.backends.connection import Connection
    from bulkframe.plan.events import Publisher
    from bulkframe.plan.ledger import Ledger
    from bulkframe.plan.metrics import Metrics
    from bulkframe.progress import Reporter
    from bulkframe.result import BulkResult

log = logging.getLogger("bulkframe")

T = TypeVar("T")


@dataclass
class ConnectionLease:
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

    def call(self, policy: ErrorPolicy, fn: Callable[[Connection], T]) -> T:
        """Run a set-up step; under ``retry_batch`` a transient error reconnects and retries."""
        attempt = 0
        while True:
            try:
                return fn(self.conn)
            except TransientError:
                attempt += 1
                if policy.strategy != "retry_batch" or attempt > policy.retries:
                    raise
                time.sleep(policy.delay(attempt))
                try:
                    self.reconnect()
                except TransientError:
                    continue


@dataclass
class Execution:
    policy: ErrorPolicy
    result: BulkResult
    rejections: Rejections
    reporter: Reporter
    counts: Counts = field(default_factory=Counts)
    ledger: Ledger | None = None
    workers: int = 1
    stopping: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    db_rejected: dict[int, int] = field(default_factory=dict)
    metrics: Metrics | None = None
    retries: dict[int, int] = field(default_factory=dict)
    #: events published after each commit (``publish_events``)
    events: Publisher | None = None
    #: benchmark runs: the single transaction is rolled back instead of committed
    rehearsal: bool = False

    def run(
        self,
        session: ConnectionLease,
        batches: Iterable[Prepared],
        write: Writer,
        *,
        per_batch: bool,
        spawn: Callable[[], tuple[ConnectionLease, Writer]] | None = None,
    ) -> None:
        """``per_batch``: batches commit on their own (``continue``/``retry_batch``, and also
        ``stop`` when the load is resumable or parallel: it then stops at the first failure)."""
        if per_batch:
            self._per_batch(session, batches, write, spawn)
        else:
            self._single_transaction(session, batches, write)

    # -- stop: all or nothing ------------------------------------------------------------
    def _single_transaction(
        self, session: ConnectionLease, batches: Iterable[Prepared], write: Writer
    ) -> None:
        result = self.result
        failed = False
        try:
            stream = getattr(write, "stream", None) if self.events is None else None
            if stream is not None:
                failed = self._stream(session, iter(batches), write, stream)
            else:
                for batch in batches:
                    self._seen(batch)
                    if batch.rejected is not None:
                        failed = True
                    if failed or batch.table.num_rows == 0:
                        self.reporter.advance(batch.rows, 0, batch.rejected_count)
                        continue
                    began = time.perf_counter()
                    counts = write(session.conn, batch.table)
                    if self.events is not None:
                        self.events.staged(session.conn, batch.index, batch.positions, batch.table, counts)
                    self.counts.add(counts)
                    self._measure(batch, began)
                    self.reporter.advance(batch.rows, batch.rows, 0)
            if failed:
                raise ValidationError(
                    f"{self.rejections.count} row(s) rejected; nothing was written "
                    "(error_strategy='stop'). See .errors for every row and reason, or use "
                    "error_strategy='continue' to write the valid rows.",
                )
            tail = write.finish(session.conn)  # a writer that merges later: the last counts
            if tail is not None:
                self.counts.add(tail)
            if self.rehearsal:
                session.conn.rollback()
                return
            session.conn.commit()
        except BaseException as exc:
            session.conn.rollback()
            if self.events is not None:
                self.events.discard()
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
        if self.events is not None:
            self.events.committed()  # after the books: a failed delivery keeps true counts

    def _stream(
        self,
        session: ConnectionLease,
        batches: Iterator[Prepared],
        write: Writer,
        stream: Callable[[Connection, pa.RecordBatchReader], None],
    ) -> bool:
        """Send the batches through ONE bulk call per run of equal schemas (one COPY instead
        of one per batch: measured ~20% faster, and input conversion overlaps the server's
        work).  Returns True when a batch had rejected rows (writing stopped there)."""
        head: Prepared | None = next(batches, None)
        while head is not None:
            if head.rejected is not None or head.table.num_rows == 0:
                self._seen(head)
                self.reporter.advance(head.rows, 0, head.rejected_count)
                if head.rejected is not None:
                    for rest in batches:  # check the rest too, for the full report
                        self._seen(rest)
                        self.reporter.advance(rest.rows, 0, rest.rejected_count)
                    return True
                head = next(batches, None)
                continue
            first = write.ingest_form(head.table)  # type: ignore[attr-defined]
            state: dict[str, Any] = {"next": None, "error": None, "rows": 0}

            def feed(
                batch: Prepared,
                table: pa.Table,
                state: dict[str, Any] = state,
                schema: pa.Schema = first.schema,
            ) -> Iterator[pa.RecordBatch]:
                try:
                    while True:
                        self._seen(batch)
                        began = time.perf_counter()
                        yield from table.to_batches()
                        state["rows"] += table.num_rows
                        self._measure(batch, began)
                        self.reporter.advance(batch.rows, batch.rows, 0)
                        following = next(batches, None)
                        if following is None:
                            return
                        if following.rejected is not None or following.table.num_rows == 0:
                            state["next"] = following
                            return
                        table = write.ingest_form(following.table)  # type: ignore[attr-defined]
                        if table.schema != schema:  # a new run of columns: a new bulk call
                            state["next"] = following
                            return
                        batch = following
                except BaseException as exc:  # the driver would hide it behind its own error
                    state["error"] = exc
                    raise

            reader = pa.RecordBatchReader.from_batches(first.schema, feed(head, first))
            try:
                stream(session.conn, reader)
            except BaseException:
                if state["error"] is not None:
                    raise state["error"] from None
                raise
            self.counts.add(Counts(inserted=state["rows"]))
            head = state["next"]
        return False

    # -- continue / retry_batch: a transaction per batch ---------------------------------------
    def _per_batch(
        self,
        session: ConnectionLease,
        batches: Iterable[Prepared],
        write: Writer,
        spawn: Callable[[], tuple[ConnectionLease, Writer]] | None = None,
    ) -> None:
        workers = [(session, write)]
        if self.workers > 1 and spawn is not None:
            workers += [spawn() for _ in range(self.workers - 1)]
        try:
            if len(workers) == 1:
                for batch in batches:
                    self._seen(batch)
                    self._done(batch, self._job(session, write, batch))
            else:
                self._parallel(workers, batches)
            for s, w in workers:
                w.finish(s.conn)
                s.conn.commit()
        finally:
            for s, _ in workers[1:]:
                s.conn.rollback()
                s.conn.close()

    def _parallel(self, workers: list[tuple[ConnectionLease, Writer]], batches: Iterable[Prepared]) -> None:
        free: queue.SimpleQueue[tuple[ConnectionLease, Writer]] = queue.SimpleQueue()
        for pair in workers:
            free.put(pair)
        pending: dict[Future[int], Prepared] = {}

        def job(batch: Prepared) -> int:
            pair = free.get()
            try:
                return self._job(pair[0], pair[1], batch)
            finally:
                free.put(pair)

        def settle(done: set[Future[int]]) -> None:
            for fut in done:
                batch = pending.pop(fut)
                self._done(batch, fut.result())  # re-raises a worker's error

        with ThreadPoolExecutor(len(workers), thread_name_prefix="bulkframe") as pool:
            try:
                for batch in batches:
                    self._seen(batch)
                    while len(pending) >= len(workers):
                        done, _ = wait(pending, return_when=FIRST_COMPLETED)
                        settle(done)
                    pending[pool.submit(job, batch)] = batch
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    settle(done)
            except BaseException:
                self.stopping = True
                wait(pending)
                for fut, batch in list(pending.items()):
                    if fut.exception() is None:
                        self._done(batch, fut.result(), check_limit=False)
                raise

    def _done(self, batch: Prepared, failed_here: int, *, check_limit: bool = True) -> None:
        """Book a finished batch (main thread only) and apply ``max_errors``."""
        self.result.batches_committed += 1
        self.result.committed_ranges.append((batch.offset, batch.offset + batch.rows))
        self.reporter.advance(batch.rows, batch.rows - failed_here, failed_here)
        self.result.failure_count = self.rejections.count
        limit = self.policy.max_errors
        if check_limit and limit is not None and self.rejections.count > limit:
            raise SafetyLimitError(
                f"max_errors={limit} exceeded: {self.rejections.count} rows rejected; stopped "
                f"after input row {batch.offset + batch.rows - 1}. Committed: the rows of "
                "result.committed_ranges except those in result.errors.",
            )

    def _job(self, session: ConnectionLease, write: Writer, batch: Prepared) -> int:
        """Write one batch in its own transaction(s); return how many rows it rejected."""
        if self.stopping:
            raise SafetyLimitError("stopped: another batch failed")
        if self.policy.strategy == "stop" and batch.rejected is not None:
            raise ValidationError(
                f"{batch.rejected_count} row(s) rejected in the batch at input row {batch.offset}; stopped "
                "(error_strategy='stop'). Earlier batches are committed: see result.committed_ranges.",
            )
        before = self._rejected_in(batch)
        began = time.perf_counter()
        idx = arange(batch.table.num_rows)
        if batch.exclude:
            keep = pc.invert(_in_ranges(batch.positions, batch.exclude))
            idx = pc.filter(idx, keep)
        if len(idx):
            error = self._unit(session, write, batch, idx, complete=True)
            if error is not None:
                self._bisect(session, write, batch, idx, error)
                self._mark_complete(session, batch)
        else:
            self._mark_complete(session, batch)
        self._measure(batch, began)
        return batch.rejected_count + self._rejected_in(batch) - before

    def _measure(self, batch: Prepared, began: float) -> None:
        if self.metrics is not None:
            with self.lock:
                retries = self.retries.get(batch.offset, 0)
            self.metrics.batch(
                offset=batch.offset,
                rows=batch.rows,
                seconds=time.perf_counter() - began,
                retries=retries,
                nbytes=batch.table.nbytes,
            )

    def _rejected_in(self, batch: Prepared) -> int:
        with self.lock:
            return self.db_rejected.get(batch.offset, 0)

    def _unit(
        self, session: ConnectionLease, write: Writer, batch: Prepared, idx: pa.Array, *, complete: bool
    ) -> DatabaseError | None:
        """Write rows ``idx`` of a batch and commit; a data error is returned, not raised."""
        part = batch.table if len(idx) == batch.table.num_rows else batch.table.take(idx)
        positions = batch.positions.take(idx)
        attempt = 0
        while True:
            if self.events is not None:
                self.events.discard()  # a rolled-back attempt's events never happened
            try:
                counts = write(session.conn, part)
                if self.ledger is not None:
                    self.ledger.record(
                        session.conn, batch.index, positions, batch.fingerprint, counts, complete=complete
                    )
                if self.events is not None:
                    self.events.staged(session.conn, batch.index, positions, part, counts)
                session.conn.commit()
                self._committed(batch, positions, counts, complete)
                if self.events is not None:
                    self.events.committed()  # after the books: a failed delivery keeps true counts
                return None
            except (IntegrityError, DataError) as exc:
                session.conn.rollback()
                write.reset()
                if self.policy.strategy == "stop":
                    raise
                return exc
            except TransientError as exc:
                write.reset()
                attempt += 1
                retry = self.policy.strategy == "retry_batch" and attempt <= self.policy.retries
                try:
                    session.reconnect()
                    landed = self.ledger.landed(session.conn, batch.index, positions) if self.ledger else None
                except TransientError:
                    landed = None
                    if retry:
                        time.sleep(self.policy.delay(attempt))
                        continue
                    raise
                if landed is not None:  # the COMMIT went through before the connection died
                    self._committed(batch, positions, Counts(*landed), complete)
                    if self.events is not None:
                        self.events.committed()
                    return None
                if retry:
                    delay = self.policy.delay(attempt)
                    log.warning(
                        "batch at row %d: transient error (%s); retry %d/%d in %.1fs",
                        batch.offset,
                        str(exc).splitlines()[0],
                        attempt,
                        self.policy.retries,
                        delay,
                    )
                    with self.lock:
                        self.result.metrics["retries"] = self.result.metrics.get("retries", 0) + 1
                        self.retries[batch.offset] = self.retries.get(batch.offset, 0) + 1
                    time.sleep(delay)
                    continue
                if self.policy.strategy != "continue":  # retries used up, or "stop" (resumable/parallel)
                    raise
                self._reject(batch, idx, exc)
                return None
            except DatabaseError:
                session.conn.rollback()
                write.reset()
                raise

    def _committed(self, batch: Prepared, positions: pa.Array, counts: Counts, complete: bool) -> None:
        with self.lock:
            self.counts.add(counts)
            if self.ledger is not None:
                self.ledger.note_committed(
                    batch.index, positions, batch.fingerprint, len(positions), complete=complete
                )

    def _mark_complete(self, session: ConnectionLease, batch: Prepared) -> None:
        """Record in the ledger (if any) that ``batch`` needs no more work: its rows landed
        piecewise or were all rejected."""
        if self.ledger is not None:
            self.ledger.record(
                session.conn,
                batch.index,
                pa.array([], pa.int64()),
                batch.fingerprint,
                Counts(),
                complete=True,
            )
            session.conn.commit()

    def _bisect(
        self, session: ConnectionLease, write: Writer, batch: Prepared, idx: pa.Array, exc: DatabaseError
    ) -> None:
        """Split ``idx`` (rows of ``batch.table``) until the refused rows are isolated."""
        if len(idx) == 1:
            self._reject(batch, idx, exc)
            return
        mid = len(idx) // 2
        for part in (idx[:mid], idx[mid:]):
            error = self._unit(session, write, batch, part, complete=False)
            if error is not None:
                self._bisect(session, write, batch, part, error)

    def _reject(self, batch: Prepared, idx: pa.Array, exc: BaseException) -> None:
        raw_rows = pl.Series(batch.raw_index.take(idx)).cast(pl.Int64)
        rule = getattr(exc, "sqlstate", None) or "database"
        message = str(exc).splitlines()[0]
        frame = report_rows(entries(raw_rows, "database", None, str(rule), message), batch.raw, batch.offset)
        with self.lock:
            self.rejections.add(frame)
            self.db_rejected[batch.offset] = self.db_rejected.get(batch.offset, 0) + len(idx)

    def _seen(self, batch: Prepared) -> None:
        self.result.batches += 1
        self.result.records_processed += batch.rows
        if batch.rejected is not None:
            with self.lock:
                self.rejections.add(batch.rejected)


def _in_ranges(positions: pa.Array, ranges: list[tuple[int, int]]) -> pa.Array:
    """True where a position lies in one of the inclusive ``(first, last)`` ranges."""
    mask = pa.array([False] * len(positions))
    for first, last in ranges:
        mask = pc.or_(mask, pc.and_(pc.greater_equal(positions, first), pc.less_equal(positions, last)))
    return mask
