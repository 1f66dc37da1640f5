"""Execute the notebooks in ``notebooks/`` and save them with their outputs.

    python scripts/execute_notebooks.py [notebooks/01-quickstart.ipynb ...]

The docs site renders the notebooks from these saved outputs (mkdocs-jupyter with
``execute: false``), so building the site needs no kernel and no database.  Each
notebook runs in a fresh temporary directory with nbclient, against the embedded SQLite
default; a notebook that needs a server database reads its URL from the environment
variable ``BULKFRAME_NOTEBOOK_TARGET_URL`` (set here from ``--target-url``, else
``$BULKFRAME_TEST_POSTGRES_URL``, else the local test server).  A notebook whose code
holds a server URL itself is refused: saved outputs must not depend on one machine.  Widget state is saved,
so the progress bar shows as the notebook widget.  The test suite
(``tests/unit/test_package.py``) executes the notebooks again and fails when the saved
outputs no longer match what the code produces.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("execute_notebooks")


#: The environment variable a notebook reads its server database's URL from.
TARGET_ENV = "BULKFRAME_NOTEBOOK_TARGET_URL"
DEFAULT_TARGET = "postgresql://root@127.0.0.1:5432/test"


def server_url_in(code: str) -> str | None:
    """A database-server URL written into notebook code (only ``sqlite:`` URLs may be)."""
    import re

    match = re.search(r"\b(?!sqlite)[a-z][a-z0-9+]*://", code)
    return match.group(0) if match else None


def execute(path: Path, timeout: int = 600, target_url: str | None = None) -> None:
    import os

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    found = server_url_in(code)
    if found:
        raise SystemExit(f"{path}: read server URLs from ${TARGET_ENV}, not from the code (found {found!r})")
    os.environ[TARGET_ENV] = target_url or os.environ.get("BULKFRAME_TEST_POSTGRES_URL") or DEFAULT_TARGET
    with tempfile.TemporaryDirectory(prefix="bulkframe-nb-") as workdir:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            record_timing=False,
            store_widget_state=True,
            resources={"metadata": {"path": workdir}},
        )
        client.execute()
    errors = [
        o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"
    ]
    if errors:
        raise SystemExit(f"{path}: a cell failed: {errors[0].ename}: {errors[0].evalue}")
    _, nb = nbformat.validator.normalize(nb)
    nbformat.validate(nb)
    nbformat.write(nbformat.from_dict(nb), path)
    log.info("executed %s", path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--target-url", help=f"the server database notebooks read from ${TARGET_ENV}")
    args = parser.parse_args(argv)
    for path in args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")):
        execute(path.resolve(), target_url=args.target_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
