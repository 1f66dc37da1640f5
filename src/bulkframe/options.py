"""Every option declared once: the option groups the ``Database.bulk_*`` methods build
from their keyword options.

Choice options are ``Literal`` aliases, declared in :mod:`bulkframe.choices` and
re-exported here; the runtime checks (:func:`check_choice`), the CLI's ``choices=`` and
the node layer's notes read their values with ``typing.get_args``, so adding a value
there adds it everywhere.  Importing this module is cheap (stdlib only).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import textwrap
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

# the choice aliases live in bulkframe.choices (cheap to import); re-exported here
from bulkframe.choices import AuditLevel as AuditLevel
from bulkframe.choices import Compression as Compression
from bulkframe.choices import ConflictResolution as ConflictResolution
from bulkframe.choices import Dedupe as Dedupe
from bulkframe.choices import ErrorStrategy as ErrorStrategy
from bulkframe.choices import EventFormat as EventFormat
from bulkframe.choices import FailedRecordsFormat as FailedRecordsFormat
from bulkframe.choices import LoadBalancing as LoadBalancing
from bulkframe.choices import LogLevelName as LogLevelName
from bulkframe.choices import ProgressFormat as ProgressFormat
from bulkframe.choices import RelationshipStrategy as RelationshipStrategy
from bulkframe.choices import ReportFormat as ReportFormat
from bulkframe.choices import RetryBackoff as RetryBackoff
from bulkframe.choices import StreamPriority as StreamPriority
from bulkframe.choices import SyncMode as SyncMode
from bulkframe.choices import UpsertConflictResolution as UpsertConflictResolution
from bulkframe.choices import VerifyMode as VerifyMode
from bulkframe.choices import choices as choices

# -- option groups ---------------------------------------------------------------------
#
# One frozen dataclass per group.  Field names are the keyword options of the
# ``Database.bulk_*`` methods (tests/unit/test_options.py checks that the signatures use
# the same names, annotations and defaults); a field's docstring is its documentation
# (rendered by mkdocstrings, read by the node layer's parameter table).  The constructor
# validates: choice fields against their ``Literal``, then the group's own rules.


def field_docs(cls: type) -> dict[str, str]:
    """``{field name: docstring}`` of a dataclass's fields (the string literal under each)."""
    return dict(_field_docs(cls))


@functools.cache
def _field_docs(cls: type) -> tuple[tuple[str, str], ...]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: list[tuple[str, str]] = []
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs.append((node.target.id, inspect.cleandoc(after.value.value)))
    return tuple(docs)


@functools.cache
def literal_fields(cls: type) -> dict[str, tuple[Any, ...]]:
    """``{field: allowed values}`` for the fields annotated with a ``Literal`` alias
    (``None`` is among the values when the field is optional)."""
    hints = get_type_hints(cls)
    out: dict[str, tuple[Any, ...]] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        parts = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
        literal = [p for p in parts if get_origin(p) is Literal]
        if literal:
            extra = ((None,) if type(None) in parts else ()) + ((True, False) if bool in parts else ())
            out[f.name] = get_args(literal[0]) + extra
    return out


G = TypeVar("G", bound="OptionGroup")


