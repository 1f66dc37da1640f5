"""Package-level promises: cheap import, CLI exit codes, the notebook runs."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bulkframe.cli import main
from notebook_outputs import output_kinds

ROOT = Path(__file__).resolve().parents[2]


def test_import_is_cheap() -> None:
    code = (
        "import sys, bulkframe; heavy = [m for m in ('polars', 'pyarrow', 'sqlalchemy', "
        "'adbc_driver_manager', 'pandas') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_runtime_needs_no_numpy_or_pandas(tmp_path: Path) -> None:
    """Only the declared dependencies may be needed: a load works with numpy and pandas
    unimportable (pyarrow and polars do not require numpy)."""
    code = (
        "import sys; sys.modules['numpy'] = None; sys.modules['pandas'] = None\n"
        "import bulkframe as bf\n"
        f"db = bf.connect('sqlite:///{tmp_path / 'n.db'}')\n"
        "r = db.bulk_create('t', [{'id': i, 'x': i / 2} for i in range(1000)], primary_key='id', batch_size=300,"
        " validation_rules={'x': {'min': 0}}, verify_migration=True)\n"
        "assert r.success_count == 1000 and r.verification.ok, r\n"
        "assert db.read('t').height == 1000\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_cli_demo_and_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["demo", "--rows", "2500", "--url", url, "--batch-size", "1000"]) == 0
    out = capsys.readouterr().out
    assert "2,500 processed" in out and "rows/s" in out
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}), path)
    assert main(["load", str(path), "--url", url, "--table", "t", "--primary-key", "id"]) == 0
    assert main(["load", str(path), "--url", url, "--table", "t", "--conflict", "skip"]) == 0
    assert "0 inserted, 0 updated, 3 skipped" in capsys.readouterr().out


def test_cli_failure_is_one_line_and_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [1, 1]}), path)
    assert main(["load", str(path), "--url", url, "--table", "t", "--primary-key", "id"]) == 1
    err = capsys.readouterr().err  # the progress bar also writes to stderr, with \r
    last = err.rstrip("\n").split("\n")[-1].split("\r")[-1]
    assert last.startswith("bulkframe: error: ") and "UNIQUE" in last
    assert err.endswith("\n") and err.count("bulkframe: error") == 1
    assert main(["load", str(tmp_path / "missing.csv"), "--url", url, "--table", "t"]) == 1


def test_cli_entry_point_runs_as_a_process(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bulkframe.cli", "demo", "--rows", "100"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "bulkframe.db").exists()  # the embedded default


@pytest.mark.notebook
def test_quickstart_notebook_executes(tmp_path: Path) -> None:
    """The notebook runs; its saved outputs (which the docs site renders without running
    it) are what the code produces now; results show as HTML tables and the progress bar
    as the notebook widget."""
    import nbformat
    from nbclient import NotebookClient

    path = ROOT / "notebooks" / "01-quickstart.ipynb"
    saved = nbformat.read(path, as_version=4)
    nb = copy.deepcopy(saved)
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert (tmp_path / "bulkframe.db").exists()

    fresh_kinds = [output_kinds(cell) for cell in nb.cells]
    assert [output_kinds(cell) for cell in saved.cells] == fresh_kinds, (
        "the saved outputs of notebooks/01-quickstart.ipynb are stale: run python scripts/execute_notebooks.py"
    )
    assert all(cell.get("execution_count") for cell in saved.cells if cell.cell_type == "code")
    assert any("display_data:application/vnd.jupyter.widget-view+json" in kinds for kinds in fresh_kinds)
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert sum(h.startswith('<div class="bulkframe-result">') for h in html) == 3
    assert sum(h.startswith('<div class="bulkframe-verification">') for h in html) == 1
    rejected = next(h for h in html if "rejected rows" in h)
    assert "price=-5.0 is below min 0.01" in rejected and "name is required but is null" in rejected


@pytest.mark.notebook
def test_nodes_notebook_executes(tmp_path: Path) -> None:
    """The node-layer notebook runs on a fresh kernel: the spec's workflow imports every row,
    both result shapes agree, and the refused parameters' messages are shown; its saved
    outputs match what the code produces now."""
    import nbformat
    from nbclient import NotebookClient

    path = ROOT / "notebooks" / "02-nodes.ipynb"
    saved = nbformat.read(path, as_version=4)
    nb = copy.deepcopy(saved)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert not list(tmp_path.iterdir())  # in-memory: no database file written
    assert [output_kinds(cell) for cell in saved.cells] == [output_kinds(cell) for cell in nb.cells], (
        "the saved outputs of notebooks/02-nodes.ipynb are stale: run python scripts/execute_notebooks.py"
    )
    text = "\n".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "Imported 1000 products\nSuccess: 1000, Failed: 0" in text
    assert "'success': True" in text and "'processed': 1000" in text and "'skipped': 0" in text
    assert "(500, 9)" in text  # 500 electronics discounted, 9 rows with stock < 100 deleted
    assert "accepted at add_node: use_load_data, mysql_options" in text
    assert "cleanup_related=True, but Product declares no relationships" in text
    saved_text = "\n".join(
        o.get("text", "") for cell in saved.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    )
    assert "accepted at add_node: use_load_data, mysql_options" in saved_text


@pytest.mark.notebook
@pytest.mark.postgres
def test_verify_migration_notebook_executes(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SQLite → PostgreSQL verification notebook runs against the suite's PostgreSQL;
    its saved outputs match what the code produces now (the kinds of output per cell), and
    it shows the two-way report, the differing cells and the plot."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("BULKFRAME_NOTEBOOK_TARGET_URL", pg_url)
    path = ROOT / "notebooks" / "03-verify-migration.ipynb"
    saved = nbformat.read(path, as_version=4)
    nb = copy.deepcopy(saved)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert [output_kinds(cell) for cell in saved.cells] == [output_kinds(cell) for cell in nb.cells], (
        "the saved outputs of notebooks/03-verify-migration.ipynb are stale: run python scripts/execute_notebooks.py"
    )
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    reports = [h for h in html if h.startswith('<div class="bulkframe-verification">')]
    assert len(reports) == 2 and "— ok" in reports[0]
    assert (
        "Verification (two-way)" in reports[1] and "2 missing, 4 differing, 1 only in the table" in reports[1]
    )
    assert "differing rows per column" in reports[1]
    streams = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "'target': 'database'" in streams and "rule of three" in streams
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_notebook_runner_refuses_server_urls_in_code() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from execute_notebooks import server_url_in
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert server_url_in('bf.connect("sqlite:///legacy.db")') is None
    assert server_url_in('bf.connect(os.environ["BULKFRAME_NOTEBOOK_TARGET_URL"])') is None
    assert server_url_in('bf.connect("postgresql://root@db:5432/x")') == "postgresql://"
