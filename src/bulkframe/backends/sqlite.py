"""SQLite, the embedded default: ADBC sqlite ingest inside one transaction."""

from __future__ import annotations

import contextlib
import decimal
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from bulkframe.backends.base import Backend, ForeignKey, TableRef
from bulkframe.backends.capabilities import Capabilities
from bulkframe.backends.connection import Connection
from bulkframe.errors import DatabaseError, DataError
from bulkframe.portable_sql import CaseSensitiveLike, ExactInteger, Floor, PortableCast
from bulkframe.types import Column

#: Declared types bulkframe writes: the conventional names other readers know (SQLAlchemy
#: reflection, pandas, Polars, ``sqlite3`` with ``PARSE_DECLTYPES``, DuckDB's sqlite scanner).
#: Where the name cannot tell bulkframe's kind apart (timestamptz vs timestamp, uuid/json vs
#: text, wide decimals), a marker comment follows it; SQLite keeps the ``CREATE TABLE`` text
#: verbatim, comments included, and :func:`column_markers` reads it back.
_DDL = {
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float32": "REAL",
    "float64": "DOUBLE",
    "bool": "BOOLEAN",
    "text": "TEXT",
    "date": "DATE",
    # TIME has NUMERIC affinity and DuckDB reads it as TIMESTAMP (then fails on "12:34:56");
    # TIME_CHAR has TEXT affinity, SQLAlchemy reflects it as TIME, DuckDB as VARCHAR.
    "time": "TIME_CHAR",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMP /* bulkframe:timestamptz */",
    # TEXT affinity: a JSON document such as 1.50 must not become the REAL 1.5
    "json": "TEXT /* bulkframe:json */",
    "uuid": "TEXT /* bulkframe:uuid */",
    "binary": "BLOB",
}

#: REAL keeps 15 significant digits; wider decimals are stored as exact text.
MAX_REAL_DECIMAL = 15

#: ``YYYY-MM-DD HH:MM:SS.ffffff``: the text Python's ``sqlite3`` and SQLAlchemy write and
#: parse, with a fixed fraction so text order is time order.  Timestamptz values are stored
#: as their UTC wall time, without an offset (``sqlite3``'s converter cannot parse one).
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

_DECL = re.compile(r"^\s*([A-Z_ ]+?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")
_MARKER = re.compile(r"/\*\s*bulkframe:([a-z]+)(?:\((\d+),(\d+)\))?\s*\*/")


def kind_of_declared(declared: str) -> tuple[str, int | None, int | None]:
    """Map a declared SQLite column type to ``(kind, precision_or_length, scale)``.

    Also reads the names earlier bulkframe versions declared (``TIMESTAMPTZ``,
    ``DECIMAL_TEXT(p,s)``, ``UUID_TEXT``)."""
    m = _DECL.match(declared.upper())
    base, a, b = (m.group(1).strip(), m.group(2), m.group(3)) if m else (declared.upper(), None, None)
    p = int(a) if a else None
    s = int(b) if b else None
    if base in ("DECIMAL_TEXT", "NUMERIC", "DECIMAL"):
        return "decimal", p, s if s is not None else (0 if p else None)
    table = {
        "SMALLINT": "int16",
        "INT2": "int16",
        "TINYINT": "int16",
        "INTEGER": "int64",
        "INT": "int64",
        "BIGINT": "int64",
        "INT8": "int64",
        "MEDIUMINT": "int32",
        "REAL": "float64",
        "FLOAT": "float64",
        "DOUBLE": "float64",
        "DOUBLE PRECISION": "float64",
        "BOOLEAN": "bool",
        "BOOL": "bool",
        "DATE": "date",
        "DATE_CHAR": "date",
        "TIME": "time",
        "TIME_CHAR": "time",
        "DATETIME": "timestamp",
        "DATETIME_CHAR": "timestamp",
        "TIMESTAMP": "timestamp",
        "TIMESTAMPTZ": "timestamptz",
        "JSON": "json",
        "JSONB": "json",
        "UUID_TEXT": "uuid",
        "UUID": "uuid",
        "BLOB": "binary",
        "BYTEA": "binary",
    }
    if base in table:
        return table[base], None, None
    if "CHAR" in base or "TEXT" in base or "CLOB" in base or base == "":
        return "text", p, None
    return "text", None, None


