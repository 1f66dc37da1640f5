"""``read_ahead``: the background reader of ``copy`` (batches) and of ``load``'s direct
path (blocks of the file) hands on every item in order,
raises the reader's error in the consumer, and stops (closing its source) when the
consumer stops early."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bulkframe.read_ahead import read_ahead


def test_order_errors_and_early_stop() -> None:
    assert list(read_ahead(iter(range(50)), depth=2)) == list(range(50))
    assert list(read_ahead(iter(range(5)), depth=0)) == list(range(5))

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("page 2 could not be read")

    got: list[int] = []
    with pytest.raises(ValueError, match="page 2"):
        for item in read_ahead(failing(), depth=1):
            got.append(item)
    assert got == [1]

    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.set()

    stream = read_ahead(endless(), depth=3)
    assert [next(stream) for _ in range(4)] == [0, 1, 2, 3]
    stream.close()
    assert closed.wait(5)
