"""``docs/spec-parameters.md`` stays true: every parameter of every ``add_node`` call in the
spec is listed under its node with the status the code gives it, and the code behaves as
that status says (the spec's own literal values are used where it has them)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from spec_blocks import add_node_calls, blocks

from bulkframe.errors import BulkframeError, InvalidOptionValueError, NotSupportedError, OptionError
from bulkframe.nodes.params import NODE_SUFFIX, NOT_SUPPORTED_VALUES, register_callback, status, translate

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec-parameters.md"


def _op(node_type: str) -> Any:
    return next(op for op, suffix in NODE_SUFFIX.items() if node_type.endswith(suffix))


def spec_parameters() -> dict[tuple[str, str], list[Any]]:
    """``(operation, parameter)`` → the literal values the spec gives it (may be empty)."""
    out: dict[tuple[str, str], list[Any]] = {}
    for block in blocks():
        for call in add_node_calls(block.code):
            for key in call.keys:
                values = out.setdefault((_op(call.node_type), key), [])
                if key in call.values:
                    values.append(call.values[key])
    return out


def doc_table(column: int = 2) -> dict[tuple[str, str], str]:
    """``(operation, parameter)`` → the doc's status (``column=2``) or note (``column=3``)."""
    table: dict[tuple[str, str], str] = {}
    op = None
    for line in DOC.read_text().splitlines():
        heading = re.match(r"^## (\w+)$", line)
        if heading:
            op = _op(heading.group(1))
            continue
        row = re.match(r"^\| `([^`]+)` \| ([^|]+?) \| (.*) \|$", line)
        if row and op is not None:
            assert (op, row.group(1)) not in table, f"listed twice: {row.group(1)}"
            table[(op, row.group(1))] = row.group(column)
    return table


SPEC = spec_parameters()


def test_spec_has_the_parameters_we_expect() -> None:
    assert len(SPEC) > 100 and ("create", "use_copy") in SPEC and ("delete", "cleanup_files") in SPEC


def test_doc_lists_every_spec_parameter_with_the_codes_status() -> None:
    table = doc_table()
    missing = sorted(set(SPEC) - set(table))
    assert not missing, f"docs/spec-parameters.md misses {missing}"
    extra = sorted(set(table) - set(SPEC))
    assert not extra, f"docs/spec-parameters.md lists parameters the spec does not have: {extra}"
    wrong = {k: (table[k], status(*k)[0]) for k in SPEC if table[k] != status(*k)[0]}  # type: ignore[arg-type]
    assert not wrong, f"doc status != code status (doc, code): {wrong}"


def test_doc_notes_start_with_the_declared_note() -> None:
    """A row's note is derived from the code (allowed values and docstring of the option in
    ``bulkframe.options``, or the node table's note); hand-written text may only follow it.
    Regenerate with ``python tests/nodes/regen_spec_parameters.py``."""
    notes = doc_table(column=3)
    wrong = {k: (notes[k], status(*k)[1]) for k in SPEC if not notes[k].startswith(status(*k)[1])}  # type: ignore[arg-type]
    assert not wrong, f"doc note does not start with the code's note (doc, code): {wrong}"


def test_every_node_table_row_maps_to_something() -> None:
    """The node layer's own table holds only spec parameters the library does not declare
    (a row naming a library option would be dead: the option wins), renames point at
    library options, and refused values are values the option's Literal does not allow."""
    import typing

    from bulkframe.nodes.params import NODE_PARAMS, _hints, library_params

    for op, rows in NODE_PARAMS.items():
        lib = library_params(op)
        for name, entry in rows.items():
            assert (op, name) in SPEC, f"{op}: {name!r} is not a spec parameter of that node"
            if entry.kind in ("accept", "not_supported"):
                assert name not in lib, f"{op}: {name!r} is a library option; remove its row"
            if entry.kind == "rename":
                assert entry.target in lib, f"{op}: {name!r} renames to unknown {entry.target!r}"
    for (op, name), refused in NOT_SUPPORTED_VALUES.items():
        assert name in library_params(op), (op, name)
        allowed = typing.get_args(_hints(op)[name])
        assert not set(refused) & set(allowed), (op, name)


