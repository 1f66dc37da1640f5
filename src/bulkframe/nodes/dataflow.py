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
from bulkframe.types import Column

if TYPE_CHECKING:
    from bulkframe.database import Database
    from bulkframe.nodes.kailash import BulkOperations
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
        Database URL.  ``":memory:"`` or ``"sqlite:///:memory:"`` is an in-memory SQLite
        database that lives until :meth:`close` (shared by every connection of this
        DataFlow).  Omitted: the ``DATABASE_URL`` environment variable, else bulkframe's
        embedded SQLite default (``sqlite:///bulkframe.db`` in the working directory).
    database_url : str, optional
        kailash-dataflow's name for ``url`` (give one of the two).
    auto_migrate : bool, optional
        ``None`` (default): ``@db.model`` creates a missing table and uses an existing one as
        it is.  ``True``: also adds the model's columns an existing table lacks (nullable
        or with a default) and lets the model layer add the columns a node needs (e.g.
        ``deleted_at`` for ``soft_delete``) — the model layer owns its tables.  ``False``:
        never creates or alters a table; a missing one is an error at ``@db.model``.
    pool_size, pool_max_overflow, max_overflow, pool_timeout : optional
        Connection pool settings (see :func:`bulkframe.connect`; ``pool_max_overflow`` and
        ``max_overflow`` are kailash-dataflow's names for bulkframe's ``max_overflow``).

    Raises
    ------
    OptionError
        A keyword this DataFlow does not take (kailash-dataflow's other constructor
        options are listed in docs/kailash-compat.md).
    InvalidOptionValueError
        Both ``url`` and ``database_url``, or an ``auto_migrate`` that is not a bool.

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

    def __init__(
        self,
        url: str | None = None,
        *,
        database_url: str | None = None,
        auto_migrate: bool | None = None,
        pool_size: int | None = None,
        pool_max_overflow: int | None = None,
        max_overflow: int | None = None,
        pool_timeout: float | None = None,
        **unknown: Any,
    ):
        import os

        import bulkframe as bf
        from bulkframe.errors import InvalidOptionValueError, unknown_option

        if unknown:
            raise unknown_option(
                unknown,
                [
                    "url",
                    "database_url",
                    "auto_migrate",
                    "pool_size",
                    "pool_max_overflow",
                    "max_overflow",
                    "pool_timeout",
                ],
                where="DataFlow()",
            )
        if url is not None and database_url is not None:
            raise InvalidOptionValueError("DataFlow(): give either url or database_url, not both")
        if auto_migrate is not None and not isinstance(auto_migrate, bool):
            raise InvalidOptionValueError(
                f"DataFlow(): auto_migrate={auto_migrate!r} is not supported; use True, False or None "
                "(bulkframe never logs-and-continues a failed DDL statement, kailash's 'warn')"
            )
        if max_overflow is not None and pool_max_overflow is not None:
            raise InvalidOptionValueError(
                "DataFlow(): give either max_overflow or pool_max_overflow, not both"
            )
        url = url if url is not None else database_url
        if url is None:
            url = os.environ.get("DATABASE_URL") or None
        if url == ":memory:":
            url = "sqlite:///:memory:"
        pool: dict[str, Any] = {}
        if pool_size is not None:
            pool["pool_size"] = pool_size
        overflow = max_overflow if max_overflow is not None else pool_max_overflow
        if overflow is not None:
            pool["max_overflow"] = overflow
        if pool_timeout is not None:
            pool["pool_timeout"] = pool_timeout
        self.database: Database = bf.connect(url, **pool)
        self.url = self.database.url
        self.auto_migrate = auto_migrate
        self.models: dict[str, type] = {}
        #: Tables this DataFlow's ``@db.model`` created (the model layer owns them).
        self.created: set[TableRef] = set()

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
        if self.auto_migrate is False:
            if self.database.columns(info.table.name, schema=info.table.schema) is None:
                raise SchemaError(
                    f"model {info.name}: table {info.table} does not exist and this DataFlow has "
                    "auto_migrate=False (create it first, or drop auto_migrate=False)"
                )
        elif self.database.create_table(
            info.table.name,
            info.columns,
            identity=info.identity,
            unique=info.unique,
            foreign_keys=info.foreign_keys,
            indexes=info.indexes,
            defaults=info.defaults,
            schema=info.table.schema,
        ):
            self.created.add(info.table)
        elif self.auto_migrate:
            self._add_missing_columns(info)
        self._warn_on_drift(info)
        cls.__tablename__ = info.table.name  # type: ignore[attr-defined]
        if info.table.schema:
            cls.__schema__ = info.table.schema  # type: ignore[attr-defined]
        cls.__bulkframe_model__ = info  # type: ignore[attr-defined]
        cls.__bulkframe_dataflow__ = self  # type: ignore[attr-defined]  # (kailash uses __dataflow__ for config)
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

    def owns(self, model: type) -> bool:
        """Whether the model layer owns ``model``'s table: this DataFlow created it, or it
        was opened with ``auto_migrate=True``.  Only then may a node add a column the
        model's own features need (``deleted_at`` for ``soft_delete``).

        Parameters
        ----------
        model : model class
            A model declared on this DataFlow.
        """
        return bool(self.auto_migrate) or info_of(model).table in self.created

    def add_column(self, model: type, column: Column, default: Any = None) -> None:
        """``ALTER TABLE … ADD COLUMN`` on ``model``'s table (logged), in one transaction.

        Parameters
        ----------
        model : model class
            A model declared on this DataFlow.
        column : bulkframe.types.Column
            The column (nullable, or with a ``default``).
        default : optional
            Its ``DEFAULT`` (a literal or ``":current_timestamp"``).

        Raises
        ------
        SchemaError
            The DataFlow does not own the table (see :meth:`owns`), or a ``NOT NULL``
            column without a default.
        """
        info = info_of(model)
        if not self.owns(model):
            raise SchemaError(
                f"table {info.table} was not created by this DataFlow; bulkframe does not alter it "
                "(open the DataFlow with auto_migrate=True to let the model layer own its tables)"
            )
        self._alter_add(info, column, default)

    def _alter_add(self, info: ModelInfo, column: Column, default: Any) -> None:
        from bulkframe.backends.ddl import add_column_statement

        statement = add_column_statement(self.database.backend, info.table, column, default)
        with self.database.session() as conn:
            conn.run(statement)
        log.warning(
            "model %s: added column %r to table %s (%s)", info.name, column.name, info.table, statement
        )

    def _add_missing_columns(self, info: ModelInfo) -> None:
        existing = self.database.columns(info.table.name, schema=info.table.schema) or []
        names = {c.name for c in existing}
        for column in info.columns:
            # the model layer's own timestamps only on tables it creates: SQLite cannot add a
            # column whose default is the clock, and existing rows have no creation time
            if column.name not in names and column.name not in info.stamps:
                self._alter_add(info, column, info.defaults.get(column.name))

    # -- kailash-dataflow's helper surface (docs/kailash-compat.md) --------------------
    @property
    def bulk(self) -> BulkOperations:
        """kailash-dataflow's ``db.bulk`` async helpers (see :class:`bulkframe.nodes.kailash.BulkOperations`)."""
        from bulkframe.nodes.kailash import BulkOperations

        return BulkOperations(self)

    def list_models(self) -> list[str]:
        """Names of the models declared on this DataFlow."""
        return list(self.models)

    def get_models(self) -> dict[str, type]:
        """``{name: model class}`` of the declared models."""
        return dict(self.models)

    def get_generated_nodes(self, model_name: str) -> dict[str, str] | None:
        """kailash-dataflow's listing: ``{"bulk_create": "<Model>BulkCreateNode", ...}``, or
        ``None`` for an unknown model (bulkframe generates only the bulk nodes).

        Parameters
        ----------
        model_name : str
            A declared model's name.
        """
        if model_name not in self.models:
            return None
        return {f"bulk_{op}": model_name + NODE_SUFFIX[op] for op in OPERATIONS}

    def get_available_nodes(self, model_name: str | None = None) -> dict[str, list[str]]:
        """``{model: ["BulkCreate", "BulkUpdate", "BulkDelete", "BulkUpsert"]}``.

        Parameters
        ----------
        model_name : str, optional
            Only this model.
        """
        names = [model_name] if model_name else list(self.models)
        return {
            m: [NODE_SUFFIX[op].removesuffix("Node") for op in ("create", "update", "delete", "upsert")]
            for m in names
            if m in self.models
        }

    def get_node(self, node_name: str) -> BulkNode | None:
        """The node for a generated node type name, or ``None``.

        Parameters
        ----------
        node_name : str
            E.g. ``"ProductBulkCreateNode"``.
        """
        try:
            return self.node(node_name)
        except OptionError:
            return None

    def __getattr__(self, name: str) -> Any:
        from bulkframe.nodes.kailash import KAILASH_SURFACE, not_built

        if name in KAILASH_SURFACE and KAILASH_SURFACE[name][0] == "refused":
            raise not_built(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

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
