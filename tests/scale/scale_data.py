"""Data and checks shared by the distributed-writer tests."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from suite_backends import independent_query


def rows(n: int, start: int = 0, *, tag: str = "v") -> pa.Table:
    """``n`` rows with ids ``start..start+n-1``: decimals, unicode text, tz timestamps, nulls."""
    ids = list(range(start, start + n))
    base = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "amount": pa.array([Decimal(i % 100000) / 100 for i in ids], pa.decimal128(12, 2)),
            "name": pa.array([None if i % 97 == 0 else f"{tag}-{i}-ü" for i in ids], pa.string()),
            "at": pa.array([base + dt.timedelta(seconds=i) for i in ids], pa.timestamp("us", "UTC")),
        }
    )


TABLE_DDL = 'CREATE TABLE "{name}" (id bigint PRIMARY KEY, amount numeric(12,2), name text, at timestamptz)'


def stored(url: str, table: str) -> list[tuple[Any, ...]]:
    return independent_query(url, f'SELECT id, amount, name, at FROM "{table}" ORDER BY id')


def expected(*tables: pa.Table) -> list[tuple[Any, ...]]:
    """What the table must hold after the tables are applied in order (last wins per id)."""
    out: dict[int, tuple[Any, ...]] = {}
    for t in tables:
        for r in t.to_pylist():
            out[r["id"]] = (r["id"], r["amount"], r["name"], r["at"])
    return [out[k] for k in sorted(out)]


def stages_left(url: str, run_id: str) -> list[str]:
    found = independent_query(
        url, "SELECT tablename FROM pg_tables WHERE tablename LIKE %s", (f"_bf_dist_{run_id}%",)
    )
    return [r[0] for r in found]


def split(table: pa.Table, parts: int) -> list[pa.Table]:
    size = -(-table.num_rows // parts)
    return [table.slice(i * size, size) for i in range(parts)]


def need(module: str) -> Any:
    if os.environ.get("BULKFRAME_REQUIRE_SCALE") == "1":
        import importlib

        return importlib.import_module(module)  # CI: a missing engine fails, never skips
    return pytest.importorskip(module)
