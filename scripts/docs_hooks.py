"""MkDocs hooks (``hooks:`` in mkdocs.yml): pages generated from the code and the data.

* ``benchmarks.md``: ``<!-- generated:benchmark-plots -->`` becomes the plots of
  ``benchmarks/results/*.json`` (``scripts/plot_benchmarks.py``), each with the command,
  machine and date of its run; the PNGs are added to the site as generated files.
* ``backends.md``: ``<!-- generated:capabilities -->`` becomes the table of every
  backend's declared ``Capabilities``.

A marker that cannot be filled is an error, so ``mkdocs build --strict`` fails instead of
publishing a page with a hole.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
PLOTS_MARKER = "<!-- generated:benchmark-plots -->"
CAPABILITIES_MARKER = "<!-- generated:capabilities -->"

# Document this checkout's code, even when another copy of bulkframe is installed.
sys.path[:] = [str(ROOT / "src"), *(p for p in sys.path if p != str(ROOT / "src"))]


def _plot_module() -> Any:
    spec = importlib.util.spec_from_file_location("plot_benchmarks", ROOT / "scripts" / "plot_benchmarks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


_generated: dict[str, str] = {}


def on_files(files: Files, config: Any) -> Files:
    plot = _plot_module()
    plots, results = plot.render()
    if not plots:
        raise PluginError(f"no benchmark results to plot in {plot.RESULTS}")
    for item in plots:
        files.append(File.generated(config, f"{plot.IMAGE_DIR}/{item.name}", content=item.png))
    _generated[PLOTS_MARKER] = plot.markdown(plots, results)
    _generated[CAPABILITIES_MARKER] = capabilities_table()
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    for marker, text in _generated.items():
        if marker in markdown:
            markdown = markdown.replace(marker, text)
    if "<!-- generated:" in markdown:
        raise PluginError(f"{page.file.src_uri}: a generated section has no generator")
    return markdown


def capabilities_table() -> str:
    """Capability × backend, with each capability's meaning from its ``#:`` comment."""
    from bulkframe.backends.capabilities import Capabilities

    backends: dict[str, Any] = {}  # every backend class in bulkframe.backends, by class name
    for source in sorted((ROOT / "src" / "bulkframe" / "backends").glob("*.py")):
        module = importlib.import_module(f"bulkframe.backends.{source.stem}")
        for name, obj in vars(module).items():
            caps = getattr(obj, "capabilities", None)
            if isinstance(obj, type) and obj.__module__ == module.__name__ and isinstance(caps, Capabilities):
                backends[name] = caps
    if not backends:
        raise PluginError("no backend classes with declared capabilities found")
    meanings = _field_comments(ROOT / "src" / "bulkframe" / "backends" / "capabilities.py")
    lines = [
        "| capability | meaning | " + " | ".join(f"`{n}`" for n in backends) + " |",
        "|---|---|" + "---|" * len(backends),
    ]
    for f in dataclasses.fields(Capabilities):
        meaning = meanings.get(f.name, "")
        values = " | ".join(f"`{getattr(caps, f.name)!r}`" for caps in backends.values())
        lines.append(f"| `{f.name}` | {meaning.replace('|', '&#124;')} | {values} |")
    return "\n".join(lines)


def _field_comments(path: Path) -> dict[str, str]:
    """``#:`` comments right above ``name: type`` lines (the Sphinx attribute-doc style)."""
    out: dict[str, str] = {}
    pending: list[str] = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        match = re.match(r"([A-Za-z_]\w*)\s*:", stripped)
        if match and pending:
            out[match.group(1)] = " ".join(pending)
        pending = []
    return out
