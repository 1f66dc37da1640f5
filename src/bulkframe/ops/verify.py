"""Migration verification: did these rows land intact?

``db.verify(table, data, key=..., fields=..., sample=...)`` compares input rows (any input
kind, cast to the table's types) with what the table holds, by key: rows missing from
the table and rows whose fields differ are listed.  ``bulk_create(...,
verify_migration=True)`` runs the same check on a uniform sample of the rows it wrote.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import sqlalchemy as sa

from bulkframe.backends.base import TableRef
from bulkframe.errors import BulkframeError, InvalidOptionValueError, NotSupportedError, SchemaError
from bulkframe.normalize import conform, open_source
from bulkframe.ops.verify_canon import check_families
from bulkframe.ops.verify_diff import DiffCounts
from bulkframe.ops.verify_full import compare
from bulkframe.ops.verify_join import join_compare, same_database
from bulkframe.ops.verify_sides import FrameSide, Side, SourceTable, TableSide
from bulkframe.options import VerifyOptions
from bulkframe.types import Column

if TYPE_CHECKING:
    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions

log = logging.getLogger("bulkframe.verify")

RAND = "__bf_rand__"
#: ``mode="sample"`` without ``sample=``: rows in the sample.
DEFAULT_SAMPLE = 1000
INTEGER_KINDS = ("int16", "int32", "int64")


class VerificationError(BulkframeError, AssertionError):
    """Rows did not land as written; ``.verification`` has the details."""

    def __init__(self, message: str, verification: Verification):
        super().__init__(message)
        self.verification = verification


@dataclass
class Verification:
    """What a verification found.  ``ok`` when no checked row is missing, different, or
    (``mode="full"``) present only in the table.

    ``checked`` input rows were compared: ``checked == matched + missing + mismatched``.
    The frames are bounded samples (``max_samples`` rows each); the counts are exact.
    """

    table: str
    key: list[str]
    fields: list[str]
    checked: int = 0
    matched: int = 0
    #: input rows whose key the table lacks ("only in the source")
    missing: int = 0
    #: input rows present in the table with at least one differing field
    mismatched: int = 0
    #: one row per difference: the key columns, ``field``, ``expected``, ``actual``
    differences: pl.DataFrame | None = None
    missing_keys: pl.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    #: ``"full"``, ``"keys"`` or ``"sample"`` (see ``db.verify``)
    mode: str = "keys"
    #: rows only in the table (``mode="full"``; one-way modes cannot see them: ``None``)
    only_in_table: int | None = None
    #: rows in the table (``mode="full"``)
    table_rows: int | None = None
    #: rows that differ, per compared column (exact)
    column_differences: dict[str, int] = field(default_factory=dict)
    #: whole rows only in the source (a bounded sample)
    source_only: pl.DataFrame | None = None
    #: whole rows only in the table (a bounded sample; ``mode="full"``)
    table_only: pl.DataFrame | None = None
    #: ``mode="sample"``: rows of the source the sample was drawn from, and what it says
    population: int | None = None
    confidence: str | None = None
    #: how the comparison ran (``mode="full"``: levels, buckets, where hashes were
    #: computed, rows fetched, seconds)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.mismatched == 0 and not self.only_in_table

    @property
    def max_difference_rate(self) -> float | None:
        """``mode="sample"``: the 95 % upper bound on the share of source rows that are
        missing or differ (rule of three for a clean sample: ``3 / n``)."""
        if self.mode != "sample" or not self.checked:
            return None
        return upper_bound(self.missing + self.mismatched, self.checked)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "key": self.key,
            "fields": self.fields,
            "mode": self.mode,
            "checked": self.checked,
            "matched": self.matched,
            "missing": self.missing,
            "mismatched": self.mismatched,
            "only_in_table": self.only_in_table,
            "table_rows": self.table_rows,
            "column_differences": dict(self.column_differences),
            "ok": self.ok,
            "confidence": self.confidence,
            "differences": [] if self.differences is None else self.differences.head(100).to_dicts(),
            "missing_keys": [] if self.missing_keys is None else self.missing_keys.head(100).to_dicts(),
        }

    def summary(self) -> str:
        """One line: the counts, and for a sample what a clean (or not) sample says."""
        if self.ok:
            head = f"ok: {self.checked:,} rows checked"
        else:
            parts = [f"{self.missing:,} missing", f"{self.mismatched:,} differing"]
            if self.only_in_table is not None:
                parts.append(f"{self.only_in_table:,} only in the table")
            head = ", ".join(parts) + f" of {self.checked:,} checked"
        if self.column_differences and any(self.column_differences.values()):
            cols = ", ".join(f"{k}={v:,}" for k, v in self.column_differences.items() if v)
            head += f" (by column: {cols})"
        return head + (f"; {self.confidence}" if self.confidence else "")

    def __repr__(self) -> str:
        return f"Verification({self.mode} {self.table!r} by {', '.join(self.key)}: {self.summary()})"

    def _repr_html_(self) -> str:
        """A compact HTML table for notebooks: counts and the first differences and
        missing keys (every name and value HTML-escaped)."""
        from bulkframe import _html

        label = {"full": " (two-way)", "sample": f" (sample of {self.checked:,})"}.get(self.mode, "")
        problems = [f"{self.missing:,} missing", f"{self.mismatched:,} differing"]
        if self.only_in_table is not None:
            problems.append(f"{self.only_in_table:,} only in the table")
        caption = f"Verification{label} of {self.table!r} by {', '.join(self.key)} — " + (
            "ok" if self.ok else ", ".join(problems)
        )
        header = ["checked", "matched", "missing", "mismatched"]
        values: list[Any] = [self.checked, self.matched, self.missing, self.mismatched]
        if self.only_in_table is not None:
            header.append("only in table")
            values.append(self.only_in_table)
        header.append("fields")
        values.append(", ".join(self.fields))
        parts = [_html.table(header, [values], caption=caption)]
        if self.confidence:
            parts.append(_html.table(["confidence"], [[self.confidence]]))
        if self.mode != "keys" and any(self.column_differences.values()):
            cols = {k: v for k, v in self.column_differences.items() if v}
            parts.append(_html.table(list(cols), [list(cols.values())], caption="differing rows per column"))
        diffs, total = _html.first_rows(self.differences)
        if diffs:
            header = [*self.key, "field", "expected", "actual"]
            parts.append(
                _html.table(
                    header,
                    ([d.get(h) for h in header] for d in diffs),
                    caption=f"differences (first {len(diffs):,} of {total:,})",
                )
            )
            parts.append(_html.more(len(diffs), total, ".differences"))
        keys, total = _html.first_rows(self.missing_keys)
        if keys:
            parts.append(
                _html.table(
                    self.key,
                    ([k.get(c) for c in self.key] for k in keys),
                    caption=f"missing keys (first {len(keys):,} of {total:,})",
                )
            )
            parts.append(_html.more(len(keys), total, ".missing_keys"))
        extra, total = _html.first_rows(self.table_only)
        if extra:
            parts.append(
                _html.table(
                    self.key,
                    ([k.get(c) for c in self.key] for k in extra),
                    caption=f"keys only in the table (first {len(extra):,} of {total:,})",
                )
            )
            parts.append(_html.more(len(extra), total, ".table_only"))
        if self.notes:
            parts.append(_html.table(["note"], ([n] for n in self.notes)))
        return f'<div class="bulkframe-verification">{"".join(parts)}</div>'


def upper_bound(k: int, n: int, z: float = 1.959964) -> float:
    """95 % upper bound on a proportion from ``k`` events in ``n`` trials: ``3 / n`` for
    ``k == 0`` (the rule of three), else the Wilson score interval's upper end."""
    if k == 0:
        return min(1.0, 3.0 / n)
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + spread) / (1 + z * z / n))


