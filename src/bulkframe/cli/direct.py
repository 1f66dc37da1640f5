"""``bulkframe load`` and ``upsert`` straight into the database's own text loader (the
direct path).

When nothing needs the client -- a CSV/TSV input (plain, ``.gz``/``.bz2``/``.zst``, or
``-``) into an existing table, no ``--type``/``--schema``, ``--on-error stop``, and header
names that are all columns of the table -- the input's bytes are streamed unchanged
(decompressed on the fly, 1 MiB at a time) into the server's parser, in one transaction.
The database reads every value with its own input functions; a bad value fails the whole
load, nothing is written.  ``--mode append|truncate`` load the table itself; a load with
keys (``upsert``, ``--mode upsert|skip-existing``, ``--conflict update|skip``) loads a
temporary stage and merges it with ``INSERT … ON CONFLICT`` when a unique index covers
exactly the keys (the library's staged merge, without the client in between).

The database side is a light companion of the backend's module, found by name
(``bulkframe.backends.postgres`` → ``bulkframe.backends.postgres_copy``, which streams
into ``COPY … FROM STDIN`` through psycopg); a backend without one takes the normal
path.  :func:`decide` is the one place that says whether the direct path applies; when it
does not, it names the reason (logged with ``-v``) and the normal path (bulkframe's
reader → Arrow → ADBC) runs.  Nothing here imports Polars, PyArrow (except to decompress
zstd), SQLAlchemy or an ADBC driver.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from bulkframe.cli.inputs import _MAGIC, InputError, InputOptions, kind_of

if TYPE_CHECKING:
    from bulkframe.cli.report import Output

log = logging.getLogger("bulkframe.cli")

#: Bytes read from the input and handed to the server at a time.
BLOCK = 1 << 20
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Plan:
    """What the direct path does: the table, the columns the input fills (``None``: all of
    them, for a file without a header and ``--columns``) and how the server reads it."""

    table: Any
    columns: tuple[str, ...] | None
    delimiter: str
    null: str | None
    header: bool
    #: the server's name of the input's encoding
    encoding: str
    #: delete the table's rows first, in the same transaction (``--mode truncate``)
    truncate: bool
    #: a merge on ``keys``: ``"update"`` existing keys or ``"skip"`` them (``None``: a load)
    merge: str | None = None
    keys: tuple[str, ...] = ()
    #: the library call whose result the command reports (``create`` or ``upsert``)
    operation: str = "create"


def _format(args: argparse.Namespace) -> tuple[str, str | None]:
    return kind_of(args.file, InputOptions(format=args.format))


def _delimiter(args: argparse.Namespace, fmt: str) -> str:
    delimiter = args.delimiter if args.delimiter is not None else ("\t" if fmt == "tsv" else ",")
    return "\t" if delimiter == "\\t" else str(delimiter)


def decide(args: argparse.Namespace, job: Job) -> Plan | str:
    """The direct path's plan for ``load`` with ``args``, or why the normal path must run.

    The checks run cheapest first: the options, the backend's companion, then (connected
    through ``job``) the table and the input's header."""
    from bulkframe.cli.config import UsageError

    upsert = args.command == "upsert"
    mode = "upsert" if upsert else args.mode or "append"
    conflict = "error" if upsert else args.conflict
    if mode not in ("append", "truncate", "upsert", "skip-existing"):
        return f"--mode {mode} swaps tables or merges in the client"
    merge = {"upsert": "update", "skip-existing": "skip"}.get(mode)
    if mode == "append" and conflict != "error":
        if conflict not in ("update", "skip"):
            return f"--conflict {conflict} compares rows in the client"
        merge = conflict
    refused = [
        (args.types, "--type"),
        (args.schema, "--schema"),
        (args.key and not merge, "--key without a merge"),
        (args.primary_key, "--primary-key"),
        (args.on_error != "stop", f"--on-error {args.on_error}"),
        (args.rejects, "--rejects"),
        (args.max_errors is not None, "--max-errors"),
    ]
    given = [flag for value, flag in refused if value]
    if given:
        return f"{', '.join(given)}: the client handles column types, keys and rejected rows"
    try:
        fmt, _ = _format(args)
    except UsageError as exc:
        return str(exc)
    if fmt not in ("csv", "tsv"):
        return f"{fmt} input is read by the client"
    if args.header and args.columns:
        return "--columns names the columns of a file without a header"
    companion = job.companion()
    if isinstance(companion, str):
        return companion
    delimiter, null = _delimiter(args, fmt), args.null_string
    refused_format = companion.refusal(delimiter, null)
    if refused_format:
        return str(refused_format)
    import codecs

    try:
        codec = codecs.lookup(args.encoding or "utf-8").name
    except LookupError:
        return f"--encoding {args.encoding!r} is not an encoding Python knows"
    encoding = companion.ENCODINGS.get(codec)
    if encoding is None:
        return f"--encoding {args.encoding!r}: the direct path reads {', '.join(companion.ENCODINGS)}"
    table = job.table()
    if table is None:
        return f"table {args.table} does not exist (the normal path creates it)"
    if not table.writable:
        return f"{args.table} is not a table"
    columns: tuple[str, ...] | None = None
    if args.header:
        names = job.header(codec, delimiter)
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
    plan = Plan(table, columns, delimiter, null, bool(args.header), str(encoding), mode == "truncate")
    if merge is None:
        return plan
    operation = "upsert" if mode == "upsert" else "create"
    return _merge_plan(plan, merge, tuple(args.key or table.primary_key), operation)


