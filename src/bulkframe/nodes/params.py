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

The table holds only what the library does not declare: a row naming a library option is
refused by ``tests/nodes/test_spec_parameters.py``, as is a row for a parameter the spec
does not have.  A library option's note (its allowed values and the first sentence of its
docstring) is read from :mod:`bulkframe.options`, and ``docs/spec-parameters.md`` is
regenerated from :func:`status` (the test keeps it in step).
"""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bulkframe.errors import InvalidOptionValueError, NotSupportedError, unknown_option
from bulkframe.options import RelationshipStrategy, choices

Operation = Literal["create", "update", "upsert", "delete"]
OPERATIONS: tuple[Operation, ...] = ("create", "update", "upsert", "delete")
NODE_SUFFIX: dict[Operation, str] = {
    "create": "BulkCreateNode",
    "update": "BulkUpdateNode",
    "upsert": "BulkUpsertNode",
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


_DATA = NodeParam(
    "node",
    "list or iterator of dicts, async iterator or queue.Queue (a stream, docs/streaming.md), Polars "
    "DataFrame/LazyFrame, pandas DataFrame, Arrow table/batch/reader, Parquet/CSV path",
)

NODE_PARAMS: dict[Operation, dict[str, NodeParam]] = {
    "create": {
        "data": _DATA,
        "include_relationships": NodeParam(
            "node",
            "names in the model's `__relationships__`; parents and children in one transaction, ids "
            "reserved in one round trip (`bulkframe.ops.nested`); with it only `batch_size`, "
            "`validate_data`, `skip_validation` apply",
        ),
        "relationship_strategy": NodeParam(
            "node",
            ", ".join(f"`{v}`" for v in choices(RelationshipStrategy))
            + " (other strategies not supported yet)",
        ),
        "use_copy": _accept(True, note="bulkframe always loads PostgreSQL through binary COPY (ADBC)"),
        "disable_indexes": _accept(False, note="indexes are kept (dropping them is not built)"),
        "transform_data": _accept(True, note="transformation_rules apply whenever they are given"),
        "copy_options": NodeParam(
            "node",
            "format of a CSV/text file given as `data` (`format`, `delimiter`, `null_string`, `header`, "
            "`columns`, `quote`, `escape`, `encoding`): PostgreSQL streams the file into `COPY … FROM STDIN` "
            "with them, other backends read it with them; refused for non-file data "
            "(`bulkframe.nodes.copy_options`)",
        ),
    },
    "update": {
        "data": NodeParam("rename", "rows to update by key (the library's `updates` rows)", target="updates"),
    },
    "upsert": {
        "data": _DATA,
    },
    "delete": {
        "cleanup_related": NodeParam(
            "node",
            "rows of the model's relationships (and of models with a foreign key to it) that reference "
            "the deleted rows are deleted, or soft deleted, first in the same transaction; refused for "
            "a model with neither (`bulkframe.nodes.cleanup`)",
        ),
        "cleanup_files": NodeParam(
            "node",
            "files named by the deleted rows' `Annotated[str, FilePath]` fields are removed after the "
            "delete commits (never before); refused with `soft_delete` and for a model without such "
            "fields (`bulkframe.nodes.cleanup`)",
        ),
    },
}

#: Values of library options that the spec names but the library does not offer yet.
NOT_SUPPORTED_VALUES: dict[tuple[Operation, str], dict[Any, str]] = {
    ("create", "conflict_resolution"): {"source_wins": "use 'update' (the incoming row wins)"},
}

_LIBRARY_METHOD = {
    "create": "bulk_create",
    "update": "bulk_update",
    "upsert": "bulk_upsert",
    "delete": "bulk_delete",
}

# -- named callbacks ------------------------------------------------------------------

_CALLBACKS: dict[str, Callable[..., Any]] = {}


def register_callback(name: str, fn: Callable[..., Any] | None = None) -> Any:
    """Register ``fn`` under ``name`` so node parameters can name it as a string
    (``"failed_records_callback": "handle_failed_records"``).  Usable as a decorator.

    Parameters
    ----------
    name : str
        The name node parameters use.
    fn : callable, optional
        The callback; omitted, the decorator form is returned.

    Raises
    ------
    InvalidOptionValueError
        ``fn`` is not callable.
    """

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
        name: p
        for name, p in sig.parameters.items()
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
        notes = [option_note(op, name)]
        if refused:
            notes.append(f"value(s) {', '.join(map(repr, refused))} not supported yet")
        return "works", "; ".join(n for n in notes if n)
    if entry is not None and entry.kind == "accept":
        return f"accepted only with value {' or '.join(map(repr, entry.values))}", entry.note
    if entry is not None:
        return "not supported yet", entry.note
    return "unknown", ""


@functools.cache
def _hints(op: Operation) -> dict[str, Any]:
    from bulkframe.database import Database

    return typing.get_type_hints(getattr(Database, _LIBRARY_METHOD[op]))


def option_note(op: Operation, name: str) -> str:
    """What the declarations in :mod:`bulkframe.options` say about library option ``name``:
    its allowed values (its ``Literal``) and the first sentence of its group field's
    docstring (``""`` for an option declared in neither)."""
    from bulkframe.options import OPERATION_GROUPS, field_docs

    hint = _hints(op).get(name)
    literal = [a for a in (hint, *typing.get_args(hint)) if typing.get_origin(a) is Literal]
    parts = [", ".join(f"`{v}`" for v in typing.get_args(literal[0]))] if literal else []
    for group in OPERATION_GROUPS[_LIBRARY_METHOD[op]]:
        doc = field_docs(group).get(name)
        if doc:
            parts.append(_first_sentence(doc))
            break
    return ": ".join(parts)


def _first_sentence(doc: str) -> str:
    """A docstring's first sentence as one Markdown table cell (rst ````x```` → ```x```)."""
    text = " ".join(doc.split())
    end = re.search(r"\.(\s|$)", text)
    text = text[: end.start()] if end else text
    return text.replace("``", "`").replace("|", "\\|")


def _relationship_gap() -> set[str]:
    """Node parameters whose implementation needs a library function that is missing."""
    try:
        from bulkframe.ops import nested  # noqa: F401
    except ImportError:
        return {"include_relationships", "relationship_strategy"}
    return set()


def known_names(op: Operation) -> set[str]:
    return set(library_params(op)) | set(NODE_PARAMS[op])


def translate(
    op: Operation, params: Mapping[str, Any], *, where: str
) -> tuple[dict[str, Any], dict[str, Any]]:
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
    from bulkframe.nodes.kailash import apply_aliases

    params = apply_aliases(op, params, where=where)
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


def _value(
    op: Operation, name: str, value: Any, param: inspect.Parameter, where: str, missing: list[str]
) -> Any:
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
