"""URL scheme → backend class, imported lazily (no import-time self-registration)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from bulkframe.errors import MissingDependencyError, NotSupportedError

if TYPE_CHECKING:
    from bulkframe.backends.base import Backend

DEFAULT_URL = "sqlite:///bulkframe.db"

#: scheme (before any ``+driver``) → (module, class, pip package of its driver)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "sqlite": ("bulkframe.backends.sqlite", "SQLiteBackend", "adbc-driver-sqlite"),
    "postgresql": ("bulkframe.backends.postgres", "PostgresBackend", "adbc-driver-postgresql"),
    "postgres": ("bulkframe.backends.postgres", "PostgresBackend", "adbc-driver-postgresql"),
}


def scheme_of(url: str) -> str:
    """``postgresql+psycopg://…`` → ``postgresql``."""
    if "://" not in url:
        raise NotSupportedError(
            f"not a database URL: {url!r}; expected e.g. 'sqlite:///file.db' or "
            "'postgresql://user@host:5432/db'"
        )
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def load_backend(url: str) -> Backend:
    """Instantiate the backend that serves ``url``."""
    scheme = scheme_of(url)
    try:
        module_name, class_name, package = BACKENDS[scheme]
    except KeyError:
        raise NotSupportedError(
            f"no backend for URL scheme {scheme!r}; supported: {', '.join(sorted(set(BACKENDS)))}"
        ) from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"the {scheme} backend needs {package}: {exc}. Install with: pip install {package}"
        ) from exc
    backend: Backend = getattr(module, class_name)(url)
    return backend
