"""Stage 1 of the pipeline: every input becomes a stream of Arrow tables with the
target's schema.  ``sources`` reads the many input kinds; ``conform`` casts to the
target's column types and reports what cannot be cast."""

from bulkframe.normalize.conform import conform, infer_columns
from bulkframe.normalize.sources import Chunk, Source, open_source

__all__ = ["Chunk", "Source", "conform", "infer_columns", "open_source"]
