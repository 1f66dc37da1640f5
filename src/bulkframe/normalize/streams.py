"""Unbounded inputs: rows from a blocking iterator, an ``asyncio`` async iterator or a
``queue.Queue``, gathered into micro-batches.

A producer thread reads the source into a bounded :class:`RowBuffer` (the writer never
waits on the source, and the source never waits on the writer unless the buffer is full);
the writer takes micro-batches from it by the rules of :class:`~bulkframe.options.StreamOptions`:

- ``stream_buffer_size`` rows wait → written at once (the producer pauses while it is full);
- the oldest waiting row has waited ``max_latency`` seconds → written;
- ``process_immediately`` / ``priority="high"`` → whatever waits is written as soon as the
  writer asks (that is, as soon as the previous write finished);
- the source ended (exhausted, closed, ``stream_timeout`` seconds without a row, Ctrl-C)
  → what is left is written, then the stream ends.

A queue is closed by putting :data:`CLOSE` (or ``None``) into it, or by
``Queue.shutdown()`` on Python 3.13+.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from bulkframe.errors import SchemaError
from bulkframe.normalize.sources import Chunk, Source, records_to_table
from bulkframe.options import StreamOptions

log = logging.getLogger("bulkframe")

#: Put this (or ``None``) into a ``queue.Queue`` source to end the stream.
CLOSE = object()

#: Longest single wait of either side, so both notice an end or an interrupt promptly.
_SLICE = 0.1


def is_unbounded(data: Any) -> bool:
    """Inputs that are read as a stream even without streaming options: async iterators
    and ``queue.Queue``."""
    return isinstance(data, queue.Queue) or hasattr(data, "__anext__") or hasattr(data, "__aiter__")


def is_row_iterable(data: Any) -> bool:
    """Inputs a stream can read rows from: iterators/generators and lists of dicts."""
    if is_unbounded(data):
        return True
    if isinstance(data, (str, bytes, Mapping)):
        return False
    module = type(data).__module__.split(".")[0]
    if module in ("polars", "pandas", "pyarrow"):
        return False
    return isinstance(data, (Iterator, list, tuple))


class RowBuffer:
    """Rows accepted from the source, waiting to be written; thread-safe."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.cond = threading.Condition()
        self.rows: deque[Any] = deque()
        self.arrived: deque[float] = deque()
        self.accepted = 0
        self.taken = 0
        self.ended_by: str | None = None
        self.error: BaseException | None = None
        self.started = time.monotonic()
        self.last_arrival = self.started

    @property
    def stopped(self) -> bool:
        return self.ended_by is not None

    def put(self, row: Any) -> bool:
        """Accept one row (waits while the buffer is full); ``False`` once the stream ended
        (the row is then not accepted)."""
        with self.cond:
            while len(self.rows) >= self.capacity and self.ended_by is None:
                self.cond.wait(_SLICE)
            if self.ended_by is not None:
                return False
            now = time.monotonic()
            self.rows.append(row)
            self.arrived.append(now)
            self.accepted += 1
            self.last_arrival = now
            self.cond.notify_all()
            return True

    def end(self, reason: str, error: BaseException | None = None) -> None:
        """End the stream (the first reason wins); rows already accepted are still taken."""
        with self.cond:
            if self.ended_by is None:
                self.ended_by, self.error = reason, error
                log.info("stream ended (%s) after %d row(s)", reason, self.accepted)
            self.cond.notify_all()

    def take(self, options: StreamOptions, limit: int) -> tuple[list[Any], float] | None:
        """The next micro-batch and when its oldest row arrived (``time.monotonic()``), or
        ``None`` when the stream ended and nothing waits."""
        latency, timeout = options.max_latency, options.stream_timeout
        with self.cond:
            while True:
                now = time.monotonic()
                if timeout is not None and self.ended_by is None and now - self.last_arrival >= timeout:
                    self.ended_by = "timeout"
                    log.info("stream ended: no row for %.3gs (stream_timeout)", timeout)
                    self.cond.notify_all()
                waiting = len(self.rows)
                due = latency is not None and waiting and now - self.arrived[0] >= latency
                if waiting and (waiting >= limit or options.immediate or due or self.ended_by is not None):
                    n = min(waiting, limit)
                    oldest = self.arrived[0]
                    block = [self.rows.popleft() for _ in range(n)]
                    for _ in range(n):
                        self.arrived.popleft()
                    self.taken += n
                    self.cond.notify_all()
                    return block, oldest
                if not waiting and self.ended_by is not None:
                    return None
                wait = _SLICE
                if latency is not None and waiting:
                    wait = min(wait, self.arrived[0] + latency - now)
                if timeout is not None and self.ended_by is None:
                    wait = min(wait, self.last_arrival + timeout - now)
                self.cond.wait(max(wait, 0.0))


