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


# -- the staged merge's building blocks (ops/staged_merge.py, ops/audit.py) ---------------------


def test_change_detection_and_json_constructs_per_dialect() -> None:
    from bulkframe.portable_sql import JsonObject, JsonWithout

    cases = (
        (
            PostgresBackend("postgresql://x/y"),
            '"t;x"."stock" IS DISTINCT FROM "s"."stock"',
            """jsonb_build_object('id', "t;x"."id", 'na''me', "t;x"."na""me")""",
            """(({obj}) - array_remove(ARRAY[CASE WHEN "t;x"."stock" IS DISTINCT FROM "s"."stock" """
            """THEN 'stock' END]::text[], NULL))""",
        ),
        (
            SQLiteBackend("sqlite:///x.db"),
            '"t;x"."stock" IS NOT "s"."stock"',
            """json_object('id', "t;x"."id", 'na''me', "t;x"."na""me")""",
            """json_remove({obj}, CASE WHEN "t;x"."stock" IS NOT "s"."stock" THEN '$."stock"' """
            """ELSE '$." bulkframe:absent "' END)""",
        ),
    )
    for backend, distinct, obj, without in cases:
        target = backend.sa_table(TableRef("t;x"), COLUMNS)
        stage = backend.sa_table(TableRef("s"), COLUMNS)
        changed = backend.distinct(target.c.stock, stage.c.stock, COLUMNS[1])
        assert _sql(changed, backend.dialect) == distinct
        built = JsonObject(["id", "na'me"], [target.c.id, target.c['na"me']])
        assert _sql(built, backend.dialect) == obj
        assert _sql(JsonWithout(built, [("stock", changed)]), backend.dialect) == without.format(obj=obj)


def test_json_columns_compare_as_jsonb_on_postgres() -> None:
    backend = PostgresBackend("postgresql://x/y")
    doc = Column("doc", "json")
    t = backend.sa_table(TableRef("t"), [doc])
    s = backend.sa_table(TableRef("s"), [doc])
    assert _sql(backend.distinct(t.c.doc, s.c.doc, doc), backend.dialect) == (
        'CAST("t"."doc" AS JSONB) IS DISTINCT FROM CAST("s"."doc" AS JSONB)'
    )


def test_the_staged_merge_runs_update_from_then_an_anti_join_insert(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    """The statements a detect_changes upsert sends (SQLite, a real file): one UPDATE … FROM
    with the change test, one INSERT … WHERE NOT EXISTS; no per-row statements."""
    import bulkframe as bf

    caplog.set_level("DEBUG", logger="bulkframe.sql")
    with bf.connect(f"sqlite:///{tmp_path}/m.db") as db:
        db.bulk_create("t", [{"id": 1, "v": 1}, {"id": 2, "v": 2}], primary_key="id")
        caplog.clear()
        result = db.bulk_upsert(
            "t", [{"id": 1, "v": 1}, {"id": 2, "v": 5}, {"id": 3, "v": 3}], detect_changes=True
        )
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)
    sent = [" ".join(r.getMessage().split()) for r in caplog.records if r.name == "bulkframe.sql"]
    writes = [s for s in sent if s.startswith(("SQL UPDATE", "SQL INSERT"))]
    assert len(writes) == 2, writes
    assert writes[0].startswith('SQL UPDATE "t" SET "v"=') and ' FROM "_bf_stage_' in writes[0], writes[0]
    assert '"t"."v" IS NOT "_bf_stage_' in writes[0], writes[0]
    assert writes[1].startswith('SQL INSERT INTO "t" ("id", "v") SELECT'), writes[1]
    assert "WHERE NOT (EXISTS (SELECT" in writes[1], writes[1]