def column_markers(create_sql: str) -> dict[str, tuple[str, int | None, int | None]]:
    """``{column: (kind, precision, scale)}`` from the ``/* bulkframe:kind */`` comments in a
    ``CREATE TABLE`` statement as SQLite stores it.

    A small tokenizer, not a regular expression over the whole text: quoted identifiers,
    string literals and nested parentheses may hold anything, including ``,`` and ``/*``."""
    out: dict[str, tuple[str, int | None, int | None]] = {}
    i, n, depth = 0, len(create_sql), 0
    name: str | None = None
    first = True  # at the first token of a column definition
    closers = {'"': '"', "`": "`", "[": "]", "'": "'"}
    while i < n:
        ch = create_sql[i]
        if ch in closers:
            end, close = i + 1, closers[ch]
            while end < n:
                if create_sql[end] == close:
                    if close != "]" and end + 1 < n and create_sql[end + 1] == close:  # doubled quote
                        end += 2
                        continue
                    break
                end += 1
            if depth == 1 and first and ch != "'":
                name = (
                    create_sql[i + 1 : end].replace(close * 2, close)
                    if close != "]"
                    else create_sql[i + 1 : end]
                )
                first = False
            i = end + 1
        elif create_sql.startswith("/*", i):
            end = create_sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            m = _MARKER.fullmatch(create_sql, i, end)
            if m and depth == 1 and name is not None:
                out[name] = (
                    m.group(1),
                    int(m.group(2)) if m.group(2) else None,
                    int(m.group(3)) if m.group(3) else None,
                )
            i = end
        elif create_sql.startswith("--", i):
            end = create_sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch == "(":
            depth += 1
            if depth == 1:
                first, name = True, None
            i += 1
        elif ch == ")":
            depth -= 1
            i += 1
        elif ch == "," and depth == 1:
            first, name = True, None
            i += 1
        elif ch.isspace():
            i += 1
        else:
            end = i
            while end < n and (
                create_sql[end].isalnum() or create_sql[end] in "_$" or ord(create_sql[end]) > 127
            ):
                end += 1
            end = max(end, i + 1)
            if depth == 1 and first:
                word = create_sql[i:end]
                # a table constraint is not a column
                if word.upper() not in ("CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"):
                    name = word
                first = False
            i = end
    return out


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


def decimal_text(value: Any, scale: int) -> Any:
    """A number as the text a wide decimal column of ``scale`` holds (``12.500000``), as
    Arrow writes it; a value with more fractional digits than ``scale`` keeps them (it
    equals no stored value); anything else is returned unchanged."""
    if isinstance(value, bool) or not isinstance(value, decimal.Decimal | int | float):
        return value
    number = decimal.Decimal(repr(value)) if isinstance(value, float) else decimal.Decimal(value)
    if not number.is_finite():
        return str(number)
    exp = decimal.Decimal(1).scaleb(-scale)
    with decimal.localcontext() as ctx:  # (prec= as a keyword needs Python 3.11)
        ctx.prec = max(40, len(number.as_tuple().digits) + scale + 2)
        quantized = number.quantize(exp)
        text = f"{abs(quantized) if quantized == 0 else quantized:f}"
        return text if quantized == number else f"{number.normalize():f}"


def _quantize(value: Any, scale: int, rounding: str) -> str:
    number = decimal.Decimal(repr(value)) if isinstance(value, float) else decimal.Decimal(value)
    with decimal.localcontext() as ctx:
        ctx.prec = max(40, len(number.as_tuple().digits) + scale + 2)
        quantized = number.quantize(decimal.Decimal(1).scaleb(-scale), rounding=rounding)
    return f"{abs(quantized) if quantized == 0 else quantized:f}"


