"""``WorkflowBuilder``: nodes, their parameters and the connections between them."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bulkframe.errors import InvalidOptionValueError, OptionError

if TYPE_CHECKING:
    from bulkframe.nodes.dataflow import DataFlow
    from bulkframe.nodes.node import BulkNode


@dataclass(frozen=True)
class Connection:
    """``from_id``'s output ``from_output`` becomes ``to_id``'s parameter ``to_input``.

    ``from_output`` is an output name (``"data"``, ``"rows"``, ``"errors"``, ``"result"``) or
    a dotted path into one (``"data.success_count"``).
    """

    from_id: str
    from_output: str
    to_id: str
    to_input: str


@dataclass(frozen=True)
class NodeEntry:
    node_id: str
    node: BulkNode
    params: dict[str, Any]


@dataclass(frozen=True)
class Workflow:
    """A built workflow: nodes in execution order (connections respected)."""

    nodes: tuple[NodeEntry, ...]
    connections: tuple[Connection, ...] = field(default=())

    def node(self, node_id: str) -> NodeEntry:
        """The node added under ``node_id``.

        Parameters
        ----------
        node_id : str
            The id given to ``add_node``.

        Raises
        ------
        OptionError
            No node has that id.
        """
        for entry in self.nodes:
            if entry.node_id == node_id:
                return entry
        raise OptionError(f"no node {node_id!r} in this workflow; nodes: {[e.node_id for e in self.nodes]}")


class WorkflowBuilder:
    """Collects nodes and connections; ``build()`` checks and orders them.

    Parameters
    ----------
    dataflow : DataFlow, optional
        Look node types up among this DataFlow's models only (default: the most recent
        declaration of each node type in the process).

    Examples
    --------
    >>> workflow = WorkflowBuilder()
    >>> workflow.add_node("ProductBulkCreateNode", "import", {"data": rows})  # doctest: +SKIP
    >>> results, run_id = LocalRuntime().execute(workflow.build())            # doctest: +SKIP
    """

    def __init__(self, dataflow: DataFlow | None = None):
        self.dataflow = dataflow
        self._nodes: dict[str, NodeEntry] = {}
        self._connections: list[Connection] = []

    def add_node(self, node_type: str, node_id: str, params: Mapping[str, Any] | None = None) -> str:
        """Add a node; its parameters are checked now, naming the node.

        Parameters
        ----------
        node_type : str
            A generated node type, e.g. ``"ProductBulkCreateNode"``.
        node_id : str
            A unique, non-empty id.
        params : mapping, optional
            The node's parameters (docs/spec-parameters.md lists them).

        Returns
        -------
        str
            ``node_id``.

        Raises
        ------
        OptionError
            An unknown node type or parameter (with the closest valid name).
        NotSupportedError
            Parameters not built yet, all named in one message.
        InvalidOptionValueError
            An empty or repeated ``node_id``, or a value a parameter does not take.
        """
        from bulkframe.nodes.dataflow import resolve_node

        if not isinstance(node_id, str) or not node_id:
            raise InvalidOptionValueError(f"node id must be a non-empty string, got {node_id!r}")
        if node_id in self._nodes:
            raise InvalidOptionValueError(f"a node with id {node_id!r} was already added")
        node = resolve_node(node_type, dataflow=self.dataflow)
        params = dict(params or {})
        node.check(params, node_id)
        self._nodes[node_id] = NodeEntry(node_id, node, params)
        return node_id

    def add_connection(self, from_id: str, from_output: str, to_id: str, to_input: str) -> None:
        """Route one node's output into another node's input.

        Parameters
        ----------
        from_id : str
            The producing node.
        from_output : str
            One of its outputs: ``data``, ``rows``, ``errors``, ``result``.
        to_id : str
            The consuming node.
        to_input : str
            The parameter of ``to_id`` that receives the output.

        Raises
        ------
        OptionError
            An unknown node or output.
        """
        for nid in (from_id, to_id):
            if nid not in self._nodes:
                raise OptionError(
                    f"add_connection: no node {nid!r}; add it first (nodes: {list(self._nodes)})"
                )
        from bulkframe.nodes.node import OUTPUTS

        if from_output.split(".", 1)[0] not in OUTPUTS:
            raise OptionError(f"add_connection: node outputs are {list(OUTPUTS)}, got {from_output!r}")
        target = self._nodes[to_id]
        target.node.check({**target.params, to_input: None}, to_id)
        self._connections.append(Connection(from_id, from_output, to_id, to_input))

    def build(self) -> Workflow:
        """The workflow, nodes ordered so every node runs after those feeding it
        (otherwise in the order added)."""
        order: list[str] = []
        state: dict[str, int] = {}
        feeds: dict[str, list[str]] = {}
        for c in self._connections:
            feeds.setdefault(c.to_id, []).append(c.from_id)

        def visit(nid: str, path: tuple[str, ...]) -> None:
            if state.get(nid) == 2:
                return
            if state.get(nid) == 1:
                raise InvalidOptionValueError(f"connections form a cycle: {' -> '.join((*path, nid))}")
            state[nid] = 1
            for upstream in feeds.get(nid, []):
                visit(upstream, (*path, nid))
            state[nid] = 2
            order.append(nid)

        for nid in self._nodes:
            visit(nid, ())
        entries = tuple(NodeEntry(n, self._nodes[n].node, copy.copy(self._nodes[n].params)) for n in order)
        return Workflow(entries, tuple(self._connections))
