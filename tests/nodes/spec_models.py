"""The models and rows behind the spec's examples (shared by the node tests).

:func:`declare_spec_models` declares the spec's own models, exactly: ``Product`` (``name``,
``price``, ``category``, ``stock``) and, for the relationships example that uses them
without declaring them, the smallest ``User``/``Profile`` its data fits.  The spec's
examples run against these (``test_spec_examples.py``).

:func:`declare_fitting_models` declares a ``Product`` with every column any example touches
(plus ``Review``/``Rating``), which the workflow tests and the spec's own unit tests use.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from bulkframe.nodes import DataFlow, has_many, has_one


def declare_spec_models(db: DataFlow) -> dict[str, type]:
    """The spec's own models: ``Product`` as the spec declares it; ``User``/``Profile``
    with exactly the fields the relationships example gives them."""

    @db.model
    class Product:
        name: str
        price: float
        category: str
        stock: int

    @db.model
    class User:
        name: str
        email: str
        __relationships__ = {"profile": has_one("Profile", "user_id")}  # noqa: RUF012

    @db.model
    class Profile:
        user_id: int
        bio: str
        location: str
        __foreign_keys__ = {"user_id": User}  # noqa: RUF012

    return {"Product": Product, "User": User, "Profile": Profile}


def spec_product_rows(n: int = 10) -> list[dict[str, Any]]:
    """Rows of the spec's ``Product``; loaded first into a fresh table they get ids 1..n."""
    cats = ["electronics", "clothing", "books", "discontinued"]
    return [
        {"name": f"Product {i}", "price": float(i * 10), "category": cats[i % 4], "stock": i % 12}
        for i in range(1, n + 1)
    ]


def declare_fitting_models(db: DataFlow) -> dict[str, type]:
    """A ``Product`` covering every column any example touches, and its children."""

    @db.model
    class Product:
        name: str
        price: float
        category: str
        stock: int = 0
        active: bool = True
        status: Optional[str] = None  # noqa: UP045 - the spec's spelling must work
        views: int = 0
        sku: str | None = None
        external_id: str | None = None
        description: str | None = None
        internal_notes: str | None = None
        created_at: dt.datetime | None = None
        updated_at: dt.datetime | None = None
        restock_date: dt.date | None = None
        __tablename__ = "products"
        __unique__ = [("name", "category"), ("sku",), ("external_id",)]  # noqa: RUF012
        __indexes__ = [("category",)]  # noqa: RUF012
        __soft_delete__ = True
        __relationships__ = {  # noqa: RUF012
            "reviews": has_many("Review", "product_id"),
            "ratings": has_many("Rating", "product_id"),
        }

    @db.model
    class Review:
        product_id: int
        body: str = ""
        __soft_delete__ = True
        __foreign_keys__ = {"product_id": Product}  # noqa: RUF012

    @db.model
    class Rating:
        product_id: int
        stars: int = 5
        __soft_delete__ = True
        __foreign_keys__ = {"product_id": Product}  # noqa: RUF012

    @db.model
    class User:
        name: str
        email: str
        __relationships__ = {"profile": has_one("Profile", "user_id")}  # noqa: RUF012

    @db.model
    class Profile:
        user_id: int
        bio: str | None = None
        location: str | None = None
        __foreign_keys__ = {"user_id": User}  # noqa: RUF012

    return {"Product": Product, "Review": Review, "Rating": Rating, "User": User, "Profile": Profile}


def product_rows(n: int = 10, **extra: Any) -> list[dict[str, Any]]:
    """Deterministic products; loaded first into a fresh table they get ids 1..n."""
    cats = ["electronics", "clothing", "books", "discontinued"]
    return [
        {
            "name": f"Product {i}",
            "price": float(i * 10),
            "category": cats[i % 4],
            "stock": i % 12,
            "active": i % 2 == 0,
            "sku": f"SKU-{i}",
            "external_id": f"EXT-{i}",
            "views": 0,
            "created_at": dt.datetime(2021 if i % 3 == 0 else 2023, 6, 1, tzinfo=dt.timezone.utc),
            **extra,
        }
        for i in range(1, n + 1)
    ]
