"""``bulkframe load`` straight into PostgreSQL's ``COPY`` (the direct path).

When nothing needs the client -- a CSV/TSV input (plain, ``.gz``/``.bz2``/``.zst``, or
``-``) into an existing PostgreSQL table, no ``--type``/``--schema``, no key handling,
``--mode append|truncate``, ``--on-error stop``, and header names that are all columns of
the table -- the input's bytes are streamed unchanged (decompressed on the fly, 1 MiB at
a time) into ``COPY "schema"."table" (columns) FROM STDIN (FORMAT csv, …)`` through
psycopg, in one transaction.  The server parses every value with its own input
functions, exactly as ``psql \\copy`` would; a bad value fails the whole load (nothing is
written) with PostgreSQL's context: the table, line, column and value.

:func:`decide` is the one place that says whether the direct path applies; when it does
not, it names the reason (logged with ``-v``) and the normal path (Polars/PyArrow →
Arrow → ADBC) runs.  This module imports psycopg only (zstd input: PyArrow's
decompressor); never Polars, SQLAlchemy or the ADBC drivers.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bulkframe.cli import config
from bulkframe.cli.inputs import _MAGIC, InputOptions, kind_of

if TYPE_CHECKING:
    from bulkframe.cli.report import Output
    from bulkframe.errors import DatabaseError
    from bulkframe.result import BulkResult

log = logging.getLogger("bulkframe.cli")

#: Bytes read from the input and written to ``COPY`` at a time.
BLOCK = 1 << 20
#: Python codec (``codecs.lookup(name).name``) → PostgreSQL's name of the same encoding.
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
_BOM = b"\xef\xbb\xbf"
#: a line holding only ``\.`` (PostgreSQL's end-of-data marker), between line breaks
_END_MARKS = (b"\n\\.\n", b"\n\\.\r", b"\r\\.\n", b"\r\\.\r")
_POSTGRES = ("postgresql", "postgres")


@dataclass(frozen=True)
class Target:
    """The existing table ``COPY`` writes: its schema, name, kind and columns (in order),
    and the id sequences of its primary-key columns that have one."""

    schema: str
    name: str
    kind: str
    columns: tuple[str, ...]
    sequences: dict[str, str]


@dataclass(frozen=True)
class CopyPlan:
    """What the direct path does: ``COPY target (columns) FROM STDIN (FORMAT csv, …)``."""

    target: Target
    #: the columns ``COPY`` fills, in the file's order (``None``: all, for a file without
    #: a header and without ``--columns``)
    columns: tuple[str, ...] | None
    delimiter: str
    null: str | None
    header: bool
    #: PostgreSQL's name of the input encoding
    encoding: str
    #: delete the table's rows first, in the same transaction (``--mode truncate``)
    truncate: bool

    def options(self) -> str:
        """The ``COPY`` options, spelled for the log."""
        null = f", NULL {self.null!r}" if self.null is not None else ""
        return (
            f"FORMAT csv, DELIMITER {self.delimiter!r}{null}, HEADER {str(self.header).lower()}, "
            f"ENCODING {self.encoding!r}"
        )


def _delimiter(args: argparse.Namespace, fmt: str) -> str:
    delimiter = args.delimiter if args.delimiter is not None else ("\t" if fmt == "tsv" else ",")
    return "\t" if delimiter == "\\t" else str(delimiter)


def decide(
    args: argparse.Namespace,
    target: Callable[[], Target | None],
    header: Callable[[str], list[str] | None],
) -> CopyPlan | str:
    """The direct path's plan for ``load`` with ``args``, or why the normal path must run.

    The checks run cheapest first; ``target()`` (the table, read from the catalog) and
    ``header(codec)`` (the input's first record, ``None`` when the input is empty) are
    called only when every option allows the direct path."""
    from bulkframe.cli.verbs import target_url

    url = target_url(args)
    if url.split("://", 1)[0].split("+", 1)[0].lower() not in _POSTGRES:
        return "the target is not PostgreSQL"
    mode = args.mode or "append"
    if mode not in ("append", "truncate"):
        return f"--mode {mode} merges or swaps tables in the client"
    refused = [
        (args.types, "--type"),
        (args.schema, "--schema"),
        (args.key, "--key"),
        (args.primary_key, "--primary-key"),
        (args.conflict != "error", "--conflict"),
        (args.on_error != "stop", f"--on-error {args.on_error}"),
        (args.rejects, "--rejects"),
        (args.max_errors is not None, "--max-errors"),
    ]
    given = [flag for value, flag in refused if value]
    if given:
        return f"{', '.join(given)}: the client handles column types, keys and rejected rows"
    options = InputOptions(format=args.format, header=args.header, columns=args.columns)
    try:
        fmt, _ = kind_of(args.file, options)
    except config.UsageError as exc:
        return str(exc)
    if fmt not in ("csv", "tsv"):
        return f"{fmt} input is read by the client"
    if args.header and args.columns:
        return "--columns names the columns of a file without a header"
    delimiter = _delimiter(args, fmt)
    if len(delimiter) != 1 or not delimiter.isascii() or delimiter in '\r\n"':
        return f"--delimiter {delimiter!r} is not a delimiter PostgreSQL's COPY accepts"
    null = args.null_string
    if null is not None and any(c in null for c in ("\r", "\n", '"', delimiter)):
        return f"--null-string {null!r} holds a quote, line break or the delimiter"
    import codecs

    try:
        codec = codecs.lookup(args.encoding or "utf-8").name
    except LookupError:
        return f"--encoding {args.encoding!r} is not an encoding Python knows"
    encoding = ENCODINGS.get(codec)
    if encoding is None:
        return f"--encoding {args.encoding!r} has no PostgreSQL name bulkframe knows ({', '.join(ENCODINGS)})"
    table = target()
    if table is None:
        return f"table {args.table} does not exist (the normal path creates it)"
    if table.kind not in ("r", "p"):
        return f"{args.table} is not a table (relkind {table.kind!r})"
    columns: tuple[str, ...] | None = None
    if args.header:
        names = header(codec)
        if not names:
            return "the input is empty"
        columns = tuple(names)
    elif args.columns:
        columns = tuple(args.columns)
    if columns is not None:
        if len(set(columns)) != len(columns):
            return f"the columns {list(columns)} repeat a name"
        unknown = [c for c in columns if c not in table.columns]
        if unknown:
            return f"{unknown} are not columns of {args.table}"
    return CopyPlan(table, columns, delimiter, null, bool(args.header), encoding, mode == "truncate")


# -- the input ------------------------------------------------------------------------------


class _Raw:
    """The input's raw bytes: counted (the progress bar), with bytes read ahead given back
    first, and -- for standard input -- recorded while ``recording`` (so the normal path
    can read them again if it takes over)."""

    def __init__(self, stream: Any, *, record: bool):
        self.stream = stream
        self.count = 0
        self.recording = record
        self.recorded = bytearray()
        self.ahead = b""

    def read(self, n: int = -1) -> bytes:
        ahead, self.ahead = self.ahead, b""
        if ahead and 0 <= n <= len(ahead):
            self.ahead = ahead[n:]
            return ahead[:n]
        data: bytes = ahead + self.stream.read(n - len(ahead) if n >= 0 else -1)
        self.count += len(data) - len(ahead)
        if self.recording:
            self.recorded += data[len(ahead) :]
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass

    @property
    def closed(self) -> bool:
        return False


class Source:
    """The input as ``COPY`` gets it: its bytes, decompressed, in blocks.  The first
    record is read ahead (to learn the header's names) and sent like the rest."""

    def __init__(self, path: str, compression: str | None):
        self.path = path
        self.name = "standard input" if path == "-" else path
        if path == "-":
            self.raw = _Raw(sys.stdin.buffer, record=True)
            head = self.raw.read(4)
            self.raw.ahead = head
            compression = next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)
            self.size: int | None = None
        else:
            try:
                self.raw = _Raw(open(path, "rb"), record=False)  # noqa: SIM115 - closed by close()
            except OSError as exc:
                from bulkframe.cli.inputs import InputError

                raise InputError(f"{path}: {exc.strerror or exc}") from None
            self.size = os.fstat(self.raw.stream.fileno()).st_size
        self.stream = _decompressed(self.raw, compression)
        self.pending = b""

    def first_record(self, codec: str, delimiter: str) -> list[str] | None:
        """The input's first CSV record (its header), decoded with ``codec``; ``None`` when
        the input is empty.  The bytes read stay pending for :meth:`blocks`."""
        import csv

        data = self.pending
        end = None
        while end is None:
            block = self.read()
            if not block:
                break
            data += block
            end = _record_end(data)
        if codec.startswith("utf-8") and data.startswith(_BOM):
            data = data[len(_BOM) :]  # the normal path's reader skips it too
        self.pending = data
        if not data:
            return None
        text = data[: len(data) if end is None else end].decode(codec, errors="replace")
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), None)

    def strip_bom(self) -> None:
        """Read the first block ahead and drop a UTF-8 byte-order mark (a UTF-8 file
        without a header line: the server would read it as data)."""
        self.pending += self.read()
        if self.pending.startswith(_BOM):
            self.pending = self.pending[len(_BOM) :]

    def blocks(self, *, end_marker: bool) -> Iterator[bytes]:
        """The input's bytes in blocks of about :data:`BLOCK` (what was read ahead first).

        ``end_marker``: the server reads a line holding only ``\\.`` as the end of the
        data (PostgreSQL before 18, even inside a quoted value), so it would stop there
        silently, as ``psql \\copy`` does; such a line fails the load instead."""
        self.raw.recording = False
        self.raw.recorded = bytearray()
        first, self.pending = self.pending, b""
        carry, lines = b"\n", 0  # the start of the input is the start of a line
        for block in itertools.chain([first] if first else [], iter(self.read, b"")):
            if end_marker:
                window = carry + block
                found = [i for i in map(window.find, _END_MARKS) if i >= 0]
                if found:
                    self._marker(lines + block.count(b"\n", 0, max(0, min(found) + 1 - len(carry))) + 1)
                lines += block.count(b"\n")
                carry = window[-3:]
            yield block
        if end_marker and carry.endswith((b"\n\\.", b"\r\\.")):
            self._marker(lines + 1)

    def _marker(self, line: int) -> None:
        from bulkframe.cli.inputs import InputError

        raise InputError(
            f"{self.name}: line {line} holds only \\. which PostgreSQL's COPY reads as the end of the "
            'data (psql \\copy stops there silently); quote it ("\\.") to load it as a value'
        )

    def read(self) -> bytes:
        """The next block of decompressed bytes (``b""`` at the end); an unreadable or
        corrupt input is bulkframe's input error naming it."""
        import zlib

        try:
            return bytes(self.stream.read(BLOCK))
        except (OSError, EOFError, ValueError, zlib.error) as exc:
            from bulkframe.cli.inputs import InputError

            raise InputError(f"{self.name}: {' '.join(str(exc).split()) or type(exc).__name__}") from None

    def give_back(self) -> None:
        """Standard input read ahead by a plan the normal path took over: make
        ``sys.stdin`` start again with the bytes read (still compressed, as they came)."""
        if self.path != "-" or not self.raw.recorded:
            return
        encoding = getattr(sys.stdin, "encoding", None) or "utf-8"
        replay = _Replay(bytes(self.raw.recorded), sys.stdin.buffer)
        sys.stdin = io.TextIOWrapper(io.BufferedReader(replay), encoding=encoding)

    def close(self) -> None:
        if self.path != "-":
            self.raw.stream.close()


