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
