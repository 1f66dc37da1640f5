"""DuckDB (``duckdb:///path.duckdb``): the ``duckdb`` module's own connections, Arrow in
and out (``INSERT INTO t BY NAME SELECT * FROM <registered Arrow>``).

Why the ``duckdb`` module and not the ADBC driver inside the same wheel: every ADBC
``AdbcDatabase`` opens a DuckDB instance of its own, while ``duckdb.connect(path)`` reuses
the one instance the process already has open for that file.  Two instances of one file in
one process do not see each other's writes and, because POSIX file locks belong to the
process, not to the instance, neither stops the other: the second one to checkpoint
overwrites the first one's rows (seen here: a user's ``duckdb.connect(path)`` next to an
ADBC connection lost committed rows).  Through the module, bulkframe and the user's own
``duckdb.connect(path)`` share the instance and its transactions.  Ingest speed is the
same (``benchmarks/bench_duckdb.py`` measures both).

:class:`DuckConnection` gives a module connection the part of the ADBC DB-API surface that
:class:`~bulkframe.backends.connection.Connection` uses (cursors, ``adbc_ingest``,
``execute_update``, autocommit off), so shared code stays as it is.

DuckDB's writers are optimistic: two transactions that change the same row conflict
("Conflict on tuple update") instead of waiting.  Within a process writers queue on one
lock per database (:meth:`DuckDBBackend.begin_write`, capability
``concurrent_writers=False``); across processes DuckDB's file lock lets only one process
open a database file for writing at all.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.base import PGCompiler, PGDialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from bulkframe.backends.base import Backend, ForeignKey, TableRef
from bulkframe.backends.capabilities import Capabilities
from bulkframe.backends.connection import Connection
from bulkframe.errors import NotSupportedError, SchemaError, TransientError
from bulkframe.portable_sql import JsonWithout, RegexSearch, TitleCase
from bulkframe.types import KINDS, Column

#: DuckDB's largest DECIMAL precision.
MAX_DECIMAL_PRECISION = 38

_DDL = {
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float32": "REAL",
    "float64": "DOUBLE",
    "bool": "BOOLEAN",
    "text": "VARCHAR",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMPTZ",
    "json": "JSON",
    "uuid": "UUID",
    "binary": "BLOB",
}

#: ``duckdb_columns().data_type`` → kind.  ENUM columns are text (DuckDB refuses values
#: outside the enum); HUGEINT is an integer decimal of 38 digits (its 39th digit cannot be
#: written); other types (unsigned, INTERVAL, lists, structs, …) are marked unsupported.
_KINDS = {
    "SMALLINT": "int16",
    "INTEGER": "int32",
    "BIGINT": "int64",
    "FLOAT": "float32",
    "REAL": "float32",
    "DOUBLE": "float64",
    "BOOLEAN": "bool",
    "VARCHAR": "text",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "JSON": "json",
    "UUID": "uuid",
    "BLOB": "binary",
}

_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")
_LENGTH_CHECK = re.compile(r'^\(length\(("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*)\) <= (\d+)\)$')
_NEXTVAL = re.compile(r"^nextval\('(.+)'\)$")

#: DuckDB's exception classes (by name) and messages → the SQLSTATE a server would send.
_SQLSTATE_BY_MESSAGE = (
    ("Duplicate key", "23505"),
    ("NOT NULL constraint failed", "23502"),
    ("CHECK constraint failed", "23514"),
    ("foreign key constraint", "23503"),
    # optimistic concurrency: another transaction changed the row / catalog entry first
    ("Conflict on", "40001"),
    ("write-write conflict", "40001"),
    ("Could not set lock on file", "55P03"),  # another process holds the database file
)
_SQLSTATE_BY_CLASS = {
    "ConstraintException": "23000",
    "ConversionException": "22018",
    "OutOfRangeException": "22003",
    "CatalogException": "42P01",
}


class DuckDBCompiler(PGCompiler):
    """PostgreSQL's SQL with DuckDB's spellings where they differ."""

    def visit_current_timestamp_func(self, fn: Any, **kw: Any) -> str:
        # the keywords CURRENT_TIMESTAMP / CURRENT_DATE bind as column names inside
        # ON CONFLICT … DO UPDATE (DuckDB 1.4); the function spellings do not
        return "get_current_timestamp()"

    def visit_current_date_func(self, fn: Any, **kw: Any) -> str:
        return "current_date()"


class DuckDBDialect(PGDialect):
    """SQLAlchemy has no DuckDB dialect; DuckDB speaks PostgreSQL's SQL (``ON CONFLICT``,
    ``RETURNING``, ``UPDATE … FROM``, ``$n`` parameters), so this is PostgreSQL's dialect
    under DuckDB's name (``@compiles(Element, "duckdb")`` renderings apply) with its own
    compiler.  It only compiles statements; it never connects."""

    name = "duckdb"
    statement_compiler = DuckDBCompiler
    supports_statement_cache = True


class _WriteLock:
    """One writer at a time per database in this process, reentrant per thread: a write
    transaction holds it from :meth:`DuckDBBackend.begin_write` until it commits or rolls
    back (several connections of one thread may hold it together)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: int | None = None
        self._holders: set[int] = set()

    def acquire(self, holder: int, timeout: float) -> bool:
        me = threading.get_ident()
        with self._cond:
            if not self._cond.wait_for(lambda: self._owner in (None, me), timeout=timeout):
                return False
            self._owner = me
            self._holders.add(holder)
            return True

    def release(self, holder: int) -> None:
        with self._cond:
            if holder in self._holders:
                self._holders.discard(holder)
                if not self._holders:
                    self._owner = None
                    self._cond.notify_all()


