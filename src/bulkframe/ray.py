"""Ray Data writer: ``ds.write_datasink(BulkDatasink(url, table, ...))``.

Needs ``pip install 'bulkframe[ray]'``.  Importing this module imports Ray;
``import bulkframe`` does not.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bulkframe.distributed.commit import abort_run, commit_run, start_run
from bulkframe.distributed.spec import Operation, plan_run
from bulkframe.distributed.task import PartReport, stage_part
from bulkframe.errors import MissingDependencyError

try:
    from ray.data import Datasink
    from ray.data.block import BlockAccessor
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "bulkframe.ray needs Ray Data. Install with: pip install 'bulkframe[ray]'"
    ) from exc

if TYPE_CHECKING:
    import pyarrow as pa

    from bulkframe.result import BulkResult

__all__ = ["BulkDatasink"]


class BulkDatasink(Datasink[PartReport]):  # type: ignore[misc,unused-ignore]
    """A Ray Data ``Datasink`` that writes a dataset into one table, all or nothing.

    Each write task runs bulkframe's pipeline (types, rules, bulk ingest) into its own
    staging table; when every task has finished, the driver applies all stages to the
    target in one transaction (``on_write_complete``) and drops them.  A failed write
    (``on_write_failed``) drops every stage of the run; a retried task replaces its own
    stage, so nothing is written twice.

    Parameters
    ----------
    url : str
        Database URL, as for :func:`bulkframe.connect` (every worker must reach it).
    table : str
        Target table.  ``create`` makes it from the data when missing (column types as
        ``bulk_create`` infers them; every block must agree); ``upsert`` needs it.
    operation : {"create", "upsert"}
        ``bulk_create`` or ``bulk_upsert`` semantics.
    **options
        The options of ``Database.bulk_create`` / ``Database.bulk_upsert`` that apply
        per row (``batch_size``, ``validation_rules``, ``transformation_rules``,
        ``validate_data``, ``skip_validation``, ``error_strategy``, ``max_errors``,
        ``max_retries``, ``retry_delay``, ``retry_backoff``, ``error_log_level``,
        ``failed_records_file``, ``failed_records_callback``) and to the commit
        (``conflict_resolution``, ``conflict_fields``, ``primary_key``, ``schema``;
        upsert: ``unique_fields``, ``update_fields``, ``insert_fields``,
        ``upsert_conditions``, ``dedupe`` ``"last"``/``"error"``,
        ``create_unique_index``), plus ``resumable`` with ``run_id`` (each block
        commits on its own, recorded in the ledger; a rerun with the same ``run_id``
        skips the blocks that committed) and ``auto_cleanup``.

    Attributes
    ----------
    result : BulkResult or None
        The merged result once ``write_datasink`` returned (``errors["row"]`` are
        positions in the dataset: rows are counted in the order Ray hands blocks to
        write tasks, which is the dataset's order with
        ``DataContext.get_current().execution_options.preserve_order = True``).

    Raises
    ------
    OptionError
        An unknown option (the message lists the supported ones).
    NotSupportedError
        A library option the distributed writer cannot honour (named).
    InvalidOptionValueError
        An option value outside its allowed set.

    Examples
    --------
    >>> import ray                                          # doctest: +SKIP
    >>> from bulkframe.ray import BulkDatasink              # doctest: +SKIP
    >>> sink = BulkDatasink("postgresql://localhost/db", "events")  # doctest: +SKIP
    >>> ray.data.read_parquet("s3://bucket/events/").write_datasink(sink)  # doctest: +SKIP
    >>> sink.result.inserted                                # doctest: +SKIP
    """

    def __init__(self, url: str, table: str, operation: Operation = "create", **options: Any):
        self._spec = plan_run(url, table, operation, options, where="BulkDatasink")
        self._started = 0.0
        self.result: BulkResult | None = None

    def __getstate__(self) -> dict[str, Any]:
        # what the write tasks receive: no driver-only callback, no result
        return {"_spec": self._spec.for_tasks(), "_started": self._started, "result": None}

    def on_write_start(self, schema: pa.Schema | None = None) -> None:
        """Check the target and prepare the run (driver, before the first task)."""
        self._started = time.perf_counter()
        self._spec = start_run(self._spec)

    def write(self, blocks: Iterable[Any], ctx: Any) -> PartReport:
        """Stage this task's blocks (runs in a Ray worker)."""
        import pyarrow as pa

        tables = [BlockAccessor.for_block(b).to_arrow() for b in blocks]
        tables = [t for t in tables if t.num_columns]
        table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
        return stage_part(self._spec, int(ctx.task_idx), table)

    def on_write_complete(self, write_result: Any) -> None:
        """Apply every stage to the target in one transaction (driver)."""
        reports = [r for r in write_result.write_returns if r is not None]
        self.result = commit_run(self._spec, reports, self._started)

    def on_write_failed(self, error: Exception) -> None:
        """Drop every staging table of the run (driver)."""
        abort_run(self._spec)
