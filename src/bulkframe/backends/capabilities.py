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
    #: How the number of rows one ``INSERT/UPDATE/DELETE`` changed is read (the DBAPI
    #: ``execute`` of ADBC reports no rowcount): ``"execute_update"`` — the driver's
    #: ``AdbcStatement.execute_update`` returns it; ``"cte"`` wraps the statement as
    #: ``WITH m AS (… RETURNING 1) SELECT count(*) FROM m``; ``"changes"`` runs it, then
    #: ``SELECT changes()`` (SQLite).
    modified_count: str = "cte"
    #: ``SELECT … ORDER BY key FOR UPDATE`` exists: updates that must not deadlock with
    #: concurrent runs (``atomic_ops``) lock their target rows in key order first.  Without
    #: it the backend serializes writers itself (:meth:`Backend.begin_write`).
    select_for_update: bool = True
    #: Run ``ANALYZE`` on a filled staging table before joining it: temp tables have no
    #: statistics, and PostgreSQL then guesses ~200 distinct keys and picks nested loops
    #: for ``EXISTS``/``IN`` semi-joins (measured 2x slower at 500k ids).
    analyze_stage: bool = False
    #: Integer arithmetic in SQL that overflows 64 bits is an error (PostgreSQL).  SQLite
    #: instead turns the result into a REAL; writes then guard integer columns themselves.
    integer_overflow_is_error: bool = True
