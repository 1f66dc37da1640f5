"""URL scheme → backend class, found through the ``bulkframe.backends`` entry-point group.

The built-in backends are registered there too (``pyproject.toml``), so a third-party
package adds a backend the same way::

    [project.entry-points."bulkframe.backends"]
    mydb = "bulkframe_mydb:MyDbBackend"

Entry points are read once and a backend's module is imported only when a URL with its
scheme is opened (no import-time self-registration).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from bulkframe.errors import MissingDependencyError, NotSupportedError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from bulkframe.backends.base import Backend

DEFAULT_URL = "sqlite:///bulkframe.db"
GROUP = "bulkframe.backends"


@functools.cache
def registered() -> dict[str, EntryPoint]:
    """Scheme → entry point of every installed backend."""
    from importlib.metadata import entry_points  # ~50 ms: not paid by `bulkframe --help`

    found = {ep.name.lower(): ep for ep in entry_points(group=GROUP)}
    if not found:  # pragma: no cover - only when bulkframe runs from a source tree, uninstalled
        raise MissingDependencyError(
            f"no bulkframe backends are registered (entry-point group {GROUP!r} is empty); "
            "install the package: pip install -e ."
        )
    return found


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
    backends = registered()
    try:
        entry = backends[scheme]
    except KeyError:
        raise NotSupportedError(
            f"no backend for URL scheme {scheme!r}; supported: {', '.join(sorted(backends))}"
        ) from None
    try:
        cls = entry.load()
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"the {scheme} backend ({entry.value}) cannot be imported: {exc}. "
            f"Install its driver (see the backends page of the docs)."
        ) from exc
    backend: Backend = cls(url)
    return backend
