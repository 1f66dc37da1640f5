"""The backend contract.  The base class owns the shared algorithm steps (create, stage,
merge from stage, translate errors); subclasses supply only database-specific hooks:
``_connect_raw``, ``reflect``, ``ddl_type``, ``to_ingest``, ``read_cast``, ``upsert_insert``
and the SQLSTATE table.

Every difference between databases is a declared capability (data, read by shared code:
:mod:`bulkframe.backends.capabilities`) or a hook here, overridden in the backend's module.
SQL constructs that databases spell differently (:mod:`bulkframe.portable_sql`) get their
per-dialect ``@compiles`` renderings in the backend's module too.  No other module names a
database (``tests/unit/test_boundary.py``).
"""

from __future__ import annotations

import abc
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
import sqlalchemy as sa

from bulkframe.backends.capabilities import Capabilities
from bulkframe.backends.connection import Connection
from bulkframe.errors import (
    DatabaseError,
    NotSupportedError,
    SchemaError,
    TransientError,
    error_for_sqlstate,
)
from bulkframe.types import Column

if TYPE_CHECKING:
    from bulkframe.backends.statements import MergeCounts

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


@dataclass(frozen=True)
class TableRef:
    """A table name, taken literally (never split on dots), and an optional schema."""

    name: str
    schema: str | None = None

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def table_ref(table: Any, schema: str | None = None) -> TableRef:
    """The :class:`TableRef` a caller means by ``table``: a table name, or a model class
    (its ``__tablename__`` and ``__schema__``).

    Raises
    ------
    SchemaError
        ``table`` is neither a non-empty name nor a model class.
    """
    name = getattr(table, "__tablename__", table)
    if not isinstance(name, str) or not name:
        raise SchemaError(f"table must be a non-empty table name or a model class, got {table!r}")
    return TableRef(name, schema or getattr(table, "__schema__", None))


@dataclass(frozen=True)
class ForeignKey:
    """One foreign-key constraint of a table: ``columns`` reference ``referred``'s
    ``referred_columns`` (empty when the catalog leaves them implicit: the primary key)."""

    columns: tuple[str, ...]
    referred_table: str
    referred_schema: str | None
    referred_columns: tuple[str, ...]

    def refers_to(self, ref: TableRef) -> bool:
        return self.referred_table == ref.name and (ref.schema is None or ref.schema == self.referred_schema)


@dataclass(frozen=True)
class DigestInput:
    """One value of a row's canonical text (see :mod:`bulkframe.ops.verify_canon`): the
    column expression, the column as the database holds it, its comparison family and
    the float tolerance (``float`` family only)."""

    expr: sa.ColumnElement[Any]
    column: Column
    family: str
    tolerance: float | None = None


@dataclass(frozen=True)
class TextFormat:
    """How a CSV/text file is written (PostgreSQL ``COPY`` options).

    ``format`` is ``"csv"`` (quoted fields; a quoted value is never NULL) or ``"text"``
    (PostgreSQL's text format: backslash escapes, no quoting); ``null`` is the spelling of
    NULL (CSV default: an unquoted empty field; text default ``\\N``); ``header``: the
    first line names the columns.
    """

    format: str = "csv"
    delimiter: str = ","
    null: str | None = None
    header: bool = True
    quote: str = '"'
    escape: str | None = None
    encoding: str = "utf-8"


