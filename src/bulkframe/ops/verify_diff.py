"""Row-level diff of two sets of rows in Polars: exact counts, bounded samples.

Rows are matched by key.  A value pair is equal when its canonical texts are equal
(:mod:`.verify_canon`: decimal scale, time zone and ``-0.0`` never make a difference);
with ``float_tolerance=t``, float pairs are equal when ``|a - b| <= t`` (or both NaN).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from bulkframe.ops.verify_canon import canonical_expr

TARGET_SUFFIX = "__target"


def _bounded(parts: list[pl.DataFrame], frame: pl.DataFrame, limit: int) -> None:
    have = sum(p.height for p in parts)
    if have < limit and frame.height:
        parts.append(frame.head(limit - have))


@dataclass
class DiffCounts:
    """Counts and samples accumulated over the compared row sets."""

    key: list[str]
    fields: list[str]
    families: dict[str, str]
    tolerance: float | None
    limit: int
    only_source: int = 0
    only_target: int = 0
    differing: int = 0
    compared: int = 0
    columns: dict[str, int] = field(default_factory=dict)
    _source_only: list[pl.DataFrame] = field(default_factory=list)
    _target_only: list[pl.DataFrame] = field(default_factory=list)
    _differences: list[pl.DataFrame] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.columns = dict.fromkeys(self.fields, 0)

    def _equal(self, name: str, left: pl.DataFrame, right: pl.DataFrame) -> pl.Series:
        fam = self.families[name]
        if fam == "float" and self.tolerance is not None:
            a, b = left[name].cast(pl.Float64), right[name].cast(pl.Float64)
            close = ((a - b).abs() <= self.tolerance) | (a.is_nan() & b.is_nan()) | (a == b)
            out: pl.Series = close.fill_null(False) | (a.is_null() & b.is_null())
            return out
        a = left.select(canonical_expr(name, fam, left.schema[name], None)).to_series()
        b = right.select(canonical_expr(name, fam, right.schema[name], None)).to_series()
        return a.eq_missing(b)

    def add(self, source: pl.DataFrame, target: pl.DataFrame) -> None:
        """Compare one batch of rows (all rows of a set of key ranges from both sides)."""
        key = self.key
        ints = [k for k in key if source.schema[k].is_integer() and target.schema[k].is_integer()]
        source = source.with_columns(pl.col(k).cast(pl.Int64) for k in ints)
        target = target.with_columns(pl.col(k).cast(pl.Int64) for k in ints)
        only_s = source.join(target.select(key), on=key, how="anti", nulls_equal=True)
        only_t = target.join(source.select(key), on=key, how="anti", nulls_equal=True)
        self.only_source += only_s.height
        self.only_target += only_t.height
        _bounded(self._source_only, only_s, self.limit)
        _bounded(self._target_only, only_t, self.limit)
        both = source.join(target, on=key, how="inner", suffix=TARGET_SUFFIX, nulls_equal=True)
        self.compared += both.height
        if both.height == 0:
            return
        left = both.select(self.fields)
        right = both.select([f"{f}{TARGET_SUFFIX}" for f in self.fields]).rename(
            {f"{f}{TARGET_SUFFIX}": f for f in self.fields}
        )
        any_diff = pl.Series([False] * both.height)
        for name in self.fields:
            differs = ~self._equal(name, left, right)
            n = int(differs.sum())
            if not n:
                continue
            self.columns[name] += n
            any_diff = any_diff | differs
            have = sum(p.height for p in self._differences)
            if have < self.limit:
                rows = both.filter(differs).head(self.limit - have)
                self._differences.append(
                    rows.select(
                        *key,
                        pl.lit(name).alias("field"),
                        pl.col(name).cast(pl.String).alias("expected"),
                        pl.col(f"{name}{TARGET_SUFFIX}").cast(pl.String).alias("actual"),
                    )
                )
        self.differing += int(any_diff.sum())

    @staticmethod
    def _frame(parts: Sequence[pl.DataFrame]) -> pl.DataFrame | None:
        return pl.concat(parts, how="vertical_relaxed") if parts else None

    def samples(self) -> Mapping[str, pl.DataFrame | None]:
        """The bounded samples: ``source_only``, ``target_only`` (whole rows) and
        ``differences`` (key, field, expected, actual)."""
        return {
            "source_only": self._frame(self._source_only),
            "target_only": self._frame(self._target_only),
            "differences": self._frame(self._differences),
        }
