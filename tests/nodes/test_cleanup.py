"""Delete nodes: ``cleanup_related``, ``cleanup_files``, ``soft_delete`` on a table the model
layer owns, and create nodes' ``conflict_resolution="skip"`` as ``ON CONFLICT DO NOTHING``;
on SQLite and PostgreSQL, contents read back through an independent client."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest

from bulkframe.errors import InvalidOptionValueError, SchemaError
from bulkframe.nodes import DataFlow, FilePath, LocalRuntime, NodeExecutionError, WorkflowBuilder, has_many
from suite_backends import independent_query


def run(node_type: str, params: dict[str, Any]) -> dict[str, Any]:
    workflow = WorkflowBuilder()
    workflow.add_node(node_type, "n", params)
    results, _ = LocalRuntime().execute(workflow.build())
    return results["n"]


def q(flow: DataFlow, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    return independent_query(flow.url, sql)


def declare_shop(flow: DataFlow) -> dict[str, type]:
    @flow.model
    class Product:
        name: str
        image: Annotated[str, FilePath] | None = None
        __relationships__ = {"reviews": has_many("Review", "product_id")}  # noqa: RUF012

    @flow.model
    class Review:
        product_id: int
        body: str
        __foreign_keys__ = {"product_id": Product}  # noqa: RUF012

    @flow.model
    class Rating:  # related only through its foreign key (no relationship declared)
        product_id: int
        stars: int
        __foreign_keys__ = {"product_id": Product}  # noqa: RUF012

    flow.database.bulk_create(Product, [{"name": f"p{i}"} for i in range(1, 5)])
    flow.database.bulk_create(
        Review,
        [{"product_id": 1, "body": "a"}, {"product_id": 2, "body": "b"}, {"product_id": 3, "body": "c"}],
    )
    flow.database.bulk_create(Rating, [{"product_id": 1, "stars": 5}, {"product_id": 4, "stars": 1}])
    return {"Product": Product, "Review": Review, "Rating": Rating}


def test_cleanup_related_deletes_children_in_the_same_transaction(flow: DataFlow) -> None:
    declare_shop(flow)
    out = run("ProductBulkDeleteNode", {"ids": [1, 2], "cleanup_related": True})
    assert out["data"]["deleted"] == 2 and out["deleted"] == 2
    assert out["data"]["metrics"]["cascade"] == {"reviews": 2, "ratings": 1}
    assert q(flow, "SELECT id FROM products ORDER BY id") == [(3,), (4,)]
    assert q(flow, "SELECT product_id FROM reviews ORDER BY id") == [(3,)]
    assert q(flow, "SELECT product_id FROM ratings ORDER BY id") == [(4,)]


def test_cleanup_related_soft_deletes_and_adds_deleted_at_on_owned_tables(flow: DataFlow) -> None:
    declare_shop(flow)
    out = run(
        "ProductBulkDeleteNode", {"filter": {"name": "p1"}, "soft_delete": True, "cleanup_related": True}
    )
    assert out["data"]["deleted"] == 1
    assert q(flow, "SELECT id FROM products WHERE deleted_at IS NOT NULL") == [(1,)]
    assert q(flow, "SELECT count(*) FROM products") == [(4,)]  # kept, marked
    assert q(flow, "SELECT product_id FROM reviews WHERE deleted_at IS NOT NULL") == [(1,)]
    assert q(flow, "SELECT product_id FROM ratings WHERE deleted_at IS NOT NULL") == [(1,)]


def test_a_refused_filter_alters_nothing(flow: DataFlow) -> None:
    declare_shop(flow)
    with pytest.raises(NodeExecutionError, match="active"):
        run("ProductBulkDeleteNode", {"filter": {"active": False}, "soft_delete": True})
    assert "deleted_at" not in {c.name for c in flow.database.columns("products")}


def test_soft_delete_on_a_table_the_model_layer_does_not_own_keeps_the_refusal(
    url: str, flow: DataFlow
) -> None:
    flow.database.bulk_create("products", [{"id": 1, "name": "old"}], primary_key="id")
    with DataFlow(url) as other:

        @other.model
        class Product:
            name: str

        workflow = WorkflowBuilder(other)
        workflow.add_node("ProductBulkDeleteNode", "n", {"ids": [1], "soft_delete": True})
        with pytest.raises(NodeExecutionError, match="ALTER TABLE") as info:
            LocalRuntime().execute(workflow.build())
        assert isinstance(info.value.__cause__, SchemaError)
    assert q(flow, "SELECT id, name FROM products") == [(1, "old")]


def test_cleanup_related_is_refused_without_relationships(flow: DataFlow) -> None:
    @flow.model
    class Product:
        name: str

    with pytest.raises(InvalidOptionValueError, match="declares no relationships"):
        WorkflowBuilder().add_node("ProductBulkDeleteNode", "n", {"ids": [1], "cleanup_related": True})


def test_cleanup_files_removes_files_after_the_commit(flow: DataFlow, tmp_path: Path) -> None:
    models = declare_shop(flow)
    files = [tmp_path / f"{i}.png" for i in range(1, 5)]
    for f in files:
        f.write_text("x")
    flow.database.bulk_update(models["Product"], [{"id": i, "image": str(f)} for i, f in enumerate(files, 1)])
    files[1].unlink()  # already gone: counted, not an error
    out = run("ProductBulkDeleteNode", {"ids": [1, 2], "cleanup_related": True, "cleanup_files": True})
    assert out["data"]["metrics"]["cleanup_files"] == {"removed": 1, "missing": 1, "failed": []}
    assert [f.exists() for f in files] == [False, False, True, True]
    assert q(flow, "SELECT id FROM products ORDER BY id") == [(3,), (4,)]


def test_cleanup_files_keeps_files_when_the_delete_rolls_back(flow: DataFlow, tmp_path: Path) -> None:
    models = declare_shop(flow)
    image = tmp_path / "1.png"
    image.write_text("x")
    flow.database.bulk_update(models["Product"], [{"id": 1, "image": str(image)}])
    # reviews reference product 1 and cascade is not asked for: the foreign key refuses
    with pytest.raises(NodeExecutionError):
        run("ProductBulkDeleteNode", {"ids": [1], "cleanup_files": True})
    assert image.exists()
    assert q(flow, "SELECT count(*) FROM products") == [(4,)]


def test_cleanup_files_dry_run_removes_nothing(flow: DataFlow, tmp_path: Path) -> None:
    models = declare_shop(flow)
    image = tmp_path / "4.png"
    image.write_text("x")
    flow.database.bulk_update(models["Product"], [{"id": 4, "image": str(image)}])
    out = run(
        "ProductBulkDeleteNode", {"ids": [4], "cleanup_related": True, "cleanup_files": True, "dry_run": True}
    )
    assert out["data"]["deleted"] == 1 and out["data"]["dry_run"]
    assert image.exists() and q(flow, "SELECT count(*) FROM products") == [(4,)]


def test_cleanup_files_refusals(flow: DataFlow) -> None:
    declare_shop(flow)
    with pytest.raises(InvalidOptionValueError, match="soft-deleted rows still reference their files"):
        WorkflowBuilder().add_node(
            "ProductBulkDeleteNode", "n", {"ids": [1], "soft_delete": True, "cleanup_files": True}
        )
    with pytest.raises(InvalidOptionValueError, match="declares no file-path field"):
        WorkflowBuilder().add_node("ReviewBulkDeleteNode", "n", {"ids": [1], "cleanup_files": True})


def test_skip_without_a_unique_key_inserts_everything(flow: DataFlow) -> None:
    @flow.model
    class Product:
        name: str

    rows = [{"name": "a"}, {"name": "a"}]
    assert (
        (run("ProductBulkCreateNode", {"data": rows, "conflict_resolution": "skip"})["data"]["skipped"]) == 0
    )
    assert q(flow, "SELECT id, name FROM products ORDER BY id") == [(1, "a"), (2, "a")]


def test_skip_skips_rows_violating_any_unique_constraint(flow: DataFlow) -> None:
    @flow.model
    class Product:
        name: str
        sku: str
        __unique__ = [("name",), ("sku",)]  # noqa: RUF012

    flow.database.bulk_create(Product, [{"name": "a", "sku": "A"}])
    rows = [
        {"name": "a", "sku": "Z"},  # name taken
        {"name": "b", "sku": "A"},  # sku taken
        {"name": "c", "sku": "C"},
        {"name": "c", "sku": "D"},  # repeats a row of the same call
    ]
    out = run("ProductBulkCreateNode", {"data": rows, "conflict_resolution": "skip"})
    data = out["data"]
    assert (data["records_processed"], data["inserted"], data["skipped"], data["failure_count"]) == (
        4,
        1,
        3,
        0,
    )
    assert (out["inserted"], out["skipped"], out["success"]) == (1, 3, True)
    keyed = [{"id": 1, "name": "d", "sku": "E"}, {"id": 50, "name": "e", "sku": "F"}]  # id 1 is taken
    out = run("ProductBulkCreateNode", {"data": keyed, "conflict_resolution": "skip"})
    assert (out["inserted"], out["skipped"]) == (1, 1)
    assert q(flow, "SELECT name, sku FROM products ORDER BY name") == [("a", "A"), ("c", "C"), ("e", "F")]
