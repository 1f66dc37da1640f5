"""A generated bulk node: checks its parameters, calls the library, shapes the output.

Outputs of every node (what ``add_connection`` can route onward):

``data``
    The result's fields as plain Python (``BulkResult.to_dict()``: ``records_processed``,
    ``success_count``, ``failure_count``, ``inserted``, ``updated``, ``deleted``, …).
``rows``
    Rows the operation returned as a Polars DataFrame (``return_updated=True``, a delete's
    ``dry_run`` sample), else ``None``.
``errors``
    Rejected rows with reasons (Polars DataFrame), else ``None``.
``result``
    The :class:`bulkframe.BulkResult` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bulkframe.errors import InvalidOptionValueError, NotSupportedError
from bulkframe.nodes.params import NODE_SUFFIX, Operation, library_params, translate

if TYPE_CHECKING:
    from bulkframe.nodes.dataflow import DataFlow
    from bulkframe.result import BulkResult

from bulkframe.nodes.kailash import RESULT_KEYS

#: Node outputs: the spec's (``data`` …) and kailash-dataflow's top-level keys.
OUTPUTS = (
    "data",
    "rows",
    "errors",
    "result",
    *dict.fromkeys(k for keys in RESULT_KEYS.values() for k in keys),
)


@dataclass(frozen=True)
class BulkNode:
    """``<Model>Bulk<Op>Node``: one model, one library operation."""

    dataflow: DataFlow
    model: type
    operation: Operation

    @property
    def type_name(self) -> str:
        return self.model.__name__ + NODE_SUFFIX[self.operation]

    def check(self, params: Mapping[str, Any], node_id: str = "") -> None:
        """Refuse unknown, unsupported or mis-valued parameters now (at ``add_node``).

        Parameters
        ----------
        params : mapping
            The node's parameters (spec names).
        node_id : str
            The node's id, named in error messages.

        Raises
        ------
        OptionError
            An unknown parameter (with the closest valid name).
        NotSupportedError
            Parameters or values not built yet, all named in one message.
        InvalidOptionValueError
            A value the parameter does not take.
        """
        node, kwargs = translate(self.operation, params, where=self._where(node_id))
        if node.get("copy_options") is not None:
            from bulkframe.nodes.copy_options import parse

            parse(node["copy_options"], self._where(node_id))
        if self.operation == "delete":
            from bulkframe.nodes.cleanup import check_cleanup

            check_cleanup(self.dataflow, self.model, {**node, **kwargs}, self._where(node_id))
        strategy = params.get("relationship_strategy")
        if strategy is not None:
            from bulkframe.nodes.relations import STRATEGIES

            if strategy not in STRATEGIES:
                raise NotSupportedError(
                    f"{self._where(node_id)}: relationship_strategy={strategy!r} is not "
                    f"supported yet; choose one of {list(STRATEGIES)}"
                )

    def run(self, params: Mapping[str, Any], node_id: str = "") -> dict[str, Any]:
        """Call the library and return the node's outputs.

        Parameters
        ----------
        params : mapping
            The node's parameters (spec names), inputs from connections included.
        node_id : str
            The node's id, named in error messages.

        Returns
        -------
        dict
            The outputs ``data``, ``rows``, ``errors`` and ``result``.
        """
        where = self._where(node_id)
        node, kwargs = translate(self.operation, params, where=where)
        batch_size = kwargs.get("batch_size")
        result = getattr(self, f"_{self.operation}")(node, kwargs, where)
        return outputs(result, self.operation, batch_size)

    def _where(self, node_id: str) -> str:
        return f"{self.type_name} {node_id!r}" if node_id else self.type_name

    # -- one adapter per operation ------------------------------------------------------
    def _create(self, node: dict[str, Any], kwargs: dict[str, Any], where: str) -> BulkResult:
        from bulkframe.nodes.dataflow import info_of

        data = _required(node, "data", where)
        if node.get("include_relationships"):
            from bulkframe.nodes.relations import create_nested

            return create_nested(self.dataflow, self.model, data, node, kwargs, where)
        if node.get("relationship_strategy") is not None:
            raise InvalidOptionValueError(f"{where}: relationship_strategy needs include_relationships")
        info = info_of(self.model)
        mode = kwargs.get("conflict_resolution", "error")
        if mode == "skip" and kwargs.get("conflict_fields") is None:
            # SQL's ON CONFLICT DO NOTHING: rows violating any unique constraint (or the
            # primary key) are skipped and counted; with none, every row is inserted
            kwargs["conflict_fields"] = []
        elif (
            mode != "error"
            and not kwargs.get("conflict_fields")
            and "conflict_fields" in library_params("create")
        ):
            if info.unique:
                kwargs["conflict_fields"] = list(info.unique[0])
            elif info.identity is not None and info.identity not in (_input_columns(data) or {info.identity}):
                raise InvalidOptionValueError(
                    f"{where}: conflict_resolution={mode!r} needs a key to recognise duplicates, but "
                    f"{self.model.__name__}'s only key is its auto-numbered {info.identity!r}, which the data "
                    "does not carry. Declare __unique__ = [(...)] on the model or pass conflict_fields=[...]"
                )
        if node.get("copy_options") is not None:
            from bulkframe.nodes.copy_options import create_from_file

            return create_from_file(self.dataflow, self.model, data, node["copy_options"], kwargs, where)
        return self.dataflow.database.bulk_create(self.model, data, **kwargs)

    def _upsert(self, node: dict[str, Any], kwargs: dict[str, Any], where: str) -> BulkResult:
        from bulkframe.nodes.dataflow import info_of

        data = _required(node, "data", where)
        info = info_of(self.model)
        if kwargs.get("unique_fields") is None and info.unique:
            kwargs["unique_fields"] = list(info.unique[0])
        if self._stamps_updates():
            data = stamped(data, where)
            fields = kwargs.get("update_fields")
            if fields and "updated_at" not in fields:  # [] means "never update": left alone
                kwargs["update_fields"] = [*fields, "updated_at"]
            if kwargs.get("detect_changes") and kwargs.get("change_detection_fields") is None:
                # the stamp always differs: compare the other columns, so a row equal in
                # them stays unchanged (and keeps its stamp)
                kwargs["change_detection_fields"] = _compared(data, kwargs, info.primary_key, where)
        return self.dataflow.database.bulk_upsert(self.model, data, **kwargs)

    def _update(self, node: dict[str, Any], kwargs: dict[str, Any], where: str) -> BulkResult:
        updates = kwargs.get("updates")
        if updates is not None and self._stamps_updates():
            if isinstance(updates, Mapping):  # by filter: the database's clock, as created_at
                kwargs["updates"] = {"updated_at": ":current_timestamp", **updates}
            else:
                kwargs["updates"] = stamped(updates, where)
        return self.dataflow.database.bulk_update(self.model, **kwargs)

    def _stamps_updates(self) -> bool:
        """Whether this model's table has the ``updated_at`` the model layer added (then
        every update and upsert sets it, as kailash-dataflow does)."""
        from bulkframe.nodes.dataflow import info_of

        info = info_of(self.model)
        if "updated_at" not in info.stamps:
            return False
        columns = self.dataflow.database.columns(info.table.name, schema=info.table.schema) or []
        return any(c.name == "updated_at" for c in columns)

    def _delete(self, node: dict[str, Any], kwargs: dict[str, Any], where: str) -> BulkResult:
        from bulkframe.nodes import cleanup
        from bulkframe.nodes.dataflow import info_of

        if (
            info_of(self.model).deletes_softly
            and not kwargs.get("hard_delete")
            and "soft_delete" not in kwargs
        ):
            kwargs["soft_delete"] = True  # kailash's __dataflow__ soft_delete: deletes tombstone
        cleanup.check_cleanup(self.dataflow, self.model, {**node, **kwargs}, where)
        cascade = kwargs.get("cascade")
        if cascade:
            kwargs["cascade"] = cascade = self._cascade(cascade)
        if node.get("cleanup_related"):
            related = cleanup.related_tables(self.dataflow, self.model)
            if isinstance(cascade, Mapping):
                related.update(cascade)
            elif cascade:
                other = [t for t in cascade if t not in related]
                if other:
                    raise InvalidOptionValueError(
                        f"{where}: cleanup_related=True with cascade tables {other} that are not related to "
                        f"{self.model.__name__} in the model layer; name their foreign keys with "
                        "cascade={table: column}"
                    )
            kwargs["cascade"] = related
        if kwargs.get("soft_delete"):
            children = list(kwargs.get("cascade") or [])
            cleanup.ensure_deleted_at(self.dataflow, self.model, kwargs, children)
        if not node.get("cleanup_files") or kwargs.get("dry_run"):
            result = self.dataflow.database.bulk_delete(self.model, **kwargs)
            if node.get("cleanup_files"):
                result.metrics["cleanup_files"] = {"removed": 0, "missing": 0, "failed": []}
            return result
        backup, private = cleanup.capture_location(kwargs)
        try:
            result = self.dataflow.database.bulk_delete(self.model, **kwargs)
            cleanup.remove_files(result, backup, info_of(self.model).file_fields)  # committed: now
        finally:
            if private is not None:
                import shutil

                shutil.rmtree(private, ignore_errors=True)
        return result

    def _cascade(self, cascade: Any) -> Any:
        """Relationship names → ``{child table: foreign key}``; other names pass through as
        table names (the library then reads the foreign key from the catalog)."""
        from bulkframe.nodes.dataflow import info_of

        if isinstance(cascade, str):
            cascade = [cascade]
        if isinstance(cascade, Mapping):
            return cascade
        rels = info_of(self.model).relationships
        named = [n for n in cascade if n in rels]
        if not named:
            return list(cascade)
        if len(named) != len(cascade):
            raise InvalidOptionValueError(
                f"cascade mixes relationship names {named} with table names "
                f"{[n for n in cascade if n not in rels]}; use relationship names only, or a "
                "{table: foreign_key} mapping"
            )
        out: dict[str, str] = {}
        for name in named:
            rel = rels[name]
            child = rel.model if isinstance(rel.model, type) else self.dataflow.model_of(rel.model)
            out[info_of(child).table.name] = rel.foreign_key
        return out


def _compared(data: Any, kwargs: Mapping[str, Any], primary_key: list[str], where: str) -> list[str]:
    """The columns ``detect_changes`` compares when the model layer stamps ``updated_at``:
    those the upsert would update, less the key, ``ignore_fields`` and the stamp."""
    names: list[str] | None = list(kwargs.get("update_fields") or ()) or None
    if names is None:
        if isinstance(data, list | tuple) and all(isinstance(r, Mapping) for r in data):
            names = list(dict.fromkeys(k for r in data for k in r))
        elif hasattr(data, "collect_schema"):
            names = list(data.collect_schema().names())
        else:
            found = _input_columns(data)
            names = sorted(found) if found is not None else None
    if names is None:
        raise NotSupportedError(
            f"{where}: detect_changes on a model with updated_at needs change_detection_fields=[...] for a "
            f"{type(data).__name__} input (the stamp differs on every row, so it is left out of the comparison)"
        )
    keys = kwargs.get("unique_fields") or primary_key
    skip = {*([keys] if isinstance(keys, str) else keys), *(kwargs.get("ignore_fields") or ()), "updated_at"}
    return [n for n in names if n not in skip]


def _input_columns(data: Any) -> set[str] | None:
    """Column names of a list of dicts (first row) or a frame; ``None`` when not cheap to know."""
    if isinstance(data, list | tuple):
        return set(data[0]) if data and isinstance(data[0], Mapping) else None
    if type(data).__name__ == "LazyFrame":  # its columns cost a schema resolution
        return None
    names = getattr(data, "column_names", None)
    if names is None:
        names = getattr(data, "columns", None)
    try:
        return {str(n) for n in names} if names is not None else None
    except TypeError:
        return None


def _required(node: Mapping[str, Any], name: str, where: str) -> Any:
    if node.get(name) is None:
        raise InvalidOptionValueError(f"{where}: parameter {name!r} is required (rows or a DataFrame)")
    return node[name]


def outputs(result: BulkResult, operation: Operation | None = None, batch_size: Any = None) -> dict[str, Any]:
    """The node outputs for a library result (with ``operation``: also the top-level keys
    kailash-dataflow's bulk nodes return, see :mod:`bulkframe.nodes.kailash`)."""
    rows = result.data
    if rows is not None and not hasattr(rows, "to_dicts"):
        import polars as pl

        rows = pl.DataFrame(rows) if rows else None
    out: dict[str, Any] = {}
    if operation is not None:
        from bulkframe.nodes.kailash import result_keys

        out.update(result_keys(operation, result, batch_size))
    out.update({"data": result.to_dict(), "rows": rows, "errors": result.errors, "result": result})
    return out


def stamped(rows: Any, where: str) -> Any:
    """``rows`` with ``updated_at`` set to now (UTC) on every row that does not carry its
    own: the model layer's ``updated_at`` says when a row was last written.

    Raises
    ------
    NotSupportedError
        An input kind the stamp cannot be added to (a file path, a reader): pass the rows
        as dicts or a frame, include ``updated_at`` yourself, or declare the model with
        ``__timestamps__ = False``.
    """
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    if isinstance(rows, Mapping):
        return {"updated_at": now, **rows}
    if isinstance(rows, (list, tuple)) and all(isinstance(r, Mapping) for r in rows):
        return [{"updated_at": now, **r} for r in rows]
    module = type(rows).__module__.split(".")[0]
    if module == "polars":
        import polars as pl

        frame = rows.lazy() if hasattr(rows, "lazy") else rows
        if "updated_at" in frame.collect_schema().names():
            return rows
        out = frame.with_columns(pl.lit(now, dtype=pl.Datetime("us", "UTC")).alias("updated_at"))
        return out.collect() if type(rows).__name__ == "DataFrame" else out
    if module == "pandas":
        return rows if "updated_at" in rows.columns else rows.assign(updated_at=now)
    if module == "pyarrow" and hasattr(rows, "append_column"):
        import pyarrow as pa

        if "updated_at" in rows.column_names:
            return rows
        return rows.append_column("updated_at", pa.array([now] * rows.num_rows, pa.timestamp("us", tz="UTC")))
    raise NotSupportedError(
        f"{where}: the model's table has updated_at, which every update and upsert sets, but a "
        f"{type(rows).__name__} input cannot be stamped; pass rows as dicts or a DataFrame, include "
        "updated_at in the data, or declare the model with __timestamps__ = False"
    )
