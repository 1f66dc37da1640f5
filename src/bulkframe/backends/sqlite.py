"""SQLite, the embedded default: ADBC sqlite ingest inside one transaction."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from bulkframe.backends.base import Backend, ForeignKey, TableRef
from bulkframe.backends.capabilities import Capabilities
from bulkframe.backends.connection import Connection
from bulkframe.errors import DatabaseError, NotSupportedError
from bulkframe.types import Column

#: Declared types bulkframe writes; read back by name (SQLite keeps the declared text).
_DDL = {
    "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT", "float32": "REAL",
    "float64": "DOUBLE", "bool": "BOOLEAN", "text": "TEXT", "date": "DATE", "time": "TIME",
    "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ", "json": "JSON", "uuid": "UUID_TEXT",
    "binary": "BLOB",
}

#: REAL keeps 15 significant digits; wider decimals are stored as exact text.
MAX_REAL_DECIMAL = 15

_DECL = re.compile(r"^\s*([A-Z_ ]+?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")


def kind_of_declared(declared: str) -> tuple[str, int | None, int | None]:
    """Map a declared SQLite column type to ``(kind, precision_or_length, scale)``."""
    m = _DECL.match(declared.upper())
    base, a, b = (m.group(1).strip(), m.group(2), m.group(3)) if m else (declared.upper(), None, None)
    p = int(a) if a else None
    s = int(b) if b else None
    if base in ("DECIMAL_TEXT", "NUMERIC", "DECIMAL"):
        return "decimal", p, s if s is not None else (0 if p else None)
    table = {
        "SMALLINT": "int16", "INT2": "int16", "TINYINT": "int16", "INTEGER": "int64", "INT": "int64",
        "BIGINT": "int64", "INT8": "int64", "MEDIUMINT": "int32", "REAL": "float64",
        "FLOAT": "float64", "DOUBLE": "float64", "DOUBLE PRECISION": "float64",
        "BOOLEAN": "bool", "BOOL": "bool", "DATE": "date", "TIME": "time", "DATETIME": "timestamp",
        "TIMESTAMP": "timestamp", "TIMESTAMPTZ": "timestamptz", "JSON": "json", "JSONB": "json",
        "UUID_TEXT": "uuid", "UUID": "uuid", "BLOB": "binary", "BYTEA": "binary",
    }
    if base in table:
        return table[base], None, None
    if "CHAR" in base or "TEXT" in base or "CLOB" in base or base == "":
        return "text", p, None
    return "text", None, None


#: SQLite reports errors as text; map them to the SQLSTATE a server would send.
_SQLSTATE_BY_MESSAGE = (
    ("UNIQUE constraint failed", "23505"),
    ("PRIMARY KEY constraint failed", "23505"),
    ("NOT NULL constraint failed", "23502"),
    ("CHECK constraint failed", "23514"),
    ("FOREIGN KEY constraint failed", "23503"),
    ("database is locked", "55P03"),
    ("database table is locked", "55P03"),
    ("datatype mismatch", "22000"),
    ("integer overflow", "22003"),
)


class SQLiteBackend(Backend):
    """SQLite through adbc-driver-sqlite."""

    capabilities = Capabilities(
        integer_overflow_is_error=False,
        upsert="on_conflict",
        merge=False,
        returning=True,
        temp_tables=True,
        max_bind_params=32_766,
        bulk_path="adbc_ingest",
        transactional_ddl=True,
        concurrent_writers=False,
        max_exact_decimal_precision=MAX_REAL_DECIMAL,
        update_from=True,
        aggregate_filter=True,
        upsert_counts="pre_count",
        modified_count="execute_update",
        select_for_update=False,
    )
    dialect = sqlite.dialect()

    def __init__(self, url: str):
        super().__init__(url)
        rest = url.split("://", 1)[1]
        path = rest[1:] if rest.startswith("/") else rest  # sqlite:////abs → /abs
        self.path = path.split("?", 1)[0] or ":memory:"
        if self.path == ":memory:":
            raise NotSupportedError(
                "in-memory SQLite is not supported: every bulkframe operation opens its own "
                "connection and would see an empty database; use a file, e.g. sqlite:///data.db"
            )

    #: ADBC SQLite infers each result column's type from the first batch; make that
    #: batch the whole result so a column that starts with NULLs is typed by its values.
    read_options: ClassVar[dict[str, str]] = {"adbc.sqlite.query.batch_rows": "100000000"}

    def read_column(self, column: sa.ColumnElement[Any], kind: Column) -> sa.ColumnElement[Any]:
        """SQLite stores a storage class per value; cast so one column has one type."""
        if kind.kind == "binary":
            return column
        if kind.kind in ("int16", "int32", "int64", "bool"):
            target: Any = sa.Integer()
        elif kind.kind in ("float32", "float64") or (kind.kind == "decimal" and not self._exact_text(kind)):
            target = sa.Float()
        else:
            target = sa.Text()
        return sa.cast(column, target).label(kind.name)

    def set_user_triggers(self, conn: Connection, ref: TableRef, *, enabled: bool) -> None:
        """SQLite cannot switch triggers off, but its DDL is transactional: drop the table's
        triggers inside the write transaction and re-create them from their stored SQL before
        it commits (a rollback restores them too; no other writer can run meanwhile)."""
        saved: dict[str, list[str]] = conn.__dict__.setdefault("_bf_triggers", {})
        key = str(ref)
        if not enabled:
            rows = conn.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?",
                                 (ref.name,))
            saved[key] = [sql for _, sql in rows]
            for name, _ in rows:
                conn.run(f"DROP TRIGGER {self.quote(name)}")
        else:
            for sql in saved.pop(key, []):
                conn.run(sql)

    def sqlstate_of(self, exc: BaseException) -> str | None:
        text = str(exc)
        for fragment, state in _SQLSTATE_BY_MESSAGE:
            if fragment in text:
                return state
        return super().sqlstate_of(exc)

    def _connect_raw(self) -> Any:
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = adbc_sqlite.connect(self.path)
        cur = conn.cursor()
        cur.execute("PRAGMA busy_timeout = 30000")
        cur.close()
        return conn

    def reflect(self, conn: Connection, ref: TableRef) -> list[Column] | None:
        if ref.schema is not None:
            rows = conn.fetchall("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?, ?)",
                                 (ref.name, ref.schema))
        else:
            rows = conn.fetchall("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?)",
                                 (ref.name,))
        if not rows:
            return None
        columns = []
        int_pk = sum(1 for r in rows if r[4]) == 1
        for name, declared, notnull, default, pk in rows:
            kind, p, s = kind_of_declared(declared or "")
            rowid_alias = bool(pk) and int_pk and (declared or "").upper() == "INTEGER"
            columns.append(Column(
                # NULL into a rowid alias means "assign the next id"
                name, kind, nullable=(not notnull and not pk) or rowid_alias, primary_key=bool(pk),
                precision=p if kind == "decimal" else None,
                scale=s if kind == "decimal" else None,
                length=p if kind == "text" else None,
                has_default=default is not None or rowid_alias,
            ))
        return columns

    def _pragma(self, name: str, ref: TableRef, columns: str) -> str:
        """``SELECT columns FROM pragma_<name>(?[, schema])``; arguments are bound."""
        return f"SELECT {columns} FROM pragma_{name}(?{', ?' if ref.schema else ''})"

    def _args(self, ref: TableRef, name: str | None = None) -> tuple[str, ...]:
        first = name if name is not None else ref.name
        return (first, ref.schema) if ref.schema else (first,)

    def foreign_keys(self, conn: Connection, ref: TableRef) -> list[ForeignKey]:
        rows = conn.fetchall(self._pragma("foreign_key_list", ref, 'id, seq, "table", "from", "to"'),
                             self._args(ref))
        grouped: dict[int, list[tuple[int, str, str, str | None]]] = {}
        for fk_id, seq, table, col, to in rows:
            grouped.setdefault(fk_id, []).append((seq, table, col, to))
        out = []
        for parts in grouped.values():
            parts.sort()
            refs = tuple(p[3] for p in parts if p[3] is not None)
            out.append(ForeignKey(tuple(p[2] for p in parts), parts[0][1], ref.schema,
                                  refs if len(refs) == len(parts) else ()))
        return out

    def unique_keys(self, conn: Connection, ref: TableRef) -> list[tuple[str, ...]]:
        keys: list[tuple[str, ...]] = []
        columns = self.reflect(conn, ref) or []
        pk = tuple(c.name for c in columns if c.primary_key)
        if pk:
            keys.append(pk)
        indexes = conn.fetchall(self._pragma("index_list", ref, 'name, "unique", partial'), self._args(ref))
        for name, unique, partial in indexes:
            if not unique or partial:
                continue
            cols = conn.fetchall(self._pragma("index_info", ref, "seqno, name"), self._args(ref, name))
            names = [c[1] for c in sorted(cols)]
            if names and all(n is not None for n in names):
                keys.append(tuple(names))
        return keys

    def begin_write(self, conn: Connection, ref: TableRef) -> None:
        # A no-op write as the transaction's first statement takes the RESERVED lock now,
        # waiting (busy_timeout) behind other writers; a read first would make the later
        # upgrade fail at once with "database is locked".
        with contextlib.suppress(DatabaseError):  # missing table: the caller's reflect reports it
            conn.run(f"DELETE FROM {self.qualified(ref)} WHERE 0")

    def ddl_type(self, column: Column) -> str:
        if column.kind == "decimal":
            p = column.precision or 38
            s = column.scale or 0
            name = "NUMERIC" if p <= MAX_REAL_DECIMAL else "DECIMAL_TEXT"
            return f"{name}({p},{s})"
        if column.kind == "text" and column.length:
            return f"VARCHAR({column.length})"
        if column.kind == "int64" and column.primary_key:
            return "INTEGER"  # a rowid alias: fast and auto-filled
        return _DDL[column.kind]

    def identity_type(self, column: Column) -> str:
        return "INTEGER"  # with the table's PRIMARY KEY: a rowid alias, numbered by SQLite

    def _exact_text(self, column: Column) -> bool:
        return (column.precision or 38) > MAX_REAL_DECIMAL

    def to_ingest(self, table: pa.Table, columns: dict[str, Column]) -> pa.Table:
        arrays = []
        for name in table.column_names:
            arr = table.column(name)
            col = columns[name]
            if col.kind == "decimal":
                arr = arr.cast(pa.string()) if self._exact_text(col) else arr.cast(pa.float64())
            elif col.kind == "time" or col.kind in ("json", "uuid", "text"):
                arr = arr.cast(pa.string())
            elif col.kind == "binary":
                arr = arr.cast(pa.binary())
            arrays.append(arr)
        return pa.table(arrays, names=table.column_names)

    def read_cast(self, table: pa.Table, columns: dict[str, Column]) -> pa.Table:
        from bulkframe.normalize.conform import conform

        arrays = []
        for name in table.column_names:
            arr = table.column(name)
            col = columns.get(name)
            if col is not None and col.kind == "decimal":
                if pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type):
                    arr = pc.round(arr.cast(pa.float64()), col.scale or 0).cast(pa.string())
                arr = arr.cast(pa.string())
            arrays.append(arr)
        out = pa.table(arrays, names=table.column_names)
        known = {n: columns[n] for n in out.column_names if n in columns}
        return conform(out, known, on_error="raise", table_name="(read)").table