def _decompressed(raw: _Raw, compression: str | None) -> Any:
    if compression == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[call-overload]
    if compression == "bz2":
        import bz2

        return bz2.BZ2File(raw)  # type: ignore[call-overload]
    if compression == "zstd":  # the standard library has no zstd before Python 3.14
        import pyarrow as pa

        return pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), "zstd")
    return raw


def _record_end(data: bytes) -> int | None:
    """Where the first CSV record of ``data`` ends (its line break outside quotes), or
    ``None`` when ``data`` holds no complete record.  Works on the bytes of any
    ASCII-compatible encoding (every one in :data:`ENCODINGS`)."""
    start = quotes = 0
    while True:
        ends = [i for i in (data.find(b"\n", start), data.find(b"\r", start)) if i >= 0]
        if not ends:
            return None
        end = min(ends)
        quotes += data.count(b'"', start, end)
        if quotes % 2 == 0:
            return end
        start = end + 1


class _Replay(io.RawIOBase):
    """Bytes already read, then the rest of a stream."""

    def __init__(self, head: bytes, rest: Any):
        self.head = head
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        read = getattr(self.rest, "read1", self.rest.read)
        data = read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# -- the database ---------------------------------------------------------------------------

_TARGET = """
SELECT n.nspname, c.relname, c.relkind, a.attname,
       CASE WHEN a.attnum = ANY(pk.indkey) AND (a.atthasdef OR a.attidentity <> '')
            THEN pg_get_serial_sequence(c.oid::regclass::text, a.attname) END
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index pk ON pk.indrelid = c.oid AND pk.indisprimary
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.oid = to_regclass(%s)
ORDER BY a.attnum
"""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Load:
    """One direct-path load: the connection (opened when the plan first needs the
    catalog), the input (opened when it needs the header), and the ``COPY``."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.conn: Any = None
        self.source: Source | None = None

    # what decide() asks ---------------------------------------------------------------
    def target(self) -> Target | None:
        from bulkframe.cli.verbs import target_url

        self.conn = connect(target_url(self.args))
        rows = _run(self.conn, "reading the catalog", _TARGET, (_quoted(self.args.table),))
        self.conn.rollback()
        if not rows:
            return None
        schema, name, kind = rows[0][:3]
        columns = tuple(r[3] for r in rows if r[3] is not None)
        sequences = {r[3]: r[4] for r in rows if r[4]}
        return Target(schema, name, kind, columns, sequences)

    def header(self, codec: str) -> list[str] | None:
        fmt, _ = kind_of(self.args.file, InputOptions(format=self.args.format))
        return self.open().first_record(codec, _delimiter(self.args, fmt))

    def open(self) -> Source:
        if self.source is None:
            _, compression = kind_of(self.args.file, InputOptions(format=self.args.format))
            self.source = Source(self.args.file, compression)
        return self.source

    # the load -------------------------------------------------------------------------
    def copy(self, plan: CopyPlan, progress: bool) -> BulkResult:
        """Run ``plan`` in one transaction; the result counts the rows ``COPY`` wrote."""
        from psycopg import sql

        from bulkframe.result import BulkResult

        source = self.open()
        if not plan.header and plan.encoding == "UTF8":
            source.strip_bom()
        target = plan.target
        table = sql.Identifier(target.schema, target.name)
        options = [
            sql.SQL("FORMAT csv"),
            sql.SQL("DELIMITER {}").format(sql.Literal(plan.delimiter)),
            sql.SQL("HEADER {}").format(sql.SQL("true" if plan.header else "false")),
            sql.SQL("ENCODING {}").format(sql.Literal(plan.encoding)),
        ]
        if plan.null is not None:
            options.append(sql.SQL("NULL {}").format(sql.Literal(plan.null)))
        columns = (
            sql.SQL(" ({})").format(sql.SQL(", ").join(map(sql.Identifier, plan.columns)))
            if plan.columns is not None
            else sql.SQL("")
        )
        statement = sql.SQL("COPY {}{} FROM STDIN ({})").format(table, columns, sql.SQL(", ").join(options))
        bar = _bar(progress, source, self.args.table)
        started = time.perf_counter()
        deleted = None
        conn = self.conn
        try:
            with conn.cursor() as cur:
                if plan.truncate:
                    cur.execute(sql.SQL("DELETE FROM {}").format(table))
                    deleted = cur.rowcount
                with cur.copy(statement) as copy:
                    seen = 0
                    for block in source.blocks(end_marker=conn.info.server_version < 180000):
                        copy.write(block)
                        if bar is not None:
                            bar.update(source.raw.count - seen)
                            seen = source.raw.count
                loaded = int(cur.rowcount)
                given = plan.columns if plan.columns is not None else target.columns
                for column in [c for c in given if c in target.sequences] if loaded else []:
                    # explicit ids: the id generator must continue after them (as bulk_create does)
                    cur.execute(
                        sql.SQL(
                            "SELECT setval({seq}::regclass, GREATEST((SELECT max({col}) FROM {table}), "
                            "COALESCE(pg_sequence_last_value({seq}::regclass), 0), 1))"
                        ).format(
                            seq=sql.Literal(target.sequences[column]), col=sql.Identifier(column), table=table
                        )
                    )
            conn.commit()
        except Exception as exc:
            with contextlib.suppress(Exception):  # a broken connection rolled back already
                conn.rollback()
            raise _copy_failure(exc, source.name, f"{target.schema}.{target.name}") from exc
        finally:
            if bar is not None:
                bar.close()
        result = BulkResult(
            "create",
            self.args.table,
            records_processed=loaded,
            success_count=loaded,
            inserted=loaded,
            batches=1 if loaded else 0,
            batches_committed=1 if loaded else 0,
            committed_ranges=[(0, loaded)] if loaded else [],
            duration_seconds=time.perf_counter() - started,
        )
        result.metrics["copy"] = "direct"
        if deleted is not None:
            result.metrics["truncated"] = deleted
            result.metrics["mode"] = "truncate"
        return result

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
        if self.conn is not None:
            self.conn.close()


def connect(url: str) -> Any:
    """A psycopg connection to the PostgreSQL ``url`` (any ``+driver`` suffix dropped, as
    the PostgreSQL backend does), in a transaction."""
    import psycopg

    try:
        return psycopg.connect("postgresql://" + url.split("://", 1)[1])
    except psycopg.Error as exc:
        raise _failure(exc, None, None) from None


def _run(conn: Any, what: str, statement: str, params: Sequence[Any]) -> list[Any]:
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return list(cur.fetchall())
    except Exception as exc:
        raise _failure(exc, None, what) from exc


def _copy_failure(exc: BaseException, source: str, table: str) -> BaseException:
    """What failed a ``COPY``: the input (bulkframe's input error, also when psycopg
    reports the ``COPY`` it then cancelled) or the server (bulkframe's database error)."""
    import psycopg

    from bulkframe.cli.inputs import InputError

    cause = exc.__context__ if isinstance(exc, psycopg.Error) else exc
    if isinstance(cause, InputError):
        return InputError(f"{cause}; nothing was written to {table}")
    if isinstance(exc, psycopg.Error):
        return _failure(exc, source, table)
    return exc


def _failure(exc: BaseException, source: str | None, table: str | None) -> DatabaseError:
    """A psycopg error as bulkframe's error: one line with PostgreSQL's message, detail and
    context (``COPY t, line 5, column qty: "abc"``: the table, line, column and value)."""
    from bulkframe import errors

    if isinstance(exc, errors.BulkframeError) and isinstance(exc, errors.DatabaseError):
        return exc
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) or (str(exc).strip().splitlines() or [""])[0]
    parts = [f"{type(exc).__name__}: {primary}"]
    detail = getattr(diag, "message_detail", None)
    if detail:
        parts.append(f"({' '.join(detail.split())})")
    context = getattr(diag, "context", None)
    if context:
        parts.append("[" + "; ".join(line.strip() for line in context.splitlines() if line.strip()) + "]")
    if source is not None:
        message = f"loading {source} into {table} failed, nothing was written: {' '.join(parts)}"
    else:
        message = f"{' '.join(parts)} (during {table or 'connect'})"
    state = getattr(exc, "sqlstate", None)
    return errors.error_for_sqlstate(message, state) or errors.DatabaseError(message, sqlstate=state)


def _bar(show: bool, source: Source, table: str) -> Any:
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=source.size, unit="B", unit_scale=True, desc=f"load {table}", file=sys.stderr)


# -- the entry point --------------------------------------------------------------------------


def load(args: argparse.Namespace, out: Output) -> int | None:
    """Run ``bulkframe load`` by the direct path and return its exit code, or ``None``
    (after logging why) when the normal path must run."""
    from bulkframe.cli.verbs import show_progress

    job = Load(args)
    try:
        plan = decide(args, job.target, job.header)
        if isinstance(plan, str):
            log.info("load: the normal path (%s)", plan)
            if job.source is not None:
                job.source.give_back()
            return None
        log.info(
            "load: the direct path: COPY %s.%s (%s) FROM STDIN (%s), the server parses every value",
            plan.target.schema,
            plan.target.name,
            ", ".join(plan.columns) if plan.columns is not None else "every column",
            plan.options(),
        )
        result = job.copy(plan, show_progress(args))
    finally:
        job.close()
    return out.result(result, extra={"mode": args.mode or "append", "rejects_file": None})
