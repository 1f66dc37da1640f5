"""The Ray → PostgreSQL notebook runs against the suite's PostgreSQL, and its saved outputs
(which the docs site renders without running it) match what the code produces now."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
from scale_data import need

from notebook_outputs import output_kinds

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "04-ray-to-postgres.ipynb"


@pytest.mark.notebook
@pytest.mark.heavy  # a local Ray instance inside a kernel: ~70 s on the loaded 2-core machine
def test_ray_to_postgres_notebook_executes(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need("ray.data")
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("BULKFRAME_NOTEBOOK_TARGET_URL", pg_url)
    saved = nbformat.read(NOTEBOOK, as_version=4)
    nb = copy.deepcopy(saved)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert [output_kinds(c) for c in saved.cells] == [output_kinds(c) for c in nb.cells], (
        "the saved outputs of notebooks/04-ray-to-postgres.ipynb are stale: run python scripts/execute_notebooks.py "
        "notebooks/04-ray-to-postgres.ipynb"
    )
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    created, upserted = (h for h in html if h.startswith('<div class="bulkframe-result">'))
    assert "199,995" in created and "5 rejected" in created and "quantity=0 is below min 1" in created
    assert "inserted" in upserted and "updated" in upserted
    text = "".join(o.get("text", "") for o in outputs)
    assert "199997 rows" in text
    assert os.environ.get("BULKFRAME_NOTEBOOK_TARGET_URL") == pg_url
