"""What a backend can do, declared as data.  Code branches on these, never on names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Capabilities:
    """Declared abilities of one database backend."""

    #: Upsert statement flavour: ``"on_conflict"`` (PostgreSQL, SQLite),
    #: ``"on_duplicate_key"`` (MySQL) or ``None`` (no native upsert).
    upsert: str | None
    #: The server runs SQL ``MERGE`` (PostgreSQL 15+; set at connect time).
    merge: bool
    #: ``INSERT/UPDATE/DELETE … RETURNING`` is available.
    returning: bool
    #: Session-private temporary tables (staging) exist.
    temp_tables: bool
    #: Largest number of bind parameters one statement may carry.
    max_bind_params: int
    #: How rows reach the server: ``"adbc_ingest"`` (COPY / prepared bulk bind),
    #: ``"load_data"`` or ``"executemany"``.
    bulk_path: str
    #: DDL (CREATE TABLE) is rolled back with the transaction.
    transactional_ddl: bool
    #: Several connections may write the same table concurrently.
    concurrent_writers: bool
    #: Decimals above this precision are stored as exact text (SQLite: REAL keeps 15
    #: significant digits); ``None`` means the server has an exact decimal type.
    max_exact_decimal_precision: int | None
    #: ``UPDATE … FROM other_table`` joins are supported.
    update_from: bool
    #: Aggregate ``FILTER (WHERE …)`` clauses are supported.
    aggregate_filter: bool
    #: How upsert counts are made exact: ``"returning_xmax"`` (one statement reports
    #: inserted vs updated rows) or ``"pre_count"`` (count key matches first, inside the
    #: same write transaction).
    upsert_counts: str
