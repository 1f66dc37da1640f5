"""Node parameters → library keyword arguments.

Which options the library has is read from the signatures of ``Database.bulk_create``,
``bulk_update``, ``bulk_upsert`` and ``bulk_delete`` (so an option added there is a node
parameter at once).  Everything the node layer adds or refuses on its own lives in the one
table :data:`NODE_PARAMS`:

* ``node``: handled by the node itself (``data``; relationship parameters);
* ``rename``: the spec's name for a library option (update ``data`` → ``updates``);
* ``accept``: a spec parameter whose only meaningful values describe what bulkframe
  always does (``use_copy=True``); other values are refused;
* ``not_supported``: a spec parameter not built yet: refused with ``NotSupportedError``.

A library option of the same name always wins over an ``accept``/``not_supported`` entry,
so the table can only lag behind the library, never contradict it (and
``tests/nodes/test_spec_parameters.py`` keeps ``docs/spec-parameters.md`` in step).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bulkframe.errors import InvalidOptionValueError, NotSupportedError, unknown_option

Operation = Literal["create", "update", "upsert", "delete"]
OPERATIONS: tuple[Operation, ...] = ("create", "update", "upsert", "delete")
NODE_SUFFIX: dict[Operation, str] = {
    "create": "BulkCreateNode", "update": "BulkUpdateNode", "upsert": "BulkUpsertNode",
    "delete": "BulkDeleteNode",
}
#: Library parameters the node fills itself (the model is the table, and knows its schema).
_NOT_NODE_PARAMS = {"self", "table", "schema"}


@dataclass(frozen=True)
class NodeParam:
    """One row of the node-only mapping table."""

    kind: Literal["node", "rename", "accept", "not_supported"]
    note: str = ""
    target: str | None = None
    values: tuple[Any, ...] = ()


def _ns(note: str = "") -> NodeParam:
    return NodeParam("not_supported", note)


def _accept(*values: Any, note: str) -> NodeParam:
    return NodeParam("accept", note, values=values)


_RELATIONSHIPS = NodeParam("node", "parents and nested children in one transaction; see docs/nodes.md")
_CLEANUP = "a call always drops its staging tables, also when it fails (the transaction rolls back)"

NODE_PARAMS: dict[Operation, dict[str, NodeParam]] = {
    "create": {
        "data": NodeParam("node", "list of dicts, Polars/pandas DataFrame, Arrow table/reader, file path"),
        "include_relationships": _RELATIONSHIPS,
        "relationship_strategy": _RELATIONSHIPS,
        "use_copy": _accept(True, note="bulkframe always loads PostgreSQL through binary COPY (ADBC)"),
        "auto_cleanup": _accept(True, note=_CLEANUP),
        "cleanup_on_failure": _accept(True, note=_CLEANUP),
        "cleanup_temp_files": _accept(True, note="bulkframe writes no temporary files"),
        "disable_indexes": _accept(False, note="indexes are kept (dropping them is not built)"),
        "track_execution_time": _accept(True, note="duration_seconds and rows_per_second are always reported"),
        "transform_data": _accept(True, note="transformation_rules apply whenever they are given"),
        "streaming": _accept(True, note="iterators, LazyFrames, record-batch readers and files always "
                                        "stream in batch_size chunks"),
        **{name: _ns() for name in (
            "parallel_batches", "max_workers", "connection_pool_size", "load_balancing",
            "copy_options", "disable_triggers", "use_load_data", "mysql_options", "disable_foreign_keys",
            "disable_autocommit", "memory_limit", "spill_to_disk", "compression", "gc_interval",
            "retry_failed_records", "resumable", "checkpoint_interval", "checkpoint_file",
            "cleanup_connections", "monitor_memory", "monitor_cpu", "monitor_disk_io", "monitor_network",
            "collect_metrics", "metrics_interval", "metrics_file", "track_memory_usage",
            "track_io_operations", "track_batch_performance", "benchmark_mode", "benchmark_iterations",
            "benchmark_warmup", "performance_report", "report_format", "report_file", "migration_mode",
            "verify_migration", "verification_sample", "verification_fields", "stream_buffer_size",
            "stream_timeout", "process_immediately", "max_latency", "priority", "publish_events",
            "event_topic", "event_format",
        )},
        "preserve_ids": _ns("ids in the input are inserted as given, but the id sequence is not advanced past them"),
    },
    "update": {
        "data": NodeParam("rename", "rows to update by key (the library's `updates` rows)", target="updates"),
        "validate_data": _ns("bulk_update applies no validation rules yet"),
    },
    "upsert": {
        "data": NodeParam("node", "list of dicts, Polars/pandas DataFrame, Arrow table/reader, file path"),
        **{name: _ns() for name in (
            "sync_mode", "last_sync_timestamp", "detect_changes", "change_detection_fields", "ignore_fields",
            "audit_sync", "audit_table", "audit_level",
        )},
    },
    "delete": {
        "cleanup_related": _ns("use cascade to delete related rows"),
        "cleanup_files": _ns(),
    },
}

#: Values of library options that the spec names but the library does not offer yet.
NOT_SUPPORTED_VALUES: dict[tuple[Operation, str], dict[Any, str]] = {
    ("upsert", "conflict_resolution"): {"source_wins": "use 'update' (the incoming row wins)"},
    ("create", "conflict_resolution"): {"source_wins": "use 'update' (the incoming row wins)"},
}

_LIBRARY_METHOD = {"create": "bulk_create", "update": "bulk_update", "upsert": "bulk_upsert",
                   "delete": "bulk_delete"}

# -- named callbacks ------------------------------------------------------------------

_CALLBACKS: dict[str, Callable[..., Any]] = {}


def register_callback(name: str, fn: Callable[..., Any] | None = None) -> Any:
    """Register ``fn`` under ``name`` so node parameters can name it as a string
    (``"failed_records_callback": "handle_failed_records"``).  Usable as a decorator."""
    def add(f: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(f):
            raise InvalidOptionValueError(f"callback {name!r} must be callable, got {f!r}")
        _CALLBACKS[name] = f
        return f
    return add(fn) if fn is not None else add


# -- library signatures ----------------------------------------------------------------

@functools.cache
def library_params(op: Operation) -> dict[str, inspect.Parameter]:
    """The library method's parameters a node may set, by name (read from its signature)."""
    from bulkframe.database import Database

    sig = inspect.signature(getattr(Database, _LIBRARY_METHOD[op]))
    return {
        name: p for name, p in sig.parameters.items()
        if name not in _NOT_NODE_PARAMS and p.kind is not inspect.Parameter.VAR_KEYWORD
    }


