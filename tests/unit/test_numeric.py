"""normalize.numeric: the client-side conversions that must equal PostgreSQL's casts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from bulkframe.errors import SchemaError
from bulkframe.normalize import conform
from bulkframe.types import Column


def _one(values: list[Any], arrow_type: pa.DataType, column: Column, exact: bool = False) -> list[Any]:
    table = pa.table({column.name: pa.array(values, arrow_type)})
    out = conform(table, {column.name: column}, on_error="mask", exact=exact)
    return out.table.column(column.name).to_pylist()


NUM = Column("n", "decimal", precision=6, scale=2)


@pytest.mark.parametrize(
    ("values", "arrow_type", "expected"),
    [([Decimal("1.005"), Decimal("-1.005"), Decimal("2.3449"), Decimal("9999.995")], pa.decimal128(9, 4),
      [Decimal("1.01"), Decimal("-1.01"), Decimal("2.34"), None]),
     ([Decimal("0.0005")], pa.decimal128(4, 4), [Decimal("0.00")]),
     ([1.005, -2.675, 0.30000000000000004, float("nan"), 1e300], pa.float64(),
      [Decimal("1.01"), Decimal("-2.68"), Decimal("0.30"), None, None]),
     (["1.005", " -0.125 ", "1E+1", "1_000", "NaN", ".5", "5."], pa.string(),
      [Decimal("1.01"), Decimal("-0.13"), Decimal("10.00"), None, None, Decimal("0.50"), Decimal("5.00")])],
)  # fmt: skip
def test_decimals_round_half_away_from_zero(
    values: list[Any], arrow_type: pa.DataType, expected: list[Any]
) -> None:
    assert _one(values, arrow_type, NUM) == expected


def test_exact_mode_refuses_rounding() -> None:
    out = _one(
        [Decimal("1.25"), Decimal("1.20")],
        pa.decimal128(5, 2),
        Column("n", "decimal", precision=6, scale=1),
        exact=True,
    )
    assert out == [None, Decimal("1.2")]


@pytest.mark.parametrize(
    ("values", "arrow_type", "kind", "expected"),
    [([2.0, 2.7, -0.5, float("nan"), float("inf"), 32767.0, 32768.0], pa.float64(), "int16",
      [2, None, None, None, None, 32767, None]),
     ([9.2233720368547748e18, 2.0**63, -(2.0**63)], pa.float64(), "int64",
      [9223372036854774784, None, -(2**63)]),
     ([Decimal("7.00"), Decimal("7.5"), Decimal("99999")], pa.decimal128(7, 2), "int16", [7, None, None]),
     ([" 12 ", "+5", "2.0", "1e3", "40000"], pa.string(), "int16", [12, 5, None, None, None]),
     ([1e39, 1e-50, 1e-40, 1.5], pa.float64(), "float32", [None, None, pytest.approx(1e-40, rel=1e-2), 1.5]),
     (["1e400", "1e-400", "inf", "1e-310"], pa.string(), "float64", [None, None, float("inf"), 1e-310])],
)  # fmt: skip
def test_integer_and_float_targets(
    values: list[Any], arrow_type: pa.DataType, kind: str, expected: list[Any]
) -> None:
    assert _one(values, arrow_type, Column("x", kind)) == expected


def test_decimal_to_float_is_correctly_rounded() -> None:
    d = Decimal("12345678901234567.12345678")
    assert _one([d], pa.decimal128(30, 8), Column("x", "float64")) == [float(d)]


def test_refusal_names_column_row_value_and_why() -> None:
    table = pa.table({"q": pa.array([1.0, 2.7])})
    with pytest.raises(SchemaError, match=r"column 'q', row 5: value 2\.7 .*int32: it has a fractional part"):
        conform(table, {"q": Column("q", "int32")}, offset=4)


def test_record_inference_sees_every_value() -> None:
    from bulkframe.normalize.sources import infer_record_types

    rows = [{"x": None}] * 1001 + [{"x": Decimal("1.25")}, {"x": Decimal("123456789012345678")}]
    assert infer_record_types(rows) == {"x": pa.decimal128(38, 2)}
    assert infer_record_types([{"x": 1}] * 2000 + [{"x": 1.5}]) == {"x": pa.float64()}
    assert infer_record_types([{"x": 1}, {"x": 2**64}]) == {"x": pa.decimal128(38, 0)}
    assert infer_record_types([{"x": Decimal("1.5")}, {"x": 2}, {"x": 0.1}]) == {"x": pa.decimal128(15, 1)}
    with pytest.raises(SchemaError, match=r"column 'x' mixes .*int \(row 0: 1\), str \(row 2: 'a'\)"):
        infer_record_types([{"x": 1}, {"x": None}, {"x": "a"}])
    with pytest.raises(SchemaError, match=r"column 'x': .* 39 digits before and 1 after"):
        infer_record_types([{"x": Decimal("1.5")}, {"x": 10**38}])


def test_vectorized_float_and_text_to_decimal_agree_with_the_per_value_path() -> None:
    """The vectorized conversion must give exactly what the per-value Decimal path gives,
    refusals included, for arbitrary doubles (any bit pattern) and numeric text."""
    import random
    import struct

    import pyarrow as pa

    from bulkframe.normalize.numeric import _from_float, _from_text, _python_decimal, _text_to_decimal
    from bulkframe.types import Column

    rng = random.Random(7)
    doubles = [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(3000)]
    doubles += [round(rng.uniform(-1e4, 1e4), rng.randint(0, 6)) for _ in range(3000)]
    doubles += [0.1, 1.005, -1.005, 2.675, 0.30000000000000004, 99999999.995, 1e20, 1e-7, -0.0, None]
    texts = [" 1.005 ", "+3.0", "-.5", "5.", "abc", "1e3", "12345678901234567890.5", "", None]
    texts += [str(round(rng.uniform(-1e6, 1e6), rng.randint(0, 9))) for _ in range(3000)]
    for column in (
        Column("p", "decimal", precision=10, scale=2),
        Column("p", "decimal", precision=30, scale=8),
        Column("p", "decimal", precision=15, scale=0),
    ):
        for values, kind, parse in ((doubles, pa.float64(), _from_float), (texts, pa.string(), _from_text)):
            data = pa.chunked_array([pa.array(values, kind)])
            for exact in (False, True):
                slow_out, slow_bad = _python_decimal(data, column, parse, exact)
                fast_out, fast_bad = _text_to_decimal(data, column, parse, exact)
                assert fast_out.to_pylist() == slow_out.to_pylist()
                assert fast_bad is not None and slow_bad is not None
                assert fast_bad.to_pylist() == slow_bad.to_pylist()
