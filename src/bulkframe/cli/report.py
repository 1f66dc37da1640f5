"""What the command prints: one summary line per table, or ``--json``; and its exit code."""

from __future__ import annotations

import json
import sys
from typing import Any

from bulkframe.cli import config


class Output:
    """Where results go: a summary line (default), JSON lines (``--json``) or nothing
    (``--quiet``).  Errors always go to stderr."""

    def __init__(self, *, as_json: bool, quiet: bool):
        self.as_json = as_json
        self.quiet = quiet

    def result(self, result: Any, *, extra: dict[str, Any] | None = None) -> int:
        """Print a ``BulkResult``; return its exit code."""
        code = exit_code(result)
        verification = getattr(result, "verification", None)
        if verification is not None and not verification.ok:
            code = max(code, config.EXIT_MISMATCH)
        if self.as_json:
            document = result.to_dict()
            if verification is not None:
                document["verification"] = verification.to_dict()
            document.update(extra or {})
            document["exit_code"] = code
            self._json(document)
        elif not self.quiet:
            sys.stdout.write(summary(result, extra or {}) + "\n")
            if verification is not None:
                sys.stdout.write(verification_line(verification) + "\n")
        return code

    def verification(self, verification: Any, extra: dict[str, Any] | None = None) -> int:
        code = config.EXIT_OK if verification.ok else config.EXIT_MISMATCH
        if self.as_json:
            self._json({**verification.to_dict(), **(extra or {}), "exit_code": code})
        elif not self.quiet:
            sys.stdout.write(verification_line(verification) + "\n")
        return code

    def error(self, message: str, code: int) -> int:
        sys.stderr.write(f"bulkframe: error: {message}\n")
        if self.as_json:
            self._json({"success": False, "error": message, "exit_code": code})
        return code

    def _json(self, document: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(document, default=str, ensure_ascii=False) + "\n")
        sys.stdout.flush()


def exit_code(result: Any) -> int:
    """0 when every row was written; 3 (partial) when rows were rejected or keys not found."""
    return config.EXIT_OK if result.failure_count == 0 else config.EXIT_PARTIAL


def summary(result: Any, extra: dict[str, Any]) -> str:
    """``create t: 3 processed, 3 succeeded (…), 0 failed in 1 batches, 0.01 s, 300 rows/s``
    and, when rows were rejected, where their reasons went."""
    mode = extra.get("mode")
    line = (
        f"{result.operation} {result.table}{f' ({mode})' if mode and mode != 'append' else ''}: "
        f"{result.records_processed:,} processed, {result.success_count:,} succeeded "
        f"({result.inserted:,} inserted, {result.updated:,} updated, "
        f"{f'{result.deleted:,} deleted, ' if result.deleted or result.operation == 'delete' else ''}"
        f"{result.skipped:,} skipped{f', {result.unchanged:,} unchanged' if result.unchanged else ''}), "
        f"{result.failure_count:,} failed in {result.batches} batches, "
        f"{result.duration_seconds:.2f} s, {result.rows_per_second:,.0f} rows/s"
    )
    if result.dry_run:
        line += " (dry run: nothing changed)"
    if "truncated" in result.metrics:
        line += f"; {result.metrics['truncated']:,} old rows removed"
    if result.failure_count:
        rejects = extra.get("rejects_file")
        line += f"; {result.failure_count:,} rejected " + (
            f"(rows and reasons in {rejects})" if rejects else "(pass --rejects FILE to keep them)"
        )
    return line


def verification_line(v: Any) -> str:
    status = "ok" if v.ok else "DIFFERENCES"
    extra = getattr(v, "only_in_table", None)
    only = f", {extra:,} only in the table" if extra is not None else ""
    mode = getattr(v, "mode", None)
    return (
        f"verify {v.table}: {status}: {v.checked:,} checked, {v.matched:,} matched, "
        f"{v.missing:,} missing, {v.mismatched:,} different{only} "
        f"(key {', '.join(v.key)}{f'; mode {mode}' if mode else ''})"
    )
