"""URL scheme → backend class, found through the ``bulkframe.backends`` entry-point group.

The built-in backends are registered there too (``pyproject.toml``), so a third-party
package adds a backend the same way::

    [project.entry-points."bulkframe.backends"]
    mydb = "bulkframe_mydb:MyDbBackend"

A built-in scheme is also known here (:data:`BUILT_IN`, kept equal to ``pyproject.toml``
by a test) and resolved without reading the installed packages' metadata, which costs
~50 ms of a command line's start-up; other schemes are looked up among the entry points,
read once.  A backend's module is imported only when a URL with its scheme is opened (no
import-time self-registration).
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bulkframe.errors import MissingDependencyError, NotSupportedError

if TYPE_CHECKING:
    from bulkframe.backends.base import Backend

DEFAULT_URL = "sqlite:///bulkframe.db"
GROUP = "bulkframe.backends"


#: The backends bulkframe ships, as in ``pyproject.toml``: scheme → ``module:Class``.
BUILT_IN = {
    "sqlite": "bulkframe.backends.sqlite:SQLiteBackend",
    "postgresql": "bulkframe.backends.postgres:PostgresBackend",
    "postgres": "bulkframe.backends.postgres:PostgresBackend",
    "duckdb": "bulkframe.backends.duckdb:DuckDBBackend",
    "mysql": "bulkframe.backends.mysql:MySQLBackend",
    "mariadb": "bulkframe.backends.mysql:MySQLBackend",
}


@dataclass(frozen=True)
class Entry:
    """Where a scheme's backend class lives: ``value`` is ``module:Class``."""

    name: str
    value: str

    def load(self) -> type[Backend]:
        module, _, attr = self.value.partition(":")
        cls: type[Backend] = getattr(importlib.import_module(module), attr)
        return cls


def lookup(scheme: str) -> Entry | None:
    """The backend registered under ``scheme`` (lower case), or ``None``: a built-in one
    without reading package metadata, else an installed package's entry point."""
    if scheme in BUILT_IN:
        return Entry(scheme, BUILT_IN[scheme])
    return registered().get(scheme)


@functools.cache
def registered() -> dict[str, Entry]:
    """Scheme → backend of every installed backend: the built-in ones, then the installed
    packages' entry points (a built-in scheme keeps its built-in backend)."""
    from importlib.metadata import entry_points  # ~50 ms: not paid by opening a built-in URL

    found = {ep.name.lower(): Entry(ep.name.lower(), ep.value) for ep in entry_points(group=GROUP)}
    return {**found, **{scheme: Entry(scheme, value) for scheme, value in BUILT_IN.items()}}


def scheme_of(url: str) -> str:
    """``postgresql+psycopg://…`` → ``postgresql``."""
    if not isinstance(url, str) or "://" not in url:
        raise NotSupportedError(
            f"not a database URL: {url!r}; expected e.g. 'sqlite:///file.db' or "
            "'postgresql://user@host:5432/db'"
        )
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def load_backend(url: str) -> Backend:
    """Instantiate the backend that serves ``url``."""
    scheme = scheme_of(url)
    entry = lookup(scheme)
    if entry is None:
        raise NotSupportedError(
            f"no backend for URL scheme {scheme!r}; supported: {', '.join(sorted(registered()))}"
        )
    try:
        cls = entry.load()
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"the {scheme} backend ({entry.value}) cannot be imported: {exc}. "
            f"Install its driver (see the backends page of the docs)."
        ) from exc
    backend: Backend = cls(url)
    return backend
