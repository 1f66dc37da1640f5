"""The batch contract between the pipeline's stages.

The rules stage (:mod:`bulkframe.rules.prepare`) turns each input chunk into a
:class:`Prepared` batch: accepted rows in the target's types, their input positions and
the report of rejected rows.  The executor (:mod:`bulkframe.plan.executor`) hands the
accepted rows to an operation's :class:`Writer` inside a transaction, and the writer says
what it did as :class:`Counts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import polars as pl
import pyarrow as pa

if TYPE_CHECKING:
    from bulkframe.backends.connection import Connection


@dataclass(frozen=True)
class Prepared:
    """A chunk ready to write.

    ``table`` holds the accepted rows in the target's logical types; ``positions`` their
    input positions; ``rejected`` the report rows (or ``None``).
    """

    offset: int
    rows: int
    table: pa.Table
    positions: pa.Array
    raw: pa.Table
    raw_index: pa.Array
    rejected: pl.DataFrame | None
    #: batch number in the input (``offset // batch_size``), for the ledger
    index: int = 0
    #: fingerprint of the input rows (set when a ledger is kept)
    fingerprint: str = ""
    #: inclusive input-position ranges already committed by an earlier run (resume)
    exclude: list[tuple[int, int]] = field(default_factory=list)

    @property
    def rejected_count(self) -> int:
        return 0 if self.rejected is None else self.rejected.height


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    skipped: int = 0
    deleted: int = 0
    #: input rows whose key repeated inside their batch (already counted above)
    deduplicated: int = 0

    def add(self, other: Counts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.skipped += other.skipped
        self.deleted += other.deleted
        self.deduplicated += other.deduplicated

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.skipped + self.deleted


class Writer(Protocol):
    """What an operation gives the executor: write accepted rows inside a transaction."""

    def __call__(self, conn: Connection, table: pa.Table) -> Counts: ...

    def reset(self) -> None:
        """Forget per-transaction state (a rollback dropped the staging table)."""

    def finish(self, conn: Connection) -> Counts | None:
        """Clean up (drop staging tables) before the final commit.  A writer that merges a
        batch after its call returned (in one transaction) returns the last counts."""