def sample_confidence(k: int, n: int, population: int) -> str:
    """What a sample of ``n`` rows with ``k`` missing or differing ones says about all
    ``population`` rows (95 % confidence; one-way: rows only in the table are not seen)."""
    if n == 0:
        return "no rows were sampled"
    if n >= population:
        return f"every one of the {population:,} rows was checked"
    bound = upper_bound(k, n)
    if k == 0:
        return (
            f"no difference in {n:,} sampled rows of {population:,} → with 95% confidence fewer than "
            f"3/{n:,} = {bound:.3%} of rows differ (rule of three)"
        )
    return (
        f"{k:,} of {n:,} sampled rows ({k / n:.3%}) are missing or differ → with 95% confidence at most "
        f"{bound:.3%} of the {population:,} rows do (Wilson upper bound)"
    )


class Reservoir:
    """A uniform sample of ``size`` rows from a stream of Arrow tables (top-k of a seeded
    random priority), or every row when ``size`` is None."""

    def __init__(self, size: int | None, seed: int = 0):
        self.size = size
        self.seed = seed
        self.seen = 0
        self.frame: pl.DataFrame | None = None

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        if self.size is not None:  # a seeded pseudo-random priority per input row
            priority = pl.int_range(self.seen, self.seen + frame.height, eager=True).hash(self.seed)
            frame = frame.with_columns(priority.alias(RAND))
        self.seen += frame.height
        merged = frame if self.frame is None else pl.concat([self.frame, frame], how="diagonal_relaxed")
        self.frame = merged.sort(RAND).head(self.size) if self.size is not None else merged

    def rows(self) -> pl.DataFrame | None:
        if self.frame is None:
            return None
        return self.frame.drop(RAND, strict=False)


