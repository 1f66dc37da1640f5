"""Stage 3 of the pipeline: batching, transaction policy, retries and the report of
rejected rows.  Owns no SQL: operations hand it a ``write`` function."""

from bulkframe.plan.policy import ErrorPolicy
from bulkframe.plan.rejections import Rejections

__all__ = ["ErrorPolicy", "Rejections"]
