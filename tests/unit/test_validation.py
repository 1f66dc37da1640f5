"""Validation rules: every kind on good and bad rows, messages, errors, a property test."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkframe.errors import ExpressionError, SchemaError
from bulkframe.rules import compile_rules, constraint_rules, split
from bulkframe.rules.validation import RULE_KINDS, VIOLATION_DTYPE

UTC = dt.timezone.utc
FRAME = pl.DataFrame(
    {
        "price": [9.99, -5.0, None, 20000.0, 0.01, 10000.0],
        "cost": [5.0, 1.0, 1.0, None, 0.0, 20000.0],
        "qty": [1, -5, 3, None, 0, 7],
        "sku": ["ABC-1", "abc-2", None, "ABC-4", "ABC-1", "ABCD-5"],
        "status": ["a", "x", None, "b", "a", "a"],
        "day": [dt.date(2024, 1, 1), dt.date(2023, 1, 1), None, dt.date(2025, 1, 1), None, None],
        "at": [
            dt.datetime(2024, 1, 1, tzinfo=UTC),
            None,
            None,
            dt.datetime(2024, 7, 1, tzinfo=UTC),
            None,
            None,
        ],
        "code": ["1", "1.5", None, "x", "-2", "3"],
        "when": ["2024-01-02", "2024-02-30", None, "soon", "2024-1-2", "2024-01-02T10:00:00"],
        "flag": ["yes", "no", None, "maybe", "TRUE", "0"],
        "amount": [
            Decimal("1.50"),
            Decimal("999.99"),
            None,
            Decimal("1000.00"),
            Decimal("-1000.00"),
            Decimal("0"),
        ],
        "tags": [["a"], [], None, ["a", "b", "c"], ["x"], ["y"]],
    },
    schema_overrides={"amount": pl.Decimal(10, 2)},
)


def violations(
    rules: dict[str, dict[str, Any]], frame: pl.DataFrame = FRAME
) -> dict[int, list[tuple[str, str]]]:
    accepted, rejected = split(frame, compile_rules(rules, frame.schema))
    assert accepted.height + rejected.height == frame.height
    assert accepted.columns == frame.columns
    return {
        row["__row__"]: [(v["field"], v["rule"]) for v in row["__violations__"]]
        for row in rejected.to_dicts()
    }


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"price": {"min": 0.01}}, {1: [("price", "min")]}),
        ({"price": {"max": 10000}}, {3: [("price", "max")]}),
        ({"qty": {"min": 0, "max": 5}}, {1: [("qty", "min")], 5: [("qty", "max")]}),
        (
            {"amount": {"min": Decimal("-999.99"), "max": 999.99}},
            {3: [("amount", "max")], 4: [("amount", "min")]},
        ),
        (
            {"day": {"min": "2024-01-01", "max": dt.date(2024, 12, 31)}},
            {1: [("day", "min")], 3: [("day", "max")]},
        ),
        ({"at": {"max": "2024-06-01T00:00:00+00:00"}}, {3: [("at", "max")]}),
        (
            {"at": {"min": dt.datetime(2024, 3, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2)))}},
            {0: [("at", "min")]},
        ),
        ({"sku": {"required": True}}, {2: [("sku", "required")]}),
        ({"sku": {"required": False, "unique": False}}, {}),
        ({"sku": {"pattern": r"^[A-Z]{3}-\d+$"}}, {1: [("sku", "pattern")], 5: [("sku", "pattern")]}),
        (
            {"sku": {"pattern": r"[A-Z]{3}-\d"}},
            {1: [("sku", "pattern")], 5: [("sku", "pattern")]},
        ),  # full match
        ({"status": {"in": ["a", "b"]}}, {1: [("status", "in")]}),
        ({"status": {"not_in": ("x", "y")}}, {1: [("status", "not_in")]}),
        ({"qty": {"in": [0, 1, 3, 7]}}, {1: [("qty", "in")]}),
        ({"day": {"in": ["2024-01-01", "2025-01-01"]}}, {1: [("day", "in")]}),
        (
            {"sku": {"min_length": 6}},
            {
                0: [("sku", "min_length")],
                1: [("sku", "min_length")],
                3: [("sku", "min_length")],
                4: [("sku", "min_length")],
            },
        ),
        ({"sku": {"max_length": 5}}, {5: [("sku", "max_length")]}),
        (
            {"tags": {"min_length": 1, "max_length": 2}},
            {1: [("tags", "min_length")], 3: [("tags", "max_length")]},
        ),
        ({"sku": {"unique": True}}, {0: [("sku", "unique")], 4: [("sku", "unique")]}),
        (
            {"status": {"unique": True}},
            {0: [("status", "unique")], 4: [("status", "unique")], 5: [("status", "unique")]},
        ),
        ({"code": {"type": "int"}}, {1: [("code", "type")], 3: [("code", "type")]}),
        ({"code": {"type": "float"}}, {3: [("code", "type")]}),
        ({"code": {"type": "decimal"}}, {3: [("code", "type")]}),
        ({"code": {"type": "str"}}, {}),
        ({"price": {"type": "int"}}, {0: [("price", "type")], 4: [("price", "type")]}),
        ({"when": {"type": "date"}}, {1: [("when", "type")], 3: [("when", "type")], 5: [("when", "type")]}),
        ({"when": {"type": "datetime"}}, {1: [("when", "type")], 3: [("when", "type")]}),
        ({"flag": {"type": "bool"}}, {3: [("flag", "type")]}),
        (
            {"row": {"expr": "price >= cost"}},
            {1: [("row", "expr")], 2: [("row", "expr")], 3: [("row", "expr")], 5: [("row", "expr")]},
        ),
        (
            {"sku": {"expr": "sku.startswith('ABC-') or is_null(sku)"}},
            {1: [("sku", "expr")], 5: [("sku", "expr")]},
        ),
        ({"amount": {"precision": (5, 2)}}, {3: [("amount", "precision")], 4: [("amount", "precision")]}),
        ({"qty": {"precision": (1, 0)}}, {}),
    ],
    ids=lambda v: repr(v)[:60] if isinstance(v, dict) and v and isinstance(next(iter(v)), str) else None,
)
def test_each_rule_kind(rules: dict[str, dict[str, Any]], expected: dict[int, list[tuple[str, str]]]) -> None:
    assert violations(rules) == expected


def test_all_rules_at_once_report_every_violation_per_row() -> None:
    rules = {
        "price": {"min": 0.01, "max": 10000},
        "sku": {"required": True, "pattern": r"^[A-Z]{3}-\d+$", "unique": True},
        "status": {"in": ["a", "b"]},
        "row": {"expr": "price >= cost"},
    }
    assert violations(rules) == {
        0: [("sku", "unique")],
        1: [("price", "min"), ("sku", "pattern"), ("status", "in"), ("row", "expr")],
        2: [("sku", "required"), ("row", "expr")],
        3: [("price", "max"), ("row", "expr")],
        4: [("sku", "unique")],
        5: [("sku", "pattern"), ("row", "expr")],
    }


def test_null_passes_every_rule_but_required_and_expr() -> None:
    frame = pl.DataFrame({"n": [None, None], "s": [None, None]}, schema={"n": pl.Int64, "s": pl.String})
    rules = {
        "n": {
            "min": 1,
            "max": 0,
            "in": [5],
            "not_in": [None, 1],
            "unique": True,
            "type": "int",
            "precision": (1, 0),
        },
        "s": {"pattern": "x", "min_length": 3, "max_length": 0, "in": ["a"], "type": "date"},
    }
    assert violations(rules, frame) == {}
    assert violations({"n": {"required": True, "expr": "n > 0"}}, frame) == {
        0: [("n", "required"), ("n", "expr")],
        1: [("n", "required"), ("n", "expr")],
    }


def test_time_zones_and_booleans() -> None:
    berlin = pl.DataFrame(
        {"at": [dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 1, 14)], "ok": [True, False]}
    )
    berlin = berlin.with_columns(pl.col("at").dt.replace_time_zone("Europe/Berlin"))
    # 12:00 Berlin is 11:00 UTC, before the bound; 14:00 Berlin is 13:00 UTC
    assert violations({"at": {"min": "2024-01-01T12:00:00+00:00"}, "ok": {"in": [True]}}, berlin) == {
        0: [("at", "min")],
        1: [("ok", "in")],
    }
    assert violations({"at": {"in": [dt.datetime(2024, 1, 1, 13, tzinfo=UTC)]}}, berlin) == {
        0: [("at", "in")]
    }


def test_pattern_is_a_full_match_even_with_a_trailing_newline() -> None:
    frame = pl.DataFrame({"s": ["ab", "ab\n", "xab", "abab", "a"]})
    assert list(violations({"s": {"pattern": "ab|a"}}, frame)) == [1, 2, 3]


def test_split_frames_and_messages() -> None:
    frame = pl.DataFrame({"price": [3, -5, None], "sku": ["A-1", None, "b"]})
    checks = compile_rules(
        {
            "price": {"min": 0.01},
            "sku": {"required": True, "pattern": r"[A-Z]-\d"},
            "row": {"expr": "price > 1"},
        },
        frame.schema,
    )
    accepted, rejected = split(frame, checks)
    assert accepted.to_dict(as_series=False) == {"price": [3], "sku": ["A-1"]}
    assert rejected.schema == pl.Schema(
        {"__row__": pl.Int64, "price": pl.Int64, "sku": pl.String, "__violations__": VIOLATION_DTYPE}
    )
    assert rejected.to_dicts() == [
        {"__row__": 1, "price": -5, "sku": None, "__violations__": [
            {"field": "price", "rule": "min", "value": "-5", "message": "price=-5 is below min 0.01"},
            {"field": "sku", "rule": "required", "value": None, "message": "sku is required but is null"},
            {"field": "row", "rule": "expr", "value": None, "message": "row: price > 1 is not true"},
        ]},
        {"__row__": 2, "price": None, "sku": "b", "__violations__": [
            {"field": "sku", "rule": "pattern", "value": "b", "message": r"sku=b does not match pattern [A-Z]-\d"},
            {"field": "row", "rule": "expr", "value": None, "message": "row: price > 1 is not true"},
        ]},
    ]  # fmt: skip
    assert frame.columns == ["price", "sku"]  # input untouched


def test_split_edge_cases() -> None:
    frame = pl.DataFrame({"x": [1, 2]})
    accepted, rejected = split(frame, [], row_column="idx")
    assert accepted.equals(frame)
    assert rejected.schema == pl.Schema({"idx": pl.Int64, "x": pl.Int64, "__violations__": VIOLATION_DTYPE})
    checks = compile_rules({"x": {"min": 2}}, frame.schema)
    accepted, rejected = split(frame.clear(), checks)
    assert accepted.height == rejected.height == 0
    assert rejected.schema["__violations__"] == VIOLATION_DTYPE
    _, rejected = split(frame, checks, row_column="idx")
    assert rejected["idx"].to_list() == [0]
    with pytest.raises(SchemaError, match="'x'"):
        split(frame, checks, row_column="x")


def test_constraint_rules_from_table_metadata() -> None:
    meta = [
        ("id", False, None, None, None),
        ("sku", False, 5, None, None),
        ("amount", True, None, 5, 2),
        ("note", True, None, None, None),
    ]
    rules = constraint_rules(meta)
    assert rules == {
        "id": {"required": True},
        "sku": {"required": True, "max_length": 5},
        "amount": {"precision": (5, 2)},
    }
    del rules["id"]
    assert violations(rules) == {
        2: [("sku", "required")],
        3: [("amount", "precision")],
        4: [("amount", "precision")],
        5: [("sku", "max_length")],
    }


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            {"price": {"maximum": 5}},
            "unknown validation rule 'maximum' on 'price' (did you mean 'max'?); valid kinds: min, max",
        ),
        ({"nope": {"min": 1}}, "validation rule 'min' on unknown column 'nope'; columns: price, cost"),
        ({"price": 5}, "rules for 'price' must map rule kinds"),
        ({"sku": {"min": 1}}, "needs a numeric, date or datetime column, not String"),
        ({"price": {"min": "cheap"}}, "'cheap' cannot be compared with a Float64 column"),
        ({"price": {"min": True}}, "True cannot be compared"),
        ({"day": {"min": "yesterday"}}, "'yesterday' is not an ISO date/datetime"),
        ({"at": {"min": "2024-01-01"}}, "must both have a time zone or neither"),
        ({"sku": {"pattern": "([a-z"}}, "invalid regular expression '([a-z'"),
        ({"qty": {"pattern": "1"}}, "needs a regex string and a string column"),
        ({"qty": {"in": ["a"]}}, "rule 'in' on column 'qty'"),
        ({"qty": {"in": 5}}, "expects a list of values"),
        ({"sku": {"required": "yes"}}, "expects True or False"),
        ({"sku": {"min_length": -1}}, "expects a non-negative int"),
        ({"qty": {"max_length": 3}}, "needs a string or list column, not Int64"),
        ({"code": {"type": "money"}}, "unknown type 'money'"),
        ({"sku": {"precision": (3, 0)}}, "needs a numeric column"),
        ({"row": {"expr": "price + 1"}}, "'price + 1' must give true/false, but gives Float64"),
        ({"row": {"expr": "prices > 1"}}, "rule 'expr' on column 'row': unknown column 'prices'"),
        ({"row": {"expr": "__import__('os')"}}, "name '__import__'"),
    ],
)
def test_rule_errors(rules: dict[str, Any], message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_rules(rules, FRAME.schema)
    assert message in str(info.value)


def test_rule_kinds_are_listed() -> None:
    assert set(RULE_KINDS) == {"min", "max", "required", "pattern", "in", "not_in", "min_length", "max_length",
                               "unique", "type", "expr", "precision"}  # fmt: skip


# ------------------------------------------------------------------- property test

PATTERNS = ["a*", "(ab)+", "b?a", "[ab]{2}", "", "a|b", "a.b"]
ints = st.none() | st.integers(-5, 5)
texts = st.none() | st.text(alphabet="ab", max_size=4)
number_rules = st.fixed_dictionaries(
    {},
    optional={
        "min": st.integers(-5, 5),
        "max": st.integers(-5, 5),
        "in": st.lists(st.integers(-5, 5), max_size=4),
        "not_in": st.lists(st.integers(-5, 5), max_size=3),
        "required": st.booleans(),
        "unique": st.booleans(),
    },
)
text_rules = st.fixed_dictionaries(
    {},
    optional={
        "min_length": st.integers(0, 4),
        "max_length": st.integers(0, 4),
        "pattern": st.sampled_from(PATTERNS),
        "in": st.lists(st.text(alphabet="ab", max_size=3), max_size=3),
        "required": st.booleans(),
        "unique": st.booleans(),
    },
)


def broken(rule: str, param: Any, value: Any, column: list[Any]) -> bool:
    """Plain-Python meaning of one rule on one value (the test's own model)."""
    if rule == "required":
        return bool(param) and value is None
    if value is None:
        return False
    return {
        "min": lambda: value < param,
        "max": lambda: value > param,
        "in": lambda: value not in param,
        "not_in": lambda: value in param,
        "min_length": lambda: len(value) < param,
        "max_length": lambda: len(value) > param,
        "pattern": lambda: re.fullmatch(param, value) is None,
        "unique": lambda: param and column.count(value) > 1,
    }[rule]()


def reference(rows: list[dict[str, Any]], rules: dict[str, dict[str, Any]]) -> set[tuple[int, str, str]]:
    """Evaluate the rules row by row in plain Python."""
    return {
        (i, field, rule)
        for field, spec in rules.items()
        for rule, param in spec.items()
        for i, row in enumerate(rows)
        if broken(rule, param, row[field], [r[field] for r in rows])
    }


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(st.tuples(ints, texts), max_size=12),
    n_rules=number_rules,
    s_rules=text_rules,
)
def test_compiled_rules_agree_with_reference(
    data: list[tuple[int | None, str | None]], n_rules: dict[str, Any], s_rules: dict[str, Any]
) -> None:
    frame = pl.DataFrame(data, schema={"n": pl.Int64, "s": pl.String}, orient="row")
    rules = {"n": n_rules, "s": s_rules}
    accepted, rejected = split(frame, compile_rules(rules, frame.schema))
    got = {
        (row["__row__"], v["field"], v["rule"]) for row in rejected.to_dicts() for v in row["__violations__"]
    }
    expected = reference(frame.to_dicts(), rules)
    assert got == expected
    assert sorted(rejected["__row__"].to_list()) == sorted({i for i, _, _ in expected})
    assert accepted.height == frame.height - rejected.height
