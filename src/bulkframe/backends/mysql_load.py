"""Arrow → the text ``LOAD DATA LOCAL INFILE`` reads, exactly, and a DBAPI cursor that reads
rows back into Arrow.

The text format is the server's default one: fields separated by a tab, rows by a newline,
``\\`` as the escape character and ``\\N`` for NULL.  Inside a field a backslash, tab,
newline, carriage return and NUL are escaped (``\\\\``, ``\\t``, ``\\n``, ``\\r``, ``\\0``);
everything else is written as is (UTF-8).  With ``FIELDS ENCLOSED BY`` left empty the word
``NULL`` is the four-letter text, an empty field the empty text: NULL, ``''`` and
``'NULL'`` stay three different values.  Each column is encoded vectorized (Arrow compute),
then the rows are joined with one Arrow call; no Python loop per value.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

#: ``(character, escaped form)``; the backslash first, so the escapes added after it stay.
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"), ("\0", "\\0"))
NULL = "\\N"


def _escape_text(arr: pa.Array, extra: str = "") -> pa.Array:
    """Escape the characters LOAD DATA would read as structure (``extra``: the first
    characters of custom separators)."""
    out = arr.cast(pa.large_string())
    escapes = _ESCAPES + tuple((c, "\\" + c) for c in dict.fromkeys(extra) if c not in "\t\n\r\0\\")
    for char, escaped in escapes:
        if pc.any(pc.match_substring(out, char)).as_py():
            out = pc.replace_substring(out, char, escaped)
    return out


def _hex(arr: pa.Array) -> pa.Array:
    """Binary values as ``0x…``-free hex text (the column is loaded through ``UNHEX``)."""
    import polars as pl

    return pl.Series(arr.cast(pa.large_binary())).bin.encode("hex").to_arrow().cast(pa.large_string())


def field_text(arr: pa.Array, binary_as_hex: bool, extra: str = "") -> pa.Array:
    """One column as the LOAD DATA text of each value (NULLs still null)."""
    t = arr.type
    if pa.types.is_boolean(t):
        return pc.if_else(arr, "1", "0").cast(pa.large_string())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return (
            _hex(arr)
            if binary_as_hex
            else _escape_text(arr.cast(pa.large_binary()).cast(pa.large_string()), extra)
        )
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _escape_text(arr, extra)
    if pa.types.is_decimal(t):
        import polars as pl

        # plain digits (Arrow's own cast writes 1E-8 for small values)
        return pl.Series(arr).cast(pl.String).to_arrow().cast(pa.large_string())
    if pa.types.is_timestamp(t):
        if t.tz is not None or t.unit != "us":
            arr = arr.cast(pa.timestamp("us"))  # tz-aware values are UTC underneath
        return arr.cast(pa.large_string())  # YYYY-MM-DD HH:MM:SS[.ffffff]
    if pa.types.is_time(t):
        return arr.cast(pa.time64("us")).cast(pa.large_string())
    return arr.cast(pa.large_string())


def encode_batch(
    batch: pa.RecordBatch | pa.Table,
    binary_as_hex: Sequence[bool],
    *,
    fields: str = "\t",
    lines: str = "\n",
    header: int = 0,
) -> pa.Buffer | None:
    """The rows of ``batch`` as LOAD DATA text (``None`` for no rows): ``fields`` between
    values, ``lines`` after each row, ``header`` lines of column names first (for
    ``IGNORE n LINES``).  Values escape the first character of each separator."""
    if batch.num_rows == 0:
        return None
    extra = fields[0] + lines[0]
    cols = []
    for i in range(batch.num_columns):
        col = batch.column(i)
        arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        cols.append(
            pc.fill_null(field_text(arr, binary_as_hex[i], extra), pa.scalar(NULL, pa.large_string()))
        )
    tab, newline, empty = (pa.scalar(c, pa.large_string()) for c in (fields, lines, ""))
    line = pc.binary_join_element_wise(*cols, tab) if len(cols) > 1 else cols[0]
    line = pc.binary_join_element_wise(line, empty, newline)  # [row, ""] joined by a newline: "row\n"
    line = line.cast(pa.large_string())
    offsets = line.buffers()[1]
    data = line.buffers()[2]
    import numpy as np

    bounds = np.frombuffer(offsets, dtype=np.int64)[line.offset : line.offset + len(line) + 1]
    body = data.slice(int(bounds[0]), int(bounds[-1] - bounds[0]))
    if not header:
        return body
    names = [_escape_text(pa.array([n], pa.large_string()), extra)[0].as_py() for n in batch.schema.names]
    head = ((fields.join(names) + lines) * header).encode()
    return pa.py_buffer(head + body.to_pybytes())


class ArrowCursor:
    """A DBAPI cursor of a MySQL driver, with ``fetch_arrow_table`` and ``adbc_ingest``
    (the two calls :class:`~bulkframe.backends.connection.Connection` makes besides plain
    DBAPI).  ``ingest`` is the backend's LOAD DATA (or INSERT) writer."""

    def __init__(self, raw: Any, cursor: Any, ingest: Callable[..., int], arrow_read: Callable[..., Any]):
        self._raw = raw
        #: the backend's session object this cursor belongs to
        self.session = raw
        self._cur = cursor
        self._ingest = ingest
        self._arrow_read = arrow_read
        self._sql: str | None = None
        self._params: Any = None
        self._pending = False

    # -- DBAPI -----------------------------------------------------------------
    # A SELECT that may go to connectorx (see ``MySQLBackend.arrow_rows``) is held back
    # until the caller says how it reads the rows: ``fetch_arrow_table`` may run it
    # elsewhere; anything else runs it here first.
    @property
    def description(self) -> Any:
        self._run_pending()
        return self._cur.description

    @property
    def rowcount(self) -> int:
        self._run_pending()
        return int(self._cur.rowcount)

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> None:
        self._raw.note(sql)
        self._sql, self._params = sql, parameters
        if self._raw.deferrable(sql):
            self._pending = True
            return
        self._cur.execute(sql, tuple(parameters) if parameters is not None else None)

    def _run_pending(self) -> None:
        if self._pending:
            self._pending = False
            self._cur.execute(self._sql, tuple(self._params) if self._params is not None else None)

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        self._raw.note(sql)
        self._cur.executemany(sql, [tuple(p) for p in seq])

    def fetchall(self) -> list[tuple[Any, ...]]:
        self._run_pending()
        return list(self._cur.fetchall())

    def fetchone(self) -> Any:
        self._run_pending()
        return self._cur.fetchone()

    def close(self) -> None:
        self._cur.close()

    @property
    def pending(self) -> tuple[str, Any] | None:
        """The held-back SELECT and its parameters (``None`` once it ran here)."""
        return (str(self._sql), self._params) if self._pending else None

    def mogrify(self, sql: str, params: Any) -> str:
        """``sql`` with the parameters written in as the driver escapes them."""
        text = self._cur.mogrify(sql, tuple(params) if params is not None else None)
        return text.decode() if isinstance(text, bytes) else str(text)

    def probe(self, sql: str, params: Any) -> Any:
        """The result columns of ``sql`` (DBAPI description) without its rows."""
        self._cur.execute(
            f"SELECT * FROM ({sql}) AS _bf_probe LIMIT 0", tuple(params) if params is not None else None
        )
        description = self._cur.description
        self._cur.fetchall()
        return description

    # -- Arrow -----------------------------------------------------------------------
    def fetch_arrow_table(self) -> pa.Table:
        return self._arrow_read(self)

    def fetch_record_batch(self) -> pa.RecordBatchReader:
        """The rows as a record-batch reader (read whole, as ``fetch_arrow_table``)."""
        return pa.RecordBatchReader.from_batches(*_batches(self.fetch_arrow_table()))

    def driver_arrow(self) -> pa.Table:
        """The rows of the executed query, fetched by the driver and converted column by
        column (exact: DECIMAL arrives as ``Decimal``)."""
        self._run_pending()
        names = [d[0] for d in self._cur.description or ()]
        rows = self._cur.fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        return pa.table([_to_arrow(list(values)) for values in columns], names=names)

    def adbc_ingest(self, table_name: str, data: Any, mode: str = "append", **kwargs: Any) -> int:
        if mode != "append":  # pragma: no cover - bulkframe only appends
            raise ValueError(f"ingest mode {mode!r}")
        return self._ingest(self, table_name, data, kwargs.get("db_schema_name"))

    def warning_count(self) -> int:
        """Warnings the last statement left (``SHOW WARNINGS`` lists them)."""
        return int(self._raw.conn.warning_count())


