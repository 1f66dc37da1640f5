"""Execute the notebooks in ``notebooks/`` and save them with their outputs.

    python scripts/execute_notebooks.py [notebooks/01-quickstart.ipynb ...]

The docs site renders the notebooks from these saved outputs (mkdocs-jupyter with
``execute: false``), so building the site needs no kernel and no database.  Each
notebook runs in a fresh temporary directory with nbclient, against the embedded SQLite
default only: a notebook whose code names PostgreSQL is refused.  Widget state is saved,
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


def execute(path: Path, timeout: int = 600) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    code = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    if "postgres" in code.lower():
        raise SystemExit(f"{path}: the docs notebooks run against SQLite only (found 'postgres')")
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
    args = parser.parse_args(argv)
    for path in args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")):
        execute(path.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
