"""Plots of the benchmark results for the docs site.

Reads ``benchmarks/results/*.json`` (written by ``benchmarks/bench_*.py``, committed) and
draws: rows/s per contender (create, and update/upsert/delete), bulkframe's ratios
against the hand-written floors with their targets, and memory per contender.  Each plot
is printed with the command, the machine and the date of the run(s) it shows, taken from
the JSON files themselves.

    python scripts/plot_benchmarks.py [--results benchmarks/results] [--out build/benchmark-plots]

writes the PNGs and ``benchmarks.md`` (the page section) to ``--out``.  The docs build
calls :func:`render` through ``scripts/docs_hooks.py``, so the site always shows the
committed JSON files, never a stale picture.
"""

from __future__ import annotations

import argparse
import html
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
IMAGE_DIR = "img/benchmarks"

BULKFRAME = "#1f6fb4"
FLOOR = "#444444"
OTHER = "#b0b0b0"


@dataclass
class Plot:
    """One picture and what it was made from."""

    name: str
    title: str
    png: bytes
    sources: list[dict[str, Any]]
    note: str = ""
    alt: str = ""


@dataclass
class Results:
    """The result files found, by benchmark name (``bench_create`` …)."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path = RESULTS) -> Results:
        runs = {}
        for path in sorted(directory.glob("*.json")):
            payload = json.loads(path.read_text())
            payload.setdefault("benchmark", path.stem)
            payload["_file"] = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
            runs[path.stem] = payload
        return cls(runs)


def _figure(height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, height), dpi=110)
    ax.grid(axis="x", color="#e5e5e5")
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _color(key: str) -> str:
    if key.startswith("bf-") or key == "bulkframe":
        return BULKFRAME
    if key in ("raw-adbc", "pylist-adbc", "floor"):
        return FLOOR
    return OTHER


def _thousands(value: float, _pos: int = 0) -> str:
    return f"{value:,.0f}"


def create_rows_per_second(run: dict[str, Any]) -> Plot:
    ok = [r for r in run["results"] if "error" not in r]
    failed = [r for r in run["results"] if "error" in r]
    fig, ax = _figure(0.45 * len(ok) + 1.2)
    labels = [r["name"] + (" *" if r.get("capped") else "") for r in ok]
    values = [r["rows_per_second"] for r in ok]
    bars = ax.barh(labels, values, color=[_color(r["key"]) for r in ok])
    ax.invert_yaxis()
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=3, fontsize=8)
    ax.set_xlim(0, max(values) * 1.15)
    ax.xaxis.set_major_formatter(_thousands)
    ax.set_xlabel("rows/s (higher is better)")
    ax.set_title(f"bulk create, {run['rows']:,} rows into PostgreSQL: rows/s per contender", fontsize=10)
    notes = ["blue: bulkframe; dark grey: the raw-driver floors; light grey: alternatives."]
    if any(r.get("capped") for r in ok):
        notes.append("* ran on fewer rows (capped); rows/s stays comparable.")
    notes += [f"{r['name']}: failed — {str(r['error']).splitlines()[0]}" for r in failed]
    return Plot(
        "create-rows-per-second.png",
        "Bulk create: rows/s per contender",
        _png(fig),
        [run],
        " ".join(notes),
        "bar chart of rows per second per contender",
    )


def create_memory(run: dict[str, Any]) -> Plot:
    ok = [r for r in run["results"] if "error" not in r and r.get("peak_rss_mb") is not None]
    fig, ax = _figure(0.45 * len(ok) + 1.2)
    labels = [r["name"] for r in ok]
    before = [r["peak_rss_mb"] - r["load_rss_mb"] for r in ok]
    added = [r["load_rss_mb"] for r in ok]
    ax.barh(labels, before, color="#d9d9d9", label="before the load (input in memory)")
    bars = ax.barh(
        labels, added, left=before, color=[_color(r["key"]) for r in ok], label="added by the load"
    )
    ax.bar_label(bars, labels=[f"+{a:,.0f} MiB" for a in added], padding=3, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("peak RSS, MiB (lower is better)")
    ax.set_title(f"bulk create, {run['rows']:,} rows: peak memory per contender", fontsize=10)
    ax.set_xlim(0, max(b + a for b, a in zip(before, added, strict=True)) * 1.18)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=8, frameon=False)
    return Plot(
        "create-memory.png",
        "Bulk create: memory per contender",
        _png(fig),
        [run],
        "Each contender runs in a fresh process; the bar is its peak RSS, the coloured part what "
        "the load added on top of the prepared input.",
        "bar chart of peak memory per contender",
    )


def ratios(runs: dict[str, dict[str, Any]]) -> Plot | None:
    """bulkframe rows/s ÷ the floor's rows/s, with each target."""
    rows: list[tuple[str, float, float]] = []
    sources = []
    create = runs.get("bench_create")
    if create:
        by_key = {r["key"]: r for r in create["results"] if "error" not in r}
        for subject, floor, target in (
            ("bf-arrow", "raw-adbc", 0.9),
            ("bf-polars", "raw-adbc", 0.9),
            ("bf-dicts", "pylist-adbc", 0.75),
        ):
            if subject in by_key and floor in by_key:
                rows.append(
                    (
                        f"create: {by_key[subject]['name']}\nvs {by_key[floor]['name']}",
                        by_key[subject]["rows_per_second"] / by_key[floor]["rows_per_second"],
                        target,
                    )
                )
        sources.append(create)
    modify = runs.get("bench_modify")
    if modify:
        for r in modify["results"]:
            if r["contender"] == "bulkframe":
                rows.append((f"{r['scenario']}: bulkframe\nvs hand-written floor", r["vs_floor"], 0.9))
        sources.append(modify)
    if not rows:
        return None
    fig, ax = _figure(0.55 * len(rows) + 1.2)
    labels = [r[0] for r in rows]
    values = [r[1] for r in rows]
    ax.barh(labels, values, color=[BULKFRAME if v >= t else "#c0504d" for _, v, t in rows])
    for i, (_, value, target) in enumerate(rows):
        ax.plot([target, target], [i - 0.4, i + 0.4], color="black", linewidth=2)
        ax.text(max(value, target) + 0.015, i, f"{value:.2f}x", va="center", fontsize=8)
    ax.set_xlim(0, max(max(values), 1.0) * 1.12)
    ax.axvline(1.0, color="#888888", linestyle=":", linewidth=1)
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel("bulkframe rows/s ÷ floor rows/s (1.0 = as fast as the floor)")
    ax.set_title("bulkframe against the raw-driver floors (black tick: target)", fontsize=10)
    return Plot(
        "ratios-vs-floors.png",
        "Ratios against the floors",
        _png(fig),
        sources,
        "Blue: at or above its target; red: below it. The floors are the same work written by "
        "hand on the raw driver (ADBC COPY into a stage and one statement), without bulkframe's "
        "checks and counts.",
        "bar chart of bulkframe's speed relative to the floors",
    )


