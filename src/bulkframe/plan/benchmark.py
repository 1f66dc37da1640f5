"""Benchmark mode: time an operation on the real target without multiplying its data.

A warm-up run writes the input's first ``benchmark_warmup`` rows, then
``benchmark_iterations`` timed runs write the whole input — each in ONE transaction that
is rolled back at the end (DDL included: a table the run creates is rolled back too) —
and then the real write runs once.  The table ends with exactly the input's rows.

Per run, :class:`StageClock` splits the time into stages:

- ``normalize``: reading the source and converting it to Arrow batches;
- ``rules``: casting to the table's types, transformation and validation rules;
- ``send``: client CPU inside the database calls (conversion to the wire format, the
  driver's work), measured with ``time.thread_time``;
- ``server``: the rest of the database calls' wall time — the database working and the
  network.  The timed runs roll back, so COMMIT (WAL flush) is not in it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa

from bulkframe.errors import InvalidOptionValueError
from bulkframe.options import BenchmarkOptions

if TYPE_CHECKING:
    from bulkframe.backends.connection import Connection
    from bulkframe.plan.batch import Counts
    from bulkframe.result import BulkResult

T = TypeVar("T")
STAGES = ("normalize", "rules", "send", "server")


@dataclass
class StageClock:
    """Seconds per stage of one run (see the module doc)."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    created_table: bool = False

    def iterate(self, stage: str, items: Iterator[T]) -> Iterator[T]:
        """``items``, with the time spent producing each booked to ``stage``."""
        while True:
            began = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                self.seconds[stage] += time.perf_counter() - began
                return
            self.seconds[stage] += time.perf_counter() - began
            yield item

    def wrap(self, stage: str, fn: Callable[..., T]) -> Callable[..., T]:
        """``fn``, with its calls booked to ``stage``."""

        def timed(*args: Any, **kwargs: Any) -> T:
            began = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - began

        return timed

    def database(self, fn: Callable[[], T]) -> T:
        """Run a database call; split its time into ``send`` and ``server``.  Time booked
        meanwhile to ``normalize``/``rules`` (batches pulled lazily by a streaming COPY)
        is not counted twice."""
        nested0 = self.seconds["normalize"] + self.seconds["rules"]
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        try:
            return fn()
        finally:
            nested = self.seconds["normalize"] + self.seconds["rules"] - nested0
            wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
            self.seconds["send"] += max(cpu - nested, 0.0)
            self.seconds["server"] += max(wall - max(cpu, nested), 0.0)

    def writer(self, inner: Any) -> TimedWriter:
        return TimedWriter(inner, self)


class TimedWriter:
    """An operation's writer whose database calls are timed by a :class:`StageClock`."""

    def __init__(self, inner: Any, clock: StageClock):
        self.inner, self.clock = inner, clock

    def __call__(self, conn: Connection, table: pa.Table) -> Counts:
        return self.clock.database(lambda: self.inner(conn, table))  # type: ignore[no-any-return]

    @property
    def stream(self) -> Callable[[Connection, pa.RecordBatchReader], None] | None:
        stream = getattr(self.inner, "stream", None)
        if stream is None:
            return None

        def timed(conn: Connection, reader: pa.RecordBatchReader) -> None:
            self.clock.database(lambda: stream(conn, reader))

        return timed

    def ingest_form(self, table: pa.Table) -> pa.Table:
        return self.inner.ingest_form(table)

    def reset(self) -> None:
        self.inner.reset()

    def finish(self, conn: Connection) -> Counts | None:
        return self.clock.database(lambda: self.inner.finish(conn))  # type: ignore[no-any-return]


def summarize(runs: list[dict[str, Any]], options: BenchmarkOptions) -> dict[str, Any]:
    """``result.metrics["benchmark"]``: min/median/max rows per second and median stage times."""
    rates = [r["rows_per_second"] for r in runs]
    return {
        "iterations": options.benchmark_iterations,
        "warmup_rows": options.benchmark_warmup,
        "rows": runs[0]["rows"] if runs else 0,
        "rows_per_second": {
            "min": min(rates),
            "median": statistics.median(rates),
            "max": max(rates),
        },
        "stage_seconds": {stage: statistics.median(r["stages"][stage] for r in runs) for stage in STAGES},
        "runs": runs,
        "rolled_back": True,
    }


def benchmarked(
    run: Callable[[StageClock | None, int | None, dict[str, Any] | None], BulkResult],
    options: BenchmarkOptions,
    *,
    replayable: bool,
) -> BulkResult:
    """Warm up, time ``benchmark_iterations`` rolled-back runs, then write once.

    ``run(clock, rehearsal, preset)``: ``rehearsal`` is the rows to write and roll back
    (``-1``: all), ``None`` for the real write; ``preset`` goes into its ``result.metrics``
    before its metrics are written.

    Raises
    ------
    InvalidOptionValueError
        The input can be read only once.
    """
    if not replayable:
        raise InvalidOptionValueError(
            "benchmark_mode reads the input once per run; this input can be read only once. Pass a list, "
            "a DataFrame, an Arrow table or a file path"
        )
    if options.benchmark_warmup:
        run(None, options.benchmark_warmup, None)
    runs: list[dict[str, Any]] = []
    for _ in range(options.benchmark_iterations):
        clock = StageClock()
        began = time.perf_counter()
        rehearsed = run(clock, -1, None)
        seconds = time.perf_counter() - began
        runs.append(
            {
                "rows": rehearsed.records_processed,
                "seconds": round(seconds, 6),
                "rows_per_second": rehearsed.records_processed / seconds if seconds else 0.0,
                "stages": {k: round(v, 6) for k, v in clock.seconds.items()},
            }
        )
    return run(None, None, {"benchmark": summarize(runs, options)})
