"""PostgreSQL down at start and mid-run: a clear log, answers, recovery, no lost events.

Rasa reaches the machine's PostgreSQL through a TCP proxy that the test cuts and restores,
so the shared server itself is never stopped.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import List

import pytest
import requests

from scripts.servers import MODEL, running_assistant
from scripts.tcp_proxy import TcpProxy
from tests.services import PG, REDIS, drop_database, postgres, postgres_available

pytestmark = [
    pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run `make train`"),
    pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not on localhost:5432"),
]


def up_once_logged(proxy: TcpProxy, log: Path, timeout: float = 120) -> None:
    """Start the database connection once Rasa has logged that it is waiting for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and "is unreachable" in log.read_text(errors="replace"):
            time.sleep(2)  # Rasa keeps waiting: its next retry finds the database
            break
        time.sleep(0.5)
    proxy.up()


def stored_events(dbname: str, sender: str) -> List[dict]:
    """The conversation's events as PostgreSQL holds them, in order."""
    rows = postgres(dbname, "select data from events where sender_id = %s order by id",
                    (sender,))
    return [json.loads(data) for (data,) in rows]


def say(rasa_url: str, sender: str, text: str) -> List[str]:
    reply = requests.post(f"{rasa_url}/webhooks/rest/webhook",
                          json={"sender": sender, "message": text}, timeout=30)
    assert reply.status_code == 200
    return [message.get("text", "") for message in reply.json()]


def test_the_database_going_away_loses_no_event(tmp_path):
    proxy = TcpProxy(int(PG["DB_PORT"]))
    name = f"clinic_fault_{uuid.uuid4().hex[:10]}"
    env = {**PG, **REDIS, "DB_PORT": str(proxy.port), "DB_NAME": name}
    sender = f"fault-{uuid.uuid4().hex[:8]}"
    # Down at start: Rasa says so in its log, waits, and starts once the database is up.
    threading.Thread(target=up_once_logged, args=(proxy, tmp_path / "rasa.log"),
                     daemon=True).start()
    try:
        with running_assistant(tmp_path, env_extra=env,
                               endpoints="endpoints.postgres.yml") as servers:
            log = (tmp_path / "rasa.log").read_text()
            assert "Tracker store database postgresql://" in log and "is unreachable" in log

            assert "not a diagnosis" in say(servers.rasa_url, sender, "hi")[0]
            proxy.down()
            # Mid-run: answered from memory, in the same conversation.
            assert say(servers.rasa_url, sender, "what is the piriformis")
            assert say(servers.rasa_url, sender, "thanks")[0].startswith("You're welcome")
            assert "could not write conversation" in (tmp_path / "rasa.log").read_text()
            proxy.up()
            assert say(servers.rasa_url, sender, "bye")
        events = stored_events(name, sender)
        assert [e["text"] for e in events if e["event"] == "user"] == [
            "hi", "what is the piriformis", "thanks", "bye"]
        assert sum(e["event"] == "session_started" for e in events) == 1
        assert sum(e["event"] == "bot" for e in events) >= 5
    finally:
        proxy.down()
        drop_database(name)


def test_rasa_stopped_during_an_outage_loses_nothing_once_the_database_is_back(tmp_path):
    """The issue's case: answers given while PostgreSQL is away, Rasa killed before it
    returns. The spool (stores/spool.py) holds them; the next Rasa writes them, once."""
    proxy = TcpProxy(int(PG["DB_PORT"]))
    proxy.up()
    name = f"clinic_spool_{uuid.uuid4().hex[:10]}"
    env = {**PG, **REDIS, "DB_PORT": str(proxy.port), "DB_NAME": name,
           "SPOOL_DIR": str(tmp_path / "spool")}
    sender = f"spool-{uuid.uuid4().hex[:8]}"
    flag = "since this morning I can't feel my groin and I wet myself"
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    try:
        with running_assistant(tmp_path / "first", env_extra=env,
                               endpoints="endpoints.postgres.yml") as servers:
            assert "not a diagnosis" in say(servers.rasa_url, sender, "hi")[0]
            proxy.down()
            assert say(servers.rasa_url, sender, "what is the piriformis")
            assert any("999" in text for text in say(servers.rasa_url, sender, flag))
            servers.processes["rasa"].kill()  # SIGKILL, the database still away
            servers.processes["rasa"].wait(timeout=30)
        proxy.up()
        with running_assistant(tmp_path / "second", env_extra=env,
                               endpoints="endpoints.postgres.yml") as servers:
            # The same conversation carries on: no new disclaimer, the flag still stands.
            replies = say(servers.rasa_url, sender, "can I book a visit")
            assert not any("not a diagnosis" in text for text in replies)
            assert any("999" in text for text in replies)
        events = stored_events(name, sender)
        assert [e["text"] for e in events if e["event"] == "user"] == [
            "hi", "what is the piriformis", flag, "can I book a visit"]
        assert sum(e["event"] == "session_started" for e in events) == 1
        keys = [(e["event"], e.get("timestamp"), json.dumps(e, sort_keys=True)) for e in events]
        assert len(keys) == len(set(keys))  # nothing twice
        assert not any(p.stat().st_size for p in (tmp_path / "spool").glob("spool-*.jsonl"))
    finally:
        proxy.down()
        drop_database(name)


def test_with_neither_the_database_nor_the_spool_the_message_is_refused_with_503(tmp_path):
    """Nothing answered is lost: when the spool cannot be written either, REST refuses the
    message (503 not_processed) instead of answering it from memory."""
    proxy = TcpProxy(int(PG["DB_PORT"]))
    proxy.up()
    name = f"clinic_nospool_{uuid.uuid4().hex[:10]}"
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the spool folder would go")
    env = {**PG, **REDIS, "DB_PORT": str(proxy.port), "DB_NAME": name,
           "SPOOL_DIR": str(blocker / "spool")}
    sender = f"nospool-{uuid.uuid4().hex[:8]}"
    try:
        with running_assistant(tmp_path, env_extra=env,
                               endpoints="endpoints.postgres.yml") as servers:
            assert "not a diagnosis" in say(servers.rasa_url, sender, "hi")[0]
            proxy.down()
            reply = requests.post(f"{servers.rasa_url}/webhooks/rest/webhook", timeout=30,
                                  json={"sender": sender, "message": "what is the piriformis"})
            assert reply.status_code == 503, reply.text
            assert reply.json()["error"] == "not_processed"
            assert reply.headers["Retry-After"]
            proxy.up()
            assert say(servers.rasa_url, sender, "what is the piriformis")  # sent again
    finally:
        proxy.down()
        drop_database(name)
