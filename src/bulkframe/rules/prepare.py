"""Per-chunk preparation shared by every row-writing operation.

conform (cast to the target's types) → transformation rules → validation rules and the
table's own constraints → accepted rows (Arrow, target types) and a report of rejected
rows.  Without rules and without bad values the chunk never leaves Arrow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from bulkframe.errors import ExpressionError, SchemaError, quote_name
from bulkframe.normalize import Chunk, conform
from bulkframe.normalize.conform import describe
from bulkframe.plan.batch import Prepared
from bulkframe.plan.rejections import entries, plain_record, report_rows
from bulkframe.types import Column, arange


class Preparer:
    """Compiles the rules once per column set and prepares chunks."""

    def __init__(
        self,
        columns: Mapping[str, Column],
        *,
        table_name: str,
        transformation_rules: Mapping[str, str] | None = None,
        validation_rules: Mapping[str, Mapping[str, Any]] | None = None,
        check_constraints: bool = True,
        strict_cast: bool = True,
        cast_hint: str = "",
        exact_cast: bool = False,
    ):
        self.columns = dict(columns)
        self.table_name = table_name
        self.transformation_rules = dict(transformation_rules or {})
        self.validation_rules = dict(validation_rules or {})
        self.check_constraints = check_constraints
        self.strict_cast = strict_cast
        self.cast_hint = cast_hint
        self.exact_cast = exact_cast
        for target in self.transformation_rules:
            if target not in self.columns:
                raise SchemaError(
                    f"transformation_rules target {target!r} is not a column of {table_name}; "
                    f"columns: {list(self.columns)}"
                )
        self._cache: dict[tuple[str, ...], tuple[list[Any], list[Any]]] = {}

    # -- compile ---------------------------------------------------------------------
    def _compiled(
        self, names: tuple[str, ...], schema: Mapping[str, pl.DataType]
    ) -> tuple[list[Any], list[Any]]:
        if names not in self._cache:
            from bulkframe.rules import compile_rules, compile_transformations, constraint_rules

            transforms = (
                compile_transformations(self.transformation_rules, schema)
                if self.transformation_rules
                else []
            )
            rules: dict[str, dict[str, Any]] = {}
            if self.check_constraints:
                present = [self.columns[n] for n in names if n in self.columns]
                meta = [
                    (c.name, c.nullable, c.length if c.kind == "text" else None, None, None) for c in present
                ]
                rules = {k: dict(v) for k, v in constraint_rules(meta).items()}
            for field, spec in self.validation_rules.items():
                rules.setdefault(field, {}).update(spec)
            checks = compile_rules(rules, schema) if rules else []
            self._cache[names] = (transforms, checks)
        return self._cache[names]

    # -- prepare ---------------------------------------------------------------------
    def __call__(self, chunk: Chunk) -> Prepared:
        raw = chunk.table
        conformed = conform(
            raw,
            self.columns,
            offset=chunk.offset,
            table_name=self.table_name,
            on_error="raise" if self.strict_cast else "mask",
            where=chunk.where,
            hint=self.cast_hint,
            exact=self.exact_cast,
        )
        table = conformed.table
        n = table.num_rows
        long: list[pl.DataFrame] = [self._cast_entries(raw, conformed.bad, "cast")]
        needs_rules = bool(self.transformation_rules or self.validation_rules or self._constrained(table))
        if needs_rules:
            table, extra = self._apply_rules(table, chunk.offset)
            long.extend(extra)
        long = [f for f in long if f.height]
        if not long:
            return Prepared(chunk.offset, n, table, arange(n, chunk.offset), raw, arange(n), None)
        all_entries = pl.concat(long, how="vertical_relaxed")
        report = report_rows(all_entries, raw, chunk.offset)
        keep = pc.invert(
            pc.is_in(arange(n), value_set=all_entries["row"].unique().to_arrow().cast(pa.int64()))
        )
        index = pc.filter(arange(n), keep)
        return Prepared(chunk.offset, n, table.filter(keep), pc.add(index, chunk.offset), raw, index, report)

    def _constrained(self, table: pa.Table) -> bool:
        if not self.check_constraints:
            return False
        for name in table.column_names:
            col = self.columns[name]
            if (not col.nullable and table.column(name).null_count) or (col.kind == "text" and col.length):
                return True
        return False

    def _cast_entries(self, raw: pa.Table, bad: Mapping[str, pa.ChunkedArray], stage: str) -> pl.DataFrame:
        frames = []
        for name, mask in bad.items():
            rows = pl.Series(pc.indices_nonzero(mask.combine_chunks())).cast(pl.Int64)
            values = plain_record(raw.select([name]).take(rows.to_arrow()))[name].cast(
                pl.String, strict=False
            )
            kind = describe(self.columns[name])
            message = pl.select(
                pl.concat_str(
                    [
                        pl.lit(f"{quote_name(name, plain=True)}="),
                        pl.lit(values).fill_null("?"),
                        pl.lit(f" cannot be stored as {kind}"),
                    ]
                )
            ).to_series()
            frames.append(entries(rows, stage, name, "type", message, values))
        return pl.concat(frames) if frames else pl.DataFrame()

    def _apply_rules(self, table: pa.Table, offset: int) -> tuple[pa.Table, list[pl.DataFrame]]:
        from bulkframe.rules import apply_transformations, split

        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        names = tuple(table.column_names)
        # rule columns the table has but this chunk lacks are NULL for the rules
        missing = [c for c in self.validation_rules if c in self.columns and c not in names]
        if missing:
            frame = frame.with_columns(pl.lit(None).cast(_dtype(self.columns[c])).alias(c) for c in missing)
        transforms, checks = self._compiled(tuple(frame.columns), frame.schema)
        extra: list[pl.DataFrame] = []
        if transforms:
            frame = apply_transformations(frame, transforms, rules=self.transformation_rules, offset=offset)
            # only the transformed columns can have left their column's type
            targets = [t for t in self.transformation_rules if t in frame.columns]
            changed = frame.select(targets).to_arrow()
            recast = conform(
                changed, self.columns, offset=offset, table_name=self.table_name, on_error="mask"
            )
            extra.append(self._cast_entries(changed, recast.bad, "transform"))
            for name in targets:
                array = recast.table.column(name)
                if name in table.column_names:
                    table = table.set_column(table.column_names.index(name), name, array)
                else:
                    table = table.append_column(name, array)
            cast_back = pl.from_arrow(recast.table)
            assert isinstance(cast_back, pl.DataFrame)
            frame = frame.with_columns(cast_back)
        if checks:
            try:
                _, rejected = split(frame, checks, row_column="__bf_row__")
            except pl.exceptions.PolarsError as exc:
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if "i128" in detail:
                    detail = "integer overflow (a result outside the 64-bit range is an error, as in SQL)"
                raise ExpressionError(
                    f"validation rules could not be evaluated on input rows {offset}..{offset + frame.height - 1}: "
                    f"{detail}. Check that each rule computes values of compatible types and range (convert with "
                    "cast(x, 'int'), cast(x, 'float'), ...)"
                ) from None
            if rejected.height:
                long = rejected.select(
                    pl.col("__bf_row__").alias("row"),
                    pl.lit("validation").alias("stage"),
                    pl.col("__violations__").alias("violation"),
                ).explode("violation")
                extra.append(long)
        return table, extra


def _dtype(column: Column) -> pl.DataType:
    frame = pl.from_arrow(pa.table({"x": pa.array([], column.arrow_type())}))
    assert isinstance(frame, pl.DataFrame)
    return frame.schema["x"]
