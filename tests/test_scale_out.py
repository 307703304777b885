"""Scale-out: two Rasa processes behind HAProxy (deploy/haproxy.cfg, the file
docker-compose.yml uses), sharing one action server, a PostgreSQL tracker store
(endpoints.postgres.yml) and the Redis lock store (stores/lock_store.py); and two Sanic
workers of one Rasa process sharing SQLite (endpoints.workers.yml).

Run alone: PYTHONHASHSEED=0 .venv/bin/python -m pytest tests/test_scale_out.py -q -rP
(-rP prints the measured numbers)."""
from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Tuple
from urllib.parse import urlencode

import pytest
import redis
import requests

from scripts.servers import (HAPROXY, MODEL, ROOT, SERVER_HEADER, running_assistant,
                             running_haproxy)
from tests.services import PG, REDIS, postgres, postgres_available, redis_available

ENDPOINTS = ROOT / "endpoints.postgres.yml"  # used as committed, like docker-compose.yml

NO_HAPROXY = "haproxy is not installed (`apt-get install haproxy`; .ci/run does)"
needs_haproxy = pytest.mark.skipif(HAPROXY is None, reason=NO_HAPROXY)


def test_each_process_calls_actions_through_its_own_port(monkeypatch):
    """docker-compose.yml and the test below give each Rasa process its own RASA_PORT;
    Rasa expands ${VAR} only in unquoted YAML values."""
    from rasa.core.utils import read_endpoints_from_path

    for name, value in {**PG, **REDIS, "DB_NAME": "rasa", "RASA_PORT": "5006"}.items():
        monkeypatch.setenv(name, value)
    endpoints = read_endpoints_from_path(ENDPOINTS)
    assert endpoints.action.url == "http://127.0.0.1:5006/webhooks/action_guard/webhook"
    assert endpoints.lock_store.type == "stores.lock_store.ClinicRedisLockStore"
    assert endpoints.tracker_store.type == "stores.tracker_store.ClinicTrackerStore"


# --- HAProxy ---------------------------------------------------------------------------

class NamedServer:
    """A stand-in for a Rasa process: answers every request with 200 and its name."""

    def __init__(self, name: str, port: int = 0) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = name.encode()
                # HAProxy's health checks hang up once they have the status line.
                with contextlib.suppress(ConnectionError):
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def served_by(response: requests.Response) -> str:
    assert response.status_code == 200, response.text
    return response.headers[SERVER_HEADER]


def telegram_update(kind: str, chat_id: int) -> Dict:
    message = {"message_id": 1, "date": 0, "chat": {"id": chat_id, "type": "private"},
               "from": {"id": chat_id, "is_bot": False, "first_name": "A"}, "text": "hi"}
    if kind == "callback_query":
        return {"update_id": 1, "callback_query": {
            "id": "1", "from": message["from"], "chat_instance": "1", "data": "/greet",
            "message": message}}
    return {"update_id": 1, kind: message}