_LOCKS: dict[str, _WriteLock] = {}
_LOCKS_GUARD = threading.Lock()


def _write_lock(key: str) -> _WriteLock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, _WriteLock())


class DuckCursor:
    """A cursor over a :class:`DuckConnection` (DuckDB runs one statement at a time per
    connection; the result stays until the next statement or ``close``)."""

    def __init__(self, conn: DuckConnection) -> None:
        self._conn = conn
        self.description: Any = None
        self.rowcount = -1
        self._result: Any = None
        self._sql: str | None = None
        self.adbc_statement = self  # ``set_sql_query`` / ``execute_update`` / ``set_options``

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> None:
        con = self._conn.begin()
        self._result = con.execute(sql, list(parameters) if parameters else None)
        self.description = con.description
        self.rowcount = -1
        if self.description and [d[0] for d in self.description] == ["Count"]:
            # INSERT/UPDATE/DELETE without RETURNING answer one row: how many rows changed
            rows = self._result.fetchall()
            self.rowcount = int(rows[0][0]) if rows else 0
            self._rows: list[Any] | None = rows
        else:
            self._rows = None

    def executemany(self, sql: str, seq_of_parameters: Sequence[Sequence[Any]]) -> None:
        total = 0
        for params in seq_of_parameters:
            self.execute(sql, params)
            total += max(self.rowcount, 0)
        self.rowcount = total

    def fetchall(self) -> list[tuple[Any, ...]]:
        if self._rows is not None:
            return list(self._rows)
        return list(self._result.fetchall()) if self._result is not None else []

    def fetch_arrow_table(self) -> pa.Table:
        if self._rows is not None:  # the one "Count" row, already read
            return pa.table({"Count": pa.array([r[0] for r in self._rows], pa.int64())})
        return self._result.fetch_arrow_table()

    def fetch_record_batch(self) -> pa.RecordBatchReader:
        """The result as a stream of Arrow batches."""
        if self._rows is not None:
            return self.fetch_arrow_table().to_reader()
        return self._result.fetch_record_batch()

    def set_sql_query(self, sql: str) -> None:
        self._sql = sql

    def execute_update(self) -> int:
        assert self._sql is not None
        self.execute(self._sql)
        return self.rowcount

    def set_options(self, **options: str) -> None:
        if options:
            raise NotSupportedError(f"DuckDB statements take no options; got {sorted(options)}")

    def adbc_ingest(
        self,
        table_name: str,
        data: pa.Table | pa.RecordBatchReader,
        mode: str = "append",
        *,
        temporary: bool = False,
        db_schema_name: str | None = None,
    ) -> int:
        """Append Arrow ``data`` to an existing table, columns matched by name."""
        if mode != "append":
            raise NotSupportedError(f"DuckDB ingest mode {mode!r}; only 'append'")
        quote = self._conn.backend.quote
        target = quote(table_name)
        if db_schema_name is not None and not temporary:
            target = f"{quote(db_schema_name)}.{target}"
        view = f"_bf_arrow_{uuid.uuid4().hex[:12]}"
        con = self._conn.begin()
        total = 0
        for part in _in_memory_parts(data):
            if not temporary:
                part = _with_sequence_ids(con, part, table_name, db_schema_name)
            part = _whole_row_groups(part)
            con.register(view, part)
            try:
                con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {quote(view)}")
            finally:
                con.unregister(view)
            total += part.num_rows
        return total

    def close(self) -> None:
        self._result = None
        self._rows = None


