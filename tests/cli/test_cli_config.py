"""The command line's pure helpers: masked URLs, declared types, input kinds."""

from __future__ import annotations

import pytest

from bulkframe.cli.config import UsageError, mask_text, mask_url
from bulkframe.cli.inputs import InputOptions, kind_of, library_reads, parse_type


def test_passwords_are_masked() -> None:
    url = "postgresql://etl:p%40ss%3Aword@db.example:5432/shop"
    assert mask_url(url) == "postgresql://etl:***@db.example:5432/shop"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"
    message = f"could not connect to {url} (password p@ss:word rejected)"
    masked = mask_text(message, [url])
    assert "p%40ss" not in masked and "p@ss:word" not in masked and "etl:***@db.example" in masked
    assert mask_text("mysql://u:secret@h/db failed") == "mysql://u:***@h/db failed"


@pytest.mark.parametrize(
    ("spec", "kind", "extra"),
    [
        ("decimal(12,2)", "decimal", (12, 2, None)),
        ("numeric(5)", "decimal", (5, 0, None)),
        ("varchar(20)", "text", (None, None, 20)),
        ("text", "text", (None, None, None)),
        ("BIGINT", "int64", (None, None, None)),
        ("timestamptz", "timestamptz", (None, None, None)),
        ("jsonb", "json", (None, None, None)),
    ],
)
def test_declared_types(spec: str, kind: str, extra: tuple) -> None:  # type: ignore[type-arg]
    column = parse_type("c", spec)
    assert (column.kind, column.precision, column.scale, column.length) == (kind, *extra)


@pytest.mark.parametrize("spec", ["money", "int64(3)", "text(1,2)", "decimal(", ""])
def test_unknown_types_are_refused(spec: str) -> None:
    with pytest.raises(UsageError, match="column 'c'"):
        parse_type("c", spec)


def test_input_kinds() -> None:
    plain = InputOptions()
    assert kind_of("a/b.csv.gz", plain) == ("csv", "gzip")
    assert kind_of("b.tsv.zst", plain) == ("tsv", "zstd")
    assert kind_of("rows.ndjson", plain) == ("jsonl", None)
    assert kind_of("-", plain) == ("csv", None)
    assert kind_of("data.bin", InputOptions(format="parquet")) == ("parquet", None)
    with pytest.raises(UsageError, match="--format"):
        kind_of("data.bin", plain)
    assert library_reads("x.csv", plain) and library_reads("x.parquet", plain)
    assert not library_reads("x.csv", InputOptions(delimiter=";"))
    assert not library_reads("x.csv.gz", plain) and not library_reads("-", plain)
