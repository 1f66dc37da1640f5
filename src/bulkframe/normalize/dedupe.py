"""Resolve duplicate keys inside one batch before a set-based merge.

``INSERT … ON CONFLICT DO UPDATE`` refuses a batch that holds the same key twice, so
the batch keeps one row per key (``"last"`` or ``"first"``) and the caller reports how
many were dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from bulkframe.errors import InvalidOptionValueError


def dedupe_keys(table: pa.Table, keys: Sequence[str], *, keep: str) -> tuple[pa.Table, int]:
    """Return ``table`` with one row per key and the number of rows dropped.

    Rows with a null in any key column never conflict and are all kept.
    """
    if keep not in ("first", "last"):
        raise InvalidOptionValueError(f"dedupe={keep!r} is not valid; choose 'first' or 'last'")
    if table.num_rows < 2:
        return table, 0
    import polars as pl

    frame = pl.from_arrow(table.select(list(keys)))
    assert isinstance(frame, pl.DataFrame)
    index = pl.col("__bf_i")
    chosen = index.first() if keep == "first" else index.last()
    has_null = pl.any_horizontal(pl.col(k).is_null() for k in keys)
    keep_mask = frame.with_row_index("__bf_i").select(has_null | (index == chosen.over(keys))).to_series()
    dropped = int(keep_mask.len() - keep_mask.sum())
    if dropped == 0:
        return table, 0
    return table.filter(keep_mask.to_arrow()), dropped