class OptionGroup:
    """Base of the option groups: the constructor checks every choice field against its
    ``Literal``, then the group's own rules (:meth:`_check`)."""

    def __post_init__(self) -> None:
        from bulkframe.errors import check_choice

        for name, allowed in literal_fields(type(self)).items():  # type: ignore[arg-type]
            value = getattr(self, name)
            if not ((value is None and None in allowed) or (isinstance(value, bool) and True in allowed)):
                check_choice(
                    name, value, tuple(v for v in allowed if v is not None and not isinstance(v, bool))
                )
        self._check()

    def _check(self) -> None:
        """Refuse values and combinations the group cannot honour."""

    @classmethod
    def from_options(cls: type[G], options: Mapping[str, Any]) -> G:
        """The group from an operation's keyword options (other names are ignored; a
        field the mapping lacks keeps its default)."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in options.items() if k in names})


def _invalid(message: str) -> Exception:
    from bulkframe.errors import InvalidOptionValueError

    return InvalidOptionValueError(message)


def _positive_int(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise _invalid(f"{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class RuleOptions(OptionGroup):
    """The rules stage: transformation and validation before rows are sent
    (``bulk_create``, ``bulk_upsert``; ``bulk_update`` with rows)."""

    validate_data: bool = True
    """Apply ``validation_rules`` and the table's own constraints (NOT NULL,
    ``varchar(n)``) before sending; ``False`` skips them (type casting always happens)."""
    skip_validation: bool = False
    """``True`` skips validation, like ``validate_data=False``."""
    validation_rules: Mapping[str, Mapping[str, Any]] | None = None
    """Per-column rules, ``{"price": {"min": 0.01, "max": 10000}, ...}``; see docs/rules.md."""
    transformation_rules: Mapping[str, str] | None = None
    """Per-column expressions applied before validation,
    ``{"price": "price * 1.1", "category": "category.lower()"}``."""

    @property
    def validate(self) -> bool:
        """Whether validation runs."""
        return bool(self.validate_data) and not self.skip_validation

    def _check(self) -> None:
        if self.validation_rules and not self.validate:
            raise _invalid(
                "validation_rules were given, but skip_validation=True / validate_data=False turns "
                "validation off; remove one of them"
            )
        for name in ("validation_rules", "transformation_rules"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                raise _invalid(f"{name} must be a dict, got {type(value).__name__}")


def log_level(value: str | int | None) -> int:
    """``"warning"`` / ``"INFO"`` / ``logging.DEBUG`` → a logging level."""
    import logging

    from bulkframe.errors import check_choice

    if value is None:
        return logging.WARNING
    if isinstance(value, int):
        return value
    check_choice("error_log_level", str(value).lower(), LogLevelName)
    return int(logging.getLevelName(str(value).upper()))


@dataclass(frozen=True)
class ErrorPolicy(OptionGroup):
    """How an operation treats rejected rows and failed batches.

    ``error_strategy``:

    - ``"stop"`` (default): one transaction for the call; any rejected row raises
      ``ValidationError`` with the full report and nothing is written.
    - ``"continue"``: each batch commits on its own; rejected rows are reported and every
      other row lands.  A batch the database refuses is split until the offending rows
      are isolated.
    - ``"retry_batch"``: like ``"continue"``, and batches failing with a transient error
      (connection lost, serialization failure, deadlock, lock timeout) are retried
      ``max_retries`` times, ``retry_delay`` seconds apart, growing by ``retry_backoff``.
    """

    error_strategy: ErrorStrategy = "stop"
    """How rejected rows and failed batches are treated.  ``"stop"``: nothing is written;
    ``"continue"``: batches commit on their own and rejected rows are reported;
    ``"retry_batch"``: like ``"continue"``, and transient errors are retried."""
    max_errors: int | None = None
    """Stop (``SafetyLimitError``) once more rows than this were rejected."""
    retry_failed_records: bool = False
    """With ``error_strategy="continue"``: retry batches that fail with a transient error
    (that is ``"retry_batch"``); data errors are never retried.  Refused with ``"stop"``."""
    max_retries: int | None = None
    """Retries of a transient error under ``"retry_batch"`` (default 3)."""
    retry_delay: float | None = None
    """Seconds before the first retry (default 1.0)."""
    retry_backoff: RetryBackoff | None = None
    """How the delay grows between retries (default ``"exponential"``)."""
    failed_records_file: str | None = None
    """Write rejected rows and reasons to ``.jsonl``, ``.json``, ``.csv`` or ``.parquet``."""
    failed_records_callback: Callable[[Any], Any] | None = None
    """Called once with the rejected rows (a Polars DataFrame) when there are any."""
    error_log_level: str | int = "warning"
    """Level at which rejections are logged (a name or a ``logging`` level)."""

    @property
    def strategy(self) -> ErrorStrategy:
        """The effective strategy (``retry_failed_records`` means ``"retry_batch"``)."""
        return "retry_batch" if self.retry_failed_records else self.error_strategy

    @property
    def retries(self) -> int:
        """Retries of a transient error (``max_retries``, default 3)."""
        return 3 if self.max_retries is None else self.max_retries

    @property
    def log_level(self) -> int:
        """``error_log_level`` as a ``logging`` level."""
        return log_level(self.error_log_level)

    @property
    def per_batch(self) -> bool:
        """Batches commit independently."""
        return self.strategy != "stop"

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        base = 1.0 if self.retry_delay is None else self.retry_delay
        if self.retry_backoff in (None, "exponential"):
            return float(base * 2 ** (attempt - 1))
        if self.retry_backoff == "linear":
            return float(base * attempt)
        return float(base)

    def _check(self) -> None:
        if self.retry_failed_records and self.error_strategy == "stop":
            raise _invalid(
                "retry_failed_records=True needs error_strategy='continue' or 'retry_batch': with "
                "'stop' the first failure ends the call"
            )
        given = [n for n in ("max_retries", "retry_delay", "retry_backoff") if getattr(self, n) is not None]
        if given and self.strategy != "retry_batch":
            raise _invalid(
                f"{', '.join(given)} only apply to error_strategy='retry_batch' (got {self.strategy!r}, which "
                "retries nothing); pass error_strategy='retry_batch' or drop them"
            )
        if self.max_errors is not None and (not isinstance(self.max_errors, int) or self.max_errors < 0):
            raise _invalid(f"max_errors must be a non-negative int or None, got {self.max_errors!r}")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise _invalid(f"max_retries must be a non-negative int, got {self.max_retries!r}")
        if self.retry_delay is not None and (
            not isinstance(self.retry_delay, (int, float)) or self.retry_delay < 0
        ):
            raise _invalid(f"retry_delay must be a non-negative number, got {self.retry_delay!r}")
        if self.failed_records_callback is not None and not callable(self.failed_records_callback):
            raise _invalid(
                "failed_records_callback must be a callable receiving a Polars DataFrame, "
                f"got {self.failed_records_callback!r}"
            )
        log_level(self.error_log_level)
        if self.failed_records_file is not None:
            object.__setattr__(self, "failed_records_file", str(self.failed_records_file))
            failed_records_format(self.failed_records_file)  # refuse an unknown extension up front


@dataclass(frozen=True)
class RunOptions(OptionGroup):
    """Parallelism, resumability and cleanup of one ``bulk_create``."""

    parallel_batches: int | None = None
    """Write up to this many batches concurrently, each on its own connection (needs a
    backend with concurrent writers); batches then commit on their own."""
    max_workers: int | None = None
    """Most concurrent writers (with ``parallel_batches``: the smaller of the two)."""
    connection_pool_size: int | None = None
    """Most pooled connections the call holds at once: at least the writers, at most the
    Database pool's ``pool_size + max_overflow``."""
    load_balancing: LoadBalancing | None = None
    """Batches go to the next free writer in input order."""
    resumable: bool = False
    """Record each committed batch in a ledger table (in the batch's own transaction); a
    rerun of the same call resumes after the last committed batch."""
    checkpoint_file: str | None = None
    """File the ledger is mirrored to; it names the run (needed with ``resumable``)."""
    checkpoint_interval: int | None = None
    """Rows between mirrors of the ledger to ``checkpoint_file``."""
    auto_cleanup: bool = True
    """After success, remove the ledger rows and the checkpoint file."""
    cleanup_on_failure: bool = True
    """Always on: staging tables are dropped or rolled back (``False`` is refused)."""
    cleanup_temp_files: bool = True
    """Always on: no temporary files are written (``False`` is refused)."""
    cleanup_connections: bool = False
    """Close the call's connection afterwards instead of returning it to the pool."""

    @property
    def workers(self) -> int:
        """Concurrent writers, from ``parallel_batches`` and ``max_workers``."""
        if self.max_workers and not self.parallel_batches:
            return self.max_workers
        return min(self.parallel_batches or 1, self.max_workers or self.parallel_batches or 1)

    @property
    def connections(self) -> int | None:
        """``connection_pool_size``."""
        return self.connection_pool_size

    @property
    def per_batch_commits(self) -> bool:
        return self.workers > 1 or bool(self.resumable)

    def _check(self) -> None:
        for name in ("parallel_batches", "max_workers", "connection_pool_size", "checkpoint_interval"):
            _positive_int(name, getattr(self, name))
        if self.connection_pool_size is not None and self.connection_pool_size < self.workers:
            raise _invalid(
                f"connection_pool_size={self.connection_pool_size} is smaller than the {self.workers} "
                "concurrent writers (one connection each); raise it or lower parallel_batches/max_workers"
            )
        if not self.resumable and (self.checkpoint_file is not None or self.checkpoint_interval is not None):
            raise _invalid("checkpoint_file and checkpoint_interval need resumable=True")
        if self.resumable and self.checkpoint_file is None:
            raise _invalid(
                "resumable=True needs checkpoint_file=... (it names the run, so a rerun can find it)"
            )
        if not self.cleanup_on_failure:
            raise _invalid(
                "cleanup_on_failure=False is not supported: staging tables are session-private and "
                "vanish with the rolled-back transaction; the ledger of a resumable load is always kept "
                "after a failure so the load can resume"
            )
        if not self.cleanup_temp_files:
            raise _invalid(
                "cleanup_temp_files=False is not supported: the PostgreSQL and SQLite paths write no "
                "temporary files, so there is nothing to keep"
            )


