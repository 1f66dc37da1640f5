"""Events after commit (docs/events.md): one event per committed batch, on ``LISTEN``
(PostgreSQL ``NOTIFY`` inside the writing transaction), on a Redis stream, or to a
callable — and none for rolled-back work."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

import bulkframe as bf
from bulkframe.errors import EventError, IntegrityError, InvalidOptionValueError, NotSupportedError


def _rows(ids: range | list[int]) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"n{i}"} for i in ids]


def _covered(events: list[dict[str, Any]]) -> list[int]:
    """Every id the events' key ranges cover (ids here are contiguous within a batch)."""
    return sorted(i for e in events for i in range(e["key_range"]["id"][0], e["key_range"]["id"][1] + 1))


def _check_batches(events: list[dict[str, Any]], table: str, *, batches: int, rows: int) -> None:
    assert len(events) == batches
    assert sorted(e["batch"] for e in events) == list(range(batches))
    assert sum(e["rows"] for e in events) == sum(e["inserted"] for e in events) == rows
    assert {e["operation"] for e in events} == {"create"} and {e["table"] for e in events} == {table}
    assert all(e["committed_at"] for e in events)


def _listen(url: str, channel: str) -> Any:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    conn.execute(f'LISTEN "{channel}"')
    return conn


def _received(conn: Any) -> list[dict[str, Any]]:
    return [json.loads(n.payload) for n in conn.notifies(timeout=1.0)]


def test_events_arrive_on_listen_once_per_committed_batch(
    db: bf.Database, table: str, url: str, stored: Any
) -> None:
    channel = f"bf_{uuid.uuid4().hex[:8]}"
    if not db.backend.capabilities.notify:
        with pytest.raises(NotSupportedError, match=r"has no NOTIFY\. Pass event_sink="):
            db.bulk_create(table, _rows(range(10)), publish_events=True, event_topic=channel)
        assert stored(table) is None  # refused before anything was written
        return
    listener = _listen(url, channel)
    try:
        db.bulk_create(
            table,
            _rows(range(1000)),
            primary_key="id",
            batch_size=250,
            error_strategy="continue",
            publish_events=True,
            event_topic=channel,
        )
        events = _received(listener)
        _check_batches(events, table, batches=4, rows=1000)
        assert _covered(events) == list(range(1000))

        # rolled back (error_strategy="stop", a duplicate key): no event at all
        with pytest.raises(IntegrityError):
            db.bulk_create(table, _rows([2000, 2001, 5]), publish_events=True, event_topic=channel)
        assert _received(listener) == []

        # "continue": the refused batch is split; only its committed parts send events
        result = db.bulk_create(
            table,
            _rows([*range(3000, 3010), 7, *range(3010, 3020)]),
            batch_size=7,
            error_strategy="continue",
            publish_events=True,
            event_topic=channel,
        )
        events = _received(listener)
        assert result.success_count == 20 and result.failure_count == 1
        assert sum(e["rows"] for e in events) == 20 and 7 not in _covered(events)
        assert stored(table, "count(*)") == [(1020,)]
    finally:
        listener.close()


def test_events_on_a_redis_stream(db: bf.Database, table: str, redis_url: str, stored: Any) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    topic = f"bf_events_{uuid.uuid4().hex[:8]}"

    def read() -> list[dict[str, Any]]:
        entries = client.xrange(topic)
        client.delete(topic)
        return [json.loads(fields[b"event"]) for _, fields in entries]

    options = dict(publish_events=True, event_topic=topic, event_sink=redis_url)
    db.bulk_create(table, _rows(range(600)), primary_key="id", batch_size=200, **options)  # type: ignore[arg-type]
    events = read()
    _check_batches(events, table, batches=3, rows=600)  # one transaction ("stop"): still one per batch
    assert _covered(events) == list(range(600))

    with pytest.raises(IntegrityError):  # rolled back: nothing published
        db.bulk_create(table, _rows([700, 1]), **options)  # type: ignore[arg-type]
    assert read() == []

    upserted = db.bulk_upsert(table, _rows(range(550, 650)), batch_size=50, **options)  # type: ignore[arg-type]
    events = read()
    assert (upserted.inserted, upserted.updated) == (50, 50)
    assert [
        (e["operation"], e["inserted"], e["updated"]) for e in sorted(events, key=lambda e: e["batch"])
    ] == [
        ("upsert", 0, 50),
        ("upsert", 50, 0),
    ]
    assert stored(table, "count(*)") == [(650,)]


def test_callable_sink_and_cloudevents(db: bf.Database, table: str) -> None:
    got: list[dict[str, Any]] = []
    db.bulk_create(
        table,
        _rows(range(30)),
        primary_key="id",
        batch_size=10,
        publish_events=True,
        event_sink=got.append,
        event_format="cloudevents",
    )
    assert len(got) == 3 and {e["specversion"] for e in got} == {"1.0"}
    assert {e["type"] for e in got} == {"bulkframe.create.batch_committed"}
    assert len({e["id"] for e in got}) == 3
    assert [e["data"]["key_range"] for e in got] == [{"id": [0, 9]}, {"id": [10, 19]}, {"id": [20, 29]}]


def test_event_options_are_checked_before_anything_is_written(
    db: bf.Database, table: str, stored: Any
) -> None:
    with pytest.raises(InvalidOptionValueError, match="event_topic and event_sink need publish_events=True"):
        db.bulk_create(table, _rows(range(3)), event_topic="x")
    with pytest.raises(InvalidOptionValueError, match="event_sink must be a callable or a redis:// URL"):
        db.bulk_create(table, _rows(range(3)), publish_events=True, event_sink="http://example.invalid/")
    with pytest.raises(
        InvalidOptionValueError, match="event_format='xml' is not valid; choose one of: 'json', 'cloudevents'"
    ):
        db.bulk_create(table, _rows(range(3)), publish_events=True, event_format="xml")  # type: ignore[arg-type]
    with pytest.raises(EventError, match="does not answer"):
        db.bulk_create(table, _rows(range(3)), publish_events=True, event_sink="redis://127.0.0.1:1/0")
    assert stored(table) is None


@pytest.mark.parametrize("strategy", ["stop", "continue"])
def test_a_sink_failing_after_commit_keeps_true_counts(
    db: bf.Database, table: str, peek: Any, strategy: str
) -> None:
    calls: list[dict[str, Any]] = []

    def sink(event: dict[str, Any]) -> None:
        calls.append(event)
        if len(calls) == 2:
            raise ConnectionError("sink down")

    with pytest.raises(EventError, match="could not be published") as info:
        db.bulk_create(
            table, _rows(range(30)), primary_key="id", batch_size=10, error_strategy=strategy,  # type: ignore[arg-type]
            publish_events=True, event_sink=sink,
        )  # fmt: skip
    stored = peek(f'SELECT count(*) FROM "{table}"')[0][0]
    result = info.value.result
    assert result is not None and result.success_count == stored
    # "stop": one transaction, committed before the events go out; "continue": the load
    # stopped after the batch whose event failed (that batch stays committed)
    assert stored == (30 if strategy == "stop" else 20)
