"""The model layer's ``updated_at`` says when a row was last written: every update (by
filter, by rows) and upsert through a node sets it on the rows it writes, and leaves the
other rows' stamps alone.  Read back through an independent client."""

from __future__ import annotations

import datetime as dt
import time

from bulkframe.nodes import DataFlow, LocalRuntime, WorkflowBuilder
from suite_backends import independent_query


def _stamps(url: str) -> dict[int, dt.datetime]:
    rows = independent_query(url, 'SELECT id, updated_at FROM "stamped" ORDER BY id')
    out = {}
    for i, u in rows:  # psycopg: aware datetimes; sqlite3: UTC text
        stamp = u if isinstance(u, dt.datetime) else dt.datetime.fromisoformat(u)
        out[int(i)] = stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)
    return out


def _run(node: str, params: dict[str, object]) -> dict[str, object]:
    wf = WorkflowBuilder()
    wf.add_node(node, "n", params)
    results, _ = LocalRuntime().execute(wf.build())
    return results["n"]["data"]  # type: ignore[no-any-return]


def test_updates_and_upserts_set_updated_at(flow: DataFlow, url: str) -> None:
    @flow.model
    class Stamped:
        __tablename__ = "stamped"
        name: str
        price: float

    try:
        _run("StampedBulkCreateNode", {"data": [{"name": n, "price": 1.0} for n in "abcd"]})
        first = _stamps(url)
        assert len(first) == 4

        time.sleep(1.1)  # SQLite's clock default has whole seconds: make "later" visible
        assert (
            _run("StampedBulkUpdateNode", {"filter": {"name": "a"}, "updates": {"price": 2.0}})["updated"]
            == 1
        )
        after_filter = _stamps(url)
        assert after_filter[1] > first[1]
        assert {k: after_filter[k] for k in (2, 3, 4)} == {k: first[k] for k in (2, 3, 4)}

        time.sleep(1.1)
        assert _run("StampedBulkUpdateNode", {"data": [{"id": 2, "price": 3.0}]})["updated"] == 1
        after_rows = _stamps(url)
        assert after_rows[2] > after_filter[2]
        assert {k: after_rows[k] for k in (1, 3, 4)} == {k: after_filter[k] for k in (1, 3, 4)}

        time.sleep(1.1)
        done = _run(
            "StampedBulkUpsertNode",
            {
                "data": [{"id": 3, "name": "c", "price": 4.0}],
                "unique_fields": ["id"],
                "update_fields": ["price"],
            },
        )
        assert done["updated"] == 1
        after_upsert = _stamps(url)
        assert after_upsert[3] > after_rows[3]
        assert {k: after_upsert[k] for k in (1, 2, 4)} == {k: after_rows[k] for k in (1, 2, 4)}

        # change detection leaves the stamp out of the comparison: an equal row is
        # unchanged and keeps its stamp, a changed one is stamped
        time.sleep(1.1)
        again = _run(
            "StampedBulkUpsertNode",
            {
                "data": [{"id": 3, "name": "c", "price": 4.0}, {"id": 4, "name": "d", "price": 9.0}],
                "unique_fields": ["id"],
                "detect_changes": True,
            },
        )
        assert (again["updated"], again["unchanged"]) == (1, 1)
        after_sync = _stamps(url)
        assert after_sync[3] == after_upsert[3] and after_sync[4] > after_upsert[4]
    finally:
        flow.database.drop_table("stamped")
