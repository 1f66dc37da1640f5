"""Error strategy options, checked once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bulkframe.errors import InvalidOptionValueError, check_choice

STRATEGIES = ("stop", "continue", "retry_batch")
BACKOFFS = ("exponential", "linear", "constant")


@dataclass(frozen=True)
class ErrorPolicy:
    """How an operation treats rejected rows and failed batches.

    ``strategy``:

    - ``"stop"`` (default): one transaction for the call; any rejected row raises
      ``ValidationError`` with the full report and nothing is written.
    - ``"continue"``: each batch commits on its own; rejected rows are reported and every
      other row lands.  A batch the database refuses is split until the offending rows
      are isolated.
    - ``"retry_batch"``: like ``"continue"``, and batches failing with a transient error
      (connection lost, serialization failure, deadlock, lock timeout) are retried
      ``max_retries`` times, ``retry_delay`` seconds apart, growing by ``retry_backoff``.
    """

    strategy: str = "stop"
    max_errors: int | None = None
    max_retries: int = 3
    retry_delay: float = 1.0
    retry_backoff: str = "exponential"
    failed_records_file: str | None = None
    failed_records_callback: Callable[[Any], Any] | None = None
    error_log_level: int = logging.WARNING

    def __post_init__(self) -> None:
        check_choice("error_strategy", self.strategy, STRATEGIES)
        check_choice("retry_backoff", self.retry_backoff, BACKOFFS)
        if self.max_errors is not None and (not isinstance(self.max_errors, int) or self.max_errors < 0):
            raise InvalidOptionValueError(f"max_errors must be a non-negative int or None, got {self.max_errors!r}")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise InvalidOptionValueError(f"max_retries must be a non-negative int, got {self.max_retries!r}")
        if not isinstance(self.retry_delay, (int, float)) or self.retry_delay < 0:
            raise InvalidOptionValueError(f"retry_delay must be a non-negative number, got {self.retry_delay!r}")
        if self.failed_records_callback is not None and not callable(self.failed_records_callback):
            raise InvalidOptionValueError(
                "failed_records_callback must be a callable receiving a Polars DataFrame, "
                f"got {self.failed_records_callback!r}"
            )
        if self.failed_records_file is not None:
            from bulkframe.plan.rejections import writer_for

            writer_for(str(self.failed_records_file))  # refuse an unknown extension up front

    @property
    def per_batch(self) -> bool:
        """Batches commit independently."""
        return self.strategy != "stop"

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        if self.retry_backoff == "exponential":
            return float(self.retry_delay * 2 ** (attempt - 1))
        if self.retry_backoff == "linear":
            return float(self.retry_delay * attempt)
        return float(self.retry_delay)


def log_level(value: str | int | None) -> int:
    """``"warning"`` / ``"INFO"`` / ``logging.DEBUG`` → a logging level."""
    if value is None:
        return logging.WARNING
    if isinstance(value, int):
        return value
    levels = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
              "error": logging.ERROR, "critical": logging.CRITICAL}
    check_choice("error_log_level", str(value).lower(), tuple(levels))
    return levels[str(value).lower()]


@dataclass(frozen=True)
class RunOptions:
    """Parallelism, resumability and cleanup of one operation.

    - ``workers``: batches written concurrently, each writer on its own connection
      (``parallel_batches`` / ``max_workers``).  Needs a backend with concurrent writers.
    - ``resumable`` / ``checkpoint_file`` / ``checkpoint_interval``: keep a ledger of
      committed batches in the target database (same transaction as each batch), mirrored
      to ``checkpoint_file`` every ``checkpoint_interval`` rows; a rerun resumes after the
      last committed batch.
    - ``auto_cleanup``: after success, forget the ledger rows and delete the checkpoint
      file (``False`` keeps both for auditing).
    - ``connections`` (``connection_pool_size``): most pooled connections the call may
      hold at once; at least ``workers``, at most the Database pool's capacity.
    - ``cleanup_connections``: close the call's connection after the call instead of
      returning it to the Database's pool for the next call.
    """

    workers: int = 1
    connections: int | None = None
    resumable: bool = False
    checkpoint_file: str | None = None
    checkpoint_interval: int | None = None
    auto_cleanup: bool = True
    cleanup_connections: bool = False

    @property
    def per_batch_commits(self) -> bool:
        return self.workers > 1 or self.resumable


def run_options(
    *, parallel_batches: int | None, max_workers: int | None, connection_pool_size: int | None,
    load_balancing: str | None, resumable: bool, checkpoint_file: str | None,
    checkpoint_interval: int | None, auto_cleanup: bool, cleanup_on_failure: bool,
    cleanup_temp_files: bool, cleanup_connections: bool,
) -> RunOptions:
    """Check the plan options together; refuse combinations that cannot be honoured."""
    for name, value in (("parallel_batches", parallel_batches), ("max_workers", max_workers),
                        ("connection_pool_size", connection_pool_size),
                        ("checkpoint_interval", checkpoint_interval)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise InvalidOptionValueError(f"{name} must be a positive int, got {value!r}")
    workers = min(parallel_batches or 1, max_workers or parallel_batches or 1)
    if max_workers and not parallel_batches:
        workers = max_workers
    if connection_pool_size is not None and connection_pool_size < workers:
        raise InvalidOptionValueError(
            f"connection_pool_size={connection_pool_size} is smaller than the {workers} concurrent "
            "writers (one connection each); raise it or lower parallel_batches/max_workers"
        )
    if load_balancing is not None:
        check_choice("load_balancing", load_balancing, ("round_robin",))
    if not resumable and (checkpoint_file is not None or checkpoint_interval is not None):
        raise InvalidOptionValueError("checkpoint_file and checkpoint_interval need resumable=True")
    if resumable and checkpoint_file is None:
        raise InvalidOptionValueError(
            "resumable=True needs checkpoint_file=... (it names the run, so a rerun can find it)"
        )
    if not cleanup_on_failure:
        raise InvalidOptionValueError(
            "cleanup_on_failure=False is not supported: staging tables are session-private and "
            "vanish with the rolled-back transaction; the ledger of a resumable load is always kept "
            "after a failure so the load can resume"
        )
    if not cleanup_temp_files:
        raise InvalidOptionValueError(
            "cleanup_temp_files=False is not supported: the PostgreSQL and SQLite paths write no "
            "temporary files, so there is nothing to keep"
        )
    return RunOptions(workers=workers, connections=connection_pool_size, resumable=bool(resumable), checkpoint_file=checkpoint_file,
                      checkpoint_interval=checkpoint_interval, auto_cleanup=bool(auto_cleanup),
                      cleanup_connections=bool(cleanup_connections))
