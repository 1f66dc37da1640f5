"""Cost of the rules stage: 1,000,000 product rows into PostgreSQL with six validation
rules and two transformations, against the same bulk create without rules, same run.

    python benchmarks/bench_rules.py [--rows 1000000] [--repeat 3] [--url URL]

Goal (issue 3): the rules stage adds under 15% to the create time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

common.ensure_src_on_path()

RULES = {
    "price": {"min": 0.01, "max": 100_000},
    "stock": {"min": 0},
    "category": {"in": list(common.CATEGORIES)},
    "name": {"max_length": 200},
    "created_at": {"required": True},
}  # six rules: price.min, price.max, stock.min, category.in, name.max_length, created_at.required
TRANSFORMS = {"category": "category.lower()", "name": "name.strip()"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--url", default=None)
    args = parser.parse_args()
    url = common.postgres_url(args.url)

    import bulkframe as bf

    data = common.product_polars(args.rows)
    table = "bench_rules"
    configs = {
        "bulk_create, no rules": {},
        "bulk_create, 6 rules + 2 transformations": {
            "validation_rules": RULES,
            "transformation_rules": TRANSFORMS,
        },
    }
    times: dict[str, list[float]] = {name: [] for name in configs}
    with bf.connect(url) as db:
        for _ in range(args.repeat):
            for name, options in configs.items():  # alternate, so drift hits both alike
                common.recreate_table(url, table, common.product_ddl(table))
                common.checkpoint(url)
                result = db.bulk_create(table, data, batch_size=args.batch_size, **options)
                assert result.success_count == args.rows, result
                assert common.count_rows(url, table) == args.rows
                times[name].append(result.duration_seconds)
    common.drop_table(url, table)
    stage = _stage_only(data, args.batch_size, args.repeat)
    base = statistics.median(times["bulk_create, no rules"])
    rows = []
    for name, ts in times.items():
        med = statistics.median(ts)
        rows.append(
            [
                name,
                common.fmt_float(med, 3),
                common.fmt_int(args.rows / med),
                common.fmt_float((med / base - 1) * 100, 1, "%"),
            ]
        )
    print(f"{args.rows:,} rows, median of {args.repeat}, PostgreSQL {common.server_version(url)}")
    print(common.format_table(["configuration", "seconds", "rows/s", "added time"], rows))
    print(
        f"\nrules stage alone (cast + rules, no database), median of {args.repeat}: "
        f"without rules {stage['plain']:.3f} s, with rules {stage['rules']:.3f} s "
        f"= {(stage['rules'] - stage['plain']) / base * 100:.1f}% of the plain load "
        "(the end-to-end difference above is dominated by the server's run-to-run noise)"
    )
    added = statistics.median(times["bulk_create, 6 rules + 2 transformations"]) / base - 1
    print(f"\ntarget: rules stage adds < 15%  →  {'PASS' if added < 0.15 else 'FAIL'} ({added * 100:.1f}%)")
    common.write_results(
        "bench_rules",
        {"rows": args.rows, "times": times, "added": added, "environment": common.environment_info(url)},
    )


def _stage_only(data: object, batch_size: int, repeat: int) -> dict[str, float]:
    """Time the normalize + rules stages in-process, without a database."""
    import time

    from bulkframe.normalize import open_source
    from bulkframe.rules.prepare import Preparer
    from bulkframe.types import Column

    cols = {
        c.name: c
        for c in [
            Column("id", "int64"),
            Column("name", "text"),
            Column("price", "decimal", precision=10, scale=2),
            Column("category", "text"),
            Column("stock", "int32"),
            Column("active", "bool"),
            Column("created_at", "timestamptz"),
            Column("metadata", "json"),
        ]
    }
    chunks = list(open_source(data).chunks(batch_size))
    out: dict[str, float] = {}
    for name, options in (
        ("plain", {}),
        ("rules", {"validation_rules": RULES, "transformation_rules": TRANSFORMS}),
    ):
        runs = []
        for _ in range(repeat):
            prepare = Preparer(cols, table_name="bench", **options)  # type: ignore[arg-type]
            started = time.perf_counter()
            for chunk in chunks:
                prepare(chunk)
            runs.append(time.perf_counter() - started)
        out[name] = statistics.median(runs)
    return out


if __name__ == "__main__":
    main()
