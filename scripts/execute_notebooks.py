"""Execute the notebooks in ``notebooks/`` and save them with their outputs.

    python scripts/execute_notebooks.py [notebooks/01-quickstart.ipynb ...]

The docs site renders the notebooks from these saved outputs (mkdocs-jupyter with
``execute: false``), so building the site needs no kernel and no database.  Each
notebook runs in a fresh temporary directory with nbclient, against the embedded SQLite
default only: a notebook whose code names PostgreSQL is refused, unless its metadata
declares the service (``"bulkframe": {"services": ["postgresql"]}``); such a notebook
reads its URL from ``BULKFRAME_NOTEBOOK_POSTGRES_URL``, which this script sets (from
``--postgres-url``, else ``$BULKFRAME_TEST_POSTGRES_URL``, else the local default).  Widget state is saved,
so the progress bar shows as the notebook widget.  The test suite
(``tests/unit/test_package.py``) executes the notebooks again and fails when the saved
outputs no longer match what the code produces.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
URL_ENV = "BULKFRAME_NOTEBOOK_POSTGRES_URL"
DEFAULT_POSTGRES = "postgresql://root@127.0.0.1:5432/test"
log = logging.getLogger("execute_notebooks")


def execute(path: Path, timeout: int = 600) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    services = nb.metadata.get("bulkframe", {}).get("services", [])
    if "postgres" in code.lower() and "postgresql" not in services:
        raise SystemExit(
            f"{path}: the docs notebooks run against SQLite only (found 'postgres'); a notebook that needs "
            'PostgreSQL declares it in its metadata: "bulkframe": {"services": ["postgresql"]}'
        )
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
    parser.add_argument(
        "--postgres-url", default=None, help=f"for notebooks that need PostgreSQL (sets {URL_ENV})"
    )
    args = parser.parse_args(argv)
    os.environ[URL_ENV] = (
        args.postgres_url
        or os.environ.get(URL_ENV)
        or os.environ.get("BULKFRAME_TEST_POSTGRES_URL")
        or DEFAULT_POSTGRES
    )
    for path in args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")):
        execute(path.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
