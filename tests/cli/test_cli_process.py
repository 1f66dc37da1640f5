"""The installed ``bulkframe`` console script as a child process: stdin and gzip, exit
codes, ``--json`` checked through an independent client, start-up imports, and passwords
kept out of messages (the other tests run ``main`` in process: a process costs seconds)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from cli_run import bulkframe_process as run

from suite_backends import independent_query


def test_the_console_script(url: str, table: str, tmp_path: Path) -> None:
    """Each verb runs in process in the other tests; here the installed script itself
    loads gzip from stdin, upserts with a bad row (exit 3), refuses a delete without
    --yes (exit 2), copies with --verify and verifies (exit 0), and prints --json."""
    rows = b"id,name,qty\n1,a,10\n2,b,20\n3,c,30\n"
    load = run(
        "load",
        "-",
        "--url",
        url,
        "--table",
        table,
        "--primary-key",
        "id",
        "--json",
        stdin=gzip.compress(rows),
    )
    assert load.code == 0, load.err
    assert load.json()["inserted"] == 3

    bad = tmp_path / "up.csv.gz"
    bad.write_bytes(gzip.compress(b"id,name,qty\n2,B,21\n4,d,x\n5,e,50\n"))
    rejects = tmp_path / "rejects.csv"
    up = run(
        "upsert",
        str(bad),
        "--url",
        url,
        "--table",
        table,
        "--on-error",
        "skip",
        "--rejects",
        str(rejects),
        "--json",
    )
    assert up.code == 3, up.err  # partial: one bad row
    doc = up.json()
    assert (doc["inserted"], doc["updated"], doc["failure_count"]) == (1, 1, 1)
    assert "x" in rejects.read_text()
    expected = [(1, "a", 10), (2, "B", 21), (3, "c", 30), (5, "e", 50)]
    assert independent_query(url, f'SELECT id, name, qty FROM "{table}" ORDER BY id') == expected

    assert (
        run("delete", "--url", url, "--table", table, "--where", '{"id": 1}').code == 2
    )  # no --yes, no terminal

    other = f"sqlite:///{tmp_path / 'copy.db'}"
    cp = run("copy", url, other, "--table", table, "--to", "copied", "--verify")
    assert cp.code == 0, cp.err
    assert "verify copied: ok: 4 checked, 4 matched" in cp.out
    assert independent_query(other, "SELECT id, name, qty FROM copied ORDER BY id") == expected


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\nbefore = set(sys.modules)\nfrom bulkframe.cli import main\n"
        "for argv in (['--help'], ['copy', '--help'], ['load', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "heavy = ('polars', 'pyarrow', 'sqlalchemy', 'adbc_driver_manager', 'psycopg', 'importlib.metadata', "
        "'bulkframe.options')\n"
        "print([m for m in heavy if m in set(sys.modules) - before], file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stderr.strip() == "[]"
    assert "exit codes:" in proc.stdout and "BULKFRAME_URL" in proc.stdout


def test_passwords_never_appear(tmp_path: Path) -> None:
    secret = "s3cr3t-pw"
    url = f"postgresql://someone:{secret}@127.0.0.1:1/nowhere"
    csv = tmp_path / "in.csv"
    csv.write_text("id\n1\n")
    ran = run("load", str(csv), "--url", url, "--table", "t", "-vv", "--json")
    assert ran.code == 1
    assert secret not in ran.out + ran.err
    assert "someone:***@" in ran.err or "bulkframe: error:" in ran.err
    copy = run("copy", "--table", "t", "--json", env={"BULKFRAME_SOURCE_URL": url, "BULKFRAME_URL": url})
    assert copy.code == 1 and secret not in copy.out + copy.err
    assert json.loads(copy.out)["exit_code"] == 1
