"""``docs/kailash-compat.md`` stays true: its tables are the code's
(:mod:`bulkframe.nodes.kailash`), and every row behaves as it says — built names work with
kailash's meaning (checked against the database through an independent client), aliases
behave like their bulkframe names, refused names raise an error that names them."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from regen_kailash_compat import DOC, render, sections

from bulkframe.errors import InvalidOptionValueError, NotSupportedError, OptionError, SchemaError
from bulkframe.nodes import (
    AsyncLocalRuntime,
    DataFlow,
    LocalRuntime,
    NodeExecutionError,
    WorkflowBuilder,
    kailash,
)
from bulkframe.nodes.params import OPERATIONS, translate
from suite_backends import independent_query


def doc_tables() -> dict[str, str]:
    text = DOC.read_text()
    return {
        m.group(1): m.group(2).rstrip("\n")
        for m in re.finditer(r"<!-- table:([\w-]+) -->\n((?:\|.*\n)*)<!-- /table -->", text)
    }


def test_doc_tables_are_the_codes() -> None:
    doc = doc_tables()
    code = {sid: render(rows) for sid, rows in sections().items()}
    assert sorted(doc) == sorted(code), "run python tests/nodes/regen_kailash_compat.py"
    wrong = [sid for sid in code if doc[sid] != code[sid]]
    assert not wrong, f"tables {wrong} differ from the code: run python tests/nodes/regen_kailash_compat.py"


def test_doc_is_in_the_site_nav() -> None:
    assert "kailash-compat.md" in (Path(__file__).resolve().parents[2] / "mkdocs.yml").read_text()


# -- constructor ----------------------------------------------------------------------


@pytest.mark.parametrize("name", [n for n, (s, _) in kailash.KAILASH_CONSTRUCTOR.items() if s == "refused"])
def test_refused_constructor_options_are_named(name: str) -> None:
    with pytest.raises(OptionError, match=re.escape(repr(name))):
        DataFlow("sqlite:///:memory:", **{name: True})


def declare(flow: DataFlow) -> type:
    @flow.model
    class Product:
        name: str
        price: float
        category: str
        stock: int

    return Product


PRODUCTS = [
    {"name": "a", "price": 1.0, "category": "x", "stock": 1},
    {"name": "b", "price": 2.0, "category": "y", "stock": 2},
    {"name": "c", "price": 3.0, "category": "x", "stock": 3},
]


def run(node_type: str, params: dict[str, Any], flow: DataFlow | None = None) -> dict[str, Any]:
    workflow = WorkflowBuilder(flow)
    workflow.add_node(node_type, "n", params)
    results, _ = LocalRuntime().execute(workflow.build())
    return results["n"]


@pytest.mark.parametrize("spelling", [":memory:", "sqlite:///:memory:"])
def test_in_memory_sqlite_lives_as_long_as_the_dataflow(spelling: str) -> None:
    flow = DataFlow(database_url=spelling, pool_size=2, pool_max_overflow=1)
    declare(flow)
    run("ProductBulkCreateNode", {"data": PRODUCTS}, flow)
    # another node, another pooled connection: the same database
    assert (
        run("ProductBulkUpdateNode", {"filter": {"category": "x"}, "fields": {"stock": 0}}, flow)["updated"]
        == 2
    )
    assert flow.database.read("products", order_by="id")["stock"].to_list() == [0, 2, 0]
    with DataFlow(":memory:") as other:  # a second in-memory database is a different one
        assert other.database.columns("products") is None
    flow.close()


def test_database_url_from_the_environment(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with DataFlow() as flow:
        assert flow.url == url
    with pytest.raises(InvalidOptionValueError, match="either url or database_url"):
        DataFlow(url, database_url=url)
    with pytest.raises(InvalidOptionValueError, match="'warn'"):
        DataFlow(url, auto_migrate="warn")  # type: ignore[arg-type]


# -- node parameters ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "name"),
    [(op, n) for op in OPERATIONS for n, p in kailash.KAILASH_PARAMS[op].items() if p.kind == "alias"],
)
def test_aliases_translate_to_their_bulkframe_name(op: Any, name: str) -> None:
    target = kailash.KAILASH_PARAMS[op][name].target
    value = (
        {"stock": 0}
        if target in ("updates", "filter")
        else ["name"]
        if target == "unique_fields"
        else [{"x": 1}]
    )
    assert translate(op, {name: value}, where="n") == translate(op, {target: value}, where="n")
    with pytest.raises(InvalidOptionValueError, match="not both"):
        translate(op, {name: value, target: value}, where="n")


@pytest.mark.parametrize(
    ("op", "name"),
    [(op, n) for op in OPERATIONS for n, p in kailash.KAILASH_PARAMS[op].items() if p.kind == "refused"],
)
def test_refused_parameters_name_what_to_use(op: Any, name: str) -> None:
    with pytest.raises(NotSupportedError, match=re.escape(repr(name))):
        translate(op, {name: True}, where="n")


def test_kailash_parameters_on_the_database(flow: DataFlow) -> None:
    declare(flow)
    out = run("ProductBulkCreateNode", {"records": PRODUCTS, "conflict_resolution": "skip"})
    assert (out["success"], out["processed"], out["inserted"], out["skipped"], out["operation"]) == (
        True,
        3,
        3,
        0,
        "bulk_create",
    )
    out = run("ProductBulkUpdateNode", {"conditions": {"category": "x"}, "update": {"price": "price * 2"}})
    assert (out["updated"], out["processed"], out["operation"]) == (2, 2, "bulk_update")
    out = run(
        "ProductBulkUpsertNode",
        {"rows": [{"id": 2, "name": "B", "price": 9.0, "category": "y", "stock": 9}], "conflict_on": ["id"]},
    )
    assert (out["upserted"], out["updated"], out["inserted"], out["total"]) == (1, 1, 0, 1)
    assert independent_query(flow.url, "SELECT id, name, price, stock FROM products ORDER BY id") == [
        (1, "a", 2.0, 1),
        (2, "B", 9.0, 9),
        (3, "c", 6.0, 3),
    ]
    # kailash's guard: an empty filter deletes everything only when confirmed
    with pytest.raises(NodeExecutionError, match="all_rows=True"):
        run("ProductBulkDeleteNode", {"filter": {}, "confirmed": False})
    with pytest.raises(NodeExecutionError, match="all_rows=True"):
        run("ProductBulkDeleteNode", {"filter": {}, "safe_mode": True})
    out = run(
        "ProductBulkDeleteNode", {"filter": {"name": "a"}, "confirmed": True}
    )  # with a filter: no effect
    assert (out["deleted"], out["processed"]) == (1, 1)
    out = run("ProductBulkDeleteNode", {"filter": {}, "safe_mode": False})
    assert out["deleted"] == 2 and independent_query(flow.url, "SELECT count(*) FROM products") == [(0,)]
    run("ProductBulkCreateNode", {"documents": PRODUCTS})
    assert run("ProductBulkDeleteNode", {"conditions": {}, "confirmed": True})["deleted"] == 3


# -- helper surface, node types, runtimes -------------------------------------------------


@pytest.mark.parametrize("name", [n for n, (s, _) in kailash.KAILASH_SURFACE.items() if s == "refused"])
def test_refused_helpers_are_named(name: str) -> None:
    with DataFlow(":memory:") as flow:
        with pytest.raises(NotSupportedError, match=rf"DataFlow\.{name} \(kailash-dataflow\) is not built"):
            getattr(flow, name)
        assert not hasattr(flow, name)


def _id_of(flow: DataFlow, name: str) -> int:
    return int(independent_query(flow.url, f"SELECT id FROM products WHERE name = '{name}'")[0][0])


def test_built_helpers(flow: DataFlow) -> None:
    product = declare(flow)
    built = [n for n, (s, _) in kailash.KAILASH_SURFACE.items() if s == "built"]
    assert all(hasattr(flow, n) for n in built)
    assert flow.list_models() == ["Product"] and flow.get_models() == {"Product": product}
    assert flow.get_generated_nodes("Product") == {
        "bulk_create": "ProductBulkCreateNode",
        "bulk_update": "ProductBulkUpdateNode",
        "bulk_upsert": "ProductBulkUpsertNode",
        "bulk_delete": "ProductBulkDeleteNode",
    }
    assert flow.get_generated_nodes("Nope") is None
    assert flow.get_available_nodes() == {"Product": ["BulkCreate", "BulkUpdate", "BulkDelete", "BulkUpsert"]}
    node = flow.get_node("ProductBulkCreateNode")
    assert (
        node is not None
        and node.type_name == "ProductBulkCreateNode"
        and flow.get_node("ProductCreateNode") is None
    )

    async def use_bulk() -> list[dict[str, Any]]:
        return [
            await flow.bulk.bulk_create("Product", PRODUCTS, batch_size=2),
            await flow.bulk.bulk_update(
                "Product", filter_criteria={"category": "y"}, update_values={"stock": 7}
            ),
            await flow.bulk.bulk_upsert(
                "Product",
                [{"id": 1, "name": "A", "price": 1.0, "category": "x", "stock": 1}],
                conflict_on=["id"],
            ),
            # the id the database gave "c" (MySQL's LOAD DATA may leave gaps between the
            # AUTO_INCREMENT values of two batches)
            await flow.bulk.bulk_delete("Product", data=[{"id": _id_of(flow, "c")}]),
        ]

    created, updated, upserted, deleted = asyncio.run(use_bulk())
    assert (
        created["records_processed"],
        created["success_count"],
        created["failure_count"],
        created["batch_size"],
    ) == (3, 3, 0, 2)
    assert (updated["updated"], upserted["updated"], deleted["deleted"]) == (1, 1, 1)
    assert independent_query(flow.url, "SELECT id, name, stock FROM products ORDER BY id") == [
        (1, "A", 1),
        (2, "b", 7),
    ]


@pytest.mark.parametrize("name", [n for n, (s, _) in kailash.KAILASH_NODE_TYPES.items() if s == "refused"])
def test_crud_node_types_are_refused_with_the_bulk_name(name: str) -> None:
    with DataFlow(":memory:") as flow:
        declare(flow)
        with pytest.raises(OptionError, match=r"unknown node type .*Did you mean 'ProductBulk"):
            WorkflowBuilder(flow).add_node(name, "n", {})


def test_async_runtime(flow: DataFlow) -> None:
    declare(flow)
    workflow = WorkflowBuilder()
    workflow.add_node("ProductBulkCreateNode", "load", {"data": PRODUCTS})
    workflow.add_node("ProductBulkDeleteNode", "drop", {"filter": {"category": "x"}})
    runtime = AsyncLocalRuntime()
    results, run_id = asyncio.run(
        runtime.execute_workflow_async(workflow.build(), {"drop": {"filter": {"category": "y"}}})
    )
    assert run_id and results["load"]["inserted"] == 3 and results["drop"]["deleted"] == 1
    results, _ = asyncio.run(runtime.execute_async(workflow.build()))  # loads 3 more, deletes every x
    assert (results["load"]["inserted"], results["drop"]["deleted"]) == (3, 4)
    assert independent_query(flow.url, "SELECT name, category FROM products ORDER BY id") == [("b", "y")]


def test_dataflow_model_config(flow: DataFlow) -> None:
    @flow.model
    class Product:
        name: str
        sku: str
        __dataflow__ = {"soft_delete": True, "indexes": [{"fields": ["sku"], "unique": True}]}  # noqa: RUF012

    run("ProductBulkCreateNode", {"data": [{"name": "a", "sku": "A"}, {"name": "b", "sku": "B"}]})
    assert run("ProductBulkDeleteNode", {"filter": {"name": "a"}})["deleted"] == 1  # tombstoned
    assert independent_query(flow.url, "SELECT name, deleted_at IS NOT NULL FROM products ORDER BY id") == [
        ("a", True),
        ("b", False),
    ]
    assert run("ProductBulkDeleteNode", {"filter": {"name": "b"}, "hard_delete": True})["deleted"] == 1
    assert independent_query(flow.url, "SELECT name FROM products") == [("a",)]
    out = run("ProductBulkCreateNode", {"data": [{"name": "c", "sku": "A"}], "conflict_resolution": "skip"})
    assert out["skipped"] == 1  # the unique index from __dataflow__
    for key in [k for k, (st, _) in kailash.KAILASH_MODEL.items() if st == "refused"]:
        with pytest.raises(SchemaError, match=rf"__dataflow__ key\(s\) \['{key}'\] are not supported"):
            flow.model(type("Tenanted", (), {"__annotations__": {"name": str}, "__dataflow__": {key: True}}))
