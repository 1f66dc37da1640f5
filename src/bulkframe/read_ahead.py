"""Reading ahead: an iterator consumed while a helper thread produces its next items."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def read_ahead(batches: Iterator[Any], *, depth: int) -> Iterator[Any]:
    """``batches``, read by a background thread up to ``depth`` batches ahead of the
    consumer, so reading the next batch overlaps writing the last one (the drivers release
    the GIL).  An error in the reader is raised in the consumer; when the consumer stops
    early the reader stops too (and its generator is closed, releasing its connection)."""
    if depth < 1:
        yield from batches
        return
    import queue
    import threading

    done = object()
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        ready.put(("batch", batch), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(("done", done))
        except BaseException as exc:  # handed to the consumer
            ready.put(("error", exc))
        finally:
            close = getattr(batches, "close", None)  # a generator: run its clean-up here
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="bulkframe-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = ready.get()
            if kind == "batch":
                yield item
            elif kind == "error":
                raise item
            else:
                return
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                ready.get_nowait()
            except queue.Empty:
                worker.join(0.05)
