"""Fixtures for the node layer: a DataFlow on the ``url`` backend and the models the spec's
examples use (``Product`` with every column any example touches, ``User``/``Profile``,
``Review``/``Rating``), under the spec's table names, dropped before and after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from spec_models import declare_fitting_models

import bulkframe as bf
from bulkframe.nodes import DataFlow

SPEC_TABLES = ("profiles", "reviews", "ratings", "users", "products", "product_sync_audit")


def drop_spec_tables(url: str) -> None:
    with bf.connect(url) as db:
        for name in SPEC_TABLES:
            db.drop_table(name)


@pytest.fixture
def flow(url: str) -> Iterator[DataFlow]:
    drop_spec_tables(url)
    dataflow = DataFlow(url)
    yield dataflow
    dataflow.close()
    drop_spec_tables(url)


@pytest.fixture
def spec_models(flow: DataFlow) -> dict[str, type]:
    return declare_fitting_models(flow)