class TextDecimal(sa.types.TypeDecorator[Any]):
    """A decimal wider than a REAL, stored as exact text at a fixed scale (``-12.500000``).

    Values bind as that text, so ``=`` and ``IN`` compare exactly.  ``<``/``>`` against a
    number compare numerically, still exactly: canonical texts of one scale order by sign,
    then length, then characters; the bound is moved to the column's scale in the
    direction that keeps the comparison's meaning (``col < 1.0000005`` ⇔ ``col < 1.000001``).
    Values stored as numbers (a user-declared ``NUMERIC(20,8)`` has NUMERIC affinity)
    compare as numbers."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        return decimal_text(value, self.scale)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        return value

    class comparator_factory(sa.types.TypeDecorator.Comparator[Any]):
        def _ordered(self, op: str, other: Any) -> Any:
            if isinstance(other, bool) or not isinstance(other, decimal.Decimal | int | float):
                return None
            number = decimal.Decimal(repr(other)) if isinstance(other, float) else decimal.Decimal(other)
            if not number.is_finite():
                return None
            scale: int = getattr(self.type, "scale", 0)
            # strict < and non-strict >= keep their meaning with the bound rounded up;
            # <= and > with it rounded down
            rounding = decimal.ROUND_CEILING if op in ("<", ">=") else decimal.ROUND_FLOOR
            bound = _quantize(number, scale, rounding)
            col = self.expr
            lit = sa.literal(bound, sa.Text())
            less = op in ("<", "<=")
            strict = op in ("<", ">")
            length, blen = sa.func.length(col), len(bound)
            neg = col.like("-%")
            cmp = (col < lit if strict else col <= lit) if less else (col > lit if strict else col >= lit)
            rev = (col > lit if strict else col >= lit) if less else (col < lit if strict else col <= lit)
            same_len = length == blen
            if not bound.startswith("-"):  # bound ≥ 0: magnitudes of non-negative texts
                mag = (
                    sa.or_(length < blen, sa.and_(same_len, cmp))
                    if less
                    else sa.or_(length > blen, sa.and_(same_len, cmp))
                )
                text_cmp = sa.or_(neg, mag) if less else sa.and_(sa.not_(neg), mag)
            else:  # bound < 0: among negative texts a larger magnitude is a smaller number
                mag = (
                    sa.or_(length > blen, sa.and_(same_len, rev))
                    if less
                    else sa.or_(length < blen, sa.and_(same_len, rev))
                )
                text_cmp = sa.and_(neg, mag) if less else sa.or_(sa.not_(neg), mag)
            numeric = {"<": col < lit, "<=": col <= lit, ">": col > lit, ">=": col >= lit}[op]
            return sa.case((sa.func.typeof(col) == "text", text_cmp), else_=numeric)

        def __lt__(self, other: Any) -> Any:
            expr = self._ordered("<", other)
            return super().__lt__(other) if expr is None else expr

        def __le__(self, other: Any) -> Any:
            expr = self._ordered("<=", other)
            return super().__le__(other) if expr is None else expr

        def __gt__(self, other: Any) -> Any:
            expr = self._ordered(">", other)
            return super().__gt__(other) if expr is None else expr

        def __ge__(self, other: Any) -> Any:
            expr = self._ordered(">=", other)
            return super().__ge__(other) if expr is None else expr


class SQLiteBackend(Backend):
    """SQLite through adbc-driver-sqlite."""

    capabilities = Capabilities(
        upsert="on_conflict",
        concurrent_writers=False,
        regex=False,  # no REGEXP function unless the client registers one (ADBC does not)
        modified_count="execute_update",
        full_outer_join=True,
        select_for_update=False,
        schema_on_index_name=True,
        streamed_reads=False,
        # values of these kinds are stored as the one storage class exact_read_guard checks;
        # decimals, dates and times are text or REAL another writer may have spelled otherwise
        client_compare_kinds=frozenset({"int16", "int32", "int64", "float64", "text", "json"}),
    )
    dialect = sqlite.dialect()

    def __init__(self, url: str):
        super().__init__(url)
        rest = url.split("://", 1)[1]
        path = rest[1:] if rest.startswith("/") else rest  # sqlite:////abs → /abs
        self.path = path.split("?", 1)[0] or ":memory:"
        self._anchor: Any = None
        if self.path == ":memory:":
            # every pooled connection must see one database: a named database of SQLite's
            # in-process ``memdb`` VFS (ordinary locking, so busy_timeout applies), kept
            # alive by one idle anchor connection until the Database is closed
            self.path = f"file:/bulkframe-memory-{uuid.uuid4().hex}?vfs=memdb"
            self._anchor = self._connect_raw()

    @property
    def in_memory(self) -> bool:
        """Whether the database lives in this process's memory (``sqlite:///:memory:``)."""
        return self.path.startswith("file:/bulkframe-memory-")

    def close(self) -> None:
        """Drop the in-memory database's anchor: it is gone once its last connection closes."""
        anchor, self._anchor = self._anchor, None
        if anchor is not None:
            anchor.close()

    def upsert_insert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)

    #: ``DEFAULT`` clock values in the stored text format (:data:`TIMESTAMP_FORMAT`, UTC):
    #: SQLite's ``CURRENT_TIMESTAMP`` has no fraction, which would not compare as text with
    #: the microseconds every written value has.
    sql_default_tokens: ClassVar[Mapping[str, str]] = {
        ":current_timestamp": "(strftime('%Y-%m-%d %H:%M:%f000', 'now'))",
        ":current_date": "CURRENT_DATE",
    }

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

    def exact_read_guard(self, column: Any, kind: Column) -> sa.ColumnElement[bool] | None:
        """The value has the storage class the column's kind is read as (``read_column``
        casts, and a cast could make two stored values read alike)."""
        storage = _STORAGE_CLASS.get(kind.kind)
        if storage is None:
            return sa.false()
        return sa.func.typeof(column).in_([storage, "null"])

    def internal_table(self, name: str) -> bool:
        """``sqlite_sequence``, ``sqlite_stat1`` and the other ``sqlite_`` tables."""
        return name.startswith("sqlite_")

    def set_user_triggers(self, conn: Connection, ref: TableRef, *, enabled: bool) -> None:
        """SQLite cannot switch triggers off, but its DDL is transactional: drop the table's
        triggers inside the write transaction and re-create them from their stored SQL before
        it commits (a rollback restores them too; no other writer can run meanwhile)."""
        saved: dict[str, list[str]] = conn.__dict__.setdefault("_bf_triggers", {})
        key = str(ref)
        if not enabled:
            rows = conn.fetchall(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (ref.name,)
            )
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

        if not self.path.startswith("file:"):
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = adbc_sqlite.connect(self.path)
        try:
            # PRAGMA foreign_keys is a no-op inside a transaction, and the driver has one open
            # whenever autocommit is off: switch it on for the PRAGMAs, then off again
            conn.adbc_connection.set_autocommit(True)
            cur = conn.cursor()
            cur.execute("PRAGMA busy_timeout = 30000")
            cur.execute("PRAGMA foreign_keys = ON")  # declared foreign keys mean what they say
            cur.close()
            conn.adbc_connection.set_autocommit(False)
        except Exception:
            conn.close()
            raise
        return conn

    def reflect(self, conn: Connection, ref: TableRef) -> list[Column] | None:
        if ref.schema is not None:
            rows = conn.fetchall(
                'SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?, ?)',
                (ref.name, ref.schema),
            )
        else:
            rows = conn.fetchall(
                'SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?)', (ref.name,)
            )
        if not rows:
            return None
        # the CREATE TABLE text, for the /* bulkframe:kind */ markers (a temp table shadows a
        # main one of the same name, as in name resolution)
        masters = (
            [f"{self.quote(ref.schema)}.sqlite_master"]
            if ref.schema is not None
            else ["sqlite_temp_master", "sqlite_master"]
        )
        create = None
        for master in masters:
            create = conn.scalar(f"SELECT sql FROM {master} WHERE type = 'table' AND name = ?", (ref.name,))
            if create is not None:
                break
        markers = column_markers(create or "")
        columns = []
        int_pk = sum(1 for r in rows if r[4]) == 1
        for name, declared, notnull, default, pk in rows:
            kind, p, s = markers.get(name) or kind_of_declared(declared or "")
            rowid_alias = bool(pk) and int_pk and (declared or "").upper() == "INTEGER"
            columns.append(
                Column(
                    # NULL into a rowid alias means "assign the next id"
                    name,
                    kind,
                    nullable=(not notnull and not pk) or rowid_alias,
                    primary_key=bool(pk),
                    precision=p if kind == "decimal" else None,
                    scale=s if kind == "decimal" else None,
                    length=p if kind == "text" else None,
                    has_default=default is not None or rowid_alias,
                )
            )
        return columns

    def _pragma(self, name: str, ref: TableRef, columns: str) -> str:
        """``SELECT columns FROM pragma_<name>(?[, schema])``; arguments are bound."""
        return f"SELECT {columns} FROM pragma_{name}(?{', ?' if ref.schema else ''})"

    def _args(self, ref: TableRef, name: str | None = None) -> tuple[str, ...]:
        first = name if name is not None else ref.name
        return (first, ref.schema) if ref.schema else (first,)

    def foreign_keys(self, conn: Connection, ref: TableRef) -> list[ForeignKey]:
        rows = conn.fetchall(
            self._pragma("foreign_key_list", ref, 'id, seq, "table", "from", "to"'), self._args(ref)
        )
        grouped: dict[int, list[tuple[int, str, str, str | None]]] = {}
        for fk_id, seq, table, col, to in rows:
            grouped.setdefault(fk_id, []).append((seq, table, col, to))
        out = []
        for parts in grouped.values():
            parts.sort()
            refs = tuple(p[3] for p in parts if p[3] is not None)
            out.append(
                ForeignKey(
                    tuple(p[2] for p in parts),
                    parts[0][1],
                    ref.schema,
                    refs if len(refs) == len(parts) else (),
                )
            )
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
        # Take the RESERVED lock before anything is read, waiting (busy_timeout) behind
        # other writers (of this or another Database); a read first would make the later
        # upgrade fail at once with "database is locked".  The ADBC driver always holds a
        # deferred transaction open: on a fresh one (nothing ran yet) swap it for BEGIN
        # IMMEDIATE, which also works before the table exists.
        if conn.fresh:
            conn.run("ROLLBACK")
            conn.run("BEGIN IMMEDIATE")
            return
        with contextlib.suppress(DatabaseError):  # missing table: the caller's reflect reports it
            conn.run(f"DELETE FROM {self.qualified(ref)} WHERE 0")

    def ddl_type(self, column: Column) -> str:
        if column.kind == "decimal":
            p = column.precision or 38
            s = column.scale or 0
            if p <= MAX_REAL_DECIMAL:
                return f"NUMERIC({p},{s})"
            # NUMERIC affinity would turn the exact text into a REAL: keep it TEXT, say what it is
            return f"TEXT /* bulkframe:decimal({p},{s}) */"
        if column.kind == "text" and column.length:
            return f"VARCHAR({column.length})"
        if column.kind == "int64" and column.primary_key:
            return "INTEGER"  # a rowid alias: fast and auto-filled
        return _DDL[column.kind]

    def identity_type(self, column: Column) -> str:
        return "INTEGER"  # with the table's PRIMARY KEY: a rowid alias, numbered by SQLite

    def _exact_text(self, column: Column) -> bool:
        return (column.precision or 38) > MAX_REAL_DECIMAL

    def sa_type(self, column: Column) -> Any:
        if column.kind == "decimal" and self._exact_text(column):
            return TextDecimal(column.scale or 0)
        return super().sa_type(column)

    def to_ingest(self, table: pa.Table, columns: dict[str, Column]) -> pa.Table:
        arrays = []
        for name in table.column_names:
            arr = table.column(name)
            col = columns[name]
            if col.kind == "decimal":
                arr = decimal_plain_text(arr) if self._exact_text(col) else decimal_to_nearest_double(arr)
            elif col.kind in ("timestamp", "timestamptz"):
                arr = timestamp_text(arr)
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
            elif col is not None and col.kind == "time" and not pa.types.is_time(arr.type):
                arr = _time_from_text(arr)
            arrays.append(arr)
        out = pa.table(arrays, names=table.column_names)
        known = {n: columns[n] for n in out.column_names if n in columns}
        return conform(out, known, on_error="raise", table_name="(read)").table