class DuckConnection:
    """A ``duckdb`` module connection with ADBC's transaction behaviour: autocommit off (a
    transaction starts with the first statement), ``commit``/``rollback`` end it and free
    the database's write lock if this connection held it."""

    def __init__(self, backend: DuckDBBackend, con: Any) -> None:
        self.backend = backend
        self.con = con
        self.in_transaction = False
        self.holds_write_lock = False

    def begin(self) -> Any:
        if not self.in_transaction:
            self.con.execute("BEGIN TRANSACTION")
            self.in_transaction = True
        return self.con

    def cursor(self) -> DuckCursor:
        return DuckCursor(self)

    def _end(self, how: str) -> None:
        try:
            if self.in_transaction:
                self.in_transaction = False
                self.con.execute(how)
        finally:
            if self.holds_write_lock:
                self.holds_write_lock = False
                self.backend.write_lock.release(id(self))

    def commit(self) -> None:
        self._end("COMMIT")

    def rollback(self) -> None:
        self._end("ROLLBACK")

    def close(self) -> None:
        try:
            self.rollback()
        finally:
            self.con.close()


class DuckDBBackend(Backend):
    """DuckDB through the ``duckdb`` module (``pip install 'bulkframe[duckdb]'``)."""

    capabilities = Capabilities(
        upsert="on_conflict",
        concurrent_writers=False,  # optimistic: overlapping writers conflict, so they queue
        regex=True,
        modified_count="execute_update",
        select_for_update=False,
        savepoints=False,
        upsert_set_subquery=False,
        triggers=False,
        delete_after_children=False,
        conflicts_in_order=False,
        full_outer_join=True,
        client_compare_kinds=frozenset(KINDS),  # every kind reads back exactly
    )
    dialect = DuckDBDialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]

    #: Seconds a writer waits for the database's write lock (another thread's write
    #: transaction in this process) before the call fails as transient.
    write_lock_timeout: ClassVar[float] = 300.0

    def __init__(self, url: str):
        super().__init__(url)
        rest = url.split("://", 1)[1]
        path = rest[1:] if rest.startswith("/") else rest  # duckdb:////abs → /abs
        path = path.split("?", 1)[0]
        if "?" in rest:
            raise NotSupportedError(
                f"DuckDB URL options are not supported: {rest.split('?', 1)[1]!r}; use duckdb:///path.duckdb"
            )
        if path in ("", ":memory:"):
            # one private in-memory database per backend (Database): its pooled connections
            # are cursors of this anchor connection, which keeps it alive
            import duckdb

            self.path = ":memory:"
            self._anchor: Any = duckdb.connect(":memory:")
            key = f":memory:{id(self)}"
        elif path.startswith(":memory:"):
            self.path, self._anchor = path, None  # named: shared by the process while open
            key = path
        else:
            self.path, self._anchor = path, None
            key = os.path.realpath(path)
        self.write_lock = _write_lock(key)

    def _connect_raw(self) -> Any:
        import duckdb

        if self._anchor is not None:
            return DuckConnection(self, self._anchor.cursor())
        if not self.path.startswith(":memory:"):
            parent = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(parent, exist_ok=True)
        return DuckConnection(self, duckdb.connect(self.path))

    def upsert_insert(self, table: sa.Table) -> Any:
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)

    def begin_write(self, conn: Connection, ref: TableRef) -> None:
        """Queue behind the write transaction another thread has open on this database
        (DuckDB would fail one of two overlapping writers with "Conflict on tuple …")."""
        raw: DuckConnection = conn.raw
        if raw.holds_write_lock:
            return
        if not self.write_lock.acquire(id(raw), self.write_lock_timeout):
            raise TransientError(
                f"waited {self.write_lock_timeout:g}s for another write transaction on {self.path} to end"
            )
        raw.holds_write_lock = True

    def sqlstate_of(self, exc: BaseException) -> str | None:
        text = str(exc)
        for fragment, state in _SQLSTATE_BY_MESSAGE:
            if fragment in text:
                return state
        for cls in type(exc).__mro__:
            if cls.__name__ in _SQLSTATE_BY_CLASS:
                return _SQLSTATE_BY_CLASS[cls.__name__]
        return super().sqlstate_of(exc)

    # -- catalog -------------------------------------------------------------------
    def _where(self, ref: TableRef) -> tuple[str, tuple[Any, ...]]:
        """Catalog rows of ``ref`` as name resolution finds it: a temporary table first."""
        if ref.schema is not None:
            return "table_name = $1 AND schema_name = $2 AND database_name = current_database()", (
                ref.name,
                ref.schema,
            )
        return (
            "table_name = $1 AND schema_name = current_schema() "
            "AND database_name IN ('temp', current_database())",
            (ref.name,),
        )

    def _database_of(self, conn: Connection, ref: TableRef) -> str | None:
        where, args = self._where(ref)
        return conn.scalar(  # type: ignore[no-any-return]
            f"SELECT database_name FROM duckdb_tables() WHERE {where} ORDER BY database_name = 'temp' DESC",
            args,
        )

    def reflect(self, conn: Connection, ref: TableRef) -> list[Column] | None:
        database = self._database_of(conn, ref)
        if database is None:
            return None
        where, args = self._where(ref)
        rows = conn.fetchall(
            "SELECT column_name, data_type, is_nullable, column_default FROM duckdb_columns() "
            f"WHERE {where} AND database_name = ${len(args) + 1} ORDER BY column_index",
            (*args, database),
        )
        keys = self._constraint_columns(conn, ref, database, "PRIMARY KEY")
        pk = set(keys[0]) if keys else set()
        lengths = self._length_checks(conn, ref, database)
        columns = []
        for name, declared, nullable, default in rows:
            declared = str(declared)
            kind, precision, scale, unsupported = _kind_of(declared)
            columns.append(
                Column(
                    name,
                    kind,
                    nullable=bool(nullable) and name not in pk,
                    primary_key=name in pk,
                    precision=precision,
                    scale=scale,
                    length=lengths.get(name) if kind == "text" else None,
                    has_default=default is not None,
                    unsupported=unsupported,
                )
            )
        return columns

    def _constraint_columns(
        self, conn: Connection, ref: TableRef, database: str, kind: str
    ) -> list[tuple[str, ...]]:
        where, args = self._where(ref)
        rows = conn.fetchall(
            "SELECT constraint_column_names FROM duckdb_constraints() "
            f"WHERE {where} AND database_name = ${len(args) + 1} AND constraint_type = ${len(args) + 2} "
            "ORDER BY constraint_index",
            (*args, database, kind),
        )
        return [tuple(r[0]) for r in rows]

    def _length_checks(self, conn: Connection, ref: TableRef, database: str) -> dict[str, int]:
        """``CHECK (length(col) <= n)`` constraints (how :meth:`ddl_type` keeps a
        ``varchar(n)``): column → n."""
        where, args = self._where(ref)
        out = {}
        for expression, names in conn.fetchall(
            "SELECT expression, constraint_column_names FROM duckdb_constraints() "
            f"WHERE {where} AND database_name = ${len(args) + 1} AND constraint_type = 'CHECK'",
            (*args, database),
        ):
            m = _LENGTH_CHECK.match(str(expression or ""))
            if m and len(names) == 1 and _plain_columns([m.group(1)]) == (names[0],):
                out[names[0]] = int(m.group(2))
        return out

    def unique_keys(self, conn: Connection, ref: TableRef) -> list[tuple[str, ...]]:
        database = self._database_of(conn, ref)
        if database is None:
            return []
        keys = self._constraint_columns(conn, ref, database, "PRIMARY KEY")
        keys += self._constraint_columns(conn, ref, database, "UNIQUE")
        # plain unique indexes (CREATE UNIQUE INDEX) are not constraints in the catalog
        where, args = self._where(ref)
        for (expressions,) in conn.fetchall(
            f"SELECT expressions FROM duckdb_indexes() WHERE {where} AND is_unique "
            f"AND database_name = ${len(args) + 1}",
            (*args, database),
        ):
            names = _plain_columns(expressions)
            if names:
                keys.append(names)
        return list(dict.fromkeys(keys))

    def foreign_keys(self, conn: Connection, ref: TableRef) -> list[ForeignKey]:
        database = self._database_of(conn, ref)
        if database is None:
            return []
        where, args = self._where(ref)
        rows = conn.fetchall(
            "SELECT constraint_column_names, referenced_table, referenced_column_names, schema_name "
            f"FROM duckdb_constraints() WHERE {where} AND database_name = ${len(args) + 1} "
            "AND constraint_type = 'FOREIGN KEY' ORDER BY constraint_index",
            (*args, database),
        )
        return [
            ForeignKey(tuple(cols), str(table), str(schema), tuple(refs or ()))
            for cols, table, refs, schema in rows
        ]

    # -- types ---------------------------------------------------------------------
    def ddl_type(self, column: Column) -> str:
        if column.kind == "decimal":
            precision = column.precision or MAX_DECIMAL_PRECISION
            scale = column.scale if column.scale is not None else (0 if column.precision else 10)
            if precision > MAX_DECIMAL_PRECISION:
                raise SchemaError(
                    f"column {column.name!r}: DECIMAL({precision},{scale}) is wider than DuckDB's "
                    f"largest DECIMAL({MAX_DECIMAL_PRECISION},s); store it as text or a double"
                )
            return f"DECIMAL({precision},{scale})"
        if column.kind == "text" and column.length:
            # DuckDB discards the n of VARCHAR(n): a CHECK keeps the limit, and reflect reads
            # it back as the column's length
            return f"VARCHAR CHECK (length({self.quote(column.name)}) <= {int(column.length)})"
        return _DDL[column.kind]

    def identity_column(self, ref: TableRef, column: Column) -> tuple[list[str], str]:
        """DuckDB has no identity columns: a sequence per table, made first, and a
        ``DEFAULT nextval(…)``; explicit values are still accepted."""
        seq = self._sequence_ref(ref, column.name)
        return (
            [f"CREATE SEQUENCE IF NOT EXISTS {seq}"],
            f"{self.ddl_type(column)} DEFAULT nextval({_text_literal(seq)})",
        )

    def _sequence_ref(self, ref: TableRef, column: str) -> str:
        name = self.quote(f"{ref.name}_{column}_seq")
        return f"{self.quote(ref.schema)}.{name}" if ref.schema else name

    def _sequence_of(self, conn: Connection, ref: TableRef, column: str) -> str | None:
        """The (quoted, maybe schema-qualified) sequence the column's default draws from."""
        database = self._database_of(conn, ref)
        if database is None:
            return None
        where, args = self._where(ref)
        default = conn.scalar(
            f"SELECT column_default FROM duckdb_columns() WHERE {where} AND database_name = ${len(args) + 1} "
            f"AND column_name = ${len(args) + 2}",
            (*args, database, column),
        )
        m = _NEXTVAL.match(str(default or ""))
        return m.group(1).replace("''", "'") if m else None

    def allocate_ids(self, conn: Connection, ref: TableRef, column: str, n: int) -> list[int]:
        """From the column's sequence when it has one (``nextval`` over ``range``), else
        ``max + 1 …`` under the write lock."""
        seq = self._sequence_of(conn, ref, column)
        if seq is None:
            return super().allocate_ids(conn, ref, column, n)
        self.advance_sequence(conn, ref, column)
        ids = conn.fetch_arrow(f"SELECT nextval({_text_literal(seq)}) FROM range($1)", (n,))
        return sorted(int(v) for v in ids.column(0).to_pylist())

    def advance_sequence(self, conn: Connection, ref: TableRef, column: str) -> None:
        """DuckDB cannot ``setval``: draw values until the sequence is past ``max(column)``."""
        seq = self._sequence_of(conn, ref, column)
        if seq is None:
            return
        *schema, name = _identifier_parts(seq)
        top = conn.scalar(f"SELECT max({self.quote(column)}) FROM {self.qualified(ref)}")
        last = conn.scalar(
            "SELECT coalesce(last_value, start_value - 1) FROM duckdb_sequences() "
            "WHERE sequence_name = $1 AND schema_name = coalesce($2, current_schema()) "
            "AND database_name = current_database()",
            (name, schema[-1] if schema else None),
        )
        behind = int(top or 0) - int(last if last is not None else 0)
        if behind > 0:
            conn.fetchall(f"SELECT max(nextval({_text_literal(seq)})) FROM range($1)", (behind,))

    def to_ingest(self, table: pa.Table, columns: dict[str, Column]) -> pa.Table:
        """JSON and UUID travel as text (DuckDB's cast parses and checks them)."""
        arrays = []
        for name in table.column_names:
            arr = table.column(name)
            if isinstance(arr.type, pa.BaseExtensionType):
                arr = pa.chunked_array([c.storage for c in arr.chunks], arr.type.storage_type)
            arrays.append(arr)
        return pa.table(arrays, names=table.column_names)

    def read_cast(self, table: pa.Table, columns: dict[str, Column]) -> pa.Table:
        arrays = []
        for name in table.column_names:
            arr = table.column(name)
            col = columns.get(name)
            if pa.types.is_dictionary(arr.type):  # an ENUM column
                arr = arr.cast(arr.type.value_type)
            if isinstance(arr.type, pa.BaseExtensionType):
                arr = pa.chunked_array([c.storage for c in arr.chunks], arr.type.storage_type)
            if col is not None and arr.type != col.arrow_type():
                with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    arr = arr.cast(col.arrow_type())
            arrays.append(arr)
        return pa.table(arrays, names=table.column_names)