def test_doc_summary_counts() -> None:
    statuses = [status(*k)[0] for k in SPEC]  # type: ignore[arg-type]
    works = statuses.count("works")
    accepted = sum(s.startswith("accepted only") for s in statuses)
    missing = statuses.count("not supported yet")
    assert works + accepted + missing == len(SPEC)
    expected = (
        f"Summary: {len(SPEC)} spec parameters (by node): {works} work, {accepted} accepted only "
        f"with one value, {missing} not supported yet."
    )
    assert expected in DOC.read_text()


@pytest.mark.parametrize("key", sorted(SPEC), ids=[f"{o}-{p}" for o, p in sorted(SPEC)])
def test_parameter_behaves_as_its_status_says(key: tuple[str, str]) -> None:
    op, name = key
    st, _note = status(op, name)  # type: ignore[arg-type]
    register_callback("handle_failed_records", lambda rejected: None)
    values = SPEC[key] or [None]
    for value in values:
        refused_value = isinstance(value, str) and value in NOT_SUPPORTED_VALUES.get(key, {})  # type: ignore[call-overload]
        if st == "not supported yet" or refused_value:
            with pytest.raises(NotSupportedError, match=re.escape(name)):
                translate(op, {name: value}, where="node")  # type: ignore[arg-type]
        elif st.startswith("accepted only"):
            translate(op, {name: value}, where="node")  # type: ignore[arg-type]  # the spec's value is the one
            with pytest.raises(InvalidOptionValueError, match=re.escape(name)):
                translate(op, {name: object()}, where="node")  # type: ignore[arg-type]
        else:
            assert st == "works"
            try:
                translate(op, {name: value}, where="node")  # type: ignore[arg-type]
            except (NotSupportedError, OptionError) as exc:  # pragma: no cover - the failure message
                pytest.fail(f"{name}={value!r} is documented as working but refused: {exc}")


def test_typo_suggests_the_closest_name() -> None:
    with pytest.raises(OptionError, match=r"'unique_field' \(did you mean 'unique_fields'\?\)"):
        translate("upsert", {"unique_field": ["a"]}, where="ProductBulkUpsertNode")
    with pytest.raises(BulkframeError):
        translate("delete", {"hard_delet": True}, where="ProductBulkDeleteNode")


def test_a_new_library_option_is_a_node_parameter_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node layer reads the library's signatures: an option added there (here a fake
    ``parallel_batches``-like spec parameter) flips from "not supported yet" to "works"."""
    import inspect

    from bulkframe.database import Database
    from bulkframe.nodes import params

    if status("upsert", "sync_mode")[0] != "not supported yet":
        pytest.skip("every spec parameter is built: none is left to flip from 'not supported yet'")
    assert status("upsert", "sync_mode")[0] == "not supported yet"
    original = Database.bulk_upsert

    def bulk_upsert(self, table, data, /, *, sync_mode: bool = False, **kwargs):  # type: ignore[no-untyped-def]
        return original(self, table, data, **kwargs)

    sig = inspect.signature(original)
    extra = inspect.Parameter("sync_mode", inspect.Parameter.KEYWORD_ONLY, default=False)
    bulk_upsert.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[
            *[p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD],
            extra,
            *[p for p in sig.parameters.values() if p.kind is p.VAR_KEYWORD],
        ]
    )
    monkeypatch.setattr(Database, "bulk_upsert", bulk_upsert)
    params.library_params.cache_clear()
    try:
        assert status("upsert", "sync_mode")[0] == "works"
        assert translate("upsert", {"sync_mode": True}, where="n")[1] == {"sync_mode": True}
    finally:
        monkeypatch.undo()
        params.library_params.cache_clear()
    assert status("upsert", "sync_mode")[0] == "not supported yet"
