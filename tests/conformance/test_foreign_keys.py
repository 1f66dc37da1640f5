"""Declared foreign keys mean the same on every backend: SQLite enforces them too
(``PRAGMA foreign_keys=ON`` on every connection bulkframe opens)."""

from __future__ import annotations

import pytest

import bulkframe as bf
from bulkframe.backends.base import ForeignKey
from bulkframe.errors import IntegrityError
from bulkframe.types import Column


@pytest.fixture
def parent_child(db: bf.Database, table: str):  # type: ignore[no-untyped-def]
    parent, child = f"{table}_p", table
    db.create_table(parent, [Column("id", "int64", primary_key=True, nullable=False), Column("name", "text")])
    db.create_table(
        child,
        [Column("id", "int64", primary_key=True, nullable=False), Column("parent_id", "int64")],
        foreign_keys=[ForeignKey(("parent_id",), parent, None, ("id",))],
    )
    db.bulk_create(parent, [{"id": 1, "name": "one"}])
    yield parent, child
    db.drop_table(child)
    db.drop_table(parent)


def test_child_row_without_parent_is_refused(db, parent_child, peek):  # type: ignore[no-untyped-def]
    parent, child = parent_child
    with pytest.raises(IntegrityError) as info:
        db.bulk_create(child, [{"id": 10, "parent_id": 1}, {"id": 11, "parent_id": 999}])
    assert info.value.sqlstate == "23503"
    assert peek(f'SELECT count(*) FROM "{child}"') == [(0,)]  # the whole call rolled back
    # a row whose parent exists lands
    assert db.bulk_create(child, [{"id": 10, "parent_id": 1}]).success_count == 1
    assert peek(f'SELECT id, parent_id FROM "{child}"') == [(10, 1)]
    # and the parent cannot be deleted from under it
    with pytest.raises(IntegrityError):
        db.bulk_delete(parent, ids=[1], key_field="id")
    assert peek(f'SELECT id FROM "{parent}"') == [(1,)]


def test_sqlite_connections_enforce_foreign_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with bf.connect(f"sqlite:///{tmp_path / 'fk.db'}") as db:
        conn = db.backend.connect()
        try:
            assert conn.fetchall("PRAGMA foreign_keys") == [(1,)]
        finally:
            conn.close()
