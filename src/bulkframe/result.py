"""The one result object every operation returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BulkResult:
    """What an operation did, with counts that add up.

    ``records_processed == success_count + failure_count`` always holds, and
    ``success_count == inserted + updated + deleted + skipped + unchanged`` for the
    operation's own kinds of success.  ``errors`` holds one row per rejected input row (a Polars
    DataFrame with ``row``, ``stage``, ``error`` and the row's values), or ``None``.
    """

    operation: str
    table: str
    records_processed: int = 0
    success_count: int = 0
    failure_count: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    #: Rows equal to the stored ones, left unwritten (``bulk_upsert(detect_changes=True)``).
    unchanged: int = 0
    not_found: int = 0
    batches: int = 0
    batches_committed: int = 0
    #: Input position ranges ``[start, end)`` whose batches committed; every row in them
    #: landed except those listed in ``errors``.
    committed_ranges: list[tuple[int, int]] = field(default_factory=list)
    duration_seconds: float = 0.0
    errors: Any = None
    deduplicated: int = 0
    dry_run: bool = False
    data: Any = None
    #: what ``verify_migration`` found (a ``Verification``), if it ran
    verification: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: Keys of input rows that matched no stored row (``bulk_update`` by rows,
    #: ``bulk_delete(ids=…)``): scalars for a one-column key, tuples otherwise.
    not_found_ids: list[Any] = field(default_factory=list)
    #: Incremental sync: the latest change timestamp among the input rows (the next run's
    #: ``last_sync_timestamp``), or the one the run started from when no row was newer.
    high_water_mark: Any = None

    @property
    def rows_per_second(self) -> float:
        return self.records_processed / self.duration_seconds if self.duration_seconds > 0 else 0.0

    @property
    def success(self) -> bool:
        return self.failure_count == 0

    def check(self) -> None:
        """Assert the invariants (used by tests and before returning)."""
        if self.records_processed != self.success_count + self.failure_count:
            raise AssertionError(
                f"count invariant broken: processed={self.records_processed} "
                f"success={self.success_count} failure={self.failure_count}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python view (the node layer's ``data`` output)."""
        out: dict[str, Any] = {
            "operation": self.operation,
            "table": self.table,
            "records_processed": self.records_processed,
            "success_count": self.success_count,
            "failure_count": self.failure_count,
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "skipped": self.skipped,
            "unchanged": self.unchanged,
            "not_found": self.not_found,
            "not_found_ids": list(self.not_found_ids),
            "deduplicated": self.deduplicated,
            "batches": self.batches,
            "batches_committed": self.batches_committed,
            "committed_ranges": [list(r) for r in self.committed_ranges],
            "duration_seconds": self.duration_seconds,
            "rows_per_second": self.rows_per_second,
            "dry_run": self.dry_run,
            "success": self.success,
            "warnings": list(self.warnings),
            "metrics": dict(self.metrics),
            "high_water_mark": self.high_water_mark,
        }
        errors = self.errors
        out["errors"] = errors.to_dicts() if errors is not None and hasattr(errors, "to_dicts") else []
        if self.data is not None:
            out["data"] = self.data.to_dicts() if hasattr(self.data, "to_dicts") else self.data
        return out

    def _repr_html_(self) -> str:
        """A compact HTML table for notebooks: counts, timing, rows/s and the first
        rejected rows with their reasons (every name and value HTML-escaped)."""
        from bulkframe import _html

        status = "ok" if self.success else f"{self.failure_count:,} rejected"
        caption = (
            f"BulkResult: {self.operation} {self.table!r}{' (dry run)' if self.dry_run else ''} — {status}"
        )
        counts: list[tuple[str, Any]] = [
            ("processed", self.records_processed),
            ("success", self.success_count),
            ("failure", self.failure_count),
        ]
        kinds = ("inserted", "updated", "deleted", "skipped", "unchanged", "not_found", "deduplicated")
        counts += [(kind, getattr(self, kind)) for kind in kinds if getattr(self, kind)]
        committed = (
            f"{self.batches_committed:,}/{self.batches:,}"
            if self.batches_committed != self.batches
            else self.batches
        )
        counts += [
            ("batches", committed),
            ("seconds", f"{self.duration_seconds:,.3f}"),
            ("rows/s", f"{self.rows_per_second:,.0f}"),
        ]
        if self.verification is not None:
            counts.append(("verified", "ok" if self.verification.ok else "DIFFERENCES"))
        parts = [_html.table([k for k, _ in counts], [[v for _, v in counts]], caption=caption)]
        rows, total = _html.first_rows(self.errors)
        if rows:
            parts.append(
                _html.table(
                    ["row", "stage", "error", "values"],
                    ([r.get("row"), r.get("stage"), r.get("error"), r.get("record")] for r in rows),
                    caption=f"rejected rows (first {len(rows):,} of {total:,})",
                )
            )
            parts.append(_html.more(len(rows), total, ".errors"))
        if self.warnings:
            parts.append(_html.table(["warning"], ([w] for w in self.warnings[: _html.SHOWN_ROWS])))
            parts.append(
                _html.more(min(len(self.warnings), _html.SHOWN_ROWS), len(self.warnings), ".warnings")
            )
        return f'<div class="bulkframe-result">{"".join(parts)}</div>'

    def __repr__(self) -> str:
        return (
            f"BulkResult({self.operation} {self.table!r}: processed={self.records_processed} "
            f"success={self.success_count} failure={self.failure_count} inserted={self.inserted} "
            f"updated={self.updated} deleted={self.deleted} skipped={self.skipped} "
            f"{f'unchanged={self.unchanged} ' if self.unchanged else ''}"
            f"batches={self.batches} {self.rows_per_second:,.0f} rows/s)"
        )
