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
