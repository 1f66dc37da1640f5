"""Property: a Decimal written by bulkframe into a SQLite ``NUMERIC(p,s)`` column is what
PostgreSQL's own ``CAST(value AS numeric(p,s))`` gives (round half away from zero to
``s``; out of range → refused), read back by the stdlib ``sqlite3``: the exact nearest
double for p ≤ 15, the exact text for wider columns.  A filter with that ``Decimal``
finds the row."""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bulkframe as bf
from bulkframe.errors import BulkframeError
from bulkframe.types import Column

#: (precision, scale): REAL-stored (p ≤ 15) and text-stored (p > 15) columns
SHAPES = [(10, 2), (15, 6), (15, 0), (20, 8), (38, 6)]


@st.composite
def _decimal(draw: Any, shape: tuple[int, int]) -> Decimal:
    p, s = shape
    extra = draw(st.integers(0, 2))  # fractional digits beyond the column's scale
    digits = draw(st.integers(1, p + extra))
    unscaled = draw(st.integers(-(10**digits) + 1, 10**digits - 1))
    if draw(st.booleans()) and extra:  # aim at the rounding boundary: …4/…5/…6, …49/…50/…51
        half = 5 * 10 ** (extra - 1) + draw(st.sampled_from([-1, 0, 1]))
        unscaled = unscaled // 10**extra * 10**extra + (half if unscaled >= 0 else -half)
    return Decimal(unscaled).scaleb(-(s + extra))


def _is_tie(value: Decimal, scale: int) -> bool:
    """``value`` lies exactly halfway between two values of ``scale`` digits."""
    shifted = value.scaleb(scale)
    return abs(shifted - shifted.to_integral_value(rounding="ROUND_DOWN")) == Decimal("0.5")


def _server_cast(pg_url: str, value: Decimal, p: int, s: int) -> Decimal | None:
    """PostgreSQL's own ``CAST(value AS numeric(p,s))``; ``None`` when it refuses (overflow)."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn, conn.cursor() as cur:
        try:
            cur.execute(f"SELECT CAST(%s::text AS numeric({p},{s}))", (str(value),))
        except psycopg.errors.NumericValueOutOfRange:
            return None
        row = cur.fetchone()
        assert row is not None
        return Decimal(row[0])


@pytest.fixture(scope="module")
def sqlite_db() -> Iterator[tuple[bf.Database, Path]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "decimals.db"
        db = bf.connect(f"sqlite:///{path}")
        for p, s in SHAPES:
            db.create_table(
                f"d_{p}_{s}",
                [
                    Column("id", "int64", primary_key=True, nullable=False),
                    Column("v", "decimal", precision=p, scale=s),
                    Column("hit", "int64"),
                ],
            )
        try:
            yield db, path
        finally:
            db.close()


_ids = iter(range(1, 10**9))


def _check(db: bf.Database, path: Path, pg_url: str, shape: tuple[int, int], value: Decimal) -> None:
    p, s = shape
    table = f"d_{p}_{s}"
    expected = _server_cast(pg_url, value, p, s)
    with localcontext(prec=100):
        rounded = value.quantize(Decimal(1).scaleb(-s), rounding=ROUND_HALF_UP)
    assert expected == (rounded if len(rounded.as_tuple().digits) <= p or rounded == 0 else None)
    rid = next(_ids)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        if expected is None:  # the server refuses it: so does bulkframe, writing nothing
            with pytest.raises(BulkframeError):
                db.bulk_create(table, [{"id": rid, "v": value}])
            assert conn.execute(f"SELECT count(*) FROM {table} WHERE id = ?", (rid,)).fetchone() == (0,)
            return
        db.bulk_create(table, [{"id": rid, "v": value}])
        stored = conn.execute(f"SELECT v FROM {table} WHERE id = ?", (rid,)).fetchone()[0]
        if p <= 15:
            assert stored == float(expected), (value, stored)  # the nearest double, exactly
            # NUMERIC affinity stores a double that is an integer exactly as INTEGER (3 for 3.00)
            assert type(stored) is (int if float(expected).is_integer() else float), (value, stored)
            # a reader binding the double finds the row (a SQL literal would test SQLite's own
            # text→double parser, which before 3.43 is not always correctly rounded: 0.002877)
            assert conn.execute(
                f"SELECT id FROM {table} WHERE v = ? AND id = ?", (float(expected), rid)
            ).fetchall() == [(rid,)]
        else:
            assert stored == f"{expected:f}", (value, stored)  # exact text at the column's scale
        result = db.bulk_update(table, {"hit": rid}, filter={"v": expected, "id": rid})
        assert result.success_count == 1, (value, expected, stored)
        assert conn.execute(f"SELECT hit FROM {table} WHERE id = ?", (rid,)).fetchone() == (rid,)


@pytest.mark.postgres
@pytest.mark.parametrize("shape", SHAPES, ids=[f"numeric({p},{s})" for p, s in SHAPES])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_sqlite_decimal_lands_as_the_server_cast(sqlite_db, pg_url, shape, data) -> None:  # type: ignore[no-untyped-def]
    value = data.draw(_decimal(shape).filter(lambda v: not _is_tie(v, shape[1])), label="value")
    db, path = sqlite_db
    _check(db, path, pg_url, shape, value)


#: Values exactly halfway at the column's scale: PostgreSQL rounds them away from zero.
TIES = [
    ((10, 2), "1.005"),
    ((10, 2), "-1.005"),
    ((10, 2), "2.345"),
    ((15, 0), "2.5"),
    ((15, 0), "-0.5"),
    ((15, 6), "0.0000005"),
    ((20, 8), "1.000000005"),
    ((38, 6), "-12345678901234567890.1234565"),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("shape", "text"), TIES, ids=[f"{t}->numeric({p},{s})" for (p, s), t in TIES])
def test_sqlite_decimal_ties_round_half_away_from_zero(sqlite_db, pg_url, shape, text) -> None:  # type: ignore[no-untyped-def]
    db, path = sqlite_db
    _check(db, path, pg_url, shape, Decimal(text))
