"""Nested creates: parents and children in one transaction, linked by foreign key, with the
parents' ids reserved in one round trip; and delete cascades that follow relationships."""

from __future__ import annotations

import polars as pl
import pytest

from bulkframe.errors import InvalidOptionValueError, NotSupportedError, ValidationError
from bulkframe.nodes import DataFlow, LocalRuntime, NodeExecutionError, WorkflowBuilder, has_many, has_one
from bulkframe.ops.nested import Nested, bulk_create_nested

TABLES = ("bf_rel_posts", "bf_rel_profiles", "bf_rel_authors")


@pytest.fixture
def blog(flow: DataFlow):  # type: ignore[no-untyped-def]
    for t in TABLES:
        flow.database.drop_table(t)

    @flow.model
    class Author:
        name: str
        __tablename__ = "bf_rel_authors"
        __relationships__ = {  # noqa: RUF012
            "profile": has_one("AuthorProfile", "author_id"),
            "posts": has_many("Post", "author_id"),
        }

    @flow.model
    class AuthorProfile:
        author_id: int
        bio: str
        __tablename__ = "bf_rel_profiles"
        __foreign_keys__ = {"author_id": Author}  # noqa: RUF012

    @flow.model
    class Post:
        author_id: int
        title: str
        stars: int = 0
        __tablename__ = "bf_rel_posts"
        __foreign_keys__ = {"author_id": Author}  # noqa: RUF012

    yield {"Author": Author, "AuthorProfile": AuthorProfile, "Post": Post}
    for t in TABLES:
        flow.database.drop_table(t)


def _authors(n: int) -> list[dict[str, object]]:
    return [
        {
            "name": f"author {i}",
            "profile": {"bio": f"bio {i}"} if i % 3 else None,
            "posts": [{"title": f"post {i}.{j}", "stars": j} for j in range(i % 4)],
        }
        for i in range(n)
    ]


def _stored(flow: DataFlow) -> list[tuple[str, str | None, list[str]]]:
    db = flow.database
    authors = db.read("bf_rel_authors", order_by="id").to_dicts()
    profiles = {p["author_id"]: p["bio"] for p in db.read("bf_rel_profiles").to_dicts()}
    posts: dict[int, list[str]] = {}
    for p in db.read("bf_rel_posts", order_by="id").to_dicts():
        posts.setdefault(p["author_id"], []).append(p["title"])
    return [(a["name"], profiles.get(a["id"]), posts.get(a["id"], [])) for a in authors]


def _expected(data: list[dict[str, object]]) -> list[tuple[str, str | None, list[str]]]:
    return [
        (
            d["name"],
            d["profile"]["bio"] if d["profile"] else None,  # type: ignore[index]
            [p["title"] for p in d["posts"]],
        )
        for d in data
    ]  # type: ignore[attr-defined]


@pytest.mark.parametrize("as_frame", [False, True])
def test_node_creates_parents_and_children_linked(flow: DataFlow, blog, as_frame: bool) -> None:  # type: ignore[no-untyped-def]
    flow.database.bulk_create(blog["Author"], [{"name": "already here"}])  # ids do not start at 1
    data = _authors(500)
    wf = WorkflowBuilder()
    wf.add_node(
        "AuthorBulkCreateNode",
        "authors",
        {
            "data": pl.DataFrame(data) if as_frame else data,
            "batch_size": 128,
            "include_relationships": ["profile", "posts"],
            "relationship_strategy": "nested_create",
        },
    )
    results, _ = LocalRuntime().execute(wf.build())
    out = results["authors"]["data"]
    assert (out["inserted"], out["success_count"], out["failure_count"]) == (500, 500, 0)
    nested = out["metrics"]["nested"]
    assert nested["profile"]["inserted"] == sum(1 for d in data if d["profile"])
    assert nested["posts"]["inserted"] == sum(len(d["posts"]) for d in data)  # type: ignore[arg-type]
    assert _stored(flow) == [("already here", None, []), *_expected(data)]
    # later plain inserts still get fresh ids (the sequence moved past the reserved ones)
    flow.database.bulk_create(blog["Author"], [{"name": "after"}])
    ids = flow.database.read("bf_rel_authors", order_by="id")["id"].to_list()
    assert len(set(ids)) == 502


def test_a_refused_child_keeps_nothing(flow: DataFlow, blog) -> None:  # type: ignore[no-untyped-def]
    data = _authors(20)
    data[7]["posts"] = [{"title": None}]  # NOT NULL
    with pytest.raises(ValidationError, match="bf_rel_posts"):
        bulk_create_nested(
            flow.database,
            blog["Author"],
            data,
            nested=[
                Nested("profile", blog["AuthorProfile"], "author_id"),
                Nested("posts", blog["Post"], "author_id", many=True),
            ],
        )
    assert _stored(flow) == []
    wf = WorkflowBuilder()
    wf.add_node("AuthorBulkCreateNode", "a", {"data": data, "include_relationships": ["posts"]})
    with pytest.raises(NodeExecutionError, match="node 'a'"):
        LocalRuntime().execute(wf.build())
    assert _stored(flow) == []


def test_relationship_parameters_are_checked(flow: DataFlow, blog) -> None:  # type: ignore[no-untyped-def]
    wf = WorkflowBuilder()
    with pytest.raises(NotSupportedError, match="relationship_strategy='lazy'"):
        wf.add_node(
            "AuthorBulkCreateNode",
            "a",
            {"data": [], "include_relationships": ["posts"], "relationship_strategy": "lazy"},
        )
    wf.add_node("AuthorBulkCreateNode", "b", {"data": [{"name": "x"}], "include_relationships": ["comments"]})
    with pytest.raises(NodeExecutionError) as info:
        LocalRuntime().execute(wf.build())
    assert isinstance(info.value.__cause__, InvalidOptionValueError)
    assert "not relationships of Author" in str(info.value)


@pytest.mark.not_yet(
    "duckdb",
    raises=NodeExecutionError,
    reason="DuckDB cannot delete a parent in the transaction that deleted its children (capability "
    "delete_after_children): refused with NotSupportedError",
)
def test_delete_cascade_follows_relationships(flow: DataFlow, blog) -> None:  # type: ignore[no-untyped-def]
    data = _authors(12)
    bulk_create_nested(
        flow.database,
        blog["Author"],
        data,
        nested=[
            Nested("profile", blog["AuthorProfile"], "author_id"),
            Nested("posts", blog["Post"], "author_id", many=True),
        ],
    )
    wf = WorkflowBuilder()
    wf.add_node(
        "AuthorBulkDeleteNode",
        "purge",
        {"filter": {"name": {"$in": ["author 3", "author 5"]}}, "cascade": ["posts", "profile"]},
    )
    results, _ = LocalRuntime().execute(wf.build())
    assert results["purge"]["data"]["deleted"] == 2
    remaining = [d for d in _expected(data) if d[0] not in ("author 3", "author 5")]
    assert _stored(flow) == remaining
