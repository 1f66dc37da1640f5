"""Every code example of the spec, run as written (only its imports changed; the data it
leaves as ``...`` supplied here), with the spec's own models, on SQLite and PostgreSQL.

The models are exactly the spec's: ``Product`` (``name``, ``price``, ``category``,
``stock``) as ``@db.model`` declares it — with the ``id``, ``created_at`` and ``updated_at``
the model layer adds, as kailash-dataflow does — and the second ``Product`` the
data-types example declares.  ``User``/``Profile`` (used, never declared, by the
relationships example) have exactly the fields its data has.

Each block runs statement by statement.  An ``add_node`` whose parameters are all built
must be accepted, and after the block the workflow runs and the example's check asserts
the table contents (read back through an independent client) and counts.  An
``add_node`` with a parameter that is not built yet must raise ``NotSupportedError``
naming every such parameter.  Where the spec's example asks for something its own model
does not have (a column such as ``active`` or ``sku``, a relationship, a value for the
NOT NULL ``stock``), the example must be refused with an error naming it, and the check
asserts that nothing changed.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from spec_blocks import Block, add_node_call, blocks
from spec_models import declare_spec_models, spec_product_rows

from bulkframe.backends.capabilities import Capabilities
from bulkframe.errors import BulkframeError, NotSupportedError
from bulkframe.nodes import DataFlow, LocalRuntime, NodeExecutionError, WorkflowBuilder, register_callback
from bulkframe.nodes.params import NODE_SUFFIX, NOT_SUPPORTED_VALUES, status
from suite_backends import independent_query

NOW = dt.datetime.now(dt.timezone.utc)
#: The dependency the examples that match rows on columns without a unique index wait for.
NEEDS_KEYLESS_MATCH = (
    "matching on columns without a unique index (conflict_resolution='update' with conflict_fields / "
    "bulk_upsert(unique_fields=...)) is built by the `sync` helper in the library's upsert"
)


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


Check = Callable[[DataFlow, dict[str, Any], dict[str, Any]], None]


@dataclass
class Example:
    """What the spec leaves out (data, seed rows) and what must hold afterwards."""

    ns: Callable[[], dict[str, Any]] = dict
    seed: Callable[[DataFlow, dict[str, type]], None] | None = None
    check: Check | None = None
    fresh: bool = False  # the block declares its own models: start without the spec's
    #: capability → parameters the library refuses at run time on a backend without it
    #: (e.g. ``parallel_batches`` where ``concurrent_writers`` is false: one SQLite writer)
    refused_without: dict[str, list[str]] = field(default_factory=dict)
    #: node id → (exception, message pattern) refused at ``add_node`` because the spec's
    #: model lacks what the parameter needs
    add_refused: dict[str, tuple[type[Exception], str]] = field(default_factory=dict)
    #: (node id, cause, message pattern): the workflow runs and that node is refused because
    #: the spec's model lacks what the example uses; ``check`` then sees the partial results
    run_refused: tuple[str, type[Exception], str] | None = None
    #: backend ids where the example waits for another piece of work (strict xfail)
    not_yet: tuple[str, ...] = ()
    #: the check runs on the results of the nodes that ran before a run-time refusal
    checked_when_refused: bool = False

    def refused(self, capabilities: Capabilities) -> list[str]:
        """The parameters refused on a backend with these capabilities."""
        return [
            name
            for cap, names in self.refused_without.items()
            if not getattr(capabilities, cap)
            for name in names
        ]


def stored(
    flow: DataFlow, columns: str = "id, name, price, category, stock", table: str = "products"
) -> list[tuple]:  # type: ignore[type-arg]
    """The table's rows read through an independent client (psycopg / stdlib sqlite3)."""
    return independent_query(flow.url, f"SELECT {columns} FROM {table} ORDER BY id")


def rows(flow: DataFlow, table: str = "products") -> list[dict[str, Any]]:
    """Typed rows through bulkframe's reader (timestamps as datetimes on every backend)."""
    return flow.database.read(table, order_by="id").to_dicts()


def seeded(n: int = 10) -> list[tuple]:  # type: ignore[type-arg]
    return [
        (i, r["name"], r["price"], r["category"], r["stock"]) for i, r in enumerate(spec_product_rows(n), 1)
    ]


def seed_products(n: int = 10) -> Callable[[DataFlow, dict[str, type]], None]:
    def seed(flow: DataFlow, models: dict[str, type]) -> None:
        flow.database.bulk_create(models["Product"], spec_product_rows(n))

    return seed