def _kind_of(declared: str) -> tuple[str, int | None, int | None, str | None]:
    """``(kind, precision, scale, unsupported)`` of a DuckDB column type."""
    if declared in _KINDS:
        return _KINDS[declared], None, None, None
    m = _DECIMAL.match(declared)
    if m:
        return "decimal", int(m.group(1)), int(m.group(2)), None
    if declared == "HUGEINT":
        return "decimal", MAX_DECIMAL_PRECISION, 0, None
    if declared.startswith("ENUM("):
        return "text", None, None, None
    return "text", None, None, declared


#: A stream is inserted in tables of at most this many bytes (or ``_PART_ROWS`` rows): DuckDB
#: scans an Arrow table on all its threads but a record-batch stream on one, and a Python
#: generator behind the stream costs a call per batch (1M rows: 1.0 s as one table against
#: 1.3–2.0 s as a stream; reading the next part in a helper thread while DuckDB inserts was
#: slower still on 2 cores, 2.5 s).  A part of small batches is copied into one chunk
#: before it is inserted (:func:`_whole_row_groups`), so memory holds up to twice this.
_PART_BYTES = 128 << 20
_PART_ROWS = 2_000_000
#: DuckDB's row group: each chunk of an Arrow table fills row groups of its own.
_ROW_GROUP = 122_880


