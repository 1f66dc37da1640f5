"""``include_relationships`` / ``relationship_strategy`` of a create node → the library's
:func:`bulkframe.ops.nested.bulk_create_nested`, from the model's ``__relationships__``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bulkframe.errors import InvalidOptionValueError, NotSupportedError
from bulkframe.options import RelationshipStrategy, choices

if TYPE_CHECKING:
    from bulkframe.nodes.dataflow import DataFlow
    from bulkframe.result import BulkResult

STRATEGIES = choices(RelationshipStrategy)
#: Create options that also apply to a nested create (others are refused with it).
_NESTED_OPTIONS = {"batch_size", "validate_data", "skip_validation"}


def create_nested(
    dataflow: DataFlow, model: type, data: Any, node: Mapping[str, Any], kwargs: dict[str, Any], where: str
) -> BulkResult:
    """Run a create node whose ``include_relationships`` names relationships of ``model``."""
    from bulkframe.nodes.dataflow import info_of
    from bulkframe.ops.nested import Nested, bulk_create_nested

    strategy = node.get("relationship_strategy", "nested_create")
    if strategy not in STRATEGIES:
        raise NotSupportedError(
            f"{where}: relationship_strategy={strategy!r} is not supported yet; "
            f"choose one of {list(STRATEGIES)}"
        )
    names = node["include_relationships"]
    names = [names] if isinstance(names, str) else list(names)
    rels = info_of(model).relationships
    unknown = [n for n in names if n not in rels]
    if unknown:
        raise InvalidOptionValueError(
            f"{where}: include_relationships {unknown} are not relationships of {model.__name__}; "
            f"declared: {sorted(rels)} (in __relationships__)"
        )
    other = sorted(set(kwargs) - _NESTED_OPTIONS)
    if other:
        raise NotSupportedError(f"{where}: {other} are not supported yet together with include_relationships")
    nested = []
    for name in names:
        rel = rels[name]
        child = rel.model if isinstance(rel.model, type) else dataflow.model_of(rel.model)
        nested.append(Nested(name, child, rel.foreign_key, many=rel.kind == "many"))
    validate = bool(kwargs.get("validate_data", True)) and not kwargs.get("skip_validation", False)
    return bulk_create_nested(
        dataflow.database,
        model,
        data,
        nested=nested,
        batch_size=kwargs.get("batch_size", 10_000),
        validate=validate,
    )
