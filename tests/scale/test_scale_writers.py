"""Ray Data and Dask writers against PostgreSQL: exact rows after create and upsert, a
task that dies once mid-write, validation failures under ``stop``, a task that always
fails, resumable runs.  Every check reads back through psycopg, and every test also
checks that no staging table of the run is left."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from scale_data import TABLE_DDL, expected, rows, split, stages_left, stored

import bulkframe as bf
from bulkframe.errors import SchemaError, ValidationError
from bulkframe.result import BulkResult
from suite_backends import independent_query

N = 20_000
Writer = Callable[..., BulkResult]


@pytest.fixture(params=["ray", "dask"])
def write(request: pytest.FixtureRequest) -> Writer:
    """``write(parts, url, table, **options)``: the dataset made of ``parts`` (one block /
    partition each, in order), written by the engine's bulkframe writer."""
    if request.param == "ray":
        request.getfixturevalue("ray_ctx")
        import ray

        from bulkframe.ray import BulkDatasink

        def via_ray(parts: list[pa.Table], url: str, table: str, **options: Any) -> BulkResult:
            sink = BulkDatasink(url, table, **options)
            ray.data.from_arrow(parts).write_datasink(sink)
            assert sink.result is not None
            return sink.result

        return via_ray
    request.getfixturevalue("dask_client")
    import dask.dataframe as dd

    from bulkframe.dask import to_database

    def via_dask(parts: list[pa.Table], url: str, table: str, **options: Any) -> BulkResult:
        ddf = dd.from_map(lambda t: t.to_pandas(), parts)
        return to_database(ddf, url, table, **options)

    return via_dask


def _create_table(url: str, name: str, initial: pa.Table | None = None) -> None:
    independent_query(url, TABLE_DDL.format(name=name))
    if initial is not None:
        with bf.connect(url) as db:
            db.bulk_create(name, initial)


def test_create_into_a_new_table_exact(write: Writer, pg_url: str, pg_table: str, run_id: str) -> None:
    data = rows(N).drop_columns(["amount"])
    result = write(split(data, 4), pg_url, pg_table, primary_key="id", run_id=run_id)
    assert (result.inserted, result.records_processed, result.failure_count) == (N, N, 0)
    got = independent_query(pg_url, f'SELECT id, name, at FROM "{pg_table}" ORDER BY id')
    assert got == [(r["id"], r["name"], r["at"]) for r in data.to_pylist()]
    pk = independent_query(
        pg_url,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
        (pg_table,),
    )
    assert pk == [("id",)]
    assert stages_left(pg_url, run_id) == []


def test_create_into_an_existing_table_exact(write: Writer, pg_url: str, pg_table: str, run_id: str) -> None:
    _create_table(pg_url, pg_table)
    data = rows(N)
    result = write(split(data, 5), pg_url, pg_table, run_id=run_id, batch_size=1000)
    assert result.inserted == N and result.success_count == N
    assert result.batches == 5
    assert stored(pg_url, pg_table) == expected(data)
    assert stages_left(pg_url, run_id) == []


