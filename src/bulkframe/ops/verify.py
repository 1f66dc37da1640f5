"""Migration verification: did these rows land intact?

``db.verify(table, data, key=..., fields=..., sample=...)`` compares input rows (any input
kind, cast to the table's types) with what the table holds, by key: rows missing from
the table and rows whose fields differ are listed.  ``bulk_create(...,
verify_migration=True)`` runs the same check on a uniform sample of the rows it wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import sqlalchemy as sa

from bulkframe.backends.base import TableRef
from bulkframe.errors import BulkframeError, SchemaError
from bulkframe.normalize import conform, open_source
from bulkframe.types import Column

if TYPE_CHECKING:
    from bulkframe.backends.connection import Connection
    from bulkframe.backends.session import Sessions

log = logging.getLogger("bulkframe.verify")

RAND = "__bf_rand__"


class VerificationError(BulkframeError, AssertionError):
    """Rows did not land as written; ``.verification`` has the details."""

    def __init__(self, message: str, verification: Verification):
        super().__init__(message)
        self.verification = verification


@dataclass
class Verification:
    """What a verification found. ``ok`` when every checked row is present and equal."""

    table: str
    key: list[str]
    fields: list[str]
    checked: int = 0
    matched: int = 0
    missing: int = 0
    mismatched: int = 0
    #: one row per difference: the key columns, ``field``, ``expected``, ``actual``
    differences: pl.DataFrame | None = None
    missing_keys: pl.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.missing == 0 and self.mismatched == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "key": self.key,
            "fields": self.fields,
            "checked": self.checked,
            "matched": self.matched,
            "missing": self.missing,
            "mismatched": self.mismatched,
            "ok": self.ok,
            "differences": [] if self.differences is None else self.differences.head(100).to_dicts(),
            "missing_keys": [] if self.missing_keys is None else self.missing_keys.head(100).to_dicts(),
        }

    def _repr_html_(self) -> str:
        """A compact HTML table for notebooks: counts and the first differences and
        missing keys (every name and value HTML-escaped)."""
        from bulkframe import _html

        caption = f"Verification of {self.table!r} by {', '.join(self.key)} — " + (
            "ok" if self.ok else f"{self.missing:,} missing, {self.mismatched:,} differing"
        )
        parts = [
            _html.table(
                ["checked", "matched", "missing", "mismatched", "fields"],
                [[self.checked, self.matched, self.missing, self.mismatched, ", ".join(self.fields)]],
                caption=caption,
            )
        ]
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
        if self.notes:
            parts.append(_html.table(["note"], ([n] for n in self.notes)))
        return f'<div class="bulkframe-verification">{"".join(parts)}</div>'


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
) -> Verification:
    """Compare ``expected`` (logical types) with the table, joining on ``key``."""
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
        differs = ~left.eq_missing(right)
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
    result.matched = result.checked - result.missing - result.mismatched
    return result


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
    key: Sequence[str] | None,
    fields: Sequence[str] | None,
    sample: int | None,
    batch_size: int = 100_000,
    seed: int = 0,
) -> Verification:
    """Verify that ``data`` is in ``ref`` (see module docstring)."""
    with sessions.session(write=False) as conn:
        cols = sessions.backend.reflect(conn, ref)
        if cols is None:
            raise SchemaError(f"table {ref} does not exist")
        by_name = {c.name: c for c in cols}
        keys = list(key or [c.name for c in cols if c.primary_key])
        if not keys:
            raise SchemaError(f"verify needs key=... : table {ref} has no primary key")
        reservoir = Reservoir(sample, seed)
        names: list[str] = []
        for chunk in open_source(data).chunks(batch_size, {c.name for c in cols if c.kind == "json"}):
            table = conform(chunk.table, by_name, offset=chunk.offset, table_name=str(ref)).table
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
        out = (
            verify_rows(
                sessions,
                conn,
                ref,
                expected if expected is not None else pl.DataFrame(),
                by_name,
                keys,
                wanted,
            )
            if expected is not None
            else Verification(str(ref), keys, wanted)
        )
        return out