def modify_rows_per_second(run: dict[str, Any]) -> Plot:
    import numpy as np

    scenarios = list(dict.fromkeys(r["scenario"] for r in run["results"]))
    contenders = list(dict.fromkeys(r["contender"] for r in run["results"]))
    value = {(r["scenario"], r["contender"]): r for r in run["results"]}
    fig, ax = _figure(0.9 * len(scenarios) + 1.4)
    height = 0.8 / len(contenders)
    y = np.arange(len(scenarios))
    colors = {"bulkframe": BULKFRAME, "floor": FLOOR}
    for i, who in enumerate(contenders):
        vals = [value[(s, who)]["rows_per_second"] if (s, who) in value else 0 for s in scenarios]
        capped = any(value[(s, who)].get("capped_rows") for s in scenarios if (s, who) in value)
        label = {"floor": "hand-written floor", "executemany": "psycopg executemany"}.get(who, who)
        bars = ax.barh(
            y + i * height, vals, height, label=label + (" *" if capped else ""), color=colors.get(who, OTHER)
        )
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in vals], padding=3, fontsize=7)
    ax.set_yticks(y + height * (len(contenders) - 1) / 2, scenarios)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(_thousands)
    ax.set_xlabel("rows/s (higher is better)")
    ax.set_title(f"update / upsert / delete, {run['rows']:,} rows in PostgreSQL: rows/s", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8, frameon=False)
    note = ""
    if run.get("executemany_rows", run["rows"]) < run["rows"]:
        note = (
            f"* psycopg executemany ran {run['executemany_rows']:,} rows; its time is scaled linearly to "
            f"{run['rows']:,}."
        )
    return Plot(
        "modify-rows-per-second.png",
        "Update, upsert and delete: rows/s per contender",
        _png(fig),
        [run],
        note,
        "bar chart of rows per second per scenario and contender",
    )


