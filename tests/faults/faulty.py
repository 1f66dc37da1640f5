"""An in-process faulty DBAPI connection: the real ADBC connection of a backend, wrapped so a
test can make the Nth statement, an ingest (mid-stream) or a COMMIT fail the way the driver
would fail — an ``adbc_driver_manager`` error carrying the SQLSTATE — without mocking the
database: every statement that is not failed runs on the real server.

:func:`install` opens a :class:`bulkframe.Database` whose every connection (the first,
pooled ones and every reconnect) is wrapped; all of them share one :class:`Faults` plan
and its counters.

A fault either keeps the connection (``drop=False``: a serialization failure, a refused
statement; the transaction is left as the server left it, and it is bulkframe's job to roll
back) or loses it (``drop=True``: the server discards the open transaction — the wrapper
rolls the real one back — and every later statement, ingest, COMMIT or ROLLBACK on this
connection fails with the same connection error, as a dead libpq handle does; opening a
cursor and closing still work, as they do on a dead handle).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from adbc_driver_manager import AdbcStatusCode, dbapi

#: the error an ADBC driver raises for each SQLSTATE the tests inject
_DRIVER_ERRORS: dict[str, tuple[type[dbapi.Error], AdbcStatusCode, str]] = {
    "08006": (
        dbapi.OperationalError,
        AdbcStatusCode.IO,
        "IO: [injected] server closed the connection unexpectedly",
    ),
    "40001": (
        dbapi.OperationalError,
        AdbcStatusCode.UNKNOWN,
        "UNKNOWN: [injected] ERROR:  could not serialize access due to concurrent update",
    ),
    "23514": (
        dbapi.IntegrityError,
        AdbcStatusCode.INTEGRITY,
        'INTEGRITY: [injected] ERROR:  new row violates check constraint "injected"',
    ),
}


def driver_error(sqlstate: str) -> dbapi.Error:
    cls, status, message = _DRIVER_ERRORS[sqlstate]
    return cls(message, status_code=status, sqlstate=sqlstate)


@dataclass
class Fault:
    """Fail the ``nth`` (1-based) matching operation of ``kind``, and the ``times - 1``
    matching ones after it (``times=None``: every one from the ``nth`` on)."""

    kind: str  # "statement" | "ingest" | "commit"
    nth: int = 1
    times: int | None = 1
    sqlstate: str = "40001"
    drop: bool = False
    match: re.Pattern[str] | None = None  # statement SQL / ingest table name
    after_batches: int = 0  # ingest: record batches that reach the server first
    landed: bool = False  # commit: the server committed before the client saw the error
    when: Callable[[Any], bool] | None = None  # statement: a test on its bound parameters
    seen: int = 0
    fired: int = 0

    def hit(self, subject: str, params: Any = None) -> bool:
        if self.match is not None and not self.match.search(subject):
            return False
        if self.when is not None and not self.when(params):
            return False
        self.seen += 1
        last = None if self.times is None else self.nth + self.times - 1
        if self.seen >= self.nth and (last is None or self.seen <= last):
            self.fired += 1
            return True
        return False


@dataclass
class Refusal:
    """An ingest whose data holds one of ``values`` in ``column`` is refused with
    ``sqlstate`` (as the server refuses a COPY holding a row that breaks a constraint);
    batches streamed before the first refused one reach the server."""

    column: str
    values: pa.Array
    sqlstate: str = "23514"
    fired: int = 0

    def hits(self, batch: pa.RecordBatch) -> bool:
        return bool(pc.any(pc.is_in(batch.column(self.column), value_set=self.values)).as_py())


@dataclass
class Faults:
    """The plan shared by every wrapped connection of one backend, with counters."""

    faults: list[Fault] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    connects: int = 0
    statements: list[tuple[str, Any]] = field(default_factory=list)  # (SQL, bound parameters)
    ingests: list[tuple[str, int]] = field(default_factory=list)  # (table, rows that reached the server)
    commits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- arming --------------------------------------------------------------------------
    def fail_statement(
        self,
        *,
        nth: int = 1,
        match: str | None = None,
        when: Callable[[Any], bool] | None = None,
        times: int | None = 1,
        sqlstate: str = "40001",
        drop: bool = False,
    ) -> Fault:
        """Fail the ``nth`` statement (of those whose SQL matches the regex ``match`` and
        whose bound parameters pass ``when``, if given)."""
        return self._arm(Fault("statement", nth, times, sqlstate, drop, _regex(match), when=when))

    def fail_ingest(
        self,
        *,
        nth: int = 1,
        after_batches: int = 0,
        match: str | None = None,
        times: int | None = 1,
        sqlstate: str = "08006",
        drop: bool = True,
    ) -> Fault:
        """Fail the ``nth`` bulk ingest (into a table matching ``match``) after
        ``after_batches`` record batches of it were consumed and sent to the server."""
        return self._arm(
            Fault("ingest", nth, times, sqlstate, drop, _regex(match), after_batches=after_batches)
        )

    def fail_commit(
        self,
        *,
        nth: int = 1,
        landed: bool = False,
        times: int | None = 1,
        sqlstate: str = "08006",
        drop: bool = True,
    ) -> Fault:
        """Fail the ``nth`` COMMIT of a transaction that ingested rows.  ``landed=True``:
        the server commits, then the connection drops before the client hears of it (the
        "did it land?" case); ``landed=False``: the connection drops before the COMMIT
        reaches the server, which rolls the transaction back."""
        return self._arm(Fault("commit", nth, times, sqlstate, drop, landed=landed))

    def refuse_rows(self, column: str, values: Iterable[Any], *, sqlstate: str = "23514") -> Refusal:
        refusal = Refusal(column, pa.array(list(values)), sqlstate)
        with self.lock:
            self.refusals.append(refusal)
        return refusal

    def _arm(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def take(self, kind: str, subject: str, params: Any = None) -> Fault | None:
        """The armed fault this operation triggers, if any (every matching fault counts it)."""
        with self.lock:
            fired = [f for f in self.faults if f.kind == kind and f.hit(subject, params)]
        return fired[0] if fired else None

    @property
    def fired(self) -> int:
        return sum(f.fired for f in self.faults) + sum(r.fired for r in self.refusals)


def _regex(match: str | None) -> re.Pattern[str] | None:
    return re.compile(match, re.IGNORECASE) if match is not None else None


class FaultyConnection:
    """A DBAPI connection that forwards to the real one until a fault fires."""

    def __init__(self, raw: Any, faults: Faults):
        self._raw = raw
        self._faults = faults
        self._lost: str | None = None  # the SQLSTATE the connection was lost with
        self._closed = False
        self._ingested = False  # rows were ingested since the last COMMIT/ROLLBACK

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def check(self) -> None:
        if self._lost is not None:
            raise driver_error(self._lost)

    def fail(self, sqlstate: str, *, drop: bool) -> dbapi.Error:
        """The error to raise; with ``drop`` the connection is lost first."""
        if drop and self._lost is None:
            self._lost = sqlstate
            self._raw.rollback()  # the server ends the session: its open transaction is gone
        return driver_error(sqlstate)

    def cursor(self) -> FaultyCursor:
        return FaultyCursor(self._raw.cursor(), self)

    def commit(self) -> None:
        self.check()
        fault = self._faults.take("commit", "COMMIT") if self._ingested else None
        if fault is None:
            self._raw.commit()
            self._ingested = False
            with self._faults.lock:
                self._faults.commits += 1
            return
        if fault.landed:
            self._raw.commit()
            with self._faults.lock:
                self._faults.commits += 1
        elif not fault.drop:
            self._raw.rollback()  # the server refused the COMMIT and rolled back
        self._ingested = False
        raise self.fail(fault.sqlstate, drop=fault.drop)

    def rollback(self) -> None:
        self.check()
        self._ingested = False
        self._raw.rollback()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._raw.close()


class FaultyCursor:
    def __init__(self, raw: Any, conn: FaultyConnection):
        self._raw = raw
        self._conn = conn
        self._closed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    @property
    def adbc_statement(self) -> FaultyStatement:
        return FaultyStatement(self._raw.adbc_statement, self)

    def statement(self, sql: str, params: Any = None) -> None:
        """Count one statement; raise if a fault fires for it."""
        self._conn.check()
        faults = self._conn._faults
        with faults.lock:
            faults.statements.append((sql, params))
        fault = faults.take("statement", sql, params)
        if fault is not None:
            self.close()
            raise self._conn.fail(fault.sqlstate, drop=fault.drop)

    def execute(self, operation: str, parameters: Any = None, **kwargs: Any) -> Any:
        self.statement(operation, parameters)
        return self._raw.execute(operation, parameters, **kwargs)

    def executemany(self, operation: str, seq_of_parameters: Any, **kwargs: Any) -> Any:
        self.statement(operation, seq_of_parameters)
        return self._raw.executemany(operation, seq_of_parameters, **kwargs)

    def adbc_ingest(self, table_name: str, data: Any, mode: str = "create", **kwargs: Any) -> Any:
        conn = self._conn
        conn.check()
        faults = conn._faults
        fault = faults.take("ingest", table_name)
        with faults.lock:
            refusals = list(faults.refusals)
        if fault is None and not refusals:
            count = self._raw.adbc_ingest(table_name, data, mode=mode, **kwargs)
            conn._ingested = True
            with faults.lock:
                faults.ingests.append((table_name, int(data.num_rows) if isinstance(data, pa.Table) else -1))
            return count
        schema = data.schema
        source: Iterator[pa.RecordBatch] = iter(data.to_batches() if isinstance(data, pa.Table) else data)
        sent: list[pa.RecordBatch] = []
        failure: tuple[str, bool] | None = None
        while failure is None:
            if fault is not None and len(sent) == fault.after_batches:
                failure = (fault.sqlstate, fault.drop)
                break
            batch = next(source, None)  # consumed from the caller's stream, as the driver would
            if batch is None:
                break
            refused = next((r for r in refusals if r.hits(batch)), None)
            if refused is not None:
                refused.fired += 1
                failure = (refused.sqlstate, False)
                break
            sent.append(batch)
        rows = sum(b.num_rows for b in sent)
        if sent or failure is None:  # what got through reaches the server, inside the transaction
            self._raw.adbc_ingest(
                table_name, pa.RecordBatchReader.from_batches(schema, sent), mode=mode, **kwargs
            )
            conn._ingested = True
        with faults.lock:
            faults.ingests.append((table_name, rows))
        if failure is None:
            return rows
        self.close()
        raise conn.fail(failure[0], drop=failure[1])

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._raw.close()


class FaultyStatement:
    """``cursor.adbc_statement`` (bulkframe runs some updates through ``execute_update``)."""

    def __init__(self, raw: Any, cursor: FaultyCursor):
        self._raw = raw
        self._cursor = cursor
        self._sql = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def set_sql_query(self, query: str) -> None:
        self._sql = query
        self._raw.set_sql_query(query)

    def execute_update(self) -> int:
        self._cursor.statement(self._sql)
        return int(self._raw.execute_update())


def install(url: str, monkeypatch: Any) -> tuple[Any, Faults]:
    """A new :class:`bulkframe.Database` for ``url`` whose every connection (the first, the
    pooled ones and every reconnect) is wrapped, and the plan they share.

    The backend class's ``_connect_raw`` is patched for this test (``monkeypatch``) before
    the Database exists (its pool takes the connect function when it is made); only this
    Database's backend instance carries the plan, so other Databases in the test (fixtures,
    set-up, the independent reads) are untouched.
    """
    import bulkframe as bf
    from bulkframe.backends.registry import load_backend

    cls = type(load_backend(url))
    real: Callable[[Any], Any] = cls._connect_raw
    faults = Faults()

    def connect_raw(self: Any) -> Any:
        raw = real(self)
        plan: Faults | None = self.__dict__.get("_bf_faults")
        if plan is None:
            return raw
        with plan.lock:
            plan.connects += 1
        return FaultyConnection(raw, plan)

    monkeypatch.setattr(cls, "_connect_raw", connect_raw)
    db = bf.connect(url)
    db.backend._bf_faults = faults
    return db, faults