def _merge_plan(plan: Plan, merge: str, keys: tuple[str, ...], operation: str) -> Plan | str:
    """``plan`` as a merge on ``keys``, or why the client must merge: the keys need a
    unique index of exactly those columns (``ON CONFLICT`` names it; without one the
    library locks the table and matches rows itself) and NOT NULL (the library's dedupe
    takes NULL keys as one; ``ON CONFLICT`` matches none), the input must hold the keys,
    an update something besides them, and every column a new row needs."""
    table = plan.table
    if not keys:
        return f"{table} has no primary key and no --key was given"
    if not any(set(u) == set(keys) for u in table.unique):
        return f"no unique index of {table} covers exactly the keys {list(keys)}"
    nullable = [k for k in keys if k not in table.not_null]
    if nullable:  # NULL never conflicts, but the client's dedupe takes NULLs as one key
        return f"the key column(s) {nullable} may hold NULL"
    columns = plan.columns if plan.columns is not None else table.columns
    missing = [k for k in keys if k not in columns]
    if missing:
        return f"the input lacks the key column(s) {missing}"
    if merge == "update" and not [c for c in columns if c not in keys]:
        return "the input holds only the keys: nothing to update"
    absent = [c for c in table.required if c not in columns]
    if absent:
        return f"the input lacks {absent}, which a new row needs (NOT NULL, no default)"
    return replace(plan, merge=merge, keys=keys, operation=operation)


# -- the input --------------------------------------------------------------------------


