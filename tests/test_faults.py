"""Faults of the action server, through the action guard (channels/action_guard.py): killed,
stopped (SIGSTOP), slow, failing. The user hears back within 3 s, with an apology that
gives the clinic's phone number, and the conversation goes on once the server is back."""
from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
import zlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import requests
from aiohttp import web

from actions import content
from actions.clinic import booking_text
from actions.safety import safety_text
from channels.action_guard import MIN_CALL_SECONDS, ActionGuardInput, apologised_this_turn, \
    apology, apology_text, decode_call, latest_message
from scripts.servers import BIN, MODEL, ROOT, free_port, running_assistant, wait_until_up
import runtime.heap
from runtime import local_routes
from tests.services import local_http_server

needs_model = pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run `make train`")

TIME_LIMIT = 3.0  # seconds from sending the message to the reply, as the issue demands
BOOK = "/book_appointment"  # a button: no NLU doubt about which action it needs
RED_FLAG = "since yesterday i cant feel my groin and i wet myself"
PHONE = "+44 20 7946 0999"  # CLINIC_PHONE override for the second server


# -- unit: how the guard reads the action call ---------------------------------------
def user(ts: float) -> Dict[str, Any]:
    return {"event": "user", "timestamp": ts, "text": "x"}


def action(name: str, ts: float) -> Dict[str, Any]:
    return {"event": "action", "name": name, "timestamp": ts}


def bot(text: str, ts: float) -> Dict[str, Any]:
    return {"event": "bot", "text": text, "timestamp": ts}


@pytest.mark.parametrize("events, latest", [
    ([], None),
    ([action("action_listen", 1.0)], None),
    ([user(12.0), action("action_clinic_info", 12.1)], (12.0, False)),
    # the first message of a session: Rasa logs the session start after running it
    ([action("action_session_start", 11.9), action("action_listen", 11.9), user(12.0),
      action("action_clinic_info", 12.1)], (12.0, True)),
    # a later message: the session start belonged to the message before
    ([action("action_session_start", 10.0), user(12.0), action("action_listen", 13.0),
      user(20.0)], (20.0, False)),
    # a session that expired: the new session start belongs to the new message
    ([user(12.0), action("action_listen", 13.0), action("action_session_start", 5000.0),
      user(5001.0)], (5001.0, True)),
])
def test_latest_message(events, latest):
    assert latest_message(events) == latest


def call(next_action: str, events: List[Dict[str, Any]], sender: str = "s") -> Dict[str, Any]:
    return {"next_action": next_action, "sender_id": sender, "tracker": {"events": events}}


def test_the_actions_of_one_message_share_the_time_limit():
    guard = ActionGuardInput(url="http://127.0.0.1:9/webhook", timeout=2.0)
    now = time.time()
    # A session start is always the first call of its message: the whole limit.
    assert guard.call_timeout(call("action_session_start", [user(now - 100)])) == 2.0
    # The message it opened was logged 1.5 s later (the session start was slow): the
    # action gets what is left, but at least MIN_CALL_SECONDS.
    time.sleep(1.5)
    opened = [action("action_session_start", time.time()), user(time.time())]
    assert guard.call_timeout(call("action_clinic_info", opened)) == pytest.approx(0.5, abs=0.1)
    assert guard.call_timeout(call("action_clinic_info", opened, sender="other")) == \
        pytest.approx(2.0, abs=0.1)
    time.sleep(0.4)
    assert guard.call_timeout(call("action_clinic_info", opened)) == MIN_CALL_SECONDS
    # A message without a session start: counted from when it was logged.
    assert guard.call_timeout(call("action_clinic_info", [user(time.time() - 0.5)])) == \
        pytest.approx(1.5, abs=0.1)
    assert guard.call_timeout(call("action_clinic_info", [])) == 2.0


def test_one_apology_per_user_message():
    text = apology_text()
    earlier_turn = [user(1.0), bot(text, 1.5), action("action_listen", 2.0), user(10.0)]
    assert not apologised_this_turn(earlier_turn, text)
    assert apologised_this_turn(earlier_turn + [bot(text, 12.0)], text)
    assert not apologised_this_turn(earlier_turn + [bot("another text", 12.0)], text)
    # before the message, by the session start it opened (but not the turn before that)
    assert apologised_this_turn([user(1.0), action("action_session_start", 9.0),
                                 bot(text, 9.0), user(10.0)], text)
    assert not apologised_this_turn(earlier_turn[:-1] + [
        action("action_session_start", 9.0), action("action_listen", 9.0), user(10.0)], text)