def test_upsert_exact(write: Writer, pg_url: str, pg_table: str, run_id: str) -> None:
    first = rows(N, tag="a")
    _create_table(pg_url, pg_table, first)
    second = rows(N, start=N // 2, tag="b")
    result = write(split(second, 4), pg_url, pg_table, operation="upsert", run_id=run_id)
    assert (result.inserted, result.updated, result.skipped) == (N // 2, N // 2, 0)
    assert stored(pg_url, pg_table) == expected(first, second)
    assert stages_left(pg_url, run_id) == []


def test_upsert_repeated_keys_last_wins(write: Writer, pg_url: str, pg_table: str, run_id: str) -> None:
    """A key twice in one part (deduplicated, last kept) and in two parts (applied in order)."""
    _create_table(pg_url, pg_table)
    a = rows(100, tag="a")
    b = pa.concat_tables([rows(50, tag="b"), rows(10, tag="c")])  # ids 0..9 twice in part 1
    c = rows(5, tag="d")  # ids 0..4 again in part 2
    result = write([a, b, c], pg_url, pg_table, operation="upsert", run_id=run_id)
    assert result.records_processed == 165
    assert result.deduplicated == 10  # within part 1
    assert (result.inserted, result.updated, result.skipped) == (100, 50 + 5, 10)
    assert stored(pg_url, pg_table) == expected(a, b, c)


def test_a_task_that_dies_once_mid_write(
    write: Writer, pg_url: str, pg_table: str, run_id: str, inject: Any, tmp_path: Path
) -> None:
    """The worker of part 1 exits after staging its rows; the engine runs the task again,
    which replaces its stage: nothing doubled, nothing missing, no stage left."""
    _create_table(pg_url, pg_table)
    inject(part=1, at="staged", how="exit", times=1)
    data = rows(N)
    result = write(split(data, 4), pg_url, pg_table, run_id=run_id)
    assert list((tmp_path / "markers").iterdir()), "the fault did not fire"
    assert result.inserted == N
    assert stored(pg_url, pg_table) == expected(data)
    assert stages_left(pg_url, run_id) == []


def test_a_task_that_always_fails_leaves_nothing(
    write: Writer, pg_url: str, pg_table: str, run_id: str, inject: Any
) -> None:
    initial = rows(10, start=10**6)
    _create_table(pg_url, pg_table, initial)
    inject(part=2, at="staged", how="raise", times=0)
    with pytest.raises(Exception, match="injected fault in part 2"):
        write(split(rows(N), 4), pg_url, pg_table, run_id=run_id)
    assert stored(pg_url, pg_table) == expected(initial)
    assert stages_left(pg_url, run_id) == []


def _with_bad_amounts(data: pa.Table, bad: list[int]) -> pa.Table:
    amounts = data.column("amount").to_pylist()
    for i in bad:
        amounts[i] = amounts[i] + 5000
    return data.set_column(1, "amount", pa.array(amounts, data.schema.field("amount").type))


def test_validation_failure_under_stop_leaves_the_target_untouched(
    write: Writer, pg_url: str, pg_table: str, run_id: str
) -> None:
    initial = rows(10, start=10**6)
    _create_table(pg_url, pg_table, initial)
    bad = [5_001, 5_002, 17_999]  # in parts 1 and 3 of 4
    data = _with_bad_amounts(rows(N), bad)
    with pytest.raises(ValidationError, match="3 row") as info:
        write(split(data, 4), pg_url, pg_table, run_id=run_id, validation_rules={"amount": {"max": 1000}})
    assert info.value.errors["row"].to_list() == bad  # positions in the whole dataset
    assert info.value.errors["record"].struct.field("id").to_list() == bad
    assert info.value.result is not None and info.value.result.inserted == 0
    assert stored(pg_url, pg_table) == expected(initial)
    assert stages_left(pg_url, run_id) == []


def test_continue_writes_the_valid_rows_and_reports_global_positions(
    write: Writer, pg_url: str, pg_table: str, run_id: str, tmp_path: Path
) -> None:
    _create_table(pg_url, pg_table)
    bad = [0, 9_999, 10_000, 19_999]
    data = _with_bad_amounts(rows(N), bad)
    report = tmp_path / "rejected.jsonl"
    result = write(
        split(data, 4),
        pg_url,
        pg_table,
        run_id=run_id,
        validation_rules={"amount": {"max": 1000}},
        error_strategy="continue",
        failed_records_file=str(report),
    )
    assert (result.inserted, result.failure_count, result.records_processed) == (N - 4, 4, N)
    assert result.errors["row"].to_list() == bad
    assert len(report.read_text().splitlines()) == 4
    keep = pc.invert(pc.is_in(data.column("id"), pa.array(bad, pa.int64())))
    assert stored(pg_url, pg_table) == expected(data.filter(keep))
    assert stages_left(pg_url, run_id) == []


def test_a_duplicate_key_fails_the_whole_commit(
    write: Writer, pg_url: str, pg_table: str, run_id: str
) -> None:
    """conflict_resolution='error': a key in two parts is refused by the target at commit;
    the transaction rolls back whole."""
    _create_table(pg_url, pg_table)
    with pytest.raises(bf.errors.IntegrityError):
        write([rows(100), rows(10, start=50)], pg_url, pg_table, run_id=run_id)
    assert stored(pg_url, pg_table) == []
    assert stages_left(pg_url, run_id) == []


def test_upsert_needs_the_table(write: Writer, pg_url: str, pg_table: str, run_id: str) -> None:
    with pytest.raises(SchemaError, match="does not exist"):
        write([rows(10)], pg_url, pg_table, operation="upsert", run_id=run_id)
    assert stages_left(pg_url, run_id) == []


def test_resumable_run_resumes_after_the_parts_that_committed(
    write: Writer, pg_url: str, pg_table: str, run_id: str, inject: Any
) -> None:
    """resumable=True: each part commits on its own, recorded in the ledger; part 2 fails
    every time in the first run; the rerun with the same run_id writes only part 2."""
    _create_table(pg_url, pg_table)
    data = rows(N)
    parts = split(data, 4)
    inject(part=2, at="started", how="raise", times=0)
    with pytest.raises(Exception, match="injected fault in part 2"):
        write(parts, pg_url, pg_table, resumable=True, run_id=run_id)
    landed = independent_query(pg_url, f'SELECT count(*) FROM "{pg_table}"')[0][0]
    assert landed == N - parts[2].num_rows  # every other part committed on its own
    inject(part=-1, at="none")
    result = write(parts, pg_url, pg_table, resumable=True, run_id=run_id)
    assert result.metrics.get("resumed_rows", 0) == landed
    assert result.inserted == N - landed
    assert stored(pg_url, pg_table) == expected(data)
    assert stages_left(pg_url, run_id) == []
    ledger = independent_query(pg_url, "SELECT count(*) FROM _bulkframe_ledger WHERE run_key = %s", (run_id,))
    assert ledger == [(0,)]


def test_sqlite_file_shared_by_worker_processes(dask_client: Any, tmp_path: Path, run_id: str) -> None:
    """SQLite: the Dask workers (separate processes) stage into the same file one after
    the other (its write lock), the driver commits; exact rows read back through sqlite3."""
    import sqlite3

    import dask.dataframe as dd

    from bulkframe.dask import to_database

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    data = rows(4_000).drop_columns(["amount", "at"])
    result = to_database(
        dd.from_map(lambda t: t.to_pandas(), split(data, 4)), url, "t", primary_key="id", run_id=run_id
    )
    assert result.inserted == 4_000
    with sqlite3.connect(tmp_path / "shared.db") as conn:
        got = conn.execute("SELECT id, name FROM t ORDER BY id").fetchall()
        left = conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '_bf_dist_%'").fetchall()
    assert got == [(r["id"], r["name"]) for r in data.to_pylist()]
    assert left == []


@pytest.mark.parametrize("mode", ["skip", "update"])
def test_create_with_a_conflict_mode(
    write: Writer, pg_url: str, pg_table: str, run_id: str, mode: str
) -> None:
    """conflict_resolution='skip'/'update': existing keys skipped or updated, counted, as in
    bulk_create; a key repeated inside a part keeps its first (skip) / last (update) row."""
    first = rows(100, tag="a")
    _create_table(pg_url, pg_table, first)
    part0 = rows(100, start=50, tag="b")  # 50 existing, 50 new
    part1 = pa.concat_tables([rows(10, start=200, tag="c"), rows(10, start=200, tag="d")])  # 200..209 twice
    result = write([part0, part1], pg_url, pg_table, conflict_resolution=mode, run_id=run_id)
    assert result.records_processed == 120 and result.deduplicated == 10
    if mode == "skip":
        assert (result.inserted, result.updated, result.skipped) == (60, 0, 60)
        assert stored(pg_url, pg_table) == expected(rows(10, start=200, tag="c"), part0, first)
    else:
        assert (result.inserted, result.updated, result.skipped) == (60, 60, 0)
        assert stored(pg_url, pg_table) == expected(first, part0, part1)
    assert stages_left(pg_url, run_id) == []


def test_a_column_the_table_lacks_is_refused_with_its_own_error(
    write: Writer, pg_url: str, pg_table: str, run_id: str
) -> None:
    """A task's bulkframe error reaches the caller as itself (not wrapped by the engine),
    after every other task finished; nothing is written, no stage is left."""
    _create_table(pg_url, pg_table)
    bad = rows(10, start=100).append_column("colour", pa.array(["red"] * 10))
    with pytest.raises(SchemaError, match=r"\['colour'\] are not in table"):
        write([rows(100), bad, rows(10, start=200)], pg_url, pg_table, run_id=run_id)
    assert stored(pg_url, pg_table) == []
    assert stages_left(pg_url, run_id) == []


def test_a_task_that_runs_after_its_table_was_dropped_stages_nothing(
    pg_url: str, pg_table: str, run_id: str
) -> None:
    """A task an engine runs late (after a failed run's clean-up and the table's removal)
    must not infer a stage of its own: it reports the missing table and creates nothing."""
    from dataclasses import replace

    from bulkframe.distributed.spec import plan_run
    from bulkframe.distributed.task import stage_part

    spec = replace(plan_run(pg_url, pg_table, "create", {"run_id": run_id}, where="test"), target_exists=True)
    report = stage_part(spec, 1, rows(10))
    assert isinstance(report.failure, SchemaError) and "any more" in str(report.failure)
    assert stages_left(pg_url, run_id) == []


def test_upsert_on_columns_without_a_unique_index_is_refused(
    write: Writer, pg_url: str, pg_table: str, run_id: str
) -> None:
    _create_table(pg_url, pg_table, rows(10))
    with pytest.raises(SchemaError, match="the distributed upsert needs one"):
        write(
            [rows(10, tag="z")], pg_url, pg_table, operation="upsert", unique_fields=["name"], run_id=run_id
        )
    assert stored(pg_url, pg_table) == expected(rows(10))
    assert stages_left(pg_url, run_id) == []
