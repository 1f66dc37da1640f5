"""Every code example of the spec, run as written (only its imports changed; the data it
leaves as ``...`` supplied here), on SQLite and PostgreSQL.

Each block runs statement by statement.  An ``add_node`` whose parameters are all built
must be accepted, and after the block the workflow runs and the example's check asserts
the table contents and counts.  An ``add_node`` with a parameter that is not built yet must
raise ``NotSupportedError`` naming every such parameter.  When a feature lands, its
parameters' status flips and these tests then demand the example's real effect.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from spec_blocks import Block, add_node_call, blocks
from spec_models import declare_spec_models, product_rows

from bulkframe.backends.capabilities import Capabilities
from bulkframe.errors import IntegrityError, NotSupportedError
from bulkframe.nodes import DataFlow, LocalRuntime, NodeExecutionError, WorkflowBuilder, register_callback
from bulkframe.nodes.params import NODE_SUFFIX, NOT_SUPPORTED_VALUES, status

NOW = dt.datetime.now(dt.timezone.utc)
PAST = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)


def _op(node_type: str) -> Any:
    return next(op for op, suffix in NODE_SUFFIX.items() if node_type.endswith(suffix))


def expected_refusals(stmt: ast.stmt) -> list[str]:
    call = add_node_call(stmt)
    if call is None:
        return []
    op = _op(call.node_type)
    names = [k for k in call.keys if status(op, k)[0] == "not supported yet"]
    for k, v in call.values.items():
        refused = NOT_SUPPORTED_VALUES.get((op, k), {})
        if isinstance(v, str) and v in refused:
            names.append(k)
    return names


@dataclass
class Example:
    """What the spec leaves out (data, seed rows) and what must hold afterwards."""

    ns: Callable[[], dict[str, Any]] = dict
    seed: Callable[[DataFlow, dict[str, type]], None] | None = None
    check: Callable[[DataFlow, dict[str, Any], dict[str, Any]], None] | None = None
    fresh: bool = False  # the block declares its own models: start without the spec's
    #: capability → the error the workflow fails with on a backend that has it
    fails_with: dict[str, type[Exception]] = field(default_factory=dict)
    #: capability → parameters the library refuses at run time on a backend without it
    #: (e.g. ``parallel_batches`` where ``concurrent_writers`` is false: one SQLite writer)
    refused_without: dict[str, list[str]] = field(default_factory=dict)

    def refused(self, capabilities: Capabilities) -> list[str]:
        """The parameters refused on a backend with these capabilities."""
        return [
            name
            for cap, names in self.refused_without.items()
            if not getattr(capabilities, cap)
            for name in names
        ]


def rows(flow: DataFlow, table: str = "products") -> list[dict[str, Any]]:
    return flow.database.read(table, order_by="id").to_dicts()


def server_today(flow: DataFlow) -> dt.date:
    """The database's ``CURRENT_DATE``, on a session like the one that wrote."""
    conn = flow.database.backend.connect()
    try:
        value = conn.scalar("SELECT CURRENT_DATE")
        conn.commit()
    finally:
        conn.close()
    return dt.date.fromisoformat(str(value))


def seed_products(n: int = 10, **extra: Any) -> Callable[[DataFlow, dict[str, type]], None]:
    def seed(flow: DataFlow, models: dict[str, type]) -> None:
        flow.database.bulk_create(models["Product"], product_rows(n, **extra))

    return seed


# -- checks ------------------------------------------------------------------------------


