"""Every option's allowed values, declared once.

Choice options are ``Literal`` aliases; the runtime checks (:func:`check_choice`), the
CLI's ``choices=`` and the node layer's notes read their values with ``typing.get_args``,
so adding a value here adds it everywhere.  Importing this module is cheap (stdlib only).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

#: ``bulk_create(conflict_resolution=...)``: what a row whose key exists does.
ConflictResolution = Literal["error", "skip", "update"]
#: ``bulk_upsert(conflict_resolution=...)``: what an existing row does.
UpsertConflictResolution = Literal["update", "skip"]
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
#: ``progress_format``: what the progress bar or ``str(Progress)`` shows.
ProgressFormat = Literal["percentage", "count", "both"]
#: ``relationship_strategy`` of the node layer.
RelationshipStrategy = Literal["nested_create"]


def choices(alias: Any) -> tuple[Any, ...]:
    """The values of a ``Literal`` alias (``choices(ErrorStrategy) == ("stop", ...)``)."""
    values = get_args(alias)
    if not values:
        raise TypeError(f"{alias!r} is not a Literal alias")
    return values
