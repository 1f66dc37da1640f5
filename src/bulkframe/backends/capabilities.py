"""What a backend can do, declared as data.  Code branches on these, never on names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Capabilities:
    """Declared abilities of one database backend.

    Shared code reads these fields; it never asks which database it talks to.  Every field
    is read somewhere (``tests/unit/test_boundary.py`` checks it): a difference between
    databases that shared code must know is a field here, a difference in how something is
    done is a hook on :class:`~bulkframe.backends.base.Backend`.  Every backend supports
    session-private temporary tables; reading back the rows a statement changed goes
    through :meth:`Backend.modify_returning` (``… RETURNING`` unless overridden).
    """

    #: Upsert statement flavour: ``"on_conflict"`` (``INSERT … ON CONFLICT``, built by
    #: :meth:`Backend.upsert_insert`), ``"backend"`` (the backend merges a staging table
    #: itself, with exact counts: :meth:`Backend.merge_stage`) or ``None`` (no native
    #: upsert: upserts are refused).
    upsert: str | None
    #: Several connections may write the same table concurrently (``parallel_batches``);
    #: without it ids are allocated as ``max + 1`` inside the write transaction.
    concurrent_writers: bool
    #: The filter operator ``$regex`` compiles to a regular-expression match the database
    #: runs (``~`` on PostgreSQL); without it ``$regex`` is refused with
    #: ``NotSupportedError`` before anything runs.
    regex: bool
    #: How the number of rows one ``INSERT/UPDATE/DELETE`` changed is read (the DBAPI
    #: ``execute`` of ADBC reports no rowcount): ``"execute_update"`` — the driver's
    #: ``AdbcStatement.execute_update`` returns it; ``"cte"`` wraps the statement as
    #: ``WITH m AS (… RETURNING 1) SELECT count(*) FROM m``; ``"rowcount"`` — the DBAPI
    #: cursor's ``rowcount`` after ``execute`` (rows matched, not only rows changed).
    modified_count: str = "cte"
    #: ``SELECT … ORDER BY key FOR UPDATE`` exists: updates that must not deadlock with
    #: concurrent runs (``atomic_ops``) lock their target rows in key order first.  Without
    #: it the backend serializes writers itself (:meth:`Backend.begin_write`).
    select_for_update: bool = True
    #: An upsert may stage each batch into a shared ``UNLOGGED`` table on a second connection
    #: while the writing transaction merges the batch before it
    #: (:class:`~bulkframe.ops.upsert_window.PipelinedWindow`): the server copies and merges
    #: at the same time.  Needs committed tables of one session to be visible to another's
    #: open READ COMMITTED transaction, and DDL that does not commit the writer's work.
    pipelined_stages: bool = False
    #: Run ``ANALYZE`` on a filled staging table before joining it: temp tables have no
    #: statistics, and PostgreSQL then guesses ~200 distinct keys and picks nested loops
    #: for ``EXISTS``/``IN`` semi-joins (measured 2x slower at 500k ids).
    analyze_stage: bool = False
    #: ``CREATE INDEX`` takes the schema on the index name and the table bare
    #: (``CREATE INDEX s.ix ON t (…)``, SQLite) rather than on the table
    #: (``CREATE INDEX ix ON s.t (…)``, the SQL standard and PostgreSQL).
    schema_on_index_name: bool = False
    #: ``SAVEPOINT`` / ``ROLLBACK TO SAVEPOINT`` exist.  Without them a delete by a long id
    #: list lists the ids that match no row before deleting, instead of deleting first and
    #: rolling back to a savepoint when fewer rows went than ids were given.
    savepoints: bool = True
    #: ``ON CONFLICT … DO UPDATE SET`` may hold a subquery: an upsert whose update columns
    #: are not all inserted (``update_fields`` outside ``insert_fields``) reads them from the
    #: stage by key in that one statement.  Without it such an upsert runs as two statements
    #: in the same transaction: ``UPDATE … FROM`` the stage, then ``INSERT`` the new keys.
    upsert_set_subquery: bool = True
    #: User triggers can be switched off for a load inside its transaction
    #: (``disable_triggers``, :meth:`Backend.set_user_triggers`); without it (DuckDB: no
    #: triggers; MySQL: no switch, and DROP TRIGGER would commit) ``disable_triggers=True``
    #: is refused with ``NotSupportedError`` before anything runs.
    triggers: bool = True
    #: A row can be deleted in the transaction that deleted the rows referencing it through a
    #: declared foreign key.  Without it (DuckDB checks foreign keys against the rows as they
    #: were when the transaction began) a hard cascading delete along a declared foreign key
    #: is refused with ``NotSupportedError`` before anything is deleted.
    delete_after_children: bool = True
    #: ``INSERT … ON CONFLICT DO NOTHING`` applies the statement's rows in order, so of two
    #: rows that collide with each other the first is kept.  Without it (DuckDB keeps an
    #: arbitrary one) a skip on any unique constraint whose rows collide with each other is
    #: refused with ``NotSupportedError`` naming the columns, before anything is written.
    conflicts_in_order: bool = True
    #: One query's rows arrive as a stream of batches of one stable Arrow type (ADBC
    #: PostgreSQL reads through ``COPY``), so a streamed read is one query.  Without it the
    #: driver types a result from its first batch (ADBC SQLite), and streamed reads page
    #: through the table instead, one query per batch (by key when it has one).
    streamed_reads: bool = True
    #: ``NOTIFY channel, payload`` exists (:meth:`Backend.notify`): with
    #: ``publish_events`` and no ``event_sink``, events go out inside the writing
    #: transaction and are delivered exactly when it commits.  Without it a sink is needed.
    notify: bool = False
    #: ``FULL OUTER JOIN`` exists: ``db.verify`` of two tables in the same database
    #: compares them with one join statement that returns only the rows that differ
    #: (without it, by key-range hashes as across databases).
    full_outer_join: bool = False
    #: The server parses a CSV/text file itself (``COPY … FROM STDIN`` with its format
    #: options): :meth:`~bulkframe.backends.base.Backend.copy_text_file`.
    copy_text: bool = False
    #: A session's temporary table may appear more than once in one statement (as scalar
    #: subqueries, one per column).  Without it (MySQL: "Can't reopen table") a statement
    #: joins the staging table once instead (``UPDATE target, stage SET …``).
    reopen_temporary: bool = True
    #: ``CREATE TABLE`` is part of the enclosing transaction (a rollback undoes it).
    #: Without it (MySQL commits implicitly before DDL) a table that a failed call created
    #: is dropped again, and the DDL runs before the rows' transaction starts.
    transactional_ddl: bool = True
    #: Column kinds a change-detecting upsert may compare on the client before staging
    #: (:mod:`bulkframe.ops.change_filter`): a stored value read back (``read_column``,
    #: ``read_cast``, where :meth:`Backend.exact_read_guard` allows) is one stored value
    #: exactly, and an incoming value equal to it (floats: the same bits) is staged as that
    #: stored value, so the database's own comparison (:meth:`Backend.distinct`) finds no
    #: difference either.  A compared column of another kind turns the pre-filter off for
    #: the call: every row goes through the SQL comparison, as before.
    client_compare_kinds: frozenset[str] = frozenset()
    #: ``bulk_create``'s load options (:class:`~bulkframe.options.LoadOptions`) this backend
    #: gives a meaning (:meth:`Backend.begin_load`); any other set to a non-default value is
    #: refused by name.
    load_options: tuple[str, ...] = ()