@needs_haproxy
def test_haproxy_routes_each_conversation_to_one_process(tmp_path):
    """The routing rules of deploy/haproxy.cfg, against two stand-in servers."""
    one, two = NamedServer("one"), NamedServer("two")
    try:
        with running_haproxy(tmp_path, one.address, two.address) as lb:
            rest = f"{lb}/webhooks/rest/webhook"
            # REST: by "sender"; 30 conversations use both processes, each only one.
            by_sender = {s: {served_by(requests.post(rest, json={"sender": s, "message": m}))
                             for m in ("hi", "what is the piriformis", "/book_appointment")}
                         for s in (f"user-{i}" for i in range(30))}
            assert all(len(servers) == 1 for servers in by_sender.values())
            assert set().union(*by_sender.values()) == {"rasa1", "rasa2"}

            # Telegram: by chat, whether a message, an edit or a button press.
            telegram = f"{lb}/webhooks/telegram/webhook"
            by_chat = {chat: {served_by(requests.post(telegram, json=telegram_update(k, chat)))
                              for k in ("message", "edited_message", "callback_query")}
                       for chat in [10**9 + 7 * i for i in range(20)]  # real ids are large
                       + [-1001234567890 - i for i in range(10)]}  # groups: negative
            assert all(len(servers) == 1 for servers in by_chat.values())
            assert set().union(*by_chat.values()) == {"rasa1", "rasa2"}

            # Slack: by channel, for events (JSON) and button presses (form with JSON).
            slack = f"{lb}/webhooks/slack/webhook"
            by_channel = {}
            for channel in (f"C{i:04d}" for i in range(30)):
                event = {"type": "event_callback", "event": {
                    "type": "message", "channel": channel, "user": "U1", "text": "hi"}}
                press = urlencode({"payload": json.dumps({
                    "type": "block_actions", "channel": {"id": channel}, "user": {"id": "U1"},
                    "actions": [{"value": "/greet"}]})})
                by_channel[channel] = {
                    served_by(requests.post(slack, json=event)),
                    served_by(requests.post(slack, data=press, headers={
                        "Content-Type": "application/x-www-form-urlencoded"}))}
            assert all(len(servers) == 1 for servers in by_channel.values())
            assert set().union(*by_channel.values()) == {"rasa1", "rasa2"}

            # Socket.IO: one client stays with one process (its session lives there).
            socketio = {served_by(requests.get(f"{lb}/socket.io/?EIO=4&transport=polling"))
                        for _ in range(10)}
            assert len(socketio) == 1

            # The action guard is Rasa's own business.
            assert requests.post(f"{lb}/webhooks/action_guard/webhook", json={}).status_code \
                == 403

            # Anything else: round robin.
            others = [served_by(requests.get(f"{lb}/version")) for _ in range(6)]
            assert others in (["rasa1", "rasa2"] * 3, ["rasa2", "rasa1"] * 3)

            # A process goes down: its conversations move to the other one at once (the
            # refused connection is retried there) and the others stay where they were.
            two.stop()
            for sender, servers in by_sender.items():
                assert served_by(requests.post(rest, json={"sender": sender})) == "rasa1"
            # ...and come back once it is up again (health checks: 2 passes, 2 s apart).
            two = NamedServer("two", int(two.address.split(":")[1]))
            deadline = time.monotonic() + 20
            while {s: {served_by(requests.post(rest, json={"sender": s}))}
                   for s in by_sender} != by_sender:
                assert time.monotonic() < deadline, "conversations did not move back"
                time.sleep(0.5)
    finally:
        one.stop()
        two.stop()


# --- Two Rasa processes ----------------------------------------------------------------