@dataclass(frozen=True)
class ProgressOptions(OptionGroup):
    """Progress reporting of a row-writing operation (``bulk_create``, ``bulk_upsert``)."""

    progress_callback: bool | Callable[..., Any] | None = None
    """``True`` shows a progress bar (terminal or notebook); a callable receives a
    ``Progress``."""
    progress_interval: int | None = None
    """Rows between reports (default: every batch)."""
    progress_format: ProgressFormat = "both"
    """What the bar (and ``str(Progress)``) shows."""

    def _check(self) -> None:
        interval = self.progress_interval
        if interval is not None and (not isinstance(interval, int) or interval <= 0):
            raise _invalid(f"progress_interval must be a positive int, got {interval!r}")
        callback = self.progress_callback
        if not (callback is None or isinstance(callback, bool) or callable(callback)):
            raise _invalid(f"progress_callback must be True, False or a callable, got {callback!r}")


@dataclass(frozen=True)
class MetricsOptions(OptionGroup):
    """Performance metrics of one ``bulk_create``, returned in ``result.metrics``."""

    collect_metrics: bool = False
    """Per-batch metrics (rows, seconds, retries, bytes) and totals in ``result.metrics``."""
    metrics_file: str | None = None
    """Also write them as JSON to this file (needs ``collect_metrics``)."""
    metrics_interval: int | None = None
    """Take a snapshot (rows, elapsed, rows/s, RSS) every this many rows (needs
    ``collect_metrics``)."""
    monitor_memory: bool = False
    """Add the process's peak resident memory."""
    monitor_cpu: bool = False
    """Add the process's CPU seconds."""
    monitor_disk_io: bool = False
    """Add the process's disk bytes read and written (needs psutil)."""
    monitor_network: bool = False
    """Add the host's network bytes sent and received (needs psutil)."""
    track_execution_time: bool = False
    """Alias: per-batch timings."""
    track_memory_usage: bool = False
    """Alias of ``monitor_memory``."""
    track_io_operations: bool = False
    """Alias of ``monitor_disk_io`` and ``monitor_network``."""
    track_batch_performance: bool = False
    """Alias: per-batch records."""
    performance_report: bool = False
    """Write the summary to ``report_file``."""
    report_format: ReportFormat = "json"
    """Format of ``report_file``."""
    report_file: str | None = None
    """Where the performance report goes (needs ``performance_report``)."""

    @property
    def batches(self) -> bool:
        """One record per batch (rows, seconds, retries, Arrow bytes)."""
        return bool(
            self.collect_metrics
            or self.track_batch_performance
            or self.track_execution_time
            or self.performance_report
        )

    @property
    def memory(self) -> bool:
        return bool(self.monitor_memory or self.track_memory_usage)

    @property
    def cpu(self) -> bool:
        return bool(self.monitor_cpu)

    @property
    def disk_io(self) -> bool:
        return bool(self.monitor_disk_io or self.track_io_operations)

    @property
    def network(self) -> bool:
        return bool(self.monitor_network or self.track_io_operations)

    @property
    def interval(self) -> int | None:
        return self.metrics_interval

    @property
    def files(self) -> tuple[str, ...]:
        """JSON files the summary is written to."""
        return tuple(str(f) for f in (self.metrics_file, self.report_file) if f)

    @property
    def enabled(self) -> bool:
        return any(
            (self.batches, self.memory, self.cpu, self.disk_io, self.network, self.interval, self.files)
        )

    def _check(self) -> None:
        interval = self.metrics_interval
        if interval is not None and (not isinstance(interval, int) or interval < 1):
            raise _invalid(f"metrics_interval must be a positive int, got {interval!r}")
        if self.metrics_file and not self.collect_metrics:
            raise _invalid("metrics_file needs collect_metrics=True")
        if self.metrics_interval and not self.collect_metrics:
            raise _invalid("metrics_interval needs collect_metrics=True")
        if self.report_file and not self.performance_report:
            raise _invalid("report_file needs performance_report=True")
        if self.performance_report and not self.report_file:
            raise _invalid("performance_report=True needs report_file=... (a .json path)")
        if self.disk_io or self.network:
            try:
                import psutil  # noqa: F401
            except ImportError as exc:
                from bulkframe.errors import MissingDependencyError

                raise MissingDependencyError(
                    "monitor_disk_io / monitor_network / track_io_operations need psutil. "
                    "Install with: pip install psutil"
                ) from exc