def _batches(table: pa.Table) -> tuple[pa.Schema, list[pa.RecordBatch]]:
    return table.schema, table.to_batches()


def _to_arrow(values: list[Any]) -> pa.Array:
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, dt.timedelta):  # TIME arrives as a timedelta since midnight
        return pa.array(
            [None if v is None else (dt.datetime.min + v).time() for v in values], pa.time64("us")
        )
    if isinstance(sample, decimal.Decimal):
        return _decimals(values)
    if isinstance(sample, bytearray):
        values = [None if v is None else bytes(v) for v in values]
    if isinstance(sample, dt.datetime):
        return pa.array(values, pa.timestamp("us"))
    return pa.array(values)


def _decimals(values: list[Any]) -> pa.Array:
    """Decimals as the narrowest decimal type holding all of them (exact), or as text when
    wider than 76 digits."""
    digits = scale = 0
    for v in values:
        if v is None:
            continue
        _sign, ds, exp = v.as_tuple()
        s = max(0, -int(exp))
        scale = max(scale, s)
        digits = max(digits, len(ds) + max(0, int(exp)) - s)  # digits before the point
    precision = max(1, digits + scale)
    if precision <= 38:
        return pa.array(values, pa.decimal128(precision, scale))
    if precision <= 76:
        return pa.array(values, pa.decimal256(precision, scale))
    return pa.array([None if v is None else f"{v:f}" for v in values], pa.large_string())