@dataclass
class Cluster:
    lb_url: str
    rasa_urls: Dict[str, str]  # rasa1, rasa2 -> their own URL, bypassing HAProxy
    db_name: str
    redis: redis.Redis


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    if HAPROXY is None:
        pytest.skip(NO_HAPROXY)
    if not MODEL.exists():
        pytest.skip("no trained model: run `make train`")
    if not postgres_available():
        pytest.skip(f"PostgreSQL is not running on {PG['DB_HOST']}:{PG['DB_PORT']}")
    if not redis_available():
        pytest.skip(f"Redis is not running on {REDIS['REDIS_HOST']}:{REDIS['REDIS_PORT']}")
    tmp = tmp_path_factory.mktemp("scale_out")
    db_name = f"clinic_scale_{uuid.uuid4().hex[:10]}"
    # Created here, as docker-compose's postgres service does (Rasa could create it too,
    # but two processes starting at once would race and one would retry 5 s later).
    postgres("postgres", f'CREATE DATABASE "{db_name}"')
    try:
        with running_assistant(tmp, {**PG, **REDIS, "DB_NAME": db_name},
                               endpoints="endpoints.postgres.yml", rasa_processes=2) as servers:
            # HAProxy's server names: rasa1, rasa2.
            rasa = {f"rasa{n}": url.split("://", 1)[1]
                    for n, url in enumerate(servers.rasa_urls.values(), start=1)}
            with running_haproxy(tmp, rasa["rasa1"], rasa["rasa2"]) as lb:
                yield Cluster(lb, {n: f"http://{a}" for n, a in rasa.items()}, db_name,
                              redis.Redis(host=REDIS["REDIS_HOST"],
                                          port=int(REDIS["REDIS_PORT"]),
                                          db=int(REDIS["REDIS_DB"])))
    finally:
        postgres("postgres", f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


GREETINGS = ["hi", "hello there", "good morning"]
QUESTIONS = ["what is the piriformis", "how do I do a glute bridge", "/book_appointment",
             "can weak glutes cause lower back pain", "how do i do a clam",
             "what do the hip flexors have to do with back pain",
             "how long does it take to strengthen my glutes",
             "which doctor should i see for back pain"]


def script(index: int, length: int) -> List[str]:
    """A greeting, questions (a different selection and order per conversation), thanks."""
    middle = (QUESTIONS[index % len(QUESTIONS):] + QUESTIONS[:index % len(QUESTIONS)])
    return [GREETINGS[index % len(GREETINGS)], *middle[:length - 2], "thanks"]


@dataclass
class Turn:
    text: str
    replies: List[Optional[str]] = field(default_factory=list)  # bot texts, in order


def send(session: requests.Session, url: str, sender: str, text: str
         ) -> Tuple[Optional[Turn], Optional[str], str]:
    """(the turn, an error if any, the server that answered)."""
    try:
        response = session.post(f"{url}/webhooks/rest/webhook",
                                json={"sender": sender, "message": text}, timeout=90)
    except requests.RequestException as error:
        return None, f"{sender} {text!r}: {error}", ""
    server = response.headers.get(SERVER_HEADER, "")
    if response.status_code != 200:
        return None, f"{sender} {text!r}: HTTP {response.status_code}", server
    replies = response.json()
    if not replies:
        return None, f"{sender} {text!r}: empty reply", server
    return Turn(text, [reply.get("text") for reply in replies]), None, server


def stored_turns(cluster: Cluster, sender: str) -> List[Turn]:
    """The conversation as PostgreSQL holds it."""
    return turns_of(postgres(cluster.db_name,
                             "select data from events where sender_id = %s order by id",
                             (sender,)))


def turns_of(rows: Iterable[Tuple[str]]) -> List[Turn]:
    """Stored events (rows of `data`, in id order) as turns: each user message with the bot
    messages stored after it (those of the session start go with the first message)."""
    turns: List[Turn] = []
    opening: List[Optional[str]] = []
    for (data,) in rows:
        event = json.loads(data)
        if event["event"] == "user":
            turns.append(Turn(event["text"], opening if not turns else []))
        elif event["event"] == "bot":
            (turns[-1].replies if turns else opening).append(event.get("text"))
    return turns


def assert_real_answers(turns: List[Turn]) -> None:
    """The answers come from the action server (not the action guard's apology)."""
    from actions import content

    piriformis = content.faqs()["faq_piriformis"]["answer"].strip()
    bridge_step = f"1. {content.exercises()['glute_bridge']['steps'][0]}"
    assert "not a diagnosis" in (turns[0].replies[0] or "")  # action_session_start
    for turn in turns:
        if turn.text == "what is the piriformis":
            assert piriformis in turn.replies
        if turn.text == "how do I do a glute bridge":
            assert any(bridge_step in (reply or "") for reply in turn.replies)


def assert_no_lock_left(cluster: Cluster, senders: List[str]) -> None:
    assert [s for s in senders if cluster.redis.exists(f"lock:{s}")] == []


def test_concurrent_conversations_through_haproxy(cluster):
    conversations, length = 20, 8
    run = uuid.uuid4().hex[:6]
    senders = [f"scale-{run}-{i:02d}" for i in range(conversations)]

    def converse(index: int) -> Tuple[List[Turn], List[str], List[str]]:
        turns, errors, servers = [], [], []
        with requests.Session() as session:
            for text in script(index, length):
                turn, error, server = send(session, cluster.lb_url, senders[index], text)
                servers.append(server)
                if error:
                    errors.append(error)
                else:
                    turns.append(turn)
        return turns, errors, servers

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=conversations) as pool:
        results = list(pool.map(converse, range(conversations)))
    duration = time.monotonic() - started

    errors = [e for _, conversation_errors, _ in results for e in conversation_errors]
    per_request = Counter(s for _, _, servers in results for s in servers)
    per_conversation = Counter(servers[0] for _, _, servers in results)
    print(f"\nthrough HAProxy: {conversations} conversations x {length} messages = "
          f"{conversations * length} requests in {duration:.1f} s "
          f"({conversations * length / duration:.1f} requests/s); conversations per process "
          f"{dict(sorted(per_conversation.items()))}, requests per process "
          f"{dict(sorted(per_request.items()))}; errors: {len(errors)}")
    assert errors == []
    assert set(per_conversation) == {"rasa1", "rasa2"}  # both served conversations
    assert all(len(set(servers)) == 1 for _, _, servers in results)  # always the same one
    for sender, (turns, _, _) in zip(senders, results):
        # Stored once each, in the order sent, each followed by exactly its replies.
        assert stored_turns(cluster, sender) == turns
        assert_real_answers(turns)
    assert_no_lock_left(cluster, senders)