def test_apology_gives_the_clinic_phone_number_from_the_settings(monkeypatch):
    monkeypatch.setenv("CLINIC_PHONE", PHONE)
    clinic = content.clinic()
    assert apology_text() == (
        f"Sorry, something went wrong on our side and I can't answer that right now. Please "
        f"try again in a few minutes, or call {clinic['name']} on {PHONE}. In an emergency, "
        f"call {clinic['emergency_number']}.")
    assert apology() == {"events": [], "responses": [{
        "text": apology_text(), "buttons": [], "elements": [], "custom": {}, "template": None,
        "response": None, "image": None, "attachment": None}]}


def test_decode_call_reads_plain_and_compressed_calls_and_nothing_else():
    call = {"next_action": "action_x", "tracker": {"events": []}}
    body = json.dumps(call).encode()
    assert decode_call(body, None) == call
    assert decode_call(gzip.compress(body), "gzip") == call
    assert decode_call(zlib.compress(body), "deflate") == call  # aiohttp's, for Rasa
    assert decode_call(b"[1]", None) == {}
    assert decode_call(b"\x1f\x8bnot gzip", "gzip") == {}
    assert decode_call(b"not deflate", "deflate") == {}


# -- unit: Rasa's calls in the process get what the HTTP route answers -----------------
def test_once_the_server_listens_rasas_calls_stay_in_the_process(monkeypatch):
    monkeypatch.setattr(local_routes, "_routes", {})
    monkeypatch.setattr(local_routes, "_addresses", set())
    frozen = []
    monkeypatch.setattr(runtime.heap, "freeze", lambda: frozen.append(True) or 1)
    guard = ActionGuardInput(url="http://127.0.0.1:9/webhook")
    blueprint = guard.blueprint(lambda message: asyncio.sleep(0))
    url = "http://127.0.0.1:5005/webhooks/action_guard/webhook"
    assert local_routes.local_handler(url) is None  # not listening yet
    started, = [future.listener for future in blueprint._future_listeners
                if future.event == "after_server_start"]
    app = SimpleNamespace(state=SimpleNamespace(host="127.0.0.1", port=5005))
    asyncio.run(started(app, None))
    assert local_routes.local_handler(url) == guard.answer_locally
    assert frozen == [True]  # the model, loaded before the server started, frozen


# What a stand-in action server answers: (status, content type, body), or "hang"
UPSTREAM = [
    (200, "application/json", b'{"events": [], "responses": [{"text": "from the server"}]}'),
    (400, "application/json", b'{"error": "slot not valid", "action_name": "action_x"}'),
    (404, "application/json; charset=utf-8", b'{"error": "no action", "action_name": "x"}'),
    (500, "text/plain", b"Internal Server Error"),
    (200, "text/html", b"<html>oops</html>"),
    (200, "application/json", b"[1, 2]"),
    "hang",
]


@pytest.mark.parametrize("upstream", UPSTREAM)
def test_in_process_answer_is_the_routes_answer(upstream):
    call = {"next_action": "action_x", "sender_id": "s", "tracker": {"events": []}}
    seen: List[Tuple[Optional[str], Any]] = []

    async def action_server(request: web.Request) -> web.Response:
        # (aiohttp's server has decompressed the body already)
        seen.append((request.headers.get("Content-Encoding"), json.loads(await request.read())))
        if upstream == "hang":
            await asyncio.sleep(5)
        status, content_type, body = upstream
        return web.Response(status=status, body=body, headers={"Content-Type": content_type})

    async def both() -> Tuple[Any, Any]:
        async with local_http_server("/webhook", action_server) as url:
            guard = ActionGuardInput(url=url, timeout=MIN_CALL_SECONDS)
            route = await guard.forward(json.dumps(call).encode(), None)
            local = await guard.answer_locally(call, True)  # Rasa asked for compression
            await guard.session().close()
            return route, local

    route, local = asyncio.run(both())
    assert (local.status, local.content_type) == (route.status, route.content_type)
    assert json.loads(local.body) == json.loads(route.body) if route.status < 300 \
        else local.body == route.body
    if local.data is not None:
        assert local.data == json.loads(local.body)
    assert seen == [(None, call), ("deflate", call)] if upstream != "hang" else len(seen) == 2
    fails = upstream == "hang" or upstream[0] >= 500 or upstream[2][:1] != b"{"
    assert (json.loads(local.body) == apology()) == fails


