"""docs/cli.md documents every subcommand and every option the parser has."""

from __future__ import annotations

import argparse
from pathlib import Path

from bulkframe.cli import _parser

DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()


def test_every_option_is_documented() -> None:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for command, parser in sub.choices.items():
        if f"`{command}" not in DOC:
            missing.append(command)
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help" and flag not in DOC:
                    missing.append(f"{command} {flag}")
    assert not missing, f"not in docs/cli.md: {missing}"


def test_exit_codes_are_documented() -> None:
    from bulkframe.cli import config

    for code in (
        config.EXIT_OK,
        config.EXIT_FAILED,
        config.EXIT_USAGE,
        config.EXIT_PARTIAL,
        config.EXIT_MISMATCH,
    ):
        assert f"| {code} |" in DOC