class RowStream:
    """An unbounded source: a producer thread feeding a :class:`RowBuffer`."""

    def __init__(self, data: Any, options: StreamOptions, batch_size: int):
        self.data = data
        self.options = options
        self.buffer = RowBuffer(options.stream_buffer_size or batch_size)
        self.thread: threading.Thread | None = None
        #: micro-batches taken, and (for events/metrics) when each one's oldest row arrived
        self.micro_batches = 0
        self.oldest_arrival: dict[int, float] = {}
        self.description = _describe(data)

    # -- the producer ------------------------------------------------------------------
    def start(self) -> None:
        if self.thread is not None:
            raise SchemaError(f"the {self.description} was already consumed")
        self.buffer.started = self.buffer.last_arrival = time.monotonic()  # timeouts count from here
        target = self._pump_queue if isinstance(self.data, queue.Queue) else self._pump
        self.thread = threading.Thread(target=target, name="bulkframe-stream-source", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        try:
            if hasattr(self.data, "__anext__") or hasattr(self.data, "__aiter__"):
                asyncio.run(self._pump_async())
            else:
                self._pump_iter(iter(self.data))
            self.buffer.end("exhausted")
        except KeyboardInterrupt:
            self.buffer.end("interrupted")
        except BaseException as exc:
            self.buffer.end("error", exc)

    def _pump_iter(self, rows: Iterator[Any]) -> None:
        for row in rows:
            if not self.buffer.put(row):
                break
        close = getattr(rows, "close", None)
        if self.buffer.stopped and close is not None:
            close()  # a generator's finally blocks run (its resources are released)

    async def _pump_async(self) -> None:
        source = self.data.__aiter__() if hasattr(self.data, "__aiter__") else self.data
        loop = asyncio.get_running_loop()
        async for row in source:
            # a full buffer must not block the loop the source may need: wait in a thread
            full = len(self.buffer.rows) >= self.buffer.capacity
            accepted = (
                await loop.run_in_executor(None, self.buffer.put, row) if full else self.buffer.put(row)
            )
            if not accepted:
                break
        aclose = getattr(source, "aclose", None)
        if self.buffer.stopped and aclose is not None:
            await aclose()

    def _pump_queue(self) -> None:
        q: queue.Queue[Any] = self.data
        shutdown = getattr(queue, "ShutDown", None)  # Python 3.13+
        try:
            while not self.buffer.stopped:
                try:
                    item = q.get(timeout=_SLICE)
                except queue.Empty:
                    continue
                except Exception as exc:
                    if shutdown is not None and isinstance(exc, shutdown):
                        self.buffer.end("closed")
                        return
                    raise
                if item is CLOSE or item is None:
                    self.buffer.end("closed")
                    return
                if not self.buffer.put(item):
                    return
        except BaseException as exc:
            self.buffer.end("error", exc)

    # -- the writer's side ---------------------------------------------------------------
    def interrupt(self) -> None:
        """Ctrl-C: accept no more rows; what was accepted is still written."""
        self.buffer.end("interrupted")

    def blocks(self) -> Iterator[tuple[list[Any], float]]:
        """Micro-batches (rows, arrival of the oldest) until the stream ends."""
        limit = self.options.stream_buffer_size or self.buffer.capacity
        while (taken := self.buffer.take(self.options, limit)) is not None:
            yield taken
        if self.buffer.error is not None:
            raise self.buffer.error

    def chunks(self, batch_size: int, hints: Collection[str] | Mapping[str, Any]) -> Iterator[Chunk]:
        """Chunks of at most ``batch_size`` rows, numbered in order (``Chunk.index``)."""
        self.start()
        offset = 0
        for rows, oldest in self.blocks():
            for start in range(0, len(rows), batch_size):
                part = rows[start : start + batch_size]
                self.oldest_arrival[self.micro_batches] = oldest
                yield Chunk(records_to_table(part, hints, offset), offset, index=self.micro_batches)
                self.micro_batches += 1
                offset += len(part)

    def source(self) -> Source:
        return Source(None, self.chunks, self.description)

    def report(self) -> dict[str, Any]:
        """What ``result.metrics["stream"]`` says."""
        return {
            "accepted": self.buffer.accepted,
            "written": self.buffer.taken,
            "micro_batches": self.micro_batches,
            "ended_by": self.buffer.ended_by,
        }


def _describe(data: Any) -> str:
    if isinstance(data, queue.Queue):
        return "queue.Queue stream"
    if hasattr(data, "__anext__") or hasattr(data, "__aiter__"):
        return "async iterator stream"
    return f"{type(data).__name__} stream"


def open_stream(data: Any, options: StreamOptions, batch_size: int) -> RowStream:
    """A :class:`RowStream` over ``data``; refuse inputs that are not rows one by one."""
    if not is_row_iterable(data):
        raise SchemaError(
            f"stream options (stream_buffer_size, stream_timeout, process_immediately, max_latency, "
            f"priority) read rows one by one from an iterator/generator, an async iterator or a "
            f"queue.Queue; a {type(data).__name__} is not such a source (it is loaded in batch_size "
            "batches without them)"
        )
    return RowStream(data, options, batch_size)