def verify_rows(
    sessions: Sessions,
    conn: Connection,
    ref: TableRef,
    expected: pl.DataFrame,
    columns: dict[str, Column],
    key: Sequence[str],
    fields: Sequence[str],
    *,
    float_tolerance: float | None = None,
    max_samples: int | None = None,
) -> Verification:
    """Compare ``expected`` (logical types) with the table, joining on ``key``; the
    frames keep at most ``max_samples`` rows (counts stay exact)."""
    backend = sessions.backend
    result = Verification(str(ref), list(key), list(fields))
    result.checked = expected.height
    if expected.height == 0:
        return result
    stage_cols = [columns[k] for k in key]
    stage = backend.create_stage(conn, stage_cols)
    try:
        keys = expected.select(key).to_arrow()
        backend.ingest_stage(conn, stage, backend.to_ingest(keys, columns))
        target = backend.sa_table(ref, list(columns.values()))
        staged = backend.sa_table(stage, stage_cols)
        wanted = [*key, *[f for f in fields if f not in key]]
        stmt = sa.select(*(backend.read_column(target.c[c], columns[c]) for c in wanted)).select_from(
            target.join(staged, sa.and_(*(target.c[k] == staged.c[k] for k in key)))
        )
        actual_arrow = backend.read_cast(conn.fetch_arrow(stmt), columns)
    finally:
        backend.drop_table(conn, stage)
    actual = pl.from_arrow(actual_arrow)
    assert isinstance(actual, pl.DataFrame)
    expected = expected.select(wanted)
    result.missing_keys = expected.join(
        actual.select(key), on=list(key), how="anti", nulls_equal=True
    ).select(key)
    result.missing = result.missing_keys.height
    both = expected.join(actual, on=list(key), how="inner", suffix="__actual", nulls_equal=True)
    diffs = []
    for name in (f for f in fields if f not in key):
        left = _comparable(both[name], columns[name])
        right = _comparable(both[f"{name}__actual"], columns[name])
        differs = ~_equal(left, right, columns[name], float_tolerance)
        if differs.any():
            diffs.append(
                both.filter(differs)
                .select(key)
                .with_columns(
                    field=pl.lit(name),
                    expected=left.filter(differs).cast(pl.String),
                    actual=right.filter(differs).cast(pl.String),
                )
            )
    if diffs:
        result.differences = pl.concat(diffs, how="vertical_relaxed")
        result.mismatched = result.differences.select(key).unique().height
        result.column_differences = {
            str(k): int(v) for k, v in result.differences["field"].value_counts().iter_rows()
        }
    result.matched = result.checked - result.missing - result.mismatched
    if max_samples is not None:
        result.differences = None if result.differences is None else result.differences.head(max_samples)
        result.missing_keys = result.missing_keys.head(max_samples)
    return result


