"""Workflow nodes over the library API: ``DataFlow``, ``@db.model``, the generated
``<Model>BulkCreateNode / BulkUpdateNode / BulkUpsertNode / BulkDeleteNode``,
``WorkflowBuilder`` and ``LocalRuntime``, with the spec's parameter names and result
shape.  An adapter: it translates parameters and calls [`bulkframe.Database`][bulkframe.Database]; it
holds no database logic.  See ``docs/nodes.md``.
"""

from __future__ import annotations

from bulkframe.nodes.dataflow import DataFlow, resolve_node
from bulkframe.nodes.model import FilePath, Naive, Numeric, Relationship, VarChar, has_many, has_one
from bulkframe.nodes.node import BulkNode
from bulkframe.nodes.params import register_callback
from bulkframe.nodes.runtime import AsyncLocalRuntime, LocalRuntime, NodeExecutionError
from bulkframe.nodes.workflow import Workflow, WorkflowBuilder

__all__ = [
    "AsyncLocalRuntime",
    "BulkNode",
    "DataFlow",
    "FilePath",
    "LocalRuntime",
    "Naive",
    "NodeExecutionError",
    "Numeric",
    "Relationship",
    "VarChar",
    "Workflow",
    "WorkflowBuilder",
    "has_many",
    "has_one",
    "register_callback",
    "resolve_node",
]
