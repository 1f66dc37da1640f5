"""normalize stage without a database: sources, casting, dedupe, type inference."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import polars as pl
import pyarrow as pa
import pytest

from bulkframe.errors import SchemaError
from bulkframe.normalize import conform, infer_columns, open_source
from bulkframe.normalize.dedupe import dedupe_keys
from bulkframe.types import Column


def _cols(*columns: Column) -> dict[str, Column]:
    return {c.name: c for c in columns}


def test_dict_chunks_keep_offsets_and_each_records_json_keys() -> None:
    rows = [{"id": i, "doc": {"k": i} if i % 2 else {"other": [i]}} for i in range(5)]
    chunks = list(open_source(rows).chunks(2))
    assert [c.offset for c in chunks] == [0, 2, 4]
    docs = [v for c in chunks for v in c.table.column("doc").to_pylist()]
    assert docs == ['{"other":[0]}', '{"k":1}', '{"other":[2]}', '{"k":3}', '{"other":[4]}']


def test_non_dict_row_is_named_by_position() -> None:
    with pytest.raises(SchemaError, match=r"row 2: expected a dict, got list"):
        list(open_source([{"a": 1}, {"a": 2}, [3]]).chunks(10))


def test_mixed_python_types_become_text_and_the_bad_value_is_named_by_conform() -> None:
    chunk = next(open_source([{"a": 1}, {"a": 2}, {"a": "x"}, {"a": None}]).chunks(10))
    assert chunk.table.column("a").to_pylist() == ["1", "2", "x", None]
    with pytest.raises(SchemaError, match=r"column 'a', row 2: value 'x' cannot be stored as int64"):
        conform(chunk.table, _cols(Column("a", "int64")))
    assert conform(chunk.table, _cols(Column("a", "int64")), on_error="mask").bad["a"].to_pylist() == [
        False,
        False,
        True,
        False,
    ]


def test_unsupported_input_type_lists_accepted_kinds() -> None:
    with pytest.raises(SchemaError, match="list of dicts"):
        open_source(42)
    with pytest.raises(SchemaError, match="single dict"):
        open_source({"a": 1})


def test_streaming_reader_is_rebatched_exactly() -> None:
    table = pa.table({"a": list(range(23))})
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=5))
    chunks = list(open_source(reader).chunks(7))
    assert [c.table.num_rows for c in chunks] == [7, 7, 7, 2]
    assert [c.offset for c in chunks] == [0, 7, 14, 21]
    assert [v for c in chunks for v in c.table.column("a").to_pylist()] == list(range(23))


def test_lazyframe_streams_in_batches() -> None:
    lf = pl.LazyFrame({"a": range(10)}).with_columns(b=pl.col("a") * 2)
    chunks = list(open_source(lf).chunks(4))
    assert [c.table.num_rows for c in chunks] == [4, 4, 2]


def test_conform_casts_to_target_types() -> None:
    cols = _cols(
        Column("i", "int32"),
        Column("p", "decimal", precision=10, scale=2),
        Column("t", "timestamptz"),
        Column("d", "date"),
        Column("u", "uuid"),
        Column("j", "json"),
        Column("b", "bool"),
    )
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    table = pa.table(
        {
            "i": pa.array([1, None], pa.int64()),
            "p": pa.array([19.99, 0.1]),
            "t": pa.array(["2024-01-01T02:00:00+02:00", "2024-01-01 00:00:00"]),
            "d": pa.array(["2024-02-29", None]),
            "u": pa.array([u.hex.upper(), str(u)]),
            "j": pa.array([{"a": 1}, None]),
            "b": pa.array([1, 0], pa.int8()),
        }
    )
    out = conform(table, cols).table
    assert out.schema.field("i").type == pa.int32()
    assert out.column("p").to_pylist() == [Decimal("19.99"), Decimal("0.10")]
    utc = dt.timezone.utc
    assert out.column("t").to_pylist() == [dt.datetime(2024, 1, 1, tzinfo=utc)] * 2
    assert out.column("d").to_pylist() == [dt.date(2024, 2, 29), None]
    assert out.column("u").to_pylist() == [str(u), str(u)]
    assert out.column("j").to_pylist() == ['{"a":1}', None]
    assert out.column("b").to_pylist() == [True, False]


@pytest.mark.parametrize(
    ("column", "values", "bad_row", "bad_value"),
    [
        (Column("x", "int16"), [1, 2, 40_000], 2, "40000"),
        (Column("x", "date"), ["2024-01-01", "not a date"], 1, "not a date"),
        (Column("x", "uuid"), ["12345678-1234-5678-1234-567812345678", "nope"], 1, "nope"),
        (Column("x", "decimal", precision=4, scale=2), ["1.5", "12345.6"], 1, "12345.6"),
    ],
)
def test_uncastable_values_are_reported_or_masked(column, values, bad_row, bad_value) -> None:  # type: ignore[no-untyped-def]
    table = pa.table({"x": values})
    with pytest.raises(SchemaError, match=rf"'x', row {100 + bad_row}: value '?{bad_value}"):
        conform(table, _cols(column), offset=100)
    masked = conform(table, _cols(column), on_error="mask")
    assert masked.bad["x"].to_pylist() == [i == bad_row for i in range(len(values))]


def test_unknown_column_is_named() -> None:
    with pytest.raises(SchemaError, match=r"\['extra'\] do not exist in table 't'"):
        conform(pa.table({"a": [1], "extra": [2]}), _cols(Column("a", "int64")), table_name="t")


def test_infer_columns_maps_arrow_types() -> None:
    schema = pa.schema(
        [
            ("a", pa.int8()),
            ("b", pa.uint32()),
            ("c", pa.float32()),
            ("d", pa.string_view()),
            ("e", pa.dictionary(pa.int32(), pa.string())),
            ("f", pa.struct([("x", pa.int64())])),
            ("g", pa.timestamp("ns", tz="Europe/Paris")),
            ("h", pa.null()),
            ("i", pa.decimal128(12, 3)),
        ]
    )
    kinds = {c.name: (c.kind, c.precision, c.scale) for c in infer_columns(schema, ["a"])}
    assert kinds == {
        "a": ("int16", None, None),
        "b": ("int64", None, None),
        "c": ("float32", None, None),
        "d": ("text", None, None),
        "e": ("text", None, None),
        "f": ("json", None, None),
        "g": ("timestamptz", None, None),
        "h": ("text", None, None),
        "i": ("decimal", 12, 3),
    }
    with pytest.raises(SchemaError, match="primary_key"):
        infer_columns(schema, ["zz"])


@pytest.mark.parametrize(("keep", "expected"), [("last", [1, 3, 4, 5]), ("first", [0, 2, 4, 5])])
def test_dedupe_keeps_one_row_per_key_and_all_null_keys(keep, expected) -> None:  # type: ignore[no-untyped-def]
    table = pa.table({"k": [1, 1, 2, 2, None, None], "pos": list(range(6))})
    out, dropped = dedupe_keys(table, ["k"], keep=keep)
    assert dropped == 2
    assert sorted(out.column("pos").to_pylist()) == expected
