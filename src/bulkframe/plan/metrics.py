"""Performance metrics of one operation: per batch and in total, optionally written as
JSON (``metrics_file`` / ``report_file``) and always returned in ``result.metrics``."""

from __future__ import annotations

import json
import resource
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkframe.errors import InvalidOptionValueError, MissingDependencyError, check_choice
from bulkframe.options import ReportFormat


@dataclass(frozen=True)
class MetricsOptions:
    """Which measurements to take.

    - ``batches``: one record per batch (rows, seconds, retries, Arrow bytes).
    - ``memory``: peak resident memory of the process.
    - ``cpu``: CPU seconds of the process (all threads).
    - ``disk_io``: bytes the process read and wrote (psutil).
    - ``network``: bytes the host sent and received (psutil; host-wide counters).
    - ``interval``: also take a snapshot (rows, elapsed, rows/s, RSS) every N rows.
    - ``files``: JSON files to write the summary to.
    """

    batches: bool = False
    memory: bool = False
    cpu: bool = False
    disk_io: bool = False
    network: bool = False
    interval: int | None = None
    files: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return any((self.batches, self.memory, self.cpu, self.disk_io, self.network, self.interval, self.files))


def metrics_options(
    *, collect_metrics: bool, metrics_file: str | None, metrics_interval: int | None,
    monitor_memory: bool, monitor_cpu: bool, monitor_disk_io: bool, monitor_network: bool,
    track_execution_time: bool, track_memory_usage: bool, track_io_operations: bool,
    track_batch_performance: bool, performance_report: bool, report_format: str, report_file: str | None,
) -> MetricsOptions:
    """Check the monitoring options; refuse what cannot be honoured."""
    check_choice("report_format", report_format, ReportFormat)
    if metrics_interval is not None and (not isinstance(metrics_interval, int) or metrics_interval < 1):
        raise InvalidOptionValueError(f"metrics_interval must be a positive int, got {metrics_interval!r}")
    if metrics_file and not collect_metrics:
        raise InvalidOptionValueError("metrics_file needs collect_metrics=True")
    if metrics_interval and not collect_metrics:
        raise InvalidOptionValueError("metrics_interval needs collect_metrics=True")
    if report_file and not performance_report:
        raise InvalidOptionValueError("report_file needs performance_report=True")
    if performance_report and not report_file:
        raise InvalidOptionValueError("performance_report=True needs report_file=... (a .json path)")
    disk = bool(monitor_disk_io or track_io_operations)
    net = bool(monitor_network or track_io_operations)
    if disk or net:
        try:
            import psutil  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError(
                "monitor_disk_io / monitor_network / track_io_operations need psutil. "
                "Install with: pip install psutil"
            ) from exc
    files = tuple(str(f) for f in (metrics_file, report_file) if f)
    return MetricsOptions(
        batches=bool(collect_metrics or track_batch_performance or track_execution_time or performance_report),
        memory=bool(monitor_memory or track_memory_usage),
        cpu=bool(monitor_cpu),
        disk_io=disk,
        network=net,
        interval=metrics_interval,
        files=files,
    )


def _peak_rss_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


class Metrics:
    """Collects what :class:`MetricsOptions` asks for; thread-safe."""

    def __init__(self, options: MetricsOptions):
        self.options = options
        self.lock = threading.Lock()
        self.started = time.perf_counter()
        self.cpu0 = time.process_time()
        self.batch_records: list[dict[str, Any]] = []
        self.snapshots: list[dict[str, Any]] = []
        self.rows = 0
        self._next_snapshot = options.interval or 0
        self.io0 = self._io() if options.disk_io else None
        self.net0 = self._net() if options.network else None

    @staticmethod
    def _io() -> tuple[int, int]:
        import psutil

        c = psutil.Process().io_counters()
        return int(c.read_bytes), int(c.write_bytes)

    @staticmethod
    def _net() -> tuple[int, int]:
        import psutil

        c = psutil.net_io_counters()
        return int(c.bytes_sent), int(c.bytes_recv)

    def batch(self, *, offset: int, rows: int, seconds: float, retries: int, nbytes: int) -> None:
        with self.lock:
            self.rows += rows
            if self.options.batches:
                self.batch_records.append({"offset": offset, "rows": rows, "seconds": round(seconds, 6),
                                           "retries": retries, "bytes": nbytes})
            if self.options.interval and self.rows >= self._next_snapshot:
                elapsed = time.perf_counter() - self.started
                self.snapshots.append({"rows": self.rows, "elapsed_seconds": round(elapsed, 6),
                                       "rows_per_second": self.rows / elapsed if elapsed else 0.0,
                                       "peak_rss_bytes": _peak_rss_bytes()})
                while self._next_snapshot <= self.rows:
                    self._next_snapshot += self.options.interval

    def summary(self, result: Any) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.started
        out: dict[str, Any] = {
            "operation": result.operation, "table": result.table,
            "records_processed": result.records_processed, "success_count": result.success_count,
            "failure_count": result.failure_count, "batches": result.batches,
            "duration_seconds": round(elapsed, 6),
            "rows_per_second": result.records_processed / elapsed if elapsed else 0.0,
        }
        if self.options.batches:
            out["batch_metrics"] = sorted(self.batch_records, key=lambda b: b["offset"])
        if self.options.interval:
            out["snapshots"] = self.snapshots
        if self.options.memory:
            out["peak_rss_bytes"] = _peak_rss_bytes()
        if self.options.cpu:
            out["cpu_seconds"] = round(time.process_time() - self.cpu0, 6)
        if self.io0 is not None:
            read, write = self._io()
            out["disk_read_bytes"], out["disk_write_bytes"] = read - self.io0[0], write - self.io0[1]
        if self.net0 is not None:
            sent, recv = self._net()
            out["host_net_sent_bytes"], out["host_net_recv_bytes"] = sent - self.net0[0], recv - self.net0[1]
        return out

    def write(self, summary: dict[str, Any]) -> None:
        for path in self.options.files:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(summary, indent=2, default=str))
