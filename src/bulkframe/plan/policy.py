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
