"""The text a database that stores JSON parsed prints for a document (PostgreSQL ``jsonb``):
``{"key": value, …}`` with one space after ``:`` and ``,``, keys ordered by byte length,
then by bytes, each key once.

:func:`sorted_object_text` computes it for the documents whose printed form is certain
from their text alone — one flat object whose keys and string values hold no escape, no
quote and no control character, and whose other values are integers (no fraction, no
exponent, no ``-0``), ``true``, ``false`` or ``null``, each key once — and gives null for
every other document (nested values, escapes, fractions, repeated keys: the database
decides those).  Change detection compares the result with the stored text
(:mod:`bulkframe.ops.change_filter`): equal texts mean equal documents.
"""

from __future__ import annotations

import pyarrow as pa

_WS = r"[ \t\n\r]*"
_STRING = r'"[^"\\\x00-\x1f]*"'
_VALUE = rf"(?:{_STRING}|0|-?[1-9][0-9]*|true|false|null)"
_PAIR = rf"{_STRING}{_WS}:{_WS}{_VALUE}"
_OBJECT = rf"^{_WS}\{{{_WS}(?:{_PAIR}(?:{_WS},{_WS}{_PAIR})*)?{_WS}\}}{_WS}$"


def sorted_object_text(texts: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
    """Each document's printed text (see the module doc), or null; one per input value.
    Works on the distinct documents only (JSON columns repeat a lot)."""
    import polars as pl

    series = pl.Series("t", texts).cast(pl.String)
    distinct = pl.DataFrame({"t": series.unique()}).filter(pl.col("t").str.contains(_OBJECT))
    pairs = (
        distinct.with_row_index("__i")
        .select("__i", "t", p=pl.col("t").str.extract_all(_PAIR))
        .explode("p", empty_as_null=True)  # an empty object stays, as one null pair
        .with_columns(
            k=pl.col("p").str.extract(r'^"([^"]*)"'),
            v=pl.col("p").str.extract(rf'^"[^"]*"{_WS}:{_WS}(.*)$'),  # the key may hold a colon
        )
    )
    printed = (
        pairs.sort("__i", pl.col("k").str.len_bytes(), "k")
        .group_by("__i", maintain_order=True)
        .agg(
            pl.first("t"),
            body=pl.format('"{}": {}', "k", "v").drop_nulls().str.join(", "),
            n=pl.col("k").count(),
            once=pl.col("k").n_unique() == pl.col("k").count(),  # null (an empty object) counts once
        )
        .filter(pl.col("once") | (pl.col("n") == 0))
        .select("t", printed=pl.concat_str(pl.lit("{"), pl.col("body").fill_null(""), pl.lit("}")))
    )
    out = pl.DataFrame({"t": series}).join(printed, on="t", how="left", maintain_order="left")
    return pa.chunked_array([out["printed"].to_arrow().cast(pa.large_string())], pa.large_string())
