"""MySQL and MariaDB: ``LOAD DATA LOCAL INFILE`` fed from Arrow, reads through connectorx.

``mysql://user:password@host:3306/database`` (also ``mariadb://``).  The driver is
mysqlclient (``MySQLdb``), chosen by measurement over PyMySQL (``benchmarks/bench_mysql.py``:
the same LOAD DATA, 3-4x faster fetches).  What differs from the other backends:

* **Writes**: every batch is encoded to the server's default ``LOAD DATA`` text format
  (:mod:`bulkframe.backends.mysql_load`: tab-separated, ``\\`` escapes, ``\\N`` for NULL;
  binary columns as hex through ``UNHEX``) in a temporary file and loaded with
  ``LOAD DATA LOCAL INFILE``.  With ``LOCAL`` the server turns data errors and duplicate
  keys into warnings and goes on; bulkframe reads the warnings after each load and raises
  the first as the error it is (the transaction is rolled back): nothing lands truncated,
  skipped or converted.  ``use_load_data=False`` writes multi-row ``INSERT`` statements
  instead (slower).
* **Reads**: a query whose result columns connectorx converts exactly (probed with
  ``LIMIT 0``: no ``DECIMAL`` with more than 10 fractional or 28 integer digits, no
  ``TIME``) and that sees only committed data (no uncommitted write, no session temporary
  table in this session) is read by connectorx into Arrow; any other through the
  driver's fetch (exact: ``Decimal`` values).
* **Upsert**: ``INSERT … SELECT … ON DUPLICATE KEY UPDATE`` from a staging table, whose
  first assignment counts the rows that met an existing key (``@bf_dup``): exact counts
  from the statement itself, in the same transaction, checked against the affected rows
  (:meth:`MySQLBackend.merge_stage`).  ``insert_if``, ``update_if``, columns updated but
  not inserted, or other unique keys on the table use a locking count, then
  ``UPDATE … JOIN`` and ``INSERT … SELECT`` instead.
* **Types**: DATETIME(6) holds timestamps; tz-aware ones are stored as their UTC wall time,
  marked by the column comment ``bulkframe:timestamptz``.  JSON (MariaDB: a checked
  LONGTEXT, marked ``bulkframe:json``), native UUID on MariaDB ≥ 10.7 (else CHAR(36)
  marked ``bulkframe:uuid``), text as ``utf8mb4`` with a binary NO PAD collation (so
  ``'a'``, ``'A'`` and ``'a '`` stay different keys, as on the other databases).
* **Sessions**: ``sql_mode`` strict (``STRICT_ALL_TABLES`` … ``ANSI_QUOTES``), time zone
  UTC, the client flag ``FOUND_ROWS`` (an ``UPDATE`` counts the rows it matched, as on
  PostgreSQL).  DDL commits implicitly in MySQL; bulkframe's staging tables are
  ``TEMPORARY`` (no implicit commit) and never altered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import tempfile
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.mysql import mariadb
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from bulkframe.backends.base import Backend, ForeignKey, TableRef
from bulkframe.backends.capabilities import Capabilities
from bulkframe.backends.connection import Connection
from bulkframe.backends.mysql_load import ArrowCursor, encode_batch
from bulkframe.backends.statements import MergeCounts
from bulkframe.errors import (
    DatabaseError,
    IntegrityError,
    InvalidOptionValueError,
    NotSupportedError,
    SchemaError,
)
from bulkframe.portable_sql import CaseSensitiveLike, CharLength, ExactInteger, PortableCast
from bulkframe.types import Column

log = logging.getLogger("bulkframe")

_DIALECTS = ("mysql", "mariadb")

#: MySQL error number → the SQLSTATE PostgreSQL would report, so errors classify alike
#: (constraint violations 23…, data errors 22…, transient ones 08…/40…/55P03).
SQLSTATE_BY_ERRNO: dict[int, str] = {
    1062: "23505",  # duplicate entry
    1586: "23505",
    1451: "23503",  # foreign key: a child row exists
    1452: "23503",  # foreign key: no parent row
    1216: "23503",
    1217: "23503",
    1048: "23502",  # column cannot be null
    1364: "23502",  # field has no default value
    1423: "23502",
    3819: "23514",  # check constraint (MySQL)
    4025: "23514",  # check constraint (MariaDB)
    1264: "22003",  # out of range
    1690: "22003",  # BIGINT value out of range
    1406: "22001",  # data too long
    1265: "22000",  # data truncated
    1366: "22007",  # incorrect value
    1292: "22007",  # incorrect datetime/number value
    1367: "22007",
    1411: "22007",
    3140: "22032",  # invalid JSON text
    4038: "22032",  # MariaDB: syntax error in JSON text
    1365: "22012",  # division by 0
    1213: "40P01",  # deadlock
    1205: "55P03",  # lock wait timeout
    1927: "08006",  # MariaDB: connection was killed
    2002: "08001",
    2003: "08001",
    2006: "08006",  # server has gone away
    2013: "08006",  # lost connection during query
    2055: "08006",
    1053: "57P01",  # server shutdown in progress
    1040: "53300",  # too many connections
    1146: "42P01",  # table does not exist
    1054: "42703",  # unknown column
}

#: ``sql_mode`` of bulkframe's sessions: strict (no silent truncation or zero dates), ``"``
#: quotes identifiers (as in standard SQL), an explicit 0 into an AUTO_INCREMENT column
#: stays 0.
SQL_MODE = (
    "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
    "NO_ENGINE_SUBSTITUTION,ANSI_QUOTES,NO_AUTO_VALUE_ON_ZERO"
)

_MARKER = re.compile(r"bulkframe:([a-z]+)")
_TYPE = re.compile(r"^([a-z ]+?)(?:\((\d+)(?:,(\d+))?\))?( unsigned)?( zerofill)?$")

_DDL = {
    "int16": "SMALLINT",
    "int32": "INT",
    "int64": "BIGINT",
    "float32": "FLOAT",
    "float64": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "time": "TIME(6)",
    "timestamp": "DATETIME(6)",
    "binary": "LONGBLOB",
}

#: Text columns that a key or index needs (a TEXT column cannot be one without a prefix).
KEY_TEXT_LENGTH = 255

#: connectorx reads DECIMAL through a 28-digit decimal into decimal128(38, 10): exact only
#: within these digits (a DECIMAL(30,10) value fails in it, measured)
_CX_SCALE, _CX_DIGITS = 10, 28
_NEWDECIMAL, _TIME = 246, 11


def _errno(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], int):
        return int(args[0])
    return None


class _Session:
    """A mysqlclient connection as bulkframe's :class:`Connection` drives it (DBAPI plus
    Arrow reads and bulk ingest, see :class:`~bulkframe.backends.mysql_load.ArrowCursor`).

    It remembers whether the open transaction wrote anything and which temporary tables
    the session holds: reads of committed data only may go through connectorx."""

    def __init__(self, backend: MySQLBackend, conn: Any):
        self.backend = backend
        self.conn = conn
        self.dirty = False
        self.temporary: set[str] = set()
        #: the running call's load settings (:meth:`MySQLBackend.begin_load`)
        self.load: dict[str, Any] = {}
        self.thread_id = int(conn.thread_id())

    def deferrable(self, sql: str) -> bool:
        """A SELECT connectorx could run instead: this session wrote nothing uncommitted
        and the statement names none of its temporary tables."""
        return (
            self.backend.use_connectorx
            and not self.dirty
            and sql.lstrip()[:6].upper() == "SELECT"
            and not any(name in sql for name in self.temporary)
        )

    def note(self, sql: str) -> None:
        head = sql.lstrip()[:6].upper()
        if head not in ("SELECT", "SHOW C", "SHOW F", "SHOW I", "SHOW W"):
            self.dirty = True

    def cursor(self) -> ArrowCursor:
        return ArrowCursor(self, self.conn.cursor(), self.backend.load_rows, self.backend.arrow_rows)

    def commit(self) -> None:
        self.conn.commit()
        self.dirty = False

    def rollback(self) -> None:
        self.conn.rollback()
        self.dirty = False

    def close(self) -> None:
        self.conn.close()


class MySQLBackend(Backend):
    """MySQL 8 / MariaDB ≥ 10.5 through mysqlclient; reads through connectorx."""

    capabilities = Capabilities(
        upsert="backend",
        concurrent_writers=True,
        regex=True,
        modified_count="rowcount",
        select_for_update=True,
        reopen_temporary=False,
        transactional_ddl=False,
        triggers=False,
        load_options=("disable_foreign_keys", "mysql_options", "use_load_data"),
        # exact both ways through LOAD DATA and the reads; JSON compares as text on MariaDB
        # (and equal text is an equal document on MySQL); no floats (text round trip), no
        # dates and times (zero dates, session time zone), no bool (TINYINT holds any small
        # integer)
        client_compare_kinds=frozenset({"int16", "int32", "int64", "decimal", "text", "json"}),
    )
    dialect: sa.Dialect = mariadb.MariaDBDialect()

    #: ``mysql_options`` keys bulkframe honours, and what they mean (docs/backends.md)
    MYSQL_OPTIONS: ClassVar[Mapping[str, str]] = {
        "local_infile": "True: load through LOAD DATA LOCAL INFILE (the only way bulkframe uses LOAD DATA)",
        "fields_terminated_by": "the field separator of the text bulkframe writes and LOAD DATA reads",
        "lines_terminated_by": "the row separator of that text",
        "ignore_lines": "header lines at the top of that text (bulkframe writes the column names) that LOAD DATA skips",
    }
    #: keys that only describe a file bulkframe would hand to LOAD DATA unread
    FILE_ONLY_OPTIONS = ("fields_enclosed_by", "fields_escaped_by", "character_set", "lines_starting_by")

    def __init__(self, url: str):
        super().__init__(url)
        parts = urlsplit(url)
        self._connect_args: dict[str, Any] = {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or 3306,
            "user": unquote(parts.username or "root"),
            "password": unquote(parts.password or ""),
            "database": unquote(parts.path.lstrip("/")) or None,
        }
        for key, value in parse_qsl(parts.query):
            if key in ("unix_socket", "charset", "ssl_mode"):
                self._connect_args[key] = value
            elif key == "connect_timeout":
                self._connect_args[key] = int(value)
            else:
                raise NotSupportedError(
                    f"URL option {key!r} is not supported on {self.name}; "
                    "supported: unix_socket, connect_timeout, ssl_mode"
                )
        if not self._connect_args["database"]:
            raise NotSupportedError(f"{url!r} names no database; use mysql://user@host:3306/database")
        self._flavour_lock = threading.Lock()
        self.mariadb = True
        self.server_version: tuple[int, ...] = ()

    # -- connections ---------------------------------------------------------------
    def _connect_raw(self) -> Any:
        import MySQLdb
        from MySQLdb.constants import CLIENT

        conn = MySQLdb.connect(
            **{k: v for k, v in self._connect_args.items() if v is not None},
            charset="utf8mb4",
            local_infile=True,
            client_flag=CLIENT.FOUND_ROWS,
            autocommit=False,
        )
        try:
            cur = conn.cursor()
            cur.execute(f"SET SESSION sql_mode = '{SQL_MODE}', time_zone = '+00:00'")
            if not self.server_version:
                cur.execute("SELECT VERSION()")
                self._set_flavour(str(cur.fetchone()[0]))
            cur.close()
        except Exception:
            conn.close()
            raise
        return _Session(self, conn)

    def _set_flavour(self, version: str) -> None:
        with self._flavour_lock:
            self.mariadb = "mariadb" in version.lower()
            self.server_version = tuple(int(p) for p in re.findall(r"\d+", version.split("-")[0])[:3])
            if not self.mariadb:
                self.dialect = mysql.dialect()
            self.dialect.server_version_info = self.server_version
            self.dialect._backslash_escapes = True  # type: ignore[attr-defined]

    def sqlstate_of(self, exc: BaseException) -> str | None:
        number = _errno(exc)
        if number is not None:
            return SQLSTATE_BY_ERRNO.get(number)
        return super().sqlstate_of(exc)

    def is_transient(self, exc: BaseException) -> bool:
        text = str(exc).lower()
        return super().is_transient(exc) or "lost connection" in text or "gone away" in text

    def quote(self, identifier: str) -> str:
        """A quoted identifier; MySQL identifiers hold only characters of Unicode's basic
        plane (no emoji): others are refused here, naming the identifier."""
        if any(ord(ch) > 0xFFFF for ch in identifier):
            raise SchemaError(
                f"identifier {identifier!r} has characters outside Unicode's basic plane, which "
                f"{self.name} identifiers cannot hold; rename it"
            )
        return super().quote(identifier)

    # -- catalog ---------------------------------------------------------------------
    def reflect(self, conn: Connection, ref: TableRef) -> list[Column] | None:
        try:
            rows = conn.fetchall(f"SHOW FULL COLUMNS FROM {self.qualified(ref)}")
        except DatabaseError as exc:
            if exc.sqlstate == "42P01":
                return None
            raise
        if not rows:
            return None
        columns = []
        for name, declared, _collation, null, key, default, extra, _priv, comment in rows:
            kind, p, s, length, unsupported = _kind_of(str(declared), str(comment or ""))
            auto = "auto_increment" in str(extra).lower()
            generated = "generated" in str(extra).lower() or "virtual" in str(extra).lower()
            columns.append(
                Column(
                    str(name),
                    kind,
                    nullable=null == "YES",
                    primary_key=key == "PRI",
                    precision=p if kind == "decimal" else None,
                    scale=s if kind == "decimal" else None,
                    length=length if kind == "text" else None,
                    has_default=default is not None or auto or generated,
                    unsupported=unsupported,
                )
            )
        if any(c.primary_key for c in columns) and ref.name not in conn.raw.temporary:
            # SHOW COLUMNS marks a UNIQUE NOT NULL key PRI when the table has no primary key
            pk = {
                str(r[0])
                for r in conn.fetchall(
                    sa.text(
                        "SELECT column_name FROM information_schema.key_column_usage WHERE table_schema = "
                        "COALESCE(:s, DATABASE()) AND table_name = :t AND constraint_name = 'PRIMARY'"
                    ).bindparams(s=ref.schema, t=ref.name)
                )
            }
            columns = [dataclasses.replace(c, primary_key=c.name in pk) for c in columns]
        return columns

    def foreign_keys(self, conn: Connection, ref: TableRef) -> list[ForeignKey]:
        rows = conn.fetchall(
            sa.text(
                "SELECT constraint_name, referenced_table_schema, referenced_table_name, column_name, "
                "referenced_column_name FROM information_schema.key_column_usage WHERE table_schema = "
                "COALESCE(:s, DATABASE()) AND table_name = :t AND referenced_table_name IS NOT NULL "
                "ORDER BY constraint_name, ordinal_position"
            ).bindparams(s=ref.schema, t=ref.name)
        )
        grouped: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            grouped.setdefault(str(row[0]), []).append(row)
        current = conn.scalar("SELECT DATABASE()")
        out = []
        for parts in grouped.values():
            schema = str(parts[0][1])
            out.append(
                ForeignKey(
                    tuple(str(p[3]) for p in parts),
                    str(parts[0][2]),
                    None if schema == current and ref.schema is None else schema,
                    tuple(str(p[4]) for p in parts),
                )
            )
        return out

    def unique_keys(self, conn: Connection, ref: TableRef) -> list[tuple[str, ...]]:
        try:
            rows = conn.fetchall(f"SHOW INDEX FROM {self.qualified(ref)}")
        except DatabaseError as exc:
            if exc.sqlstate == "42P01":
                return []
            raise
        keys: dict[str, list[tuple[int, str | None, Any]]] = {}
        for row in rows:
            non_unique, index, seq, column, sub_part = row[1], str(row[2]), int(row[3]), row[4], row[7]
            if int(non_unique) == 0:
                keys.setdefault(index, []).append((seq, column, sub_part))
        out = []
        for _index, parts in sorted(keys.items(), key=lambda kv: kv[0] != "PRIMARY"):
            parts.sort()
            if all(col is not None and sub is None for _, col, sub in parts):
                out.append(tuple(str(col) for _, col, _ in parts))
        return out

    def distinct(self, stored: Any, incoming: Any, column: Column) -> sa.ColumnElement[bool]:
        """Text compares byte for byte (``CAST … AS BINARY``): a stage's binary collation
        and the table's own (``utf8mb4_bin`` against ``utf8mb4_nopad_bin``) cannot be
        compared directly (error 1267), and a case-insensitive or PAD SPACE collation
        would call a changed value equal and leave it unwritten.  JSON on MariaDB ≥ 10.7
        compares as JSON (``JSON_EQUALS``, as ``jsonb`` on PostgreSQL: key order and
        spacing aside); older MariaDB compares its text."""
        if column.kind == "json" and self.mariadb and self.server_version >= (10, 7):
            either = sa.or_(stored.is_(None), incoming.is_(None))
            both = sa.and_(stored.is_(None), incoming.is_(None))
            same = sa.func.coalesce(sa.func.json_equals(stored, incoming), 0) == 1
            return sa.case((either, sa.not_(both)), else_=sa.not_(same))
        if column.kind in ("text", "json"):
            stored, incoming = sa.cast(stored, sa.LargeBinary), sa.cast(incoming, sa.LargeBinary)
        return super().distinct(stored, incoming, column)

    # -- DDL -------------------------------------------------------------------------
    def _text_collation(self) -> str:
        return "utf8mb4_nopad_bin" if self.mariadb else "utf8mb4_0900_bin"

    def ddl_type(self, column: Column) -> str:
        kind = column.kind
        text = f"CHARACTER SET utf8mb4 COLLATE {self._text_collation()}"
        if kind == "decimal":
            return f"DECIMAL({column.precision or 38},{column.scale if column.scale is not None else (0 if column.precision else 10)})"
        if kind == "text":
            if column.length:
                return f"VARCHAR({column.length}) {text}"
            if column.primary_key:
                return f"VARCHAR({KEY_TEXT_LENGTH}) {text}"
            return f"LONGTEXT {text}"
        if kind == "timestamptz":
            return "DATETIME(6) COMMENT 'bulkframe:timestamptz'"
        if kind == "json":
            # MariaDB's JSON is a LONGTEXT with a JSON_VALID check: the comment tells it apart
            return "JSON COMMENT 'bulkframe:json'"
        if kind == "uuid":
            if self.mariadb and self.server_version >= (10, 7):
                return "UUID"
            return "CHAR(36) CHARACTER SET ascii COLLATE ascii_bin COMMENT 'bulkframe:uuid'"
        return _DDL[kind]

    def ddl_key_type(self, column: Column) -> str:
        """Unbounded text and binary under a key become ``VARCHAR(255)``/``VARBINARY(255)``:
        a key on LONGTEXT needs MariaDB's hash "long unique", which fails under concurrent
        loads (error 1467).  Longer values are refused by strict mode, never cut."""
        if column.kind == "text" and not column.length:
            return f"VARCHAR({KEY_TEXT_LENGTH}) CHARACTER SET utf8mb4 COLLATE {self._text_collation()}"
        if column.kind == "binary":
            return f"VARBINARY({KEY_TEXT_LENGTH})"
        return self.ddl_type(column)

    def identity_type(self, column: Column) -> str:
        return f"{self.ddl_type(column)} AUTO_INCREMENT"

    def create_table_sql(self, ref: TableRef, columns: Sequence[Column], *, temporary: bool = False) -> str:
        sql = super().create_table_sql(ref, columns, temporary=temporary)
        if temporary:
            # a narrow staging table (id and filter-value lists) is indexed when it is created
            # (CREATE INDEX later would commit), so NOT IN / EXISTS probes into it are lookups;
            # wide stages are scanned once and joined to the target's key
            keys = list(columns) if len(columns) <= 3 else []
            if keys:
                parts = ", ".join(
                    f"{self.quote(c.name)}({KEY_TEXT_LENGTH})"
                    if c.kind in ("text", "json", "binary") and not c.length
                    else self.quote(c.name)
                    for c in keys
                )
                sql = f"{sql[:-1]}, INDEX ({parts}))"
        return sql + " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

    def create_stage(self, conn: Connection, columns: Sequence[Column]) -> TableRef:
        ref = super().create_stage(conn, columns)
        conn.raw.temporary.add(ref.name)
        return ref

    def drop_table(self, conn: Connection, ref: TableRef) -> None:
        # DROP TABLE commits the transaction; DROP TEMPORARY TABLE does not
        if ref in conn.temp_tables or ref.name in conn.raw.temporary:
            conn.run(f"DROP TEMPORARY TABLE IF EXISTS {self.qualified(ref)}")
            conn.raw.temporary.discard(ref.name)
            return
        conn.run(f"DROP TABLE IF EXISTS {self.qualified(ref)}")

    def lock_key_space(self, conn: Connection, ref: TableRef) -> None:
        """A locking read of every row (``SELECT COUNT(*) … FOR UPDATE``): in InnoDB's
        REPEATABLE READ it takes next-key locks on every index record and gap, so no other
        writer inserts or changes a row of ``ref`` until this transaction ends (``LOCK
        TABLES`` would commit the transaction)."""
        conn.fetchall(f"SELECT COUNT(*) FROM {self.qualified(ref)} FOR UPDATE")

    def index_stage(self, conn: Connection, stage: TableRef, keys: Sequence[str]) -> None:
        """Nothing: ``CREATE INDEX`` commits the transaction in MySQL, even on a temporary
        table; the statements that read a stage by key join it to the target's key."""

    def allocate_ids(self, conn: Connection, ref: TableRef, column: str, n: int) -> list[int]:
        """``max(column)`` read with a locking read (``FOR UPDATE`` locks the end of the
        index: concurrent inserts past it wait for this transaction), and at least the
        table's ``AUTO_INCREMENT`` counter; explicit ids inserted above the counter move it
        past them."""
        q = self.quote(column)
        top = conn.scalar(f"SELECT COALESCE(MAX({q}), 0) FROM {self.qualified(ref)} FOR UPDATE")
        counter = conn.scalar(
            sa.text(
                "SELECT auto_increment FROM information_schema.tables WHERE table_schema = "
                "COALESCE(:s, DATABASE()) AND table_name = :t"
            ).bindparams(s=ref.schema, t=ref.name)
        )
        start = max(int(top) + 1, int(counter or 1))
        return list(range(start, start + n))

    # -- statements ------------------------------------------------------------------
    def modify_returning(self, conn: Connection, stmt: Any, table: sa.Table) -> pa.Table:
        """``UPDATE``'s rows as they are after it: MySQL has no ``UPDATE … RETURNING``.
        The primary keys the statement will touch are read first with a locking read,
        then the statement runs, then those rows are read back.  ``DELETE … RETURNING``
        is native on MariaDB ≥ 10.5 (read before deleting on MySQL)."""
        keys = [c for c in table.c if c.primary_key]
        is_delete = isinstance(stmt, sa.Delete)
        if is_delete and self.mariadb:
            return conn.fetch_arrow(stmt.returning(*table.c))
        if not keys:
            raise NotSupportedError(
                f"{self.name}: reading back the rows an update or delete changes needs a primary key on "
                f"{table.name} (MySQL has no UPDATE … RETURNING)"
            )
        where = stmt.whereclause if stmt.whereclause is not None else sa.true()
        if is_delete:
            before = conn.fetch_arrow(sa.select(*table.c).where(where).with_for_update())
            count = conn.run(stmt)
            if count != before.num_rows:  # pragma: no cover - the rows were locked
                raise DatabaseError(f"{table.name}: {count} rows deleted, {before.num_rows} read before")
            return before
        found = conn.fetch_arrow(sa.select(*keys).where(where).with_for_update())
        conn.run(stmt)
        if found.num_rows == 0:
            return conn.fetch_arrow(sa.select(*table.c).where(sa.false()))
        out = []
        names = [k.name for k in keys]
        step = 5000
        for start in range(0, found.num_rows, step):
            part = found.slice(start, step)
            values = list(zip(*(part.column(n).to_pylist() for n in names), strict=True))
            key = keys[0] if len(keys) == 1 else sa.tuple_(*keys)
            match = key.in_([v[0] if len(keys) == 1 else sa.tuple_(*v) for v in values])
            out.append(conn.fetch_arrow(sa.select(*table.c).where(match)))
        return pa.concat_tables(out, promote_options="permissive")

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
        """Merge the stage into ``target`` with exact counts.

        A locking read first counts the staged rows whose key exists (and, with a
        condition, those whose update it allows) and locks those rows (and, in
        REPEATABLE READ, the gaps where new keys go): the statements after it meet exactly
        those rows.  Then one ``INSERT … SELECT … ON DUPLICATE KEY UPDATE`` (skip mode: the
        key assigned to itself, a no-op that is not ``INSERT IGNORE``, which would also turn
        data errors into warnings), or with a condition or columns updated but not
        inserted ``UPDATE target JOIN stage … WHERE condition`` followed by ``INSERT …
        SELECT`` of the new keys.  The statements' affected-rows counts are checked
        against the locked counts; they cannot tell an inserted row from an unchanged one
        on their own."""
        from bulkframe.filters import to_sql as filter_sql

        match = sa.and_(sa.true(), *(target.c[k] == stage.c[k] for k in keys))
        scope = stage_where if stage_where is not None else sa.true()
        cols = list(update_columns) if update_columns is not None else [c for c in columns if c not in keys]
        condition = update_where
        if update_if is not None:
            incoming = {c: stage.c[c] for c in (staged_columns or columns)}
            cond = filter_sql(update_if, target, others={"excluded": incoming})
            condition = cond if condition is None else sa.and_(condition, cond)
        order = [stage.c[k] for k in keys]
        inserted_select = sa.select(*(stage.c[c] for c in columns)).where(scope).order_by(*order)
        if not keys:  # skip a row that clashes on any unique key (ON CONFLICT DO NOTHING)
            return self._merge_counted(
                conn, target, inserted_select, columns, keys, [], mode=mode, staged=staged
            )
        # ON DUPLICATE KEY fires on any unique key: one statement only where the conflict
        # key is the table's one unique key (elsewhere a clash on another key must fail)
        only_key = self.unique_keys(conn, TableRef(target.name, target.schema)) == [tuple(keys)]
        two_step = not only_key or (mode == "update" and (condition is not None or set(cols) - set(columns)))
        if not two_step and insert_where is None:
            return self._merge_counted(
                conn, target, inserted_select, columns, keys, cols, mode=mode, staged=staged
            )
        # one locking pass over the stage: existing keys (locked), those the condition lets
        # update, and new keys that insert_where admits
        found = target.c[keys[0]].is_not(None)

        def tally(clause: Any) -> Any:
            return sa.func.coalesce(sa.func.sum(sa.case((clause, 1), else_=0)), 0)

        locked = (
            sa.select(
                tally(found),
                tally(sa.and_(found, condition)) if condition is not None else tally(found),
                tally(sa.and_(~found, insert_where)) if insert_where is not None else tally(~found),
            )
            .select_from(stage.outerjoin(target, match))
            .where(scope)
            .with_for_update()
        )
        existing, updatable, new_rows = (int(v) for v in conn.fetchall(locked)[0])
        if not two_step:
            eligible = insert_where
            if insert_where is not None:
                eligible = (
                    sa.or_(insert_where, sa.exists().where(match)) if mode == "update" else insert_where
                )
            select = inserted_select.where(eligible) if eligible is not None else inserted_select
            insert = mysql.insert(target).from_select(list(columns), select)
            sets: dict[str, Any]
            if mode == "skip":
                sets = {keys[0]: target.c[keys[0]]}
            else:
                sets = {c: insert.inserted[c] for c in (cols or [keys[0]])}
            affected = conn.run(insert.on_duplicate_key_update(sets))
            # FOUND_ROWS: 1 per inserted row, 1 per found row (2 if its values changed)
            touched = existing if mode == "update" else (existing if insert_where is None else None)
            if touched is not None and not (new_rows + touched <= affected <= new_rows + 2 * touched):
                raise IntegrityError(
                    f"upsert into {target.name}: the statement reported {affected} affected rows, "
                    f"which {new_rows} new and {touched} locked existing rows cannot give"
                    " (a row matched another unique key); nothing was written",
                    sqlstate="23505",
                )
            if mode == "skip":
                return MergeCounts(new_rows, 0, staged - new_rows)
            return MergeCounts(new_rows, existing, staged - new_rows - existing)
        updated = 0
        if mode == "update":
            upd = sa.update(target).where(match, scope).values({c: stage.c[c] for c in cols or [keys[0]]})
            if condition is not None:
                upd = upd.where(condition)
            updated = conn.run(upd)
        if mode == "update" and updated != updatable:
            raise DatabaseError(
                f"upsert into {target.name}: {updated} rows updated where {updatable} were locked for it"
            )
        select = inserted_select.where(~sa.exists().where(match))
        if insert_where is not None:
            select = select.where(insert_where)
        inserted = conn.run(sa.insert(target).from_select(list(columns), select)) if new_rows else 0
        return MergeCounts(inserted, updated, staged - inserted - updated)

    def _merge_counted(
        self,
        conn: Connection,
        target: sa.Table,
        select: Any,
        columns: Sequence[str],
        keys: Sequence[str],
        cols: Sequence[str],
        *,
        mode: str,
        staged: int,
    ) -> MergeCounts:
        """One ``INSERT … SELECT … ON DUPLICATE KEY UPDATE`` that counts its own duplicates:
        the first assignment of the update clause, evaluated by the server once per staged
        row whose key exists, adds one to the session variable ``@bf_dup`` and leaves the
        key as it is.  Inserted = staged − duplicates, exactly, from the statement itself;
        the affected-rows figure is checked against it (FOUND_ROWS: 1 per insert, 1 per
        found row, 2 if its values changed)."""
        first = keys[0] if keys else columns[0]  # no keys: a clash on any unique key is skipped
        key = f"{self.quote(target.name)}.{self.quote(first)}"
        marker: sa.ColumnElement[Any] = sa.literal_column(f"IF((@bf_dup := @bf_dup + 1) > 0, {key}, {key})")
        insert = mysql.insert(target).from_select(list(columns), select)
        sets: list[tuple[str, Any]] = [(first, marker)]
        if mode == "update":
            sets += [(c, insert.inserted[c]) for c in cols if c != first]
        conn.run("SET @bf_dup = 0")
        affected = conn.run(insert.on_duplicate_key_update(sets))
        duplicates = int(conn.scalar("SELECT @bf_dup"))
        new_rows = staged - duplicates
        high = new_rows + (2 * duplicates if mode == "update" else duplicates)
        if not new_rows + duplicates <= affected <= high:
            raise IntegrityError(
                f"upsert into {target.name}: the statement reported {affected} affected rows for "
                f"{new_rows} new and {duplicates} existing keys; nothing was written",
                sqlstate="23505",
            )
        if mode == "skip":
            return MergeCounts(new_rows, 0, duplicates)
        return MergeCounts(new_rows, duplicates, staged - new_rows - duplicates)

    # -- bulk load -----------------------------------------------------------------------
    def begin_load(self, conn: Connection, ref: TableRef, options: Any) -> None:
        """``use_load_data`` and ``mysql_options`` for this session's loads;
        ``disable_foreign_keys``: ``SET SESSION foreign_key_checks = 0`` (restored by
        :meth:`end_load`, which always runs)."""
        settings: dict[str, Any] = {"use_load_data": options.use_load_data is not False}
        for key, value in dict(options.mysql_options or {}).items():
            if key in self.FILE_ONLY_OPTIONS:
                raise NotSupportedError(
                    f"mysql_options {key!r} describes a file handed to LOAD DATA unread; bulkframe reads "
                    "every input itself and writes the text LOAD DATA loads. Supported keys: "
                    + ", ".join(self.MYSQL_OPTIONS)
                )
            if key not in self.MYSQL_OPTIONS:
                raise NotSupportedError(
                    f"mysql_options {key!r} is not supported; supported: {', '.join(self.MYSQL_OPTIONS)}"
                )
            settings[key] = _load_option(key, value)
        if not settings["use_load_data"] and len(settings) > 1 + ("local_infile" in settings):
            raise InvalidOptionValueError(
                "mysql_options describe LOAD DATA, but use_load_data=False writes INSERTs"
            )
        conn.raw.load = settings
        if options.disable_foreign_keys:
            conn.run("SET SESSION foreign_key_checks = 0")

    def end_load(self, conn: Connection, options: Any) -> None:
        conn.raw.load = {}
        if options.disable_foreign_keys and not conn.closed:
            try:
                conn.run("SET SESSION foreign_key_checks = 1")
            except Exception:  # the session is gone or broken: it never goes back to the pool
                log.warning("could not restore foreign_key_checks; discarding the connection", exc_info=True)
                conn.discard()

    def load_rows(self, cursor: ArrowCursor, name: str, data: Any, schema: str | None) -> int:
        """Append ``data`` (a table or record-batch reader) to ``name``: LOAD DATA LOCAL
        INFILE batch by batch, or multi-row INSERTs with ``use_load_data=False``.

        With LOAD DATA the next batch is read and encoded into its file by a helper thread
        while the server loads the current one (the driver releases the GIL while it
        waits), so the client's work and the server's overlap."""
        ref = TableRef(name, schema)
        batches = iter(data.to_batches() if isinstance(data, pa.Table) else data)
        names = data.schema.names
        binary = [pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in data.schema]
        settings = cursor.session.load
        if not settings.get("use_load_data", True):
            return sum(self._insert_rows(cursor, ref, names, b) for b in batches if b.num_rows)
        fields = settings.get("fields_terminated_by", "\t")
        lines = settings.get("lines_terminated_by", "\n")
        header = int(settings.get("ignore_lines", 0))
        targets = [f"@v{i}" if binary[i] else self.quote(n) for i, n in enumerate(names)]
        sets = [f"{self.quote(n)} = UNHEX(@v{i})" for i, n in enumerate(names) if binary[i]]

        def next_file() -> tuple[str, int] | None:
            for batch in batches:
                text = encode_batch(batch, binary, fields=fields, lines=lines, header=header)
                if text is None:
                    continue
                fd, path = tempfile.mkstemp(prefix="bf_load_", suffix=".tsv")
                with os.fdopen(fd, "wb") as out:
                    out.write(memoryview(text))
                return path, int(batch.num_rows)
            return None

        total = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bf-load") as pool:
            pending = pool.submit(next_file)
            try:
                while (item := pending.result()) is not None:
                    pending = pool.submit(next_file)
                    path, rows = item
                    try:
                        sql = (
                            f"LOAD DATA LOCAL INFILE '{_path_literal(path)}' INTO TABLE {self.qualified(ref)} "
                            f"CHARACTER SET utf8mb4 FIELDS TERMINATED BY {_sql_text(fields)} ESCAPED BY '\\\\' "
                            f"LINES TERMINATED BY {_sql_text(lines)} IGNORE {header} LINES ({', '.join(targets)})"
                        )
                        if sets:
                            sql += " SET " + ", ".join(sets)
                        cursor.execute(sql)
                        self._check_warnings(cursor, ref, rows, cursor.rowcount)
                    finally:
                        os.unlink(path)
                    total += rows
            finally:  # a failed load: remove the file the helper may have written meanwhile
                with contextlib.suppress(Exception):
                    left = pending.result()
                    if left is not None:
                        os.unlink(left[0])
        return total

    def _check_warnings(self, cursor: ArrowCursor, ref: TableRef, sent: int, loaded: int) -> None:
        """LOAD DATA LOCAL reports data errors and duplicate keys as warnings and goes on:
        raise the first one as the error it is."""
        if cursor.warning_count() == 0 and loaded == sent:
            return
        cursor.execute("SHOW WARNINGS LIMIT 5")
        warnings = cursor.fetchall()
        for level, code, message in warnings:
            if str(level).lower() in ("warning", "error"):
                exc = _ServerMessage(int(code), f"{message} (LOAD DATA into {ref})")
                raise exc
        if loaded != sent:
            raise _ServerMessage(1265, f"LOAD DATA into {ref}: {loaded} of {sent} rows loaded")

    def _insert_rows(self, cursor: ArrowCursor, ref: TableRef, names: Sequence[str], batch: Any) -> int:
        """Multi-row INSERTs of at most ~1,000 rows each (``use_load_data=False``)."""
        cols = ", ".join(self.quote(n) for n in names)
        rows = pa.Table.from_batches([batch]).to_pylist()
        step = 1000
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            one = "(" + ", ".join(["%s"] * len(names)) + ")"
            sql = f"INSERT INTO {self.qualified(ref)} ({cols}) VALUES " + ", ".join([one] * len(part))
            params = [r[n] for r in part for n in names]
            cursor.execute(sql, params)
        return len(rows)

    # -- reads ------------------------------------------------------------------------------
    #: read committed data through connectorx where it is exact (tests switch it off to
    #: compare the two paths)
    use_connectorx: bool = True

    def arrow_rows(self, cursor: ArrowCursor) -> pa.Table:
        """The query's rows as Arrow: connectorx where that is exact and sees the same data
        (a held-back SELECT, see :meth:`_Session.deferrable`), else the driver's fetch."""
        pending = cursor.pending
        if pending is not None:
            sql, params = pending
            try:
                exact = _connectorx_exact(cursor.probe(sql, params))
                query = cursor.mogrify(sql, params) if exact else None
            except Exception:  # e.g. duplicate column names in a derived table: the driver reads it
                query = None
            if query is not None:
                import connectorx as cx

                try:
                    return cx.read_sql(self._connectorx_url(), query, return_type="arrow")
                except Exception as exc:  # never a wrong value: connectorx raised, the driver reads it
                    log.info("connectorx could not read the query (%s); reading through the driver", exc)
        return cursor.driver_arrow()

    def _connectorx_url(self) -> str:
        a = self._connect_args
        auth = quote(a["user"], safe="") + (":" + quote(a["password"], safe="") if a["password"] else "")
        return f"mysql://{auth}@{a['host']}:{a['port']}/{quote(a['database'], safe='')}"

    def read_cast(self, table: pa.Table, columns: dict[str, Column]) -> pa.Table:
        from bulkframe.normalize.conform import conform

        arrays = []
        for name in table.column_names:
            arr = table.column(name)
            col = columns.get(name)
            if col is not None:
                arr = _logical(arr, col)
            arrays.append(arr)
        out = pa.table(arrays, names=table.column_names)
        known = {n: columns[n] for n in out.column_names if n in columns}
        return conform(out, known, on_error="raise", table_name="(read)").table


