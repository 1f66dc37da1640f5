"""The benchmark page's promises: every committed result file says how it was made, and
the page prints the command, machine and date beside each plot (the drawing itself is
exercised by ``mkdocs build --strict`` in CI)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = sorted((ROOT / "benchmarks" / "results").glob("*.json"))


def _plot_module() -> Any:
    spec = importlib.util.spec_from_file_location("plot_benchmarks", ROOT / "scripts" / "plot_benchmarks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_committed_results_cover_create_and_modify() -> None:
    assert {"bench_create", "bench_modify"} <= {p.stem for p in RESULTS}


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.stem)
def test_each_result_file_records_command_machine_and_date(path: Path) -> None:
    run = json.loads(path.read_text())
    assert run["benchmark"] == path.stem
    assert run["command"].startswith(f"python benchmarks/{path.stem}.py")
    assert run["machine"]["cpus"] >= 1 and run["machine"]["processor"]
    assert run["date"].endswith("Z") and run["date"][:2] == "20"


def test_the_page_prints_command_machine_and_date_beside_each_plot(tmp_path: Path) -> None:
    plot = _plot_module()
    runs = {}
    for name, command, date in (
        ("bench_create", "python benchmarks/bench_create.py --rows 5 | <b>", "2030-01-02T03:04:05Z"),
        ("bench_modify", "python benchmarks/bench_modify.py --rows 7", "2030-02-03T04:05:06Z"),
    ):
        runs[name] = {
            "benchmark": name,
            "command": command,
            "date": date,
            "_file": f"benchmarks/results/{name}.json",
            "machine": {"processor": f"CPU of {name}", "cpus": 2, "memory_gib": 8.0, "load_average_1m": 0.5},
        }
    plots = [
        plot.Plot("a.png", "Create", b"", [runs["bench_create"]], "a note"),
        plot.Plot("b.png", "Both", b"", [runs["bench_create"], runs["bench_modify"]]),
    ]
    page = plot.markdown(plots, plot.Results(runs), image_prefix="img")
    first, second = page.split("![](img/b.png)")
    assert "![](img/a.png)" in first
    assert "<code>python benchmarks/bench_create.py --rows 5 &#124; &lt;b&gt;</code>" in first
    assert "CPU of bench_create, 2 CPUs, 8.0 GiB, load average 0.5 at the end of the run" in first
    assert "2030-01-02T03:04:05Z" in first and "bench_modify" not in first
    assert "python benchmarks/bench_modify.py --rows 7" in second and "2030-02-03T04:05:06Z" in second
    assert "CPU of bench_create" in second  # a plot drawn from two runs names both
