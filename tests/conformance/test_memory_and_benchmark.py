"""``memory_limit`` / ``streaming`` / ``spill_to_disk`` / ``compression`` / ``gc_interval``
(docs/memory.md) and benchmark mode (docs/benchmark-mode.md), on every backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import bulkframe as bf
from bulkframe.errors import InvalidOptionValueError


def _rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"name {i}", "price": i / 4} for i in range(start, start + n)]


def test_benchmark_mode_leaves_exactly_the_input(
    db: bf.Database, table: str, peek: Any, tmp_path: Path
) -> None:
    report = tmp_path / "perf.json"
    result = db.bulk_create(
        table,
        _rows(3000),
        primary_key="id",
        batch_size=1000,
        benchmark_mode=True,
        benchmark_iterations=3,
        benchmark_warmup=500,
        performance_report=True,
        report_file=str(report),
    )
    assert result.success_count == 3000
    assert peek(f'SELECT count(*), min(id), max(id) FROM "{table}"') == [(3000, 0, 2999)]
    bench = result.metrics["benchmark"]
    assert bench["iterations"] == 3 and len(bench["runs"]) == 3 and bench["warmup_rows"] == 500
    assert all(run["rows"] == 3000 for run in bench["runs"])
    rates = bench["rows_per_second"]
    assert 0 < rates["min"] <= rates["median"] <= rates["max"]
    assert set(bench["stage_seconds"]) == {"normalize", "rules", "send", "server"}
    assert all(run["stages"]["send"] + run["stages"]["server"] > 0 for run in bench["runs"])
    written = json.loads(report.read_text())
    assert written["benchmark"]["rows_per_second"] == rates and written["success_count"] == 3000


def test_benchmark_mode_on_an_existing_table_and_with_conflicts(
    db: bf.Database, table: str, peek: Any
) -> None:
    db.bulk_create(table, _rows(10), primary_key="id")
    result = db.bulk_create(
        table, _rows(100, start=5), conflict_resolution="skip", benchmark_mode=True, benchmark_warmup=0
    )
    assert (result.inserted, result.skipped) == (95, 5)
    assert peek(f'SELECT count(*) FROM "{table}"') == [(105,)]


def test_benchmark_mode_refuses_one_shot_inputs(db: bf.Database, table: str, stored: Any) -> None:
    with pytest.raises(InvalidOptionValueError, match="benchmark_mode reads the input once per run"):
        db.bulk_create(table, iter(_rows(10)), benchmark_mode=True)
    with pytest.raises(InvalidOptionValueError, match="benchmark_iterations must be a positive int"):
        db.bulk_create(table, _rows(10), benchmark_mode=True, benchmark_iterations=0)
    assert stored(table) is None


def test_memory_limit_sizes_batches_and_loads_everything(db: bf.Database, table: str, peek: Any) -> None:
    frame = pl.DataFrame(_rows(60_000))
    result = db.bulk_create(
        table, frame, primary_key="id", batch_size=1_000_000, memory_limit="2GB", gc_interval=2
    )
    memory = result.metrics["memory"]
    assert memory["limit_bytes"] == 2 * 1024**3 and memory["bytes_per_row"] > 0
    assert result.success_count == 60_000 == peek(f'SELECT count(*) FROM "{table}"')[0][0]
    # a limit too small for the data already held refuses before writing
    with pytest.raises(InvalidOptionValueError, match="leaves no room for data"):
        db.bulk_create(table, frame, memory_limit="1MB")


def test_memory_limit_shrinks_batches_to_the_budget(db: bf.Database, table: str, peek: Any) -> None:
    """The budget is the limit less what the process holds now: a limit just above the
    current resident size leaves room for small batches only."""
    from bulkframe.plan.memory import resident_bytes

    frame = pl.DataFrame(_rows(200_000))
    limit = int((resident_bytes() + 24 * 1024**2) / 0.9)
    result = db.bulk_create(table, frame, primary_key="id", batch_size=1_000_000, memory_limit=limit)
    assert result.metrics["memory"]["rows_per_batch"] < 1_000_000 and result.batches > 1
    assert peek(f'SELECT count(*), sum(id) FROM "{table}"') == [(200_000, sum(range(200_000)))]


def test_streaming_list_input_converts_batch_by_batch(db: bf.Database, table: str, peek: Any) -> None:
    rows = [*_rows(5), {"id": 5, "name": "n", "price": 10**20}]  # the last row widens price
    result = db.bulk_create(table, rows, primary_key="id", batch_size=2, streaming=True)
    assert result.success_count == 6
    assert peek(f'SELECT id FROM "{table}" WHERE price > 1e19') == [(5,)]


def test_spill_to_disk_and_compression_of_rejected_rows(db: bf.Database, table: str, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from bulkframe.plan import rejections

    rows = [{"id": i, "price": -1.0 if i % 2 else 1.0} for i in range(4000)]
    failed = tmp_path / "failed.parquet"
    spills: list[Any] = []
    original = rejections.Rejections.__init__

    def spying(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.spill_bytes = 1  # every rejected batch goes to disk
        spills.append(self.spill)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rejections.Rejections, "__init__", spying)
        result = db.bulk_create(
            table,
            rows,
            primary_key="id",
            batch_size=500,
            error_strategy="continue",
            validation_rules={"price": {"min": 0}},
            spill_to_disk=True,
            compression="lz4",
            failed_records_file=str(failed),
        )
    assert result.failure_count == 2000 and result.errors is not None
    assert result.errors["row"].to_list() == list(range(1, 4000, 2))
    spill = next(s for s in spills if s is not None)  # the report the load used
    assert spill.codec == "lz4" and not spill.dir.exists()  # always removed
    assert pq.ParquetFile(failed).metadata.row_group(0).column(0).compression == "LZ4"
    assert pq.read_table(failed).num_rows == 2000


def test_memory_option_values_are_checked() -> None:
    from bulkframe.options import MemoryOptions, parse_size

    assert parse_size("512MB") == 512 * 1024**2 and parse_size("1.5GiB") == int(1.5 * 1024**3)
    assert MemoryOptions(compression=True).codec == "zstd"
    with pytest.raises(InvalidOptionValueError, match="memory_limit='lots' is not a size"):
        MemoryOptions(memory_limit="lots")
    with pytest.raises(
        InvalidOptionValueError, match="compression='gzip' is not valid; choose one of: 'zstd', 'lz4'"
    ):
        MemoryOptions(compression="gzip")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionValueError, match="gc_interval must be a positive int"):
        MemoryOptions(gc_interval=0)


def test_upsert_dedupe_across_batches_spills_its_keys(
    db: bf.Database, table: str, peek: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``dedupe="first"`` remembers every key of earlier batches; with ``spill_to_disk``
    they go to compressed IPC files (here after every batch) and are joined from there."""
    from bulkframe.errors import SchemaError
    from bulkframe.plan import spill as spill_module

    monkeypatch.setattr(spill_module, "SPILL_BYTES", 1)
    made: list[Any] = []
    original = spill_module.Spill.__init__

    def spying(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(spill_module.Spill, "__init__", spying)
    db.bulk_create(table, [{"id": 0, "name": "seed"}], primary_key="id")
    rows = [{"id": i % 50, "name": f"v{i}"} for i in range(200)]  # every key 4 times, in 8 batches
    result = db.bulk_upsert(table, rows, batch_size=25, dedupe="first", spill_to_disk=True, compression=True)
    assert peek(f'SELECT id, name FROM "{table}" ORDER BY id') == [(i, f"v{i}") for i in range(50)]
    assert (result.inserted, result.updated, result.skipped, result.deduplicated) == (49, 1, 150, 150)
    keys = [s for s in made if s.dir.name.startswith("bulkframe-keys-")]
    assert len(keys) == 1 and keys[0].bytes > 0 and keys[0].codec == "zstd"
    assert not keys[0].dir.exists()  # removed at the end
    with pytest.raises(SchemaError, match="across batches"):
        db.bulk_upsert(table, rows, batch_size=25, dedupe="error", spill_to_disk=True)
    assert not any(s.dir.exists() for s in made)
