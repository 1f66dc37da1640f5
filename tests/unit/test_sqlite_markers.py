"""``column_markers`` reads the ``/* bulkframe:kind */`` comments of a stored ``CREATE
TABLE`` and nothing else: quoted names and string literals may hold ``,``, ``(`` and
comment-like text."""

from __future__ import annotations

import sqlite3

from bulkframe.backends.sqlite import column_markers, decimal_text


def test_markers_follow_their_column_only() -> None:
    sql = (
        'CREATE TABLE "a""b" ("x,y" TEXT /* bulkframe:uuid */ NOT NULL, '
        "[w (1)] TEXT /* bulkframe:decimal(38,6) */ DEFAULT ('a,/* bulkframe:json */'), "
        '"z" TIMESTAMP /* bulkframe:timestamptz */, u TEXT -- bulkframe:json\n, '
        "\"s\" TEXT DEFAULT '/* bulkframe:uuid */', `q` TEXT /* other comment */, "
        "CONSTRAINT c CHECK (u > '/* bulkframe:json */'), PRIMARY KEY (\"x,y\"))"
    )
    assert column_markers(sql) == {
        "x,y": ("uuid", None, None),
        "w (1)": ("decimal", 38, 6),
        "z": ("timestamptz", None, None),
    }
    # and the statement is one SQLite accepts, keeping the comments verbatim
    conn = sqlite3.connect(":memory:")
    conn.execute(sql)
    stored = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    assert column_markers(stored) == column_markers(sql)
    types = [r[2] for r in conn.execute('PRAGMA table_info("a""b")')]
    assert types == ["TEXT", "TEXT", "TIMESTAMP", "TEXT", "TEXT", "TEXT"]


def test_decimal_text_is_the_stored_canonical_text() -> None:
    from decimal import Decimal

    assert decimal_text(Decimal("12.5"), 6) == "12.500000"
    assert decimal_text(Decimal("-0.000"), 3) == "0.000"
    assert decimal_text(3, 2) == "3.00"
    assert decimal_text(0.1, 3) == "0.100"
    assert decimal_text(Decimal("1.0000001"), 6) == "1.0000001"  # not representable: equals nothing
    assert decimal_text("x", 2) == "x" and decimal_text(True, 2) is True
