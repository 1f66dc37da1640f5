"""Run the command line: in this process (``bulkframe``: fast, most tests) or as the
installed ``bulkframe`` console script in a child process (``bulkframe_process``: what
users run; tests/cli/test_cli_process.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkframe.cli import main

SCRIPT = Path(sys.executable).with_name("bulkframe")


def script() -> list[str]:
    if SCRIPT.exists():
        return [str(SCRIPT)]
    found = shutil.which("bulkframe")
    assert found, "the bulkframe console script is not installed (pip install -e .)"
    return [found]


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """The single JSON document on stdout (``--json``)."""
        lines = [line for line in self.out.splitlines() if line.strip()]
        assert len(lines) == 1, self.out
        return json.loads(lines[0])

    def jsons(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def _bytes(stdin: bytes | str | None) -> bytes:
    return stdin.encode() if isinstance(stdin, str) else (stdin or b"")


@contextlib.contextmanager
def _environment(env: dict[str, str] | None) -> Iterator[None]:
    saved = dict(os.environ)
    for name in [n for n in os.environ if n.startswith("BULKFRAME_") and not n.startswith("BULKFRAME_TEST")]:
        del os.environ[name]
    os.environ.update(env or {})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def bulkframe(*args: str, stdin: bytes | str | None = None, env: dict[str, str] | None = None) -> Ran:
    """``main(args)`` in this process with its own stdin (not a terminal), stdout and stderr."""
    fake_in = io.TextIOWrapper(io.BufferedReader(io.BytesIO(_bytes(stdin))), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = fake_in, out, err
    try:
        with _environment(env):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: usage errors and --help
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return Ran(code, out.getvalue(), err.getvalue())


def bulkframe_process(*args: str, stdin: bytes | str | None = None, env: dict[str, str] | None = None) -> Ran:
    """Run the installed ``bulkframe ARGS…`` console script as a child process."""
    environment = {
        n: v
        for n, v in os.environ.items()
        if not (n.startswith("BULKFRAME_") and not n.startswith("BULKFRAME_TEST"))
    }
    environment.update({"PYTHONWARNINGS": "error", **(env or {})})
    proc = subprocess.run(
        [*script(), *args], input=_bytes(stdin), capture_output=True, env=environment, timeout=600
    )
    return Ran(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