def _whole_row_groups(part: pa.Table) -> pa.Table:
    """``part`` in one chunk when its chunks are smaller than a row group (bulkframe's
    batches: 10,000 rows by default): DuckDB inserts each chunk into row groups of its own
    and the commit merges them.  Measured (1M rows, 5 runs alternating, 2 cores, nothing
    else running): 0.79 s → 0.71 s with a JSON column, 0.67 s → 0.60 s without, the copy
    included; DuckDB's own ``INSERT … SELECT * FROM arrow`` of the same rows 0.64 s / 0.56 s."""
    chunks = part.column(0).num_chunks if part.num_columns else 0
    if chunks <= 1 or part.num_rows >= _ROW_GROUP * chunks:
        return part
    return part.combine_chunks()


def _in_memory_parts(data: pa.Table | pa.RecordBatchReader) -> Iterator[pa.Table]:
    """``data`` as tables of bounded size: a table as it is, a stream gathered into parts
    of at most ``_PART_BYTES`` / ``_PART_ROWS`` (so memory stays bounded)."""
    if isinstance(data, pa.Table):
        yield data
        return
    held: list[pa.RecordBatch] = []
    rows = size = parts = 0
    for batch in data:
        held.append(batch)
        rows += batch.num_rows
        size += batch.nbytes
        if rows >= _PART_ROWS or size >= _PART_BYTES:
            yield pa.Table.from_batches(held, schema=data.schema)
            held, rows, size, parts = [], 0, 0, parts + 1
    if held or not parts:  # the rest; an empty stream still inserts (and checks) its columns
        yield pa.Table.from_batches(held, schema=data.schema)