def status(op: Operation, name: str) -> tuple[str, str]:
    """``(status, note)`` of a node parameter: ``"works"``, ``"accepted only with value X"``,
    ``"not supported yet"`` or ``"unknown"``."""
    lib = library_params(op)
    entry = NODE_PARAMS[op].get(name)
    if entry is not None and entry.kind == "node":
        return ("not supported yet", entry.note) if name in _relationship_gap() else ("works", entry.note)
    if entry is not None and entry.kind == "rename" and entry.target in lib:
        return "works", entry.note or f"library option {entry.target!r}"
    if name in lib:
        refused = NOT_SUPPORTED_VALUES.get((op, name))
        note = f"value(s) {', '.join(map(repr, refused))} not supported yet" if refused else ""
        return "works", note
    if entry is not None and entry.kind == "accept":
        return f"accepted only with value {' or '.join(map(repr, entry.values))}", entry.note
    if entry is not None:
        return "not supported yet", entry.note
    return "unknown", ""


def _relationship_gap() -> set[str]:
    """Node parameters whose implementation needs a library function that is missing."""
    try:
        from bulkframe.ops import nested  # noqa: F401
    except ImportError:
        return {"include_relationships", "relationship_strategy"}
    return set()


def known_names(op: Operation) -> set[str]:
    return set(library_params(op)) | set(NODE_PARAMS[op])


def translate(op: Operation, params: Mapping[str, Any], *, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check ``params`` and split them into ``(node_params, library_kwargs)``.

    Raises
    ------
    OptionError
        Unknown names (typos), with the closest valid name.
    NotSupportedError
        Spec parameters (or values) not built yet, all named in one message.
    InvalidOptionValueError
        A value an ``accept`` parameter does not take, or an unknown named callback.
    """
    lib = library_params(op)
    unknown = [n for n in params if n not in lib and n not in NODE_PARAMS[op]]
    if unknown:
        raise unknown_option(unknown, known_names(op), where=where)
    node: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    missing: list[str] = []
    for name, value in params.items():
        st, note = status(op, name)
        entry = NODE_PARAMS[op].get(name)
        if st == "not supported yet":
            missing.append(f"{name!r}" + (f" ({note})" if note else ""))
        elif entry is not None and entry.kind == "node":
            node[name] = value
        elif entry is not None and entry.kind == "rename" and entry.target in lib:
            if entry.target in params:
                raise InvalidOptionValueError(f"{where}: give either {name!r} or {entry.target!r}, not both")
            kwargs[entry.target] = value
        elif name in lib:
            kwargs[name] = _value(op, name, value, lib[name], where, missing)
        elif entry is not None and value not in entry.values:
            raise InvalidOptionValueError(
                f"{where}: {name}={value!r} is not supported; bulkframe accepts only "
                f"{' or '.join(map(repr, entry.values))} here ({entry.note})"
            )
    if missing:
        raise NotSupportedError(
            f"{where}: parameter(s) not supported yet: {', '.join(missing)}. "
            "Remove them (docs/spec-parameters.md lists every parameter's status)."
        )
    return node, kwargs


def _value(op: Operation, name: str, value: Any, param: inspect.Parameter, where: str,
           missing: list[str]) -> Any:
    refused = NOT_SUPPORTED_VALUES.get((op, name), {})
    try:
        if value in refused:
            missing.append(f"{name}={value!r} ({refused[value]})")
            return value
    except TypeError:  # unhashable values are never in the table
        pass
    if isinstance(value, str) and "Callable" in str(param.annotation):
        fn = _CALLBACKS.get(value)
        if fn is None:
            raise InvalidOptionValueError(
                f"{where}: {name}={value!r}: no callback is registered under that name; pass a callable, or "
                f"register one first with bulkframe.nodes.register_callback({value!r}, fn)"
            )
        return fn
    return value
