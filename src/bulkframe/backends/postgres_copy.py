"""PostgreSQL's ``COPY … FROM STDIN (FORMAT csv)`` fed a stream of bytes, through psycopg:
the database side of ``bulkframe load``'s direct path (:mod:`bulkframe.cli.direct`).

The companion of :mod:`bulkframe.backends.postgres` that imports psycopg only (never
SQLAlchemy, PyArrow or ADBC), so a command that just streams a file into a table starts
in a fraction of a second.  The server parses every value with its own input functions;
one transaction; a refused value fails it whole, and the error carries PostgreSQL's
context -- the table, line, column and value.

A load with key handling (``upsert``, ``--conflict update|skip``, ``skip-existing``) is
``COPY`` into a temporary stage of the input's columns, then one ``INSERT … SELECT … ON
CONFLICT`` from it (:meth:`TextLoader.merge`), in the same transaction: what a data
engineer writes by hand with ``psql``, with exact counts.

A text-load companion offers :data:`ENCODINGS`, :func:`refusal` (what ``COPY`` cannot
take) and :func:`connect` (a :class:`TextLoader`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bulkframe.errors import DatabaseError

#: Python codec (``codecs.lookup(name).name``) → the server's name of the same encoding.
ENCODINGS = {
    "utf-8": "UTF8",
    "utf-8-sig": "UTF8",
    "iso8859-1": "LATIN1",
    "iso8859-2": "LATIN2",
    "iso8859-15": "LATIN9",
    "cp1250": "WIN1250",
    "cp1251": "WIN1251",
    "cp1252": "WIN1252",
    "koi8-r": "KOI8R",
}
#: A line holding only ``\\.`` between line breaks: the end-of-data marker of text ``COPY``
#: from a client, which the server honours in CSV too before version 18 (even inside a
#: quoted value).
_END_MARKS = (b"\n\\.\n", b"\n\\.\r", b"\r\\.\n", b"\r\\.\r")

_TABLE = """
SELECT n.nspname, c.relname, c.relkind IN ('r', 'p'), a.attname,
       CASE WHEN a.attnum = ANY(pk.indkey) AND (a.atthasdef OR a.attidentity <> '')
            THEN pg_get_serial_sequence(c.oid::regclass::text, a.attname) END,
       a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = '',
       a.attnotnull
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index pk ON pk.indrelid = c.oid AND pk.indisprimary
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.oid = to_regclass(%s)
ORDER BY a.attnum
"""
#: The column sets of the table's unique indexes that ``ON CONFLICT (columns)`` can use
#: (not partial, no expressions, not deferrable), the primary key first.
_UNIQUE = """
SELECT i.indisprimary, array_agg(a.attname::text ORDER BY k.ord)
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indimmediate
  AND i.indpred IS NULL AND i.indexprs IS NULL