class Backend(abc.ABC):
    """Base of every database backend.

    The hooks marked abstract must be overridden, and a concrete backend must declare
    ``capabilities`` and ``dialect``: a backend that misses one fails when its class is
    defined (``TypeError``), not on first use.  An intermediate base class that is meant to
    stay incomplete says so with ``class MyBase(Backend, abstract=True)``.
    """

    capabilities: ClassVar[Capabilities]
    dialect: sa.Dialect

    def __init_subclass__(cls, *, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        missing = sorted(
            name for name in dir(cls) if getattr(getattr(cls, name, None), "__isabstractmethod__", False)
        )
        missing += [attr for attr in ("capabilities", "dialect") if not hasattr(cls, attr)]
        if missing:
            raise TypeError(
                f"backend {cls.__name__} does not define {', '.join(missing)} (required by Backend)"
            )

    def __init__(self, url: str):
        self.url = url

    @property
    def name(self) -> str:
        """The database's name for messages (the SQLAlchemy dialect's name); shared code
        shows it, never compares it."""
        return str(self.dialect.name)

    # -- hooks ---------------------------------------------------------------------
    @abc.abstractmethod
    def _connect_raw(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @abc.abstractmethod
    def reflect(self, conn: Connection, ref: TableRef) -> list[Column] | None:  # pragma: no cover
        """The table's columns, or ``None`` when it does not exist."""
        raise NotImplementedError

    @abc.abstractmethod
    def ddl_type(self, column: Column) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def ddl_key_type(self, column: Column) -> str:
        """DDL type of a column that a ``UNIQUE`` constraint, index or foreign key covers
        (default :meth:`ddl_type`; MySQL cannot key an unbounded TEXT)."""
        return self.ddl_type(column)

    def allocate_ids(self, conn: Connection, ref: TableRef, column: str, n: int) -> list[int]:
        """Reserve ``n`` new values of ``ref``'s auto-numbered ``column`` in one round trip
        (nested creates link children to them).  Default, for single-writer backends only:
        ``max + 1 …`` read inside the caller's write transaction (:meth:`begin_write`)."""
        if self.capabilities.concurrent_writers:  # pragma: no cover - every such backend overrides
            raise NotImplementedError(f"{type(self).__name__} must allocate ids from its sequence")
        col: sa.ColumnClause[Any] = sa.column(column)
        table = sa.table(ref.name, col, schema=ref.schema)
        top = conn.scalar(sa.select(sa.func.coalesce(sa.func.max(col), 0)).select_from(table))
        return list(range(int(top) + 1, int(top) + 1 + n))

    def identity_type(self, column: Column) -> str:
        """DDL type of an integer primary key the database numbers itself (explicit values
        still accepted): SQL-standard ``GENERATED BY DEFAULT AS IDENTITY`` unless overridden."""
        return f"{self.ddl_type(column)} GENERATED BY DEFAULT AS IDENTITY"

    def identity_column(self, ref: TableRef, column: Column) -> tuple[list[str], str]:
        """``(statements run before CREATE TABLE, column type)`` of ``ref``'s identity column:
        default no statements and :meth:`identity_type`; a database without identity
        columns creates the sequence the column's default draws from first."""
        return [], self.identity_type(column)

    def to_ingest(self, table: pa.Table, columns: dict[str, Column]) -> pa.Table:
        """Convert bulkframe's logical Arrow types to what the bulk path accepts."""
        return table

    #: ADBC statement options for queries whose rows come back as Arrow.
    read_options: ClassVar[dict[str, str]] = {}

    def read_column(self, column: sa.ColumnElement[Any], kind: Column) -> sa.ColumnElement[Any]:
        """The expression that selects ``column`` for reading (default: as stored)."""
        return column

    def read_cast(self, table: pa.Table, columns: dict[str, Column]) -> pa.Table:
        """Cast a table read from the database back to bulkframe's logical types."""
        return table

    def sqlstate_of(self, exc: BaseException) -> str | None:
        state = getattr(exc, "sqlstate", None)
        return str(state) if state else None

    @abc.abstractmethod
    def foreign_keys(self, conn: Connection, ref: TableRef) -> list[ForeignKey]:  # pragma: no cover
        """The foreign keys ``ref`` holds, read from the catalog."""
        raise NotImplementedError

    @abc.abstractmethod
    def unique_keys(self, conn: Connection, ref: TableRef) -> list[tuple[str, ...]]:  # pragma: no cover
        """Column sets with a primary key, unique constraint or plain unique index on them
        (partial and expression indexes excluded: ``ON CONFLICT (cols)`` cannot use them)."""
        raise NotImplementedError

    def advance_sequence(self, conn: Connection, ref: TableRef, column: str) -> None:  # noqa: B027 - optional hook
        """After explicit ids were inserted, move the column's id generator past them.

        Default: nothing (SQLite's rowid alias always continues after the largest id)."""

    def set_user_triggers(self, conn: Connection, ref: TableRef, *, enabled: bool) -> None:
        """Disable/enable the table's user triggers inside the current transaction."""
        from bulkframe.errors import NotSupportedError

        raise NotSupportedError(f"disable_triggers is not supported on {self.name}")

    def notify(self, conn: Connection, channel: str, payload: str) -> None:
        """Queue ``payload`` on ``channel`` inside the current transaction (capability
        ``notify``); delivered when it commits."""
        from bulkframe.errors import NotSupportedError

        raise NotSupportedError(f"{self.name} has no NOTIFY; pass event_sink= a callable or a redis:// URL")

    def copy_text_file(
        self,
        ref: TableRef,
        path: str,
        columns: Sequence[str],
        fmt: TextFormat,
        *,
        disable_triggers: bool = False,
    ) -> int:
        """Stream the CSV/text file at ``path`` into ``ref`` for the server to parse with
        ``fmt`` (``COPY … FROM STDIN``), in one transaction of its own; return the rows
        loaded.  Only on backends whose capabilities have ``copy_text``.

        Raises
        ------
        NotSupportedError
            The backend has no server-side text load.
        DatabaseError
            The server refused the file (nothing was loaded); the message names the line.
        """
        raise NotSupportedError(f"{self.name}: the server does not parse text files (capabilities.copy_text)")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the backend holds beyond its pooled connections (called once by
        ``Database.close``)."""

    def begin_write(self, conn: Connection, ref: TableRef) -> None:  # noqa: B027 - optional hook
        """Called first in a transaction that will write ``ref``.  Backends whose writers
        must queue up front (SQLite: take the write lock before any read, or a later
        upgrade fails with "database is locked" instead of waiting) override it."""

    def distinct(self, stored: Any, incoming: Any, column: Column) -> sa.ColumnElement[bool]:
        """True when ``incoming`` would change ``stored`` (NULL-safe; change detection).
        Default: ``stored IS DISTINCT FROM incoming`` (SQLAlchemy renders ``IS NOT`` where
        the database spells it so)."""
        return stored.is_distinct_from(incoming)  # type: ignore[no-any-return]

    def exact_read_guard(self, column: Any, kind: Column) -> sa.ColumnElement[bool] | None:
        """A condition true where ``column``'s stored value reads back as exactly one value
        of ``kind`` (change detection's client-side comparison drops a row only where it
        holds); ``None``: always (a typed database).  A database storing values of any type
        in any column (SQLite) guards on the value's storage class."""
        return None

    def canonical_json(self, texts: pa.ChunkedArray) -> pa.ChunkedArray | None:
        """For incoming JSON documents: the text this database reads back for each once it
        is stored in a column whose values it compares as JSON (null where that cannot be
        told exactly), so a stored document equal to it is certainly equal to the incoming
        one; ``None``: JSON compares as text here (only the same text is equal)."""
        return None

    def serialize_merges(self, conn: Connection, ref: TableRef) -> None:  # noqa: B027 - optional hook
        """Called before a staged merge (``UPDATE … FROM`` + anti-join ``INSERT``) into
        ``ref`` when a unique index guards its key: make concurrent bulkframe merges into the
        same table queue up, so their row locks cannot deadlock.  Default: nothing (a
        backend without concurrent writers is serialized by :meth:`begin_write`)."""

    def lock_key_space(self, conn: Connection, ref: TableRef) -> None:
        """Before matching rows on columns that no unique index guards: keep every other
        writer from inserting or changing ``ref``'s rows until this transaction ends, so no
        key can be inserted twice.  Default: nothing on a single-writer backend
        (:meth:`begin_write` already holds the write lock); a backend with concurrent
        writers must override it, else the merge is refused."""
        if self.capabilities.concurrent_writers:
            from bulkframe.errors import NotSupportedError

            raise NotSupportedError(
                f"{self.name}: matching rows on columns without a unique index needs a table lock this "
                "backend does not provide; create a unique index on the key columns"
            )

    def prefer_ordered_join(self, conn: Connection) -> None:  # noqa: B027 - optional hook
        """Before a ``FULL OUTER JOIN`` of two tables by a key both have a unique index on
        (same-database verification): make the rest of ``conn``'s transaction join them
        by walking both indexes in key order, where the planner would otherwise build a
        hash table (default: leave the plan to the database)."""

    def verify_bucket_hashes(
        self,
        source: sa.FromClause,
        bucket: sa.ColumnElement[int],
        where: sa.ColumnElement[bool] | None,
        values: Sequence[DigestInput],
    ) -> sa.Select[Any] | None:
        """A query computing, inside the database, per ``bucket`` of the rows of
        ``source`` that satisfy ``where``: ``bucket``, ``n`` (rows), and ``h1``, ``h2`` —
        the sums of the two signed 32-bit halves of each row's hash, the first 8 bytes of
        the MD5 of the row's canonical text over ``values`` (big-endian), exactly as
        :mod:`bulkframe.ops.verify_canon` defines them.  ``None`` (the default): the
        database cannot, and full verification streams the rows and hashes them
        client-side, with the same result."""
        return None

    # -- connections -------------------------------------------------------------
    def connect(self, retries: int = 0) -> Connection:
        """Open a connection; a transient failure is retried ``retries`` times."""
        for attempt in range(retries + 1):
            try:
                raw = self._connect_raw()
                break
            except Exception as exc:
                error = self.translate_error(exc, "connect")
                if not error.transient or attempt == retries:
                    raise error from exc
                time.sleep(0.1 * 2**attempt)
        return Connection(self, raw)

    def translate_error(self, exc: BaseException, context: str) -> DatabaseError:
        """Map a driver error to bulkframe's tree, by SQLSTATE first."""
        if isinstance(exc, DatabaseError):
            return exc
        state = self.sqlstate_of(exc)
        message = f"{type(exc).__name__}: {exc}".strip()
        first_line = message.splitlines()[0] if message else type(exc).__name__
        text = f"{first_line} (during {context[:200]})"
        found = error_for_sqlstate(text, state)
        if found is not None:
            return found
        if self.is_transient(exc):
            return TransientError(text, sqlstate=state)
        return DatabaseError(text, sqlstate=state)

    def is_transient(self, exc: BaseException) -> bool:
        """Driver-specific transient errors that carry no SQLSTATE (connection gone)."""
        text = str(exc).lower()
        return any(
            s in text
            for s in (
                "server closed the connection",
                "connection refused",
                "terminating connection",
                "no connection to the server",
                "database is locked",
                "could not connect",
            )
        )

    # -- SQL building ----------------------------------------------------------------
    #: ``DEFAULT`` spellings of the clock tokens (``:current_timestamp``,
    #: ``:current_date``) in ``CREATE TABLE``; a backend that stores timestamps as text
    #: spells them in its own format.
    sql_default_tokens: ClassVar[Mapping[str, str]] = {
        ":current_timestamp": "CURRENT_TIMESTAMP",
        ":current_date": "CURRENT_DATE",
    }

    def upsert_insert(self, table: sa.Table) -> Any:
        """An ``INSERT`` construct into ``table`` that offers ``on_conflict_do_update`` /
        ``on_conflict_do_nothing`` and ``excluded`` (the dialect's own ``insert``); needed
        when ``capabilities.upsert == "on_conflict"``."""
        from bulkframe.errors import NotSupportedError

        raise NotSupportedError(f"{self.name} has no INSERT … ON CONFLICT construct (capability upsert)")

    def upsert_inserted_flag(self) -> sa.ColumnElement[bool] | None:
        """A ``RETURNING`` expression of an ``INSERT … ON CONFLICT`` that is true for rows it
        inserted and false for rows it updated, so one statement reports exact counts; ``None``
        (default) counts the new keys first, inside the same write transaction."""
        return None

    def begin_load(self, conn: Connection, ref: TableRef, options: Any) -> None:  # noqa: B027 - optional hook
        """Before rows are loaded into ``ref`` in the current transaction: apply the load
        options (:class:`~bulkframe.options.LoadOptions`) the backend honours (its
        ``capabilities.load_options``; the others were refused).  :meth:`end_load` always
        follows, also when the load fails."""

    def end_load(self, conn: Connection, options: Any) -> None:  # noqa: B027 - optional hook
        """Undo what :meth:`begin_load` changed in the session."""

    def merge_stage(
        self,
        conn: Connection,
        target: sa.Table,
        stage: sa.Table,
        columns: Sequence[str],
        keys: Sequence[str],
        *,
        mode: str,
        update_columns: Sequence[str] | None,
        update_where: sa.ColumnElement[bool] | None,
        insert_where: sa.ColumnElement[bool] | None,
        update_if: Any,
        staged_columns: Sequence[str] | None,
        staged: int,
        stage_where: sa.ColumnElement[bool] | None,
    ) -> MergeCounts:
        """Merge ``stage`` into ``target`` with exact inserted/updated/skipped counts, for a
        backend whose ``capabilities.upsert`` is ``"backend"``; the arguments are those of
        :func:`~bulkframe.backends.statements.merge_from_stage`."""
        from bulkframe.errors import NotSupportedError

        raise NotSupportedError(f"{self.name} does not merge staging tables itself (capability upsert)")

    def modify_returning(self, conn: Connection, stmt: Any, table: sa.Table) -> pa.Table:
        """Run an ``UPDATE``/``DELETE`` on ``table`` and return the rows it changed (an
        update's rows as they are after it): ``… RETURNING`` unless overridden."""
        return conn.fetch_arrow(stmt.returning(*table.c))

    def index_stage(self, conn: Connection, stage: TableRef, keys: Sequence[str]) -> None:
        """Index a filled staging table on ``keys`` (read by key in a later statement)."""
        conn.run(
            f"CREATE INDEX {self.quote(stage.name + '_k')} ON {self.qualified(stage)} "
            f"({', '.join(self.quote(k) for k in keys)})"
        )

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
            *(
                sa.Column(
                    c.name,
                    self.sa_type(c),
                    primary_key=c.primary_key,
                    quote=True,
                    info={"bulkframe_kind": c.kind},
                )
                for c in columns
            ),  # filters check values by kind
            schema=ref.schema,
            quote=True,
        )

    def sa_type(self, column: Column) -> Any:
        """The SQLAlchemy type statements give ``column`` (its bind conversion applies to
        values compared with or assigned to it)."""
        return _SA_TYPES[column.kind]

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
        conn.temp_tables.add(ref)  # dropped when the connection goes back to the pool
        return ref

    def create_shared_stage(self, conn: Connection, ref: TableRef, columns: Sequence[Column]) -> None:
        """A regular (not temporary) staging table that other sessions can read: a
        distributed write stages in one process and applies in another.  Its rows are
        transient (rebuilt by a retry), so a backend may skip crash safety for it
        (default: a plain table)."""
        conn.run(self.create_table_sql(ref, columns))

    def drop_table(self, conn: Connection, ref: TableRef) -> None:
        conn.run(f"DROP TABLE IF EXISTS {self.qualified(ref)}")

    def rename_table(self, conn: Connection, ref: TableRef, new_name: str) -> None:
        """``ALTER TABLE ref RENAME TO new_name`` (same schema), inside the caller's
        transaction: with transactional DDL a drop-and-rename swap is atomic."""
        conn.run(f"ALTER TABLE {self.qualified(ref)} RENAME TO {self.quote(new_name)}")

    def table_names(self, conn: Connection, schema: str | None = None) -> list[str]:
        """The base tables (not views) of ``schema`` (default: the connection's current
        schema), sorted, without bulkframe's own ``_bf_`` tables; read through ADBC's
        ``GetObjects``."""
        raw = conn.raw
        catalog = raw.adbc_current_catalog
        wanted = raw.adbc_current_db_schema if schema is None else schema
        reader = raw.adbc_get_objects(depth="tables", catalog_filter=catalog, table_types_filter=["table"])
        names: list[str] = []
        for entry in reader.read_all().to_pylist():
            for db_schema in entry["catalog_db_schemas"] or ():
                if (db_schema["db_schema_name"] or "") == (wanted or ""):
                    names += [t["table_name"] for t in db_schema["db_schema_tables"] or ()]
        return sorted(n for n in names if not n.startswith("_bf_") and not self.internal_table(n))

    def internal_table(self, name: str) -> bool:
        """Whether ``name`` is one of the database's own catalog tables (never copied)."""
        return False

    def tables_with_prefix(self, conn: Connection, prefix: str, schema: str | None = None) -> list[str]:
        """Names of the tables of ``schema`` (default: the connection's) that start with
        ``prefix``, read through the ADBC catalog call (``adbc_get_objects``)."""
        pattern = prefix.replace("%", "_") + "%"  # ``_`` matches any one character: a superset
        try:
            objects = conn.raw.adbc_get_objects(
                depth="tables", db_schema_filter=schema, table_name_filter=pattern
            ).read_all()
        except Exception as exc:
            raise conn.failure(exc, "list tables") from exc
        names = []
        for catalog in objects.to_pylist():
            for db_schema in catalog["catalog_db_schemas"] or ():
                names += [t["table_name"] for t in db_schema["db_schema_tables"] or ()]
        # LIKE has no portable escape: match the prefix exactly here
        return sorted({n for n in names if n.startswith(prefix)})

    def ingest_stage(self, conn: Connection, stage: TableRef, data: pa.Table) -> int:
        return conn.ingest(stage, data, temporary=True)
