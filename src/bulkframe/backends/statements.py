"""Set-based statements shared by every backend, built with SQLAlchemy Core.

One statement per batch, never one per row.  Which variant is built depends on the
backend's declared capabilities only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from bulkframe.backends.connection import Connection


def count_modified(conn: Connection, stmt: Any) -> int:
    """Run an ``INSERT/UPDATE/DELETE`` (without ``RETURNING``) and return how many rows it
    changed, exactly (the DBAPI ``execute`` of ADBC reports no rowcount), as the backend's
    capabilities allow."""
    how = conn.backend.capabilities.modified_count
    if how == "execute_update":
        return _execute_update(conn, stmt)
    cte = stmt.returning(sa.literal_column("1")).cte("bf_modified")
    return int(conn.fetchall(sa.select(sa.func.count()).select_from(cte))[0][0])


def _execute_update(conn: Connection, stmt: Any) -> int:
    """ADBC's ``execute_update`` returns the rows affected (``executemany`` with one
    parameter row when the statement has parameters)."""
    from bulkframe.backends.connection import compile_sql

    sql, params = compile_sql(stmt, conn.backend.dialect)
    logging.getLogger("bulkframe.sql").debug("SQL %s | %d params", sql, len(params))
    cur = conn.raw.cursor()
    try:
        if params:
            cur.executemany(sql, [params])
            return int(cur.rowcount)
        cur.adbc_statement.set_sql_query(sql)
        return int(cur.adbc_statement.execute_update())
    except Exception as exc:
        raise conn.failure(exc, sql) from exc
    finally:
        cur.close()


def incoming_values(
    excluded: Any,
    stage: sa.Table,
    inserted: Sequence[str],
    staged: Sequence[str],
    keys: Sequence[str],
    quote: Callable[[str], str],
    stage_where: sa.ColumnElement[bool] | None = None,
) -> dict[str, Any]:
    """The incoming row's value per column: ``excluded.c`` for inserted columns, a keyed
    lookup into the stage for columns that are updated but not inserted."""
    out: dict[str, Any] = {c: excluded[c] for c in inserted}
    # SQLAlchemy does not correlate ``excluded`` into a subquery; name it literally
    # (identifiers quoted by the dialect, no values involved)
    hit = sa.and_(
        *(stage.c[k] == sa.literal_column(f"excluded.{quote(k)}") for k in keys),
        stage_where if stage_where is not None else sa.true(),
    )
    for c in staged:
        if c not in out:
            out[c] = sa.select(stage.c[c]).where(hit).scalar_subquery()
    return out