GROUP BY i.indexrelid, i.indisprimary
ORDER BY i.indisprimary DESC, i.indexrelid
"""
#: First key of bulkframe's advisory locks (the second is a hash of the table's name), for
#: the library's merges (``PostgresBackend.serialize_merges``) and the direct merges here
#: alike, so they queue up.
MERGE_LOCK_CLASS = 0x62660001


def refusal(delimiter: str, null: str | None) -> str | None:
    """Why ``COPY (FORMAT csv)`` cannot take this delimiter and NULL spelling, or ``None``."""
    if len(delimiter) != 1 or not delimiter.isascii() or delimiter in '\r\n"':
        return f"--delimiter {delimiter!r}: COPY takes one ASCII character, not a quote or line break"
    if null is not None and any(c in null for c in ("\r", "\n", '"', delimiter)):
        return f"--null-string {null!r}: COPY refuses a quote, line break or the delimiter in it"
    return None


@dataclass(frozen=True)
class Table:
    """An existing table as ``COPY`` writes it: its schema and name, its columns in order,
    and the id sequences of its primary-key columns that have one."""

    schema: str
    name: str
    #: a plain or partitioned table (a view or foreign table is not loaded this way)
    writable: bool
    columns: tuple[str, ...]
    sequences: dict[str, str]
    #: NOT NULL columns without a default (an inserted row must give them)
    required: tuple[str, ...] = ()
    #: NOT NULL columns
    not_null: tuple[str, ...] = ()
    #: the column sets ``ON CONFLICT`` can name, the primary key's first (if any)
    unique: tuple[tuple[str, ...], ...] = ()
    has_primary_key: bool = False

    @property
    def primary_key(self) -> tuple[str, ...]:
        return self.unique[0] if self.has_primary_key else ()

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Loaded:
    """What a load did: the rows ``COPY`` wrote, and the rows deleted first (truncate)."""

    rows: int
    deleted: int | None = None


@dataclass(frozen=True)
class Merged:
    """What a merge did: the input rows, the rows inserted, the existing rows updated or
    left alone (``skipped``), and the rows dropped as repeats of a key within the input
    (``deduplicated``, counted in none of the others)."""

    rows: int
    inserted: int
    updated: int
    skipped: int
    deduplicated: int


def connect(url: str) -> TextLoader:
    """A loader on the database at ``url`` (a ``+driver`` suffix of the scheme is dropped,
    as the backend does)."""
    import psycopg

    try:
        conn = psycopg.connect("postgresql://" + url.split("://", 1)[1])
    except psycopg.Error as exc:
        raise _translated(exc, "connect") from None
    return TextLoader(conn)


class TextLoader:
    """One connection: the catalog lookup and the ``COPY`` of one load."""

    def __init__(self, conn: Any):
        self.conn = conn

    def table(self, name: str) -> Table | None:
        """The table ``name`` (taken literally, found on the search path), or ``None``."""
        import psycopg

        try:
            with self.conn.cursor() as cur:
                literal = '"' + name.replace('"', '""') + '"'
                cur.execute(_TABLE, (literal,))
                rows = cur.fetchall()
                cur.execute(_UNIQUE, (literal,))
                unique = cur.fetchall()
            self.conn.rollback()
        except psycopg.Error as exc:
            raise _translated(exc, f"reading the catalog entry of {name}") from None
        if not rows:
            return None
        schema, relname, writable = rows[0][:3]
        columns = tuple(r[3] for r in rows if r[3] is not None)
        return Table(
            schema,
            relname,
            bool(writable),
            columns,
            {r[3]: r[4] for r in rows if r[4]},
            required=tuple(r[3] for r in rows if r[3] is not None and r[5]),
            not_null=tuple(r[3] for r in rows if r[3] is not None and r[6]),
            unique=tuple(tuple(u[1]) for u in unique),
            has_primary_key=bool(unique and unique[0][0]),
        )

    def statement(
        self,
        table: Table,
        columns: Sequence[str] | None,
        *,
        delimiter: str,
        null: str | None,
        header: bool,
        encoding: str,
    ) -> Any:
        """``COPY "schema"."table" (columns) FROM STDIN (FORMAT csv, …)`` (all columns when
        ``columns`` is ``None``)."""
        from psycopg import sql

        options = [
            sql.SQL("FORMAT csv"),
            sql.SQL("DELIMITER {}").format(sql.Literal(delimiter)),
            sql.SQL("HEADER {}").format(sql.SQL("true" if header else "false")),
            sql.SQL("ENCODING {}").format(sql.Literal(encoding)),
        ]
        if null is not None:
            options.append(sql.SQL("NULL {}").format(sql.Literal(null)))
        names = (
            sql.SQL(" ({})").format(sql.SQL(", ").join(map(sql.Identifier, columns)))
            if columns is not None
            else sql.SQL("")
        )
        target = sql.Identifier(table.schema, table.name)
        return sql.SQL("COPY {}{} FROM STDIN ({})").format(target, names, sql.SQL(", ").join(options))

    def describe(self, statement: Any) -> str:
        return str(statement.as_string(self.conn))

    def load(
        self,
        table: Table,
        statement: Any,
        columns: Sequence[str] | None,
        blocks: Iterable[bytes],
        *,
        truncate: bool,
        source: str,
    ) -> Loaded:
        """Run ``statement`` (from :meth:`statement`) with ``blocks`` as its data, in one
        transaction: first ``DELETE FROM`` the table when ``truncate``; after it, move the
        id sequences of the primary-key columns given past the ids written (as
        ``bulk_create`` does).  An error of the server is bulkframe's database error with
        PostgreSQL's message and context; one raised by ``blocks`` is raised as it is.
        Either way nothing was written."""
        from psycopg import sql

        deleted = None
        with self._transaction(f"loading {source} into {table}") as cur:
            if truncate:
                cur.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table.schema, table.name)))
                deleted = int(cur.rowcount)
            loaded = self._copy(cur, statement, blocks, source)
            if loaded:
                _advance_sequences(cur, table, table.columns if columns is None else columns)
        return Loaded(loaded, deleted)

    @contextlib.contextmanager
    def _transaction(self, doing: str) -> Iterator[Any]:
        """A cursor in one transaction, committed at the end; on any error rolled back, a
        server's error raised as bulkframe's saying ``doing`` failed and nothing was written."""
        import psycopg

        try:
            with self.conn.cursor() as cur:
                yield cur
            self.conn.commit()
        except BaseException as exc:
            with contextlib.suppress(Exception):  # a broken connection has rolled back already
                self.conn.rollback()
            if isinstance(exc, psycopg.Error):
                raise _translated(exc, None, f"{doing} failed, nothing was written") from exc
            raise

    def _copy(self, cur: Any, statement: Any, blocks: Iterable[bytes], source: str) -> int:
        """Run the ``COPY … FROM STDIN`` ``statement`` with ``blocks``; the rows it wrote."""
        if self.conn.info.server_version < 180000:
            blocks = without_end_marker(blocks, source)
        with cur.copy(statement) as copy:
            for block in blocks:
                copy.write(block)
        return int(cur.rowcount)

    def stage(self, table: Table, columns: Sequence[str] | None) -> Table:
        """The temporary table a merge into ``table`` stages ``columns`` in (all of the
        table's when ``None``), created by :meth:`merge`."""
        import uuid

        return Table(
            "pg_temp", f"_bf_direct_{uuid.uuid4().hex[:12]}", True, tuple(columns or table.columns), {}
        )

    def merge(
        self,
        table: Table,
        statement: Any,
        stage: Table,
        blocks: Iterable[bytes],
        *,
        keys: Sequence[str],
        mode: str,
        lock: str,
        source: str,
    ) -> Merged:
        """``COPY`` ``blocks`` into the temporary table ``stage`` (``statement`` is that
        ``COPY``, from :meth:`statement`), then insert its rows into ``table`` with ``ON
        CONFLICT (keys)``: ``mode="update"`` sets the stage's other columns on an existing
        key, ``"skip"`` leaves it alone.  A key repeated in the input keeps its last row
        (update) or its first (skip), as the library's calls do.  One transaction, under
        the advisory lock the library's merges into ``table`` take (``lock`` is the name
        they lock); a refused value or row fails it whole.  Id sequences move past the ids
        written, as :meth:`load` does."""
        from psycopg import sql

        target = sql.Identifier(table.schema, table.name)
        staged = sql.Identifier(stage.schema, stage.name)
        names = sql.SQL(", ").join(map(sql.Identifier, stage.columns))
        with self._transaction(f"merging {source} into {table}") as cur:
            cur.execute(
                sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                    sql.Identifier(stage.name), names, target
                )
            )
            rows = self._copy(cur, statement, blocks, source)
            cur.execute("SELECT pg_advisory_xact_lock(%s::int4, hashtext(%s))", (MERGE_LOCK_CLASS, lock))
            merged = _merge(cur, target, staged, stage.columns, keys, mode, rows)
            if merged.inserted:
                _advance_sequences(cur, table, stage.columns)
        return merged

    def close(self) -> None:
        self.conn.close()


