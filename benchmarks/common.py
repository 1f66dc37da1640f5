"""Shared helpers for bulkframe's benchmarks.

* where the database is (:func:`postgres_url`, env ``BULKFRAME_BENCH_POSTGRES_URL``),
* the deterministic *products* data set in three forms (Arrow, Polars, list of dicts),
  its DDL, and a fingerprint query that proves a load stored exactly that data,
* timing, peak-RSS measurement, per-contender subprocesses, table printing and the
  JSON results file (``benchmarks/results/``, committed: the docs plot them).

Run benchmarks as scripts (``python benchmarks/bench_x.py``); this module is imported
from the script's own directory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

DEFAULT_URL = "postgresql://root@127.0.0.1:5432/test"
URL_ENV = "BULKFRAME_BENCH_POSTGRES_URL"
DEFAULT_SEED = 20240601
BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
SRC_DIR = BENCH_DIR.parent / "src"


def ensure_src_on_path() -> None:
    """Import bulkframe from this checkout (``src/``) unless it is already importable."""
    if str(SRC_DIR) not in sys.path:
        sys.path.insert(0, str(SRC_DIR))


# -- where ------------------------------------------------------------------------------


def postgres_url(cli_value: str | None = None) -> str:
    """``--url`` if given, else ``$BULKFRAME_BENCH_POSTGRES_URL``, else the local default."""
    return cli_value or os.environ.get(URL_ENV) or DEFAULT_URL


def sqlalchemy_url(url: str, driver: str = "psycopg") -> str:
    """``postgresql://…`` → ``postgresql+psycopg://…`` for SQLAlchemy."""
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+')[0]}+{driver}://{rest}"


# -- the products data set ------------------------------------------------------------------

PRODUCT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "bigint primary key"),
    ("name", "text"),
    ("price", "numeric(10,2)"),
    ("category", "text"),
    ("stock", "integer"),
    ("active", "boolean"),
    ("created_at", "timestamptz"),
    ("metadata", "jsonb"),
)
CATEGORIES = (
    "electronics",
    "books",
    "garden",
    "toys",
    "grocery",
    "clothing",
    "sports",
    "beauty",
    "automotive",
    "music",
    "office",
    "pets",
)
COLORS = ("red", "green", "blue", "black", "white", "yellow", "purple", "orange")
_EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_US = int(_EPOCH.timestamp()) * 1_000_000
_SPAN_US = 5 * 365 * 86_400 * 1_000_000  # five years of microseconds


def product_ddl(table: str) -> str:
    """``CREATE TABLE`` for the products shape (same DDL for every contender)."""
    cols = ", ".join(f'"{name}" {sql}' for name, sql in PRODUCT_COLUMNS)
    return f'CREATE TABLE "{table}" ({cols})'