def _with_sequence_ids(con: Any, data: pa.Table, table: str, schema: str | None) -> pa.Table:
    """``data`` with the values of the target's sequence-numbered columns it lacks, drawn
    here in row order.  DuckDB evaluates a ``DEFAULT nextval(…)`` on parallel threads, so
    rows would get their ids out of input order (PostgreSQL and SQLite number them in order)."""
    defaults = con.execute(
        "SELECT column_name, column_default FROM duckdb_columns() WHERE table_name = $1 "
        "AND schema_name = coalesce($2, current_schema()) AND database_name = current_database() "
        "ORDER BY column_index",
        [table, schema],
    ).fetchall()
    names = set(data.schema.names)
    missing = [
        (name, m.group(1).replace("''", "'"))
        for name, default in defaults
        if name not in names and (m := _NEXTVAL.match(str(default or ""))) is not None
    ]
    if not missing:
        return data

    schema_out = pa.schema([*data.schema, *(pa.field(n, pa.int64()) for n, _ in missing)])

    def numbered(batch: pa.RecordBatch, draw: Any) -> pa.RecordBatch:
        for name, seq in missing:
            sql = f"SELECT nextval({_text_literal(seq)}) FROM range($1)"
            drawn = draw.execute(sql, [batch.num_rows]).fetch_arrow_table().column(0).combine_chunks()
            batch = batch.append_column(name, drawn.take(pc.sort_indices(drawn)).cast(pa.int64()))
        return batch

    return pa.Table.from_batches([numbered(b, con) for b in data.to_batches()], schema=schema_out)