def _merge(
    cur: Any, target: Any, stage: Any, columns: Sequence[str], keys: Sequence[str], mode: str, rows: int
) -> Merged:
    """The ``INSERT … SELECT … ON CONFLICT`` of a merge and its counts.  Rows are read from
    the stage in input order (a temporary table filled by one ``COPY``: ``ctid`` order);
    repeats of a key are dropped first only when the input has some."""
    import psycopg
    from psycopg import sql

    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    key_list = sql.SQL(", ").join(map(sql.Identifier, keys))

    def source(dedupe: bool, last: bool) -> Any:
        if not dedupe:
            return sql.SQL("SELECT {} FROM {}").format(names, stage)
        return sql.SQL("SELECT DISTINCT ON ({k}) {n} FROM {s} ORDER BY {k}, ctid {o}").format(
            k=key_list, n=names, s=stage, o=sql.SQL("DESC" if last else "ASC")
        )

    def insert(select: Any) -> tuple[int, int]:
        """(inserted, written) of one ``INSERT … ON CONFLICT``."""
        action: Any
        if mode == "update":
            sets = sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns if c not in keys
            )
            action = sql.SQL("DO UPDATE SET {}").format(sets)
        else:
            action = sql.SQL("DO NOTHING")
        statement = sql.SQL(
            "WITH m AS (INSERT INTO {t} ({n}) {sel} ON CONFLICT ({k}) {a} RETURNING xmax = 0 AS new) "
            "SELECT count(*) FILTER (WHERE new), count(*) FROM m"
        ).format(t=target, n=names, sel=select, k=key_list, a=action)
        cur.execute(statement)
        inserted, written = cur.fetchone()
        return int(inserted), int(written)

    if mode == "update":
        try:
            with cur.connection.transaction():  # a savepoint: a repeated key fails only this try
                inserted, written = insert(source(dedupe=False, last=True))
            dropped = 0
        except psycopg.errors.CardinalityViolation:  # a key twice in the input: the last row wins
            inserted, written = insert(source(dedupe=True, last=True))
            dropped = rows - written
        return Merged(rows, inserted, written - inserted, 0, dropped)
    cur.execute(sql.SQL("SELECT count(*) FROM (SELECT DISTINCT {} FROM {}) d").format(key_list, stage))
    distinct = int(cur.fetchone()[0])
    inserted, _ = insert(source(dedupe=distinct < rows, last=False))
    return Merged(rows, inserted, 0, distinct - inserted, rows - distinct)