@dataclass(frozen=True)
class MigrationOptions(OptionGroup):
    """Data-migration options of ``bulk_create``."""

    migration_mode: bool = False
    """A data migration: ``preserve_ids`` and ``verify_migration`` default to True."""
    preserve_ids: bool | None = None
    """``True``/``None``: ids in the input are inserted as given and the identity sequence
    is moved past them.  ``False``: identity key columns are dropped from the input and the
    database assigns new ids."""
    disable_triggers: bool = False
    """Turn the table's user triggers off while bulkframe writes (PostgreSQL, inside each
    write transaction; needs ownership)."""
    verify_migration: bool | None = None
    """After the load, read back a uniform sample of written rows by key and compare them;
    a missing or different row raises ``VerificationError``."""
    verification_sample: int = 1000
    """Rows in the verification sample."""
    verification_fields: Sequence[str] | None = None
    """Columns the verification compares (default: all)."""

    @property
    def verify(self) -> bool:
        """Whether the load is verified (``verify_migration``, default ``migration_mode``)."""
        return bool(self.migration_mode) if self.verify_migration is None else bool(self.verify_migration)

    @property
    def sample(self) -> int:
        return self.verification_sample

    @property
    def fields(self) -> tuple[str, ...] | None:
        return tuple(self.verification_fields) if self.verification_fields is not None else None

    def _check(self) -> None:
        sample = self.verification_sample
        if not isinstance(sample, int) or isinstance(sample, bool) or sample < 1:
            raise _invalid(f"verification_sample must be a positive int, got {sample!r}")
        if self.verification_fields is not None and not self.verify:
            raise _invalid("verification_fields needs verify_migration=True (or migration_mode=True)")


