"""The backend contract.  The base class owns the shared algorithm steps (create, stage,
merge from stage, translate errors); subclasses supply only database-specific hooks:
``_connect_raw``, ``reflect``, ``ddl_type``, ``to_ingest``, ``read_cast`` and the SQLSTATE
table.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa
import sqlalchemy as sa

from bulkframe.backends.capabilities import Capabilities
from bulkframe.backends.connection import Connection
from bulkframe.errors import (
    DatabaseError,
    DataError,
    IntegrityError,
    TransientError,
)
from bulkframe.types import Column

log = logging.getLogger("bulkframe")

_SA_TYPES: dict[str, Any] = {
    "int16": sa.SmallInteger(),
    "int32": sa.Integer(),
    "int64": sa.BigInteger(),
    "float32": sa.Float(),
    "float64": sa.Double(),
    "decimal": sa.Numeric(),
    "bool": sa.Boolean(),
    "text": sa.Text(),
    "date": sa.Date(),
    "time": sa.Time(),
    "timestamp": sa.DateTime(),
    "timestamptz": sa.DateTime(timezone=True),
    "json": sa.Text(),
    "uuid": sa.Text(),
    "binary": sa.LargeBinary(),
}

#: SQLSTATE classes/codes that a retry may cure.
TRANSIENT_SQLSTATES = ("08", "40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300")


@dataclass(frozen=True)
class TableRef:
    """A table name, taken literally (never split on dots), and an optional schema."""

    name: str
    schema: str | None = None

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


class Backend:
    """Base of every database backend."""

    capabilities: ClassVar[Capabilities]
    dialect: sa.Dialect

    def __init__(self, url: str):
        self.url = url

    # -- hooks ---------------------------------------------------------------------
    def _connect_raw(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def reflect(self, conn: Connection, ref: TableRef) -> list[Column] | None:  # pragma: no cover
        """The table's columns, or ``None`` when it does not exist."""
        raise NotImplementedError

    def ddl_type(self, column: Column) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_ingest(self, table: pa.Table, columns: dict[str, Column]) -> pa.Table:
        """Convert bulkframe's logical Arrow types to what the bulk path accepts."""
        return table

    def read_cast(self, table: pa.Table, columns: dict[str, Column]) -> pa.Table:
        """Cast a table read from the database back to bulkframe's logical types."""
        return table

    def sqlstate_of(self, exc: BaseException) -> str | None:
        state = getattr(exc, "sqlstate", None)
        return str(state) if state else None

    # -- connections -------------------------------------------------------------
    def connect(self) -> Connection:
        try:
            raw = self._connect_raw()
        except Exception as exc:
            raise self.translate_error(exc, "connect") from exc
        return Connection(self, raw)

    def translate_error(self, exc: BaseException, context: str) -> DatabaseError:
        """Map a driver error to bulkframe's tree, by SQLSTATE first."""
        if isinstance(exc, DatabaseError):
            return exc
        state = self.sqlstate_of(exc)
        message = f"{type(exc).__name__}: {exc}".strip()
        first_line = message.splitlines()[0] if message else type(exc).__name__
        text = f"{first_line} (during {context[:200]})"
        if state and (state.startswith(TRANSIENT_SQLSTATES) or state in TRANSIENT_SQLSTATES):
            return TransientError(text, sqlstate=state)
        if state and state.startswith("23"):
            return IntegrityError(text, sqlstate=state)
        if state and state.startswith("22"):
            return DataError(text, sqlstate=state)
        if self.is_transient(exc):
            return TransientError(text, sqlstate=state)
        return DatabaseError(text, sqlstate=state)

    def is_transient(self, exc: BaseException) -> bool:
        """Driver-specific transient errors that carry no SQLSTATE (connection gone)."""
        text = str(exc).lower()
        return any(
            s in text
            for s in ("server closed the connection", "connection refused", "terminating connection",
                      "no connection to the server", "database is locked", "could not connect")
        )

    # -- SQL building ----------------------------------------------------------------
    def quote(self, identifier: str) -> str:
        return str(self.dialect.identifier_preparer.quote_identifier(identifier))

    def qualified(self, ref: TableRef) -> str:
        name = self.quote(ref.name)
        return f"{self.quote(ref.schema)}.{name}" if ref.schema else name

    def sa_table(self, ref: TableRef, columns: Sequence[Column]) -> sa.Table:
        """A Core ``Table`` for building statements (never used to emit DDL)."""
        meta = sa.MetaData()
        return sa.Table(
            ref.name,
            meta,
            *(sa.Column(c.name, _SA_TYPES[c.kind], primary_key=c.primary_key, quote=True) for c in columns),
            schema=ref.schema,
            quote=True,
        )

    def create_table_sql(self, ref: TableRef, columns: Sequence[Column], *, temporary: bool = False) -> str:
        parts = [
            f"{self.quote(c.name)} {self.ddl_type(c)}{'' if c.nullable or temporary else ' NOT NULL'}"
            for c in columns
        ]
        keys = [c.name for c in columns if c.primary_key]
        if keys and not temporary:
            parts.append(f"PRIMARY KEY ({', '.join(self.quote(k) for k in keys)})")
        prefix = "CREATE TEMPORARY TABLE" if temporary else "CREATE TABLE"
        return f"{prefix} {self.qualified(ref)} ({', '.join(parts)})"

    def create_table(self, conn: Connection, ref: TableRef, columns: Sequence[Column]) -> None:
        log.info("creating table %s with %d columns", ref, len(columns))
        conn.run(self.create_table_sql(ref, columns))

    def create_stage(self, conn: Connection, columns: Sequence[Column]) -> TableRef:
        """A session-private staging table with the given columns' types."""
        ref = TableRef(f"_bf_stage_{uuid.uuid4().hex[:12]}")
        conn.run(self.create_table_sql(ref, columns, temporary=True))
        return ref

    def drop_table(self, conn: Connection, ref: TableRef) -> None:
        conn.run(f"DROP TABLE IF EXISTS {self.qualified(ref)}")

    def ingest_stage(self, conn: Connection, stage: TableRef, data: pa.Table) -> int:
        return conn.ingest(stage, data, temporary=True)