#: result column types connectorx reads exactly (DBAPI type codes); DECIMAL only within
#: 28 digits with at most 10 after the point, TIME never (it fails on negative or > 24 h values), TIMESTAMP never
#: (it would convert in connectorx's session time zone)
_CX_TYPES = frozenset({0, 1, 2, 3, 4, 5, 8, 9, 10, 12, 13, 15, 246, 252, 253, 254})


def _connectorx_exact(description: Any) -> bool:
    for column in description or ():
        code, size, scale = int(column[1]), int(column[3] or 0), int(column[5] or 0)
        if code not in _CX_TYPES:
            return False
        if code in (0, 246):
            digits = size - (1 if scale else 0) - 1  # display size holds the sign and the point
            if scale > _CX_SCALE or digits > _CX_DIGITS:
                return False
    return True


class _ServerMessage(Exception):
    """A server warning raised as the error it reports (``args = (errno, message)``, as
    the driver's own errors)."""


def _sql_text(text: str) -> str:
    """A string literal for a LOAD DATA clause."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return "'" + escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r") + "'"


def _load_option(key: str, value: Any) -> Any:
    """A ``mysql_options`` value, checked."""
    if key == "local_infile":
        if value is not True:
            raise InvalidOptionValueError(
                f"mysql_options local_infile={value!r}: bulkframe loads only through LOAD DATA LOCAL INFILE "
                "(True); use use_load_data=False for INSERT statements"
            )
        return True
    if key == "ignore_lines":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
            raise InvalidOptionValueError(f"mysql_options ignore_lines must be an int 0..100, got {value!r}")
        return value
    if not isinstance(value, str) or not value or "\\" in value or any(c.isalnum() for c in value):
        raise InvalidOptionValueError(
            f"mysql_options {key}={value!r}: a separator must be a non-empty string of punctuation or "
            "whitespace without a backslash (the escape character)"
        )
    if key == "fields_terminated_by" and "\n" in value:
        raise InvalidOptionValueError(f"mysql_options fields_terminated_by={value!r} must not hold a newline")
    return value


def _path_literal(path: str) -> str:
    return path.replace("\\", "\\\\").replace("'", "\\'")


def _logical(arr: pa.ChunkedArray, col: Column) -> pa.ChunkedArray:
    """Driver/connectorx values → the column's logical Arrow type (exact casts only)."""
    t = arr.type
    kind = col.kind
    if kind == "bool" and (pa.types.is_integer(t)):
        return pc.not_equal(arr, 0)
    if kind in ("timestamptz",) and pa.types.is_timestamp(t) and t.tz is None:
        return arr.cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
    if kind == "decimal" and pa.types.is_decimal(t) and t != col.arrow_type():
        # connectorx reads DECIMAL as decimal128(38, 10): a safe cast to the column's own
        # precision and scale is exact (it raises rather than drop a digit)
        with contextlib.suppress(pa.ArrowInvalid):
            return arr.cast(col.arrow_type())
        return arr
    if kind in ("json", "uuid", "text") and (pa.types.is_binary(t) or pa.types.is_large_binary(t)):
        return arr.cast(pa.large_string())
    if kind == "binary" and (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return arr.cast(pa.large_binary())
    return arr


_KINDS = {
    "tinyint": "int16",
    "smallint": "int16",
    "mediumint": "int32",
    "int": "int32",
    "integer": "int32",
    "bigint": "int64",
    "float": "float32",
    "double": "float64",
    "double precision": "float64",
    "real": "float64",
    "decimal": "decimal",
    "numeric": "decimal",
    "char": "text",
    "varchar": "text",
    "tinytext": "text",
    "text": "text",
    "mediumtext": "text",
    "longtext": "text",
    "enum": "text",
    "set": "text",
    "date": "date",
    "time": "time",
    "datetime": "timestamp",
    "timestamp": "timestamptz",
    "json": "json",
    "uuid": "uuid",
    "binary": "binary",
    "varbinary": "binary",
    "tinyblob": "binary",
    "blob": "binary",
    "mediumblob": "binary",
    "longblob": "binary",
    "year": "int16",
}


def _kind_of(declared: str, comment: str) -> tuple[str, int | None, int | None, int | None, str | None]:
    """``(kind, precision, scale, length, unsupported)`` of a column type as SHOW COLUMNS
    spells it (``decimal(20,2)``, ``int(11) unsigned``, ``tinyint(1)``)."""
    text = declared.lower().strip()
    m = _TYPE.match(text) if not text.startswith(("enum(", "set(")) else None
    base = m.group(1).strip() if m else text.split("(", 1)[0]
    a = int(m.group(2)) if m and m.group(2) else None
    b = int(m.group(3)) if m and m.group(3) else None
    unsigned = bool(m and m.group(4))
    marker = _MARKER.search(comment)
    if marker and marker.group(1) in ("timestamptz", "json", "uuid"):
        return marker.group(1), None, None, None, None
    if base == "tinyint" and a == 1:
        return "bool", None, None, None, None
    if base == "bool" or base == "boolean":
        return "bool", None, None, None, None
    kind = _KINDS.get(base)
    if kind is None:
        return "text", None, None, None, declared
    if unsigned:
        if kind == "int16":
            kind = "int32"
        elif kind == "int32":
            kind = "int64"
        elif kind == "int64":
            return "decimal", 20, 0, None, None
    if kind == "decimal":
        return kind, a or 10, b or 0, None, None
    if kind == "text" and base in ("char", "varchar"):
        return kind, None, None, a, None
    return kind, None, None, None, None


# -- SQL spelled the MySQL way (see bulkframe.portable_sql) -------------------------------
for _name in _DIALECTS:

    @compiles(CaseSensitiveLike, _name)
    def _like_bin(element: CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
        # LIKE follows the column's collation: compare under a binary utf8mb4 collation, so
        # case counts and `_` is one character (LIKE BINARY would make it one byte)
        like = element.like_clause
        escape = compiler.process(sa.literal(like.modifiers.get("escape", "\\")), **kw)
        left, right = compiler.process(like.left, **kw), compiler.process(like.right, **kw)
        return (
            f"CONVERT({left} USING utf8mb4) COLLATE utf8mb4_bin LIKE "
            f"CONVERT({right} USING utf8mb4) COLLATE utf8mb4_bin ESCAPE {escape}"
        )

    @compiles(CharLength, _name)
    def _char_length(element: CharLength, compiler: SQLCompiler, **kw: Any) -> str:
        # length() counts bytes in MySQL
        return str(compiler.process(sa.func.char_length(*element.clauses.clauses), **kw))

    @compiles(ExactInteger, _name)
    def _exact_integer(element: ExactInteger, compiler: SQLCompiler, **kw: Any) -> str:
        # strict mode refuses an out-of-range value; a fraction would be rounded into an
        # integer column: such a value raises "BIGINT UNSIGNED value is out of range" instead
        value = element.value
        whole = value == sa.func.floor(value)
        overflow: sa.ColumnElement[Any] = sa.literal_column(
            "CAST(18446744073709551615 AS UNSIGNED)", sa.Numeric()
        ) + sa.func.ceiling(sa.func.abs(value))
        return str(compiler.process(sa.case((sa.or_(whole, value.is_(None)), value), else_=overflow), **kw))

    @compiles(PortableCast, _name)
    def _cast(element: PortableCast, compiler: SQLCompiler, **kw: Any) -> str:
        # a UUID is compared as its canonical text (CHAR(36), or MariaDB's UUID type, which
        # converts text itself): MySQL has no CAST(… AS UUID)
        if isinstance(element.type, sa.Uuid):
            return str(compiler.process(element.clause, **kw))
        return str(compiler.visit_cast(element, **kw))  # type: ignore[no-untyped-call]


__all__ = ["SQLSTATE_BY_ERRNO", "MySQLBackend"]
