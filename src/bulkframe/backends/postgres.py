"""PostgreSQL: ADBC ``adbc_ingest`` (binary COPY) into the target or a staging table."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from bulkframe.backends.base import Backend, DigestInput, ForeignKey, TableRef, TextFormat
from bulkframe.backends.capabilities import Capabilities
from bulkframe.backends.connection import Connection
from bulkframe.backends.postgres_copy import MERGE_LOCK_CLASS
from bulkframe.errors import MissingDependencyError
from bulkframe.portable_sql import JsonObject, JsonWithout, Round, TitleCase
from bulkframe.types import KINDS, Column

_KINDS = {
    "int2": "int16",
    "int4": "int32",
    "int8": "int64",
    "float4": "float32",
    "float8": "float64",
    "numeric": "decimal",
    "bool": "bool",
    "text": "text",
    "varchar": "text",
    "bpchar": "text",
    "name": "text",
    "citext": "text",
    "date": "date",
    "time": "time",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "json": "json",
    "jsonb": "json",
    "uuid": "uuid",
    "bytea": "binary",
}

_DDL = {
    "int16": "smallint",
    "int32": "integer",
    "int64": "bigint",
    "float32": "real",
    "float64": "double precision",
    "bool": "boolean",
    "text": "text",
    "date": "date",
    "time": "time",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "json": "jsonb",
    "uuid": "uuid",
    "binary": "bytea",
}

_REFLECT = """
SELECT a.attname, COALESCE(bt.typname, t.typname),
       CASE WHEN bt.oid IS NOT NULL AND a.atttypmod < 0 THEN t.typtypmod ELSE a.atttypmod END,
       a.attnotnull,
       (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS has_default,
       COALESCE((SELECT true FROM pg_index i
                 WHERE i.indrelid = a.attrelid AND i.indisprimary AND a.attnum = ANY(i.indkey)), false),
       format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_FOREIGN_KEYS = """
SELECT c.conname, fn.nspname, fc.relname,
       json_agg(a.attname ORDER BY k.ord)::text, json_agg(fa.attname ORDER BY k.ord)::text
FROM pg_constraint c
CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(con, ref, ord)
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.con
JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = k.ref
JOIN pg_class fc ON fc.oid = c.confrelid
JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE c.contype = 'f' AND c.conrelid = to_regclass($1)
GROUP BY c.conname, fn.nspname, fc.relname
ORDER BY c.conname
"""

_UNIQUE_KEYS = """
SELECT json_agg(a.attname ORDER BY k.ord)::text
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
GROUP BY i.indexrelid
"""


class PostgresBackend(Backend):
    """PostgreSQL through adbc-driver-postgresql."""

    capabilities = Capabilities(
        upsert="on_conflict",
        concurrent_writers=True,
        pipelined_stages=True,
        regex=True,
        analyze_stage=True,
        modified_count="execute_update",
        notify=True,
        full_outer_join=True,
        copy_text=True,
        client_compare_kinds=frozenset(KINDS),  # every kind reads back exactly
    )
    dialect = postgresql.dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]

    def upsert_insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)

    def notify(self, conn: Connection, channel: str, payload: str) -> None:
        conn.fetchall(sa.select(sa.func.pg_notify(sa.literal(channel), sa.literal(payload))))

    def copy_text_file(
        self,
        ref: TableRef,
        path: str,
        columns: Sequence[str],
        fmt: TextFormat,
        *,
        disable_triggers: bool = False,
    ) -> int:
        """``COPY ref (columns) FROM STDIN WITH (FORMAT …, DELIMITER …, NULL …, HEADER …)``,
        the file streamed in 1 MiB blocks through psycopg (ADBC's PostgreSQL driver has no
        text COPY): the server parses every value.  One transaction; a bad line fails it
        whole, and the error carries the server's ``COPY …, line N, column c: "value"``."""
        try:
            import psycopg
            from psycopg import sql

            from bulkframe.backends.postgres_copy import without_end_marker
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise MissingDependencyError(
                "the server-side text COPY needs psycopg: pip install 'psycopg[binary]'"
            ) from exc
        options = [sql.SQL("FORMAT {}").format(sql.SQL("csv" if fmt.format == "csv" else "text"))]
        options.append(sql.SQL("DELIMITER {}").format(sql.Literal(fmt.delimiter)))
        if fmt.null is not None:
            options.append(sql.SQL("NULL {}").format(sql.Literal(fmt.null)))
        options.append(sql.SQL("HEADER {}").format(sql.SQL("true" if fmt.header else "false")))
        if fmt.format == "csv":
            options.append(sql.SQL("QUOTE {}").format(sql.Literal(fmt.quote)))
            if fmt.escape is not None:
                options.append(sql.SQL("ESCAPE {}").format(sql.Literal(fmt.escape)))
        options.append(sql.SQL("ENCODING {}").format(sql.Literal(fmt.encoding)))
        target = sql.Identifier(ref.schema, ref.name) if ref.schema else sql.Identifier(ref.name)
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH ({})").format(
            target, sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(", ").join(options)
        )
        try:
            url = "postgresql://" + self.url.split("://", 1)[1]
            with psycopg.connect(url) as conn, conn.cursor() as cur:  # commits on exit
                if disable_triggers:
                    cur.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(target))
                with cur.copy(statement) as copy, open(path, "rb") as source:
                    blocks: Iterable[bytes] = iter(lambda: source.read(1 << 20), b"")
                    if fmt.format == "csv" and conn.info.server_version < 180000:
                        blocks = without_end_marker(blocks, path)  # never stop early, silently
                    for block in blocks:
                        copy.write(block)
                loaded = cur.rowcount
                if disable_triggers:
                    cur.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER USER").format(target))
        except psycopg.Error as exc:
            where = getattr(getattr(exc, "diag", None), "context", None)
            error = self.translate_error(exc, f"COPY {ref} FROM {path}")
            if where:
                error = type(error)(f"{error} [{where.strip()}]", sqlstate=error.sqlstate)
            raise error from exc
        return int(loaded)

    def upsert_inserted_flag(self) -> sa.ColumnElement[bool]:
        """``xmax = 0``: the row version was not locked by an earlier transaction, so this
        statement inserted it (an update leaves its own transaction id in ``xmax``)."""
        return sa.literal_column("(xmax = 0)", sa.Boolean())

    def _connect_raw(self) -> Any:
        import adbc_driver_postgresql.dbapi as pg

        rest = self.url.split("://", 1)[1]
        return pg.connect("postgresql://" + rest)

    def reflect(self, conn: Connection, ref: TableRef) -> list[Column] | None:
        regclass = self.qualified(ref)
        rows = conn.fetchall(_REFLECT, (regclass,))
        if not rows:
            exists = conn.scalar("SELECT to_regclass($1) IS NOT NULL", (regclass,))
            return [] if exists else None
        columns = []
        for name, typname, typmod, notnull, has_default, pk, declared in rows:
            # a domain is written as its base type (the server checks the domain's constraints);
            # types bulkframe does not map are marked, so writes touching them are refused
            kind = _KINDS.get(typname, "text")
            unsupported = None if typname in _KINDS else str(declared)
            precision = scale = length = None
            if kind == "decimal" and typmod >= 4:
                precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
            if typname in ("varchar", "bpchar") and typmod >= 4:
                length = typmod - 4
            columns.append(
                Column(
                    name,
                    kind,
                    nullable=not notnull,
                    primary_key=bool(pk),
                    precision=precision,
                    scale=scale,
                    length=length,
                    has_default=bool(has_default),
                    unsupported=unsupported,
                )
            )
        return columns

    def ddl_type(self, column: Column) -> str:
        if column.kind == "decimal":
            if column.precision:
                return f"numeric({column.precision},{column.scale or 0})"
            return "numeric"
        if column.kind == "text" and column.length:
            return f"varchar({column.length})"
        return _DDL[column.kind]

    def to_ingest(self, table: pa.Table, columns: dict[str, Column]) -> pa.Table:
        arrays = []
        for name in table.column_names:
            arr = table.column(name)
            kind = columns[name].kind
            if kind == "json":
                arr = _wrap(arr.cast(pa.string()), pa.json_(pa.string()))
            elif kind == "uuid":
                arr = _uuid_to_ext(arr)
            arrays.append(arr)
        return pa.table(arrays, names=table.column_names)

    def read_cast(self, table: pa.Table, columns: dict[str, Column]) -> pa.Table:
        arrays = []
        for name in table.column_names:
            arr = table.column(name)
            col = columns.get(name)
            if isinstance(arr.type, pa.BaseExtensionType):
                storage = pa.chunked_array([c.storage for c in arr.chunks], arr.type.storage_type)
                if arr.type.extension_name == "arrow.uuid":
                    from bulkframe.normalize.conform import _uuid_bytes_to_text

                    arr = _uuid_bytes_to_text(storage)
                else:
                    arr = storage
            if col is not None and col.kind == "decimal" and not pa.types.is_decimal(arr.type):
                arr = arr.cast(col.arrow_type())
            elif col is not None and arr.type != col.arrow_type():
                with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    arr = arr.cast(col.arrow_type())
            arrays.append(arr)
        return pa.table(arrays, names=table.column_names)

    def foreign_keys(self, conn: Connection, ref: TableRef) -> list[ForeignKey]:
        import json

        rows = conn.fetchall(_FOREIGN_KEYS, (self.qualified(ref),))
        return [
            ForeignKey(tuple(json.loads(cols)), table, schema, tuple(json.loads(refs)))
            for _name, schema, table, cols, refs in rows
        ]

    def unique_keys(self, conn: Connection, ref: TableRef) -> list[tuple[str, ...]]:
        import json

        return [tuple(json.loads(r[0])) for r in conn.fetchall(_UNIQUE_KEYS, (self.qualified(ref),))]

    def allocate_ids(self, conn: Connection, ref: TableRef, column: str, n: int) -> list[int]:
        # the column's identity/serial sequence, n values in one statement
        sequence = conn.scalar("SELECT pg_get_serial_sequence($1, $2)", (self.qualified(ref), column))
        if sequence is None:
            from bulkframe.errors import SchemaError

            raise SchemaError(f"{ref}.{column} has no identity or serial sequence to take ids from")
        ids = conn.fetch_arrow("SELECT nextval($1::regclass) FROM generate_series(1, $2::int)", (sequence, n))
        return [int(v) for v in ids.column(0).to_pylist()]

    def advance_sequence(self, conn: Connection, ref: TableRef, column: str) -> None:
        """``setval`` the serial/identity sequence to at least ``max(column)`` (never back)."""
        seq = conn.scalar("SELECT pg_get_serial_sequence($1, $2)", (self.qualified(ref), column))
        if seq is None:
            return
        conn.run(
            f"SELECT setval($1::regclass, GREATEST((SELECT max({self.quote(column)}) FROM {self.qualified(ref)}), "
            "COALESCE(pg_sequence_last_value($1::regclass), 0), 1))",
            (seq,),
        )

    def set_user_triggers(self, conn: Connection, ref: TableRef, *, enabled: bool) -> None:
        """``ALTER TABLE … DISABLE/ENABLE TRIGGER USER``: transactional, holds an exclusive
        lock on the table until the transaction ends (needs table ownership)."""
        conn.run(f"ALTER TABLE {self.qualified(ref)} {'ENABLE' if enabled else 'DISABLE'} TRIGGER USER")

    def create_shared_stage(self, conn: Connection, ref: TableRef, columns: Sequence[Column]) -> None:
        """``UNLOGGED``: staged rows skip the WAL (measured: see docs/scale-out.md); a crash
        empties the table, and a retried task rebuilds it anyway."""
        sql = self.create_table_sql(ref, columns)
        conn.run(sql.replace("CREATE TABLE", "CREATE UNLOGGED TABLE", 1))

    def distinct(self, stored: Any, incoming: Any, column: Column) -> sa.ColumnElement[bool]:
        """``json`` has no equality operator: JSON columns compare as ``jsonb``."""
        if column.kind == "json":
            stored, incoming = sa.cast(stored, postgresql.JSONB), sa.cast(incoming, postgresql.JSONB)
        return super().distinct(stored, incoming, column)

    def canonical_json(self, texts: pa.ChunkedArray) -> pa.ChunkedArray | None:
        """``jsonb``'s printed form where it is certain (``json`` columns compare as
        ``jsonb`` too, see :meth:`distinct`)."""
        from bulkframe.backends.json_canonical import sorted_object_text

        return sorted_object_text(texts)

    def serialize_merges(self, conn: Connection, ref: TableRef) -> None:
        """A transaction-scoped advisory lock on the table's name: bulkframe's merges into one
        table run one after another (other writers are not blocked; a key they insert
        meanwhile is caught by the merge's ``ON CONFLICT``)."""
        conn.run(
            "SELECT pg_advisory_xact_lock($1::int4, hashtext($2))", (MERGE_LOCK_CLASS, self.qualified(ref))
        )

    def lock_key_space(self, conn: Connection, ref: TableRef) -> None:
        """``LOCK TABLE … IN SHARE ROW EXCLUSIVE MODE``: readers go on, every other writer
        (and every other such merge) waits until this transaction ends."""
        conn.run(f"LOCK TABLE {self.qualified(ref)} IN SHARE ROW EXCLUSIVE MODE")

    def prefer_ordered_join(self, conn: Connection) -> None:
        """``SET LOCAL enable_hashjoin = off``: a merge full join over both primary-key
        indexes reads the tables in key order with no hash table, where PostgreSQL 15's
        planner picks a hash full join that spills to temporary files at the default
        ``work_mem`` (1M rows each: 1.1 s against 1.5–2.0 s; ``benchmarks/bench_verify.py``).
        Transaction-scoped: gone when the read session ends."""
        conn.run("SET LOCAL enable_hashjoin = off")

    def verify_bucket_hashes(
        self,
        source: sa.FromClause,
        bucket: sa.ColumnElement[int],
        where: sa.ColumnElement[bool] | None,
        values: Sequence[DigestInput],
    ) -> sa.Select[Any] | None:
        """``md5`` of the canonical text built in SQL (``trim_scale`` for decimals,
        ``float8send`` bits for floats, ``extract(epoch)`` microseconds for timestamps),
        its first 16 hex digits as a ``bigint`` split by shifts; JSON is not hashed here
        (``jsonb`` text is not the canonical form).  Constants are SQL literals, not
        parameters, and the per-row part sits behind ``OFFSET 0`` so ``md5`` runs once
        per row (both measured: each cost ~2x)."""
        null, sep = sa.literal_column("chr(30)", sa.Text()), sa.literal_column("chr(31)", sa.Text())
        parts: list[sa.ColumnElement[Any]] = []
        for value in values:
            text = _canonical_sql(value)
            if text is None:
                return None
            parts.append(sa.func.coalesce(text, null))
        joined = parts[0]
        for part in parts[1:]:
            joined = joined.op("||")(sep).op("||")(part)
        digest = sa.func.left(sa.func.md5(joined, type_=sa.Text()), sa.literal_column("16"))
        word = sa.cast(
            sa.cast(sa.literal_column("'x'", sa.Text()).op("||")(digest), postgresql.BIT(64)), sa.BigInteger()
        )
        inner = sa.select(bucket.label("bucket"), word.label("w")).select_from(source)
        if where is not None:
            inner = inner.where(where)
        rows = inner.offset(sa.literal_column("0")).subquery()
        high = sa.cast(rows.c.w.op(">>")(sa.literal_column("32")), sa.Integer())
        low = sa.cast(
            rows.c.w.op("<<")(sa.literal_column("32")).op(">>")(sa.literal_column("32")), sa.Integer()
        )
        return sa.select(
            rows.c.bucket,
            sa.func.count().label("n"),
            sa.func.sum(high).label("h1"),
            sa.func.sum(low).label("h2"),
        ).group_by(rows.c.bucket)

    def server_version(self, conn: Connection) -> int:
        return int(conn.scalar("SHOW server_version_num"))