#: storage class of a value of each kind change detection compares on the client
_STORAGE_CLASS = {
    "int16": "integer",
    "int32": "integer",
    "int64": "integer",
    "float64": "real",
    "text": "text",
    "json": "text",
}


# -- SQL spelled the SQLite way (see bulkframe.portable_sql) -----------------------------
@compiles(CaseSensitiveLike, "sqlite")
def _glob(element: CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    # LIKE ignores ASCII case in SQLite; GLOB does not
    return str(compiler.process(element.operand.op("GLOB", is_comparison=True)(element.glob_pattern), **kw))


@compiles(ExactInteger, "sqlite")
def _exact_integer(element: ExactInteger, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite turns an integer result beyond 64 bits into a REAL (and keeps REAL 3.5 in an
    # INTEGER column): such a value raises SQLite's own "integer overflow" instead
    # (abs() of the smallest integer), which the backend reports as a DataError
    value = element.value
    inexact = sa.and_(sa.func.typeof(value) == "real", value != sa.cast(value, sa.Integer))
    overflow = sa.func.abs(sa.literal_column("(-9223372036854775807 - 1)"))
    return str(compiler.process(sa.case((inexact, overflow), else_=value), **kw))


@compiles(Floor, "sqlite")
def _floor(element: Floor, compiler: SQLCompiler, **kw: Any) -> str:
    # floor() is optional in SQLite builds, and SQLAlchemy's pysqlite stand-in fails on NULL
    (x,) = element.clauses.clauses
    whole = sa.cast(x, sa.Integer)
    return str(compiler.process(whole - sa.cast(x < whole, sa.Integer), **kw))


@compiles(PortableCast, "sqlite")
def _cast(element: PortableCast, compiler: SQLCompiler, **kw: Any) -> str:
    # CAST(text AS DATE) is a number in SQLite (NUMERIC affinity): date()/datetime() parse it
    if isinstance(element.type, sa.Date | sa.DateTime):
        func = sa.func.datetime if isinstance(element.type, sa.DateTime) else sa.func.date
        return str(compiler.process(func(element.clause), **kw))
    return str(compiler.visit_cast(element, **kw))  # type: ignore[no-untyped-call]


def decimal_to_nearest_double(arr: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
    """Each decimal as the double nearest to it (what ``float(Decimal)`` and SQLite's own
    text-to-REAL conversion give), for precisions up to 15.

    Arrow's decimal→float64 cast is not correctly rounded (19.99 → 19.990000000000002, ~7 %
    of random 15-digit values are one step off).  Here the unscaled integer (< 10**15 <
    2**53) and 10**scale (scale ≤ 15 < 23) are both exact doubles, so one IEEE division
    rounds the quotient correctly: vectorized and exact."""
    import numpy as np

    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    out = []
    for chunk in chunks:
        t = chunk.type
        assert pa.types.is_decimal128(t) and t.precision <= MAX_REAL_DECIMAL, t
        words = np.frombuffer(chunk.buffers()[1], dtype=np.int64)  # little-endian 128-bit: low, high
        low = words[
            2 * chunk.offset : 2 * (chunk.offset + len(chunk)) : 2
        ]  # |unscaled| < 2**63: low word is it
        values = low.astype(np.float64) / np.float64(10**t.scale)
        mask = chunk.is_null().to_numpy(zero_copy_only=False) if chunk.null_count else None
        out.append(pa.array(values, type=pa.float64(), mask=mask))
    return pa.chunked_array(out, pa.float64())


def decimal_plain_text(arr: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
    """Decimals as plain text with every digit of the scale (``0.00000001``, ``-12.500000``).

    Not Arrow's decimal→string cast: that writes small values in scientific notation
    (``1E-8``, ``0E-8``), which other readers and text comparisons do not expect."""
    import polars as pl

    text = pl.Series(arr).cast(pl.String).to_arrow()
    return pa.chunked_array([text.cast(pa.string())])


def timestamp_text(arr: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
    """Timestamps as ``YYYY-MM-DD HH:MM:SS.ffffff`` text (:data:`TIMESTAMP_FORMAT`);
    tz-aware ones as their UTC wall time."""
    chunked = arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])
    t = chunked.type
    if t.tz is not None or t.unit != "us":
        chunked = chunked.cast(pa.timestamp("us"))  # tz-aware values are UTC underneath
    return chunked.cast(pa.string())


def _time_from_text(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """``HH:MM:SS[.ffffff]`` text (as bulkframe, ``sqlite3`` and SQLAlchemy write it) → time64."""
    import polars as pl

    text = pl.Series(arr.cast(pa.string()))
    parsed = text.str.to_time("%H:%M:%S%.f", strict=False).fill_null(
        text.str.to_time("%H:%M:%S", strict=False)
    )
    bad = parsed.is_null() & text.is_not_null()
    if bad.any():
        row = int(bad.arg_true()[0])
        raise DataError(f"time column holds {text[row]!r} (row {row}), which is not HH:MM:SS[.ffffff] text")
    return pa.chunked_array([parsed.to_arrow().cast(pa.time64("us"))])
