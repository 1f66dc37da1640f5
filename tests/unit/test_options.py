"""Each option is declared once (``bulkframe.options``): checks, CLI choices, signatures
and the node layer read the declarations."""

from __future__ import annotations

import argparse
import typing
from typing import Any

import pytest

import bulkframe as bf
from bulkframe import options
from bulkframe.errors import InvalidOptionValueError

# (method, option, Literal alias) for every choice option of the public operations
CHOICE_OPTIONS = [
    ("bulk_create", "conflict_resolution", options.ConflictResolution),
    ("bulk_create", "error_strategy", options.ErrorStrategy),
    ("bulk_create", "progress_format", options.ProgressFormat),
    ("bulk_create", "load_balancing", options.LoadBalancing),
    ("bulk_create", "report_format", options.ReportFormat),
    ("bulk_upsert", "conflict_resolution", options.UpsertConflictResolution),
    ("bulk_upsert", "dedupe", options.Dedupe),
    ("bulk_upsert", "error_strategy", options.ErrorStrategy),
    ("bulk_upsert", "progress_format", options.ProgressFormat),
]


def _table_absent(peek: Any, table: str) -> bool:
    try:
        peek(f'SELECT count(*) FROM "{table}"')
    except Exception:
        return True
    return False


@pytest.mark.parametrize(("method", "option", "alias"), CHOICE_OPTIONS,
                         ids=[f"{m}-{o}" for m, o, _ in CHOICE_OPTIONS])
def test_a_wrong_choice_names_the_option_and_every_allowed_value(
        db: bf.Database, table: str, peek: Any, method: str, option: str, alias: Any) -> None:
    with pytest.raises(InvalidOptionValueError) as info:
        getattr(db, method)(table, [{"id": 1, "name": "a"}], **{option: "bogus"})
    message = str(info.value)
    assert f"{option}='bogus' is not valid; choose one of: " in message
    assert message.endswith(", ".join(repr(v) for v in typing.get_args(alias)))
    assert _table_absent(peek, table)


def test_error_retry_backoff_choices_come_from_the_literal(db: bf.Database, table: str, peek: Any) -> None:
    with pytest.raises(InvalidOptionValueError, match="retry_backoff='x' is not valid; choose one of: "
                       "'exponential', 'linear', 'constant'"):
        db.bulk_create(table, [{"id": 1}], error_strategy="retry_batch", retry_backoff="x")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionValueError, match="error_log_level='loud' is not valid; choose one of: "
                       "'debug', 'info', 'warning', 'error', 'critical'"):
        db.bulk_create(table, [{"id": 1}], error_log_level="loud")
    assert _table_absent(peek, table)


@pytest.mark.parametrize(("method", "option", "alias"), CHOICE_OPTIONS,
                         ids=[f"{m}-{o}" for m, o, _ in CHOICE_OPTIONS])
def test_signatures_annotate_choice_options_with_their_alias(method: str, option: str, alias: Any) -> None:
    hints = typing.get_type_hints(getattr(bf.Database, method))
    assert alias in (hints[option], *typing.get_args(hints[option]))


def test_cli_conflict_choices_come_from_the_literal() -> None:
    from bulkframe.cli import _parser

    load = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["load"]
    conflict = next(a for a in load._actions if a.dest == "conflict")
    assert tuple(conflict.choices) == typing.get_args(options.ConflictResolution)  # type: ignore[arg-type]


def test_choices_refuses_a_non_literal() -> None:
    assert options.choices(options.Dedupe) == ("last", "first", "error")
    with pytest.raises(TypeError):
        options.choices(str)
