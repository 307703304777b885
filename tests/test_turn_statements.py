"""stores/turn_statements.py: the per-turn read and write on the driver's cursor give what
SQLAlchemy Core gives, on SQLite and PostgreSQL, and fail as SQLAlchemy fails."""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore

from stores.tracker_store import EVENT_COLUMNS
from stores.turn_statements import TurnStatements
from tests.services import PG, drop_database, postgres, postgres_available

TABLE = SQLTrackerStore.SQLEvent.__table__


def rows(sender: str, n: int) -> list:
    return [{"sender_id": sender, "type_name": "user", "timestamp": 1000.5 + i,
             "intent_name": "greet" if i % 2 else None, "action_name": None,
             "data": '{"event": "user", "text": "caf\u00e9 \U0001f600 %s"}' % i}
            for i in range(n)]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'events.db'}"
        name = None
    else:
        if not postgres_available():
            pytest.skip("PostgreSQL is not running")
        name = f"turn_{uuid.uuid4().hex[:8]}"
        postgres("postgres", f'CREATE DATABASE "{name}"')
        url = f"postgresql://{PG['DB_USER']}@{PG['DB_HOST']}:{PG['DB_PORT']}/{name}"
    engine = sa.create_engine(url)
    TABLE.metadata.create_all(engine, tables=[TABLE])
    yield engine
    engine.dispose()
    if name:
        drop_database(name)


def stored(engine) -> list:
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(
            sa.select(TABLE).order_by(TABLE.c.id))]


def test_same_rows_and_newest_id_as_sqlalchemy_core(engine):
    turn = TurnStatements(engine, TABLE, EVENT_COLUMNS)
    with engine.begin() as connection:
        assert turn.newest_id(connection, "a") is None
        turn.insert(connection, rows("a", 3))
        connection.execute(TABLE.insert(), rows("b", 2))  # SQLAlchemy Core, for comparison
        turn.insert(connection, rows("a", 1))
        ours = {s: turn.newest_id(connection, s) for s in ("a", "b", "c")}
        core = {s: connection.execute(sa.select(sa.func.max(TABLE.c.id)).where(
            TABLE.c.sender_id == s)).scalar() for s in ("a", "b", "c")}
    assert ours == core and ours["a"] == 6
    got = stored(engine)
    assert [{k: r[k] for k in EVENT_COLUMNS} for r in got] == rows("a", 3) + rows("b", 2) + \
        rows("a", 1)
    assert [r["id"] for r in got] == [1, 2, 3, 4, 5, 6]


def test_a_failed_turn_is_rolled_back_and_raised_as_sqlalchemy_raises_it(engine):
    turn = TurnStatements(engine, TABLE, EVENT_COLUMNS)
    with pytest.raises(sa.exc.DBAPIError) as raised:
        with engine.begin() as connection:
            turn.insert(connection, rows("a", 2))
            connection.exec_driver_sql("DROP TABLE events")
            turn.insert(connection, rows("a", 1))  # fails: no table
    assert isinstance(raised.value, (sa.exc.OperationalError, sa.exc.ProgrammingError))
    assert "INSERT INTO events" in str(raised.value)
    assert "caf" not in str(raised.value)  # the parameters (user text) stay out of logs
    assert stored(engine) == []  # the table is back (transactional DDL), the rows are not
