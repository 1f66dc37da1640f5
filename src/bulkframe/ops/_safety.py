"""Safety steps of ``bulk_delete``: confirmation and backups of the deleted rows.

Only a real yes deletes: ``confirm_delete=True`` answered ``y``/``yes`` at the prompt, or a
callable returning ``True`` or the string ``"y"``/``"yes"`` (trimmed, any case).  A backup
never replaces an existing file, and binary columns are written as base64 text in the
text formats (``.json``, ``.jsonl``, ``.csv``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkframe.errors import InvalidOptionValueError, SafetyLimitError

if TYPE_CHECKING:
    import polars as pl

#: File suffixes a backup may have, and the Polars writer for each.
BACKUP_FORMATS = (".parquet", ".json", ".jsonl", ".csv")


#: Answers that confirm / decline a deletion (compared trimmed and lower-cased).
YES, NO = ("y", "yes"), ("n", "no")


def check_backup_location(location: Any) -> Path:
    if not isinstance(location, (str, os.PathLike)) or not str(location):
        raise InvalidOptionValueError(
            "backup_before_delete=True needs backup_location='…/rows.parquet' "
            f"(one of {', '.join(BACKUP_FORMATS)})"
        )
    path = Path(location)
    if path.suffix.lower() not in BACKUP_FORMATS:
        raise InvalidOptionValueError(
            f"backup_location {str(path)!r}: unknown format {path.suffix!r}; "
            f"use one of {', '.join(BACKUP_FORMATS)}"
        )
    return path


def refuse_existing(paths: list[Path]) -> None:
    """A backup never replaces a file: refuse (before anything is deleted) when one exists."""
    for path in paths:
        if path.exists() or path.is_symlink():
            raise SafetyLimitError(
                f"backup_location: {str(path)!r} already exists; bulkframe never overwrites a backup. "
                "Choose a new file name or move the old backup away. Nothing was deleted."
            )


def sibling(path: Path, table: str) -> Path:
    """Where the rows a cascade deletes from ``table`` are backed up, beside ``path``."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in table)
    return path.with_name(f"{path.stem}.{safe}{path.suffix}")


def write_backup(frame: pl.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` (format from the suffix) atomically: a temporary file
    beside it, then a rename, so a failed write leaves no half-written backup."""
    import polars as pl

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.bf-tmp")
    suffix = path.suffix.lower()
    if suffix != ".parquet":  # text formats cannot hold bytes (Polars panics on JSON): base64
        binary = [name for name, dtype in frame.schema.items() if dtype == pl.Binary]
        frame = frame.with_columns(pl.col(name).bin.encode("base64") for name in binary)
    try:
        if suffix == ".parquet":
            frame.write_parquet(tmp)
        elif suffix == ".csv":
            frame.write_csv(tmp)
        elif suffix == ".jsonl":
            frame.write_ndjson(tmp)
        else:
            frame.write_json(tmp)
        refuse_existing([path])  # appeared while the delete ran
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def confirm(choice: bool | Callable[[int, Any], Any], count: int, sample: pl.DataFrame, table: str) -> bool:
    """Ask whether ``count`` rows may go: the caller's callable, or a yes/no prompt.

    Only ``True`` or ``"y"``/``"yes"`` confirm; ``False`` or ``"n"``/``"no"`` decline;
    any other answer from a callable (``1``, ``None``, ``"maybe"``) raises
    ``SafetyLimitError`` naming it.  At the prompt anything but yes declines."""
    if callable(choice):
        answer = choice(count, sample)
        if answer is True or answer is False:
            return answer
        word = answer.strip().lower() if isinstance(answer, str) else None
        if word in YES or word in NO:
            return word in YES
        raise SafetyLimitError(
            f"confirm_delete: the callable answered {answer!r} for {count} rows of {table}; only True or "
            "'y'/'yes' confirms (False or 'n'/'no' declines). Nothing was deleted."
        )
    if not (_stdin_is_tty() or _in_notebook()):
        raise SafetyLimitError(
            f"confirm_delete=True: {count} rows of {table} match, but there is no terminal or notebook "
            "to ask; pass confirm_delete=callable(count, sample) -> bool. Nothing was deleted."
        )
    print(sample)
    answer = input(f"Delete {count} row(s) from {table}? [y/N] ")
    return answer.strip().lower() in YES


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = getattr(shell, "get_ipython", lambda: None)()
    return ip is not None and getattr(ip, "kernel", None) is not None
