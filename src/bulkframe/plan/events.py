"""Events after commit: one event per committed batch, never for rolled-back work.

An event is a JSON object::

    {"operation": "create", "table": "products", "batch": 3, "first_row": 300,
     "last_row": 399, "rows": 100, "inserted": 100, "updated": 0, "skipped": 0,
     "key_range": {"id": [301, 400]}, "committed_at": "2026-12-01T14:03:32.120000+00:00"}

``batch`` is the batch (micro-batch) number, ``first_row``/``last_row`` the input
positions it covered, ``key_range`` the smallest and largest value of each key column
among its rows.  ``event_format="cloudevents"`` wraps it as the ``data`` of a CloudEvents
1.0 JSON envelope (``specversion``, ``id``, ``source``, ``type``
``"bulkframe.<operation>.batch_committed"``, ``subject`` the table, ``time``).

Sinks (:class:`~bulkframe.options.EventOptions`):

- a callable gets each event (a dict) after its batch committed;
- a ``redis://`` URL gets ``XADD <event_topic> * event <json>`` after the commit;
- without a sink, a database with ``NOTIFY`` (capability ``notify``) gets
  ``NOTIFY <event_topic>, '<json>'`` inside the writing transaction: the database delivers
  it exactly when the batch commits, and drops it when the batch rolls back (its
  ``committed_at`` is the moment the batch went to COMMIT).

A batch the database refuses and the executor splits (``error_strategy="continue"``)
commits in parts: each committed part is one event (same ``batch``, its own rows).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from bulkframe.errors import EventError, MissingDependencyError, NotSupportedError
from bulkframe.options import EventOptions

if TYPE_CHECKING:
    from bulkframe.backends.base import Backend
    from bulkframe.backends.connection import Connection

log = logging.getLogger("bulkframe")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return str(value)


@dataclass
class Publisher:
    """Builds the events of one operation and hands them to its sink at the right moment."""

    options: EventOptions
    operation: str
    table: str
    keys: list[str]
    #: sends one encoded event inside the writing transaction (``NOTIFY``)
    in_transaction: Callable[[Connection, str], None] | None = None
    #: delivers one event after its commit (callable, Redis)
    after_commit: Callable[[dict[str, Any]], None] | None = None
    published: int = 0
    _pending: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, options: EventOptions, backend: Backend, *, operation: str, table: str) -> Publisher | None:
        """The publisher the options ask for (``None`` without ``publish_events``); refuse,
        before anything is written, when no sink fits.

        Raises
        ------
        NotSupportedError
            No ``event_sink`` and the database has no ``NOTIFY``.
        MissingDependencyError
            A ``redis://`` sink without the ``redis`` package.
        EventError
            The Redis server does not answer.
        """
        if not options.publish_events:
            return None
        sink = options.event_sink
        publisher = cls(options, operation, table, [])
        if callable(sink):
            publisher.after_commit = sink
        elif isinstance(sink, str):
            publisher.after_commit = _redis_sink(sink, options.topic)
        elif backend.capabilities.notify:
            channel = options.topic

            def notify(conn: Connection, payload: str) -> None:
                backend.notify(conn, channel, payload)

            publisher.in_transaction = notify
        else:
            raise NotSupportedError(
                f"publish_events=True has no sink on {backend.name}: it has no NOTIFY. Pass event_sink= a "
                "callable (called with each event after its batch committed) or a redis:// URL (XADD to "
                "the stream event_topic)"
            )
        return publisher

    # -- the executor's hooks -------------------------------------------------------------
    def staged(self, conn: Connection, batch: int, positions: pa.Array, table: pa.Table, counts: Any) -> None:
        """A batch (or part) was written and is about to commit on ``conn``."""
        event: dict[str, Any] = {
            "operation": self.operation,
            "table": self.table,
            "batch": int(batch),
            "first_row": int(pc.min(positions).as_py()) if len(positions) else None,
            "last_row": int(pc.max(positions).as_py()) if len(positions) else None,
            "rows": int(counts.total),
            "inserted": int(counts.inserted),
            "updated": int(counts.updated),
            "skipped": int(counts.skipped),
            "key_range": self._key_range(table),
        }
        if self.in_transaction is not None:
            event["committed_at"] = _now()
            self.in_transaction(conn, json.dumps(self._shape(event), default=str))
        with self._lock:
            self._pending.setdefault(threading.get_ident(), []).append(event)

    def committed(self) -> None:
        """The writing thread's transaction committed: deliver its events."""
        with self._lock:
            events = self._pending.pop(threading.get_ident(), [])
        for event in events:
            if self.after_commit is not None:
                event["committed_at"] = _now()
                try:
                    self.after_commit(self._shape(event))
                except Exception as exc:
                    raise EventError(
                        f"the event of committed batch {event['batch']} of {self.table} could not be "
                        f"published ({exc}); the batch stays committed"
                    ) from exc
            self.published += 1

    def discard(self) -> None:
        """The writing thread's transaction rolled back: its events never happened."""
        with self._lock:
            self._pending.pop(threading.get_ident(), None)

    # -- shaping ------------------------------------------------------------------------------
    def _key_range(self, table: pa.Table) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for key in self.keys:
            if key in table.column_names and table.num_rows:
                bounds = pc.min_max(table.column(key))
                out[key] = [_plain(bounds["min"].as_py()), _plain(bounds["max"].as_py())]
        return out

    def _shape(self, event: dict[str, Any]) -> dict[str, Any]:
        if self.options.event_format == "json":
            return dict(event)
        return {
            "specversion": "1.0",
            "id": uuid.uuid4().hex,
            "source": f"bulkframe/{self.table}",
            "type": f"bulkframe.{self.operation}.batch_committed",
            "subject": self.table,
            "time": event["committed_at"],
            "datacontenttype": "application/json",
            "data": dict(event),
        }


def _redis_sink(url: str, stream: str) -> Callable[[dict[str, Any]], None]:
    try:
        import redis
    except ImportError as exc:
        raise MissingDependencyError(
            "event_sink='redis://…' needs the redis package. Install with: pip install 'bulkframe[redis]'"
        ) from exc
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise EventError(
            f"event_sink {url}: the Redis server does not answer ({exc}); nothing was written"
        ) from exc

    def xadd(event: dict[str, Any]) -> None:
        client.xadd(stream, {"event": json.dumps(event, default=str)})

    return xadd
