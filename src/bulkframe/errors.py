"""The one exception tree of bulkframe.

Every class also inherits the matching builtin, so ``except ValueError`` keeps working
for callers who do not know bulkframe's names.  Driver errors are translated once, at the
backend boundary (see ``backends/base.py``), and classified as *transient* (worth a
retry: connection loss, serialization failure, deadlock, lock timeout) or *terminal*.
"""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bulkframe.result import BulkResult


class BulkframeError(Exception):
    """Base class of every error bulkframe raises on purpose."""

    #: The partial result of the operation, when one exists (what was committed).
    result: BulkResult | None = None


class OptionError(BulkframeError, TypeError):
    """An unknown, misspelled or unsupported keyword option."""


class InvalidOptionValueError(BulkframeError, ValueError):
    """A known option was given a value outside its allowed set."""


class NotSupportedError(BulkframeError, NotImplementedError):
    """The option or feature exists in the spec but is not built (or not on this backend)."""


class MissingDependencyError(BulkframeError, ImportError):
    """An optional driver or library is not installed."""


class SchemaError(BulkframeError, ValueError):
    """Input columns do not fit the target table (unknown column, uncastable value, ...)."""


class ExpressionError(BulkframeError, ValueError):
    """A transformation/validation/update expression or filter could not be compiled."""


class FilterError(ExpressionError):
    """A filter document is malformed, too deeply nested, or a value does not fit its column."""


class ValidationError(BulkframeError, ValueError):
    """Rows were rejected under ``error_strategy="stop"``; ``.errors`` holds the report."""

    def __init__(self, message: str, *, errors: Any = None, result: BulkResult | None = None):
        super().__init__(message)
        self.errors = errors
        self.result = result


class DatabaseError(BulkframeError, RuntimeError):
    """A driver error, translated.  ``transient`` says whether a retry may succeed."""

    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        transient: bool | None = None,
        result: BulkResult | None = None,
    ):
        super().__init__(message)
        self.sqlstate = sqlstate
        if transient is not None:
            self.transient = transient
        self.result = result


class IntegrityError(DatabaseError):
    """A constraint (unique, foreign key, not null, check) refused the data."""


class DataError(DatabaseError):
    """The database refused a value (out of range, bad format)."""


class TransientError(DatabaseError):
    """Connection loss, serialization failure, deadlock, lock timeout: retry may succeed."""

    transient = True


#: SQLSTATE classes/codes that a retry may cure.
TRANSIENT_SQLSTATES = ("08", "40001", "40P01", "55P03", "57P01", "57P02", "57P03", "53300")


def error_for_sqlstate(message: str, sqlstate: str | None) -> DatabaseError | None:
    """The translated error a SQLSTATE names: :class:`TransientError` (connection,
    serialization, deadlock, lock timeout), :class:`IntegrityError` (class 23),
    :class:`DataError` (class 22); ``None`` when the state says nothing more specific
    than :class:`DatabaseError`."""
    if not sqlstate:
        return None
    if sqlstate.startswith(TRANSIENT_SQLSTATES) or sqlstate in TRANSIENT_SQLSTATES:
        return TransientError(message, sqlstate=sqlstate)
    if sqlstate.startswith("23"):
        return IntegrityError(message, sqlstate=sqlstate)
    if sqlstate.startswith("22"):
        return DataError(message, sqlstate=sqlstate)
    return None


class PoolTimeoutError(TransientError):
    """Every connection of the Database's pool stayed in use for ``pool_timeout`` seconds."""


class DatabaseClosedError(BulkframeError, RuntimeError):
    """The Database was closed (``db.close()``); open a new one with ``bulkframe.connect``."""


class SafetyLimitError(BulkframeError, RuntimeError):
    """A safety check (``max_delete_count``, ``max_errors``, confirmation) stopped the call."""

    def __init__(self, message: str, *, result: BulkResult | None = None):
        super().__init__(message)
        self.result = result


class EventError(BulkframeError, RuntimeError):
    """An event sink refused or could not be reached (``publish_events``).  Raised before
    anything is written when the sink is checked up front; raised after a commit when
    that batch's event could not be delivered (the batch stays committed)."""


class CheckpointError(BulkframeError, ValueError):
    """A checkpoint does not belong to this input (fingerprint mismatch) or is corrupt."""


_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def quote_name(name: Any, *, plain: bool = False) -> str:
    """An identifier (column, table, rule name) as it appears in a message: quoted,
    repr-style, so quotes, newlines and SQL-looking text are shown escaped instead of being
    spliced into the prose (``x) ; DROP TABLE y;--`` → ``'x) ; DROP TABLE y;--'``).

    ``plain=True`` (for ``name=value`` messages such as ``price=-5 is below min 0.01``)
    leaves a plain identifier (letters, digits, ``_``) bare and quotes anything else.
    A :class:`~bulkframe.backends.base.TableRef` is shown part by part (``'schema'.'name'``;
    with ``plain=True``, ``public.items``).
    """
    schema, table = getattr(name, "schema", None), getattr(name, "name", None)
    if isinstance(table, str) and not isinstance(name, str):
        shown = quote_name(table, plain=plain)
        return f"{quote_name(schema, plain=plain)}.{shown}" if schema else shown
    text = name if isinstance(name, str) else str(name)
    return text if plain and _PLAIN_NAME.fullmatch(text) else repr(text)


def plain_name(name: Any) -> str:
    """``quote_name(name, plain=True)``: plain identifiers bare, anything else quoted."""
    return quote_name(name, plain=True)


def quote_names(names: Iterable[Any], *, plain: bool = True) -> str:
    """A comma-separated list of identifiers, each shown by :func:`quote_name` (by default
    plain identifiers bare: ``id, price, 'x) ; DROP TABLE y;--'``)."""
    return ", ".join(quote_name(n, plain=plain) for n in names)


def unknown_option(names: Iterable[str], supported: Iterable[str], *, where: str) -> OptionError:
    """Build the error for options nobody understands, with the closest valid names."""
    supported = sorted(supported)
    parts = []
    for name in sorted(names):
        close = difflib.get_close_matches(name, supported, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        parts.append(f"{name!r}{hint}")
    return OptionError(
        f"{where}: unknown option(s) {', '.join(parts)}. Supported options: {', '.join(supported)}."
    )


def check_choice(option: str, value: Any, choices: Any) -> None:
    """Raise ``InvalidOptionValueError`` unless ``value`` is one of ``choices`` (a ``Literal``
    alias of :mod:`bulkframe.options`, or an iterable of values)."""
    choices = typing.get_args(choices) or tuple(choices)
    if value not in choices:
        raise InvalidOptionValueError(
            f"{option}={value!r} is not valid; choose one of: " + ", ".join(repr(c) for c in choices)
        )