def _equal(left: pl.Series, right: pl.Series, column: Column, tolerance: float | None) -> pl.Series:
    if tolerance is None or column.kind not in ("float32", "float64"):
        return left.eq_missing(right)
    a, b = left.cast(pl.Float64), right.cast(pl.Float64)
    close = ((a - b).abs() <= tolerance) | (a.is_nan() & b.is_nan()) | (a == b)
    out: pl.Series = close.fill_null(False) | (a.is_null() & b.is_null())
    return out


def _comparable(series: pl.Series, column: Column) -> pl.Series:
    """JSON compares by meaning (key order and spacing differ between databases)."""
    if column.kind != "json":
        return series
    import orjson

    canon = [
        None if v is None else orjson.dumps(orjson.loads(v), option=orjson.OPT_SORT_KEYS).decode()
        for v in series.to_list()
    ]
    return pl.Series(series.name, canon, dtype=pl.String)


def verify(
    sessions: Sessions,
    ref: TableRef,
    data: Any,
    *,
    key: Sequence[str] | str | None,
    fields: Sequence[str] | None,
    sample: int | None,
    options: VerifyOptions,
    batch_size: int = 100_000,
    seed: int = 0,
) -> Verification:
    """Verify ``data`` against ``ref`` (see ``Database.verify``)."""
    mode = options.mode
    if sample is not None and mode in ("full", "keys"):
        raise InvalidOptionValueError(f"sample= applies to mode='sample', not mode={mode!r}")
    if mode == "sample" and sample is None:
        sample = DEFAULT_SAMPLE
    target = TableSide(sessions, ref, batch_size)
    try:
        given = [key] if isinstance(key, str) else key  # key="id": one column, not its letters
        keys = list(given or [c.name for c in target.columns.values() if c.primary_key])
        if not keys:
            raise SchemaError(f"verify needs key=... : table {ref} has no primary key")
        unknown_keys = [k for k in keys if k not in target.columns]
        if unknown_keys:
            raise SchemaError(f"key column(s) {unknown_keys} are not columns of {ref}")
        rangeable = len(keys) == 1 and target.columns[keys[0]].kind in INTEGER_KINDS
        joinable = _in_same_database(sessions, data)
        if mode is None:
            # rows given as data: one-way, as verify always did; a table: both ways
            two_way = isinstance(data, SourceTable) and (rangeable or joinable)
            mode = "sample" if sample is not None else ("full" if two_way else "keys")
        if mode == "full":
            if not (rangeable or joinable):
                raise NotSupportedError(
                    f"mode='full' needs one integer key column to cut into ranges (or a source table in "
                    f"the same database); {ref} is keyed by {keys} "
                    f"({', '.join(target.columns[k].kind for k in keys)}): use mode='keys' or 'sample'"
                )
            return _verify_full(target, data, keys, fields, options, batch_size)
        target.close()
        return _verify_rows(
            sessions, ref, target.columns, data, keys, fields, sample, options, batch_size, seed, mode
        )
    finally:
        target.close()


def _in_same_database(sessions: Sessions, data: Any) -> bool:
    """``data`` is a table that one ``FULL OUTER JOIN`` on ``sessions`` can compare."""
    return (
        isinstance(data, SourceTable)
        and sessions.backend.capabilities.full_outer_join
        and data.sessions.backend.url == sessions.backend.url
    )


def _source_side(data: Any, target: TableSide, batch_size: int) -> Side:
    if isinstance(data, SourceTable):
        return TableSide(data.sessions, data.ref, batch_size)
    return FrameSide(data, target.columns, batch_size, str(target.ref))


