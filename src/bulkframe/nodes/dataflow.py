"""``DataFlow``: a database plus the models declared on it, and the node-type registry.

``@db.model`` creates the model's table when missing and registers the four generated
node types ``<Model>BulkCreateNode``, ``<Model>BulkUpdateNode``, ``<Model>BulkUpsertNode``
and ``<Model>BulkDeleteNode`` in a process-wide registry, which is what lets a
``WorkflowBuilder()`` that names no DataFlow find them.  When two DataFlows declare a
model of the same class name, the most recent declaration wins (a warning is logged).
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from bulkframe.backends.base import TableRef
from bulkframe.errors import OptionError, SchemaError
from bulkframe.nodes.model import ModelInfo, read_model
from bulkframe.nodes.params import NODE_SUFFIX, OPERATIONS, Operation

if TYPE_CHECKING:
    from bulkframe.database import Database
    from bulkframe.nodes.node import BulkNode

log = logging.getLogger("bulkframe.nodes")

T = TypeVar("T", bound=type)

_REGISTRY: dict[str, tuple[DataFlow, type, Operation]] = {}
_REGISTRY_LOCK = threading.Lock()


class DataFlow:
    """A database and its models.

    Parameters
    ----------
    url : str, optional
        Database URL; ``None`` opens bulkframe's embedded SQLite default
        (``sqlite:///bulkframe.db`` in the working directory).

    Examples
    --------
    >>> db = DataFlow("sqlite:///shop.db")                         # doctest: +SKIP
    >>> @db.model
    ... class Product:
    ...     name: str
    ...     price: float
    >>> sorted(db.node_types())                                     # doctest: +SKIP
    ['ProductBulkCreateNode', 'ProductBulkDeleteNode', 'ProductBulkUpdateNode', 'ProductBulkUpsertNode']
    """

    def __init__(self, url: str | None = None):
        import bulkframe as bf

        self.database: Database = bf.connect(url)
        self.url = self.database.url
        self.models: dict[str, type] = {}

    def __repr__(self) -> str:
        return f"DataFlow({self.url!r}, models={sorted(self.models)})"

    def close(self) -> None:
        """Close the database's connection pool; the DataFlow's database refuses later calls."""
        self.database.close()

    def __enter__(self) -> DataFlow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- models ----------------------------------------------------------------------
    def model(self, cls: T) -> T:
        """Class decorator: declare ``cls`` as a table and generate its bulk nodes.

        Reads the annotations (see :mod:`bulkframe.nodes.model`) and the optional class
        attributes ``__tablename__`` (default: snake_case plural, ``Product`` →
        ``products``), ``__schema__``, ``__primary_key__``, ``__unique__`` (list of column
        tuples → ``UNIQUE``), ``__indexes__``, ``__soft_delete__`` (adds ``deleted_at``),
        ``__foreign_keys__`` (``{"user_id": User}``) and ``__relationships__``
        (``{"profile": has_one("Profile", "user_id")}``).  Creates the table when it is
        missing (an existing table is used as it is).  Returns the class itself, with
        ``__tablename__`` set, so it also works as the library API's table argument.
        """
        caller = sys._getframe(1)  # string annotations of a class declared in a function
        info = read_model(cls, foreign_table=self.table_of, localns=caller.f_locals)
        self.database.create_table(
            info.table.name,
            info.columns,
            identity=info.identity,
            unique=info.unique,
            foreign_keys=info.foreign_keys,
            indexes=info.indexes,
            defaults=info.defaults,
            schema=info.table.schema,
        )
        self._warn_on_drift(info)
        cls.__tablename__ = info.table.name  # type: ignore[attr-defined]
        if info.table.schema:
            cls.__schema__ = info.table.schema  # type: ignore[attr-defined]
        cls.__bulkframe_model__ = info  # type: ignore[attr-defined]
        cls.__dataflow__ = self  # type: ignore[attr-defined]
        self.models[cls.__name__] = cls
        with _REGISTRY_LOCK:
            for op in OPERATIONS:
                name = cls.__name__ + NODE_SUFFIX[op]
                previous = _REGISTRY.get(name)
                if previous is not None and previous[0] is not self:
                    log.info("node type %s now refers to %r (was %r)", name, self, previous[0])
                _REGISTRY[name] = (self, cls, op)
        return cls

    def table_of(self, target: Any) -> TableRef:
        """A model class, model name or table name → its ``TableRef``.

        Parameters
        ----------
        target : model class or str
            What to look up.
        """
        if isinstance(target, type):
            info: ModelInfo | None = getattr(target, "__bulkframe_model__", None)
            if info is None:
                raise SchemaError(f"{target.__name__} is not a model; decorate it with @db.model first")
            return info.table
        if isinstance(target, str) and target in self.models:
            return info_of(self.models[target]).table
        if isinstance(target, str):
            return TableRef(target)
        raise SchemaError(f"expected a model class, model name or table name, got {target!r}")

    def model_of(self, target: Any) -> type:
        """A model class or the name of one declared on this DataFlow.

        Parameters
        ----------
        target : model class or str
            The model, or its name.
        """
        if isinstance(target, type) and hasattr(target, "__bulkframe_model__"):
            return target
        if isinstance(target, str) and target in self.models:
            return self.models[target]
        raise SchemaError(f"no model {target!r} on {self!r}")

    def node_types(self) -> list[str]:
        """The node types generated for this DataFlow's models."""
        return [name + NODE_SUFFIX[op] for name in self.models for op in OPERATIONS]

    def node(self, node_type: str) -> BulkNode:
        """The node implementation for ``node_type``.

        Parameters
        ----------
        node_type : str
            One of ``node_types()``, e.g. ``"ProductBulkCreateNode"``.
        """
        return resolve_node(node_type, dataflow=self)

    def _warn_on_drift(self, info: ModelInfo) -> None:
        """An existing table is used as it is: say what the model declares that it lacks."""
        existing = self.database.columns(info.table.name, schema=info.table.schema)
        names = {c.name for c in existing or ()}
        missing = [c.name for c in info.columns if c.name not in names]
        if missing:
            log.warning(
                "table %s exists without column(s) %s declared by model %s; bulkframe does not alter "
                "existing tables",
                info.table,
                missing,
                info.name,
            )
        if info.unique:
            with self.database.session(write=False) as conn:
                keys = {frozenset(k) for k in self.database.backend.unique_keys(conn, info.table)}
            lacking = [u for u in info.unique if frozenset(u) not in keys]
            if lacking:
                log.warning(
                    "table %s exists without the unique constraint(s) %s declared by model %s (upserts "
                    "and skip/update creates on them will fail); bulkframe does not alter existing "
                    "tables",
                    info.table,
                    lacking,
                    info.name,
                )


def info_of(model: type) -> ModelInfo:
    info: ModelInfo | None = getattr(model, "__bulkframe_model__", None)
    if info is None:
        raise SchemaError(f"{model!r} is not a model; decorate it with @db.model")
    return info


def resolve_node(node_type: str, *, dataflow: DataFlow | None = None) -> BulkNode:
    """Find a generated node type.

    Parameters
    ----------
    node_type : str
        E.g. ``"ProductBulkCreateNode"``.
    dataflow : DataFlow, optional
        Look only among this DataFlow's models.

    Raises
    ------
    OptionError
        No such node type (with the closest valid name).
    """
    from bulkframe.nodes.node import BulkNode

    if dataflow is not None:
        entry = None
        for op in OPERATIONS:
            model_name = node_type.removesuffix(NODE_SUFFIX[op])
            if model_name != node_type and model_name in dataflow.models:
                entry = (dataflow, dataflow.models[model_name], op)
        names = sorted(m + NODE_SUFFIX[op] for m in dataflow.models for op in OPERATIONS)
    else:
        with _REGISTRY_LOCK:
            entry = _REGISTRY.get(node_type)
            names = sorted(_REGISTRY)
    if entry is None:
        import difflib

        close = difflib.get_close_matches(node_type, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise OptionError(
            f"unknown node type {node_type!r}.{hint} Node types exist for models declared with @db.model: "
            f"{', '.join(names) or '(none declared yet)'}"
        )
    flow, cls, op = entry
    return BulkNode(flow, cls, op)
