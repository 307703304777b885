"""The two statements of every turn, run on the database driver's own cursor.

Each message costs the tracker store a read (the conversation's newest event id) and a
write (its new events, then the newest id again). Through SQLAlchemy Core each statement
still went through SQLAlchemy's execution machinery (compiled-statement cache, result
objects, type processing): about 0.3 ms per turn, more than the SQL itself (py-spy,
README "Benchmark"). Here both are compiled once, for the engine's dialect (SQLite's `?`
or psycopg2's `%(name)s`), and run on the DBAPI cursor of a SQLAlchemy connection, so
that SQLAlchemy still pools the connection and commits or rolls back the transaction.

A driver error is raised as SQLAlchemy would have raised it (`DBAPIError.instance`), so
the store's handling of an unreachable database is unchanged.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Text

import sqlalchemy as sa


class TurnStatements:
    def __init__(self, engine: sa.engine.Engine, table: sa.Table,
                 columns: Sequence[Text]) -> None:
        dialect = engine.dialect
        self._dbapi_error = dialect.dbapi.Error
        self._dialect = dialect
        newest = sa.select(sa.func.max(table.c.id)).where(
            table.c.sender_id == sa.bindparam("sender_id")).compile(dialect=dialect)
        self._newest_sql = str(newest)
        self._newest_positional = newest.positional
        self.columns = list(columns)
        # inline: a sequence default (PostgreSQL's id) is rendered as nextval(), no RETURNING
        insert = table.insert().inline().values(
            {column: sa.bindparam(column) for column in self.columns}).compile(dialect=dialect)
        self._insert_sql = str(insert)
        # the order of the parameters for a positional paramstyle (SQLite's "?")
        self._insert_order: Optional[List[Text]] = \
            list(insert.positiontup) if insert.positional else None

    def newest_id(self, connection: sa.engine.Connection, sender_id: Text) -> Optional[int]:
        """The id of the conversation's newest event (None: no event)."""
        params: Any = (sender_id,) if self._newest_positional else {"sender_id": sender_id}
        row = self._run(connection, self._newest_sql, params, many=False)
        return row[0] if row else None

    def insert(self, connection: sa.engine.Connection, rows: List[Dict[Text, Any]]) -> None:
        """Insert `rows` (dicts with exactly `columns`) in one executemany."""
        if self._insert_order is not None:
            params: Any = [tuple(row[k] for k in self._insert_order) for row in rows]
        else:
            params = rows
        self._run(connection, self._insert_sql, params, many=True)

    def _run(self, connection: sa.engine.Connection, sql: Text, params: Any,
             many: bool) -> Any:
        cursor = connection.connection.cursor()
        try:
            if many:
                cursor.executemany(sql, params)
                return None
            cursor.execute(sql, params)
            return cursor.fetchone()
        except self._dbapi_error as error:
            raise sa.exc.DBAPIError.instance(
                sql, params, error, self._dbapi_error, hide_parameters=True,  # user text
                dialect=self._dialect) from error
        finally:
            cursor.close()
