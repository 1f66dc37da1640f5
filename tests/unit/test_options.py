"""Each option is declared once (``bulkframe.options``): checks, CLI choices, signatures
and the node layer read the declarations."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
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
    ("bulk_create", "priority", options.StreamPriority),
    ("bulk_create", "event_format", options.EventFormat),
    ("bulk_create", "compression", options.Compression),
    ("bulk_upsert", "priority", options.StreamPriority),
    ("bulk_upsert", "event_format", options.EventFormat),
]


def _table_absent(peek: Any, table: str) -> bool:
    try:
        peek(f'SELECT count(*) FROM "{table}"')
    except Exception:
        return True
    return False


@pytest.mark.parametrize(
    ("method", "option", "alias"), CHOICE_OPTIONS, ids=[f"{m}-{o}" for m, o, _ in CHOICE_OPTIONS]
)
def test_a_wrong_choice_names_the_option_and_every_allowed_value(
    db: bf.Database, table: str, peek: Any, method: str, option: str, alias: Any
) -> None:
    with pytest.raises(InvalidOptionValueError) as info:
        getattr(db, method)(table, [{"id": 1, "name": "a"}], **{option: "bogus"})
    message = str(info.value)
    assert f"{option}='bogus' is not valid; choose one of: " in message
    assert message.endswith(", ".join(repr(v) for v in typing.get_args(alias)))
    assert _table_absent(peek, table)


def test_error_retry_backoff_choices_come_from_the_literal(db: bf.Database, table: str, peek: Any) -> None:
    with pytest.raises(
        InvalidOptionValueError,
        match="retry_backoff='x' is not valid; choose one of: 'exponential', 'linear', 'constant'",
    ):
        db.bulk_create(table, [{"id": 1}], error_strategy="retry_batch", retry_backoff="x")  # type: ignore[arg-type]
    with pytest.raises(
        InvalidOptionValueError,
        match="error_log_level='loud' is not valid; choose one of: "
        "'debug', 'info', 'warning', 'error', 'critical'",
    ):
        db.bulk_create(table, [{"id": 1}], error_log_level="loud")
    assert _table_absent(peek, table)


@pytest.mark.parametrize(
    ("method", "option", "alias"), CHOICE_OPTIONS, ids=[f"{m}-{o}" for m, o, _ in CHOICE_OPTIONS]
)
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


# -- option groups ---------------------------------------------------------------------

#: Group fields an operation does not offer (its signature lacks them on purpose).
NOT_TAKEN = {
    "bulk_update": {"transformation_rules"},
    "bulk_upsert": {"retry_failed_records"},
}


@pytest.mark.parametrize("group", options.GROUPS, ids=lambda g: g.__name__)
def test_every_group_is_a_frozen_dataclass_with_a_docstring_per_field(group: type) -> None:
    assert dataclasses.is_dataclass(group) and group.__dataclass_params__.frozen  # type: ignore[attr-defined]
    docs = options.field_docs(group)
    names = [f.name for f in dataclasses.fields(group)]
    assert list(docs) == names
    assert all(docs[n].strip() for n in names)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(group(), names[0], None)


@pytest.mark.parametrize("method", sorted(options.OPERATION_GROUPS))
def test_operation_signatures_agree_with_the_groups_they_build(method: str) -> None:
    """Same names, annotations and defaults: the groups are the declaration, the signature
    repeats it for IDEs and type checkers and may not drift."""
    signature = inspect.signature(getattr(bf.Database, method))
    hints = typing.get_type_hints(getattr(bf.Database, method))
    taken: set[str] = set()
    for group in options.OPERATION_GROUPS[method]:
        group_hints = typing.get_type_hints(group)
        for f in dataclasses.fields(group):
            if f.name in NOT_TAKEN.get(method, set()):
                assert f.name not in signature.parameters
                continue
            taken.add(f.name)
            param = signature.parameters[f.name]
            assert param.kind is param.KEYWORD_ONLY, f.name
            assert param.default == f.default, f.name
            assert hints[f.name] == group_hints[f.name], f.name
    # no group field is offered by an operation that does not build that group
    other = {
        f.name
        for g in options.GROUPS
        if g not in options.OPERATION_GROUPS[method]
        for f in dataclasses.fields(g)
    } - taken
    assert not other & set(signature.parameters), method


@pytest.mark.parametrize(
    ("group", "kwargs", "message"),
    [
        (
            options.ErrorPolicy,
            {"error_strategy": "later"},
            "error_strategy='later' is not valid; choose one of: 'stop', 'continue', 'retry_batch'",
        ),
        (options.ErrorPolicy, {"max_retries": 2}, "max_retries only apply to error_strategy='retry_batch'"),
        (
            options.ErrorPolicy,
            {"retry_failed_records": True},
            "retry_failed_records=True needs error_strategy=",
        ),
        (options.ErrorPolicy, {"failed_records_callback": 3}, "failed_records_callback must be a callable"),
        (
            options.RuleOptions,
            {"validation_rules": {"a": {}}, "skip_validation": True},
            "validation_rules were given",
        ),
        (options.RunOptions, {"parallel_batches": 0}, "parallel_batches must be a positive int, got 0"),
        (
            options.RunOptions,
            {"load_balancing": "random"},
            "load_balancing='random' is not valid; choose one of: 'round_robin'",
        ),
        (options.RunOptions, {"resumable": True}, "resumable=True needs checkpoint_file"),
        (
            options.ProgressOptions,
            {"progress_interval": -1},
            "progress_interval must be a positive int, got -1",
        ),
        (
            options.ProgressOptions,
            {"progress_callback": "yes"},
            "progress_callback must be True, False or a callable",
        ),
        (options.ProgressOptions, {"progress_format": "bar"}, "progress_format='bar' is not valid"),
        (options.MetricsOptions, {"metrics_file": "m.json"}, "metrics_file needs collect_metrics=True"),
        (
            options.MetricsOptions,
            {"report_format": "xml", "performance_report": True, "report_file": "r"},
            "report_format='xml' is not valid; choose one of: 'json'",
        ),
        (
            options.MigrationOptions,
            {"verification_sample": 0},
            "verification_sample must be a positive int, got 0",
        ),
        (
            options.MigrationOptions,
            {"verification_fields": ["a"]},
            "verification_fields needs verify_migration=True",
        ),
        (options.StreamOptions, {"stream_buffer_size": 0}, "stream_buffer_size must be a positive int"),
        (options.StreamOptions, {"max_latency": -1}, "max_latency must be a non-negative number"),
        (options.StreamOptions, {"stream_timeout": float("nan")}, "stream_timeout must be a positive"),
        (
            options.StreamOptions,
            {"priority": "low"},
            "priority='low' is not valid; choose one of: 'high', 'normal'",
        ),
        (options.MemoryOptions, {"memory_limit": "-5MB"}, "memory_limit='-5MB' is not a size"),
        (options.MemoryOptions, {"compression": "gzip"}, "compression='gzip' is not valid; choose one of"),
        (options.EventOptions, {"event_topic": "t"}, "event_topic and event_sink need publish_events=True"),
        (options.EventOptions, {"publish_events": True, "event_sink": 3}, "event_sink must be a callable"),
        (options.BenchmarkOptions, {"benchmark_warmup": 5}, "need benchmark_mode=True"),
        (
            options.BenchmarkOptions,
            {"benchmark_mode": True, "benchmark_warmup": -1},
            "benchmark_warmup must be",
        ),
    ],
)
def test_one_constructor_validates_and_names_the_option(
    group: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidOptionValueError) as info:
        group(**kwargs)
    assert message in str(info.value)


def test_from_options_takes_the_groups_names_only() -> None:
    policy = options.ErrorPolicy.from_options(
        {"error_strategy": "retry_batch", "max_retries": 5, "batch_size": 9}
    )
    assert (policy.strategy, policy.retries, policy.delay(2), policy.log_level) == ("retry_batch", 5, 2.0, 30)
    run = options.RunOptions.from_options({"max_workers": 4})
    assert (run.workers, run.connections, run.per_batch_commits) == (4, None, True)
    migration = options.MigrationOptions(migration_mode=True)
    assert (migration.verify, migration.sample, migration.fields) == (True, 1000, None)


def test_upsert_takes_progress_options_as_create_does(db: bf.Database, table: str, peek: Any) -> None:
    """Same keywords, same checks, same reports on both operations."""
    seen: dict[str, list[Any]] = {"create": [], "upsert": []}
    db.bulk_create(
        table,
        [{"id": i, "v": i} for i in range(1, 4)],
        primary_key="id",
        batch_size=1,
        progress_callback=seen["create"].append,
        progress_interval=2,
        progress_format="count",
    )
    db.bulk_upsert(
        table,
        [{"id": i, "v": -i} for i in range(1, 4)],
        batch_size=1,
        progress_callback=seen["upsert"].append,
        progress_interval=2,
        progress_format="count",
    )
    assert [p.processed for p in seen["create"]] == [p.processed for p in seen["upsert"]] == [2]
    assert {p.format for p in seen["create"] + seen["upsert"]} == {"count"}
    assert peek(f'SELECT id, v FROM "{table}" ORDER BY id') == [(1, -1), (2, -2), (3, -3)]
    for method in ("bulk_create", "bulk_upsert"):
        with pytest.raises(InvalidOptionValueError, match="progress_interval must be a positive int, got 0"):
            getattr(db, method)(table, [{"id": 9, "v": 9}], progress_interval=0)
    assert peek(f'SELECT count(*) FROM "{table}"') == [(3,)]


def test_every_declared_failed_records_format_has_a_writer() -> None:
    from typing import get_args

    from bulkframe.options import FailedRecordsFormat
    from bulkframe.plan.rejections import writer_for

    for suffix in get_args(FailedRecordsFormat):
        assert callable(writer_for(f"rejects{suffix}"))
    with pytest.raises(InvalidOptionValueError, match=r"unknown extension '\.txt'"):
        writer_for("rejects.txt")
