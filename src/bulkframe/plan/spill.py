"""Spilling to disk (``spill_to_disk``): Arrow IPC files in a temporary directory that is
always removed, compressed with ``compression`` (zstd or lz4)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

    from bulkframe.options import Compression

log = logging.getLogger("bulkframe")

#: Bytes a stage holds in memory before ``spill_to_disk`` writes it out (without
#: ``memory_limit``; with it, 1/16 of the limit).
SPILL_BYTES = 16 * 1024 * 1024


def spill_threshold(limit_bytes: int | None) -> int:
    """Bytes a spilling stage may hold in memory under ``memory_limit`` (or by default)."""
    return SPILL_BYTES if limit_bytes is None else max(limit_bytes // 16, 1)


class Spill:
    """A temporary directory of Arrow IPC files; :meth:`close` removes it (idempotent)."""

    def __init__(self, codec: Compression | None, prefix: str = "bulkframe-spill-"):
        self.codec = codec
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.files: list[Path] = []
        self.bytes = 0
        # removed on close(), and at the latest when this object goes away or the process exits
        self._remove = weakref.finalize(self, shutil.rmtree, str(self.dir), True)

    def write(self, frame: pl.DataFrame) -> Path:
        path = self.dir / f"{len(self.files):06d}.arrow"
        frame.write_ipc(path, compression=self.codec or "uncompressed")
        self.files.append(path)
        self.bytes += path.stat().st_size
        log.debug("spilled %d row(s) to %s (%d bytes)", frame.height, path, path.stat().st_size)
        return path

    def read(self) -> list[pl.DataFrame]:
        import polars as pl

        return [pl.read_ipc(p.read_bytes()) for p in self.files]  # no mapping of files about to go

    def close(self) -> None:
        self._remove()
        self.files = []

    def __enter__(self) -> Spill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SeenKeys:
    """The keys of earlier batches (an upsert's ``dedupe="first"``/``"error"`` across
    batches); with a :class:`Spill`, they go to disk beyond ``threshold`` bytes and are
    joined from there (Polars scans the IPC files)."""

    def __init__(self, keys: list[str], spill: Spill | None = None, threshold: int = SPILL_BYTES):
        self.keys = keys
        self.spill = spill
        self.threshold = threshold
        self.frames: list[pl.DataFrame] = []
        self._held = 0

    def hits(self, frame: pl.DataFrame) -> list[int]:
        """Row numbers of ``frame`` (key columns) whose key an earlier batch had."""
        import polars as pl

        indexed = frame.with_row_index("__bf_i")
        found: set[int] = set()
        for seen in self.frames:
            found.update(indexed.join(seen, on=self.keys, how="semi")["__bf_i"].to_list())
        for path in self.spill.files if self.spill is not None else []:
            joined = indexed.lazy().join(pl.scan_ipc(path), on=self.keys, how="semi").collect()
            found.update(joined["__bf_i"].to_list())
        return sorted(found)

    def add(self, frame: pl.DataFrame) -> None:
        import polars as pl

        self.frames.append(frame)
        self._held += int(frame.estimated_size())
        if self.spill is not None and self._held > self.threshold:
            self.spill.write(pl.concat(self.frames))
            self.frames, self._held = [], 0

    def close(self) -> None:
        if self.spill is not None:
            self.spill.close()
