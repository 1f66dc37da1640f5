"""Keeping an operation's memory under ``memory_limit`` (and ``gc_interval``).

The limit bounds the process's resident memory as the kernel counts it — the interpreter
and its imports included, which is what a container limit sees.  So the budget for data
is the limit less what the process holds when the load starts, less a margin:

- the source is read in small units; the bytes per row of the first unit (Arrow
  ``nbytes``) are measured, and units are gathered into batches of
  ``budget / (bytes per row × copies per batch × batches in flight)`` rows (at most
  ``batch_size``).  *Copies per batch*: the read chunk, its cast to the table's types,
  the driver's wire form and headroom (:data:`COPIES`); *in flight*: every writer (``parallel_batches``)
  plus the one being prepared;
- after every batch the resident size is read; when it is above :data:`HIGH_WATER` of the
  limit and higher than ever before in the load, the batch size halves (not below
  :data:`MIN_ROWS`), and the garbage collector and Arrow's memory pool give memory back.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from bulkframe.errors import InvalidOptionValueError, MissingDependencyError
from bulkframe.normalize.sources import Chunk
from bulkframe.options import MemoryOptions

log = logging.getLogger("bulkframe")

#: Rows read from the source at a time before batches are sized.
UNIT_ROWS = 4096
#: Copies of a batch alive at once while it is prepared and sent (read, cast, wire form,
#: and headroom for what the allocator keeps): measured peaks sit near 4-5.
COPIES = 6
#: Batches never shrink below this many rows (smaller ones cost more than they save).
MIN_ROWS = 1024
#: Share of the limit above which batches shrink.
HIGH_WATER = 0.85
#: Share of the limit kept free for everything not counted per batch.
MARGIN = 0.10


def resident_bytes() -> int:
    """The process's resident set size now (psutil)."""
    try:
        import psutil
    except ImportError as exc:  # pragma: no cover - psutil ships with the test and memory extras
        raise MissingDependencyError(
            "memory_limit needs psutil to read the resident memory. Install with: pip install 'bulkframe[memory]'"
        ) from exc
    return int(psutil.Process().memory_info().rss)


@dataclass
class MemoryGovernor:
    """Sizes batches for ``memory_limit`` and runs ``gc_interval``; see the module doc."""

    options: MemoryOptions
    workers: int
    batch_size: int
    #: gather units into sized batches (off for streams: their micro-batches are cut by time)
    resize: bool = True
    baseline: int = 0
    target: int = 0
    bytes_per_row: float = 0.0
    batches: int = 0
    shrinks: int = 0
    peak_seen: int = 0
    sizes: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        limit = self.options.limit_bytes
        if limit is not None:
            self.baseline = resident_bytes()
            if self.budget <= 0:
                raise InvalidOptionValueError(
                    f"memory_limit={self.options.memory_limit!r} ({limit:,} bytes) leaves no room for data: "
                    f"the process already holds {self.baseline:,} bytes (interpreter and libraries); "
                    "raise the limit"
                )
        self.target = self.batch_size

    @property
    def limit(self) -> int | None:
        return self.options.limit_bytes

    @property
    def budget(self) -> int:
        limit = self.limit or 0
        return int(limit * (1 - MARGIN)) - self.baseline

    @property
    def read_rows(self) -> int:
        """Rows to read from the source at a time."""
        return min(self.batch_size, UNIT_ROWS) if self.limit is not None and self.resize else self.batch_size

    def chunks(self, units: Iterator[Chunk]) -> Iterator[Chunk]:
        """``units`` (small chunks) gathered into batches that fit the budget."""
        if self.limit is None or not self.resize:
            for chunk in units:
                yield chunk
                self.after_batch()
            return
        pending: list[Chunk] = []
        rows = 0
        for unit in units:
            if not self.bytes_per_row and unit.table.num_rows:
                self.bytes_per_row = max(unit.table.nbytes / unit.table.num_rows, 1.0)
                in_flight = self.workers + 1
                fit = int(self.budget / (self.bytes_per_row * COPIES * in_flight))
                self.target = max(min(self.batch_size, fit), 1)
                log.info(
                    "memory_limit: %.0f bytes/row, %d row(s) per batch (%d in flight, budget %d bytes)",
                    self.bytes_per_row,
                    self.target,
                    in_flight,
                    self.budget,
                )
            pending.append(unit)
            rows += unit.table.num_rows
            while rows >= self.target:
                yield dataclasses.replace(self._take(pending, self.target), index=self.batches)
                rows = sum(c.table.num_rows for c in pending)
                self.after_batch()
        if rows:
            yield dataclasses.replace(self._take(pending, rows), index=self.batches)
            self.after_batch()

    @staticmethod
    def _take(pending: list[Chunk], n: int) -> Chunk:
        """The first ``n`` rows of ``pending`` as one chunk (the rest stays in ``pending``)."""
        first = pending[0]
        tables: list[pa.Table] = []
        left = n
        while left:
            head = pending[0]
            if head.table.num_rows <= left:
                tables.append(head.table)
                left -= head.table.num_rows
                pending.pop(0)
            else:
                tables.append(head.table.slice(0, left))
                pending[0] = Chunk(head.table.slice(left), head.offset + left, head.where)
                left = 0
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
        return Chunk(table, first.offset, first.where)

    def after_batch(self) -> None:
        """Book one batch: run ``gc_interval``; under a limit, shrink when RSS nears it."""
        self.batches += 1
        self.sizes.append(self.target)
        interval = self.options.gc_interval
        if interval and self.batches % interval == 0:
            gc.collect()
        if self.limit is None:
            return
        rss = resident_bytes()
        # shrink when the resident size is near the limit AND still growing: memory the
        # allocator keeps after a batch (and does not give back) does not shrink batches
        # again and again
        growing = rss > self.peak_seen
        self.peak_seen = max(self.peak_seen, rss)
        if rss > HIGH_WATER * self.limit and growing and self.target > MIN_ROWS:
            self.target = max(self.target // 2, MIN_ROWS)
            self.shrinks += 1
            gc.collect()
            pa.default_memory_pool().release_unused()
            log.info(
                "memory_limit: resident %d bytes near the limit; batches shrink to %d rows", rss, self.target
            )

    def report(self) -> dict[str, Any]:
        """What ``result.metrics["memory"]`` says."""
        out: dict[str, Any] = {"batches": self.batches, "gc_interval": self.options.gc_interval}
        if self.limit is not None:
            out.update(
                limit_bytes=self.limit,
                baseline_rss_bytes=self.baseline,
                bytes_per_row=round(self.bytes_per_row, 1),
                rows_per_batch=self.target,
                shrinks=self.shrinks,
                peak_rss_seen_bytes=self.peak_seen,
            )
        return out