@dataclass(frozen=True)
class LoadOptions(OptionGroup):
    """How ``bulk_create`` loads rows, where databases differ (``docs/backends.md`` says
    what each option means on each database).  An option set to anything but its default
    on a database that has no meaning for it is refused, naming the option and the
    database (the backend's ``capabilities.load_options`` lists those it honours)."""

    use_load_data: bool | None = None
    """MySQL: ``True``/``None`` load through ``LOAD DATA LOCAL INFILE``; ``False`` writes
    multi-row ``INSERT`` statements instead (slower)."""
    mysql_options: Mapping[str, Any] | None = None
    """MySQL: ``LOAD DATA`` clauses (``fields_terminated_by``, ``lines_terminated_by``,
    ``ignore_lines``, ``local_infile=True``); a key with no meaning for the load is refused
    by name."""
    disable_foreign_keys: bool = False
    """Skip foreign-key checks for the rows this call loads (MySQL: the session's
    ``foreign_key_checks = 0`` during each load, always restored).  Rows that violate a
    foreign key then stay in the table."""
    disable_autocommit: bool = True
    """Write inside explicit transactions (what bulkframe always does); ``False`` is
    refused."""

    def _check(self) -> None:
        for name in ("disable_foreign_keys", "disable_autocommit"):
            if not isinstance(getattr(self, name), bool):
                raise _invalid(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.use_load_data is not None and not isinstance(self.use_load_data, bool):
            raise _invalid(f"use_load_data must be True, False or None, got {self.use_load_data!r}")
        if self.mysql_options is not None and not isinstance(self.mysql_options, Mapping):
            raise _invalid(f"mysql_options must be a mapping, got {self.mysql_options!r}")
        if not self.disable_autocommit:
            raise _invalid(
                "disable_autocommit=False is not supported: bulkframe writes every batch inside an "
                "explicit transaction (error_strategy decides how often it commits)"
            )

    def changed(self) -> list[str]:
        """The options set to something other than their default."""
        return [
            f.name
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
            and not (f.name == "mysql_options" and not self.mysql_options)
        ]


def _names(name: str, value: Any) -> tuple[str, ...] | None:
    """A list of column names (``None`` stays ``None``); anything else is refused."""
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"{name} must be a list of column names, got {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class SyncOptions(OptionGroup):
    """Synchronisation of a table with a source (``bulk_upsert``; see docs/sync.md).

    ``sync_mode``:

    - ``None`` (default): a plain upsert.
    - ``"incremental"``: only input rows whose ``sync_timestamp_field`` is later than
      ``last_sync_timestamp`` are applied; ``result.high_water_mark`` is the latest
      timestamp seen (kept in ``sync_state_table`` when one is named).
    - ``"full"``: the table is made equal to the input for the synced key space: rows are
      upserted, then stored rows whose key is absent from the input (within
      ``sync_scope``) are deleted, or soft-deleted with ``soft_delete=True``.
    - ``"delta"``: the input is a change set; ``operation_field`` says per row
      ``"insert"``, ``"update"`` or ``"delete"``; changes apply in input order.
    """

    sync_mode: SyncMode | None = None
    """How the input relates to the table: ``"incremental"``, ``"full"`` or ``"delta"``
    (``None``: a plain upsert)."""
    last_sync_timestamp: Any = None
    """Incremental sync: apply only rows whose ``sync_timestamp_field`` is later than this
    (a datetime, date, number or ISO-8601 text; default: the value kept in
    ``sync_state_table``, else every row)."""
    sync_timestamp_field: str = "updated_at"
    """The column that says when a source row last changed (incremental sync, and
    ``conflict_resolution="newest_wins"``)."""
    sync_state_table: str | None = None
    """Keep the high-water mark of each incremental sync in this table (created on first
    use, written in the sync's transaction) and start the next run from it."""
    sync_name: str | None = None
    """The name a sync's state is kept under in ``sync_state_table`` (default: the table's
    name)."""
    sync_scope: Mapping[str, Any] | None = None
    """Full sync: the filter (docs/filters.md) that selects the stored rows the input
    stands for; stored rows outside it are never deleted (default: the whole table)."""
    operation_field: str = "operation"
    """Delta sync: the input column holding each change's operation (``"insert"``,
    ``"update"`` or ``"delete"``); it is not written to the table."""

    @property
    def mode(self) -> str:
        """The sync mode, ``"upsert"`` for a plain upsert."""
        return self.sync_mode or "upsert"

    def _check(self) -> None:
        for name in ("sync_timestamp_field", "operation_field"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise _invalid(f"{name} must be a column name, got {getattr(self, name)!r}")
        for name in ("sync_state_table", "sync_name"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise _invalid(f"{name} must be a non-empty str, got {value!r}")
        given = {
            "last_sync_timestamp": self.last_sync_timestamp is not None,
            "sync_state_table": self.sync_state_table is not None,
            "sync_name": self.sync_name is not None,
        }
        wrong = [k for k, v in given.items() if v and self.sync_mode != "incremental"]
        if wrong:
            raise _invalid(
                f"{', '.join(wrong)} only apply to sync_mode='incremental' (got {self.sync_mode!r})"
            )
        if self.sync_scope is not None and self.sync_mode != "full":
            raise _invalid(f"sync_scope only applies to sync_mode='full' (got {self.sync_mode!r})")
        if self.sync_scope is not None and not isinstance(self.sync_scope, Mapping):
            raise _invalid(f"sync_scope must be a filter (a dict), got {type(self.sync_scope).__name__}")


@dataclass(frozen=True)
class ChangeDetection(OptionGroup):
    """Change detection of ``bulk_upsert``: stored rows equal to the incoming ones are left
    alone (no new row version, no trigger fires) and counted ``unchanged``."""

    detect_changes: bool = False
    """Compare each incoming row with the stored one in SQL (``IS DISTINCT FROM``) and write
    only rows that differ; the others are counted in ``result.unchanged``."""
    change_detection_fields: Sequence[str] | None = None
    """The columns compared (default: every column that would be updated); a row equal in
    these is unchanged even if other columns differ."""
    ignore_fields: Sequence[str] | None = None
    """Columns neither compared nor written to existing rows, such as ``created_at`` or
    columns only the table's side maintains; new rows still get them."""

    def _check(self) -> None:
        if not isinstance(self.detect_changes, bool):
            raise _invalid(f"detect_changes must be True or False, got {self.detect_changes!r}")
        _names("change_detection_fields", self.change_detection_fields)
        _names("ignore_fields", self.ignore_fields)
        if self.change_detection_fields is not None and not self.detect_changes:
            raise _invalid("change_detection_fields needs detect_changes=True")
        both = set(self.change_detection_fields or ()) & set(self.ignore_fields or ())
        if both:
            raise _invalid(f"{sorted(both)} are both in change_detection_fields and ignore_fields")


@dataclass(frozen=True)
class AuditOptions(OptionGroup):
    """The audit trail of a sync (``bulk_upsert``), written in the sync's own transaction:
    a rolled-back sync leaves no audit rows.  The table's columns are in docs/sync.md."""

    audit_sync: bool = False
    """Record what the call changed in ``audit_table``."""
    audit_table: str = "bulkframe_sync_audit"
    """The audit table (created on first use)."""
    audit_level: AuditLevel = "changes_only"
    """``"changes_only"``: one row per inserted, updated or deleted key, with the before and
    after values of the fields that changed (JSON); ``"full"``: also unchanged rows, with
    every field; ``"summary"``: one row per call with the counts."""

    def _check(self) -> None:
        if not isinstance(self.audit_sync, bool):
            raise _invalid(f"audit_sync must be True or False, got {self.audit_sync!r}")
        if not isinstance(self.audit_table, str) or not self.audit_table:
            raise _invalid(f"audit_table must be a table name, got {self.audit_table!r}")


@dataclass(frozen=True)
class DeleteSafety(OptionGroup):
    """How rows are deleted and what guards the delete (``bulk_delete``; the delete half of
    ``bulk_upsert``'s full and delta syncs)."""

    soft_delete: bool = False
    """Set ``deleted_at_field`` to the current timestamp instead of deleting."""
    deleted_at_field: str = "deleted_at"
    """The column ``soft_delete`` sets."""
    dry_run: bool = False
    """Change nothing; report what would be changed (``result.dry_run`` is True)."""
    max_delete_count: int | None = None
    """When more rows than this would be deleted, nothing is changed and
    ``SafetyLimitError`` says how many (checked inside the deleting transaction)."""
    backup_before_delete: bool = False
    """Write the deleted rows to ``backup_location`` before committing; if writing fails
    nothing is changed."""
    backup_location: str | None = None
    """Where the backup goes (``.parquet``, ``.json``, ``.jsonl``, ``.csv``)."""

    def _check(self) -> None:
        for name in ("soft_delete", "dry_run", "backup_before_delete"):
            if not isinstance(getattr(self, name), bool):
                raise _invalid(f"{name} must be True or False, got {getattr(self, name)!r}")
        limit = self.max_delete_count
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise _invalid(f"max_delete_count must be a non-negative int, got {limit!r}")
        if self.backup_location is not None and not self.backup_before_delete:
            raise _invalid("backup_location is only used with backup_before_delete=True")


def _non_negative_number(name: str, value: Any, *, positive: bool = False) -> None:
    if value is None:
        return
    bad = not isinstance(value, (int, float)) or isinstance(value, bool) or value != value  # NaN
    if bad or value < 0 or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise _invalid(f"{name} must be a {kind} number of seconds, got {value!r}")


@dataclass(frozen=True)
class StreamOptions(OptionGroup):
    """Micro-batching of an unbounded input (a blocking iterator or generator, an
    ``asyncio`` async iterator, a ``queue.Queue``); see docs/streaming.md.

    Rows are gathered in a buffer and written as a micro-batch (at most ``batch_size``
    rows per database batch, each committing on its own) when ``stream_buffer_size`` rows
    wait, when the oldest waiting row has waited ``max_latency`` seconds, or — with
    ``process_immediately`` / ``priority="high"`` — as soon as the previous write finished.
    The stream ends when the source is exhausted or closed, after ``stream_timeout``
    seconds without a row, or on Ctrl-C; what was accepted is written and committed first.
    """

    stream_buffer_size: int | None = None
    """Rows the stream buffer holds: a full buffer is written at once, and the source is not
    read further until there is room (default: ``batch_size``)."""
    stream_timeout: float | None = None
    """End the stream after this many seconds without a new row (default: wait for the
    source to end)."""
    process_immediately: bool = False
    """Write whatever rows wait as soon as the previous write finished (latency-first)."""
    max_latency: float | None = None
    """Seconds the oldest waiting row may wait before its micro-batch is written (default:
    no bound; rows wait for a full buffer or the end of the stream)."""
    priority: StreamPriority = "normal"
    """``"high"``: latency-first, as ``process_immediately=True``; ``"normal"``:
    throughput-first, rows gather up to ``stream_buffer_size`` (bounded by ``max_latency``)."""

    @property
    def given(self) -> bool:
        """Any streaming option was set (the input is then read as a stream)."""
        return (
            self.stream_buffer_size is not None
            or self.stream_timeout is not None
            or self.max_latency is not None
            or bool(self.process_immediately)
            or self.priority != "normal"
        )

    @property
    def immediate(self) -> bool:
        """Write as soon as the writer is free and a row waits."""
        return bool(self.process_immediately) or self.priority == "high"

    def _check(self) -> None:
        _positive_int("stream_buffer_size", self.stream_buffer_size)
        _non_negative_number("stream_timeout", self.stream_timeout, positive=True)
        _non_negative_number("max_latency", self.max_latency)
        if not isinstance(self.process_immediately, bool):
            raise _invalid(f"process_immediately must be True or False, got {self.process_immediately!r}")


def parse_size(value: str | int) -> int:
    """``"512MB"`` / ``"1GB"`` / ``"800KiB"`` / ``1_000_000`` → bytes (KB, MB, GB are
    1024-based, as container memory limits are)."""
    import re

    if isinstance(value, int) and not isinstance(value, bool):
        if value > 0:
            return value
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", value.upper())
        if m:
            scale = 1024 ** "_KMGT".index(m.group(2) or "_")
            size = int(float(m.group(1)) * scale)
            if size > 0:
                return size
    raise _invalid(
        f"memory_limit={value!r} is not a size; give bytes (an int) or a string like '512MB' or '2GB'"
    )


@dataclass(frozen=True)
class MemoryOptions(OptionGroup):
    """How much memory one operation may hold; see docs/memory.md."""

    streaming: bool = False
    """``True``: an in-memory input (list of dicts, pandas DataFrame) is converted batch by
    batch, never more than the batches in flight (iterators, LazyFrames, readers and files
    always stream)."""
    memory_limit: str | int | None = None
    """Bound on the process's peak resident memory (``"512MB"``, ``"1GB"``, or bytes):
    batch sizes follow from measured bytes per row, in-flight batches counted, and shrink
    when the resident memory nears the limit.  Implies ``streaming``."""
    spill_to_disk: bool = False
    """Let stages that must hold more than the limit (the rejected-rows report, the keys an
    upsert with ``dedupe="first"``/``"error"`` has seen) spill to Arrow IPC files in a
    temporary directory that is always removed."""
    compression: bool | Compression = False
    """Compress spill files and a Parquet ``failed_records_file`` (``True`` = ``"zstd"``)."""
    gc_interval: int | None = None
    """Run the garbage collector every this many batches."""

    @property
    def limit_bytes(self) -> int | None:
        """``memory_limit`` in bytes."""
        return None if self.memory_limit is None else parse_size(self.memory_limit)

    @property
    def codec(self) -> Compression | None:
        """The compression codec, or ``None``."""
        if self.compression is True:
            return "zstd"
        return self.compression or None

    @property
    def stream_input(self) -> bool:
        """Convert in-memory input batch by batch."""
        return bool(self.streaming) or self.memory_limit is not None

    def _check(self) -> None:
        _positive_int("gc_interval", self.gc_interval)
        for name in ("streaming", "spill_to_disk"):
            if not isinstance(getattr(self, name), bool):
                raise _invalid(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.memory_limit is not None:
            parse_size(self.memory_limit)


@dataclass(frozen=True)
class EventOptions(OptionGroup):
    """Events published after each committed batch; see docs/events.md.

    Sinks: ``event_sink`` as a callable (called with each event after its batch
    committed) or a ``redis://`` URL (``XADD`` to the stream ``event_topic``); without
    ``event_sink``, a database that has ``NOTIFY`` gets the event on channel
    ``event_topic``, sent inside the writing transaction (delivered exactly when it
    commits).  Where no sink fits, the call is refused before anything is written.
    """

    publish_events: bool = False
    """Publish one event per committed batch (never for rolled-back work)."""
    event_topic: str | None = None
    """The ``NOTIFY`` channel or Redis stream key (default ``"bulkframe"``)."""
    event_format: EventFormat = "json"
    """``"json"``: the event object; ``"cloudevents"``: a CloudEvents 1.0 JSON envelope
    with the event as ``data``."""
    event_sink: str | Callable[[Any], Any] | None = None
    """Where events go: a callable, or a ``redis://`` URL (default: ``NOTIFY`` on the
    target database, where it has it)."""

    @property
    def topic(self) -> str:
        return self.event_topic or "bulkframe"

    def _check(self) -> None:
        if not self.publish_events and (self.event_topic is not None or self.event_sink is not None):
            raise _invalid("event_topic and event_sink need publish_events=True")
        if self.event_topic is not None and (not isinstance(self.event_topic, str) or not self.event_topic):
            raise _invalid(f"event_topic must be a non-empty string, got {self.event_topic!r}")
        sink = self.event_sink
        redis_url = isinstance(sink, str) and sink.split("://", 1)[0] in ("redis", "rediss", "unix")
        if sink is not None and not callable(sink) and not redis_url:
            raise _invalid(f"event_sink must be a callable or a redis:// URL, got {sink!r}")


@dataclass(frozen=True)
class BenchmarkOptions(OptionGroup):
    """Benchmark mode: time the operation on the real target without multiplying data; see
    docs/benchmark-mode.md."""

    benchmark_mode: bool = False
    """Run ``benchmark_iterations`` timed runs (after warm-up) inside transactions that are
    rolled back, then the real write once; the timings go to ``result.metrics["benchmark"]``
    and the performance report."""
    benchmark_iterations: int = 3
    """Timed, rolled-back runs."""
    benchmark_warmup: int = 1000
    """Rows of the input (from its start) written and rolled back once before the timed
    runs, to warm caches and connections (``0``: no warm-up)."""

    def _check(self) -> None:
        _positive_int("benchmark_iterations", self.benchmark_iterations)
        warm = self.benchmark_warmup
        if not isinstance(warm, int) or isinstance(warm, bool) or warm < 0:
            raise _invalid(f"benchmark_warmup must be a non-negative int (rows), got {warm!r}")
        if not self.benchmark_mode and (self.benchmark_iterations != 3 or self.benchmark_warmup != 1000):
            raise _invalid("benchmark_iterations and benchmark_warmup need benchmark_mode=True")


@dataclass(frozen=True)
class VerifyOptions(OptionGroup):
    """Options of ``db.verify``."""

    mode: VerifyMode | None = None
    """``"full"``: two-way — rows only in the data, rows only in the table and differing
    cells, by one join (two tables in one database) or by key-range hashes computed inside
    each database where the backend can, drilling only into ranges that differ (needs one
    integer key column).  ``"keys"``: one-way — every input row is looked up by key (rows
    only in the table are not seen).  ``"sample"``: one-way on a uniform sample of
    ``sample`` input rows (default 1,000), with the confidence a clean sample gives.
    Default: ``"sample"`` when ``sample`` is given, else ``"full"`` when the source is a
    table (``TableSource``), else ``"keys"`` (rows as data: did they land?)."""
    float_tolerance: float | None = None
    """Float columns compare equal when ``|a - b| <= float_tolerance`` (NaN equals NaN);
    default: bit-exact (``-0.0`` equals ``0.0``)."""
    max_samples: int = 1000
    """Rows kept in each sample of differences (rows only in the data, rows only in the
    table, differing cells); the counts are exact regardless."""
    leaf_size: int = 64
    """``"full"``: a differing key range with at most this many rows is fetched and diffed
    row by row; a larger one is split and re-hashed."""

    def _check(self) -> None:
        _positive_int("max_samples", self.max_samples)
        _positive_int("leaf_size", self.leaf_size)
        tol = self.float_tolerance
        if tol is not None and (
            isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol > 0 or tol == float("inf")
        ):
            raise _invalid(f"float_tolerance must be a positive finite number, got {tol!r}")


#: The option groups, in the order operations list them.
GROUPS: tuple[type[OptionGroup], ...] = (
    RuleOptions,
    ErrorPolicy,
    RunOptions,
    ProgressOptions,
    MetricsOptions,
    MigrationOptions,
    LoadOptions,
    StreamOptions,
    MemoryOptions,
    EventOptions,
    BenchmarkOptions,
    SyncOptions,
    ChangeDetection,
    AuditOptions,
    DeleteSafety,
)

#: The groups each ``Database`` operation builds from its keyword options (with
#: ``Group.from_options``) and hands to its ``ops`` function.
OPERATION_GROUPS: dict[str, tuple[type[OptionGroup], ...]] = {
    "bulk_create": GROUPS[:11],  # up to BenchmarkOptions
    "bulk_upsert": (
        RuleOptions,
        ErrorPolicy,
        ProgressOptions,
        StreamOptions,
        MemoryOptions,
        EventOptions,
        SyncOptions,
        ChangeDetection,
        AuditOptions,
        DeleteSafety,
    ),
    "bulk_update": (RuleOptions,),
    "bulk_delete": (DeleteSafety,),
    "verify": (VerifyOptions,),
}


def failed_records_format(path: str) -> str:
    """The report format a ``failed_records_file`` path asks for (its extension).

    Raises
    ------
    InvalidOptionValueError
        The extension is not one of :data:`FailedRecordsFormat`.
    """
    from pathlib import Path

    from bulkframe.errors import InvalidOptionValueError

    suffix = Path(path).suffix.lower()
    allowed = get_args(FailedRecordsFormat)
    if suffix not in allowed:
        raise InvalidOptionValueError(
            f"failed_records_file={path!r}: unknown extension {suffix!r}; use one of {', '.join(allowed)}"
        )
    return suffix
