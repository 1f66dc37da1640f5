"""Performance metrics of one operation: per batch and in total, optionally written as
JSON (``metrics_file`` / ``report_file``) and always returned in ``result.metrics``."""

from __future__ import annotations

import json
import resource
import threading
import time
from pathlib import Path
from typing import Any

from bulkframe.options import MetricsOptions


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
                self.batch_records.append(
                    {
                        "offset": offset,
                        "rows": rows,
                        "seconds": round(seconds, 6),
                        "retries": retries,
                        "bytes": nbytes,
                    }
                )
            if self.options.interval and self.rows >= self._next_snapshot:
                elapsed = time.perf_counter() - self.started
                self.snapshots.append(
                    {
                        "rows": self.rows,
                        "elapsed_seconds": round(elapsed, 6),
                        "rows_per_second": self.rows / elapsed if elapsed else 0.0,
                        "peak_rss_bytes": _peak_rss_bytes(),
                    }
                )
                while self._next_snapshot <= self.rows:
                    self._next_snapshot += self.options.interval

    def summary(self, result: Any) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.started
        out: dict[str, Any] = {
            "operation": result.operation,
            "table": result.table,
            "records_processed": result.records_processed,
            "success_count": result.success_count,
            "failure_count": result.failure_count,
            "batches": result.batches,
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
