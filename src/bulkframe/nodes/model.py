"""``@db.model``: an annotated class → a table definition (columns, keys, constraints).

Python type → column kind (see ``docs/nodes.md``):

========================  =====================================================
annotation                column
========================  =====================================================
``str``                   ``text`` (``Annotated[str, VarChar(80)]``: ``varchar(80)``)
``int``                   ``bigint``
``float``                 ``double precision``
``Decimal``               ``numeric(18, 6)`` (``Annotated[Decimal, Numeric(12, 2)]``)
``bool``                  ``boolean``
``datetime``              ``timestamptz`` (``Annotated[datetime, Naive]``: ``timestamp``)
``date`` / ``time``       ``date`` / ``time``
``dict`` / ``list``       JSON (``jsonb`` on PostgreSQL)
``UUID``                  ``uuid``
``bytes``                 ``bytea`` / ``BLOB``
``Optional[X]``           ``X``, nullable
========================  =====================================================

A field without a default is ``NOT NULL``; a class default becomes the column's
``DEFAULT`` (``None`` makes it nullable).  ``id`` is added as a ``bigint`` primary key the
database numbers unless the class declares its own ``id`` (or ``__primary_key__``).
``created_at`` and ``updated_at`` (``timestamptz``, default the database's clock) are added
as kailash-dataflow adds them, unless declared or ``__timestamps__ = False``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import types
import typing
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bulkframe.backends.base import ForeignKey, TableRef
from bulkframe.errors import SchemaError
from bulkframe.types import Column

#: Columns every model table gets unless the class declares them or sets
#: ``__timestamps__ = False`` (``timestamptz``, default: the database's clock).
TIMESTAMP_FIELDS = ("created_at", "updated_at")

#: ``Decimal`` without an ``Annotated[..., Numeric(p, s)]`` marker.
DEFAULT_DECIMAL = (18, 6)


@dataclass(frozen=True)
class Numeric:
    """``Annotated[Decimal, Numeric(12, 2)]`` → ``numeric(12, 2)``."""

    precision: int
    scale: int = 0


@dataclass(frozen=True)
class VarChar:
    """``Annotated[str, VarChar(80)]`` → ``varchar(80)``."""

    length: int


class Naive:
    """``Annotated[datetime, Naive]`` → ``timestamp`` (without time zone)."""


class FilePath:
    """``Annotated[str, FilePath]``: the field holds a path to a file the row owns, which a
    delete node with ``cleanup_files=True`` removes after the delete commits."""


@dataclass(frozen=True)
class Relationship:
    """A one-to-one or one-to-many link from a parent model to a child model whose
    ``foreign_key`` column holds the parent's ``id``.

    ``model`` is the child model class or its name (resolved when first used, so the child
    may be declared after the parent).
    """

    model: Any
    foreign_key: str
    kind: Literal["one", "many"] = "one"


def has_one(model: Any, foreign_key: str) -> Relationship:
    """One child per parent: ``__relationships__ = {"profile": has_one("Profile", "user_id")}``.

    Parameters
    ----------
    model : model class or str
        The child model, or its name.
    foreign_key : str
        The child's column holding the parent's ``id``.
    """
    return Relationship(model, foreign_key, "one")


def has_many(model: Any, foreign_key: str) -> Relationship:
    """Many children per parent: ``{"reviews": has_many("Review", "product_id")}``.

    Parameters
    ----------
    model : model class or str
        The child model, or its name.
    foreign_key : str
        The child's column holding the parent's ``id``.
    """
    return Relationship(model, foreign_key, "many")


@dataclass
class ModelInfo:
    """Everything ``@db.model`` read from a class."""

    name: str
    table: TableRef
    columns: list[Column]
    identity: str | None
    defaults: dict[str, Any] = field(default_factory=dict)
    unique: list[tuple[str, ...]] = field(default_factory=list)
    indexes: list[tuple[str, ...]] = field(default_factory=list)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    relationships: dict[str, Relationship] = field(default_factory=dict)
    soft_delete: bool = False
    #: Columns the model layer added (``created_at``/``updated_at``), not the class.
    stamps: tuple[str, ...] = ()
    #: Fields declared ``Annotated[str, FilePath]``.
    file_fields: tuple[str, ...] = ()
    #: kailash's ``__dataflow__ = {"soft_delete": True}``: a delete node soft deletes
    #: unless ``hard_delete=True`` (kailash's meaning).
    deletes_softly: bool = False

    @property
    def primary_key(self) -> list[str]:
        return [c.name for c in self.columns if c.primary_key]


_SCALARS: dict[Any, str] = {
    str: "text",
    int: "int64",
    float: "float64",
    bool: "bool",
    dt.datetime: "timestamptz",
    dt.date: "date",
    dt.time: "time",
    dict: "json",
    list: "json",
    uuid.UUID: "uuid",
    bytes: "binary",
}


def table_name_for(class_name: str) -> str:
    """``Product`` → ``products``, ``OrderItem`` → ``order_items``, ``Category`` →
    ``categories``, ``Address`` → ``addresses``: snake_case, then an English plural."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", class_name).lower()
    if re.search(r"[^aeiou]y$", snake):
        return snake[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", snake):
        return snake + "es"
    return snake + "s"


def column_for(name: str, annotation: Any, *, has_default: bool, default: Any) -> Column:
    """The column an annotated field declares."""
    nullable = False
    extras: tuple[Any, ...] = ()
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *rest = typing.get_args(annotation)
        extras = tuple(rest)
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != len(typing.get_args(annotation)) - 1 or len(args) != 1:
            raise SchemaError(
                f"field {name!r}: only Optional[X] / X | None unions are supported, got {annotation}"
            )
        nullable = True
        annotation = args[0]
        if typing.get_origin(annotation) is typing.Annotated:
            annotation, *rest = typing.get_args(annotation)
            extras += tuple(rest)
    base = typing.get_origin(annotation) or annotation
    if has_default and default is None:
        nullable = True
    if base is decimal.Decimal:
        numeric = next((e for e in extras if isinstance(e, Numeric)), None)
        p, s = (numeric.precision, numeric.scale) if numeric else DEFAULT_DECIMAL
        return Column(name, "decimal", nullable=nullable, precision=p, scale=s, has_default=has_default)
    kind = _SCALARS.get(base)
    if kind is None:
        raise SchemaError(
            f"field {name!r}: no column type for annotation {annotation!r}; use str, int, float, Decimal, "
            "bool, datetime, date, time, dict, list, UUID, bytes or Optional[...] of one"
        )
    if kind == "timestamptz" and any(e is Naive or isinstance(e, Naive) for e in extras):
        kind = "timestamp"
    varchar = next((e for e in extras if isinstance(e, VarChar)), None)
    length = varchar.length if varchar is not None and kind == "text" else None
    return Column(name, kind, nullable=nullable, length=length, has_default=has_default)


def read_model(
    cls: type, *, foreign_table: Any = None, localns: Mapping[str, Any] | None = None
) -> ModelInfo:
    """Read ``cls``'s annotations and ``__dunder__`` options into a :class:`ModelInfo`.

    ``foreign_table`` resolves a ``__foreign_keys__`` target (a model class or name) to a
    ``TableRef``; ``localns`` resolves string annotations of a class declared inside a
    function (the decorator passes its caller's locals).
    """
    try:
        hints = typing.get_type_hints(cls, localns=dict(localns) if localns else None, include_extras=True)
    except NameError as exc:
        # a class made by exec() or in a function: its module's globals lack the names, but
        # the class's own (already evaluated) annotations have the objects
        hints = {}
        for base in reversed(cls.__mro__[:-1]):
            hints.update(
                getattr(base, "__annotations__", {}) if base is cls else vars(base).get("__annotations__", {})
            )
        if any(isinstance(v, str) for v in hints.values()):
            raise SchemaError(
                f"model {cls.__name__}: cannot resolve an annotation ({exc}); import the type at module level"
            ) from exc
    hints = {
        k: v
        for k, v in hints.items()
        if not k.startswith("_") and typing.get_origin(v) is not typing.ClassVar
    }
    if not hints:
        raise SchemaError(f"model {cls.__name__} has no annotated fields")
    # the class's own name only: a subclass of a model must not write to its parent's table
    table = TableRef(
        vars(cls).get("__tablename__") or table_name_for(cls.__name__), getattr(cls, "__schema__", None)
    )
    pk = _names(getattr(cls, "__primary_key__", None) or (["id"] if "id" in hints else []))
    columns: list[Column] = []
    defaults: dict[str, Any] = {}
    identity: str | None = None
    if not pk:
        columns.append(Column("id", "int64", nullable=False, primary_key=True, has_default=True))
        identity = "id"
        pk = ["id"]
    for name, annotation in hints.items():
        has_default = name in vars(cls) or any(name in vars(b) for b in cls.__mro__[1:-1])
        default = getattr(cls, name, None)
        if isinstance(default, Relationship):
            raise SchemaError(
                f"model {cls.__name__}: declare relationships in __relationships__, not as {name!r}"
            )
        col = column_for(name, annotation, has_default=has_default, default=default)
        if name in pk:
            col = Column(
                col.name,
                col.kind,
                nullable=False,
                primary_key=True,
                precision=col.precision,
                scale=col.scale,
                length=col.length,
                has_default=col.has_default,
            )
            if pk == [name] and col.kind == "int64" and not has_default and name == "id":
                identity = name
                col = Column(name, "int64", nullable=False, primary_key=True, has_default=True)
        elif has_default and default is not None:
            defaults[name] = default
        columns.append(col)
    missing_pk = [k for k in pk if k not in hints and k != "id"]
    if missing_pk:
        raise SchemaError(f"model {cls.__name__}: __primary_key__ {missing_pk} are not annotated fields")
    file_fields = tuple(n for n, a in hints.items() if _is_file_path(a))
    stamps: list[str] = []
    if getattr(cls, "__timestamps__", True):
        # like kailash-dataflow's models: every table records when a row was made and last
        # written (the database's clock), unless the class declares the fields itself
        for stamp in TIMESTAMP_FIELDS:
            if stamp not in hints:
                stamps.append(stamp)
                columns.append(Column(stamp, "timestamptz", nullable=True, has_default=True))
                defaults[stamp] = ":current_timestamp"
    config = _kailash_config(cls)
    soft_delete = bool(getattr(cls, "__soft_delete__", False)) or bool(config.get("soft_delete"))
    if soft_delete and "deleted_at" not in hints:
        columns.append(Column("deleted_at", "timestamptz", nullable=True))
    fks = []
    for col_name, target in dict(getattr(cls, "__foreign_keys__", {}) or {}).items():
        ref = foreign_table(target) if foreign_table is not None else TableRef(str(target))
        fks.append(ForeignKey((col_name,), ref.name, ref.schema, ()))
    relationships = dict(getattr(cls, "__relationships__", {}) or {})
    for rel_name, rel in relationships.items():
        if not isinstance(rel, Relationship):
            raise SchemaError(
                f"model {cls.__name__}: relationship {rel_name!r} must be has_one(...) or "
                f"has_many(...), got {rel!r}"
            )
    return ModelInfo(
        name=cls.__name__,
        table=table,
        columns=columns,
        identity=identity,
        defaults=defaults,
        unique=[tuple(_names(u)) for u in getattr(cls, "__unique__", []) or []] + config["unique"],
        indexes=[tuple(_names(i)) for i in getattr(cls, "__indexes__", []) or []] + config["indexes"],
        foreign_keys=fks,
        relationships=relationships,
        soft_delete=soft_delete,
        stamps=tuple(stamps),
        file_fields=file_fields,
        deletes_softly=bool(config.get("soft_delete")),
    )


#: kailash-dataflow's ``__dataflow__`` model-config keys bulkframe reads.
KAILASH_CONFIG_KEYS = ("soft_delete", "indexes")


def _kailash_config(cls: type) -> dict[str, Any]:
    """kailash-dataflow's ``__dataflow__ = {"soft_delete": True, "indexes": [{"fields":
    [...], "unique": bool}]}``; its other keys are refused, naming them."""
    config = getattr(cls, "__dataflow__", None) or {}
    if not isinstance(config, Mapping):
        raise SchemaError(f"model {cls.__name__}: __dataflow__ must be a mapping, got {config!r}")
    other = sorted(set(config) - set(KAILASH_CONFIG_KEYS))
    if other:
        raise SchemaError(
            f"model {cls.__name__}: __dataflow__ key(s) {other} are not supported by bulkframe "
            f"(supported: {list(KAILASH_CONFIG_KEYS)}; see docs/kailash-compat.md)"
        )
    unique: list[tuple[str, ...]] = []
    indexes: list[tuple[str, ...]] = []
    for index in config.get("indexes", []) or []:
        fields = index.get("fields") if isinstance(index, Mapping) else None
        if not fields or set(index) - {"fields", "unique", "name"}:
            raise SchemaError(
                f"model {cls.__name__}: __dataflow__ index {index!r}: give {{'fields': [...], 'unique': bool}} "
                "(a 'name' is not used: bulkframe names indexes ix_<table>_<columns>)"
            )
        (unique if index.get("unique") else indexes).append(tuple(_names(fields)))
    return {"soft_delete": config.get("soft_delete", False), "unique": unique, "indexes": indexes}


def _is_file_path(annotation: Any) -> bool:
    """``Annotated[str, FilePath]`` (also inside ``Optional``)."""
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is typing.Annotated and any(
            e is FilePath or isinstance(e, FilePath) for e in typing.get_args(arg)[1:]
        ):
            return True
    return False


def _names(value: str | Sequence[str] | Mapping[str, Any]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
