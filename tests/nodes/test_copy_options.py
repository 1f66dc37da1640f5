"""``copy_options`` on a create node: the file's format is honoured on every backend (the
server parses it where ``capabilities.copy_text``, Arrow's reader with the same options
elsewhere), the same rows are stored either way (read back through an independent
client), counts are exact, and a bad line is refused or isolated as ``error_strategy``
says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulkframe.errors import BulkframeError, InvalidOptionValueError, NotSupportedError
from bulkframe.nodes import DataFlow, LocalRuntime, NodeExecutionError, WorkflowBuilder
from suite_backends import independent_query

TSV = 'name\tprice\tcategory\tstock\tnote\nlamp\t19.99\tlight\t3\t\\N\nquoted\t0.1\tx\t0\t"\\N"\ntabbed\t2.5\t"a\tb"\t7\t\n'


def declare(flow: DataFlow) -> type:
    @flow.model
    class Product:
        name: str
        price: float
        category: str
        stock: int
        note: str | None = None

    return Product


def run(params: dict[str, Any]) -> dict[str, Any]:
    workflow = WorkflowBuilder()
    workflow.add_node("ProductBulkCreateNode", "load", params)
    results, _ = LocalRuntime().execute(workflow.build())
    return results["load"]


def stored(flow: DataFlow) -> list[tuple]:  # type: ignore[type-arg]
    return independent_query(flow.url, "SELECT name, price, category, stock, note FROM products ORDER BY id")


SPEC_OPTIONS = {"delimiter": "\t", "null_string": "\\N", "format": "csv"}  # the spec's


def test_the_spec_options_on_a_tsv_file(flow: DataFlow, tmp_path: Path) -> None:
    declare(flow)
    path = tmp_path / "products.tsv"
    path.write_text(TSV)
    # disable_triggers as the spec writes it, where the database can switch triggers off
    triggers = {"disable_triggers": True} if flow.database.backend.capabilities.triggers else {}
    out = run({"data": str(path), "use_copy": True, "copy_options": SPEC_OPTIONS, **triggers})
    assert (out["data"]["records_processed"], out["inserted"], out["data"]["failure_count"]) == (3, 3, 0)
    # \N unquoted is NULL; quoted it is text (CSV); an unquoted empty field is the empty
    # string here, since null_string is \N; a quoted tab is data
    assert stored(flow) == [
        ("lamp", 19.99, "light", 3, None),
        ("quoted", 0.1, "x", 0, "\\N"),
        ("tabbed", 2.5, "a\tb", 7, ""),
    ]
    server = flow.database.backend.capabilities.copy_text
    assert out["data"]["metrics"].get("copy", {}).get("path") == ("server" if server else None)


def test_no_header_needs_columns_and_default_null(flow: DataFlow, tmp_path: Path) -> None:
    declare(flow)
    path = tmp_path / "p.csv"
    path.write_text('a;1.5;c;2;\nb;2;"";3;""\n')
    with pytest.raises(InvalidOptionValueError, match=r"header=False needs columns"):
        WorkflowBuilder().add_node(
            "ProductBulkCreateNode", "x", {"data": str(path), "copy_options": {"header": False}}
        )
    opts = {"delimiter": ";", "header": False, "columns": ["name", "price", "category", "stock", "note"]}
    assert run({"data": str(path), "copy_options": opts})["inserted"] == 2
    assert stored(flow) == [("a", 1.5, "c", 2, None), ("b", 2.0, "", 3, "")]


def test_a_bad_line_stops_with_nothing_written(flow: DataFlow, tmp_path: Path) -> None:
    declare(flow)
    path = tmp_path / "bad.csv"
    path.write_text("name,price,category,stock\nok,1,x,1\nbroken,abc,x,2\nok2,2,x,3\n")
    with pytest.raises(NodeExecutionError, match="abc") as info:
        run({"data": str(path), "copy_options": {"format": "csv"}})
    assert isinstance(info.value.__cause__, BulkframeError)
    assert stored(flow) == []


def test_a_bad_line_with_continue_is_isolated(flow: DataFlow, tmp_path: Path) -> None:
    declare(flow)
    path = tmp_path / "bad.csv"
    path.write_text("name,price,category,stock\nok,1,x,1\nbroken,abc,x,2\nok2,2,x,3\n")
    out = run({"data": str(path), "copy_options": {"format": "csv"}, "error_strategy": "continue"})
    data = out["data"]
    assert (data["records_processed"], data["success_count"], data["failure_count"]) == (3, 2, 1)
    assert [e["row"] for e in data["errors"]] == [1] and "abc" in str(data["errors"][0])
    assert stored(flow) == [("ok", 1.0, "x", 1, None), ("ok2", 2.0, "x", 3, None)]


def test_text_format(flow: DataFlow, tmp_path: Path) -> None:
    declare(flow)
    path = tmp_path / "p.txt"
    path.write_text("name\tprice\tcategory\tstock\tnote\nback\\\\slash\t1\tx\t1\t\\N\n")
    params = {"data": str(path), "copy_options": {"format": "text"}}
    if flow.database.backend.capabilities.copy_text:
        assert run(params)["inserted"] == 1
        assert stored(flow) == [("back\\slash", 1.0, "x", 1, None)]
    else:
        with pytest.raises(NodeExecutionError, match="format='text'") as info:
            run(params)
        assert isinstance(info.value.__cause__, NotSupportedError)
        assert stored(flow) == []


def test_options_are_refused_where_they_mean_nothing(flow: DataFlow, tmp_path: Path) -> None:
    declare(flow)
    with pytest.raises(InvalidOptionValueError, match=r"copy_options \['nulls'\] are not supported"):
        WorkflowBuilder().add_node("ProductBulkCreateNode", "x", {"data": [], "copy_options": {"nulls": ""}})
    with pytest.raises(InvalidOptionValueError, match="delimiter must be one one-byte character"):
        WorkflowBuilder().add_node(
            "ProductBulkCreateNode", "x", {"data": [], "copy_options": {"delimiter": "::"}}
        )
    rows = [{"name": "a", "price": 1.0, "category": "x", "stock": 1}]
    with pytest.raises(NodeExecutionError, match="copy_options describe how a CSV/text file is written"):
        run({"data": rows, "copy_options": SPEC_OPTIONS})
    path = tmp_path / "p.csv"
    path.write_text("name,price,category,stock,colour\na,1,x,1,red\n")
    with pytest.raises(NodeExecutionError, match=r"\['colour'\].*not columns"):
        run({"data": str(path), "copy_options": {}})
    assert stored(flow) == []


def test_conflict_options_take_the_client_path_with_the_same_format(flow: DataFlow, tmp_path: Path) -> None:
    declare(flow)
    path = tmp_path / "p.tsv"
    path.write_text("name\tprice\tcategory\tstock\tnote\na\t1\tx\t1\t\\N\n")
    opts = {"delimiter": "\t", "null_string": "\\N"}
    assert run({"data": str(path), "copy_options": opts, "conflict_resolution": "skip"})["inserted"] == 1
    out = run(
        {
            "data": str(path),
            "copy_options": opts,
            "validation_rules": {"price": {"min": 5}},
            "error_strategy": "continue",
        }
    )
    assert (out["inserted"], out["data"]["failure_count"]) == (0, 1) and "copy" not in out["data"]["metrics"]
    assert stored(flow) == [("a", 1.0, "x", 1, None)]
