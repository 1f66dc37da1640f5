"""Compact HTML tables for notebooks (``_repr_html_`` of results and reports).

Every piece of text that comes from data (table and column names, values, error
messages) goes through :func:`cell`, which HTML-escapes it: a hostile name or value
shows as text and never becomes markup.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

#: How many rejected rows / differences a notebook view shows (the rest: ``.errors``).
SHOWN_ROWS = 5
#: Longer shown values are cut for display (the data itself is never cut).
MAX_CHARS = 120

STYLE = "border-collapse:collapse;margin:0.2em 0"


def text(value: Any) -> str:
    """``value`` as short display text (``None`` shows as ``null``)."""
    if value is None:
        shown = "null"
    elif isinstance(value, dict):
        shown = ", ".join(f"{k}={text(v)}" for k, v in value.items())
    elif isinstance(value, float):
        shown = f"{value:,.3f}".rstrip("0").rstrip(".") if value == value else "NaN"
    elif isinstance(value, int) and not isinstance(value, bool):
        shown = f"{value:,}"
    else:
        shown = str(value)
    return shown if len(shown) <= MAX_CHARS else shown[: MAX_CHARS - 1] + "…"


def cell(value: Any, tag: str = "td") -> str:
    """One escaped table cell."""
    return f"<{tag}>{html.escape(text(value), quote=True)}</{tag}>"


def table(header: Sequence[Any] | None, rows: Iterable[Sequence[Any]], caption: str | None = None) -> str:
    """An HTML table of escaped cells; ``header`` cells are ``<th>``."""
    parts = [f'<table style="{STYLE}">']
    if caption is not None:
        parts.append(f'<caption style="text-align:left;font-weight:bold">{html.escape(caption)}</caption>')
    if header is not None:
        parts.append("<thead><tr>" + "".join(cell(h, "th") for h in header) + "</tr></thead>")
    parts.append("<tbody>")
    parts.extend("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    parts.append("</tbody></table>")
    return "".join(parts)


def pairs(items: Iterable[tuple[str, Any]]) -> str:
    """A two-row table: names over values (compact, one screen line)."""
    items = list(items)
    return table([k for k, _ in items], [[v for _, v in items]])


def first_rows(frame: Any, limit: int = SHOWN_ROWS) -> tuple[list[dict[str, Any]], int]:
    """The first ``limit`` rows of a Polars frame as dicts, and its total height."""
    if frame is None:
        return [], 0
    height = int(getattr(frame, "height", 0) or 0)
    if height == 0:
        return [], 0
    return list(frame.head(limit).to_dicts()), height


def more(shown: int, total: int, where: str) -> str:
    """A note when only the first rows are shown."""
    if total <= shown:
        return ""
    return f"<div><em>{html.escape(f'… {total - shown:,} more in {where}')}</em></div>"
