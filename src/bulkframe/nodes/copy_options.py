"""``copy_options`` of a create node: the format of a CSV/text file given as ``data``.

Keys: ``format`` (``"csv"`` or ``"text"``), ``delimiter``, ``null_string``, ``header``
(default ``True``), ``columns`` (the file's columns, needed when it has no header),
``quote``, ``escape``, ``encoding``.  Other keys, and ``copy_options`` with data that is
not a file path, are refused: the options describe how a file is written, and rows or
frames reach the database as typed binary COPY where they mean nothing.

Two paths, the same rows stored:

server
    On a backend whose server parses text (``capabilities.copy_text``: PostgreSQL), the
    file streams unchanged into ``COPY … FROM STDIN`` with those options, in one
    transaction (``Backend.copy_text_file``).  Taken for a plain append: no
    ``conflict_resolution``, ``validation_rules``, ``transformation_rules``, resumable or
    parallel options (anything outside :data:`SERVER_OPTIONS`).  A bad line makes the
    server refuse the whole file: with ``error_strategy="stop"`` that error is raised
    (naming the line, nothing written); with ``"continue"``/``"retry_batch"`` the file is
    loaded again through the client path, which isolates and reports the bad rows.
client
    Everywhere else: the file is read by Arrow's CSV reader with the same options, every
    column as text, and cast by bulkframe to the table's types (as ``bulk_create`` reads a
    CSV file), so rejections name the row.  PostgreSQL's ``format="text"`` (backslash
    escapes) is only read by the server; elsewhere it is refused.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkframe.backends.base import TextFormat
from bulkframe.errors import (
    DataError,
    IntegrityError,
    InvalidOptionValueError,
    NotSupportedError,
    SchemaError,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from bulkframe.nodes.dataflow import DataFlow
    from bulkframe.result import BulkResult

log = logging.getLogger("bulkframe.nodes")

KEYS = ("format", "delimiter", "null_string", "header", "columns", "quote", "escape", "encoding")
#: Create options under which the server path loads the file (anything else: client path).
SERVER_OPTIONS = frozenset(
    {
        "batch_size",
        "error_strategy",
        "max_errors",
        "use_copy",
        "disable_triggers",
        "disable_indexes",
        "streaming",
        "validate_data",
        "skip_validation",
        "conflict_resolution",
        "progress_callback",
        "progress_interval",
        "auto_cleanup",
        "cleanup_on_failure",
    }
)
_TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".tab", ".dat")


def parse(options: Any, where: str) -> tuple[TextFormat, list[str] | None]:
    """``copy_options`` → ``(TextFormat, columns or None)``.

    Raises
    ------
    InvalidOptionValueError
        Not a mapping, an unknown key, or a value outside what the key takes.
    """
    if not isinstance(options, Mapping):
        raise InvalidOptionValueError(
            f"{where}: copy_options must be a mapping, got {type(options).__name__}"
        )
    unknown = sorted(set(options) - set(KEYS))
    if unknown:
        raise InvalidOptionValueError(
            f"{where}: copy_options {unknown} are not supported; supported: {list(KEYS)}"
        )
    fmt = options.get("format", "csv")
    if fmt not in ("csv", "text"):
        raise InvalidOptionValueError(f"{where}: copy_options format={fmt!r}; use 'csv' or 'text'")
    delimiter = options.get("delimiter", "," if fmt == "csv" else "\t")
    quote = options.get("quote", '"')
    for name, value in (("delimiter", delimiter), ("quote", quote)):
        if not isinstance(value, str) or len(value.encode()) != 1:
            raise InvalidOptionValueError(
                f"{where}: copy_options {name} must be one one-byte character, got {value!r}"
            )
    escape = options.get("escape")
    if escape is not None and (not isinstance(escape, str) or len(escape.encode()) != 1):
        raise InvalidOptionValueError(
            f"{where}: copy_options escape must be one one-byte character, got {escape!r}"
        )
    null = options.get("null_string")
    if null is not None and (not isinstance(null, str) or delimiter in null or "\n" in null or "\r" in null):
        raise InvalidOptionValueError(
            f"{where}: copy_options null_string must be text without the delimiter or a newline, got {null!r}"
        )
    header = options.get("header", True)
    if not isinstance(header, bool):
        raise InvalidOptionValueError(f"{where}: copy_options header must be True or False, got {header!r}")
    columns = options.get("columns")
    if columns is not None and (isinstance(columns, str) or not all(isinstance(c, str) for c in columns)):
        raise InvalidOptionValueError(f"{where}: copy_options columns must be a list of column names")
    if not header and columns is None:
        raise InvalidOptionValueError(
            f"{where}: copy_options header=False needs columns=[...] (the file's columns, in order)"
        )
    encoding = options.get("encoding", "utf-8")
    if not isinstance(encoding, str):
        raise InvalidOptionValueError(f"{where}: copy_options encoding must be a name, got {encoding!r}")
    text = TextFormat(
        format=fmt,
        delimiter=delimiter,
        null=null if null is not None else ("\\N" if fmt == "text" else None),
        header=header,
        quote=quote,
        escape=escape,
        encoding=encoding,
    )
    return text, list(columns) if columns is not None else None


def file_of(data: Any) -> Path | None:
    """The text file ``data`` names, or ``None`` when ``data`` is not a path."""
    if isinstance(data, str | Path) and Path(data).suffix.lower() in _TEXT_SUFFIXES:
        return Path(data)
    return None


def create_from_file(
    dataflow: DataFlow, model: type, data: Any, options: Any, kwargs: dict[str, Any], where: str
) -> BulkResult:
    """Load the file ``data`` with ``copy_options`` (see the module docstring)."""
    from bulkframe.nodes.dataflow import info_of

    fmt, columns = parse(options, where)
    path = file_of(data)
    if path is None:
        raise InvalidOptionValueError(
            f"{where}: copy_options describe how a CSV/text file is written, but data is "
            f"{type(data).__name__ if not isinstance(data, str | Path) else repr(str(data))}; rows and frames are "
            f"sent as typed binary COPY, where those options mean nothing. Remove copy_options, or pass a "
            f"{'/'.join(_TEXT_SUFFIXES)} file path as data"
        )
    if not path.exists():
        raise SchemaError(f"{where}: no such file: {path}")
    db = dataflow.database
    ref = info_of(model).table
    table_columns = [c.name for c in db.columns(ref.name, schema=ref.schema) or ()]
    names = columns if columns is not None else _header(path, fmt)
    unknown = [c for c in names if c not in table_columns]
    if unknown:
        raise SchemaError(
            f"{where}: file {path} has column(s) {unknown} (read with delimiter {fmt.delimiter!r}) that are not "
            f"columns of {ref}; its columns: {table_columns}"
        )
    backend = db.backend
    plain = kwargs.get("conflict_resolution", "error") == "error" and set(kwargs) <= SERVER_OPTIONS
    if backend.capabilities.copy_text and plain:
        started = time.perf_counter()
        try:
            loaded = backend.copy_text_file(
                ref, str(path), names, fmt, disable_triggers=bool(kwargs.get("disable_triggers"))
            )
        except (DataError, IntegrityError) as exc:
            if kwargs.get("error_strategy", "stop") == "stop" or fmt.format == "text":
                raise
            log.warning(
                "%s: the server refused %s (%s); nothing was written. Loading it again through the client "
                "path to isolate the bad rows (error_strategy=%r)",
                where,
                path,
                exc,
                kwargs.get("error_strategy"),
            )
        else:
            return _server_result(ref, loaded, time.perf_counter() - started, fmt)
    if fmt.format == "text":
        raise NotSupportedError(
            f"{where}: copy_options format='text' (PostgreSQL's text format, backslash escapes) is only read by a "
            f"server that parses text itself ({backend.name} does not, or the options need the client path: "
            f"{sorted(set(kwargs) - SERVER_OPTIONS)}); write the file as format='csv'"
        )
    return db.bulk_create(model, _reader(path, fmt, names, columns is not None), **kwargs)


def _header(path: Path, fmt: TextFormat) -> list[str]:
    with open(path, newline="", encoding=fmt.encoding) as f:
        reader = csv.reader(f, delimiter=fmt.delimiter, quotechar=fmt.quote, escapechar=fmt.escape)
        first = next(reader, None)
    if not first:
        raise SchemaError(f"file {path} is empty: no header line")
    return first


def _reader(path: Path, fmt: TextFormat, names: list[str], given: bool) -> pa.RecordBatchReader:
    """Arrow's CSV reader with the file's format: every column as text (bulkframe casts
    to the table's types), an unquoted ``null_string`` (default: empty) as NULL, a quoted
    value never NULL (PostgreSQL's CSV rules)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    read = pacsv.ReadOptions(
        use_threads=False,
        encoding=fmt.encoding,
        column_names=names if given else None,
        skip_rows=1 if (fmt.header and given) else 0,
    )
    parse = pacsv.ParseOptions(
        delimiter=fmt.delimiter,
        quote_char=fmt.quote,
        escape_char=fmt.escape if fmt.escape not in (None, fmt.quote) else False,
        double_quote=fmt.escape in (None, fmt.quote),
        newlines_in_values=True,
    )
    convert = pacsv.ConvertOptions(
        null_values=[fmt.null if fmt.null is not None else ""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        column_types={n: pa.large_string() for n in names},
    )
    return pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)


def _server_result(ref: Any, loaded: int, seconds: float, fmt: TextFormat) -> BulkResult:
    from bulkframe.result import BulkResult

    result = BulkResult(
        "create",
        str(ref),
        records_processed=loaded,
        success_count=loaded,
        inserted=loaded,
        batches=1,
        batches_committed=1,
        committed_ranges=[(0, loaded)],
        duration_seconds=seconds,
    )
    result.metrics["copy"] = {
        "path": "server",
        "format": fmt.format,
        "delimiter": fmt.delimiter,
        "null": fmt.null,
    }
    result.check()
    return result
