"""Options of the distributed writers (no engine needed): the library call's options are
accepted or refused by name, and ``import bulkframe`` stays free of Ray and Dask."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bulkframe.distributed.spec import plan_run
from bulkframe.errors import InvalidOptionValueError, NotSupportedError, OptionError

URL = "postgresql://localhost/db"


def test_unknown_option_is_refused_by_name() -> None:
    with pytest.raises(OptionError, match=r"'valdation_rules' \(did you mean 'validation_rules'\?\)"):
        plan_run(URL, "t", "create", {"valdation_rules": {}}, where="to_database")


@pytest.mark.parametrize(
    ("operation", "option"),
    [("create", "parallel_batches"), ("create", "verify_migration"), ("upsert", "progress_callback")],
)
def test_library_options_a_distributed_run_cannot_honour_are_refused(operation: str, option: str) -> None:
    with pytest.raises(NotSupportedError, match=f"'{option}'.*Supported: .*validation_rules"):
        plan_run(URL, "t", operation, {option: 2}, where="BulkDatasink")


def test_option_values_are_checked_as_in_the_library() -> None:
    with pytest.raises(InvalidOptionValueError, match="error_strategy"):
        plan_run(URL, "t", "create", {"error_strategy": "ignore"}, where="to_database")
    with pytest.raises(InvalidOptionValueError, match="dedupe='first' is not valid"):
        plan_run(URL, "t", "upsert", {"dedupe": "first"}, where="to_database")
    with pytest.raises(InvalidOptionValueError, match="resumable=True needs run_id"):
        plan_run(URL, "t", "create", {"resumable": True}, where="to_database")
    with pytest.raises(InvalidOptionValueError, match="run_id must be"):
        plan_run(URL, "t", "create", {"run_id": "a-b; drop"}, where="to_database")
    with pytest.raises(InvalidOptionValueError, match="operation='merge'"):
        plan_run(URL, "t", "merge", {}, where="to_database")


def test_options_split_between_tasks_and_driver() -> None:
    spec = plan_run(
        URL,
        "t",
        "upsert",
        {"validation_rules": {"x": {"min": 0}}, "unique_fields": ["k"], "failed_records_callback": print},
        where="to_database",
    )
    assert spec.task_options["validation_rules"] == {"x": {"min": 0}}
    assert spec.task_options["batch_size"] == 100_000
    assert spec.driver_options["unique_fields"] == ["k"]
    assert spec.failed_records_callback is print
    assert spec.for_tasks().failed_records_callback is None  # never sent to workers


def test_import_bulkframe_does_not_import_the_engines() -> None:
    code = (
        "import sys, bulkframe, bulkframe.distributed.commit, bulkframe.distributed.task\n"
        "bulkframe.connect\n"
        "print(sorted(m for m in ('ray', 'dask', 'distributed') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
