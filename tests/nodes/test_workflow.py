"""Workflows: connected nodes, DataFrame inputs, runtime parameters, failures that name
their node, and the node-type registry."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from spec_models import declare_fitting_models, product_rows

from bulkframe.errors import IntegrityError, InvalidOptionValueError, NotSupportedError, OptionError
from bulkframe.nodes import DataFlow, LocalRuntime, NodeExecutionError, WorkflowBuilder, register_callback


def _rows(flow: DataFlow, table: str) -> list[dict[str, object]]:
    return flow.database.read(table, order_by="id").to_dicts()


def test_dataframe_from_one_node_is_upserted_by_the_next(flow: DataFlow) -> None:
    models = declare_fitting_models(flow)
    flow.database.bulk_create(models["Product"], product_rows(8))

    @flow.model
    class PriceWatch(models["Product"]):  # type: ignore[misc,valid-type]
        """Every column of Product, in a table of its own."""

        __tablename__ = "bf_nodes_price_watch"

    try:
        flow.database.bulk_create(PriceWatch, [{"id": 1, "name": "stale", "category": "?", "price": 0.0}])
        wf = WorkflowBuilder()
        wf.add_node(
            "ProductBulkUpdateNode",
            "discount",
            {
                "filter": {"category": {"$in": ["electronics", "clothing"]}},
                "updates": {"price": "price * 0.5"},
                "return_updated": True,
            },
        )
        wf.add_node("PriceWatchBulkUpsertNode", "watch", {"unique_fields": ["id"]})
        wf.add_connection("discount", "rows", "watch", "data")
        results, _ = LocalRuntime().execute(wf.build())
        changed = results["discount"]["rows"]
        assert isinstance(changed, pl.DataFrame) and changed.height == results["discount"]["data"]["updated"]
        assert results["watch"]["data"]["records_processed"] == changed.height
        assert results["watch"]["data"]["updated"] == 1  # id 1 existed
        watched = {r["id"]: r for r in _rows(flow, "bf_nodes_price_watch")}
        products = {r["id"]: r for r in _rows(flow, "products")}
        assert sorted(watched) == sorted(changed["id"].to_list())
        for i, r in watched.items():
            assert (r["name"], r["category"], r["price"]) == (
                products[i]["name"],
                products[i]["category"],
                products[i]["price"],
            )
    finally:
        flow.database.drop_table("bf_nodes_price_watch")


@pytest.mark.parametrize("kind", ["dicts", "polars", "pandas", "arrow", "lazy"])
def test_nodes_take_any_dataframe(flow: DataFlow, kind: str) -> None:
    declare_fitting_models(flow)
    data = [{"name": f"p{i}", "price": i + 0.5, "category": "c", "stock": i} for i in range(50)]
    frame = {
        "dicts": data,
        "polars": pl.DataFrame(data),
        "pandas": pd.DataFrame(data),
        "arrow": pa.Table.from_pylist(data),
        "lazy": pl.DataFrame(data).lazy(),
    }[kind]
    wf = WorkflowBuilder()
    wf.add_node("ProductBulkCreateNode", "load", {"data": frame, "batch_size": 7})
    results, _ = LocalRuntime().execute(wf.build())
    assert results["load"]["data"]["success_count"] == 50
    assert [(r["name"], r["price"], r["stock"]) for r in _rows(flow, "products")] == [
        (d["name"], d["price"], d["stock"]) for d in data
    ]


def test_failed_node_raises_naming_it_and_later_nodes_do_not_run(flow: DataFlow) -> None:
    declare_fitting_models(flow)
    wf = WorkflowBuilder()
    dup = [{"name": "a", "price": 1.0, "category": "x"}] * 2
    wf.add_node("ProductBulkCreateNode", "first", {"data": [{"name": "ok", "price": 1.0, "category": "x"}]})
    wf.add_node("ProductBulkCreateNode", "broken", {"data": dup})  # unique (name, category) violated
    wf.add_node("ProductBulkDeleteNode", "after", {"all_rows": True})
    with pytest.raises(NodeExecutionError, match=r"node 'broken' \(ProductBulkCreateNode\) failed") as info:
        LocalRuntime().execute(wf.build())
    err = info.value
    assert err.node_id == "broken" and isinstance(err.__cause__, IntegrityError)
    assert err.results["first"]["data"]["success_count"] == 1
    assert err.results["broken"]["error"]["type"] == "IntegrityError"
    assert "after" not in err.results
    assert [r["name"] for r in _rows(flow, "products")] == ["ok"]


def test_parameters_at_execute_override_and_connections_pick_paths(flow: DataFlow) -> None:
    declare_fitting_models(flow)
    wf = WorkflowBuilder()
    wf.add_node("ProductBulkCreateNode", "load", {"data": [{"name": "a", "price": 1.0, "category": "x"}]})
    results, run_id = LocalRuntime().execute(
        wf.build(), parameters={"load": {"data": [{"name": n, "price": 2.0, "category": "y"} for n in "bcd"]}}
    )
    assert results["load"]["data"]["inserted"] == 3 and len(run_id) == 36
    with pytest.raises(OptionError, match="unknown node"):
        LocalRuntime().execute(wf.build(), parameters={"lod": {}})
    wf.add_node("ProductBulkUpdateNode", "mark", {"updates": {"status": "seen"}, "all_rows": True})
    wf.add_connection("load", "data.success_count", "mark", "batch_size")
    results, _ = LocalRuntime().execute(
        wf.build(), parameters={"load": {"data": [{"name": "e", "price": 1.0, "category": "z"}]}}
    )
    assert results["mark"]["data"]["updated"] == 4  # b, c, d from the first run, e from this one


def test_parameter_errors_at_add_node(flow: DataFlow) -> None:
    declare_fitting_models(flow)
    wf = WorkflowBuilder()
    with pytest.raises(OptionError, match=r"'bach_size' \(did you mean 'batch_size'\?\)"):
        wf.add_node("ProductBulkCreateNode", "x", {"data": [], "bach_size": 10})
    with pytest.raises(InvalidOptionValueError, match=r"use_copy=False is not supported.*only True"):
        wf.add_node("ProductBulkCreateNode", "x", {"data": [], "use_copy": False})
    with pytest.raises(NotSupportedError, match=r"conflict_resolution='source_wins'"):
        wf.add_node("ProductBulkCreateNode", "x", {"data": [], "conflict_resolution": "source_wins"})
    wf.add_node(
        "ProductBulkUpsertNode", "sync_ok", {"data": [], "conflict_resolution": "source_wins"}
    )  # a sync value
    with pytest.raises(InvalidOptionValueError, match=r"register_callback\('nobody'"):
        wf.add_node("ProductBulkCreateNode", "x", {"data": [], "failed_records_callback": "nobody"})
    with pytest.raises(
        OptionError, match=r"unknown node type 'ProductBulkCreatNode'. Did you mean 'ProductBulkCreateNode'"
    ):
        wf.add_node("ProductBulkCreatNode", "x", {})
    with pytest.raises(InvalidOptionValueError, match="either 'data' or 'updates'"):
        wf.add_node("ProductBulkUpdateNode", "x", {"data": [], "updates": []})
    wf.add_node("ProductBulkCreateNode", "ok", {"data": []})
    with pytest.raises(InvalidOptionValueError, match="already added"):
        wf.add_node("ProductBulkCreateNode", "ok", {"data": []})
    with pytest.raises(OptionError, match="node outputs are"):
        wf.add_connection("ok", "nope", "ok", "data")


def test_named_callback_receives_rejected_rows(flow: DataFlow) -> None:
    declare_fitting_models(flow)
    seen: list[int] = []
    register_callback("count_rejects", lambda rejected: seen.append(rejected.height))
    wf = WorkflowBuilder()
    wf.add_node(
        "ProductBulkCreateNode",
        "load",
        {
            "data": [
                {"name": "a", "price": 5.0, "category": "x"},
                {"name": "b", "price": -1.0, "category": "x"},
            ],
            "validation_rules": {"price": {"min": 0}},
            "error_strategy": "continue",
            "failed_records_callback": "count_rejects",
        },
    )
    results, _ = LocalRuntime().execute(wf.build())
    assert results["load"]["data"]["failure_count"] == 1 and seen == [1]
    assert results["load"]["errors"].height == 1


def test_cycle_is_refused(flow: DataFlow) -> None:
    declare_fitting_models(flow)
    wf = WorkflowBuilder()
    wf.add_node("ProductBulkUpdateNode", "a", {"updates": {"stock": 1}, "all_rows": True})
    wf.add_node("ProductBulkUpdateNode", "b", {"updates": {"stock": 1}, "all_rows": True})
    wf.add_connection("a", "rows", "b", "filter")
    wf.add_connection("b", "rows", "a", "filter")
    with pytest.raises(InvalidOptionValueError, match="cycle"):
        wf.build()


def test_most_recent_dataflow_wins_and_builder_can_pin_one(url: str, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    first = DataFlow(f"sqlite:///{tmp_path / 'a.db'}")
    second = DataFlow(f"sqlite:///{tmp_path / 'b.db'}")
    for flow in (first, second):
        with caplog.at_level(logging.INFO, "bulkframe.nodes"):
            flow.model(type("Gadget", (), {"__annotations__": {"name": str}, "__module__": __name__}))
    assert "now refers to" in caplog.text
    for pinned, expect in ((None, second), (first, first)):
        wf = WorkflowBuilder(dataflow=pinned)
        wf.add_node("GadgetBulkCreateNode", "g", {"data": [{"name": "x"}]})
        LocalRuntime().execute(wf.build())
        assert expect.database.read("gadgets").height == 1
    assert first.database.read("gadgets").height == 1 and second.database.read("gadgets").height == 1
    first.close()
    second.close()


def test_dataflow_default_is_embedded_sqlite(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    flow = DataFlow()
    assert flow.url.startswith("sqlite:///")

    @flow.model
    class Note:
        text: str
        at: dt.datetime | None = None

    wf = WorkflowBuilder()
    wf.add_node("NoteBulkCreateNode", "n", {"data": [{"text": "hi"}]})
    LocalRuntime().execute(wf.build())
    assert flow.database.read(Note)["text"].to_list() == ["hi"]
    flow.close()
    assert (tmp_path / "bulkframe.db").exists()


def test_readme_workflow_nodes_section_runs(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The README's "Workflow nodes" example, as a new user runs it (twice: the second run
    skips the duplicate)."""
    import contextlib
    import io
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Workflow nodes", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        out = io.StringIO()
        ns: dict[str, object] = {"__name__": "readme"}
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec", dont_inherit=True), ns)
        assert out.getvalue().strip() == "1"
        ns["db"].close()  # type: ignore[attr-defined]
    from bulkframe import connect

    with connect(f"sqlite:///{tmp_path / 'bulkframe.db'}") as db:
        assert db.read("products")["name"].to_list() == ["Product 1"]


