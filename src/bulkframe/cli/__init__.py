"""The ``bulkframe`` command line: ``load``, ``copy``, ``upsert``, ``update``, ``delete``,
``verify`` and ``demo`` (docs/cli.md lists every option).

Exit codes: 0 success, 1 failure (one line on stderr), 2 bad usage, 3 partial load (rows
rejected), 4 verification found differences, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence

from bulkframe.cli import config
from bulkframe.cli.parser import build

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    """The argument parser (also read by tests of the option vocabulary)."""
    return build()


def _urls(args: argparse.Namespace) -> list[str]:
    names = ("url", "source_url", "target_url", "source")
    found = [getattr(args, n, None) for n in names]
    found += [config.env_url(), config.env_url(config.ENV_SOURCE_URL)]
    return [u for u in found if isinstance(u, str) and "://" in u]


@contextlib.contextmanager
def _logging(verbose: int, urls: list[str]) -> Iterator[None]:
    """Logs of the ``bulkframe`` loggers go to stderr for the command's duration (warnings;
    ``-v`` info; ``-vv`` debug and SQL), every record with the URLs' passwords masked.
    The loggers' previous set-up is restored afterwards (``main`` may run in a process
    that logs on its own, such as a test run)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(config.MaskPasswords(urls))
    logger, sql = logging.getLogger("bulkframe"), logging.getLogger("bulkframe.sql")
    saved = (logger.handlers[:], logger.propagate, logger.level, sql.level)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(level)
    sql.setLevel(logging.DEBUG if verbose > 1 else logging.WARNING)
    try:
        yield
    finally:
        logger.handlers[:], logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
        sql.setLevel(saved[3])


class _WithoutPandas:
    """A meta-path finder that refuses ``pandas`` while it is installed.

    ``adbc_driver_manager.dbapi`` imports ``pyarrow.dataset``, whose module-level code asks
    PyArrow's pandas shim whether pandas exists, which imports pandas (and its numpy
    stack): about a third of the command's start-up, for a library no subcommand uses.
    Importing the driver manager with this finder in place skips that; pandas stays
    importable afterwards (the finder is removed at once)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("pandas is not imported by the bulkframe command line", name=name)


def _import_driver_manager() -> None:
    if "adbc_driver_manager.dbapi" in sys.modules:
        return
    finder = _WithoutPandas()
    sys.meta_path.insert(0, finder)
    try:
        import adbc_driver_manager.dbapi  # noqa: F401
    finally:
        sys.meta_path.remove(finder)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    parser = build()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        sys.stdout.write(f"bulkframe {version('bulkframe')}\n")
        return config.EXIT_OK
    if args.command is None:
        parser.print_help(sys.stderr)
        return config.EXIT_USAGE
    urls = _urls(args)
    with _logging(args.verbose, urls):
        return _run(args, urls)


def _run(args: argparse.Namespace, urls: list[str]) -> int:
    from bulkframe.cli.report import Output

    out = Output(as_json=args.json, quiet=args.quiet)
    try:
        if args.command in (
            "load",
            "upsert",
        ):  # straight into the server's parser when nothing needs the client
            from bulkframe.cli import direct

            code = direct.load(args, out)
            if code is not None:
                return code
        from bulkframe.cli.verbs import COMMANDS

        _import_driver_manager()
        return COMMANDS[args.command](args, out)
    except config.UsageError as exc:
        return out.error(config.mask_text(str(exc), urls), config.EXIT_USAGE)
    except KeyboardInterrupt:
        sys.stderr.write("bulkframe: interrupted; the running transaction was rolled back\n")
        return config.EXIT_INTERRUPTED
    except Exception as exc:
        return out.error(config.mask_text(_message(exc), urls), _failure_code(exc))


def _message(exc: BaseException) -> str:
    from bulkframe.cli.inputs import InputError
    from bulkframe.errors import BulkframeError

    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if isinstance(exc, BulkframeError | InputError) else f"{type(exc).__name__}: {first}"


def _failure_code(exc: BaseException) -> int:
    from bulkframe.cli.inputs import InputError
    from bulkframe.errors import BulkframeError, InvalidOptionValueError, OptionError

    if isinstance(exc, OptionError | InvalidOptionValueError):
        return config.EXIT_USAGE
    if not isinstance(exc, BulkframeError | InputError):  # not bulkframe's own: keep the trace for -vv
        logging.getLogger("bulkframe").debug("unexpected error", exc_info=exc)
    return config.EXIT_FAILED
