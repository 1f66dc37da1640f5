"""``@db.model`` → tables: column types, nullability, defaults, keys, constraints, names;
and the library's ``Database.create_table`` it is built on."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Optional

import pytest

import bulkframe as bf
from bulkframe.backends.base import ForeignKey
from bulkframe.errors import IntegrityError, SchemaError
from bulkframe.nodes import DataFlow, Naive, Numeric, VarChar
from bulkframe.nodes.model import table_name_for
from bulkframe.types import Column

NOW = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("cls", "table"),
    [
        ("Product", "products"),
        ("OrderItem", "order_items"),
        ("Category", "categories"),
        ("Address", "addresses"),
        ("Key", "keys"),
        ("HTTPLog", "http_logs"),
        ("Box", "boxes"),
    ],
)
def test_table_names(cls: str, table: str) -> None:
    assert table_name_for(cls) == table


def test_every_annotation_maps_to_a_typed_column_and_round_trips(flow: DataFlow) -> None:
    @flow.model
    class Everything:
        text: str
        count: int
        ratio: float
        amount: Decimal
        money: Annotated[Decimal, Numeric(12, 2)]
        flag: bool
        at: dt.datetime
        naive: Annotated[dt.datetime, Naive]
        day: dt.date
        doc: dict  # type: ignore[type-arg]
        items: list  # type: ignore[type-arg]
        key: uuid.UUID
        code: Annotated[str, VarChar(8)]
        maybe: Optional[int]  # noqa: UP045
        maybe_too: str | None
        stock: int = 7
        active: bool = True
        label: str = "new"
        meta: dict = {"v": 1}  # type: ignore[type-arg]  # noqa: RUF012
        __tablename__ = "bf_nodes_everything"

    try:
        cols = {c.name: c for c in flow.database.columns(Everything)}
        kinds = {n: c.kind for n, c in cols.items()}
        assert kinds == {
            "id": "int64",
            "text": "text",
            "count": "int64",
            "ratio": "float64",
            "amount": "decimal",
            "money": "decimal",
            "flag": "bool",
            "at": "timestamptz",
            "naive": "timestamp",
            "day": "date",
            "doc": "json",
            "items": "json",
            "key": "uuid",
            "code": "text",
            "maybe": "int64",
            "maybe_too": "text",
            "stock": "int64",
            "active": "bool",
            "label": "text",
            "meta": "json",
            "created_at": "timestamptz",  # added like kailash-dataflow's models
            "updated_at": "timestamptz",
        }
        assert (cols["amount"].precision, cols["amount"].scale) == (18, 6)
        assert (cols["money"].precision, cols["money"].scale) == (12, 2)
        assert cols["code"].length == 8
        assert cols["id"].primary_key and cols["id"].has_default
        assert not cols["text"].nullable and cols["maybe"].nullable and cols["maybe_too"].nullable
        assert cols["stock"].has_default and not cols["stock"].nullable
        key = uuid.uuid4()
        row = {
            "text": "é",
            "count": 2**40,
            "ratio": 0.25,
            "amount": Decimal("123456789012.123456"),
            "money": Decimal("10.25"),
            "flag": False,
            "at": NOW,
            "naive": dt.datetime(2024, 1, 2, 3, 4),
            "day": dt.date(2024, 2, 29),
            "doc": {"a": [1, {"b": None}]},
            "items": [1, "x"],
            "key": key,
            "code": "ABCDEFGH",
            "maybe": None,
            "maybe_too": None,
        }
        result = flow.database.bulk_create(Everything, [row])
        assert result.inserted == 1
        stored = flow.database.read(Everything).to_dicts()[0]
        # the database's clock filled the timestamps (an aware instant near now)
        assert abs(stored["created_at"] - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
        assert stored["updated_at"] == stored["created_at"]
        assert stored["id"] == 1 and (stored["stock"], stored["active"], stored["label"]) == (7, True, "new")
        assert stored["amount"] == Decimal("123456789012.123456") and stored["money"] == Decimal("10.25")
        assert stored["at"] == NOW and stored["day"] == dt.date(2024, 2, 29)
        assert str(stored["key"]) == str(key) and stored["count"] == 2**40
        import json

        assert json.loads(stored["meta"]) == {"v": 1} and json.loads(stored["doc"]) == {"a": [1, {"b": None}]}
    finally:
        flow.database.drop_table("bf_nodes_everything")


def test_declared_key_unique_index_and_soft_delete(flow: DataFlow) -> None:
    @flow.model
    class Sku:
        code: str
        name: str
        shelf: int | None = None
        __tablename__ = "bf_nodes_skus"
        __primary_key__ = "code"
        __unique__ = [("name", "shelf")]  # noqa: RUF012
        __indexes__ = [("shelf",)]  # noqa: RUF012
        __soft_delete__ = True

    try:
        cols = {c.name: c for c in flow.database.columns(Sku)}
        assert list(cols) == ["code", "name", "shelf", "created_at", "updated_at", "deleted_at"]
        assert cols["code"].primary_key and not cols["code"].has_default
        assert cols["deleted_at"].kind == "timestamptz" and cols["deleted_at"].nullable
        flow.database.bulk_create(Sku, [{"code": "a", "name": "x", "shelf": 1}])
        with pytest.raises(IntegrityError):
            flow.database.bulk_create(Sku, [{"code": "b", "name": "x", "shelf": 1}])
        up = flow.database.bulk_upsert(
            Sku,
            [{"code": "c", "name": "x", "shelf": 1}],
            unique_fields=["name", "shelf"],
            update_fields=["code"],
        )
        assert up.updated == 1
        gone = flow.database.bulk_delete(Sku, {"name": "x"}, soft_delete=True)
        assert gone.deleted == 1
        assert flow.database.read(Sku)["deleted_at"].null_count() == 0
    finally:
        flow.database.drop_table("bf_nodes_skus")


def test_existing_table_is_used_as_is(flow: DataFlow, caplog: pytest.LogCaptureFixture) -> None:
    flow.database.bulk_create("bf_nodes_legacy", [{"id": 1, "name": "old"}], primary_key="id")
    try:

        @flow.model
        class Legacy:
            name: str
            extra: int = 0
            __tablename__ = "bf_nodes_legacy"
            __unique__ = [("name",)]  # noqa: RUF012

        assert "without column(s) ['extra', 'created_at', 'updated_at']" in caplog.text
        assert "without the unique constraint(s) [('name',)]" in caplog.text
        assert flow.database.read(Legacy).to_dicts() == [{"id": 1, "name": "old"}]
        assert not flow.owns(Legacy)
        with pytest.raises(SchemaError, match="not created by this DataFlow"):
            flow.add_column(Legacy, Column("deleted_at", "timestamptz", nullable=True))
    finally:
        flow.database.drop_table("bf_nodes_legacy")


def test_auto_migrate_true_adds_missing_columns(url: str, flow: DataFlow) -> None:
    flow.database.bulk_create("bf_nodes_legacy", [{"id": 1, "name": "old"}], primary_key="id")
    try:
        with DataFlow(url, auto_migrate=True) as migrating:

            @migrating.model
            class Legacy:
                name: str
                extra: int = 0
                note: str | None = None
                __tablename__ = "bf_nodes_legacy"

            assert migrating.owns(Legacy)
            cols = {c.name: c for c in migrating.database.columns(Legacy)}
            assert list(cols) == ["id", "name", "extra", "note"]  # timestamps only on tables it creates
            # existing rows take the declared default; the nullable column is NULL
            assert [
                (r["id"], r["name"], r["extra"], r["note"])
                for r in migrating.database.read(Legacy).to_dicts()
            ] == [(1, "old", 0, None)]
    finally:
        flow.database.drop_table("bf_nodes_legacy")


def test_auto_migrate_false_never_creates(url: str, flow: DataFlow) -> None:
    with DataFlow(url, auto_migrate=False) as strict:
        with pytest.raises(SchemaError, match="does not exist and this DataFlow has auto_migrate=False"):

            @strict.model
            class Missing:
                name: str
                __tablename__ = "bf_nodes_missing"

        assert strict.database.columns("bf_nodes_missing") is None


def test_bad_models_are_refused(flow: DataFlow) -> None:
    with pytest.raises(SchemaError, match="no annotated fields"):
        flow.model(type("Empty", (), {}))
    with pytest.raises(SchemaError, match="no column type for annotation"):

        @flow.model
        class Odd:
            thing: set  # type: ignore[type-arg]

    with pytest.raises(SchemaError, match="only Optional"):

        @flow.model
        class Mixed:
            thing: int | str


def test_create_table_library_api(db: bf.Database, table: str) -> None:
    parent = f"{table}_p"
    cols = [
        Column("id", "int64", nullable=False, primary_key=True),
        Column("name", "text", nullable=False),
        Column("n", "int64", nullable=False),
        Column("at", "timestamptz", nullable=False),
    ]
    try:
        assert (
            db.create_table(
                parent,
                cols,
                identity="id",
                unique=[("name",)],
                indexes=[("n",)],
                defaults={"n": 0, "at": ":current_timestamp"},
            )
            is True
        )
        assert db.create_table(parent, cols) is False  # exists: left alone
        assert (
            db.create_table(
                table,
                [Column("id", "int64", nullable=False, primary_key=True), Column("parent_id", "int64")],
                identity="id",
                foreign_keys=[ForeignKey(("parent_id",), parent, None, ())],
            )
            is True
        )
        started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        db.bulk_create(parent, [{"name": "a"}, {"name": "b"}])
        ended = dt.datetime.now(dt.timezone.utc)
        stored = db.read(parent, order_by="id").to_dicts()
        assert [(r["id"], r["name"], r["n"]) for r in stored] == [(1, "a", 0), (2, "b", 0)]
        # the :current_timestamp default: the instant of the insert, as an aware timestamp
        assert [type(r["at"]) for r in stored] == [dt.datetime, dt.datetime]
        assert all(r["at"].tzinfo is not None and started <= r["at"] <= ended for r in stored), stored
        with pytest.raises(IntegrityError):
            db.bulk_create(parent, [{"name": "a"}])
        with pytest.raises(SchemaError, match="not columns"):
            db.create_table(f"{table}_x", cols, unique=[("nope",)])
        with pytest.raises(SchemaError, match="identity column"):
            db.create_table(f"{table}_x", cols, identity="name")
    finally:
        db.drop_table(table)
        db.drop_table(parent)


GOLDEN_DDL = {
    "sqlite": [
        'CREATE TABLE IF NOT EXISTS "order" ("id" INTEGER, "name" TEXT DEFAULT \'O\'\'Neil\' NOT NULL, '
        '"price" TEXT /* bulkframe:decimal(18,6) */, "on" BOOLEAN DEFAULT TRUE NOT NULL, '
        "\"at\" TIMESTAMP /* bulkframe:timestamptz */ DEFAULT (strftime('%Y-%m-%d %H:%M:%f000', 'now')), "
        '"meta" TEXT /* bulkframe:json */ DEFAULT \'{"a": "it\'\'s"}\', "user_id" BIGINT, PRIMARY KEY ("id"), '
        'UNIQUE ("name"), FOREIGN KEY ("user_id") REFERENCES "users")',
        'CREATE INDEX IF NOT EXISTS "ix_order_user_id" ON "order" ("user_id")',
    ],
    "postgresql": [
        'CREATE TABLE IF NOT EXISTS "order" ("id" bigint GENERATED BY DEFAULT AS IDENTITY, "name" text DEFAULT '
        '\'O\'\'Neil\' NOT NULL, "price" numeric(18,6), "on" boolean DEFAULT TRUE NOT NULL, "at" timestamptz '
        'DEFAULT CURRENT_TIMESTAMP, "meta" jsonb DEFAULT \'{"a": "it\'\'s"}\', "user_id" bigint, '
        'PRIMARY KEY ("id"), UNIQUE ("name"), FOREIGN KEY ("user_id") REFERENCES "users")',
        'CREATE INDEX IF NOT EXISTS "ix_order_user_id" ON "order" ("user_id")',
    ],
}


GOLDEN_URL = {"sqlite": "sqlite:////tmp/unused.db", "postgresql": "postgresql://u@h/d"}


@pytest.mark.parametrize("dialect", sorted(GOLDEN_DDL))
def test_create_table_ddl_golden(dialect: str) -> None:
    """Identifiers quoted by the dialect, defaults rendered as escaped literals."""
    from bulkframe.backends.base import TableRef
    from bulkframe.backends.ddl import create_table_statements
    from bulkframe.backends.registry import load_backend

    backend = load_backend(GOLDEN_URL[dialect])
    assert backend.name == dialect
    cols = [
        Column("id", "int64", nullable=False, primary_key=True),
        Column("name", "text", nullable=False),
        Column("price", "decimal", precision=18, scale=6),
        Column("on", "bool", nullable=False),
        Column("at", "timestamptz"),
        Column("meta", "json"),
        Column("user_id", "int64"),
    ]
    statements = create_table_statements(
        backend,
        TableRef("order"),
        cols,
        identity="id",
        unique=[("name",)],
        indexes=[("user_id",)],
        foreign_keys=[ForeignKey(("user_id",), "users", None, ())],
        defaults={"on": True, "at": ":current_timestamp", "meta": {"a": "it's"}, "name": "O'Neil"},
    )
    assert statements == GOLDEN_DDL[dialect]


@pytest.mark.parametrize(
    ("dialect", "index"),
    [
        ("sqlite", 'CREATE INDEX "s"."ix_order_user_id" ON "order" ("user_id")'),
        ("postgresql", 'CREATE INDEX "ix_order_user_id" ON "s"."order" ("user_id")'),
    ],
)
def test_index_of_a_table_in_a_schema_is_qualified_where_the_backend_says(dialect: str, index: str) -> None:
    """Capability ``schema_on_index_name``: SQLite puts the schema on the index name."""
    from bulkframe.backends.base import TableRef
    from bulkframe.backends.ddl import create_table_statements
    from bulkframe.backends.registry import load_backend

    backend = load_backend(GOLDEN_URL[dialect])
    cols = [Column("id", "int64", nullable=False, primary_key=True), Column("user_id", "int64")]
    statements = create_table_statements(
        backend, TableRef("order", "s"), cols, indexes=[("user_id",)], if_not_exists=False
    )
    assert statements[1:] == [index]
    assert statements[0].startswith('CREATE TABLE "s"."order" (')
