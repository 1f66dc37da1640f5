"""The installed ``bulkframe`` console script as a child process: every verb once, exit
codes, ``--json`` checked through an independent client, stdin and gzip, start-up
imports, and passwords kept out of messages."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

from cli_run import bulkframe_process as run

from suite_backends import independent_query


def test_every_verb_through_the_console_script(url: str, table: str, tmp_path: Path) -> None:
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
    assert independent_query(url, f'SELECT id, name, qty FROM "{table}" ORDER BY id') == [
        (1, "a", 10),
        (2, "b", 20),
        (3, "c", 30),
    ]

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

    upd = run(
        "update",
        "--url",
        url,
        "--table",
        table,
        "--set",
        '{"qty": "qty + 1"}',
        "--where",
        '{"id": {"$in": [1, 5]}}',
        "--json",
    )
    assert upd.code == 0 and upd.json()["updated"] == 2

    dele = run("delete", "--url", url, "--table", table, "--where", '{"id": 3}', "--yes", "--json")
    assert dele.code == 0 and dele.json()["deleted"] == 1
    assert (
        run("delete", "--url", url, "--table", table, "--where", '{"id": 1}').code == 2
    )  # no --yes, no terminal

    expected = [(1, "a", 11), (2, "B", 21), (5, "e", 51)]
    assert independent_query(url, f'SELECT id, name, qty FROM "{table}" ORDER BY id') == expected

    other = f"sqlite:///{tmp_path / 'copy.db'}"
    cp = run("copy", url, other, "--table", table, "--to", "copied", "--verify", "--json")
    assert cp.code == 0, cp.err
    assert cp.json()["verification"]["ok"] and cp.json()["inserted"] == 3
    assert independent_query(other, "SELECT id, name, qty FROM copied ORDER BY id") == expected

    ver = run("verify", url, "--url", other, "--table", "copied", "--from", table)
    assert ver.code == 0 and "3 matched" in ver.out
    assert run("load", str(tmp_path / "missing.csv"), "--url", url, "--table", table).code == 1
    assert run("load", "-", "--url", url, "--table", table, "--on-error", "sometimes").code == 2


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\nfrom bulkframe.cli import main\n"
        "for argv in (['--help'], ['copy', '--help'], ['load', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print([m for m in ('polars', 'pyarrow', 'sqlalchemy', 'adbc_driver_manager') if m in sys.modules], file=sys.stderr)\n"
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
    from_env = run("load", str(csv), "--table", "t", env={"BULKFRAME_URL": url})
    assert from_env.code == 1 and secret not in from_env.out + from_env.err
    copy = run("copy", url, f"sqlite:///{tmp_path / 'x.db'}", "--table", "t", "--json")
    assert copy.code == 1 and secret not in copy.out + copy.err
    assert json.loads(copy.out)["exit_code"] == 1