def _advance_sequences(cur: Any, table: Table, given: Sequence[str]) -> None:
    """Move the id sequences of the ``given`` columns that have one past the largest id in
    the table (rows with explicit ids were written)."""
    from psycopg import sql

    for column in [c for c in given if c in table.sequences]:
        cur.execute(
            sql.SQL(
                "SELECT setval({seq}::regclass, GREATEST((SELECT max({col}) FROM {table}), "
                "COALESCE(pg_sequence_last_value({seq}::regclass), 0), 1))"
            ).format(
                seq=sql.Literal(table.sequences[column]),
                col=sql.Identifier(column),
                table=sql.Identifier(table.schema, table.name),
            )
        )


def without_end_marker(blocks: Iterable[bytes], source: str) -> Iterator[bytes]:
    """``blocks``, failing on a line that holds only ``\\.``: the server would end the data
    there silently (as ``psql \\copy`` does), so the rows after it would be missing."""
    carry, lines = b"\n", 0  # the start of the input is the start of a line
    for block in blocks:
        window = carry + block
        # a backslash is rare in CSV and found by memchr (30 MB in 1 ms; the four line-end
        # spellings take 65 ms): the marker is looked for only in a block that has one
        found = [i for i in map(window.find, _END_MARKS) if i >= 0] if b"\\" in window else None
        if found:
            _marker(source, lines + block.count(b"\n", 0, max(0, min(found) + 1 - len(carry))) + 1)
        lines += block.count(b"\n")
        carry = window[-3:]
        yield block
    if carry.endswith((b"\n\\.", b"\r\\.")):
        _marker(source, lines + 1)


def _marker(source: str, line: int) -> None:
    from bulkframe.errors import DataError

    raise DataError(
        f"{source}: line {line} holds only \\. which PostgreSQL's COPY reads as the end of the data "
        '(psql \\copy stops there silently); nothing was written. Quote it ("\\.") to load it as a value'
    )


def _translated(exc: Any, during: str | None, prefix: str | None = None) -> DatabaseError:
    """A psycopg error as bulkframe's: one line with the server's message, its detail and
    its context (``COPY t, line 5, column qty: "abc"``)."""
    from bulkframe import errors

    diag = exc.diag
    primary = diag.message_primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    parts = [f"{type(exc).__name__}: {primary}"]
    if diag.message_detail:
        parts.append(f"({' '.join(diag.message_detail.split())})")
    if diag.context:
        parts.append(
            "[" + "; ".join(line.strip() for line in diag.context.splitlines() if line.strip()) + "]"
        )
    message = " ".join(parts)
    message = f"{prefix}: {message}" if prefix else f"{message} (during {during})"
    return errors.error_for_sqlstate(message, exc.sqlstate) or errors.DatabaseError(
        message, sqlstate=exc.sqlstate
    )
