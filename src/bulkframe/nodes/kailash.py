"""What kailash-dataflow (2.20) users write, mapped onto the node layer.

One table, :data:`KAILASH_PARAMS`, holds every node parameter name kailash-dataflow's
generated bulk nodes take that the spec does not: each is an alias with the same behaviour,
or refused with the bulkframe name to use.  :data:`RESULT_KEYS` are the top-level keys
kailash's bulk nodes return, added beside the spec's ``data``.  ``docs/kailash-compat.md``
lists all of it together with the ``DataFlow`` helper surface, and
``tests/nodes/test_kailash_compat.py`` keeps that page true.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bulkframe.errors import InvalidOptionValueError, NotSupportedError

if TYPE_CHECKING:
    from bulkframe.nodes.params import Operation
    from bulkframe.result import BulkResult


@dataclass(frozen=True)
class KailashParam:
    """A kailash-dataflow node parameter: ``alias`` of ``target`` (same behaviour),
    ``confirm`` (kailash's empty-filter guard), or ``refused`` (use ``target``)."""

    kind: Literal["alias", "confirm", "refused"]
    target: str
    note: str = ""


def _alias(target: str, note: str = "") -> KailashParam:
    return KailashParam("alias", target, note)


_DATA_ALIASES = {
    name: _alias("data", "kailash's auto_map_from names for `data`")
    for name in ("records", "rows", "documents")
}
_CONFIRM = {
    "confirmed": KailashParam(
        "confirm",
        "all_rows",
        "`True` allows an empty filter to reach every row (bulkframe's `all_rows=True`); with a "
        "filter or ids it changes nothing, as in kailash",
    ),
    "safe_mode": KailashParam(
        "confirm",
        "all_rows",
        "`False` turns kailash's empty-filter guard off, i.e. `all_rows=True` when the filter is "
        "empty; `True` (kailash's default) keeps the guard, which bulkframe always has",
    ),
}

KAILASH_PARAMS: dict[Operation, dict[str, KailashParam]] = {
    "create": {
        **_DATA_ALIASES,
        "return_ids": KailashParam(
            "refused",
            "data",
            "returning the new ids is not built; read the rows back (e.g. `db.database.read`)",
        ),
    },
    "update": {
        "fields": _alias("updates", "kailash ≥ 0.6 name for the `{column: value}` mapping"),
        "update": _alias("updates", "kailash's deprecated name for `fields`"),
        "conditions": _alias("filter", "kailash's deprecated name for `filter`"),
        **_CONFIRM,
    },
    "delete": {
        "conditions": _alias("filter", "kailash's deprecated name for `filter`"),
        **_CONFIRM,
    },
    "upsert": {
        **_DATA_ALIASES,
        "conflict_on": _alias("unique_fields", "kailash's name for the key columns"),
        "conflict_columns": _alias("unique_fields", "kailash express's name for the key columns"),
    },
}

#: Top-level result keys of kailash's generated bulk nodes, per operation → how each is
#: computed from bulkframe's result.
RESULT_KEYS: dict[Operation, tuple[str, ...]] = {
    "create": ("success", "processed", "records_processed", "inserted", "skipped", "operation", "batch_size"),
    "update": ("success", "processed", "records_processed", "updated", "operation", "batch_size"),
    "delete": ("success", "processed", "records_processed", "deleted", "operation", "batch_size"),
    "upsert": (
        "success",
        "processed",
        "records_processed",
        "upserted",
        "total",
        "inserted",
        "updated",
        "skipped",
        "operation",
        "batch_size",
    ),
}


def apply_aliases(op: Operation, params: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """``params`` with kailash-dataflow names replaced by the spec's/bulkframe's.

    Raises
    ------
    NotSupportedError
        A kailash parameter bulkframe does not build (the message names what to use).
    InvalidOptionValueError
        An alias given together with its target, or a non-bool ``confirmed``/``safe_mode``.
    """
    table = KAILASH_PARAMS.get(op, {})
    if not any(name in table for name in params):
        return dict(params)
    out: dict[str, Any] = {}
    confirm: dict[str, Any] = {}
    for name, value in params.items():
        entry = table.get(name)
        if entry is None:
            out[name] = value
        elif entry.kind == "refused":
            raise NotSupportedError(f"{where}: kailash parameter {name!r} is not supported: {entry.note}")
        elif entry.kind == "confirm":
            if not isinstance(value, bool):
                raise InvalidOptionValueError(f"{where}: {name} must be True or False, got {value!r}")
            confirm[name] = value
        else:
            if entry.target in params or entry.target in out:
                raise InvalidOptionValueError(
                    f"{where}: give either {name!r} or {entry.target!r} (its bulkframe name), not both"
                )
            out[entry.target] = value
    if confirm.get("confirmed") or confirm.get("safe_mode") is False:
        from bulkframe import filters

        if out.get("ids") is None and filters.is_empty(out.get("filter")) and "all_rows" not in out:
            out["all_rows"] = True
    return out


def result_keys(op: Operation, result: BulkResult, batch_size: Any) -> dict[str, Any]:
    """The top-level keys kailash's bulk node returns, with bulkframe's true values.
    ``success`` is true when no row failed (kailash: the call did not fail; bulkframe
    raises instead of returning ``success=False``)."""
    values = {
        "success": result.success,
        "processed": result.records_processed,
        "records_processed": result.records_processed,
        "inserted": result.inserted,
        "updated": result.updated,
        "deleted": result.deleted,
        "skipped": result.skipped,
        "upserted": result.inserted + result.updated,
        "total": result.records_processed,
        "operation": f"bulk_{op}",
        "batch_size": batch_size,
    }
    return {k: values[k] for k in RESULT_KEYS[op]}


class KailashNotBuiltError(NotSupportedError, AttributeError):
    """A kailash-dataflow ``DataFlow`` attribute bulkframe does not build (also an
    ``AttributeError``, so ``hasattr`` stays false)."""


#: kailash-dataflow's ``DataFlow`` helper surface: ``"built"`` (same call, same meaning) or
#: the reason it is refused and what to use instead.
KAILASH_SURFACE: dict[str, tuple[Literal["built", "refused"], str]] = {
    "bulk": (
        "built",
        "`await db.bulk.bulk_create/bulk_update/bulk_delete/bulk_upsert(model_name, ...)`, kailash's keyword names; returns kailash's result dict",
    ),
    "get_generated_nodes": (
        "built",
        "the four bulk node names of a model (kailash also lists CRUD nodes, which bulkframe does not generate)",
    ),
    "get_available_nodes": ("built", "`{model: ['BulkCreate', 'BulkUpdate', 'BulkDelete', 'BulkUpsert']}`"),
    "list_models": ("built", "names of the declared models"),
    "get_models": ("built", "`{name: model class}`"),
    "get_node": ("built", "the node for a generated node type name, or `None`"),
    "close": ("built", "closes the connection pool (an in-memory database is gone)"),
    "express": (
        "refused",
        "single-record CRUD is not part of bulkframe; use the bulk nodes or `db.database.bulk_*`",
    ),
    "express_sync": ("refused", "see `express`"),
    "transactions": ("refused", "each node is its own transaction; multi-node transactions are not built"),
    "transactions_sync": ("refused", "see `transactions`"),
    "create_tables": ("refused", "`@db.model` creates a model's table when it is declared"),
    "create_tables_sync": ("refused", "see `create_tables`"),
    "create_workflow": ("refused", "use `WorkflowBuilder()`"),
    "add_node": ("refused", "use `workflow.add_node('<Model>Bulk<Op>Node', node_id, params)`"),
    "execute_workflow": ("refused", "use `LocalRuntime().execute(workflow.build())`"),
    "tenants": ("refused", "multi-tenancy is not built"),
    "cache": ("refused", "query caching is not built"),
    "health_check": ("refused", "use `db.database.connection()` to check connectivity"),
    "discover_schema": ("refused", "use `db.database.columns(table)`"),
}


def not_built(name: str) -> KailashNotBuiltError:
    """The error for a kailash ``DataFlow`` attribute bulkframe refuses."""
    return KailashNotBuiltError(
        f"DataFlow.{name} (kailash-dataflow) is not built in bulkframe: {KAILASH_SURFACE[name][1]}"
    )


def _ids(data: Any) -> list[Any]:
    return [r["id"] if isinstance(r, Mapping) else r for r in data]


class BulkOperations:
    """``db.bulk``: kailash-dataflow's async bulk helpers over the generated nodes.

    Each method runs the model's node in a worker thread (the event loop keeps running) and
    returns kailash's result dict: ``success``, ``records_processed``, ``success_count``,
    ``failure_count`` and the operation's counts.  Failures raise (kailash returns
    ``{"success": False, "error": ...}``).

    Parameters
    ----------
    dataflow : DataFlow
        The DataFlow whose models the methods name.
    """

    def __init__(self, dataflow: Any):
        self.dataflow = dataflow

    async def _run(self, model_name: str, op: Operation, params: dict[str, Any]) -> dict[str, Any]:
        import asyncio

        from bulkframe.nodes.params import NODE_SUFFIX

        if params.pop("transaction", None) is not None:
            raise NotSupportedError(
                "db.bulk: transaction= (a TransactionScopeNode) is not built; each call is its own transaction"
            )
        node = self.dataflow.node(model_name + NODE_SUFFIX[op])
        out = await asyncio.to_thread(node.run, params, f"db.bulk.bulk_{op}")
        data = out["data"]
        keys = {k: v for k, v in out.items() if k not in ("data", "rows", "errors", "result")}
        return {**keys, "success_count": data["success_count"], "failure_count": data["failure_count"]}

    async def bulk_create(
        self, model_name: str, data: Any, batch_size: int = 1000, **kwargs: Any
    ) -> dict[str, Any]:
        """Insert ``data`` (a ``<Model>BulkCreateNode``).

        Parameters
        ----------
        model_name : str
            A model declared on the DataFlow.
        data : rows
            What the create node's ``data`` takes.
        batch_size : int
            Rows per batch (kailash's default 1000).
        **kwargs
            Other create node parameters.

        Raises
        ------
        NodeExecutionError, BulkframeError
            As the node raises them.
        """
        return await self._run(model_name, "create", {"data": data, "batch_size": batch_size, **kwargs})

    async def bulk_update(
        self,
        model_name: str,
        data: Any = None,
        filter_criteria: Mapping[str, Any] | None = None,
        update_values: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Update rows by key (``data``) or by filter (``filter_criteria`` + ``update_values``).

        Parameters
        ----------
        model_name : str
            A model declared on the DataFlow.
        data : rows, optional
            Rows to update by primary key.
        filter_criteria, update_values : mapping, optional
            Filter mode: which rows, and ``{column: value}``.
        batch_size : int
            Rows per batch.
        **kwargs
            Other update node parameters (``confirmed``, ``safe_mode``, ...).

        Raises
        ------
        BulkframeError
            As the node raises them.
        """
        params: dict[str, Any] = {"batch_size": batch_size, **kwargs}
        if data:
            params["data"] = data
        if filter_criteria is not None:
            params["filter"] = filter_criteria
        if update_values:
            params["updates"] = update_values
        return await self._run(model_name, "update", params)

    async def bulk_delete(
        self,
        model_name: str,
        data: Any = None,
        filter_criteria: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Delete rows by id (``data``: ids or rows with an ``id``) or by filter.

        Parameters
        ----------
        model_name : str
            A model declared on the DataFlow.
        data : list, optional
            Ids, or dicts with an ``"id"``.
        filter_criteria : mapping, optional
            Rows to delete (``{}`` needs ``confirmed=True``, as in kailash).
        batch_size : int
            Rows per ``DELETE``.
        **kwargs
            Other delete node parameters.

        Raises
        ------
        BulkframeError
            As the node raises them.
        """
        params: dict[str, Any] = {"batch_size": batch_size, **kwargs}
        if data:
            params["ids"] = _ids(data)
        if filter_criteria is not None:
            params["filter"] = filter_criteria
        return await self._run(model_name, "delete", params)

    async def bulk_upsert(
        self,
        model_name: str,
        data: Any,
        conflict_resolution: str = "update",
        conflict_on: list[str] | None = None,
        batch_size: int = 1000,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Insert new rows and update existing ones (key: ``conflict_on``, default the
        model's first unique key, else the primary key).

        Parameters
        ----------
        model_name : str
            A model declared on the DataFlow.
        data : rows
            What the upsert node's ``data`` takes.
        conflict_resolution : str
            ``"update"`` (kailash's default) or ``"skip"``.
        conflict_on : list of str, optional
            Key columns.
        batch_size : int
            Rows per batch.
        **kwargs
            Other upsert node parameters.

        Raises
        ------
        BulkframeError
            As the node raises them.
        """
        params: dict[str, Any] = {
            "data": data,
            "conflict_resolution": conflict_resolution,
            "batch_size": batch_size,
            **kwargs,
        }
        if conflict_on is not None:
            params["unique_fields"] = conflict_on
        return await self._run(model_name, "upsert", params)


#: kailash-dataflow ``DataFlow(...)`` constructor options → how bulkframe's ``DataFlow`` takes them.
KAILASH_CONSTRUCTOR: dict[str, tuple[Literal["built", "refused"], str]] = {
    "database_url": ("built", "same as the first positional argument"),
    "DATABASE_URL": (
        "built",
        "environment variable read when no URL is given (before bulkframe's embedded default)",
    ),
    ":memory:": (
        "built",
        '`":memory:"` and `sqlite:///:memory:`: one in-memory SQLite database shared by the DataFlow\'s connections until `close()`',
    ),
    "auto_migrate": (
        "built",
        '`True`: add missing model columns to existing tables and let the model layer own them; `False`: never create or alter; default `None`: create missing tables only; kailash\'s `"warn"` is refused',
    ),
    "pool_size": ("built", "connections kept open"),
    "pool_max_overflow": ("built", "bulkframe's `max_overflow`"),
    "max_overflow": ("built", "bulkframe's `max_overflow`"),
    **{
        name: ("refused", "unknown option: `OptionError` names it and the supported ones")
        for name in (
            "config",
            "pool_recycle",
            "echo",
            "multi_tenant",
            "tenant_isolation_strategy",
            "encryption_key",
            "credential_provider",
            "audit_logging",
            "cache_enabled",
            "cache_ttl",
            "monitoring",
            "slow_query_threshold",
            "debug",
            "migration_enabled",
            "existing_schema_mode",
            "enable_model_persistence",
            "tdd_mode",
            "test_context",
            "test_mode",
            "test_mode_aggressive_cleanup",
            "migration_lock_timeout",
            "enable_connection_pooling",
            "pools",
            "enable_caching",
            "validate_on_write",
            "log_level",
            "log_config",
        )
    },
}

#: kailash-dataflow's generated node types bulkframe does not generate (``Product`` stands
#: for any model); ``add_node`` refuses them with ``OptionError`` and the closest bulk node.
KAILASH_NODE_TYPES: dict[str, tuple[Literal["built", "refused"], str]] = {
    **{
        f"Product{op}Node": ("refused", "single-record CRUD is not part of bulkframe")
        for op in ("Create", "Read", "Update", "Delete", "List", "Upsert", "Count")
    },
    **{
        f"ProductBulk{op}Node": ("built", "the spec's node")
        for op in ("Create", "Update", "Delete", "Upsert")
    },
}

#: kailash's runtimes (``from kailash.runtime... import``) → bulkframe's.
KAILASH_RUNTIME: dict[str, tuple[Literal["built", "refused"], str]] = {
    "LocalRuntime.execute": ("built", "`(results, run_id)`; `parameters={node_id: {...}}` overrides"),
    "AsyncLocalRuntime.execute_async": ("built", "awaitable `execute`; nodes run in a worker thread"),
    "AsyncLocalRuntime.execute_workflow_async": (
        "built",
        "`inputs={node_id: {...}}`; returns `(results, run_id)`",
    ),
}


#: kailash-dataflow's model config ``__dataflow__ = {...}`` keys.
KAILASH_MODEL: dict[str, tuple[Literal["built", "refused"], str]] = {
    "soft_delete": (
        "built",
        "adds `deleted_at`; the model's delete nodes soft delete unless `hard_delete=True` (kailash's meaning)",
    ),
    "indexes": (
        "built",
        "`[{'fields': [...], 'unique': bool}]` → `UNIQUE` constraints / plain indexes (named `ix_<table>_<columns>`)",
    ),
    **{
        key: ("refused", "`SchemaError` at `@db.model` naming the key")
        for key in ("multi_tenant", "retention", "use_native_arrays", "audit_log")
    },
}