def _text_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier_parts(qualified: str) -> list[str]:
    """``"s"."t""x"`` → ``["s", 't"x']`` (quoted or bare parts, dot-separated)."""
    parts = re.findall(r'"((?:[^"]|"")*)"|([^."]+)', qualified)
    return [quoted.replace('""', '"') if quoted else bare for quoted, bare in parts]


def _plain_columns(expressions: Any) -> tuple[str, ...]:
    """Column names of an index whose expressions are all plain (quoted or bare) columns."""
    names = []
    for expr in expressions or ():
        text = str(expr).strip()
        if re.fullmatch(r'"(?:[^"]|"")+"', text):
            names.append(text[1:-1].replace('""', '"'))
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
            names.append(text)
        else:
            return ()
    return tuple(names)


# -- SQL spelled the DuckDB way (see bulkframe.portable_sql) ------------------------------
@compiles(TitleCase, "duckdb")
def _initcap(element: TitleCase, compiler: SQLCompiler, **kw: Any) -> str:
    # no initcap(): split into runs of letters/digits and runs of anything else, upper-case
    # each run's first character, join (an empty text gives an empty list, hence coalesce)
    (x,) = element.clauses.clauses
    text = compiler.process(x, **kw)
    runs = f"regexp_extract_all(lower({text}), '[\\p{{L}}\\p{{N}}]+|[^\\p{{L}}\\p{{N}}]+')"
    return f"coalesce(array_to_string(list_transform({runs}, lambda w: upper(w[1]) || w[2:]), ''), {text})"


@compiles(RegexSearch, "duckdb")
def _regexp_matches(element: RegexSearch, compiler: SQLCompiler, **kw: Any) -> str:
    # DuckDB's ~ matches the whole string; regexp_matches searches, as PostgreSQL's ~ does
    return str(compiler.process(sa.func.regexp_matches(element.operand, element.pattern), **kw))


@compiles(JsonWithout, "duckdb")
def _json_without(element: JsonWithout, compiler: SQLCompiler, **kw: Any) -> str:
    # no json_remove: merging a patch whose members are null removes those members (RFC 7396)
    obj = compiler.process(element.obj, **kw)
    if not element.drops:
        return str(obj)
    absent = _text_literal(" bulkframe:absent ")
    names = [
        f"CASE WHEN {compiler.process(cond, **kw)} THEN {_text_literal(name)} ELSE {absent} END, NULL"
        for name, cond in element.drops
    ]
    return f"json_merge_patch({obj}, json_object({', '.join(names)}))"