def _verify_full(
    target: TableSide,
    data: Any,
    keys: list[str],
    fields: Sequence[str] | None,
    options: VerifyOptions,
    batch_size: int,
) -> Verification:
    source = _source_side(data, target, batch_size)
    try:
        present = [n for n in source.columns if n in target.columns]
        missing_key = [k for k in keys if k not in source.columns]
        if missing_key:
            raise SchemaError(f"the data has no key column(s) {missing_key}")
        wanted = list(fields) if fields is not None else [n for n in present if n not in keys]
        unknown = [f for f in wanted if f not in present]
        if unknown:
            raise SchemaError(
                f"verification_fields {unknown} are not columns of both the data and {target.ref}"
            )
        wanted = [f for f in wanted if f not in keys]
        names = [*keys, *wanted]
        families = check_families(names, source.columns, target.columns)
        for side in (source, target):
            side.prepare(names, families, options.float_tolerance)
        counts = DiffCounts(keys, wanted, families, options.float_tolerance, options.max_samples)
        result = Verification(str(target.ref), keys, wanted, mode="full")
        if same_database(source, target):
            assert isinstance(source, TableSide)
            s_rows, t_rows = join_compare(
                source, target, counts, batch_size=batch_size, metrics=result.metrics
            )
        else:
            s_rows, t_rows = compare(
                source,
                target,
                counts,
                leaf_size=options.leaf_size,
                batch_size=batch_size,
                metrics=result.metrics,
            )
    finally:
        source.close()
    samples = counts.samples()
    result.checked, result.table_rows = s_rows, t_rows
    result.missing, result.mismatched, result.only_in_table = (
        counts.only_source,
        counts.differing,
        counts.only_target,
    )
    result.matched = s_rows - counts.only_source - counts.differing
    result.column_differences = dict(counts.columns)
    result.differences = samples["differences"]
    result.source_only = samples["source_only"]
    result.table_only = samples["target_only"]
    result.missing_keys = None if result.source_only is None else result.source_only.select(keys)
    log.info("verified %s: %s", target.ref, result.summary())
    return result


def _input_chunks(data: Any, columns: dict[str, Column], ref: TableRef, batch_size: int) -> Any:
    """The input as Arrow tables cast to the table's types."""
    if isinstance(data, SourceTable):
        source = TableSide(data.sessions, data.ref, batch_size)
        try:
            names = [n for n in source.columns if n in columns]
            source.prepare(names, {}, None)
            for frame in source.frames(None):
                yield conform(frame.to_arrow(), columns, table_name=str(ref)).table
        finally:
            source.close()
        return
    for chunk in open_source(data).chunks(batch_size, {c.name for c in columns.values() if c.kind == "json"}):
        yield conform(chunk.table, columns, offset=chunk.offset, table_name=str(ref)).table


def _verify_rows(
    sessions: Sessions,
    ref: TableRef,
    by_name: dict[str, Column],
    data: Any,
    keys: list[str],
    fields: Sequence[str] | None,
    sample: int | None,
    options: VerifyOptions,
    batch_size: int,
    seed: int,
    mode: str,
) -> Verification:
    """``mode="keys"`` (every input row) and ``mode="sample"``: one-way, by key."""
    reservoir = Reservoir(sample, seed)
    names: list[str] = []
    for table in _input_chunks(data, by_name, ref, batch_size):
        names = table.column_names
        reservoir.add(table)
    missing_key = [k for k in keys if names and k not in names]
    if missing_key:
        raise SchemaError(f"the data has no key column(s) {missing_key}")
    wanted = list(fields) if fields is not None else [n for n in names if n not in keys]
    unknown = [f for f in wanted if f not in by_name or (names and f not in names)]
    if unknown:
        raise SchemaError(f"verification_fields {unknown} are not columns of both the data and {ref}")
    expected = reservoir.rows()
    with sessions.session(write=False) as conn:
        out = (
            verify_rows(
                sessions,
                conn,
                ref,
                expected,
                by_name,
                keys,
                wanted,
                float_tolerance=options.float_tolerance,
                max_samples=options.max_samples,
            )
            if expected is not None
            else Verification(str(ref), keys, wanted)
        )
    out.mode = mode
    if mode == "sample":
        out.population = reservoir.seen
        out.confidence = sample_confidence(out.missing + out.mismatched, out.checked, reservoir.seen)
        out.notes.append("one-way: rows only in the table are not looked for (use mode='full')")
    return out
