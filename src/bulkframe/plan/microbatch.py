"""Running an operation over an unbounded stream.

The operation (normalize → rules → executor, one commit per micro-batch) runs in a writer
thread; the calling thread only waits.  So a Ctrl-C lands in the waiting thread, never in
a database call: it ends the stream (no more rows are accepted), the rows already accepted
are written and committed, and then ``KeyboardInterrupt`` is raised in the caller with the
result (exact counts of what committed) as ``.result`` — the library's contract for
Ctrl-C, kept for streams.  A second Ctrl-C while the last rows are written is ignored
with a log line: the flush is short and bounded by ``stream_buffer_size``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bulkframe.plan.run import attach

if TYPE_CHECKING:
    from bulkframe.normalize.streams import RowStream
    from bulkframe.result import BulkResult

log = logging.getLogger("bulkframe")


def run_stream(work: Callable[[], BulkResult], stream: RowStream) -> BulkResult:
    """Run ``work`` (the operation over ``stream``) in a writer thread; see the module doc.

    Raises
    ------
    KeyboardInterrupt
        After the accepted rows were committed, when Ctrl-C ended the stream (in the
        caller, or raised by the source itself); ``.result`` holds the counts.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:
            box["error"] = exc
        finally:
            # a writer that failed ends the stream too: the source is released (a generator
            # is closed) instead of waiting forever on a full buffer
            stream.buffer.end("aborted")
            done.set()

    writer = threading.Thread(target=target, name="bulkframe-stream-writer", daemon=True)
    writer.start()
    # an Event, not Thread.join: a KeyboardInterrupt inside join() can leave the thread
    # looking finished while it still runs
    while not done.is_set():
        try:
            done.wait(0.1)
        except KeyboardInterrupt:
            if stream.buffer.ended_by == "interrupted":
                log.warning("Ctrl-C again: still committing the rows the stream accepted")
            else:
                log.warning("Ctrl-C: the stream accepts no more rows; committing what it accepted")
            stream.interrupt()
    if "error" in box:
        raise box["error"]
    result: BulkResult = box["result"]
    result.metrics["stream"] = stream.report()
    if stream.buffer.ended_by == "interrupted":
        interrupt = KeyboardInterrupt()
        attach(interrupt, result)
        raise interrupt
    return result