class _Raw:
    """The input's raw bytes: counted (the progress bar), with bytes read ahead given back
    first, and -- for standard input -- recorded until the plan is made (so the normal path
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
    """The input as the server gets it: its bytes, decompressed, in blocks.  The first
    record is read ahead (to learn the header's names) and sent like the rest."""

    def __init__(self, path: str, compression: str | None):
        self.path = path
        self.name = "standard input" if path == "-" else path
        self.size: int | None = None
        if path == "-":
            self.raw = _Raw(sys.stdin.buffer, record=True)
            head = self.raw.read(4)
            self.raw.ahead = head
            compression = next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)
        else:
            try:
                self.raw = _Raw(open(path, "rb"), record=False)  # noqa: SIM115 - closed by close()
            except OSError as exc:
                raise InputError(f"{path}: {exc.strerror or exc}") from None
            self.size = os.fstat(self.raw.stream.fileno()).st_size
        self.stream = _decompressed(self.raw, compression)
        self.pending = b""

    def first_record(self, codec: str, delimiter: str) -> list[str] | None:
        """The input's first CSV record (its header), decoded with ``codec``; ``None`` when
        the input is empty.  What was read stays pending for :meth:`blocks` (less a UTF-8
        byte-order mark, which the normal path's reader skips too)."""
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
            data = data[len(_BOM) :]
            end = None if end is None else end - len(_BOM)
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

    def blocks(self) -> Iterator[bytes]:
        """The input's bytes in blocks of about :data:`BLOCK`, what was read ahead first."""
        self.raw.recording = False
        self.raw.recorded = bytearray()
        if self.pending:
            pending, self.pending = self.pending, b""
            yield pending
        while block := self.read():
            yield block

    def read(self) -> bytes:
        """The next block of decompressed bytes (``b""`` at the end); an unreadable or
        corrupt input is bulkframe's input error naming it."""
        import zlib

        try:
            return bytes(self.stream.read(BLOCK))
        except (OSError, EOFError, ValueError, zlib.error) as exc:
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
    ASCII-compatible encoding."""
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


# -- one load ------------------------------------------------------------------------------


class Job:
    """One ``load``: the backend's companion, its connection (opened when the plan first
    needs the table) and the input (opened when it needs the header)."""

    def __init__(self, args: argparse.Namespace):
        from bulkframe.cli.verbs import target_url

        self.args = args
        self.url = target_url(args)
        self.module: Any = None
        self.loader: Any = None
        self.source: Source | None = None

    def companion(self) -> Any:
        """The text-load companion of the backend serving the URL (``<backend module>_copy``),
        or why there is none."""
        import importlib
        import importlib.util

        from bulkframe.backends.registry import lookup, scheme_of
        from bulkframe.errors import BulkframeError

        try:
            scheme = scheme_of(self.url)
            entry = lookup(scheme)
        except BulkframeError as exc:
            return str(exc)
        if entry is None:
            return f"no backend serves {scheme}:// URLs"
        name = entry.value.split(":", 1)[0] + "_copy"
        try:
            found = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            found = None
        if found is None:
            return f"the {scheme} backend has no direct text load ({name})"
        self.module = importlib.import_module(name)
        return self.module

    def table(self) -> Any:
        self.loader = self.module.connect(self.url)
        return self.loader.table(self.args.table)

    def header(self, codec: str, delimiter: str) -> list[str] | None:
        return self.open().first_record(codec, delimiter)

    def open(self) -> Source:
        if self.source is None:
            self.source = Source(self.args.file, _format(self.args)[1])
        return self.source

    def run(self, plan: Plan, progress: bool) -> Any:
        """Load by ``plan`` in one transaction; a ``BulkResult`` counting the rows written."""
        from bulkframe.read_ahead import read_ahead

        source = self.open()
        if not plan.header and plan.encoding == "UTF8":
            source.strip_bom()
        stage = None if plan.merge is None else self.loader.stage(plan.table, plan.columns)
        statement = self.loader.statement(
            plan.table if stage is None else stage,
            plan.columns,
            delimiter=plan.delimiter,
            null=plan.null,
            header=plan.header,
            encoding=plan.encoding,
        )
        log.info("load: the direct path: %s (the server parses every value)", self.loader.describe(statement))
        bar = _bar(progress, source, self.args.table)
        started = time.perf_counter()
        blocks = read_ahead(_counted(source, bar), depth=READ_AHEAD)
        try:
            if stage is not None:
                merged = self.loader.merge(
                    plan.table,
                    statement,
                    stage,
                    blocks,
                    keys=plan.keys,
                    mode=plan.merge,
                    lock=_quoted(self.args.table),
                    source=source.name,
                )
                return _merge_result(plan, merged, self.args.table, time.perf_counter() - started)
            loaded = self.loader.load(
                plan.table, statement, plan.columns, blocks, truncate=plan.truncate, source=source.name
            )
        except InputError as exc:
            raise InputError(f"{exc}; nothing was written to {plan.table}") from None
        finally:
            if bar is not None:
                bar.close()
        result = _direct_result(
            "create", self.args.table, loaded.rows, time.perf_counter() - started, inserted=loaded.rows
        )
        if loaded.deleted is not None:
            result.metrics["truncated"] = loaded.deleted
            result.metrics["mode"] = "truncate"
        return result

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
        if self.loader is not None:
            self.loader.close()


def _quoted(name: str) -> str:
    """The name the library's merges into the table ``name`` lock (its quoted name)."""
    return '"' + name.replace('"', '""') + '"'