def test_the_spec_data_synchronization_example_with_a_model_that_has_its_columns(flow: DataFlow) -> None:
    """The spec's data-synchronization node, parameters as written, on a Product that has the
    columns the example names (the spec's own Product lacks them: test_spec_examples.py).
    Seeded EXT-1..3; the source changes EXT-1, repeats EXT-2 (newer timestamp, equal
    compared fields), sends EXT-3 older than the last sync, and adds EXT-4."""
    import json

    models = declare_fitting_models(flow)
    flow.database.bulk_create(models["Product"], product_rows(3, internal_notes="kept", description=None))
    at = lambda y, m: dt.datetime(y, m, 1, tzinfo=dt.timezone.utc)  # noqa: E731
    base = {r["external_id"]: r for r in product_rows(4, description=None)}
    external_products = [
        {**base["EXT-1"], "price": 99.0, "updated_at": at(2024, 2), "internal_notes": "source"},
        {**base["EXT-2"], "updated_at": at(2024, 3)},
        {**base["EXT-3"], "price": 1.0, "updated_at": at(2023, 6)},
        {**base["EXT-4"], "updated_at": at(2024, 2)},
    ]
    external_products[0]["created_at"] = at(2030, 1)
    workflow = WorkflowBuilder()
    workflow.add_node(
        "ProductBulkUpsertNode",
        "sync_products",
        {
            "data": external_products,
            "unique_fields": ["external_id"],
            "sync_mode": "incremental",
            "conflict_resolution": "source_wins",
            "last_sync_timestamp": "2024-01-01T00:00:00Z",
            "detect_changes": True,
            "change_detection_fields": ["price", "stock", "description"],
            "ignore_fields": ["internal_notes", "created_at"],
            "audit_sync": True,
            "audit_table": "product_sync_audit",
            "audit_level": "changes_only",
        },
    )
    try:
        results, _ = LocalRuntime().execute(workflow.build())
        data = results["sync_products"]["data"]
        assert (data["inserted"], data["updated"], data["unchanged"], data["skipped"]) == (1, 1, 1, 1)
        assert data["high_water_mark"] == at(2024, 3)
        after = {r["external_id"]: r for r in flow.database.read("products", order_by="id").to_dicts()}
        assert sorted(after) == ["EXT-1", "EXT-2", "EXT-3", "EXT-4"]
        assert (after["EXT-1"]["price"], after["EXT-1"]["internal_notes"]) == (99.0, "kept")  # ignored
        assert after["EXT-1"]["created_at"] == base["EXT-1"]["created_at"]  # ignored
        assert after["EXT-2"]["updated_at"] is None  # unchanged: not written at all
        assert after["EXT-3"]["price"] == 30.0  # older than the last sync
        audit = flow.database.read("product_sync_audit", order_by="operation").to_dicts()
        assert [(a["operation"], json.loads(a["row_key"])) for a in audit] == [
            ("insert", {"external_id": "EXT-4"}),
            ("update", {"external_id": "EXT-1"}),
        ]
        before, new = json.loads(audit[1]["before_values"]), json.loads(audit[1]["after_values"])
        assert set(before) == set(new) == {"price", "updated_at"}
        assert (before["price"], new["price"]) == (10.0, 99.0) and before["updated_at"] is None
    finally:
        flow.database.drop_table("product_sync_audit")
