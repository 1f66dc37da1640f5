"""Input files for ``load``/``upsert``/``update``/``verify``: CSV with explicit options,
JSON Lines, Parquet; gzip/zstd by extension; ``-`` for standard input.

A plain ``.csv``/``.tsv``/``.parquet`` file read with the default options is handed to
the library as a path (its CSV reader names the CSV line of a bad value, and reads the
file the fastest way it knows).  Anything else is opened here as a stream of Arrow
batches, read block by block (memory bounded by the block, never by the file):

- into an existing table every CSV column is read as text and cast by the library to the
  column's type, exactly as the database's own cast would (``01234`` stays ``01234`` in
  a text column; a bad value is refused naming its row);
- for a new table, ``--type``/``--schema`` declare column types and the rest are
  inferred from the first block.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from bulkframe.types import Column

from bulkframe.cli.config import UsageError

COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2"}
FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
#: ``--format`` choices.
FORMAT_CHOICES = ("csv", "tsv", "jsonl", "parquet")
_MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd", b"BZh": "bz2"}
#: Bytes of input parsed per block (and so the most a block holds in memory).
BLOCK_SIZE = 8 << 20


class InputError(ValueError):
    """An input the command line cannot read (exit code 1)."""


@dataclass(frozen=True)
class InputOptions:
    """How an input file is read (the CSV options apply to CSV/TSV only)."""

    format: str | None = None
    delimiter: str | None = None
    null_string: str | None = None
    header: bool = True
    encoding: str | None = None
    #: Column names for a file without a header line.
    columns: tuple[str, ...] | None = None

    @property
    def csv_defaults(self) -> bool:
        return (
            self.delimiter is None
            and self.null_string is None
            and self.header
            and (self.encoding or "utf8").lower().replace("-", "") in ("utf8",)
            and self.columns is None
        )


def kind_of(path: str, options: InputOptions) -> tuple[str, str | None]:
    """``(format, compression)`` of ``path``: from ``--format`` or the extension (a
    ``.gz``/``.zst`` suffix names the compression); standard input is CSV unless
    ``--format`` says otherwise, its compression read from its first bytes."""
    if path == "-":
        return options.format or "csv", None
    suffixes = [s.lower() for s in Path(path).suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    fmt = options.format or (FORMATS.get(suffixes[-1]) if suffixes else None)
    if fmt is None:
        raise UsageError(
            f"cannot tell the format of {path!r} from its name; pass --format "
            f"{'|'.join(FORMAT_CHOICES)} (known extensions: {', '.join(sorted(FORMATS))}, "
            f"optionally followed by {', '.join(sorted(COMPRESSIONS))})"
        )
    if fmt == "parquet" and compression:
        raise UsageError(f"{path!r}: a compressed Parquet file is not supported (Parquet compresses itself)")
    return fmt, compression


def library_reads(path: str, options: InputOptions) -> bool:
    """Whether the library's own reader takes ``path`` as it is (a plain CSV/TSV/Parquet
    file and the default CSV options)."""
    if path == "-":
        return False
    fmt, compression = kind_of(path, options)
    if compression:
        return False
    suffix = Path(path).suffix.lower()
    if fmt == "parquet":
        return suffix in (".parquet", ".pq")
    return fmt in ("csv", "tsv") and suffix == f".{fmt}" and options.csv_defaults


def server_readable(path: str, options: InputOptions, table_columns: Sequence[str]) -> Any:
    """A :class:`~bulkframe.cli.modes.TextFile` when the database server can parse ``path``
    itself: an uncompressed CSV/TSV file in UTF-8 whose columns (header, ``--columns``, or
    the table's own for a headerless file) are all columns of the table; else ``None``."""
    if path == "-":
        return None
    fmt, compression = kind_of(path, options)
    if fmt not in ("csv", "tsv") or compression or not Path(path).is_file():
        return None
    if (options.encoding or "utf8").lower().replace("-", "") != "utf8":
        return None
    delimiter = options.delimiter if options.delimiter is not None else ("\t" if fmt == "tsv" else ",")
    delimiter = "\t" if delimiter == "\\t" else delimiter
    if len(delimiter) != 1:
        return None
    if options.header:
        import csv

        with open(path, newline="", encoding="utf-8-sig") as f:
            names = next(csv.reader(f, delimiter=delimiter), None)
        if options.columns or not names:
            return None
    else:
        names = list(options.columns) if options.columns else list(table_columns)
    if not names or len(set(names)) != len(names) or not set(names) <= set(table_columns):
        return None
    with open(path, "rb") as f:
        if f.read(3) == b"\xef\xbb\xbf":  # a byte-order mark the server would read as data
            return None
    from bulkframe.backends.base import TextFormat
    from bulkframe.cli.modes import TextFile

    text = TextFormat(format="csv", delimiter=delimiter, null=options.null_string, header=options.header)
    return TextFile(path, text, names)


# -- declared types ---------------------------------------------------------------

_TYPE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_ ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")
_ALIASES = {
    "int": "int64",
    "integer": "int64",
    "bigint": "int64",
    "smallint": "int16",
    "float": "float64",
    "double": "float64",
    "real": "float32",
    "numeric": "decimal",
    "string": "text",
    "varchar": "text",
    "boolean": "bool",
    "datetime": "timestamp",
    "json": "json",
    "jsonb": "json",
    "bytes": "binary",
    "bytea": "binary",
}


def parse_type(name: str, spec: str) -> Column:
    """``"decimal(12,2)"``, ``"text(20)"``, ``"int64"``, ``"timestamptz"`` … → a
    :class:`~bulkframe.types.Column` named ``name`` (bulkframe's column kinds, with a few
    SQL spellings accepted: integer, bigint, numeric, varchar, boolean, …)."""
    from bulkframe.types import KINDS, Column

    match = _TYPE.match(spec)
    kind = _ALIASES.get(match[1].lower(), match[1].lower()) if match else None
    if match is None or kind not in KINDS:
        raise UsageError(
            f"column {name!r}: unknown type {spec!r}; use one of {', '.join(KINDS)} "
            "(decimal(p,s) and text(n) take a size)"
        )
    first, second = (int(match[2]) if match[2] else None), (int(match[3]) if match[3] else None)
    if kind == "decimal":
        return Column(
            name, kind, precision=first, scale=second if second is not None else (0 if first else None)
        )
    if kind == "text":
        if second is not None:
            raise UsageError(f"column {name!r}: {spec!r}: text takes one size, text(n)")
        return Column(name, kind, length=first)
    if first is not None:
        raise UsageError(f"column {name!r}: {spec!r}: type {kind} takes no size")
    return Column(name, kind)


def declared_types(pairs: Sequence[str], schema_file: str | None) -> tuple[dict[str, Column], bool]:
    """``--type col=TYPE`` (repeatable) and ``--schema FILE`` → ``({name: Column}, whole)``
    where ``whole`` says the schema file lists every column of the table (in order).

    The schema file is JSON: ``{"id": "int64", "price": "decimal(10,2)"}``, or
    ``{"columns": {…}, "primary_key": [...]}`` (the primary key is read by the caller)."""
    out: dict[str, Column] = {}
    whole = False
    if schema_file:
        document = read_schema_file(schema_file)
        columns = document.get("columns", document) if isinstance(document, Mapping) else None
        if not isinstance(columns, Mapping) or not all(isinstance(v, str) for v in columns.values()):
            raise UsageError(
                f"--schema {schema_file}: expected a JSON object {{column: type}} or "
                '{"columns": {column: type}, "primary_key": [...]}'
            )
        out.update({name: parse_type(name, spec) for name, spec in columns.items()})
        whole = True
    for pair in pairs:
        name, sep, spec = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--type {pair!r}: expected COLUMN=TYPE, e.g. --type zip=text")
        out[name.strip()] = parse_type(name.strip(), spec)
    return out, whole


def read_schema_file(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"--schema {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--schema {path}: not valid JSON ({exc})") from None


# -- streams -----------------------------------------------------------------------


def _open_stream(path: str, compression: str | None) -> Any:
    import pyarrow as pa

    if path == "-":
        raw = sys.stdin.buffer
        head = raw.peek(4)[:4] if hasattr(raw, "peek") else b""
        found = next((name for magic, name in _MAGIC.items() if head.startswith(magic)), None)
        stream = pa.PythonFile(raw, mode="r")
        return pa.CompressedInputStream(stream, found) if found else stream
    if not Path(path).exists():
        raise InputError(f"no such file: {path}")
    return pa.input_stream(path, compression=compression)


def open_input(path: str, options: InputOptions, target: Mapping[str, Column] | None) -> pa.RecordBatchReader:
    """``path`` as a stream of Arrow batches.

    ``target``: the existing table's columns (CSV columns are then read as text and cast
    by the library), or the declared columns of a table about to be created."""
    import pyarrow as pa

    fmt, compression = kind_of(path, options)
    name = "standard input" if path == "-" else path
    stream = _open_stream(path, compression)
    try:
        if fmt in ("csv", "tsv"):
            reader = _csv_reader(stream, fmt, options, target)
        elif fmt == "jsonl":
            import pyarrow.json as pajson

            reader = pajson.open_json(stream, read_options=pajson.ReadOptions(block_size=BLOCK_SIZE))
        else:
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(stream)
            reader = pa.RecordBatchReader.from_batches(pf.schema_arrow, pf.iter_batches(batch_size=65_536))
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{name}: {_short(exc)}") from None
    return pa.RecordBatchReader.from_batches(reader.schema, _checked(reader, name))


def _checked(reader: pa.RecordBatchReader, name: str) -> Iterator[pa.RecordBatch]:
    """The reader's batches, with a parse error turned into one line naming the input."""
    import pyarrow as pa

    from bulkframe.errors import SchemaError

    try:
        yield from reader
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
        raise SchemaError(f"{name}: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:400]


def _csv_reader(
    stream: Any, fmt: str, options: InputOptions, target: Mapping[str, Column] | None
) -> pa.RecordBatchReader:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    delimiter = options.delimiter if options.delimiter is not None else ("\t" if fmt == "tsv" else ",")
    if delimiter == "\\t":
        delimiter = "\t"
    if len(delimiter) != 1:
        raise UsageError(f"--delimiter must be one character, got {delimiter!r}")
    names: list[str] | None = None
    if not options.header:
        names = list(options.columns) if options.columns else (list(target) if target else None)
    elif options.columns:
        raise UsageError("--columns names the columns of a file without a header; add --no-header")
    read = pacsv.ReadOptions(
        use_threads=False,
        block_size=BLOCK_SIZE,
        encoding=options.encoding or "utf8",
        column_names=names,
        autogenerate_column_names=not options.header and names is None,
    )
    null_values = [options.null_string] if options.null_string is not None else [""]
    # existing or declared columns are read as text and cast exactly by the library
    text_columns = {name: pa.large_string() for name in target} if target else {}
    convert = pacsv.ConvertOptions(
        null_values=null_values,
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        column_types=text_columns or None,
    )
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    return pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)


def inferred_columns(schema: pa.Schema, declared: Mapping[str, Column]) -> list[Column]:
    """The columns of a new table: declared ones as declared, the rest inferred from the
    input's Arrow types."""
    from bulkframe.types import kind_of_arrow

    return [declared.get(f.name) or kind_of_arrow(f) for f in schema]
