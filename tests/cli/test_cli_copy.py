"""``bulkframe copy`` between databases: types mapped exactly, streamed batches,
``--select/--where/--to/--all``, every mode, ``--incremental`` reruns, ``--verify``."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from cli_run import bulkframe

from suite_backends import independent_query

SCHEMA = {
    "columns": {
        "id": "int64",
        "name": "text(20)",
        "amount": "decimal(12,3)",
        "at": "timestamptz",
        "day": "date",
        "ok": "bool",
        "ratio": "float64",
        "doc": "json",
        "updated_at": "timestamp",
    },
    "primary_key": ["id"],
}


def _source_csv(tmp_path: Path, rows: int = 25) -> Path:
    lines = ["id,name,amount,at,day,ok,ratio,doc,updated_at"]
    for i in range(1, rows + 1):
        name = '""' if i == 5 else f"n{i}"  # quoted: the empty string, not NULL
        amount = "" if i == 6 else f"{i * 1000 + i}.{i:03d}"
        doc = '"{""k"": ' + str(i) + ', ""s"": ""é""}"'
        lines.append(
            f"{i},{name},{amount},2024-03-{i:02d}T10:00:00.123456+02:00,2024-01-{i:02d},{'true' if i % 2 else 'false'},"
            f"{i / 3!r},{doc},2024-01-{i:02d} 08:00:00"
        )
    path = tmp_path / "source.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _load_source(url: str, table: str, tmp_path: Path, rows: int = 25) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    ran = bulkframe(
        "load", str(_source_csv(tmp_path, rows)), "--url", url, "--table", table, "--schema", str(schema)
    )
    assert ran.code == 0, ran.err


def _all(url: str, table: str) -> list[tuple]:  # type: ignore[type-arg]
    return independent_query(url, f'SELECT * FROM "{table}" ORDER BY id')


def test_copy_there_and_back_is_exact(url: str, table: str, tmp_path: Path) -> None:
    """url → a SQLite file → url again: the second table equals the first, value by value,
    as the independent client reads them; --verify checks each hop."""
    _load_source(url, table, tmp_path)
    middle = f"sqlite:///{tmp_path / 'middle.db'}"
    there = bulkframe(
        "copy", url, middle, "--table", table, "--to", "hop", "--verify", "--batch-size", "7", "--json"
    )
    assert there.code == 0, there.err
    doc = there.json()
    assert doc["inserted"] == 25 and doc["batches"] == 4 and doc["verification"]["ok"]
    assert doc["verification"]["checked"] == 25
    back = bulkframe("copy", middle, url, "--table", "hop", "--to", f"{table}_back", "--verify", "--json")
    try:
        assert back.code == 0, back.err
        assert _all(url, f"{table}_back") == _all(url, table)
    finally:
        independent_query(url, f'DROP TABLE IF EXISTS "{table}_back"')


@pytest.mark.postgres
def test_sqlite_to_postgres_maps_every_kind(pg_url: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'src.db'}"
    _load_source(source, "kinds", tmp_path)
    target = "cli_copy_kinds"
    independent_query(pg_url, f"DROP TABLE IF EXISTS {target}")
    try:
        ran = bulkframe("copy", source, pg_url, "--table", "kinds", "--to", target, "--verify")
        assert ran.code == 0, ran.err + ran.out
        types = independent_query(
            pg_url,
            "SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, is_nullable "
            "FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
            (target,),
        )
        assert types == [
            ("id", "bigint", None, 64, 0, "NO"),
            ("name", "character varying", 20, None, None, "YES"),
            ("amount", "numeric", None, 12, 3, "YES"),
            ("at", "timestamp with time zone", None, None, None, "YES"),
            ("day", "date", None, None, None, "YES"),
            ("ok", "boolean", None, None, None, "YES"),
            ("ratio", "double precision", None, 53, None, "YES"),
            ("doc", "jsonb", None, None, None, "YES"),
            ("updated_at", "timestamp without time zone", None, None, None, "YES"),
        ]
        rows = independent_query(pg_url, f"SELECT * FROM {target} WHERE id IN (5, 6, 7) ORDER BY id")
        assert rows[0][1] == "" and rows[1][2] is None
        assert rows[2][:8] == (
            7, "n7", Decimal("7007.007"), datetime(2024, 3, 7, 8, 0, 0, 123456, tzinfo=timezone.utc),
            date(2024, 1, 7), True, 7 / 3, {"k": 7, "s": "é"},
        )  # fmt: skip
    finally:
        independent_query(pg_url, f"DROP TABLE IF EXISTS {target}")


def test_select_where_and_modes(url: str, table: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'src.db'}"
    _load_source(source, "src", tmp_path)
    where = json.dumps({"id": {"$lte": 10}, "ok": True})
    first = bulkframe(
        "copy",
        source,
        url,
        "--table",
        "src",
        "--to",
        table,
        "--select",
        "id,name,amount",
        "--where",
        where,
        "--json",
    )
    assert first.code == 0, first.err
    assert first.json()["inserted"] == 5
    assert [r[0] for r in _all(url, table)] == [1, 3, 5, 7, 9]
    assert len(_all(url, table)[0]) == 3  # only the selected columns
    # append again: duplicate keys → failure, nothing written
    dup = bulkframe(
        "copy", source, url, "--table", "src", "--to", table, "--select", "id,name,amount", "--where", where
    )
    assert dup.code == 1 and len(_all(url, table)) == 5
    # skip-existing, upsert, truncate, replace over a wider range
    wider = json.dumps({"id": {"$lte": 12}})
    args = (
        "copy",
        source,
        url,
        "--table",
        "src",
        "--to",
        table,
        "--select",
        "id,name,amount",
        "--where",
        wider,
        "--json",
    )
    skip = bulkframe(*args, "--mode", "skip-existing").json()
    assert (skip["inserted"], skip["skipped"]) == (7, 5)
    up = bulkframe(*args, "--mode", "upsert").json()
    assert (up["inserted"], up["updated"]) == (0, 12)
    assert (
        bulkframe("delete", "--url", url, "--table", table, "--where", '{"id": {"$gt": 6}}', "--yes").code
        == 0
    )
    trunc = bulkframe(*args, "--mode", "truncate", "--where", json.dumps({"id": {"$gt": 20}})).json()
    assert trunc["inserted"] == 5 and trunc["metrics"]["truncated"] == 6
    assert [r[0] for r in _all(url, table)] == [21, 22, 23, 24, 25]
    repl = bulkframe(
        "copy", source, url, "--table", "src", "--to", table, "--mode", "replace", "--json"
    ).json()
    assert repl["inserted"] == 25 and len(_all(url, table)[0]) == 9  # the source's full definition


def test_incremental_rerun_writes_nothing(url: str, table: str, tmp_path: Path) -> None:
    path = tmp_path / "src.db"
    source = f"sqlite:///{path}"
    _load_source(source, "src", tmp_path, rows=12)
    args = (
        "copy",
        source,
        url,
        "--table",
        "src",
        "--to",
        table,
        "--incremental",
        "--update-key",
        "updated_at",
        "--json",
    )
    first = bulkframe(*args).json()
    assert first["inserted"] == 12 and first["high_water_mark"] is None
    again = bulkframe(*args).json()
    assert (again["records_processed"], again["inserted"], again["updated"]) == (0, 0, 0)
    assert again["high_water_mark"].startswith("2024-01-12")
    with sqlite3.connect(path) as conn:  # one row changes, one arrives
        conn.execute(
            "UPDATE src SET name = 'changed', updated_at = '2024-02-01 00:00:00.000000' WHERE id = 3"
        )
        conn.execute(
            "INSERT INTO src (id, name, updated_at) VALUES (13, 'new', '2024-02-02 00:00:00.000000')"
        )
    third = bulkframe(*args).json()
    assert (third["records_processed"], third["inserted"], third["updated"]) == (2, 1, 1)
    assert independent_query(url, f'SELECT name FROM "{table}" WHERE id IN (3, 13) ORDER BY id') == [
        ("changed",),
        ("new",),
    ]
    assert bulkframe(*args).json()["records_processed"] == 0


def test_copy_all_and_usage(url: str, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'src.db'}"
    target = f"sqlite:///{tmp_path / 'all.db'}"
    _load_source(source, "one", tmp_path, rows=3)
    assert (
        bulkframe(
            "load", "-", "--url", source, "--table", "two", "--primary-key", "id", stdin="id,x\n1,a\n"
        ).code
        == 0
    )
    ran = bulkframe("copy", source, target, "--all", "--json")
    assert ran.code == 0, ran.err
    assert [(d["source_table"], d["inserted"]) for d in ran.jsons()] == [("one", 3), ("two", 1)]
    assert bulkframe("copy", source, target, "--all", "--table", "one").code == 2
    assert bulkframe("copy", source, target).code == 2
    assert bulkframe("copy", source, target, "--table", "one", "--table", "two", "--to", "x").code == 2
    assert bulkframe("copy", source, target, "--table", "one", "--incremental").code == 2
    assert bulkframe("copy", source, target, "--table", "one", "--where", "{not json").code == 2
    missing = bulkframe("copy", source, target, "--table", "nope")
    assert missing.code == 1 and "nope" in missing.err
    # the URLs may come from the environment
    env = {"BULKFRAME_SOURCE_URL": source, "BULKFRAME_URL": url}
    from_env = bulkframe(
        "copy", "--table", "two", "--to", f"env_{tmp_path.name[-8:]}", "--mode", "replace", env=env
    )
    assert from_env.code == 0, from_env.err
    independent_query(url, f'DROP TABLE IF EXISTS "env_{tmp_path.name[-8:]}"')


def test_copy_within_one_database(url: str, table: str, tmp_path: Path) -> None:
    """Source and target are the same database (on SQLite: the same file, read a page at a
    time without holding a lock the writer needs)."""
    _load_source(url, table, tmp_path, rows=12)
    ran = bulkframe("copy", url, url, "--table", table, "--to", f"{table}_2", "--batch-size", "5", "--verify")
    try:
        assert ran.code == 0, ran.err
        assert "12 matched" in ran.out
        assert _all(url, f"{table}_2") == _all(url, table)
    finally:
        independent_query(url, f'DROP TABLE IF EXISTS "{table}_2"')
