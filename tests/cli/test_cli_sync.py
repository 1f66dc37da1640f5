"""``bulkframe sync``: full (with its delete safety), incremental, delta, change detection."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from cli_run import bulkframe

from bulkframe.cli import main

HEADER = "id,name,price,updated_at\n"
ROWS = HEADER + "".join(f"{i},p{i},{i}.50,2024-01-0{i}\n" for i in range(1, 6))


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
        "--type",
        "updated_at=date",
        stdin=ROWS,
    )
    assert ran.code == 0, ran.err


def _names(peek, table: str) -> dict[int, str]:  # type: ignore[no-untyped-def]
    return {int(i): str(n) for i, n in peek(f'SELECT id, name FROM "{table}" ORDER BY id')}


def test_full_sync_deletes_absent_rows_only_when_confirmed(
    url: str, table: str, tmp_path: Path, peek
) -> None:  # type: ignore[no-untyped-def]
    _load(url, table)
    source = tmp_path / "source.csv"  # 2 and 4 are gone, 3 changed, 6 is new
    source.write_text(
        HEADER + "1,p1,1.50,2024-01-01\n3,new3,3.50,2024-01-03\n5,p5,5.50,2024-01-05\n6,p6,6.50,2024-01-06\n"
    )
    base = ("sync", str(source), url, "--table", table, "--key", "id", "--mode", "full")
    refused = bulkframe(*base)
    assert refused.code == 2 and "--yes" in refused.err and "2 rows" in refused.err
    assert _names(peek, table) == {i: f"p{i}" for i in range(1, 6)}
    dry = bulkframe(*base, "--dry-run", "--json")
    assert dry.code == 0, dry.err
    doc = dry.json()
    assert (doc["dry_run"], doc["deleted"], doc["inserted"], doc["mode"]) == (True, 2, 1, "full")
    assert sorted(int(r["id"]) for r in doc["data"]) == [2, 4]  # the sample of rows it would delete
    assert _names(peek, table) == {i: f"p{i}" for i in range(1, 6)}
    limited = bulkframe(*base, "--max-delete", "1", "--yes")
    assert limited.code == 1 and "max_delete_count=1" in limited.err
    assert len(_names(peek, table)) == 5
    backup = tmp_path / "gone.csv"
    ran = bulkframe(*base, "--yes", "--backup", str(backup), "--json")
    assert ran.code == 0, ran.err
    doc = ran.json()
    assert (doc["deleted"], doc["inserted"], doc["updated"], doc["backup_file"]) == (2, 1, 3, str(backup))
    assert doc["records_processed"] == doc["success_count"] + doc["failure_count"] == 6
    assert _names(peek, table) == {1: "p1", 3: "new3", 5: "p5", 6: "p6"}
    with backup.open() as f:
        assert sorted(int(r["id"]) for r in csv.DictReader(f)) == [2, 4]
    # nothing left to delete: runs without --yes, and detect-changes finds every row equal
    again = bulkframe(*base, "--detect-changes", "--json")
    assert again.code == 0, again.err
    doc = again.json()
    assert (doc["deleted"], doc["updated"], doc["inserted"], doc["unchanged"]) == (0, 0, 0, 4)
    text = bulkframe(*base, "--detect-changes")
    assert text.code == 0 and "4 unchanged" in text.out


def test_full_sync_from_stdin_needs_yes(url: str, table: str, peek) -> None:  # type: ignore[no-untyped-def]
    _load(url, table)
    args = ("sync", "-", "--url", url, "--table", table, "--mode", "full", "--max-delete", "10")
    refused = bulkframe(*args, stdin=HEADER + "1,p1,1.50,2024-01-01\n")
    assert refused.code == 2 and "--yes" in refused.err
    assert len(_names(peek, table)) == 5
    ran = bulkframe(*args, "--yes", "--json", stdin=HEADER + "1,x,1.50,2024-01-01\n")
    assert ran.code == 0, ran.err
    assert ran.json()["deleted"] == 4
    assert _names(peek, table) == {1: "x"}


def test_incremental_sync_writes_only_newer_rows(url: str, table: str, tmp_path: Path, peek) -> None:  # type: ignore[no-untyped-def]
    _load(url, table)
    source = tmp_path / "changes.csv"
    source.write_text(HEADER + "2,old2,2.50,2024-01-02\n4,new4,4.50,2024-02-01\n7,p7,7.50,2024-02-02\n")
    ran = bulkframe(
        "sync",
        str(source),
        "--url",
        url,
        "--table",
        table,
        "--mode",
        "incremental",
        "--timestamp-field",
        "updated_at",
        "--since",
        "2024-01-05",
        "--json",
    )
    assert ran.code == 0, ran.err
    doc = ran.json()
    assert (doc["updated"], doc["inserted"], doc["skipped"], doc["deleted"]) == (1, 1, 1, 0)
    assert str(doc["high_water_mark"]).startswith("2024-02-02")
    names = _names(peek, table)
    assert (names[2], names[4], names[7], len(names)) == ("p2", "new4", "p7", 6)


def test_delta_sync_applies_the_change_set(url: str, table: str, tmp_path: Path, peek) -> None:  # type: ignore[no-untyped-def]
    _load(url, table)
    changes = tmp_path / "delta.csv"
    changes.write_text(
        "op,id,name,price,updated_at\n"
        "update,1,one,1.50,2024-01-01\ndelete,2,,,\ninsert,8,p8,8.50,2024-01-08\n"
    )
    args = ("sync", str(changes), url, "--table", table, "--mode", "delta", "--op-column", "op")
    assert bulkframe(*args).code == 2  # a delete without --yes, stdin not a terminal
    assert len(_names(peek, table)) == 5
    ran = bulkframe(*args, "--yes", "--json")
    assert ran.code == 0, ran.err
    assert (ran.json()["updated"], ran.json()["deleted"], ran.json()["inserted"]) == (1, 1, 1)
    assert _names(peek, table) == {1: "one", 3: "p3", 4: "p4", 5: "p5", 8: "p8"}


def test_audit_table_records_the_changes(url: str, table: str, tmp_path: Path, peek) -> None:  # type: ignore[no-untyped-def]
    _load(url, table)
    source = tmp_path / "s.csv"
    source.write_text(HEADER + "1,changed,1.50,2024-01-01\n")
    audit = f"{table}_audit"
    ran = bulkframe(
        "sync", str(source), url, "--table", table, "--mode", "incremental", "--audit-table", audit
    )
    assert ran.code == 0, ran.err
    ops = [str(o) for (o,) in peek(f'SELECT operation FROM "{audit}"')]
    assert ops == ["update"]


def test_sync_usage_errors(url: str, table: str, tmp_path: Path) -> None:
    source = tmp_path / "s.csv"
    source.write_text(ROWS)
    base = ("sync", str(source), "--url", url, "--table", table)
    assert bulkframe(*base).code == 2  # --mode is required
    for extra in (
        ("--mode", "full", "--since", "2024-01-01"),
        ("--mode", "full", "--op-column", "op"),
        ("--mode", "incremental", "--scope", "{}"),
        ("--mode", "incremental", "--max-delete", "3"),
        ("--mode", "full", "--compare", "name"),
        ("--mode", "full", "--on-error", "skip", "--yes"),
        ("--mode", "full", "--audit-level", "full"),
    ):
        ran = bulkframe(*base, *extra)
        assert ran.code == 2, (extra, ran.err)
        assert "error" in ran.err
    both = bulkframe("sync", str(source), "sqlite:///x.db", "--url", url, "--table", table, "--mode", "full")
    assert both.code == 2 and "once" in both.err


class _Terminal(io.StringIO):
    """Standard input that is a terminal where the user types ``answer``."""

    def isatty(self) -> bool:
        return True


def _on_terminal(answer: str, *args: str) -> tuple[int, str]:
    err = io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = _Terminal(answer), io.StringIO(), err
    try:
        code = main(list(args))
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return code, err.getvalue()


def test_full_sync_asks_on_a_terminal(url: str, table: str, tmp_path: Path, peek) -> None:  # type: ignore[no-untyped-def]
    _load(url, table)
    source = tmp_path / "source.csv"
    source.write_text(HEADER + "1,p1,1.50,2024-01-01\n")
    args = ("sync", str(source), url, "--table", table, "--mode", "full")
    code, err = _on_terminal("n\n", *args, "--no-progress")
    assert code == 2 and "would delete 4 rows" in err and "not confirmed" in err
    assert len(_names(peek, table)) == 5
    code, err = _on_terminal("yes\n", *args, "--no-progress")
    assert code == 0, err
    assert _names(peek, table) == {1: "p1"}