def _direct_result(
    operation: str,
    table: str,
    rows: int,
    seconds: float,
    *,
    inserted: int,
    updated: int = 0,
    skipped: int = 0,
    deduplicated: int = 0,
) -> Any:
    """The ``BulkResult`` of a direct load or merge: ``rows`` input rows in one batch, one
    transaction; every row counted (``deduplicated`` ones are also in ``updated`` or
    ``skipped``, as the library counts them)."""
    from bulkframe.result import BulkResult

    result = BulkResult(
        operation,
        table,
        records_processed=rows,
        success_count=inserted + updated + skipped,
        inserted=inserted,
        updated=updated,
        skipped=skipped,
        deduplicated=deduplicated,
        batches=1 if rows else 0,
        batches_committed=1 if rows else 0,
        committed_ranges=[(0, rows)] if rows else [],
        duration_seconds=seconds,
    )
    result.metrics["copy"] = "direct"
    return result


def _merge_result(plan: Plan, merged: Any, table: str, seconds: float) -> Any:
    """The ``BulkResult`` of a direct merge, counted as the library's call counts: a row
    dropped as a repeat of its key is ``deduplicated`` and, as well, ``updated`` (by the
    later row) in ``bulk_create(conflict_resolution="update")``, ``skipped`` otherwise."""
    dropped = merged.deduplicated
    into_updated = plan.operation == "create" and plan.merge == "update"
    result = _direct_result(
        plan.operation,
        table,
        merged.rows,
        seconds,
        inserted=merged.inserted,
        updated=merged.updated + (dropped if into_updated else 0),
        skipped=merged.skipped + (0 if into_updated else dropped),
        deduplicated=dropped,
    )
    result.metrics["merge"] = f"ON CONFLICT ({', '.join(plan.keys)}) " + (
        "DO UPDATE" if plan.merge == "update" else "DO NOTHING"
    )
    return result


#: Blocks the input is read ahead of the server by a helper thread (so reading and
#: decompressing overlap the server's parse; memory holds at most this many + 1 blocks).
READ_AHEAD = 4


def _counted(source: Source, bar: Any) -> Iterator[bytes]:
    seen = 0
    for block in source.blocks():
        yield block
        if bar is not None:
            bar.update(source.raw.count - seen)
            seen = source.raw.count


def _bar(show: bool, source: Source, table: str) -> Any:
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=source.size, unit="B", unit_scale=True, desc=f"load {table}", file=sys.stderr)


def load(args: argparse.Namespace, out: Output) -> int | None:
    """Run ``bulkframe load`` by the direct path and return its exit code, or ``None``
    (after logging why) when the normal path must run."""
    from bulkframe.cli.verbs import show_progress

    job = Job(args)
    try:
        plan = decide(args, job)
        if isinstance(plan, str):
            log.info("load: the normal path (%s)", plan)
            if job.source is not None:
                job.source.give_back()
            return None
        result = job.run(plan, show_progress(args))
    finally:
        job.close()
    mode = "upsert" if args.command == "upsert" else args.mode or "append"
    return out.result(result, extra={"mode": mode, "rejects_file": None})
