"""The report of rejected rows: one row per rejected input row, with every reason.

Columns: ``row`` (input position), ``stage`` (``"cast"``, ``"validation"``,
``"database"``), ``error`` (all reasons in one line), ``violations`` (a list of
``{field, rule, value, message}``) and ``record`` (the row's input values as a struct).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from bulkframe.options import failed_records_format
from bulkframe.plan.spill import SPILL_BYTES, Spill

log = logging.getLogger("bulkframe.rejections")

VIOLATION = pl.Struct({"field": pl.String, "rule": pl.String, "value": pl.String, "message": pl.String})


def plain_record(raw: pa.Table) -> pl.DataFrame:
    """The input rows as Polars (extension types reduced to their storage)."""
    arrays = []
    for col in raw.columns:
        if isinstance(col.type, pa.BaseExtensionType):
            col = pa.chunked_array([c.storage for c in col.chunks], col.type.storage_type)
        arrays.append(col)
    frame = pl.from_arrow(pa.table(arrays, names=raw.column_names))
    assert isinstance(frame, pl.DataFrame)
    return frame


def report_rows(long: pl.DataFrame, raw: pa.Table, offset: int) -> pl.DataFrame:
    """Group per-violation entries into one report row per rejected input row.

    ``long`` has ``row`` (index into ``raw``), ``stage`` and ``violation`` (a struct of
    field, rule, value, message); ``offset`` turns indices into input positions.
    """
    grouped = (
        long.group_by("row", maintain_order=True)
        .agg(pl.col("stage").first(), pl.col("violation").alias("violations"))
        .sort("row")
    )
    record = plain_record(raw.take(pa.array(grouped["row"].to_list(), pa.int64())))
    out = grouped.select(
        (pl.col("row") + offset).cast(pl.Int64),
        "stage",
        pl.col("violations").list.eval(pl.element().struct.field("message")).list.join("; ").alias("error"),
        pl.col("violations").cast(pl.List(VIOLATION)),
    )
    return out.with_columns(record=record.to_struct()) if record.width else out


def entries(
    rows: pl.Series,
    stage: str,
    field: str | None,
    rule: str,
    message: pl.Series | str,
    value: pl.Series | None = None,
) -> pl.DataFrame:
    """Per-violation entries for :func:`report_rows` (vectorised; no row loop)."""
    n = rows.len()
    msg = message if isinstance(message, pl.Series) else pl.Series([message] * n, dtype=pl.String)
    val = value if value is not None else pl.Series([None] * n, dtype=pl.String)
    return pl.DataFrame({"row": rows.cast(pl.Int64), "stage": [stage] * n}).with_columns(
        violation=pl.struct(
            field=pl.lit(field, pl.String), rule=pl.lit(rule), value=val.cast(pl.String), message=msg
        )
    )


class Rejections:
    """Collects rejected rows across batches and hands them out once at the end."""

    def __init__(
        self,
        level: int = logging.WARNING,
        *,
        spill: Spill | None = None,
        spill_bytes: int = SPILL_BYTES,
        compression: str | None = None,
    ):
        self.frames: list[pl.DataFrame] = []
        self.count = 0
        self.level = level
        #: with ``spill_to_disk``: frames beyond ``spill_bytes`` in memory go to Arrow IPC files
        self.spill = spill
        self.spill_bytes = spill_bytes
        #: Parquet codec of ``failed_records_file`` (``compression``)
        self.compression = compression
        self._held = 0

    def add(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        self.frames.append(frame)
        self.count += frame.height
        self._held += int(frame.estimated_size())
        if self.spill is not None and self._held > self.spill_bytes:
            self.spill.write(pl.concat(self.frames, how="diagonal_relaxed"))
            self.frames, self._held = [], 0
        first = frame.row(0, named=True)
        log.log(
            self.level,
            "%d row(s) rejected at %s stage; first: row %s: %s",
            frame.height,
            first["stage"],
            first["row"],
            first["error"],
        )

    def frame(self) -> pl.DataFrame | None:
        frames = [*(self.spill.read() if self.spill is not None else []), *self.frames]
        if not frames:
            return None
        return pl.concat(frames, how="diagonal_relaxed").sort("row")

    def deliver(
        self, path: str | None, callback: Callable[[pl.DataFrame], Any] | None
    ) -> pl.DataFrame | None:
        """Write the report file and call the callback (only when rows were rejected); the
        spill files are removed afterwards."""
        try:
            frame = self.frame()
        finally:
            self.close()
        if frame is None:
            return None
        if path:
            if self.compression and Path(path).suffix.lower() == ".parquet":
                frame.write_parquet(Path(path), compression=self.compression)  # type: ignore[arg-type]
            else:
                writer_for(path)(frame, Path(path))
            log.info("wrote %d rejected rows to %s", frame.height, path)
        if callback is not None:
            callback(frame)
        return frame

    def close(self) -> None:
        """Remove the spill files (after :meth:`deliver`)."""
        if self.spill is not None:
            self.spill.close()


def _flat(frame: pl.DataFrame) -> pl.DataFrame:
    """Nested columns as JSON text, for CSV."""
    violations = pl.col("violations").list.eval(pl.element().struct.json_encode()).list.join(",")
    flat = [pl.concat_str([pl.lit("["), violations, pl.lit("]")]).alias("violations")]
    if "record" in frame.columns:
        flat.append(pl.col("record").struct.json_encode())
    return frame.with_columns(flat)


def writer_for(path: str) -> Callable[[pl.DataFrame, Path], None]:
    suffix = failed_records_format(path)
    writers: dict[str, Callable[[pl.DataFrame, Path], None]] = {
        ".jsonl": lambda f, p: f.write_ndjson(p),
        ".ndjson": lambda f, p: f.write_ndjson(p),
        ".json": lambda f, p: f.write_json(p),
        ".csv": lambda f, p: _flat(f).write_csv(p),
        ".parquet": lambda f, p: f.write_parquet(p),
    }
    return writers[suffix]
