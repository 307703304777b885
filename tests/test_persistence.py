"""A restart of Rasa loses no conversation: SQLite (default) and PostgreSQL stores."""
from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Iterator, List

import pytest
import requests

from scripts.servers import MODEL, running_assistant
from tests.services import PG, REDIS, drop_database, postgres_available

pytestmark = pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run `make train`")

def say(rasa_url: str, sender: str, text: str) -> List[str]:
    reply = requests.post(f"{rasa_url}/webhooks/rest/webhook",
                          json={"sender": sender, "message": text}, timeout=30)
    assert reply.status_code == 200
    return [m.get("text", "") for m in reply.json()]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> Iterator[dict]:
    if request.param == "sqlite":
        # endpoints.yml; running_assistant puts its SQLite file into the run's folder.
        yield {"endpoints": "endpoints.yml", "env": {},
               "rows": lambda sender: sqlite3.connect(tmp_path / "run" / "tracker.db").execute(
                   "select data from events where sender_id = ? order by id", (sender,)
               ).fetchall()}
        return
    if not postgres_available():
        pytest.skip("PostgreSQL is not running on localhost:5432")
    import psycopg2

    name = f"clinic_test_{uuid.uuid4().hex[:10]}"
    env = {**PG, "DB_NAME": name, **REDIS}

    def rows(sender):
        with psycopg2.connect(host=PG["DB_HOST"], port=PG["DB_PORT"], user=PG["DB_USER"],
                              dbname=name) as connection, connection.cursor() as cursor:
            cursor.execute("select data from events where sender_id = %s order by id", (sender,))
            return cursor.fetchall()

    # The committed endpoints.postgres.yml, with its ${DB_*} and ${REDIS_*} placeholders.
    yield {"endpoints": "endpoints.postgres.yml", "env": env, "rows": rows}
    drop_database(name)


def test_a_restart_loses_no_conversation(store, tmp_path):
    sender = f"restart-{uuid.uuid4().hex[:8]}"
    run = tmp_path / "run"
    run.mkdir()
    with running_assistant(run, env_extra=store["env"],
                           endpoints=store["endpoints"]) as servers:
        assert "not a diagnosis" in say(servers.rasa_url, sender, "hi")[0]
        say(servers.rasa_url, sender, "what is the piriformis")
    with running_assistant(run, env_extra=store["env"],
                           endpoints=store["endpoints"]) as servers:
        # Same session after the restart: no new disclaimer, the conversation goes on.
        assert say(servers.rasa_url, sender, "thanks")[0].startswith("You're welcome")
    events = [json.loads(row[0]) for row in store["rows"](sender)]
    assert [e["text"] for e in events if e["event"] == "user"] == [
        "hi", "what is the piriformis", "thanks"]
    assert sum(e["event"] == "session_started" for e in events) == 1
