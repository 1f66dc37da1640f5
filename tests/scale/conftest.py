"""Fixtures of the distributed-writer tests: one local Ray instance and one Dask
LocalCluster per session (starting either costs seconds), a fault file the write tasks
consult (``bulkframe.distributed.faults``), and helpers to build and check data.

Ray and Dask are optional extras: without them these tests skip, unless
``BULKFRAME_REQUIRE_SCALE=1`` (CI sets it) turns a missing engine into an error.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scale_data import need

from bulkframe.distributed import faults
from suite_backends import independent_query


@pytest.fixture(scope="session")
def fault_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fault plan every worker reads (set in the environment before engines start)."""
    path = tmp_path_factory.mktemp("faults") / "plan.json"
    os.environ[faults.ENV] = str(path)
    return path


@pytest.fixture
def inject(fault_file: Path, tmp_path: Path) -> Iterator[Any]:
    """``inject(part=1, at="staged", times=1, how="exit")`` arms a fault for this test."""

    def arm(**plan: Any) -> None:
        plan.setdefault("markers", str(tmp_path / "markers"))
        fault_file.write_text(json.dumps(plan))

    yield arm
    fault_file.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def ray_ctx(fault_file: Path) -> Iterator[Any]:
    ray = need("ray")
    need("ray.data")
    env = {faults.ENV: str(fault_file)}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": env},
    )
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.execution_options.preserve_order = True  # row positions follow the dataset's order
    ctx.enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def dask_client(fault_file: Path) -> Iterator[Any]:
    need("dask.dataframe")
    distributed = need("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture
def pg_table(pg_url: str) -> Iterator[str]:
    name = f"bf_scale_{uuid.uuid4().hex[:10]}"
    yield name
    independent_query(pg_url, f'DROP TABLE IF EXISTS "{name}"')
