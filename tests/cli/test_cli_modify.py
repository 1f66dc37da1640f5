"""``bulkframe update``, ``delete`` (with its safety options) and ``verify``."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

from cli_run import bulkframe

ROWS = "id,name,price,category\n" + "".join(
    f"{i},p{i},{i}.50,{'toys' if i % 2 else 'books'}\n" for i in range(1, 11)
)


def _load(url: str, table: str) -> None:
    ran = bulkframe(
        "load",
        "-",
        "--url",
        url,
        "--table",
        table,
        "--primary-key",
        "id",
        "--type",
        "price=decimal(10,2)",
        stdin=ROWS,
    )
    assert ran.code == 0, ran.err


def _prices(peek, table: str) -> dict[int, Decimal]:  # type: ignore[no-untyped-def]
    return {int(i): Decimal(str(p)) for i, p in peek(f'SELECT id, price FROM "{table}" ORDER BY id')}


def test_update_by_filter_and_by_file(url: str, table: str, tmp_path: Path, peek) -> None:  # type: ignore[no-untyped-def]
    _load(url, table)
    ran = bulkframe(
        "update",
        "--url",
        url,
        "--table",
        table,
        "--set",
        '{"price": "price * 2"}',
        "--where",
        '{"category": "toys"}',
        "--json",
    )
    assert ran.code == 0, ran.err
    assert ran.json()["updated"] == 5
    prices = _prices(peek, table)
    assert prices[1] == Decimal("3.00") and prices[2] == Decimal("2.50")
    # rows from a file, by key; one key matches nothing → partial (exit 3), the others land
    changes = tmp_path / "changes.csv"
    changes.write_text("id,price\n2,9.99\n99,1.00\n")
    by_file = bulkframe("update", str(changes), "--url", url, "--table", table, "--json")
    assert by_file.code == 3, by_file.err
    doc = by_file.json()
    assert (doc["updated"], doc["not_found"], doc["not_found_ids"], doc["exit_code"]) == (1, 1, [99], 3)
    assert _prices(peek, table)[2] == Decimal("9.99")
    # every row needs --all-rows and --yes
    assert bulkframe("update", "--url", url, "--table", table, "--set", '{"price": 1}').code == 2
    assert (
        bulkframe("update", "--url", url, "--table", table, "--set", '{"price": 1}', "--all-rows").code == 2
    )
    assert _prices(peek, table)[3] == Decimal("7.00")
    everything = bulkframe(
        "update", "--url", url, "--table", table, "--set", '{"price": 1}', "--all-rows", "--yes"
    )
    assert everything.code == 0, everything.err
    assert set(_prices(peek, table).values()) == {Decimal("1.00")}


def test_delete_safety(url: str, table: str, tmp_path: Path, peek) -> None:  # type: ignore[no-untyped-def]
    _load(url, table)
    where = '{"category": "books"}'
    refused = bulkframe("delete", "--url", url, "--table", table, "--where", where)
    assert refused.code == 2 and "--yes" in refused.err  # stdin is not a terminal: cannot ask
    assert bulkframe("delete", "--url", url, "--table", table).code == 2  # no --where, no --all-rows
    dry = bulkframe("delete", "--url", url, "--table", table, "--where", where, "--dry-run", "--json")
    assert dry.code == 0 and dry.json()["deleted"] == 5 and dry.json()["dry_run"] is True
    assert len(dry.json()["data"]) == 5  # the sample
    limited = bulkframe(
        "delete", "--url", url, "--table", table, "--where", where, "--max-delete", "4", "--yes"
    )
    assert limited.code == 1 and "max_delete_count=4" in limited.err
    assert len(_prices(peek, table)) == 10
    backup = tmp_path / "deleted.csv"
    ran = bulkframe(
        "delete", "--url", url, "--table", table, "--where", where, "--yes", "--backup", str(backup), "--json"
    )
    assert ran.code == 0, ran.err
    assert ran.json()["deleted"] == 5 and ran.json()["backup_file"] == str(backup)
    assert sorted(_prices(peek, table)) == [1, 3, 5, 7, 9]
    with backup.open() as f:
        assert sorted(int(r["id"]) for r in csv.DictReader(f)) == [2, 4, 6, 8, 10]


def test_verify_a_file_and_a_table(url: str, table: str, tmp_path: Path, peek) -> None:  # type: ignore[no-untyped-def]
    _load(url, table)
    source = tmp_path / "rows.csv"
    source.write_text(ROWS)
    ok = bulkframe("verify", str(source), "--url", url, "--table", table, "--json")
    assert ok.code == 0, ok.err
    assert (ok.json()["checked"], ok.json()["matched"], ok.json()["ok"]) == (10, 10, True)
    assert (
        bulkframe(
            "update", "--url", url, "--table", table, "--set", '{"name": "x"}', "--where", '{"id": 4}'
        ).code
        == 0
    )
    assert bulkframe("delete", "--url", url, "--table", table, "--where", '{"id": 7}', "--yes").code == 0
    bad = bulkframe("verify", str(source), "--url", url, "--table", table, "--json")
    assert bad.code == 4
    doc = bad.json()
    assert (doc["missing"], doc["mismatched"], doc["exit_code"]) == (1, 1, 4)
    assert doc["differences"][0]["field"] == "name" and doc["missing_keys"] == [{"id": 7}]
    text = bulkframe("verify", str(source), "--url", url, "--table", table)
    assert text.code == 4 and "1 missing, 1 different" in text.out
    # a table against another database's table
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert bulkframe("copy", url, other, "--table", table).code == 0
    same = bulkframe("verify", url, "--url", other, "--table", table)
    assert same.code == 0 and "9 checked, 9 matched" in same.out
    assert "mode full" in same.out  # table against table: two-way
    extra = bulkframe(
        "load", "-", "--url", other, "--table", table, stdin="id,name,price,category\n77,extra,1.00,toys\n"
    )
    assert extra.code == 0, extra.err
    two_way = bulkframe("verify", url, "--url", other, "--table", table, "--json")
    assert two_way.code == 4 and two_way.json()["only_in_table"] == 1
    one_way = bulkframe("verify", url, "--url", other, "--table", table, "--mode", "keys")
    assert one_way.code == 0, one_way.out  # every source row is there
