"""Check the built site's API reference: every public function of ``bulkframe`` and
``bulkframe.nodes`` is listed with each of its parameters.

    mkdocs build --strict && python scripts/check_api_docs.py [--site site]

"Public" is what the package exports (``__all__``): its functions, its classes (with
their constructor parameters) and every public method those classes define.  For each,
the page must hold a heading whose id is the object's path (``bulkframe.Database.bulk_create``)
followed by a signature block that names every parameter ``inspect.signature`` reports.
Exit status 1, listing what is missing, otherwise 0.
"""

from __future__ import annotations

import argparse
import html
import importlib
import inspect
import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"bulkframe": "api/bulkframe/index.html", "bulkframe.nodes": "api/nodes/index.html"}
SKIP = {"errors", "__version__"}  # a module (its own page) and a string


def public_callables(module_name: str) -> Iterator[tuple[str, object]]:
    """``(documented path, object)`` for every exported function, class and public method."""
    module = importlib.import_module(module_name)
    for name in module.__all__:
        if name in SKIP:
            continue
        obj = getattr(module, name)
        path = f"{module_name}.{name}"
        if inspect.isclass(obj):
            yield path, obj
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if inspect.isfunction(member):
                    yield f"{path}.{attr}", member
        elif callable(obj):
            yield path, obj


def parameters(obj: object) -> list[str]:
    try:
        signature = inspect.signature(obj)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return []
    return [p for p in signature.parameters if p not in ("self", "cls")]


def signature_text(page: str, path: str) -> str | None:
    """The plain text of the signature block under the heading ``id=path``, or None."""
    heading = re.search(rf'<h\d id="{re.escape(path)}"', page)
    if heading is None:
        return None
    rest = page[heading.end() :]
    next_heading = re.search(r"<h\d id=", rest)
    section = rest[: next_heading.start()] if next_heading else rest
    block = re.search(r'<div class="doc-signature[^"]*">(.*?)</div>', section, re.S)
    if block is None:
        return ""
    return html.unescape(re.sub(r"<[^>]+>", "", block.group(1)))


def check(site: Path) -> list[str]:
    sys.path.insert(0, str(ROOT / "src"))
    problems: list[str] = []
    checked = 0
    for module_name, page_path in PAGES.items():
        page_file = site / page_path
        if not page_file.exists():
            problems.append(f"{page_file} is missing (build the site first)")
            continue
        page = page_file.read_text()
        for path, obj in public_callables(module_name):
            checked += 1
            text = signature_text(page, path)
            if text is None:
                problems.append(f"{page_path}: {path} is not listed")
                continue
            wanted = parameters(obj)
            missing = [p for p in wanted if not re.search(rf"(?<![\w]){re.escape(p)}(?![\w])", text)]
            if wanted and text == "":
                problems.append(f"{page_path}: {path} has no signature block")
            elif missing:
                problems.append(f"{page_path}: {path} signature lacks parameter(s) {missing}")
    if checked == 0:
        problems.append("no public callables found")
    print(f"checked {checked} public functions, classes and methods of {', '.join(PAGES)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "site")
    args = parser.parse_args(argv)
    problems = check(args.site)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
