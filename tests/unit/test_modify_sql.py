"""Golden SQL for the set-based statements of update/upsert/delete, per dialect: one
statement per batch, values bound, identifiers quoted."""

from __future__ import annotations

import sqlalchemy as sa

from bulkframe.backends.base import TableRef
from bulkframe.backends.postgres import PostgresBackend
from bulkframe.backends.sqlite import SQLiteBackend
from bulkframe.ops._rows import RowBatch
from bulkframe.ops.update import _set_clause
from bulkframe.types import Column

COLUMNS = [Column("id", "int64", primary_key=True), Column("stock", "int32"), Column('na"me', "text")]


def _sql(stmt: sa.ClauseElement, dialect: sa.Dialect) -> str:
    return " ".join(str(stmt.compile(dialect=dialect)).split())


def _tables(backend: PostgresBackend | SQLiteBackend) -> tuple[sa.Table, sa.Table]:
    stage_cols = [
        Column("id", "int64"),
        Column('na"me', "text"),
        Column("__bf_set_0", "bool"),
        Column("__bf_op_0", "int32"),
    ]
    return backend.sa_table(TableRef("t;x"), COLUMNS), backend.sa_table(TableRef("s"), stage_cols)


def _update(backend: PostgresBackend | SQLiteBackend) -> sa.Update:
    target, stage = _tables(backend)
    batch = RowBatch(
        data=None,
        offset=0,
        columns=[],
        plain=['na"me'],
        masks={'na"me': "__bf_set_0"},  # type: ignore[arg-type]
        ops=[("stock", "$inc", "__bf_op_0")],
    )
    return sa.update(target).where(target.c.id == stage.c.id).values(_set_clause(batch, target, stage))


def test_update_from_stage_postgres() -> None:
    backend = PostgresBackend("postgresql://x/y")
    assert _sql(_update(backend), backend.dialect) == (
        'UPDATE "t;x" SET "stock"=CASE WHEN ("s"."__bf_op_0" IS NOT NULL) THEN coalesce("t;x"."stock", 0) '
        '+ "s"."__bf_op_0" ELSE "t;x"."stock" END, "na""me"=CASE WHEN "s"."__bf_set_0" THEN "s"."na""me" '
        'ELSE "t;x"."na""me" END FROM "s" WHERE "t;x"."id" = "s"."id"'
    )


def test_update_from_stage_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # an atomic op on an integer column is guarded: SQLite would store a REAL on overflow
    backend = SQLiteBackend(f"sqlite:///{tmp_path}/x.db")
    op = 'coalesce("t;x"."stock", 0) + "s"."__bf_op_0"'
    assert _sql(_update(backend), backend.dialect) == (
        f'UPDATE "t;x" SET "stock"=CASE WHEN ("s"."__bf_op_0" IS NOT NULL) THEN CASE WHEN (typeof({op}) = ? '
        f"AND {op} != CAST({op} AS INTEGER)) THEN abs((-9223372036854775807 - 1)) ELSE {op} END "
        'ELSE "t;x"."stock" END, "na""me"=CASE WHEN "s"."__bf_set_0" THEN "s"."na""me" '
        'ELSE "t;x"."na""me" END FROM "s" WHERE "t;x"."id" = "s"."id"'
    )


def test_filter_values_are_bound_never_inlined() -> None:
    from bulkframe.filters import to_sql

    backend = PostgresBackend("postgresql://x/y")
    target, _ = _tables(backend)
    evil = "'; DROP TABLE t; --"
    stmt = sa.delete(target).where(to_sql({'na"me': evil}, target))
    compiled = stmt.compile(dialect=backend.dialect)
    assert evil not in str(compiled) and evil in compiled.params.values()


def test_in_input_order_sorts_found_keys_by_first_input_position() -> None:
    """The server may return missing keys in any order (PostgreSQL 16 picks a hash right
    anti join): results list them by where they first occur in the input batches."""
    import pyarrow as pa

    from bulkframe.ops._modify import in_input_order

    inputs = [
        pa.table({"k": [5, 3, 9], "j": ["a", "b", "c"]}),
        pa.table({"k": [3, 1, 7], "j": ["b", "z", "y"]}),
    ]
    found = pa.table({"k": [7, 1, 5, 3], "j": ["y", "z", "a", "b"]})
    assert in_input_order(found, inputs, ["k"]).column("k").to_pylist() == [5, 3, 1, 7]
    assert in_input_order(found, inputs, ["k", "j"]).to_pylist() == [
        {"k": 5, "j": "a"},
        {"k": 3, "j": "b"},
        {"k": 1, "j": "z"},
        {"k": 7, "j": "y"},
    ]
