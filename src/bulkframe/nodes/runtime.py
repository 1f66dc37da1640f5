"""``LocalRuntime``: runs a built workflow's nodes in order, in this process."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from bulkframe.errors import BulkframeError, OptionError
from bulkframe.nodes.workflow import Workflow

log = logging.getLogger("bulkframe.nodes")


class NodeExecutionError(BulkframeError, RuntimeError):
    """A node failed.  ``node_id`` names it, ``results`` holds every node's outputs so far
    (the failed node's ``{"error": {...}, "data": {...partial result...}}``), ``run_id`` the
    run, and ``__cause__`` the library's error.

    Parameters
    ----------
    message : str
        What failed.
    node_id, node_type : str
        The failed node.
    results : dict
        Every node's outputs so far.
    run_id : str
        The run.
    """

    def __init__(self, message: str, *, node_id: str, node_type: str, results: dict[str, Any], run_id: str):
        super().__init__(message)
        self.node_id = node_id
        self.node_type = node_type
        self.results = results
        self.run_id = run_id


class LocalRuntime:
    """Run workflows synchronously, one node after another.

    Examples
    --------
    >>> results, run_id = LocalRuntime().execute(workflow.build())          # doctest: +SKIP
    >>> results["import_products"]["data"]["success_count"]                # doctest: +SKIP
    1000
    """

    def execute(
        self, workflow: Workflow, parameters: Mapping[str, Mapping[str, Any]] | None = None
    ) -> tuple[dict[str, dict[str, Any]], str]:
        """Run every node; return ``(results, run_id)``.

        Parameters
        ----------
        workflow : Workflow
            From ``WorkflowBuilder.build()``.
        parameters : mapping, optional
            ``{node_id: {param: value}}``: parameters that override (or add to) the ones
            given at ``add_node`` for this run.

        Returns
        -------
        results : dict
            ``{node_id: {"data": {...result fields...}, "rows": ..., "errors": ..., "result": ...}}``.
        run_id : str

        Raises
        ------
        NodeExecutionError
            When a node fails: the message names the node and the cause; nodes after it do
            not run.
        """
        if not isinstance(workflow, Workflow):
            raise OptionError(
                f"execute() takes the result of WorkflowBuilder.build(), got {type(workflow).__name__}"
            )
        overrides = dict(parameters or {})
        unknown = [n for n in overrides if n not in {e.node_id for e in workflow.nodes}]
        if unknown:
            raise OptionError(
                f"parameters name unknown node(s) {unknown}; nodes: {[e.node_id for e in workflow.nodes]}"
            )
        run_id = str(uuid.uuid4())
        results: dict[str, dict[str, Any]] = {}
        for entry in workflow.nodes:
            params = {**entry.params, **overrides.get(entry.node_id, {})}
            for c in workflow.connections:
                if c.to_id == entry.node_id:
                    params[c.to_input] = _pick(results[c.from_id], c.from_output, c)
            try:
                results[entry.node_id] = entry.node.run(params, entry.node_id)
            except Exception as exc:
                partial = getattr(exc, "result", None)
                results[entry.node_id] = {
                    "error": {"type": type(exc).__name__, "message": str(exc)},
                    "data": partial.to_dict() if partial is not None else None,
                    "rows": None,
                    "errors": getattr(partial, "errors", None),
                    "result": partial,
                }
                log.error("run %s: node %r (%s) failed: %s", run_id, entry.node_id, entry.node.type_name, exc)
                raise NodeExecutionError(
                    f"node {entry.node_id!r} ({entry.node.type_name}) failed: {type(exc).__name__}: {exc}",
                    node_id=entry.node_id,
                    node_type=entry.node.type_name,
                    results=results,
                    run_id=run_id,
                ) from exc
        return results, run_id


def _pick(outputs: Mapping[str, Any], path: str, connection: Any) -> Any:
    value: Any = outputs
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise OptionError(f"connection {connection}: output {path!r} not found (at {part!r})")
        value = value[part]
    return value


class AsyncLocalRuntime(LocalRuntime):
    """kailash's ``AsyncLocalRuntime``: the same runs, awaitable.  The nodes run one after
    another in a worker thread, so the event loop stays free while they write.

    Examples
    --------
    >>> results, run_id = await AsyncLocalRuntime().execute_workflow_async(workflow.build(), {})  # doctest: +SKIP
    """

    async def execute_async(
        self, workflow: Workflow, parameters: Mapping[str, Mapping[str, Any]] | None = None
    ) -> tuple[dict[str, dict[str, Any]], str]:
        """``await`` form of :meth:`LocalRuntime.execute`.

        Parameters
        ----------
        workflow : Workflow
            From ``WorkflowBuilder.build()``.
        parameters : mapping, optional
            ``{node_id: {param: value}}`` overrides.

        Raises
        ------
        NodeExecutionError
            When a node fails.
        """
        import asyncio

        return await asyncio.to_thread(self.execute, workflow, parameters)

    async def execute_workflow_async(
        self, workflow: Workflow, inputs: Mapping[str, Mapping[str, Any]] | None = None
    ) -> tuple[dict[str, dict[str, Any]], str]:
        """kailash's name: ``inputs`` are ``{node_id: {param: value}}`` overrides.

        Parameters
        ----------
        workflow : Workflow
            From ``WorkflowBuilder.build()``.
        inputs : mapping, optional
            ``{node_id: {param: value}}`` overrides.

        Raises
        ------
        NodeExecutionError
            When a node fails.
        """
        return await self.execute_async(workflow, inputs)