def product_arrow_schema(json_type: Any = None) -> Any:
    """Exact Arrow types of the products table; ``metadata`` is JSON text (``string``)
    unless ``json_type`` is given (e.g. ``pa.json_(pa.string())``)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.int64()),
            ("name", pa.string()),
            ("price", pa.decimal128(10, 2)),
            ("category", pa.string()),
            ("stock", pa.int32()),
            ("active", pa.bool_()),
            ("created_at", pa.timestamp("us", tz="UTC")),
            ("metadata", json_type if json_type is not None else pa.string()),
        ]
    )


@dataclass
class _Raw:
    """The generated values as NumPy arrays (the one source of all three forms)."""

    n: int
    cents: Any
    category: Any
    stock: Any
    active: Any
    created_us: Any
    color: Any
    size: Any


def _raw(n: int, seed: int) -> _Raw:
    import numpy as np

    rng = np.random.default_rng(seed)
    return _Raw(
        n=n,
        cents=rng.integers(100, 10_000_000, n),  # 1.00 .. 99,999.99
        category=rng.integers(0, len(CATEGORIES), n),
        stock=rng.integers(0, 10_000, n).astype("int32"),
        active=rng.random(n) < 0.8,
        created_us=rng.integers(0, _SPAN_US, n),
        color=rng.integers(0, len(COLORS), n),
        size=rng.integers(1, 50, n),
    )


def _names(raw: _Raw) -> list[str]:
    return [
        f"{CATEGORIES[c]} item {i}" for i, c in zip(range(1, raw.n + 1), raw.category.tolist(), strict=True)
    ]


def product_arrow(n: int, seed: int = DEFAULT_SEED, *, json_type: Any = None) -> Any:
    """Products as a ``pyarrow.Table`` with the exact column types (see
    :func:`product_arrow_schema`); ``metadata`` holds compact JSON text such as
    ``{"color":"red","size":3}``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    raw = _raw(n, seed)
    schema = product_arrow_schema(json_type)
    cents = pa.array(raw.cents, pa.int64())
    # cents → decimal128(10,2) exactly: integer part and two-digit fraction as text
    price_text = pc.binary_join_element_wise(
        pc.cast(pc.divide(cents, 100), pa.string()),
        pc.utf8_lpad(
            pc.cast(pc.subtract(cents, pc.multiply(pc.divide(cents, 100), 100)), pa.string()), 2, "0"
        ),
        ".",
    )
    colors = np.array(COLORS, dtype=object)[raw.color]
    metadata = pc.binary_join_element_wise(
        '{"color":"',
        pa.array(colors, pa.string()),
        '","size":',
        pc.cast(pa.array(raw.size), pa.string()),
        "}",
        "",
    )
    if json_type is not None:
        metadata = pa.ExtensionArray.from_storage(json_type, metadata.cast(json_type.storage_type))
    return pa.table(
        [
            pa.array(np.arange(1, n + 1, dtype=np.int64)),
            pa.array(_names(raw), pa.string()),
            price_text.cast(pa.decimal128(10, 2)),
            pa.array(np.array(CATEGORIES, dtype=object)[raw.category], pa.string()),
            pa.array(raw.stock, pa.int32()),
            pa.array(raw.active, pa.bool_()),
            pa.array(raw.created_us + _EPOCH_US, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            metadata,
        ],
        schema=schema,
    )


def product_polars(n: int, seed: int = DEFAULT_SEED, *, metadata: str = "json") -> Any:
    """Products as a ``polars.DataFrame``: Int64, String, Decimal(10,2), String, Int32,
    Boolean, Datetime(us, UTC); ``metadata`` is a JSON ``String`` column
    (``metadata="json"``) or a ``Struct{color, size}`` (``metadata="struct"``)."""
    import polars as pl

    df = pl.from_arrow(product_arrow(n, seed))
    assert isinstance(df, pl.DataFrame)
    if metadata == "struct":
        df = df.with_columns(
            pl.col("metadata").str.json_decode(pl.Struct({"color": pl.String, "size": pl.Int64}))
        )
    elif metadata != "json":
        raise ValueError(f"metadata must be 'json' or 'struct', got {metadata!r}")
    return df


def product_dicts(n: int, seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """Products as a list of dicts with plain Python values: ``int``, ``str``,
    ``Decimal`` price, ``bool``, tz-aware ``datetime`` (UTC) and a ``dict`` metadata
    such as ``{"color": "red", "size": 3}``.  Same values as :func:`product_arrow`."""
    raw = _raw(n, seed)
    names = _names(raw)
    epoch = _EPOCH
    delta = dt.timedelta
    rows = []
    for i, (name, cents, cat, stock, active, us, color, size) in enumerate(
        zip(
            names,
            raw.cents.tolist(),
            raw.category.tolist(),
            raw.stock.tolist(),
            raw.active.tolist(),
            raw.created_us.tolist(),
            raw.color.tolist(),
            raw.size.tolist(),
            strict=True,
        ),
        start=1,
    ):
        rows.append(
            {
                "id": i,
                "name": name,
                "price": Decimal(cents).scaleb(-2),
                "category": CATEGORIES[cat],
                "stock": stock,
                "active": active,
                "created_at": epoch + delta(microseconds=us),
                "metadata": {"color": COLORS[color], "size": size},
            }
        )
    return rows


# The fingerprint proves a load stored exactly the generated values, not just N rows.
FINGERPRINT_SQL = """
SELECT count(*), sum(id), sum(price), sum(stock::bigint), count(*) FILTER (WHERE active),
       sum(length(name)), sum(length(category)),
       sum((extract(epoch FROM created_at) * 1000000)::bigint),
       sum((metadata->>'size')::bigint), sum(length(metadata->>'color'))
FROM "{table}"
"""


def fingerprint_of_arrow(table: Any) -> list[Any]:
    """What :data:`FINGERPRINT_SQL` must return for ``table`` (a products Arrow table)."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.compute as pc

    def total(arr: Any) -> Any:
        return pc.sum(arr).as_py()

    meta = pl.Series(table.column("metadata").cast(pa.string())).str.json_decode(
        pl.Struct({"color": pl.String, "size": pl.Int64})
    )
    return [
        table.num_rows,
        total(table.column("id")),
        total(table.column("price").cast(pa.decimal128(38, 2))),
        total(table.column("stock").cast(pa.int64())),
        total(table.column("active").cast(pa.int64())),
        total(pc.utf8_length(table.column("name"))),
        total(pc.utf8_length(table.column("category"))),
        sum(table.column("created_at").cast(pa.int64()).to_pylist()),  # exceeds int64
        int(meta.struct.field("size").sum()),
        int(meta.struct.field("color").str.len_chars().sum()),
    ]


# -- PostgreSQL helpers (psycopg, autocommit; never timed) ----------------------------------


def pg_execute(url: str, *statements: str) -> list[Any]:
    """Run statements in autocommit mode; return the last one's rows (if any)."""
    import psycopg

    rows: list[Any] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in statements:
            cur = conn.execute(sql)
            rows = cur.fetchall() if cur.description else []
    return rows


def recreate_table(url: str, table: str, ddl: str) -> None:
    pg_execute(url, f'DROP TABLE IF EXISTS "{table}"', ddl)


def drop_table(url: str, table: str) -> None:
    pg_execute(url, f'DROP TABLE IF EXISTS "{table}"')


def checkpoint(url: str) -> None:
    """Flush dirty buffers before a timed load so no load pays for the previous one's
    checkpoint (needs superuser; silently skipped otherwise)."""
    with contextlib.suppress(Exception):
        pg_execute(url, "CHECKPOINT")


def count_rows(url: str, table: str) -> int:
    return int(pg_execute(url, f'SELECT count(*) FROM "{table}"')[0][0])


def server_version(url: str) -> str:
    try:
        return str(pg_execute(url, "SHOW server_version")[0][0])
    except Exception as exc:  # reported, not fatal
        return f"unknown ({type(exc).__name__})"


# -- timing and memory ------------------------------------------------------------------------


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """``with stopwatch() as t: …`` then ``t["seconds"]`` (wall clock, perf_counter)."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - start


def _proc_status_kb(key: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else None


def rss_mb() -> float:
    """Current resident set size of this process, MiB."""
    kb = _proc_status_kb("VmRSS")
    if kb is not None:
        return kb / 1024
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def lifetime_peak_rss_mb() -> float:
    """``ru_maxrss`` of this process (peak since start, or since the last reset), MiB."""
    kb = _proc_status_kb("VmHWM")
    if kb is not None:
        return kb / 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class PeakRSS:
    """Peak RSS of the process *while the block runs*, in MiB.

    On Linux the kernel's high-water mark is reset on entry (``/proc/self/clear_refs``)
    and read on exit: exact, and no sampling overhead.  Elsewhere a thread samples RSS
    every 5 ms.  ``before`` is the RSS on entry (the prepared data), ``peak`` the highest
    RSS inside the block, ``delta`` their difference (what the load itself added).
    """

    def __init__(self) -> None:
        self.before = self.peak = 0.0
        self.method = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def delta(self) -> float:
        return max(0.0, self.peak - self.before)

    def __enter__(self) -> PeakRSS:
        self.before = rss_mb()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.method = "VmHWM"
        except OSError:
            self.method = "sampled"
            self.peak = self.before
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_mb())
        else:
            self.peak = max(lifetime_peak_rss_mb(), self.before)


# -- running contenders in fresh processes ------------------------------------------------------


@dataclass
class ChildOutcome:
    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0


def run_child(
    script: Path, args: Sequence[str], *, timeout: float = 3600.0, env: dict[str, str] | None = None
) -> ChildOutcome:
    """Run ``python script *args --result-file F`` in a fresh interpreter and read the
    JSON object the child wrote to F.  The child's stderr streams through (progress)."""
    with tempfile.TemporaryDirectory(prefix="bf-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(script), *args, "--result-file", str(out)]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, timeout=timeout, env=env, stdout=subprocess.PIPE, text=True)
        except subprocess.TimeoutExpired:
            return ChildOutcome(
                False, error=f"timed out after {timeout:.0f} s", seconds=time.perf_counter() - start
            )
        seconds = time.perf_counter() - start
        if proc.stdout:
            sys.stderr.write(proc.stdout)
        result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
        if proc.returncode != 0:
            error = result.get("error") or f"child exited with status {proc.returncode}"
            return ChildOutcome(False, result, error, seconds)
        return ChildOutcome(True, result, "", seconds)


def child_env() -> dict[str, str]:
    """The environment for a child: ``src/`` on PYTHONPATH so it imports this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC_DIR), env.get("PYTHONPATH", "")) if p)
    return env


# -- output --------------------------------------------------------------------------------------


def fmt_int(n: float | None) -> str:
    return "-" if n is None else f"{n:,.0f}"


def fmt_float(x: float | None, digits: int = 2, suffix: str = "") -> str:
    return "-" if x is None else f"{x:,.{digits}f}{suffix}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A plain-text table; ``align`` has one ``l``/``r`` per column (default: first left)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def environment_info(url: str) -> dict[str, Any]:
    """Versions and machine facts recorded with every result file."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "postgres": server_version(url),
    }
    for module in (
        "bulkframe",
        "pyarrow",
        "polars",
        "adbc_driver_postgresql",
        "psycopg",
        "sqlalchemy",
        "pandas",
    ):
        try:
            mod = __import__(module)
            info[module] = getattr(mod, "__version__", "?")
        except Exception:
            info[module] = None
    return info


def machine_info() -> dict[str, Any]:
    """The machine a run happened on: CPU model, cores, memory, OS, load when it ended."""
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["processor"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
                break
    with contextlib.suppress(OSError, AttributeError):
        info["load_average_1m"] = round(os.getloadavg()[0], 2)
    return info


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` and return its path.

    Every file records how it was made: ``command`` (the command line), ``machine``
    (:func:`machine_info`) and ``date`` (UTC, ISO 8601), so a plot of it can say so.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    argv = [Path(sys.argv[0]).as_posix(), *sys.argv[1:]]
    with contextlib.suppress(ValueError):  # relative to the repository when it is inside it
        argv[0] = Path(sys.argv[0]).resolve().relative_to(BENCH_DIR.parent).as_posix()
    stamped = {
        "benchmark": name,
        "command": redact_url(" ".join(["python", *argv])),
        "machine": machine_info(),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **payload,
    }
    path.write_text(json.dumps(stamped, indent=2, default=str) + "\n")
    return path


def redact_url(url: str) -> str:
    """The URL without its password, for printing."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def timed_call(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value