# -- the real servers ----------------------------------------------------------------
class User:
    """One person chatting over REST, timing each reply."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/webhooks/rest/webhook"
        self.sender = f"fault-{uuid.uuid4().hex[:12]}"

    def say(self, text: str) -> Tuple[List[str], float]:
        started = time.monotonic()
        reply = requests.post(self.url, json={"sender": self.sender, "message": text},
                              timeout=30)
        elapsed = time.monotonic() - started
        assert reply.status_code == 200, reply.text
        return [m.get("text") for m in reply.json()], elapsed


def start_action_server(port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "SANIC_HOST": "127.0.0.1", "TF_CPP_MIN_LOG_LEVEL": "2",
           "RASA_TELEMETRY_ENABLED": "false"}
    process = subprocess.Popen(
        [str(BIN / "rasa"), "run", "actions", "--actions", "actions", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    wait_until_up(f"http://localhost:{port}/health", process, log)
    return process


@needs_model
class TestRealActionServer:
    """Rasa with the real action server, which the tests kill or stop."""

    @pytest.fixture(scope="class")
    def servers(self, tmp_path_factory) -> Iterator[Dict[str, Any]]:
        tmp = tmp_path_factory.mktemp("faults")
        with running_assistant(tmp) as servers:
            state = {"url": servers.rasa_url, "port": servers.actions_port, "tmp": tmp,
                     "actions": servers.processes["actions"]}
            yield state
            if state["actions"] is not servers.processes["actions"]:  # a restarted one
                state["actions"].terminate()
                state["actions"].wait(timeout=30)

    @pytest.fixture
    def actions(self, servers) -> subprocess.Popen:
        """The live action server (a test before may have killed the first one)."""
        if servers["actions"].poll() is not None:
            servers["actions"] = start_action_server(servers["port"],
                                                     servers["tmp"] / "actions-again.log")
        return servers["actions"]

    def test_stopped_action_server_gets_an_apology_within_3_s_then_the_answer(
            self, servers, actions):
        known = User(servers["url"])
        assert known.say("hi")[0][0] == safety_text("disclaimer")
        actions.send_signal(signal.SIGSTOP)
        try:
            replies, elapsed = known.say(BOOK)
            assert replies == [apology_text()]
            assert elapsed < TIME_LIMIT
            # A first message: the session start and the action both hang, and share the
            # time; the guard runs the session start itself, so the disclaimer still opens.
            replies, elapsed = User(servers["url"]).say(BOOK)
            assert replies == [safety_text("disclaimer"), apology_text()]
            assert elapsed < TIME_LIMIT
        finally:
            actions.send_signal(signal.SIGCONT)
        replies, _ = known.say(BOOK)
        assert replies == [booking_text(content.clinic())]
        log = (servers["tmp"] / "rasa.log").read_text()
        assert re.search(rf"ERROR .* Action server http://127\.0\.0\.1:{servers['port']}/webhook "
                         rf"did not answer within [\d.]+ s for 'action_clinic_info'", log)

    def test_killed_action_server_gets_an_apology_then_the_answer_once_restarted(
            self, servers, actions):
        known = User(servers["url"])
        assert known.say("hi")[0][0] == safety_text("disclaimer")
        actions.kill()
        actions.wait(timeout=30)

        replies, elapsed = known.say(BOOK)
        assert replies == [apology_text()]
        assert elapsed < TIME_LIMIT
        replies, elapsed = User(servers["url"]).say(BOOK)
        assert replies == [safety_text("disclaimer"), apology_text()]
        assert elapsed < TIME_LIMIT
        # A red flag still gets the urgent-care message: the guard runs that action itself.
        replies, elapsed = User(servers["url"]).say(RED_FLAG)
        assert replies == [safety_text("disclaimer"), safety_text("emergency")]
        assert elapsed < TIME_LIMIT
        log = (servers["tmp"] / "rasa.log").read_text()
        assert re.search(rf"ERROR .* Action server http://127\.0\.0\.1:{servers['port']}/webhook "
                         rf"is unreachable .* for 'action_clinic_info'", log)

        servers["actions"] = start_action_server(servers["port"],
                                                 servers["tmp"] / "actions-again.log")
        replies, _ = known.say(BOOK)
        assert replies == [booking_text(content.clinic())]
        replies, _ = known.say("what is the piriformis")
        assert replies[0] == content.faqs()["faq_piriformis"]["answer"].strip()


class FaultyActionServer:
    """Stands in for the action server: forwards to the real one, or fails on demand."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/webhook"
        self.mode = "forward"
        self.target: Optional[str] = None  # the real action server, once it runs
        self.fixed: Tuple[int, bytes] = (200, b"{}")
        self._ready = threading.Event()

    async def webhook(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "slow":
            await asyncio.sleep(10)
        elif self.mode == "error":
            return web.Response(status=500, text="Internal Server Error")
        elif self.mode == "garbage":
            return web.Response(status=200, text="<html>oops</html>", content_type="text/html")
        elif self.mode == "fixed":
            status, body = self.fixed
            return web.Response(status=status, body=body,
                                headers={"Content-Type": "application/json; charset=utf-8"})
        async with request.app["client"].post(self.target, data=await request.read(),
                                              headers={"Content-Type": "application/json"}
                                              ) as answer:
            return web.Response(status=answer.status, body=await answer.read(),
                                content_type="application/json")

    def start(self) -> None:
        def serve() -> None:
            import aiohttp

            loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/webhook", self.webhook)

            async def setup() -> None:
                app["client"] = aiohttp.ClientSession()
                runner = web.AppRunner(app)
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", self.port).start()

            loop.run_until_complete(setup())
            self._ready.set()
            loop.run_forever()

        threading.Thread(target=serve, daemon=True).start()
        assert self._ready.wait(10)


@needs_model
class TestFaultyActionServer:
    """Rasa whose ACTION_SERVER_URL is a stand-in that can be slow or fail."""

    @pytest.fixture(scope="class")
    def servers(self, tmp_path_factory) -> Iterator[Dict[str, Any]]:
        fake = FaultyActionServer()
        fake.start()
        tmp = tmp_path_factory.mktemp("faulty")
        env = {"ACTION_SERVER_URL": fake.url, "CLINIC_PHONE": PHONE}
        with running_assistant(tmp, env_extra=env) as servers:
            fake.target = f"http://127.0.0.1:{servers.actions_port}/webhook"
            yield {"url": servers.rasa_url, "fake": fake, "tmp": tmp}

    @pytest.fixture
    def fake(self, servers) -> Iterator[FaultyActionServer]:
        yield servers["fake"]
        servers["fake"].mode = "forward"

    @pytest.fixture
    def clinic_phone(self, monkeypatch) -> None:
        monkeypatch.setenv("CLINIC_PHONE", PHONE)  # as the server has it

    def test_slow_action_server_gets_an_apology_within_3_s(self, servers, fake, clinic_phone):
        known = User(servers["url"])
        assert known.say("hi")[0][0] == safety_text("disclaimer")
        fake.mode = "slow"
        replies, elapsed = known.say(BOOK)
        assert replies == [apology_text()]
        assert PHONE in replies[0]
        assert elapsed < TIME_LIMIT
        replies, elapsed = User(servers["url"]).say(BOOK)
        assert replies == [safety_text("disclaimer"), apology_text()]
        assert elapsed < TIME_LIMIT
        fake.mode = "forward"
        replies, _ = known.say(BOOK)
        assert replies == [booking_text(content.clinic())]

    @pytest.mark.parametrize("mode", ["error", "garbage"])
    def test_failing_action_server_gets_an_apology(self, servers, fake, clinic_phone, mode):
        known = User(servers["url"])
        assert known.say("hi")[0][0] == safety_text("disclaimer")
        fake.mode = mode
        assert known.say(BOOK)[0] == [apology_text()]
        fake.mode = "forward"
        assert known.say(BOOK)[0] == [booking_text(content.clinic())]

    @pytest.mark.parametrize("status, body", [
        (400, b'{"error": "slot not valid", "action_name": "action_clinic_info"}'),
        (404, b'{"error": "No registered action found for name \'action_x\'.", '
              b'"action_name": "action_x"}'),
        (200, b'{"events": [{"event": "slot", "name": "exercise", "value": "clamshell"}], '
              b'"responses": [{"text": "from the action server"}]}'),
    ])
    def test_action_server_answers_pass_through_unchanged(self, servers, fake, status, body):
        fake.mode, fake.fixed = "fixed", (status, body)
        call = {"next_action": "action_clinic_info", "sender_id": "x",
                "tracker": {"sender_id": "x", "events": []}, "domain": {}}
        answer = requests.post(f"{servers['url']}/webhooks/action_guard/webhook", json=call,
                               timeout=10)
        assert (answer.status_code, answer.content) == (status, body)
        assert answer.headers["Content-Type"] == "application/json; charset=utf-8"

    def test_guard_serves_only_local_callers(self, servers):
        answer = requests.post(f"{servers['url']}/webhooks/action_guard/webhook", json={},
                               headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
        assert (answer.status_code, answer.json()) == (403, {"error": "forbidden"})