def unchanged(n: int = 10) -> Check:
    """The refused example changed nothing: the seeded rows are there as they were."""

    def check(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
        assert stored(flow) == seeded(n)

    return check


# -- checks ------------------------------------------------------------------------------


def check_generated(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    assert sorted(flow.node_types()) == [f"Product{s}" for s in sorted(NODE_SUFFIX.values())]
    cols = {c.name: c.kind for c in flow.database.columns("products")}
    assert cols == {
        "id": "int64",
        "name": "text",
        "price": "float64",
        "category": "text",
        "stock": "int64",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
    }


def check_basic(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    data = results["import_products"]["data"]
    assert (data["success_count"], data["inserted"], data["skipped"]) == (2, 2, 0)
    assert stored(flow) == [
        (1, "Product 1", 19.99, "electronics", 100),
        (2, "Product 2", 29.99, "electronics", 50),
    ]
    # "skip duplicates" is ON CONFLICT DO NOTHING: the spec's Product has no unique key
    # besides its id, so the same rows again are not duplicates and are all inserted
    again, _ = LocalRuntime().execute(ns["workflow"].build())
    assert (again["import_products"]["data"]["inserted"], again["import_products"]["data"]["skipped"]) == (
        2,
        0,
    )
    assert [r[1:] for r in stored(flow)] == [r[1:] for r in stored(flow)[:2]] * 2


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
    by_key = {(r[1], r[3]): r for r in stored(flow)}
    assert by_key[("Product 1", "clothing")][2:] == (11.0, "clothing", 7) and ("Free", "toys") not in by_key
    assert len(by_key) == 40


def check_discount(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    before = {r[0]: r for r in seeded(10)}
    after = {r[0]: r for r in stored(flow)}
    electronics = [i for i, r in before.items() if r[3] == "electronics"]
    assert electronics and results["discount_electronics"]["data"]["updated"] == len(electronics)
    stamps = {r["id"]: r["updated_at"] for r in rows(flow)}
    for i in electronics:
        if i > 3:
            assert after[i][2] == pytest.approx(before[i][2] * 0.9)
        assert abs(stamps[i] - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
    assert after[1][2:] == (15.99, before[1][3], 200)
    assert after[2][2:] == (25.99, before[2][3], 150)
    assert after[3][4] == 0 and after[3][2] == before[3][2]
    for i in set(before) - set(electronics) - {1, 2, 3}:
        assert after[i] == before[i]
    assert results["update_specific_products"]["data"]["updated"] == 3


def delete_seed(flow: DataFlow, models: dict[str, type]) -> None:
    flow.database.bulk_create(models["Product"], spec_product_rows(10))


def check_delete(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    assert stored(flow) == seeded(10)  # the first node was refused: nothing deleted
    assert "delete_specific_products" not in results  # the workflow stopped there
    # the workflow's second node alone does what the spec says
    workflow = WorkflowBuilder()
    workflow.add_node(
        "ProductBulkDeleteNode", "delete_specific_products", {"ids": [1, 2, 3, 4, 5], "hard_delete": True}
    )
    out, _ = LocalRuntime().execute(workflow.build())
    assert (
        out["delete_specific_products"]["data"]["deleted"] == 5
        and out["delete_specific_products"]["deleted"] == 5
    )
    assert stored(flow) == seeded(10)[5:]


def check_nested(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    users = stored(flow, "id, name, email", "users")
    assert [u[1:] for u in users] == [("John Doe", "john@example.com")]
    assert stored(flow, "user_id, bio, location", "profiles") == [
        (users[0][0], "Software developer", "New York")
    ]
    data = results["create_users"]["data"]
    assert data["inserted"] == 1 and data["metrics"]["nested"]["profile"]["inserted"] == 1


def upsert_products() -> list[dict[str, Any]]:
    changed = [
        {"name": f"Product {i}", "category": r["category"], "price": 1.0 + i, "stock": 99, "updated_at": NOW}
        for i, r in enumerate(spec_product_rows(3), start=1)
    ]
    new = [
        {"name": f"Fresh {i}", "category": "toys", "price": 3.0, "stock": 1, "updated_at": NOW}
        for i in range(2)
    ]
    return changed + new


def check_upsert(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    data = results["upsert_products"]["data"]
    assert (data["inserted"], data["updated"], data["failure_count"]) == (2, 3, 0)
    after = {r[1]: r for r in stored(flow)}
    assert len(after) == 7 and after["Product 2"][2:] == (3.0, "books", 99)


def check_each_loaded(n: int) -> Check:
    """Every node that ran loaded ``n`` rows, and the table holds them all."""

    def check(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
        assert results
        for out in results.values():
            assert (out["data"]["success_count"], out["data"]["failure_count"]) == (n, 0)
        assert len(rows(flow)) == n * len(results)

    return check


def check_count(node_id: str, n: int) -> Check:
    def check(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
        data = results[node_id]["data"]
        assert (data["success_count"], data["failure_count"]) == (n, 0)
        expected = [(r["name"], r["price"], r["category"], r["stock"]) for r in ns["products"]]
        assert sorted(r[1:] for r in stored(flow)) == sorted(expected)  # parallel batches: any id order

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
    assert stored(flow) == seeded(10)


def migration_products() -> list[dict[str, Any]]:
    rows_ = [{"id": i, **r} for i, r in enumerate(spec_product_rows(10), start=1)]
    for i, r in enumerate(rows_):  # a legacy system's rows: some lack a creation time
        r["category"] = r["category"].upper() if i < 3 else r["category"]
        r["created_at"] = None if i < 3 else dt.datetime(2021, 6, 1, tzinfo=dt.timezone.utc)
    return rows_


def check_migration(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    data = results["migrate_products"]["data"]
    assert (data["success_count"], data["failure_count"]) == (10, 0)
    assert data["metrics"]["verification"]["ok"] and data["metrics"]["verification"]["checked"] == 10
    landed = {r[0]: r for r in stored(flow)}
    assert sorted(landed) == list(range(1, 11))  # preserve_ids: the input's ids
    for source in migration_products():
        got = landed[source["id"]]
        assert got[2] == pytest.approx(source["price"] * 1.1)
        assert got[3] == source["category"].lower()
    created = [r["created_at"] for r in rows(flow)]  # coalesce(created_at, now())
    now = dt.datetime.now(dt.timezone.utc)
    assert all(abs(c - now) < dt.timedelta(minutes=5) for c in created[:3])
    assert created[3:] == [dt.datetime(2021, 6, 1, tzinfo=dt.timezone.utc)] * 7


def bad_products() -> list[dict[str, Any]]:
    return [*spec_product_rows(5), {"name": None, "price": 1.0, "category": "x", "stock": 1}]


def check_safe_import(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    data = results["safe_import"]["data"]
    assert (data["success_count"], data["failure_count"]) == (5, 1)
    assert stored(flow) == seeded(5)
    failed = Path("/tmp/failed_records.json")
    assert failed.exists() and "name" in failed.read_text()


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
        "updated_at": "timestamptz",  # added by the model layer (the class declares created_at)
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
    stored_row = rows(flow)[0]
    assert stored_row.pop("updated_at") is not None
    # every declared type holds its value as that type (the names alone prove nothing)
    assert json.loads(stored_row.pop("metadata")) == {"k": [1, 2]}
    assert stored_row == {
        "id": 1,
        "name": "a",
        "price": Decimal("1.25"),
        "stock": 1,
        "active": True,
        "created_at": NOW,
    }
    assert {n: type(v) for n, v in stored_row.items()} == {
        "id": int,
        "name": str,
        "price": Decimal,
        "stock": int,
        "active": bool,
        "created_at": dt.datetime,
    }
    assert stored_row["created_at"].tzinfo is not None  # timestamptz: an aware instant


def check_unit_refused(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
    """The spec's own tests omit ``stock``, which its ``Product`` requires: refused, naming
    the column and the first row, with nothing written."""
    name = "test_bulk_create" if "test_bulk_create" in ns else "test_bulk_performance"
    with pytest.raises(
        NodeExecutionError, match=r"requires column\(s\) \['stock'\] \(NOT NULL, no default\)"
    ):
        ns[name]()
    assert stored(flow) == []


def spec_tsv_file(n: int) -> str:
    """``n`` spec products as a tab-delimited CSV file, ``\\N`` for NULL (the options of
    the spec's COPY example)."""
    import tempfile

    lines = ["name\tprice\tcategory\tstock"]
    lines += [f"{r['name']}\t{r['price']}\t{r['category']}\t{r['stock']}" for r in spec_product_rows(n)]
    path = Path(tempfile.mkdtemp(prefix="bf-spec-")) / "products.tsv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def check_copy_file(node_id: str, n: int) -> Check:
    def check(flow: DataFlow, ns: dict[str, Any], results: dict[str, Any]) -> None:
        data = results[node_id]["data"]
        assert (data["records_processed"], data["inserted"], data["failure_count"]) == (n, n, 0)
        assert stored(flow) == seeded(n)
        server = flow.database.backend.capabilities.copy_text
        assert data["metrics"].get("copy", {}).get("path") == ("server" if server else None)

    return check


LOAD_OPTIONS = ["use_load_data", "mysql_options", "disable_foreign_keys"]

EXAMPLES: dict[str, Example] = {
    "generated-bulk-nodes": Example(fresh=True, check=check_generated),
    "basic-bulk-insert": Example(ns=lambda: {"products": spec_product_rows(0)}, check=check_basic),
    "advanced-bulk-insert": Example(
        ns=lambda: {"products": advanced_products()},
        seed=seed_products(10),
        check=check_advanced,
        refused_without={"concurrent_writers": ["parallel_batches"]},
    ),
    "bulk-insert-with-relationships": Example(check=check_nested),
    "conditional-bulk-updates": Example(seed=seed_products(10), check=check_discount),
    "bulk-update-with-conditions": Example(
        seed=seed_products(10),
        run_refused=(
            "restock_products",
            BulkframeError,
            r"\['restock_date', 'status'\], which are not columns",
        ),
        check=unchanged(10),
    ),
    "atomic-bulk-updates": Example(
        seed=seed_products(10),
        run_refused=("atomic_stock_update", BulkframeError, "views"),
        check=unchanged(10),
    ),
    "conditional-bulk-delete": Example(
        seed=delete_seed, run_refused=("cleanup_old_products", BulkframeError, "active"), check=check_delete
    ),
    "safe-bulk-delete": Example(
        seed=seed_products(10),
        add_refused={
            "safe_delete_products": (
                BulkframeError,
                "cleanup_related=True, but Product declares no relationships",
            )
        },
        check=unchanged(10),
    ),
    "insert-or-update": Example(
        ns=lambda: {"products": upsert_products()},
        seed=seed_products(5),
        check=check_upsert,
    ),
    "conditional-upsert": Example(
        seed=seed_products(5), run_refused=("conditional_upsert", BulkframeError, "sku"), check=unchanged(5)
    ),
    # copy_options describe a file's format: the example's `products` is a TSV file in the
    # format its options name (with rows, copy_options are refused: test_copy_options.py)
    # The MySQL node's LOAD DATA options mean nothing elsewhere: refused by name at run time,
    # after the PostgreSQL node ran (checked); on MySQL the PostgreSQL node's
    # disable_triggers is refused first.
    "database-specific-optimizations": Example(
        ns=lambda: {"products": spec_tsv_file(10)},
        check=check_copy_file("postgres_optimized", 10),
        refused_without={"load_options": LOAD_OPTIONS, "triggers": ["disable_triggers"]},
        checked_when_refused=True,
    ),
    "memory-optimization": Example(),
    "parallel-processing": Example(
        ns=lambda: {"products": spec_product_rows(10_000)},
        check=check_count("parallel_processing", 10_000),
        refused_without={"concurrent_writers": ["parallel_batches"]},
    ),
    "error-strategies": Example(),
    "recovery-and-cleanup": Example(
        ns=lambda: {"products": spec_product_rows(3000)}, check=check_count("recoverable_operation", 3000)
    ),
    "progress-tracking": Example(),
    "performance-metrics": Example(),
    "data-migration": Example(
        ns=lambda: {"products": migration_products()},
        check=check_migration,
        refused_without={"triggers": ["disable_triggers"]},
    ),
    # events go to NOTIFY product_updates where the database has it; elsewhere the example
    # names no sink (event_sink), so it is refused before anything is written
    "real-time-data-processing": Example(refused_without={"notify": ["publish_events"]}),
    # the sync parameters are built; the spec's Product has no external_id to match on (the
    # example with a model that has the columns: tests/nodes/test_workflow.py)
    "data-synchronization": Example(
        ns=lambda: {"external_products": spec_product_rows(3)},
        run_refused=("sync_products", BulkframeError, r"unique_fields \['external_id'\] are not columns"),
        check=unchanged(0),
    ),
    "unit-tests": Example(check=check_unit_refused),
    "performance-tests": Example(check=check_unit_refused),
    "1-choose-appropriate-batch-sizes": Example(),
    # on PostgreSQL/SQLite the MySQL node is refused; on MySQL both alternatives run and
    # the second loads the same products again: the unique (name, category) refuses it
    # the MySQL node is refused where LOAD DATA means nothing (after the PostgreSQL node
    # ran); on MySQL both alternatives run, each loading the 10 products
    "2-use-database-specific-optimizations": Example(
        check=check_each_loaded(10),
        refused_without={"load_options": ["use_load_data"]},
        checked_when_refused=True,
    ),
    "3-monitor-and-handle-errors": Example(ns=lambda: {"products": bad_products()}, check=check_safe_import),
    "4-use-appropriate-data-types": Example(fresh=True, check=check_types),
    "5-optimize-for-your-use-case": Example(
        ns=lambda: {"products": [{"id": i, **r} for i, r in enumerate(spec_product_rows(10), 1)]},
        check=check_optimize,
        refused_without={"triggers": ["disable_triggers"]},
    ),
}

BLOCKS = blocks()


def test_every_block_has_an_example() -> None:
    assert sorted(b.slug for b in BLOCKS) == sorted(EXAMPLES)


def _namespace(flow: DataFlow, example: Example) -> dict[str, Any]:
    register_callback("handle_failed_records", lambda rejected: None)
    for leftover in ("/tmp/failed_records.json", "/tmp/failed_products.json", "/tmp/deleted_products.json"):
        Path(leftover).unlink(missing_ok=True)
    ns: dict[str, Any] = {
        "__name__": "spec_example",
        "db": flow,
        "Decimal": Decimal,
        "datetime": dt.datetime,
        "WorkflowBuilder": WorkflowBuilder,
        "LocalRuntime": LocalRuntime,
        "workflow": WorkflowBuilder(),
        "products": spec_product_rows(10),
    }
    ns.update(example.ns())
    if not ns["products"]:
        ns.pop("products")  # the block defines its own
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
        call = add_node_call(stmt)
        if refused:
            with pytest.raises(NotSupportedError, match="not supported yet") as info:
                exec(code, ns)
            for name in refused:
                assert repr(name) in str(info.value) or f"{name}=" in str(info.value), (name, str(info.value))
            continue
        if call is not None and call.node_id in example.add_refused:
            exc, pattern = example.add_refused[call.node_id]
            with pytest.raises(exc, match=pattern):
                exec(code, ns)
            continue
        exec(code, ns)
        added = added or call is not None
    if "results" in ns or not added:
        return ns.get("results", {})
    runtime_refused = example.refused(capabilities)
    if runtime_refused:
        with pytest.raises(NodeExecutionError) as info:
            LocalRuntime().execute(ns["workflow"].build())
        assert isinstance(info.value.__cause__, NotSupportedError), repr(info.value.__cause__)
        # the first node refused names what it was refused for (an example's nodes may be
        # refused for different parameters: the run stops at the first)
        assert any(name in str(info.value) for name in runtime_refused), (runtime_refused, str(info.value))
        return {k: v for k, v in info.value.results.items() if k != info.value.node_id}
    if example.run_refused is not None:
        node_id, cause, pattern = example.run_refused
        with pytest.raises(NodeExecutionError) as refusal:
            LocalRuntime().execute(ns["workflow"].build())
        assert refusal.value.node_id == node_id
        assert isinstance(refusal.value.__cause__, cause), repr(refusal.value.__cause__)
        assert re.search(pattern, str(refusal.value)), str(refusal.value)
        return {k: v for k, v in refusal.value.results.items() if k != node_id}
    results, run_id = LocalRuntime().execute(ns["workflow"].build())
    assert run_id
    return results


def _params() -> list[Any]:
    out = []
    for b in BLOCKS:
        ex = EXAMPLES[b.slug]
        marks = (
            [pytest.mark.not_yet(*ex.not_yet, raises=NodeExecutionError, reason=NEEDS_KEYLESS_MATCH)]
            if ex.not_yet
            else []
        )
        out.append(pytest.param(b, id=b.slug, marks=marks))
    return out


@pytest.mark.parametrize("block", _params())
def test_spec_example(block: Block, flow: DataFlow, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    example = EXAMPLES[block.slug]
    capabilities = flow.database.backend.capabilities
    models = {} if example.fresh else declare_spec_models(flow)
    if example.seed is not None:
        example.seed(flow, models)
    ns = _namespace(flow, example)
    results = run_block(block, ns, capabilities, example)
    for out in results.values():  # counts always add up, in both result shapes
        data = out["data"]
        assert data["records_processed"] == data["success_count"] + data["failure_count"]
        assert out["processed"] == data["records_processed"] and out["success"] == (
            data["failure_count"] == 0
        )
    if example.refused(capabilities) and not (example.checked_when_refused and results):
        return
    if example.check is not None:
        example.check(flow, ns, results)
    elif results:  # an example that became runnable: every node loaded all its rows
        for node_id, out in results.items():
            assert out["data"]["operation"] == "create", f"{node_id}: give this example a check"
            assert out["data"]["success_count"] == len(ns["products"]) and out["data"]["failure_count"] == 0
        assert len(stored(flow)) == len(ns["products"]) * len(results)
    if block.slug == "basic-bulk-insert":
        out = capsys.readouterr().out
        assert "Imported 2 products" in out and "Success: 2, Failed: 0" in out
