"""Dask writer: ``to_database(ddf, url, table, ...)``.

Needs ``pip install 'bulkframe[dask]'``.  Importing this module imports Dask;
``import bulkframe`` does not.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bulkframe.distributed.commit import abort_run, commit_run, start_run
from bulkframe.distributed.spec import Operation, RunSpec, plan_run
from bulkframe.distributed.task import PartReport, stage_part
from bulkframe.errors import MissingDependencyError

try:
    from dask.base import compute
    from dask.delayed import delayed
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "bulkframe.dask needs Dask. Install with: pip install 'bulkframe[dask]'"
    ) from exc

if TYPE_CHECKING:
    from bulkframe.result import BulkResult

__all__ = ["to_database"]


def to_database(
    ddf: Any, url: str, table: str, *, operation: Operation = "create", **options: Any
) -> BulkResult:
    """Write a Dask DataFrame into one table, all or nothing.

    Each partition is staged by its own task (bulkframe's pipeline: types, rules, bulk
    ingest into a staging table named by the run and the partition); then the calling
    process applies every stage to the target in one transaction and drops them.  A
    failure drops every stage; a retried task (a worker that died) replaces its own stage.
    Runs on whatever scheduler is active (a ``distributed.Client`` when one exists).

    Parameters
    ----------
    ddf : dask.dataframe.DataFrame
        The data; partition ``i``'s rows are numbered after those of partitions ``0..i-1``
        (so ``result.errors["row"]`` are positions in the whole frame).
    url : str
        Database URL, as for :func:`bulkframe.connect` (every worker must reach it).
    table : str
        Target table (``create`` makes it from the data when missing; ``upsert`` needs it).
    operation : {"create", "upsert"}
        ``bulk_create`` or ``bulk_upsert`` semantics.
    **options
        As for :class:`bulkframe.ray.BulkDatasink`.

    Returns
    -------
    BulkResult
        One result for the whole frame: exact counts, rejected rows with their positions.

    Raises
    ------
    OptionError
        An unknown option (the message lists the supported ones).
    NotSupportedError
        A library option the distributed writer cannot honour (named).
    InvalidOptionValueError
        An option value outside its allowed set.
    ValidationError
        Rows were rejected under ``error_strategy="stop"``; nothing was written.
    SchemaError
        The data does not fit the table, or the table is missing for ``upsert``.

    Examples
    --------
    >>> import dask.dataframe as dd                          # doctest: +SKIP
    >>> from bulkframe.dask import to_database               # doctest: +SKIP
    >>> ddf = dd.read_parquet("events/")                     # doctest: +SKIP
    >>> to_database(ddf, "postgresql://localhost/db", "events").inserted  # doctest: +SKIP
    """
    spec = plan_run(url, table, operation, options, where="to_database")
    started = time.perf_counter()
    spec = start_run(spec)
    task_spec = spec.for_tasks()
    stage = delayed(_stage_partition, pure=False)
    tasks = [stage(task_spec, i, part) for i, part in enumerate(ddf.to_delayed())]
    try:
        reports = compute(*tasks)  # type: ignore[no-untyped-call,unused-ignore]
    except BaseException:
        abort_run(spec)
        raise
    return commit_run(spec, list(reports), started)


def _stage_partition(spec: RunSpec, part: int, frame: Any) -> PartReport:
    import pyarrow as pa

    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    return stage_part(spec, part, table)