def render(directory: Path = RESULTS) -> tuple[list[Plot], Results]:
    """Every plot the result files allow, in page order."""
    results = Results.load(directory)
    plots: list[Plot] = []
    if "bench_create" in results.runs:
        plots.append(create_rows_per_second(results.runs["bench_create"]))
    if "bench_modify" in results.runs:
        plots.append(modify_rows_per_second(results.runs["bench_modify"]))
    ratio = ratios(results.runs)
    if ratio is not None:
        plots.append(ratio)
    if "bench_create" in results.runs:
        plots.append(create_memory(results.runs["bench_create"]))
    return plots, results


def _machine(run: dict[str, Any]) -> str:
    m = run.get("machine") or {}
    parts = [str(m.get("processor", "?")), f"{m.get('cpus', '?')} CPUs"]
    if m.get("memory_gib"):
        parts.append(f"{m['memory_gib']} GiB")
    if m.get("load_average_1m") is not None:
        parts.append(f"load average {m['load_average_1m']} at the end of the run")
    env = run.get("environment") or {}
    if env.get("postgres"):
        parts.append(f"PostgreSQL {env['postgres'].split(' ')[0]}")
    if env.get("python"):
        parts.append(f"Python {env['python']}")
    return ", ".join(parts)


def provenance(run: dict[str, Any]) -> str:
    """The command, machine and date of one run, as a Markdown table."""
    rows = [
        ("command", f"<code>{html.escape(str(run.get('command', '(not recorded)')))}</code>"),
        ("machine", html.escape(_machine(run))),
        ("date", html.escape(str(run.get("date") or run.get("created_at") or "(not recorded)"))),
        ("file", f"<code>{html.escape(run['_file'])}</code>"),
    ]
    return "\n".join(["| run | |", "|---|---|", *(f"| {k} | {v.replace('|', '&#124;')} |" for k, v in rows)])


def markdown(plots: list[Plot], results: Results, image_prefix: str = IMAGE_DIR) -> str:
    """The page section: each plot with its note and the run(s) it shows."""
    out: list[str] = []
    for plot in plots:
        out += [f"## {plot.title}", "", f"![{plot.alt}]({image_prefix}/{plot.name})", ""]
        if plot.note:
            out += [html.escape(plot.note, quote=False), ""]
        for run in plot.sources:
            out += [provenance(run), ""]
    other = [name for name in results.runs if name not in ("bench_create", "bench_modify")]
    if other:
        out += ["## Other results", ""]
        for name in other:
            out += [f"### `{name}`", "", summary(results.runs[name]), "", provenance(results.runs[name]), ""]
    return "\n".join(out)


def summary(run: dict[str, Any]) -> str:
    """One line for the benchmarks that print a single verdict."""
    name = run.get("benchmark")
    if name == "bench_rules":
        return (
            f"The rules stage (6 validation rules + 2 transformations) added "
            f"{run['added'] * 100:.1f}% to the create time (target: under 15%)."
        )
    if name == "bench_parallel":
        return (
            f"Best parallel configuration: {run['best_ratio']:.2f}x bulkframe's serial load "
            "(target: at least 1.2x)."
        )
    if name == "bench_nodes":
        return (
            f"The node layer (WorkflowBuilder + LocalRuntime) against the library call: "
            f"{run['overhead_percent']:+.2f}% (difference of medians; target: under 5%)."
        )
    if name == "bench_scale":
        return (
            "Distributed writers (Ray Data, Dask): "
            + "; ".join(f"{label} {value:.2f}x" for label, value in run["ratios"].items())
            + " (targets: ≥ 10x the built-in writers, ≥ 0.9x the single process at equal cores; see scale-out.md)."
        )
    return "See the JSON file for the numbers."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "benchmark-plots")
    args = parser.parse_args(argv)
    plots, results = render(args.results)
    if not plots:
        print(f"no benchmark results in {args.results}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for plot in plots:
        (args.out / plot.name).write_bytes(plot.png)
    (args.out / "benchmarks.md").write_text(markdown(plots, results, image_prefix="."))
    print(f"{len(plots)} plots written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
