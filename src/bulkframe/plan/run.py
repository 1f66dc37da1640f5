"""One call of an operation, from its first statement to its result.

Every operation (create, upsert, update, delete, nested create) keeps the same books:

- a timer, started when the call starts;
- a progress reporter (a bar or a callback, when asked for);
- the rejected rows, delivered at the end to ``failed_records_file`` / the callback;
- metrics, written to the performance report when asked for;
- the result's invariant (``records_processed == success_count + failure_count``),
  checked before the result is returned;
- on failure, the partial result attached to the raised error (``exc.result``; a
  ``ValidationError`` also gets the rejected rows as ``exc.errors``), so a caller that
  catches it can see what committed.

:class:`OperationRun` owns these; operations only say what their counts are.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from bulkframe.errors import BulkframeError, ValidationError
from bulkframe.options import ErrorPolicy, ProgressOptions
from bulkframe.plan.rejections import Rejections
from bulkframe.progress import Reporter
from bulkframe.result import BulkResult

if TYPE_CHECKING:
    from bulkframe.plan.batch import Counts
    from bulkframe.plan.metrics import Metrics

log = logging.getLogger("bulkframe")


class OperationRun:
    """The books of one operation call: its result, timer, progress, rejected rows and
    metrics.

    Parameters
    ----------
    operation : str
        ``"create"``, ``"upsert"``, ``"update"`` or ``"delete"``.
    table : str
        The target table, as messages show it.
    policy : ErrorPolicy, optional
        Where rejected rows are delivered, and at which log level they are logged.
    progress : ProgressOptions, optional
        The progress bar or callback; none when not given.
    total : int, optional
        The number of input rows, when the source knows it (the bar's 100%).
    metrics : Metrics, optional
        Per-stage metrics to report and write at the end.
    dry_run : bool
        The result reports a dry run.
    """

    def __init__(
        self,
        operation: str,
        table: str,
        *,
        policy: ErrorPolicy | None = None,
        progress: ProgressOptions | None = None,
        total: int | None = None,
        metrics: Metrics | None = None,
        dry_run: bool = False,
    ) -> None:
        self.result = BulkResult(operation, table, dry_run=dry_run)
        self.started = time.perf_counter()
        self.policy = policy or ErrorPolicy()
        self.rejections = Rejections(self.policy.log_level)
        self.reporter = Reporter.of(
            progress or ProgressOptions(), total=total, description=f"{operation} {table}"
        )
        self.metrics = metrics

    # -- counts ----------------------------------------------------------------------
    def settle(self, counts: Counts) -> None:
        """Make the result's counts say what is committed (``counts``), so they add up:
        whatever was processed and did not succeed failed."""
        result = self.result
        result.inserted, result.updated, result.skipped = counts.inserted, counts.updated, counts.skipped
        result.deduplicated = counts.deduplicated
        result.success_count = counts.total
        result.failure_count = result.records_processed - result.success_count
        result.duration_seconds = time.perf_counter() - self.started

    def report_metrics(self) -> None:
        """Put the metrics' summary on the result and write the performance report."""
        if self.metrics is None:
            return
        summary = self.metrics.summary(self.result)
        self.result.metrics.update(summary)
        self.metrics.write({**summary, **{k: v for k, v in self.result.metrics.items() if k not in summary}})

    # -- ending ----------------------------------------------------------------------
    def finish(self) -> BulkResult:
        """Close the progress report, deliver the rejected rows, check the invariants and
        return the result.

        Raises
        ------
        AssertionError
            The counts do not add up (a bug in the operation, never hidden).
        """
        self.reporter.close()
        delivered = self.rejections.deliver(
            self.policy.failed_records_file, self.policy.failed_records_callback
        )
        if delivered is not None:
            self.result.errors = delivered
        self.result.duration_seconds = time.perf_counter() - self.started
        self.result.check()
        log.info("%r", self.result)
        return self.result

    def failed(self, exc: BaseException) -> None:
        """Book a failure before ``exc`` propagates: close the progress report, deliver the
        rejected rows (a failure to deliver them never hides ``exc``), and attach the
        partial result to ``exc``."""
        self.reporter.close()
        self.result.duration_seconds = time.perf_counter() - self.started
        try:
            delivered = self.rejections.deliver(
                self.policy.failed_records_file, self.policy.failed_records_callback
            )
        except Exception:  # never hide the original error behind a failed report
            log.exception("could not deliver the rejected rows")
            delivered = self.rejections.frame()
        if delivered is not None:
            self.result.errors = delivered
        if isinstance(exc, ValidationError) and exc.errors is None:
            exc.errors = self.result.errors
        attach(exc, self.result)

    @contextmanager
    def guard(self) -> Iterator[BulkResult]:
        """``with run.guard():`` books any exception leaving the block (:meth:`failed`)
        and re-raises it."""
        try:
            yield self.result
        except BaseException as exc:
            self.failed(exc)
            raise


def attach(exc: BaseException, result: BulkResult) -> None:
    """Give a bulkframe error, or a ``KeyboardInterrupt`` (Ctrl-C, re-raised after the
    rollback), the operation's (partial) result as ``.result``."""
    if isinstance(exc, BulkframeError | KeyboardInterrupt) and getattr(exc, "result", None) is None:
        setattr(exc, "result", result)  # noqa: B010 (KeyboardInterrupt declares no such attribute)
