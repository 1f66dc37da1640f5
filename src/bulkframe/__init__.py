"""bulkframe: fast, honest bulk create/update/upsert/delete for SQL databases.

``import bulkframe`` is cheap: drivers, Polars and PyArrow load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from bulkframe.database import Database, connect
    from bulkframe.ops.verify_sides import TableSource
    from bulkframe.progress import Progress
    from bulkframe.result import BulkResult

_LAZY = {
    "connect": "bulkframe.database",
    "Database": "bulkframe.database",
    "BulkResult": "bulkframe.result",
    "Progress": "bulkframe.progress",
    "TableSource": "bulkframe.ops.verify_sides",
}

__all__ = ["BulkResult", "Database", "Progress", "TableSource", "__version__", "connect", "errors"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "errors":
        import importlib

        return importlib.import_module("bulkframe.errors")
    raise AttributeError(f"module 'bulkframe' has no attribute {name!r}")
