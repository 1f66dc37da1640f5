"""What a delete node does around the library's ``bulk_delete``: ``cleanup_related``
(the model's related rows, through ``cascade``), ``cleanup_files`` (files the deleted rows
referenced, removed after the commit) and the ``deleted_at`` column a ``soft_delete`` needs
on a table the model layer owns.

``cleanup_related=True``
    Every relationship of the model (``__relationships__``) and every model on the same
    DataFlow whose ``__foreign_keys__`` point at it: their rows that reference the deleted
    rows are deleted, or soft deleted with ``soft_delete=True``, first and in the same
    transaction (the library's ``cascade``).  A model with neither is refused: bulkframe
    does not guess which tables reference it.
``cleanup_files=True``
    The model's fields declared ``Annotated[str, FilePath]`` hold paths.  The deleted rows
    are captured by the delete itself (``RETURNING``, written to a private backup before
    the commit); only after the delete committed are their files removed.  A file already
    missing is counted, not an error; one that cannot be removed is reported in
    ``result.metrics["cleanup_files"]`` (the delete stays committed).  Refused with
    ``soft_delete`` (the kept rows still reference their files) and on a model that
    declares no ``FilePath`` field.  ``dry_run`` removes nothing.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkframe.errors import InvalidOptionValueError

if TYPE_CHECKING:
    from bulkframe.nodes.dataflow import DataFlow
    from bulkframe.result import BulkResult

log = logging.getLogger("bulkframe.nodes")


def related_tables(dataflow: DataFlow, model: type) -> dict[str, str]:
    """``{child table: foreign key column}`` for every table that references ``model``'s
    rows as far as the model layer knows: its relationships and the foreign keys other
    models on ``dataflow`` declare to it."""
    from bulkframe.nodes.dataflow import info_of

    info = info_of(model)
    out: dict[str, str] = {}
    for rel in info.relationships.values():
        child = rel.model if isinstance(rel.model, type) else dataflow.model_of(rel.model)
        out[info_of(child).table.name] = rel.foreign_key
    for other in dataflow.models.values():
        other_info = info_of(other)
        for fk in other_info.foreign_keys:
            if fk.referred_table == info.table.name and len(fk.columns) == 1:
                out.setdefault(other_info.table.name, fk.columns[0])
    return out


def check_cleanup(dataflow: DataFlow, model: type, params: Mapping[str, Any], where: str) -> None:
    """Refuse ``cleanup_related`` / ``cleanup_files`` where the model gives them no safe
    meaning (called at ``add_node`` and again at run time)."""
    from bulkframe.nodes.dataflow import info_of

    info = info_of(model)
    if params.get("cleanup_related") and not related_tables(dataflow, model):
        raise InvalidOptionValueError(
            f"{where}: cleanup_related=True, but {info.name} declares no relationships "
            "(__relationships__) and no model on this DataFlow declares a foreign key to it, so "
            "bulkframe does not know which rows are related; declare them, or name the tables with "
            "cascade=[...]"
        )
    if params.get("cleanup_files"):
        if not info.file_fields:
            raise InvalidOptionValueError(
                f"{where}: cleanup_files=True, but {info.name} declares no file-path field "
                "(Annotated[str, FilePath]), so no file belongs to its rows"
            )
        if params.get("soft_delete"):
            raise InvalidOptionValueError(
                f"{where}: cleanup_files=True with soft_delete=True is refused: soft-deleted rows "
                "still reference their files, and a restored row would find them gone"
            )
    for name in ("cleanup_related", "cleanup_files"):
        if name in params and not isinstance(params[name], bool):
            raise InvalidOptionValueError(f"{where}: {name} must be True or False, got {params[name]!r}")


def filter_columns(value: Any) -> set[str]:
    """Column names a filter mapping mentions (keys not starting with ``$``, walking
    ``$and``/``$or``/``$not`` lists and mappings)."""
    out: set[str] = set()
    if isinstance(value, Mapping):
        for key, sub in value.items():
            if isinstance(key, str) and not key.startswith("$"):
                out.add(key)
            else:
                out |= filter_columns(sub)
    elif isinstance(value, list | tuple):
        for item in value:
            out |= filter_columns(item)
    return out


def ensure_deleted_at(dataflow: DataFlow, model: type, kwargs: Mapping[str, Any], tables: list[str]) -> None:
    """Add the ``deleted_at`` column a soft delete needs to ``model``'s table (and to the
    cascaded tables of models on this DataFlow) when the model layer owns them; other
    tables keep the library's refusal, which shows the ``ALTER TABLE`` to run.  The filter's
    columns are checked first, so a delete that will be refused alters nothing."""
    from bulkframe.nodes.dataflow import info_of
    from bulkframe.types import Column

    field = kwargs.get("deleted_at_field", "deleted_at")
    db = dataflow.database
    info = info_of(model)
    existing = {c.name for c in db.columns(info.table.name, schema=info.table.schema) or ()}
    unknown = sorted(filter_columns(kwargs.get("filter")) - existing)
    if unknown:
        return  # the library refuses the filter, naming the columns; alter nothing
    by_table = {info_of(m).table.name: m for m in dataflow.models.values()}
    for name in [info.table.name, *tables]:
        owner = by_table.get(name)
        if owner is None or not dataflow.owns(owner):
            continue
        ref = info_of(owner).table
        names = {c.name for c in db.columns(ref.name, schema=ref.schema) or ()}
        if names and field not in names:
            dataflow.add_column(owner, Column(field, "timestamptz", nullable=True))


def capture_location(kwargs: dict[str, Any]) -> tuple[Path, Path | None]:
    """Make the delete write the rows it deletes to a backup (the user's, or a private one)
    and return ``(backup path, private directory to remove afterwards or None)``."""
    if kwargs.get("backup_before_delete"):
        location = kwargs.get("backup_location")
        if location is not None:
            return Path(location), None
    private = Path(tempfile.mkdtemp(prefix="bulkframe-cleanup-files-"))
    kwargs["backup_before_delete"] = True
    kwargs["backup_location"] = str(private / "deleted.parquet")
    return private / "deleted.parquet", private


def remove_files(result: BulkResult, backup: Path, fields: tuple[str, ...]) -> None:
    """After the commit: remove the files the deleted rows name (from the delete's own
    backup) and record what happened in ``result.metrics["cleanup_files"]``."""
    import polars as pl

    report: dict[str, Any] = {"removed": 0, "missing": 0, "failed": []}
    result.metrics["cleanup_files"] = report
    if result.dry_run or not backup.exists():
        return
    readers: dict[str, Callable[[Path], pl.DataFrame]] = {
        ".parquet": pl.read_parquet,
        ".csv": pl.read_csv,
        ".json": pl.read_json,
        ".jsonl": pl.read_ndjson,
    }
    rows = readers[backup.suffix](backup)
    paths = sorted({p for f in fields if f in rows.columns for p in rows[f].drop_nulls().to_list() if p})
    for path in paths:
        try:
            os.remove(path)
            report["removed"] += 1
        except FileNotFoundError:
            report["missing"] += 1
        except OSError as exc:
            report["failed"].append({"path": path, "error": f"{type(exc).__name__}: {exc}"})
            log.warning("cleanup_files: could not remove %s (%s); the delete is committed", path, exc)
