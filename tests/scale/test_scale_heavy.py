"""1,000,000 rows through each engine's writer, create then upsert, compared value by
value through psycopg (streamed).  Heavy: run with ``pytest -m heavy tests/scale``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from scale_data import TABLE_DDL, rows, split, stages_left

from suite_backends import independent_query

pytestmark = pytest.mark.heavy

N = 1_000_000


@pytest.fixture(params=["ray", "dask"])
def engine(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue("ray_ctx" if request.param == "ray" else "dask_client")
    return str(request.param)


def _write(engine: str, parts: list[pa.Table], url: str, table: str, **options: Any) -> Any:
    """The parts as a Ray dataset / a Dask frame (Dask: each partition is generated again
    by its worker from ``(start, n, tag)``, not shipped in the graph)."""
    if engine == "ray":
        import ray

        from bulkframe.ray import BulkDatasink

        sink = BulkDatasink(url, table, **options)
        ray.data.from_arrow(parts).write_datasink(sink)
        return sink.result
    import cloudpickle
    import dask.dataframe as dd
    import scale_data

    from bulkframe.dask import to_database

    cloudpickle.register_pickle_by_value(scale_data)  # the workers cannot import it
    specs = [
        (p.column("id")[0].as_py(), p.num_rows, p.column("name")[1].as_py().split("-")[0]) for p in parts
    ]
    ddf = dd.from_map(lambda spec: scale_data.rows(spec[1], spec[0], tag=spec[2]).to_pandas(), specs)
    return to_database(ddf, url, table, **options)


def _tag(part: pa.Table) -> str:
    return str(next(n for n in part.column("name").to_pylist() if n)).split("-")[0]


def _stored(url: str, table: str) -> Iterator[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor(name="bf_heavy_read") as cur:
        cur.itersize = 50_000
        cur.execute(f'SELECT id, amount, name, at FROM "{table}" ORDER BY id')
        yield from cur


def _assert_exact(url: str, table: str, want: pa.Table) -> None:
    got = _stored(url, table)
    for start in range(0, want.num_rows, 100_000):
        for r in want.slice(start, 100_000).to_pylist():
            assert next(got) == (r["id"], r["amount"], r["name"], r["at"])
    assert next(got, None) is None


def test_a_million_rows_create_then_upsert(engine: str, pg_url: str, pg_table: str, run_id: str) -> None:
    independent_query(pg_url, TABLE_DDL.format(name=pg_table))
    first = rows(N, tag="a")
    result = _write(engine, split(first, 8), pg_url, pg_table, run_id=run_id)
    assert (result.inserted, result.records_processed) == (N, N)
    _assert_exact(pg_url, pg_table, first)
    second = rows(N, start=N // 2, tag="b")
    result = _write(engine, split(second, 8), pg_url, pg_table, operation="upsert", run_id=run_id + "u")
    assert (result.inserted, result.updated, result.skipped) == (N // 2, N // 2, 0)
    _assert_exact(pg_url, pg_table, pa.concat_tables([first.slice(0, N // 2), second]))
    assert stages_left(pg_url, run_id) == []
