"""The SQL the DuckDB backend spells its own way (golden strings), and the DuckDB statements
that check it runs there."""

from __future__ import annotations

import duckdb
import pytest
import sqlalchemy as sa

from bulkframe.backends.base import TableRef
from bulkframe.backends.ddl import create_table_statements
from bulkframe.backends.registry import load_backend
from bulkframe.errors import SchemaError
from bulkframe.filters import to_sql
from bulkframe.rules.expressions import to_sql as expr_sql
from bulkframe.types import Column

BACKEND = load_backend("duckdb:///:memory:")
T = sa.table("t", sa.column("s", sa.Text), sa.column("ts", sa.DateTime(timezone=True)))


def _sql(clause: sa.ClauseElement) -> str:
    return str(clause.compile(dialect=BACKEND.dialect, compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize(
    ("built", "expected"),
    [
        (to_sql({"s": {"$regex": "^a"}}, T, backend=BACKEND), "regexp_matches(t.s, '^a')"),
        (to_sql({"ts": {"$lt": ":current_timestamp"}}, T, backend=BACKEND), "t.ts < get_current_timestamp()"),
        (
            expr_sql("s.title()", T.c),
            "coalesce(array_to_string(list_transform(regexp_extract_all(lower(t.s), "
            "'[\\p{L}\\p{N}]+|[^\\p{L}\\p{N}]+'), lambda w: upper(w[1]) || w[2:]), ''), t.s)",
        ),
    ],
)
def test_duckdb_spellings(built: sa.ClauseElement, expected: str) -> None:
    assert _sql(built) == expected


@pytest.mark.parametrize(
    ("text", "pattern", "title"),
    [
        ("hello wORLD-foo bar_baz 3rd", "o b", "Hello World-Foo Bar_Baz 3rd"),
        ("école ÉCOLE", "^é", "École École"),
        ("", "^$", ""),
        (None, "x", None),
    ],
)
def test_the_spellings_run_on_duckdb(text: str | None, pattern: str, title: str | None) -> None:
    table = sa.table("v", sa.column("s", sa.Text))
    query = sa.select(
        to_sql({"s": {"$regex": pattern}}, table, backend=BACKEND), expr_sql("s.title()", table.c)
    ).select_from(table)
    with duckdb.connect(":memory:") as con:
        con.execute("CREATE TABLE v (s VARCHAR)")
        con.execute("INSERT INTO v VALUES ($1)", [text])
        found, titled = con.execute(_sql(query)).fetchone()
    assert (found, titled) == ((None if text is None else True), title)


def test_identity_is_a_sequence_and_varchar_length_a_check() -> None:
    columns = [Column("id", "int64", primary_key=True), Column("code", "text", length=4)]
    statements = create_table_statements(BACKEND, TableRef("it's"), columns, identity="id")
    assert statements == [
        'CREATE SEQUENCE IF NOT EXISTS "it\'s_id_seq"',
        'CREATE TABLE IF NOT EXISTS "it\'s" ("id" BIGINT DEFAULT nextval(\'"it\'\'s_id_seq"\'), '
        '"code" VARCHAR CHECK (length("code") <= 4), PRIMARY KEY ("id"))',
    ]
    with duckdb.connect(":memory:") as con:
        for statement in statements:
            con.execute(statement)
        con.execute("INSERT INTO \"it's\" (code) VALUES ('a'), ('b')")
        assert con.execute('SELECT id, code FROM "it\'s" ORDER BY id').fetchall() == [(1, "a"), (2, "b")]


def test_decimal_wider_than_duckdb_is_refused() -> None:
    with pytest.raises(SchemaError, match=r"DECIMAL\(39,0\)"):
        BACKEND.ddl_type(Column("x", "decimal", precision=39, scale=0))
