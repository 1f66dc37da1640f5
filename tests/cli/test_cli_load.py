"""``bulkframe load`` / ``upsert`` through the real console script, on every backend:
modes and reruns, bad rows under each ``--on-error``, CSV options, stdin, gzip/zstd,
JSON Lines, ``--json`` checked against the table through an independent client."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from cli_run import bulkframe

import bulkframe as bf

CSV = "id,name,price\n1,apple,1.50\n2,pear,2.25\n3,plum,0.99\n"
CHANGED = "id,name,price\n2,PEAR,3.00\n4,kiwi,4.00\n"


def _rows(peek, table: str) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    return [
        (int(r[0]), r[1], Decimal(str(r[2])))
        for r in peek(f'SELECT id, name, price FROM "{table}" ORDER BY id')
    ]


def _file(tmp_path: Path, text: str, name: str = "in.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _create(url: str, table: str, tmp_path: Path) -> None:
    """The target: id int64 primary key, name text, price decimal(10,2) (empty)."""
    schema = tmp_path / "schema.json"
    schema.write_text(
        json.dumps(
            {"columns": {"id": "int64", "name": "text", "price": "decimal(10,2)"}, "primary_key": ["id"]}
        )
    )
    ran = bulkframe(
        "load",
        _file(tmp_path, "id,name,price\n", "empty.csv"),
        "--url",
        url,
        "--table",
        table,
        "--schema",
        str(schema),
    )
    assert ran.code == 0, ran.err


def test_load_append_json_and_rerun(url: str, table: str, tmp_path: Path, peek) -> None:  # type: ignore[no-untyped-def]
    _create(url, table, tmp_path)
    ran = bulkframe("load", _file(tmp_path, CSV), "--url", url, "--table", table, "--json")
    assert ran.code == 0, ran.err
    result = ran.json()
    assert (
        result["inserted"],
        result["records_processed"],
        result["failure_count"],
        result["exit_code"],
    ) == (3, 3, 0, 0)
    assert result["table"] == table and result["mode"] == "append"
    # a plain CSV into an existing table is parsed by the server where it can: on PostgreSQL
    # the command streams it straight into COPY … FROM STDIN (tests/cli/test_cli_pg_copy.py)
    with bf.connect(url) as db:
        server_parses = db.backend.capabilities.copy_text
    assert (result["metrics"].get("copy") == "direct") is server_parses
    assert _rows(peek, table) == [
        (1, "apple", Decimal("1.50")),
        (2, "pear", Decimal("2.25")),
        (3, "plum", Decimal("0.99")),
    ]
    again = bulkframe("load", _file(tmp_path, CSV), "--url", url, "--table", table)
    assert again.code == 1 and "bulkframe: error:" in again.err  # duplicate keys: nothing written
    assert len(_rows(peek, table)) == 3


@pytest.mark.parametrize(
    ("mode", "first", "second", "expected"),
    [
        ("replace", (3, 0, 0), (2, 0, 0), [(2, "PEAR", "3.00"), (4, "kiwi", "4.00")]),
        ("truncate", (3, 0, 0), (2, 0, 0), [(2, "PEAR", "3.00"), (4, "kiwi", "4.00")]),
        (
            "upsert",
            (3, 0, 0),
            (1, 1, 0),
            [(1, "apple", "1.50"), (2, "PEAR", "3.00"), (3, "plum", "0.99"), (4, "kiwi", "4.00")],
        ),
        (
            "skip-existing",
            (3, 0, 0),
            (1, 0, 1),
            [(1, "apple", "1.50"), (2, "pear", "2.25"), (3, "plum", "0.99"), (4, "kiwi", "4.00")],
        ),
    ],
)
def test_modes(url: str, table: str, tmp_path: Path, peek, mode, first, second, expected) -> None:  # type: ignore[no-untyped-def]
    _create(url, table, tmp_path)
    one = bulkframe(
        "load", _file(tmp_path, CSV), "--url", url, "--table", table, "--mode", mode, "--key", "id", "--json"
    )
    assert one.code == 0, one.err
    assert tuple(one.json()[k] for k in ("inserted", "updated", "skipped")) == first
    two = bulkframe(
        "load",
        _file(tmp_path, CHANGED, "b.csv"),
        "--url",
        url,
        "--table",
        table,
        "--mode",
        mode,
        "--key",
        "id",
        "--json",
    )
    assert two.code == 0, two.err
    doc = two.json()
    assert tuple(doc[k] for k in ("inserted", "updated", "skipped")) == second
    assert doc["mode"] == mode
    want = [(i, n, Decimal(p)) for i, n, p in expected]
    assert _rows(peek, table) == want
    # rerun of the same file: the table ends the same (idempotent modes)
    three = bulkframe(
        "load",
        _file(tmp_path, CHANGED, "b.csv"),
        "--url",
        url,
        "--table",
        table,
        "--mode",
        mode,
        "--key",
        "id",
    )
    assert three.code == 0, three.err
    assert _rows(peek, table) == want
    # the table kept its declared types and primary key (replace builds it from the old definition)
    dup = bulkframe(
        "load", _file(tmp_path, "id,name,price\n4,dup,1\n", "d.csv"), "--url", url, "--table", table
    )
    assert dup.code == 1


def test_replace_and_truncate_failures_leave_the_table(url: str, table: str, tmp_path: Path, peek) -> None:  # type: ignore[no-untyped-def]
    _create(url, table, tmp_path)
    assert bulkframe("load", _file(tmp_path, CSV), "--url", url, "--table", table).code == 0
    before = _rows(peek, table)
    bad = _file(tmp_path, "id,name,price\n7,ok,1\n8,bad,notanumber\n", "bad.csv")
    for mode in ("replace", "truncate"):
        ran = bulkframe("load", bad, "--url", url, "--table", table, "--mode", mode)
        assert ran.code == 1, ran.err
        assert "notanumber" in ran.err and "line 3" in ran.err
        assert _rows(peek, table) == before


@pytest.mark.parametrize("on_error", ["stop", "skip", "retry"])
def test_a_bad_row_under_each_on_error(url: str, table: str, tmp_path: Path, peek, on_error: str) -> None:  # type: ignore[no-untyped-def]
    _create(url, table, tmp_path)
    bad = _file(tmp_path, "id,name,price\n1,a,1.00\n2,b,abc\n3,c,3.00\n", "bad.csv")
    rejects = tmp_path / "rejects.jsonl"
    extra = [] if on_error == "stop" else ["--rejects", str(rejects)]
    ran = bulkframe("load", bad, "--url", url, "--table", table, "--on-error", on_error, *extra, "--json")
    if on_error == "stop":
        assert ran.code == 1
        assert ran.json()["exit_code"] == 1 and "abc" in ran.json()["error"]
        assert _rows(peek, table) == []
        return
    assert ran.code == 3, ran.err
    doc = ran.json()
    assert (doc["records_processed"], doc["success_count"], doc["failure_count"], doc["exit_code"]) == (
        3,
        2,
        1,
        3,
    )
    assert doc["rejects_file"] == str(rejects)
    assert [e["row"] for e in doc["errors"]] == [1]
    rejected = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert len(rejected) == 1 and rejected[0]["row"] == 1 and "abc" in rejected[0]["error"]
    assert _rows(peek, table) == [(1, "a", Decimal("1.00")), (3, "c", Decimal("3.00"))]
    summary = bulkframe(
        "load",
        bad,
        "--url",
        url,
        "--table",
        table,
        "--mode",
        "upsert",
        "--on-error",
        on_error,
        "--rejects",
        str(rejects),
    )
    assert summary.code == 3 and "1 rejected (rows and reasons in" in summary.out


def test_stdin_gzip_and_zstd(url: str, table: str, tmp_path: Path, peek) -> None:  # type: ignore[no-untyped-def]
    _create(url, table, tmp_path)
    ran = bulkframe("load", "-", "--url", url, "--table", table, stdin=CSV)
    assert ran.code == 0, ran.err
    gz = tmp_path / "more.csv.gz"
    gz.write_bytes(gzip.compress(b"id,name,price\n10,gz,10.10\n"))
    assert bulkframe("load", str(gz), "--url", url, "--table", table).code == 0
    zst = tmp_path / "more.csv.zst"
    with pa.output_stream(str(zst), compression="zstd") as f:
        f.write(b"id,name,price\n11,zst,11.11\n")
    assert bulkframe("load", str(zst), "--url", url, "--table", table).code == 0
    piped = bulkframe(
        "load", "-", "--url", url, "--table", table, stdin=gzip.compress(b"id,name,price\n12,gzpipe,12\n")
    )
    assert piped.code == 0, piped.err
    assert [r[:2] for r in _rows(peek, table)] == [
        (1, "apple"),
        (2, "pear"),
        (3, "plum"),
        (10, "gz"),
        (11, "zst"),
        (12, "gzpipe"),
    ]


def test_csv_options_and_declared_types(url: str, table: str, tmp_path: Path, peek) -> None:  # type: ignore[no-untyped-def]
    # semicolons, NULL spelled NULL, no header, Latin-1, a zip code declared as text
    raw = "1;Zürich;01234;NULL\n2;;00501;2.5\n".encode("latin-1")
    path = tmp_path / "legacy.txt"
    path.write_bytes(raw)
    ran = bulkframe(
        "load", str(path), "--url", url, "--table", table, "--delimiter", ";", "--null-string", "NULL",
        "--no-header", "--columns", "id,city,zip,score", "--encoding", "latin-1", "--type", "zip=text",
        "--type", "score=decimal(4,1)", "--primary-key", "id",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    rows = peek(f'SELECT id, city, zip, score FROM "{table}" ORDER BY id')
    assert [(int(r[0]), r[1], r[2], None if r[3] is None else Decimal(str(r[3]))) for r in rows] == [
        (1, "Zürich", "01234", None),
        (2, "", "00501", Decimal("2.5")),
    ]
    # into the existing table: every column read as text and cast by the table's types
    more = bulkframe(
        "load",
        "-",
        "--url",
        url,
        "--table",
        table,
        "--delimiter",
        "|",
        stdin="id|city|zip|score\n3|Bern|03000|\n",
    )
    assert more.code == 0, more.err
    assert peek(f'SELECT zip FROM "{table}" WHERE id = 3') == [("03000",)]


def test_json_lines(url: str, table: str, tmp_path: Path, peek) -> None:  # type: ignore[no-untyped-def]
    _create(url, table, tmp_path)
    lines = "\n".join(
        json.dumps(r) for r in [{"id": 1, "name": "a", "price": 1.5}, {"id": 2, "name": None, "price": 2}]
    )
    ran = bulkframe(
        "upsert", _file(tmp_path, lines + "\n", "rows.jsonl"), "--url", url, "--table", table, "--json"
    )
    assert ran.code == 0, ran.err
    assert ran.json()["operation"] == "upsert" and ran.json()["inserted"] == 2
    assert _rows(peek, table) == [(1, "a", Decimal("1.50")), (2, None, Decimal("2.00"))]


def test_usage_errors_exit_2(url: str, table: str, tmp_path: Path, stored) -> None:  # type: ignore[no-untyped-def]
    path = _file(tmp_path, CSV)
    assert bulkframe("load", path, "--url", url, "--table", table, "--mode", "sideways").code == 2
    assert bulkframe("load", path, "--url", url, "--table", table, "--type", "price=money").code == 2
    assert bulkframe("load", path, "--url", url, "--table", table, "--rejects", "r.csv").code == 2
    ran = bulkframe("load", path, "--url", url, "--table", table, "--mode", "upsert", "--conflict", "skip")
    assert ran.code == 2 and "--conflict" in ran.err
    missing = bulkframe("load", str(tmp_path / "nope.csv"), "--url", url, "--table", table)
    assert missing.code == 1 and "nope.csv" in missing.err
    assert stored(table) is None  # none of them created the table


def test_declared_types_for_an_existing_table_are_refused(url: str, table: str, tmp_path: Path, peek) -> None:  # type: ignore[no-untyped-def]
    """--type/--schema describe a table bulkframe creates: given for a table that exists
    (whose own types are used) they are refused by name, never accepted and ignored."""
    _create(url, table, tmp_path)
    before = _rows(peek, table)
    path = _file(tmp_path, CSV)
    ran = bulkframe("load", path, "--url", url, "--table", table, "--type", "name=text")
    assert ran.code == 2 and "--type" in ran.err and f"table {table} exists" in ran.err, ran.err
    assert _rows(peek, table) == before
    ran = bulkframe("load", path, "--url", url, "--table", table, "--type", "name=text", "--mode", "replace")
    assert ran.code == 0, ran.err