def check_generated(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    assert sorted(flow.node_types()) == [f"Product{s}" for s in sorted(NODE_SUFFIX.values())]
    cols = {c.name: c.kind for c in flow.database.columns("products")}
    assert cols == {"id": "int64", "name": "text", "price": "float64", "category": "text", "stock": "int64"}


def check_basic(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    assert results["import_products"]["data"]["success_count"] == 2
    assert [(r["name"], r["price"], r["stock"]) for r in rows(flow)] == [
        ("Product 1", 19.99, 100),
        ("Product 2", 29.99, 50),
    ]
    again, _ = LocalRuntime().execute(ns["workflow"].build())  # "skip duplicates"
    assert again["import_products"]["data"]["skipped"] == 2
    assert len(rows(flow)) == 2


def advanced_products() -> list[dict[str, Any]]:
    new = [{"name": f"New {i}", "price": 5.0, "category": "toys", "stock": i} for i in range(30)]
    changed = [{"name": "Product 1", "price": 11.0, "category": "clothing", "stock": 7}]
    bad = [{"name": "Free", "price": 0.0, "category": "toys", "stock": 1}]  # below min 0.01
    return new + changed + bad


def check_advanced(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    data = results["import_products_advanced"]["data"]
    assert (data["records_processed"], data["inserted"], data["updated"], data["failure_count"]) == (
        32,
        30,
        1,
        1,
    )
    stored = {(r["name"], r["category"]): r for r in rows(flow)}
    assert stored[("Product 1", "clothing")]["price"] == 11.0 and ("Free", "toys") not in stored
    assert len(stored) == 40


def check_discount(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    before = {r["id"]: r for r in product_rows_with_ids(10)}
    after = {r["id"]: r for r in rows(flow)}
    electronics = [i for i, r in before.items() if r["category"] == "electronics"]
    assert results["discount_electronics"]["data"]["updated"] == len(electronics)
    for i in electronics:
        if i > 3:
            assert after[i]["price"] == pytest.approx(before[i]["price"] * 0.9)
        assert after[i]["updated_at"] is not None
    assert (after[1]["price"], after[1]["stock"]) == (15.99, 200)
    assert (after[2]["price"], after[2]["stock"]) == (25.99, 150)
    assert after[3]["stock"] == 0 and after[3]["price"] == before[3]["price"]
    assert results["update_specific_products"]["data"]["updated"] == 3


def product_rows_with_ids(n: int) -> list[dict[str, Any]]:
    return [{"id": i, **r} for i, r in enumerate(product_rows(n), start=1)]


def check_restock(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    before = {r["id"]: r for r in product_rows_with_ids(10)}
    hit = [
        i
        for i, r in before.items()
        if r["stock"] < 10 and r["active"] and r["category"] in ("electronics", "clothing")
    ]
    assert hit, "the data must exercise the filter"
    after = {r["id"]: r for r in rows(flow)}
    today = server_today(flow)
    for i, r in after.items():
        if i in hit:
            assert (r["stock"], r["status"]) == (before[i]["stock"] + 100, "restocked")
            # :current_date is the server's CURRENT_DATE (its session time zone): today there,
            # or yesterday if midnight passed since the update; a date, not a timestamp
            assert type(r["restock_date"]) is dt.date
            assert r["restock_date"] in (today - dt.timedelta(days=1), today), (r["restock_date"], today)
        else:
            assert r["stock"] == before[i]["stock"] and r["status"] is None
    out = results["restock_products"]
    assert out["data"]["updated"] == len(hit)
    assert sorted(out["rows"]["id"].to_list()) == hit


def check_atomic(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    before = {r["id"]: r for r in product_rows_with_ids(10)}
    after = {r["id"]: r for r in rows(flow)}
    assert after[1]["stock"] == before[1]["stock"] - 5
    assert after[2]["stock"] == before[2]["stock"] - 3
    assert after[3]["views"] == 1
    assert results["atomic_stock_update"]["data"]["updated"] == 3


OLD = {"active": False, "created_at": dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc), "stock": 0}


def seed_delete(flow: DataFlow, models: dict[str, type]) -> None:
    db = flow.database
    db.bulk_create(
        models["Product"],
        [
            {k: v for k, v in r.items() if k not in OLD} | OLD
            if r["name"] in ("Product 7", "Product 9")
            else r
            for r in product_rows(10)
        ],
    )
    db.bulk_create(
        models["Review"],
        [
            {"product_id": 7, "body": "ok"},
            {"product_id": 9, "body": "meh"},
            {"product_id": 8, "body": "kept"},
        ],
    )
    db.bulk_create(models["Rating"], [{"product_id": 7, "stars": 4}])


def check_delete(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    after = {r["id"]: r for r in rows(flow)}
    assert sorted(after) == [6, 7, 8, 9, 10]
    assert {i for i, r in after.items() if r["deleted_at"] is not None} == {7, 9}
    reviews = {r["product_id"]: r["deleted_at"] for r in rows(flow, "reviews")}
    assert reviews[7] is not None and reviews[9] is not None and reviews[8] is None
    assert rows(flow, "ratings")[0]["deleted_at"] is not None
    assert results["cleanup_old_products"]["data"]["deleted"] == 2
    assert results["delete_specific_products"]["data"]["deleted"] == 5


def upsert_products() -> list[dict[str, Any]]:
    changed = [
        {"name": f"Product {i}", "category": r["category"], "price": 1.0 + i, "stock": 99, "updated_at": NOW}
        for i, r in enumerate(product_rows(3), start=1)
    ]
    new = [
        {"name": f"Fresh {i}", "category": "toys", "price": 3.0, "stock": 1, "updated_at": NOW}
        for i in range(2)
    ]
    return changed + new


def check_upsert(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    data = results["upsert_products"]["data"]
    assert (data["inserted"], data["updated"], data["failure_count"]) == (2, 3, 0)
    after = {r["name"]: r for r in rows(flow)}
    assert len(after) == 7
    assert (after["Product 2"]["price"], after["Product 2"]["stock"]) == (3.0, 99)
    assert after["Product 2"]["updated_at"] is not None
    assert after["Fresh 0"]["updated_at"] is None  # not in insert_fields


def conditional_products() -> list[dict[str, Any]]:
    return [
        {
            "sku": "SKU-1",
            "name": "Product 1",
            "category": "clothing",
            "price": 77.0,
            "updated_at": NOW,
            "active": True,
        },
        {
            "sku": "SKU-100",
            "name": "Brand new",
            "category": "toys",
            "price": 5.0,
            "updated_at": NOW,
            "active": True,
        },
        {
            "sku": "SKU-101",
            "name": "Inactive new",
            "category": "toys",
            "price": 5.0,
            "updated_at": NOW,
            "active": False,
        },
    ]


def check_conditional_upsert(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    data = results["conditional_upsert"]["data"]
    assert (data["inserted"], data["updated"], data["skipped"]) == (1, 1, 1)
    after = {r["sku"]: r for r in rows(flow)}
    assert after["SKU-1"]["price"] == 77.0 and "SKU-100" in after and "SKU-101" not in after


def check_nested(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    users = rows(flow, "users")
    profiles = rows(flow, "profiles")
    assert [(u["name"], u["email"]) for u in users] == [("John Doe", "john@example.com")]
    assert [(p["user_id"], p["bio"], p["location"]) for p in profiles] == [
        (users[0]["id"], "Software developer", "New York")
    ]
    data = results["create_users"]["data"]
    assert data["inserted"] == 1 and data["metrics"]["nested"]["profile"]["inserted"] == 1


def check_count(node_id: str, n: int) -> Callable[[DataFlow, dict[str, Any], dict[str, Any]], None]:
    def check(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
        data = results[node_id]["data"]
        assert (data["success_count"], data["failure_count"]) == (n, 0)
        assert len(rows(flow)) == n

    return check


def check_optimize(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    """Fast import, then a validated, atomic update of the same rows by id."""
    assert (results["data_import"]["data"]["inserted"], results["data_import"]["data"]["failure_count"]) == (
        10,
        0,
    )
    assert (
        results["realtime_updates"]["data"]["updated"],
        results["realtime_updates"]["data"]["failure_count"],
    ) == (10, 0)
    assert sorted(r["id"] for r in rows(flow)) == list(range(1, 11))


def migration_products() -> list[dict[str, Any]]:
    rows_ = product_rows_with_ids(10)
    for r in rows_[:3]:
        r["category"] = r["category"].upper()
        r["created_at"] = None
    return rows_


def check_migration(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    data = results["migrate_products"]["data"]
    assert (data["success_count"], data["failure_count"]) == (10, 0)
    assert data["metrics"]["verification"]["ok"] and data["metrics"]["verification"]["checked"] == 10
    landed = {r["id"]: r for r in rows(flow)}
    assert sorted(landed) == list(range(1, 11))  # preserve_ids: the input's ids
    for source in migration_products():
        got = landed[source["id"]]
        assert got["price"] == pytest.approx(source["price"] * 1.1)
        assert got["category"] == source["category"].lower()
        assert got["created_at"] is not None


def bad_products() -> list[dict[str, Any]]:
    return [*product_rows(5), {"name": None, "price": 1.0, "category": "x"}]


def check_safe_import(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    data = results["safe_import"]["data"]
    assert (data["success_count"], data["failure_count"]) == (5, 1)
    assert len(rows(flow)) == 5
    assert Path("/tmp/failed_records.json").exists()


def check_types(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    cols = {c.name: c for c in flow.database.columns("products")}
    assert {n: c.kind for n, c in cols.items()} == {
        "id": "int64",
        "name": "text",
        "price": "decimal",
        "stock": "int64",
        "active": "bool",
        "created_at": "timestamptz",
        "metadata": "json",
    }
    assert (cols["price"].precision, cols["price"].scale) == (18, 6)
    flow.database.bulk_create(
        ns["Product"],
        [
            {
                "name": "a",
                "price": Decimal("1.25"),
                "stock": 1,
                "active": True,
                "created_at": NOW,
                "metadata": {"k": [1, 2]},
            }
        ],
    )
    stored = rows(flow)[0]
    # every declared type holds its value as that type (the names alone prove nothing)
    assert json.loads(stored.pop("metadata")) == {"k": [1, 2]}
    assert stored == {
        "id": 1,
        "name": "a",
        "price": Decimal("1.25"),
        "stock": 1,
        "active": True,
        "created_at": NOW,
    }
    assert {n: type(v) for n, v in stored.items()} == {
        "id": int,
        "name": str,
        "price": Decimal,
        "stock": int,
        "active": bool,
        "created_at": dt.datetime,
    }
    assert stored["created_at"].tzinfo is not None  # timestamptz: an aware instant


def check_unit(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    name = "test_bulk_create" if "test_bulk_create" in ns else "test_bulk_performance"
    ns[name]()
    assert len(rows(flow)) == (100 if name == "test_bulk_create" else 10_000)


LOAD_OPTIONS = ["use_load_data", "mysql_options", "disable_foreign_keys"]

EXAMPLES: dict[str, Example] = {
    "generated-bulk-nodes": Example(fresh=True, check=check_generated),
    "basic-bulk-insert": Example(check=check_basic),
    "advanced-bulk-insert": Example(
        ns=lambda: {"products": advanced_products()},
        seed=seed_products(10),
        check=check_advanced,
        refused_without={"concurrent_writers": ["parallel_batches"]},
    ),
    "bulk-insert-with-relationships": Example(check=check_nested),
    "conditional-bulk-updates": Example(seed=seed_products(10), check=check_discount),
    "bulk-update-with-conditions": Example(seed=seed_products(10), check=check_restock),
    "atomic-bulk-updates": Example(seed=seed_products(10), check=check_atomic),
    "conditional-bulk-delete": Example(seed=seed_delete, check=check_delete),
    "safe-bulk-delete": Example(seed=seed_products(10)),
    "insert-or-update": Example(
        ns=lambda: {"products": upsert_products()}, seed=seed_products(5), check=check_upsert
    ),
    "conditional-upsert": Example(
        ns=lambda: {"products": conditional_products()},
        seed=seed_products(5, updated_at=PAST),
        check=check_conditional_upsert,
    ),
    # the MySQL node's LOAD DATA options mean nothing elsewhere: refused by name at run time
    "database-specific-optimizations": Example(refused_without={"load_options": LOAD_OPTIONS}),
    "memory-optimization": Example(),
    "parallel-processing": Example(
        ns=lambda: {"products": product_rows(10_000)},
        check=check_count("parallel_processing", 10_000),
        refused_without={"concurrent_writers": ["parallel_batches"]},
    ),
    "error-strategies": Example(),
    "recovery-and-cleanup": Example(
        ns=lambda: {"products": product_rows(3000)}, check=check_count("recoverable_operation", 3000)
    ),
    "progress-tracking": Example(),
    "performance-metrics": Example(),
    "data-migration": Example(
        ns=lambda: {"products": migration_products()},
        check=check_migration,
        refused_without={"user_triggers": ["disable_triggers"]},
    ),
    "real-time-data-processing": Example(),
    "data-synchronization": Example(ns=lambda: {"external_products": product_rows(3)}),
    "unit-tests": Example(check=check_unit),
    "performance-tests": Example(check=check_unit),
    "1-choose-appropriate-batch-sizes": Example(),
    # on PostgreSQL/SQLite the MySQL node is refused; on MySQL both alternatives run and
    # the second loads the same products again: the unique (name, category) refuses it
    "2-use-database-specific-optimizations": Example(
        refused_without={"load_options": ["use_load_data"]}, fails_with={"load_options": IntegrityError}
    ),
    "3-monitor-and-handle-errors": Example(ns=lambda: {"products": bad_products()}, check=check_safe_import),
    "4-use-appropriate-data-types": Example(fresh=True, check=check_types),
    "5-optimize-for-your-use-case": Example(
        ns=lambda: {"products": product_rows_with_ids(10)},
        check=check_optimize,
        refused_without={"user_triggers": ["disable_triggers"]},
    ),
}

BLOCKS = blocks()


def test_every_block_has_an_example() -> None:
    assert sorted(b.slug for b in BLOCKS) == sorted(EXAMPLES)


def _namespace(flow: DataFlow, example: Example) -> dict[str, Any]:
    register_callback("handle_failed_records", lambda rejected: None)
    ns: dict[str, Any] = {
        "__name__": "spec_example",
        "db": flow,
        "Decimal": Decimal,
        "datetime": dt.datetime,
        "WorkflowBuilder": WorkflowBuilder,
        "LocalRuntime": LocalRuntime,
        "workflow": WorkflowBuilder(),
        "products": product_rows(10),
    }
    ns.update(example.ns())
    return ns


def run_block(
    block: Block, ns: dict[str, Any], capabilities: Capabilities, example: Example
) -> dict[str, Any]:
    """Run ``block`` statement by statement; return the workflow results ({} if none ran)."""
    tree = ast.parse(block.adapted)
    added = False
    for stmt in tree.body:
        code = compile(
            ast.Module([stmt], type_ignores=[]), f"<spec: {block.heading}>", "exec", dont_inherit=True
        )
        refused = expected_refusals(stmt)
        if refused:
            with pytest.raises(NotSupportedError, match="not supported yet") as info:
                exec(code, ns)
            for name in refused:
                assert repr(name) in str(info.value) or f"{name}=" in str(info.value), (name, str(info.value))
            continue
        exec(code, ns)
        added = added or add_node_call(stmt) is not None
    if "results" in ns or not added:
        return ns.get("results", {})
    failure = next((e for cap, e in example.fails_with.items() if getattr(capabilities, cap)), None)
    if failure is not None:
        with pytest.raises(NodeExecutionError) as failed:
            LocalRuntime().execute(ns["workflow"].build())
        assert isinstance(failed.value.__cause__, failure), repr(failed.value.__cause__)
        return {}
    runtime_refused = example.refused(capabilities)
    if runtime_refused:
        with pytest.raises(NodeExecutionError) as info:
            LocalRuntime().execute(ns["workflow"].build())
        assert isinstance(info.value.__cause__, NotSupportedError), repr(info.value.__cause__)
        for name in runtime_refused:
            assert name in str(info.value)
        return {}
    results, run_id = LocalRuntime().execute(ns["workflow"].build())
    assert run_id
    return results


@pytest.mark.parametrize("block", BLOCKS, ids=[b.slug for b in BLOCKS])
def test_spec_example(block: Block, flow: DataFlow, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    example = EXAMPLES[block.slug]
    capabilities = flow.database.backend.capabilities
    models = {} if example.fresh else declare_spec_models(flow)
    if example.seed is not None:
        example.seed(flow, models)
    ns = _namespace(flow, example)
    results = run_block(block, ns, capabilities, example)
    for out in results.values():  # counts always add up
        data = out["data"]
        assert data["records_processed"] == data["success_count"] + data["failure_count"]
    if example.refused(capabilities):
        return
    if example.check is not None:
        example.check(flow, ns, results)
    elif results:  # an example that became runnable: every node loaded all its rows
        for node_id, out in results.items():
            assert out["data"]["operation"] == "create", f"{node_id}: give this example a check"
            assert out["data"]["success_count"] == len(ns["products"]) and out["data"]["failure_count"] == 0
        assert len(rows(flow)) == len(ns["products"]) * len(results)
    if block.slug == "basic-bulk-insert":
        out = capsys.readouterr().out
        assert "Imported 2 products" in out and "Success: 2, Failed: 0" in out
