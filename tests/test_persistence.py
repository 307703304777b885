"""A restart of Rasa loses no conversation: SQLite (default) and PostgreSQL stores."""
from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Iterator, List

import pytest
import requests

from tests.servers import MODEL, ROOT, running_assistant

pytestmark = pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run `make train`")

PG = {"DB_HOST": "127.0.0.1", "DB_PORT": "5432", "DB_USER": "postgres", "DB_PASSWORD": ""}


def say(rasa_url: str, sender: str, text: str) -> List[str]:
    reply = requests.post(f"{rasa_url}/webhooks/rest/webhook",
                          json={"sender": sender, "message": text}, timeout=30)
    assert reply.status_code == 200
    return [m.get("text", "") for m in reply.json()]


def postgres_available() -> bool:
    import psycopg2

    try:
        psycopg2.connect(host=PG["DB_HOST"], port=PG["DB_PORT"], user=PG["DB_USER"],
                         dbname="postgres", connect_timeout=3).close()
        return True
    except psycopg2.Error:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Iterator[dict]:
    if request.param == "sqlite":
        db = tmp_path / "tracker.db"
        yield {"yaml": f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {db}\n", "env": {},
               "rows": lambda sender: sqlite3.connect(db).execute(
                   "select data from events where sender_id = ? order by id", (sender,)
               ).fetchall()}
        return
    if not postgres_available():
        pytest.skip("PostgreSQL is not running on localhost:5432")
    import psycopg2

    name = f"clinic_test_{uuid.uuid4().hex[:10]}"
    # The committed endpoints.postgres.yml, with its ${DB_*} placeholders.
    text = (ROOT / "endpoints.postgres.yml").read_text()
    env = {**PG, "DB_NAME": name}

    def rows(sender):
        with psycopg2.connect(host=PG["DB_HOST"], port=PG["DB_PORT"], user=PG["DB_USER"],
                              dbname=name) as connection, connection.cursor() as cursor:
            cursor.execute("select data from events where sender_id = %s order by id", (sender,))
            return cursor.fetchall()

    yield {"yaml": text[text.index("tracker_store:"):], "env": env, "rows": rows}
    connection = psycopg2.connect(host=PG["DB_HOST"], port=PG["DB_PORT"], user=PG["DB_USER"],
                                  dbname="postgres")
    connection.autocommit = True
    connection.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()


def test_a_restart_loses_no_conversation(store, tmp_path):
    sender = f"restart-{uuid.uuid4().hex[:8]}"
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with running_assistant(tmp_path / "first", env_extra=store["env"],
                           tracker_store=store["yaml"]) as servers:
        assert "not a diagnosis" in say(servers.rasa_url, sender, "hi")[0]
        say(servers.rasa_url, sender, "what is the piriformis")
    with running_assistant(tmp_path / "second", env_extra=store["env"],
                           tracker_store=store["yaml"]) as servers:
        # Same session after the restart: no new disclaimer, the conversation goes on.
        assert say(servers.rasa_url, sender, "thanks")[0].startswith("You're welcome")
    events = [json.loads(row[0]) for row in store["rows"](sender)]
    assert [e["text"] for e in events if e["event"] == "user"] == [
        "hi", "what is the piriformis", "thanks"]
    assert sum(e["event"] == "session_started" for e in events) == 1
