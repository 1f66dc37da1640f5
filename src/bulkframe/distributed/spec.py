"""What a distributed run is: target, operation, options (checked once, on the driver)
and the run id that names its staging tables.  A :class:`RunSpec` is pickled to every
task, so it holds plain values only (no connections, no callables except the driver-only
``failed_records_callback``, which is never sent)."""

from __future__ import annotations

import functools
import inspect
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from bulkframe.backends.base import TableRef
from bulkframe.errors import InvalidOptionValueError, NotSupportedError, check_choice, unknown_option
from bulkframe.options import ErrorPolicy, RuleOptions

Operation = Literal["create", "upsert"]

#: Staging tables of a run are named ``<STAGE_PREFIX><run id>_<part>``.
STAGE_PREFIX = "_bf_dist_"
#: The column each staged row carries: its position within its part (for dedupe order).
ROW = "__bf_row"

#: Options every task applies while staging (the rules stage and the error policy).
TASK_OPTIONS = (
    "batch_size",
    "validate_data",
    "skip_validation",
    "validation_rules",
    "transformation_rules",
    "error_strategy",
    "max_errors",
    "retry_failed_records",
    "max_retries",
    "retry_delay",
    "retry_backoff",
    "error_log_level",
)
#: Options the driver applies when it commits (conflicts, keys, rejected-row delivery).
DRIVER_OPTIONS = {
    "create": ("conflict_resolution", "conflict_fields", "primary_key", "schema"),
    "upsert": (
        "unique_fields",
        "update_fields",
        "insert_fields",
        "conflict_resolution",
        "upsert_conditions",
        "dedupe",
        "create_unique_index",
        "schema",
    ),
}
#: Options of the distributed writers themselves.
RUN_OPTIONS = ("failed_records_file", "failed_records_callback", "resumable", "run_id", "auto_cleanup")

_RUN_ID = re.compile(r"^[A-Za-z0-9_]{1,32}$")


@dataclass(frozen=True)
class RunSpec:
    """One distributed write, as every task and the driver see it."""

    url: str
    target: TableRef
    operation: Operation
    run_id: str
    #: keyword options of the staging ``bulk_create`` each task runs
    task_options: dict[str, Any]
    #: the operation's own options the driver applies when it commits
    driver_options: dict[str, Any]
    resumable: bool = False
    auto_cleanup: bool = True
    failed_records_file: str | None = None
    #: whether the target existed when the run started (set by the driver before the
    #: tasks run); a task that then finds no target refuses to stage instead of
    #: inferring a stage of its own (the table was dropped, or the run is long over)
    target_exists: bool | None = None
    #: driver-only (never pickled to tasks: :meth:`for_tasks` drops it)
    failed_records_callback: Any = field(default=None, compare=False)

    @property
    def policy(self) -> ErrorPolicy:
        return ErrorPolicy.from_options(self.task_options)

    @property
    def keys_needed(self) -> bool:
        """Whether the commit matches rows by key (so a stage is deduplicated by key)."""
        return self.operation == "upsert" or self.driver_options.get("conflict_resolution") in (
            "skip",
            "update",
        )

    def stage_ref(self, part: int) -> TableRef:
        return TableRef(f"{STAGE_PREFIX}{self.run_id}_{part:06d}", self.target.schema)

    @property
    def stage_prefix(self) -> str:
        return f"{STAGE_PREFIX}{self.run_id}_"

    def for_tasks(self) -> RunSpec:
        """The spec without the driver-only callback (which may not pickle)."""
        return replace(self, failed_records_callback=None)


@functools.cache
def _signature_defaults(method: str) -> dict[str, Any]:
    from bulkframe.database import Database

    params = inspect.signature(getattr(Database, method)).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def plan_run(url: str, table: str, operation: str, options: Mapping[str, Any], *, where: str) -> RunSpec:
    """Check ``options`` against the operation's library call and split them into what
    each task applies and what the driver applies.

    Raises
    ------
    OptionError
        A name neither the library call nor the distributed writer knows.
    NotSupportedError
        An option of the library call that a distributed run cannot honour (named, with
        the supported ones listed).
    InvalidOptionValueError
        A value outside its allowed set.
    """
    check_choice("operation", operation, Operation)
    method = "bulk_create" if operation == "create" else "bulk_upsert"
    library = _signature_defaults(method)
    supported = (*TASK_OPTIONS, *DRIVER_OPTIONS[operation], *RUN_OPTIONS)
    unknown = [k for k in options if k not in library and k not in RUN_OPTIONS]
    if unknown:
        raise unknown_option(unknown, supported, where=where)
    unsupported = [k for k in options if k not in supported]
    if unsupported:
        raise NotSupportedError(
            f"{where}: option(s) {', '.join(repr(k) for k in sorted(unsupported))} of {method} are not "
            f"supported by the distributed writers. Supported: {', '.join(sorted(supported))}."
        )
    if not isinstance(table, str) or not table:
        raise InvalidOptionValueError(f"{where}: table must be a non-empty table name, got {table!r}")
    full = {**library, **options}
    RuleOptions.from_options(full)  # checks the values, as the library call does
    policy = ErrorPolicy.from_options(full)
    resumable = full.get("resumable", False)
    run_id = options.get("run_id")
    if not isinstance(resumable, bool):
        raise InvalidOptionValueError(f"resumable must be True or False, got {resumable!r}")
    if resumable and run_id is None:
        raise InvalidOptionValueError(
            "resumable=True needs run_id='…' (letters, digits, _): the same run_id on a rerun resumes "
            "after the parts that committed"
        )
    if run_id is not None and (not isinstance(run_id, str) or not _RUN_ID.match(run_id)):
        raise InvalidOptionValueError(f"run_id must be 1-32 letters, digits or underscores, got {run_id!r}")
    if operation == "create":
        check_choice("conflict_resolution", full["conflict_resolution"], ("error", "skip", "update"))
    else:
        check_choice("conflict_resolution", full["conflict_resolution"], ("update", "skip"))
        check_choice("dedupe", full["dedupe"], ("last", "error"))
    batch_size = full["batch_size"] if full.get("batch_size") is not None else 100_000
    task = {k: full[k] for k in TASK_OPTIONS if k in full}
    task["batch_size"] = batch_size
    if policy.strategy == "retry_batch":  # one name for the strategy in the tasks
        task["error_strategy"], task["retry_failed_records"] = "retry_batch", False
    driver = {k: full[k] for k in DRIVER_OPTIONS[operation] if k in full}
    schema = full.get("schema")
    return RunSpec(
        url=url,
        target=TableRef(table, schema),
        operation=operation,  # type: ignore[arg-type]
        run_id=run_id or uuid.uuid4().hex[:16],
        task_options=task,
        driver_options=driver,
        resumable=resumable,
        auto_cleanup=bool(full.get("auto_cleanup", True)),
        failed_records_file=full.get("failed_records_file"),
        failed_records_callback=full.get("failed_records_callback"),
    )