def test_the_lock_store_orders_messages_that_reach_both_processes_at_once(cluster):
    """Routing off: each message goes straight to a Rasa process, alternately to both,
    and all messages of a conversation are sent at the same moment."""
    conversations, length = 6, 6
    run = uuid.uuid4().hex[:6]
    senders = [f"unrouted-{run}-{i}" for i in range(conversations)]
    urls = [cluster.rasa_urls["rasa1"], cluster.rasa_urls["rasa2"]]
    jobs = [(sender, text, urls[n % 2])
            for index, sender in enumerate(senders)
            for n, text in enumerate(script(index, length))]
    start = threading.Barrier(len(jobs))

    def fire(job: Tuple[str, str, str]) -> Tuple[Optional[Turn], Optional[str], str]:
        sender, text, url = job
        with requests.Session() as session:
            start.wait(timeout=30)
            return send(session, url, sender, text)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(fire, jobs))
    duration = time.monotonic() - started
    errors = [error for _, error, _ in results if error]
    print(f"\nrouting off: {len(jobs)} requests ({conversations} conversations x {length} "
          f"messages, all sent at once, alternately to both processes) in {duration:.1f} s; "
          f"errors: {len(errors)}")
    assert errors == []
    for index, sender in enumerate(senders):
        sent = {turn.text: turn for (s, _, _), (turn, _, _) in zip(jobs, results) if s == sender}
        stored = stored_turns(cluster, sender)
        # Every message stored once, each followed by exactly the replies its request got:
        # the turns ran one after another, in the order the lock store issued tickets.
        assert sorted(t.text for t in stored) == sorted(script(index, length))
        assert [(t.text, t.replies) for t in stored] == [
            (t.text, sent[t.text].replies) for t in stored]
        assert_real_answers(stored)
    assert_no_lock_left(cluster, senders)


# --- several workers of one Rasa process (endpoints.workers.yml) ---------------------------

def sqlite_turns(db: Path, sender: str) -> List[Turn]:
    """As `stored_turns`, from a SQLite tracker store."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(db)) as connection:
        return turns_of(connection.execute(
            "select data from events where sender_id = ? order by id", (sender,)).fetchall())


def test_two_sanic_workers_share_the_sqlite_store_and_the_redis_locks(tmp_path):
    """`SANIC_WORKERS=2` with endpoints.workers.yml (the deployment `make bench` measures):
    the kernel spreads connections over both workers, so consecutive messages of one
    conversation reach either; every tracker must still be complete and in order."""
    import psutil

    if not MODEL.exists():
        pytest.skip("no trained model: run `make train`")
    if not redis_available():
        pytest.skip(f"Redis is not running on {REDIS['REDIS_HOST']}:{REDIS['REDIS_PORT']}")
    conversations, length = 12, 8
    run = uuid.uuid4().hex[:6]
    senders = [f"workers-{run}-{i:02d}" for i in range(conversations)]
    with running_assistant(tmp_path, REDIS, endpoints="endpoints.workers.yml",
                           rasa_env={"SANIC_WORKERS": "2"}) as servers:
        workers = psutil.Process(servers.processes["rasa"].pid).children(recursive=True)
        cpu_before = [w.cpu_times().user + w.cpu_times().system for w in workers]

        def converse(index: int) -> Tuple[List[Turn], List[str]]:
            turns, errors = [], []
            for text in script(index, length):
                # A new connection per message, so that either worker may take it.
                turn, error, _ = send(requests.Session(), servers.rasa_url, senders[index],
                                      text)
                errors += [error] if error else []
                turns += [turn] if turn else []
            return turns, errors

        with ThreadPoolExecutor(max_workers=conversations) as pool:
            results = list(pool.map(converse, range(conversations)))
        cpu_used = [w.cpu_times().user + w.cpu_times().system - before
                    for w, before in zip(workers, cpu_before)]
    print(f"\n2 Sanic workers: {conversations} conversations x {length} messages; CPU seconds "
          f"per worker {[round(c, 1) for c in cpu_used]}")
    assert [e for _, errors in results for e in errors] == []
    # Both answered messages: an idle worker uses a few hundredths of a second.
    assert len(workers) == 2 and min(cpu_used) > 0.25 * sum(cpu_used)
    for sender, (turns, _) in zip(senders, results):
        assert sqlite_turns(tmp_path / "tracker.db", sender) == turns
        assert_real_answers(turns)
    assert [s for s in senders if redis.Redis(
        host=REDIS["REDIS_HOST"], port=int(REDIS["REDIS_PORT"]),
        db=int(REDIS["REDIS_DB"])).exists(f"lock:{s}")] == []