# -- SQL spelled the PostgreSQL way (see bulkframe.portable_sql) -------------------------
@compiles(TitleCase, "postgresql")
def _initcap(element: TitleCase, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(sa.func.initcap(*element.clauses.clauses), **kw))


@compiles(Round, "postgresql")
def _round_numeric(element: Round, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL has round(numeric, int) but no round(double precision, int)
    x, *digits = element.clauses.clauses
    return str(compiler.process(sa.func.round(sa.cast(x, sa.Numeric), *digits), **kw))


def _text(expr: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    return sa.cast(expr, sa.Text())


def _epoch_us(expr: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    seconds = sa.func.extract("epoch", expr)
    return _text(sa.cast(seconds * sa.literal_column("1000000"), sa.BigInteger()))


def _float_bits(expr: sa.ColumnElement[Any], tolerance: float | None) -> sa.ColumnElement[str]:
    x: sa.ColumnElement[Any] = sa.cast(expr, sa.Double())
    if tolerance is not None:
        x = sa.func.floor(x / sa.literal_column(f"{float(tolerance)!r}::float8"), type_=sa.Double())
    hexed = sa.literal_column("'x'", sa.Text()).op("||")(
        sa.func.encode(sa.func.float8send(x), sa.literal_column("'hex'"))
    )
    bits = _text(sa.cast(sa.cast(hexed, postgresql.BIT(64)), sa.BigInteger()))
    return sa.case(
        (x == sa.literal_column("0::float8"), sa.literal_column("'0'")),
        (x == sa.literal_column("'NaN'::float8"), sa.literal_column("'NaN'")),
        else_=bits,
    )


def _canonical_sql(value: DigestInput) -> sa.ColumnElement[str] | None:
    """The canonical text of one value (``bulkframe.ops.verify_canon``), or ``None``."""
    expr, kind, fam = value.expr, value.column.kind, value.family
    if fam == "number":
        return _text(sa.func.trim_scale(expr)) if kind == "decimal" else _text(expr)
    if fam == "float":
        return _float_bits(expr, value.tolerance)
    if fam == "bool":
        return sa.case((expr, sa.literal_column("'true'")), else_=sa.literal_column("'false'"))
    if fam == "text":
        return _text(expr)
    if fam == "date":
        return _text(expr - sa.literal_column("DATE '1970-01-01'"))
    if fam in ("time", "instant"):
        return _epoch_us(expr)
    if fam == "binary":
        return sa.func.encode(expr, sa.literal_column("'hex'"), type_=sa.Text())
    return None  # json: jsonb's text is not the canonical form


def _wrap(arr: pa.ChunkedArray, ext: pa.ExtensionType) -> pa.ChunkedArray:
    return pa.chunked_array([pa.ExtensionArray.from_storage(ext, c) for c in arr.chunks], ext)


def _uuid_to_ext(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """Canonical uuid text → the ``arrow.uuid`` extension (16 bytes) COPY accepts."""
    import polars as pl

    hexed = pc.replace_substring(arr.cast(pa.large_string()), "-", "")
    raw = pl.Series(hexed).str.decode("hex").to_arrow().cast(pa.binary(16))
    return pa.chunked_array([pa.ExtensionArray.from_storage(pa.uuid(), raw)], pa.uuid())


@compiles(JsonObject, "postgresql")
def _jsonb_build_object(element: JsonObject, compiler: SQLCompiler, **kw: Any) -> str:
    parts = [
        f"{_literal(n)}, {compiler.process(v, **kw)}"
        for n, v in zip(element.names, element.values, strict=True)
    ]
    return f"jsonb_build_object({', '.join(parts)})"


@compiles(JsonWithout, "postgresql")
def _jsonb_minus(element: JsonWithout, compiler: SQLCompiler, **kw: Any) -> str:
    obj = compiler.process(element.obj, **kw)
    if not element.drops:
        return str(obj)
    names = [f"CASE WHEN {compiler.process(c, **kw)} THEN {_literal(n)} END" for n, c in element.drops]
    return f"(({obj}) - array_remove(ARRAY[{', '.join(names)}]::text[], NULL))"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
