"""Progress reporting: a tqdm bar (terminal or notebook) or a callback for programs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bulkframe.options import ProgressOptions


@dataclass(frozen=True)
class Progress:
    """A snapshot handed to progress callbacks."""

    processed: int
    total: int | None
    succeeded: int
    failed: int
    elapsed: float
    #: ``progress_format``: what :meth:`__str__` shows
    format: str = "both"

    @property
    def rows_per_second(self) -> float:
        return self.processed / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def fraction(self) -> float | None:
        return self.processed / self.total if self.total else None

    def __str__(self) -> str:
        """``"45%"``, ``"450/1,000 rows"`` or both (by ``progress_format``), with rows/s."""
        count = f"{self.processed:,}/{self.total:,} rows" if self.total else f"{self.processed:,} rows"
        percent = f"{self.fraction:.0%}" if self.fraction is not None else "?%"
        shown = {"percentage": percent, "count": count}.get(self.format, f"{percent} ({count})")
        return f"{shown}, {self.rows_per_second:,.0f} rows/s, {self.failed:,} failed"


class Reporter:
    """Feeds a bar or a callback, every ``interval`` rows (default: every batch)."""

    def __init__(
        self,
        callback: bool | Callable[[Progress], Any] | None,
        *,
        total: int | None,
        interval: int | None = None,
        fmt: str = "both",
        description: str = "rows",
    ):
        ProgressOptions(callback, interval, fmt)  # type: ignore[arg-type]  # checks them
        self.total = total
        self.interval = interval
        self.fmt = fmt
        self.started = time.perf_counter()
        self.processed = self.succeeded = self.failed = 0
        self._next_call = interval or 0
        self.bar: Any = None
        self.callback: Callable[[Progress], Any] | None = None
        if callback is True:
            self.bar = _make_bar(total, fmt, description)
        elif callable(callback):
            self.callback = callback

    @classmethod
    def of(cls, options: ProgressOptions, *, total: int | None, description: str = "rows") -> Reporter:
        """The reporter an operation's :class:`~bulkframe.options.ProgressOptions` ask for."""
        return cls(
            options.progress_callback,
            total=total,
            interval=options.progress_interval,
            fmt=options.progress_format,
            description=description,
        )

    def advance(self, processed: int, succeeded: int, failed: int) -> None:
        self.processed += processed
        self.succeeded += succeeded
        self.failed += failed
        if self.interval is not None and self.processed < self._next_call:
            return
        if self.interval:
            while self._next_call <= self.processed:
                self._next_call += self.interval
        if self.bar is not None:
            self.bar.update(self.processed - self.bar.n)
        if self.callback is not None:
            self.callback(self.snapshot())

    def snapshot(self) -> Progress:
        return Progress(
            self.processed,
            self.total,
            self.succeeded,
            self.failed,
            time.perf_counter() - self.started,
            self.fmt,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.update(self.processed - self.bar.n)
            self.bar.close()
            self.bar = None


def _make_bar(total: int | None, fmt: str, description: str) -> Any:
    from tqdm.auto import tqdm

    if fmt == "count":
        bar_format = "{desc}: {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"
    elif fmt == "percentage":
        bar_format = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}, {rate_fmt}]"
    else:
        bar_format = None
    return tqdm(total=total, unit=" rows", unit_scale=True, desc=description, bar_format=bar_format)
