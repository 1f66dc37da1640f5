"""The allowed values of every choice option, declared once as ``Literal`` aliases.

The runtime checks (:func:`~bulkframe.errors.check_choice`), the option groups of
:mod:`bulkframe.options`, the command line's ``choices=`` and the node layer's notes read
them with ``typing.get_args`` (:func:`choices`), so adding a value here adds it
everywhere.  Stdlib only and tiny: the command-line parser imports it (``bulkframe
--help`` must not pay for the option groups' dataclasses).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

#: ``bulk_create(conflict_resolution=...)``: what a row whose key exists does.
ConflictResolution = Literal["error", "skip", "update"]
#: ``bulk_upsert(conflict_resolution=...)``: what an existing row does.  ``"source_wins"``
#: is ``"update"`` and ``"target_wins"`` is ``"skip"`` under their synchronisation names;
#: ``"newest_wins"`` updates a stored row only when the incoming row's
#: ``sync_timestamp_field`` is later.
UpsertConflictResolution = Literal["update", "skip", "source_wins", "target_wins", "newest_wins"]
#: ``bulk_upsert(sync_mode=...)``: how the input relates to the table (``None``: a plain upsert).
SyncMode = Literal["incremental", "full", "delta"]
#: ``bulk_upsert(audit_level=...)``: what the audit table records about a sync.
AuditLevel = Literal["changes_only", "full", "summary"]
#: ``bulk_upsert(dedupe=...)``: which of the input rows sharing a key is kept.
Dedupe = Literal["last", "first", "error"]
#: ``error_strategy``: how rejected rows and failed batches are treated.
ErrorStrategy = Literal["stop", "continue", "retry_batch"]
#: ``retry_backoff``: how the delay between retries grows.
RetryBackoff = Literal["exponential", "linear", "constant"]
#: ``error_log_level`` by name (case-insensitive; a ``logging`` int is accepted too).
LogLevelName = Literal["debug", "info", "warning", "error", "critical"]
#: ``load_balancing``: how batches are handed to concurrent writers.
LoadBalancing = Literal["round_robin"]
#: ``report_format``: the performance report's file format.
ReportFormat = Literal["json"]
#: File extensions ``failed_records_file`` may have (the report's format follows it)
FailedRecordsFormat = Literal[".jsonl", ".ndjson", ".json", ".csv", ".parquet"]
#: ``progress_format``: what the progress bar or ``str(Progress)`` shows.
ProgressFormat = Literal["percentage", "count", "both"]
#: ``db.verify(mode=...)``: how the data and the table are compared.
VerifyMode = Literal["full", "keys", "sample"]
#: ``relationship_strategy`` of the node layer.
RelationshipStrategy = Literal["nested_create"]
#: ``priority`` of an unbounded stream: ``"high"`` is latency-first (write whatever is
#: waiting as soon as the writer is free), ``"normal"`` throughput-first (gather rows up to
#: ``stream_buffer_size``, bounded by ``max_latency``).
StreamPriority = Literal["high", "normal"]
#: ``event_format``: a plain JSON object per committed batch, or the same object as the
#: ``data`` of a CloudEvents 1.0 JSON envelope.
EventFormat = Literal["json", "cloudevents"]
#: ``compression`` codecs (``True`` means ``"zstd"``).
Compression = Literal["zstd", "lz4"]


def choices(alias: Any) -> tuple[Any, ...]:
    """The values of a ``Literal`` alias (``choices(ErrorStrategy) == ("stop", ...)``)."""
    values = get_args(alias)
    if not values:
        raise TypeError(f"{alias!r} is not a Literal alias")
    return values
