"""Configuration from the environment, exit codes, and URLs with their passwords masked.

Stdlib only: ``bulkframe --help`` must not pay for SQLAlchemy, Polars or PyArrow.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

#: Everything was done (every row written, the verification found nothing).
EXIT_OK = 0
#: The command failed: a bulkframe or database error; what the error message says was
#: not done was rolled back (with ``--on-error skip|retry``, batches that had committed stay).
EXIT_FAILED = 1
#: Bad usage: an unknown option, a value outside its choices, options that contradict
#: each other, a dangerous command without ``--yes``; nothing ran.
EXIT_USAGE = 2
#: A partial load: the command finished, but some rows were rejected (``--on-error
#: skip|retry``; see ``--rejects``) or, for ``update``, keys matched no row.
EXIT_PARTIAL = 3
#: ``verify`` or ``--verify`` found rows missing or different.
EXIT_MISMATCH = 4
#: Interrupted (Ctrl-C); the running transaction was rolled back.
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Options that cannot work together or a malformed option value (exit code 2)."""


#: ``--mode`` choices of ``load`` and ``copy`` (see :mod:`bulkframe.cli.modes`).
MODES = ("append", "replace", "truncate", "upsert", "skip-existing")
#: ``--on-error`` choices → the library's ``error_strategy``.
ON_ERROR = {"stop": "stop", "skip": "continue", "retry": "retry_batch"}

#: Environment variables the command line reads (the option wins when both are given).
ENV_URL = "BULKFRAME_URL"
ENV_SOURCE_URL = "BULKFRAME_SOURCE_URL"
ENV_BATCH_SIZE = "BULKFRAME_BATCH_SIZE"


def env_url(name: str = ENV_URL) -> str | None:
    """The URL in environment variable ``name``, if set and not empty."""
    return os.environ.get(name) or None


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"bulkframe: error: {name}={value!r} is not an integer") from None


_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)(?P<secret>[^@\s]*)(?P<at>@)")


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (SQLAlchemy's rendering; a URL it
    cannot parse is masked by pattern)."""
    if "@" not in url:
        return url
    try:
        import sqlalchemy as sa

        parsed = sa.make_url(url)
    except Exception:
        return mask_text(url)
    if parsed.password is None:
        return url
    return parsed.render_as_string(hide_password=True)


def mask_text(text: str, urls: Iterable[str] = ()) -> str:
    """``text`` with every password in it masked: the given ``urls`` wherever they appear
    (also URL-decoded passwords), and any ``scheme://user:password@`` pattern."""
    for url in urls:
        if url and url in text:
            text = text.replace(url, mask_url(url))
        secret = _password_of(url)
        if secret and len(secret) > 2:
            text = text.replace(secret, "***")
    return _PASSWORD.sub(lambda m: f"{m['head']}***{m['at']}", text)


def _password_of(url: str) -> str | None:
    match = _PASSWORD.search(url or "")
    if not match or not match["secret"]:
        return None
    from urllib.parse import unquote

    return unquote(match["secret"])


class MaskPasswords(logging.Filter):
    """A logging filter that masks the passwords of the command's URLs in every record."""

    def __init__(self, urls: Iterable[str]):
        super().__init__()
        self.urls = [u for u in urls if u]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_text(message, self.urls)
        if masked != message:
            record.msg, record.args = masked, None
        return True
