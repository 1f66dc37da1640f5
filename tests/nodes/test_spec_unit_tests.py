# ruff: noqa: RUF059  (the spec's code, verbatim)
"""The spec's own unit and performance tests, verbatim apart from imports.  Their rows omit
``stock``, which the spec's ``Product`` declares without a default (NOT NULL), so they run
here against the fitting model (``stock`` defaults to 0) from the autouse fixture, on SQLite
and PostgreSQL; with the spec's own ``Product`` they are refused naming ``stock``
(``test_spec_examples.py``)."""

from __future__ import annotations

import pytest
from spec_models import declare_fitting_models

from bulkframe.nodes import DataFlow, LocalRuntime, WorkflowBuilder


@pytest.fixture(autouse=True)
def _product_model(flow: DataFlow) -> None:
    declare_fitting_models(flow)


def test_bulk_create():
    """Test bulk product creation."""
    products = [{"name": f"Product {i}", "price": i * 10.0, "category": "test"} for i in range(1, 101)]

    workflow = WorkflowBuilder()
    workflow.add_node("ProductBulkCreateNode", "test_bulk_create", {"data": products, "batch_size": 25})

    runtime = LocalRuntime()
    results, run_id = runtime.execute(workflow.build())

    assert results["test_bulk_create"]["data"]["success_count"] == 100
    assert results["test_bulk_create"]["data"]["failure_count"] == 0


def test_bulk_performance():
    """Test bulk operation performance."""
    import time

    # Large dataset
    products = [
        {"name": f"Product {i}", "price": i * 10.0, "category": "perf_test"}
        for i in range(1, 10001)  # 10,000 products
    ]

    workflow = WorkflowBuilder()
    workflow.add_node(
        "ProductBulkCreateNode",
        "perf_test",
        {"data": products, "batch_size": 1000, "track_execution_time": True},
    )

    start_time = time.time()
    runtime = LocalRuntime()
    results, run_id = runtime.execute(workflow.build())
    end_time = time.time()

    execution_time = end_time - start_time
    records_per_second = len(products) / execution_time

    assert execution_time < 10.0  # Should complete in under 10 seconds
    assert records_per_second > 1000  # Should process at least 1000 records/second
