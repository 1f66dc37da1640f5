"""Public docstrings document exactly the parameters their functions take.

For every public function, class and method of ``bulkframe`` and ``bulkframe.nodes`` (the
same set ``scripts/check_api_docs.py`` checks in the built site): each parameter named in
the numpy ``Parameters`` section exists in the signature and each parameter of the
signature is documented.  The operations (``bulk_*``, ``connect``, ``verify``) also list
what they raise.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from check_api_docs import PAGES, public_callables

_HEADER = re.compile(r"^(\w[\w ]*)\n-{3,}$", re.M)


def sections(doc: str) -> dict[str, str]:
    """``{section title: body}`` of a numpy docstring."""
    text = inspect.cleandoc(doc)
    heads = list(_HEADER.finditer(text))
    return {
        m.group(1): text[m.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        for i, m in enumerate(heads)
    }


def documented_parameters(doc: str) -> list[str]:
    """Names of the ``Parameters`` section (``a, b : int`` documents ``a`` and ``b``)."""
    body = sections(doc).get("Parameters", "")
    names: list[str] = []
    for line in body.splitlines():
        if not line.strip() or line.startswith((" ", "\t")):
            continue
        names.extend(n.strip().lstrip("*") for n in line.split(" : ")[0].split(","))
    return names


def signature_parameters(obj: Any) -> list[str]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return []
    return [
        p.name
        for p in sig.parameters.values()
        if p.name not in ("self", "cls") and p.kind is not p.VAR_KEYWORD and p.kind is not p.VAR_POSITIONAL
    ]


def _doc(obj: Any) -> str:
    if inspect.isclass(obj):
        init = obj.__dict__.get("__init__")
        parts = [obj.__doc__ or "", getattr(init, "__doc__", None) or ""]
        return "\n\n".join(inspect.cleandoc(p) for p in parts if p)
    return obj.__doc__ or ""


PUBLIC = [(path, obj) for module in PAGES for path, obj in public_callables(module)]


@pytest.mark.parametrize(("path", "obj"), PUBLIC, ids=[p for p, _ in PUBLIC])
def test_documented_parameters_match_the_signature(path: str, obj: Any) -> None:
    wanted = signature_parameters(obj)
    documented = documented_parameters(_doc(obj))
    unknown = [n for n in documented if n not in wanted]
    assert not unknown, f"{path} documents parameters it does not take: {unknown}"
    if dataclasses.is_dataclass(obj):
        return  # a dataclass's constructor parameters are its fields, documented as attributes
    undocumented = [n for n in wanted if n not in documented]
    assert not undocumented, f"{path} does not document {undocumented}"
    assert len(documented) == len(set(documented)), f"{path} documents a parameter twice"


RAISING = [
    "bulkframe.connect",
    "bulkframe.Database.bulk_create",
    "bulkframe.Database.bulk_update",
    "bulkframe.Database.bulk_upsert",
    "bulkframe.Database.bulk_delete",
    "bulkframe.Database.verify",
    "bulkframe.Database.create_table",
]


@pytest.mark.parametrize("path", RAISING)
def test_operations_list_what_they_raise(path: str) -> None:
    module, _, rest = path.partition(".")
    obj: Any = importlib.import_module(module)
    for part in rest.split("."):
        obj = getattr(obj, part)
    raises = sections(obj.__doc__ or "").get("Raises", "")
    names = [line.strip() for line in raises.splitlines() if line.strip() and not line.startswith(" ")]
    assert names, f"{path} has no Raises section"
    import bulkframe.errors as errors
    import bulkframe.ops.verify as verify

    for name in names:
        cls = getattr(errors, name, None) or getattr(verify, name, None)
        assert isinstance(cls, type) and issubclass(cls, errors.BulkframeError), (
            f"{path}: {name} is not a bulkframe error"
        )
    assert "OptionError" in names or path.endswith(("verify", "create_table")), path


def test_the_parser_reads_numpy_sections() -> None:
    doc = """Summary.

    Parameters
    ----------
    a, b : int
        Two.
    c
        Three.

    Raises
    ------
    OptionError
        Unknown.
    """
    assert documented_parameters(doc) == ["a", "b", "c"]
    assert "OptionError" in sections(doc)["Raises"]
