"""Full two-way verification by key-range hashes and bisection.

1. Both sides report their key bounds and row counts.
2. The key space ``[low, high]`` is cut into buckets of a power-of-two width, about
   ``leaf_size / 2`` rows each; each side reports per bucket its row count and the sums of
   its rows' hash parts (:mod:`.verify_canon`) — computed inside the database where the
   backend can (one ``GROUP BY`` scan), else by streaming and hashing client-side.  Both
   sides run at the same time, each on its own connection.
3. Buckets whose counts or sums differ are the only ones looked at again: a bucket with
   more than ``leaf_size`` rows is split (a power-of-two fan-out) and re-hashed,
   restricted to its key range; a small one is a leaf.
4. The rows of the leaves are fetched from both sides, ``batch_size`` rows at a time, and
   diffed in Polars (:mod:`.verify_diff`): exact counts and bounded samples.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import polars as pl

from bulkframe.ops.verify_diff import DiffCounts
from bulkframe.ops.verify_sides import Interval, Side

log = logging.getLogger("bulkframe.verify")

#: At most this many buckets per level (the bucket table each side sends back).
MAX_BUCKETS = 1 << 17


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


def _merge(intervals: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _differing(source: pl.DataFrame, target: pl.DataFrame) -> pl.DataFrame:
    """Buckets whose count or hash sums differ, with ``rows``: the larger count."""
    joined = source.join(target, on="bucket", how="full", coalesce=True, suffix="_t")
    cols = ("n", "h1", "h2")
    differs = pl.any_horizontal(~pl.col(c).eq_missing(pl.col(f"{c}_t")) for c in cols)
    return joined.filter(differs).select(
        "bucket", rows=pl.max_horizontal(pl.col("n").fill_null(0), pl.col("n_t").fill_null(0))
    )


def compare(
    source: Side,
    target: Side,
    counts: DiffCounts,
    *,
    leaf_size: int,
    batch_size: int,
    metrics: dict[str, Any],
) -> tuple[int, int]:
    """Run the comparison into ``counts``; returns ``(source rows, target rows)``."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="bulkframe-verify") as pool:

        def both(call: Any) -> tuple[Any, Any]:
            s, t = pool.submit(call, source), pool.submit(call, target)
            return s.result(), t.result()

        (smin, smax, s_rows), (tmin, tmax, t_rows) = both(lambda side: side.bounds())
        lows = [v for v in (smin, tmin) if v is not None]
        highs = [v for v in (smax, tmax) if v is not None]
        levels: list[dict[str, int]] = []
        leaves: list[tuple[Interval, int]] = []
        if lows:
            low, high = min(lows), max(highs)
            # buckets of about leaf_size / 2 rows: room for a few changed rows before a split
            buckets = min(MAX_BUCKETS, max(1, math.ceil(2 * max(s_rows, t_rows) / leaf_size)))
            width = _pow2_at_least(math.ceil((high - low + 1) / buckets))
            intervals: list[Interval] | None = None
            while True:
                stats_s, stats_t = both(lambda side, w=width, iv=intervals: side.bucket_stats(low, w, iv))
                diff = _differing(stats_s, stats_t)
                levels.append(
                    {"width": width, "buckets": max(stats_s.height, stats_t.height), "differing": diff.height}
                )
                if diff.height == 0:
                    break
                leaf = (pl.col("rows") <= leaf_size) | pl.lit(width == 1)
                for bucket, rows in diff.filter(leaf).iter_rows():
                    leaves.append(((low + bucket * width, low + (bucket + 1) * width), rows))
                split = diff.filter(~leaf)
                if split.height == 0:
                    break
                fanout = _pow2_at_least(math.ceil(2 * int(split["rows"].max()) / leaf_size))  # type: ignore[arg-type]
                intervals = _merge([(low + b * width, low + (b + 1) * width) for b in split["bucket"]])
                width = max(1, width // min(fanout, MAX_BUCKETS))
        metrics["levels"] = levels
        metrics["hashed_in"] = {"source": source.hashed_in, "target": target.hashed_in}
        metrics["hash_seconds"] = round(time.perf_counter() - started, 3)
        _diff_leaves(source, target, counts, sorted(leaves), batch_size, both)
    metrics["differing_ranges"] = len(leaves)
    metrics["rows_fetched"] = {"source": source.rows_read, "target": target.rows_read}
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    return s_rows, t_rows


def _diff_leaves(
    source: Side,
    target: Side,
    counts: DiffCounts,
    leaves: list[tuple[Interval, int]],
    batch_size: int,
    both: Any,
) -> None:
    """Fetch the leaves' rows, about ``batch_size`` rows per round, and diff them."""
    group: list[Interval] = []
    rows = 0
    for interval, n in [*leaves, ((0, 0), -1)]:
        if group and (n < 0 or rows + n > batch_size):
            merged = _merge(group)
            frames_s, frames_t = both(lambda side, iv=merged: list(side.frames(iv)))
            counts.add(_concat(frames_s, source), _concat(frames_t, target))
            group, rows = [], 0
        if n >= 0:
            group.append(interval)
            rows += n


def _concat(frames: list[pl.DataFrame], side: Side) -> pl.DataFrame:
    if frames:
        return pl.concat(frames, how="vertical_relaxed")
    return pl.DataFrame(schema={n: _dtype(side, n) for n in side.names})


def _dtype(side: Side, name: str) -> pl.DataType:
    import pyarrow as pa

    empty = pl.from_arrow(pa.table({name: pa.array([], side.columns[name].arrow_type())}))
    assert isinstance(empty, pl.DataFrame)
    return empty.schema[name]
