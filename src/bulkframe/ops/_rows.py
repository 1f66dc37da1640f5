"""Turn ``bulk_update`` rows into stageable Arrow batches.

Rows may set different columns (``[{"id": 1, "price": 2}, {"id": 3, "stock": 0}]``) and
carry ``atomic_ops`` (``{"stock": {"$inc": -5}}``).  Each batch becomes one Arrow table
with the target's types plus internal columns:

* ``__bf_set_<n>`` — ``True`` where the row sets that column (only when some row of the
  batch does not), so "not given" and "set to null" stay different;
* ``__bf_op_<n>`` — the operand of one ``(column, operator)`` pair, null where the row
  does not apply it;
* ``__bf_round`` — the occurrence number of the row's key within the batch (only when a
  key repeats): rounds run in order, so repeated keys apply in input order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from bulkframe.errors import SchemaError
from bulkframe.normalize import conform, open_source
from bulkframe.normalize.sources import records_to_table
from bulkframe.types import Column

#: The operators ``atomic_ops`` accepts; applied in SQL against the stored value.
ATOMIC_OPS = ("$inc", "$mul", "$min", "$max", "$set")
ROUND = "__bf_round"
#: Staged with every row when several batches share one stage: the batch's number.
BATCH = "__bf_batch"


@dataclass
class RowBatch:
    """One staged batch: ``data`` (conformed) and how its columns map to ``SET``."""

    data: pa.Table
    offset: int
    columns: list[Column]
    plain: list[str]
    masks: dict[str, str] = field(default_factory=dict)
    ops: list[tuple[str, str, str]] = field(default_factory=list)  # (column, op, stage column)
    rounds: int = 1


def row_batches(
    data: Any,
    by_name: Mapping[str, Column],
    keys: Sequence[str],
    batch_size: int,
    table_name: str,
) -> Iterator[RowBatch]:
    """Yield :class:`RowBatch` es of at most ``batch_size`` input rows."""
    json_cols = {c.name for c in by_name.values() if c.kind == "json"}
    reserved = [n for n in by_name if n.startswith("__bf_")]
    if reserved:
        raise SchemaError(f"columns {reserved} of {table_name} use bulkframe's reserved prefix '__bf_'")
    if isinstance(data, Iterator) and not hasattr(data, "__arrow_c_stream__"):
        data = list(data)  # dict iterators are read once; flattening needs them in memory
    if isinstance(data, (list, tuple)):
        for offset in range(0, len(data), batch_size):
            rows = data[offset : offset + batch_size]
            yield _prepare(*_flatten(rows, by_name, json_cols, offset), by_name, keys, offset, table_name)
        return
    for chunk in open_source(data).chunks(batch_size, by_name):  # typed: CSV reads as the table
        yield _prepare(chunk.table, {}, {}, by_name, keys, chunk.offset, table_name)


def _flatten(
    rows: Sequence[Any],
    by_name: Mapping[str, Column],
    json_cols: set[str],
    offset: int,
) -> tuple[pa.Table, dict[str, list[bool]], dict[tuple[str, str], pa.Table]]:
    plain_rows: list[Mapping[str, Any]] = []
    operands: dict[tuple[str, str], list[Any]] = {}
    n = len(rows)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise SchemaError(f"row {offset + i}: expected a dict, got {type(row).__name__} ({row!r:.80})")
        ops = row.get("atomic_ops")
        if ops is None:
            plain_rows.append(row)
            continue
        plain = {k: v for k, v in row.items() if k != "atomic_ops"}
        if not isinstance(ops, Mapping):
            raise SchemaError(
                f"row {offset + i}: atomic_ops must be a dict like {{'stock': {{'$inc': -5}}}}, "
                f"got {ops!r:.80}"
            )
        for col, spec in ops.items():
            if not isinstance(spec, Mapping) or len(spec) != 1:
                raise SchemaError(
                    f"row {offset + i}: atomic_ops[{col!r}] must hold exactly one operator "
                    f"such as {{'$inc': 1}}; got {spec!r:.80}"
                )
            ((op, value),) = spec.items()
            if op not in ATOMIC_OPS:
                raise SchemaError(
                    f"row {offset + i}: unknown atomic operator {op!r} on {col!r}; "
                    f"valid: {', '.join(ATOMIC_OPS)}"
                )
            if col not in by_name:
                raise SchemaError(
                    f"row {offset + i}: atomic_ops names {col!r}, which is not a column; "
                    f"columns: {list(by_name)}"
                )
            if col in plain:
                raise SchemaError(f"row {offset + i}: column {col!r} is set both directly and by atomic_ops")
            if op == "$set":
                plain[col] = value
            elif value is None:
                raise SchemaError(f"row {offset + i}: {op} on {col!r} needs a value, got None")
            else:
                operands.setdefault((col, op), [None] * n)[i] = value
        plain_rows.append(plain)
    table = records_to_table(plain_rows, json_cols, offset)
    masks: dict[str, list[bool]] = {}
    for name in table.column_names:
        present = [name in r for r in plain_rows]
        if not all(present):
            masks[name] = present
    op_tables = {
        key: records_to_table([{key[0]: v} for v in values], json_cols, offset)
        for key, values in operands.items()
    }
    return table, masks, op_tables


def _prepare(
    table: pa.Table,
    masks: dict[str, list[bool]],
    op_tables: dict[tuple[str, str], pa.Table],
    by_name: Mapping[str, Column],
    keys: Sequence[str],
    offset: int,
    table_name: str,
) -> RowBatch:
    missing = [k for k in keys if k not in table.column_names]
    if missing:
        raise SchemaError(
            f"rows {offset}..: key column(s) {missing} are missing from the input; "
            "every row must name the row it updates"
        )
    shaped = conform(table, by_name, offset=offset, table_name=table_name).table
    plain = [c for c in shaped.column_names if c not in keys]
    if not plain and not op_tables:
        raise SchemaError(f"rows {offset}..: nothing to update (only key columns {list(keys)} given)")
    arrays = list(shaped.columns)
    names = list(shaped.column_names)
    stage_cols = [dataclasses.replace(by_name[c], primary_key=False) for c in names]
    mask_names: dict[str, str] = {}
    for i, (col, present) in enumerate(masks.items()):
        mask_names[col] = f"__bf_set_{i}"
        arrays.append(pa.chunked_array([pa.array(present, pa.bool_())]))
        names.append(mask_names[col])
        stage_cols.append(Column(mask_names[col], "bool"))
    ops: list[tuple[str, str, str]] = []
    for i, ((col, op), values) in enumerate(op_tables.items()):
        target = dataclasses.replace(by_name[col], name=f"__bf_op_{i}", primary_key=False, nullable=True)
        cast = conform(values, {col: by_name[col]}, offset=offset, table_name=f"{table_name} ({op} on {col})")
        arrays.append(cast.table.column(col))
        names.append(target.name)
        stage_cols.append(target)
        ops.append((col, op, target.name))
    out = pa.table(arrays, names=names)
    rounds, round_col = _rounds(out, keys)
    if rounds > 1:
        out = out.append_column(ROUND, round_col)
        stage_cols.append(Column(ROUND, "int64"))
    return RowBatch(out, offset, stage_cols, plain, mask_names, ops, rounds)


def _rounds(table: pa.Table, keys: Sequence[str]) -> tuple[int, pa.ChunkedArray]:
    """How often the most repeated key occurs, and each row's occurrence number."""
    import polars as pl

    if all_distinct([table.column(k) for k in keys]):
        return 1, pa.chunked_array([], pa.int64())
    frame = pl.from_arrow(table.select(list(keys)))
    assert isinstance(frame, pl.DataFrame)
    rank = frame.select(pl.int_range(pl.len(), dtype=pl.Int64).over(list(keys)).alias("r")).to_series()
    top = rank.max()
    return (int(top) + 1 if top is not None else 1), pa.chunked_array([rank.to_arrow()])  # type: ignore[arg-type]


def all_distinct(columns: Sequence[pa.ChunkedArray]) -> bool:
    """No key (one value per column, nulls included) occurs twice."""
    import polars as pl

    if len(columns) == 1:  # Polars: ~20x faster than pyarrow's count_distinct at 1M
        return bool(pl.Series("k", columns[0]).n_unique() == len(columns[0]))
    frame = pl.DataFrame([pl.Series(f"k{i}", c) for i, c in enumerate(columns)])
    return bool(frame.n_unique() == frame.height)
