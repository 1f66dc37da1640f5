"""Notebook display: ``BulkResult._repr_html_`` and ``Verification._repr_html_`` are
compact HTML tables (counts, timing, rows/s, the first rejected rows with their reasons),
and a hostile table name, column name or value shows as text, never as markup."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import polars as pl

import bulkframe as bf
from bulkframe.result import BulkResult

ALLOWED_TAGS = {"div", "table", "caption", "thead", "tbody", "tr", "th", "td", "em"}
HOSTILE_COLUMN = '<script>alert("col")</script>'
HOSTILE_VALUE = '"><img src=x onerror=alert(1)>&amp;'


@dataclass
class Table:
    caption: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


class Reader(HTMLParser):
    """Parses our HTML into tables of cell texts, recording every tag and attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.tables: list[Table] = []
        self.notes: list[str] = []
        self._text: list[str] | None = None
        self._in: str | None = None
        self._body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag == "table":
            self.tables.append(Table())
        elif tag == "tbody":
            self._body = True
        elif tag == "tr" and self._body:
            self.tables[-1].rows.append([])
        if tag in ("caption", "th", "td", "em"):
            self._text, self._in = [], tag

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._body = False
        if tag != self._in or self._text is None:
            return
        text = "".join(self._text)
        if tag == "caption":
            self.tables[-1].caption = text
        elif tag == "th":
            self.tables[-1].header.append(text)
        elif tag == "td":
            self.tables[-1].rows[-1].append(text)
        else:
            self.notes.append(text)
        self._text = self._in = None


def read(html: str) -> Reader:
    reader = Reader()
    reader.feed(html)
    reader.close()
    assert set(reader.tags) <= ALLOWED_TAGS, set(reader.tags) - ALLOWED_TAGS
    assert {(tag, name) for tag, name, _ in reader.attrs} <= {
        ("table", "style"),
        ("caption", "style"),
        ("div", "class"),
    }, reader.attrs
    return reader


def summary(table: Table) -> dict[str, str]:
    assert len(table.rows) == 1
    return dict(zip(table.header, table.rows[0], strict=True))


def test_result_html_shows_counts_timing_and_first_rejected_rows(
    db: bf.Database, table: str, peek: Any
) -> None:
    rows = [{"id": i, "price": -i if i % 4 else i} for i in range(1, 13)]  # 9 negative prices
    result = db.bulk_create(
        table, rows, primary_key="id", validation_rules={"price": {"min": 0}}, error_strategy="continue"
    )
    assert peek(f'SELECT id FROM "{table}" ORDER BY id') == [(4,), (8,), (12,)]
    page = read(result._repr_html_())
    counts, rejected = page.tables
    assert counts.caption == f"BulkResult: create {table!r} — 9 rejected"
    assert summary(counts) == {
        "processed": "12",
        "success": "3",
        "failure": "9",
        "inserted": "3",
        "batches": "1",
        "seconds": f"{result.duration_seconds:,.3f}",
        "rows/s": f"{result.rows_per_second:,.0f}",
    }
    assert rejected.caption == "rejected rows (first 5 of 9)"
    assert rejected.header == ["row", "stage", "error", "values"]
    assert rejected.rows == [
        [str(i - 1), "validation", f"price=-{i} is below min 0", f"id={i}, price=-{i}"]
        for i in (1, 2, 3, 5, 6)
    ]
    assert page.notes == ["… 4 more in .errors"]


def test_result_html_without_rejections_is_one_table(db: bf.Database, table: str) -> None:
    result = db.bulk_create(table, [{"id": 1}, {"id": 2}], primary_key="id")
    page = read(result._repr_html_())
    assert len(page.tables) == 1 and page.notes == []
    assert page.tables[0].caption == f"BulkResult: create {table!r} — ok"
    assert summary(page.tables[0])["processed"] == "2"


def test_result_html_escapes_hostile_column_names_and_values(db: bf.Database, table: str, peek: Any) -> None:
    rows = [{"id": 1, HOSTILE_COLUMN: "ok"}, {"id": 2, HOSTILE_COLUMN: HOSTILE_VALUE}]
    result = db.bulk_create(
        table,
        rows,
        primary_key="id",
        error_strategy="continue",
        validation_rules={HOSTILE_COLUMN: {"max_length": 5}},
    )
    assert result.failure_count == 1
    assert peek(f'SELECT id FROM "{table}"') == [(1,)]
    html = result._repr_html_()
    assert "<script" not in html and "<img" not in html
    page = read(html)  # only our own tags and attributes
    (row,) = page.tables[1].rows
    assert row[0] == "1" and row[1] == "validation"
    assert HOSTILE_COLUMN in row[2]  # the reason names the column, shown as text
    assert row[3] == f"id=2, {HOSTILE_COLUMN}={HOSTILE_VALUE}"


def test_result_html_escapes_table_name_and_warnings() -> None:
    errors = pl.DataFrame({"row": [0], "stage": ["database"], "error": ["</td></tr></table><b>x</b>"]})
    result = BulkResult(
        "create",
        "<iframe src=x>",
        records_processed=1,
        failure_count=1,
        errors=errors,
        warnings=["<style>body{display:none}</style>"],
    )
    page = read(result._repr_html_())
    assert page.tables[0].caption == "BulkResult: create '<iframe src=x>' — 1 rejected"
    assert page.tables[1].rows == [["0", "database", "</td></tr></table><b>x</b>", "null"]]
    assert page.tables[2].rows == [["<style>body{display:none}</style>"]]


def test_verification_html_lists_counts_differences_and_missing_keys(db: bf.Database, table: str) -> None:
    db.bulk_create(table, [{"id": i, HOSTILE_COLUMN: f"v{i}"} for i in range(1, 4)], primary_key="id")
    expected = [
        {"id": 1, HOSTILE_COLUMN: "v1"},
        {"id": 2, HOSTILE_COLUMN: HOSTILE_VALUE},
        {"id": 9, HOSTILE_COLUMN: "v9"},
    ]
    report = db.verify(table, expected, key=["id"])
    html = report._repr_html_()
    assert "<script" not in html and "<img" not in html
    page = read(html)
    counts, differences, missing = page.tables
    assert counts.caption == f"Verification of {table!r} by id — 1 missing, 1 differing"
    assert summary(counts) == {
        "checked": "3",
        "matched": "1",
        "missing": "1",
        "mismatched": "1",
        "fields": HOSTILE_COLUMN,
    }
    assert differences.header == ["id", "field", "expected", "actual"]
    assert differences.rows == [["2", HOSTILE_COLUMN, HOSTILE_VALUE, "v2"]]
    assert missing.header == ["id"] and missing.rows == [["9"]]


def test_verification_html_when_everything_matched(db: bf.Database, table: str) -> None:
    db.bulk_create(table, [{"id": 1, "x": 1.5}], primary_key="id")
    page = read(db.verify(table, [{"id": 1, "x": 1.5}], key=["id"])._repr_html_())
    assert len(page.tables) == 1
    assert page.tables[0].caption == f"Verification of {table!r} by id — ok"
