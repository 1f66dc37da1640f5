"""Error strategy and run options: declared (and checked) in :mod:`bulkframe.options`."""

from __future__ import annotations

from bulkframe.options import ErrorPolicy, RunOptions, log_level

__all__ = ["ErrorPolicy", "RunOptions", "log_level"]
