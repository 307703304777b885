"""Slack and Telegram through the running Rasa server, with the platforms' real payloads;
their Web APIs are a local fake that records what would reach the user. Also what every
channel's server shows: Socket.IO's origin check and `GET /` without the version."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import os
import threading
import time
import urllib.parse
from typing import Any, Dict, Iterator, List

import pytest
import requests
from aiohttp import web

import rasa
import socketio

from actions import content
from channels.deliveries import DeliveryLog
from scripts.servers import MODEL, free_port, running_assistant
from tests.services import REDIS, redis_available

pytestmark = pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run `make train`")

SLACK_SECRET = "test-signing-secret"
TELEGRAM_TOKEN = "123456:test-token"
TELEGRAM_SECRET = "test-webhook-secret"
BOT_NAME = "clinic_test_bot"


class FakePlatforms:
    """Slack Web API and Telegram Bot API on one local port; records every call."""

    def __init__(self) -> None:
        self.calls: List[Dict[str, Any]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._ready = threading.Event()

    async def slack(self, request: web.Request) -> web.Response:
        data = await request.post() if request.content_type != "application/json" \
            else await request.json()
        self.calls.append({"api": "slack", "method": request.match_info["method"],
                           "data": dict(data)})
        return web.json_response({"ok": True, "channel": "D1", "ts": "1700000000.000100"})

    async def telegram(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        data = dict(await request.post())
        self.calls.append({"api": "telegram", "method": method, "data": data})
        if method == "getMe":
            result: Any = {"id": 42, "is_bot": True, "first_name": "Clinic", "username": BOT_NAME}
        elif method == "sendMessage":
            result = {"message_id": len(self.calls), "date": int(time.time()),
                      "chat": {"id": int(data["chat_id"]), "type": "private"},
                      "text": data.get("text", "")}
        else:
            result = True
        return web.json_response({"ok": True, "result": result})

    def start(self) -> None:
        def serve() -> None:
            loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/slack/api/{method}", self.slack)
            app.router.add_post("/telegram/bot{token}/{method}", self.telegram)
            runner = web.AppRunner(app)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            self._ready.set()
            loop.run_forever()

        threading.Thread(target=serve, daemon=True).start()
        self._ready.wait(10)

    def sent(self, api: str, method: str) -> List[Dict[str, Any]]:
        return [c["data"] for c in self.calls if c["api"] == api and c["method"] == method]

    def wait_for(self, api: str, method: str, count: int, timeout: float = 30) -> List[Dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.sent(api, method)) >= count:
                return self.sent(api, method)
            time.sleep(0.2)
        raise AssertionError(f"expected {count} {api} {method} calls, got {self.calls}")


@pytest.fixture(scope="module")
def platforms(tmp_path_factory) -> Iterator[Dict[str, Any]]:
    fake = FakePlatforms()
    fake.start()
    env = {
        "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SLACK_SECRET,
        "SLACK_API_URL": f"{fake.url}/slack/api/",
        "TELEGRAM_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_BOT_NAME": BOT_NAME,
        "TELEGRAM_WEBHOOK_URL": "https://clinic.example/webhooks/telegram/webhook",
        "TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET, "TELEGRAM_API_URL": f"{fake.url}/telegram/",
    }
    with running_assistant(tmp_path_factory.mktemp("channels"), env_extra=env) as servers:
        command = servers.processes["rasa"].args
        yield {"rasa": servers.rasa_url, "fake": fake, "process": servers.processes["rasa"],
               "cors": command[command.index("--cors") + 1]}


# -- Telegram ------------------------------------------------------------------------
def telegram_update(update_id: int, chat_id: int, text: str = "", button: str = "") -> Dict:
    chat = {"id": chat_id, "type": "private", "first_name": "Pat"}
    user = {"id": chat_id, "is_bot": False, "first_name": "Pat"}
    message = {"message_id": update_id, "date": int(time.time()), "chat": chat, "from": user,
               "text": text}
    if button:
        return {"update_id": update_id, "callback_query": {
            "id": str(update_id), "from": user, "chat_instance": "1", "data": button,
            "message": {**message, "text": "earlier bot message"}}}
    return {"update_id": update_id, "message": message}


def post_telegram(rasa: str, update: Dict, secret: str = TELEGRAM_SECRET) -> requests.Response:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
    return requests.post(f"{rasa}/webhooks/telegram/webhook", json=update, headers=headers,
                         timeout=30)


def test_telegram_webhook_is_registered_with_the_secret(platforms):
    [registration] = platforms["fake"].sent("telegram", "setWebhook")
    assert registration["secret_token"] == TELEGRAM_SECRET
    assert registration["url"].endswith("/webhooks/telegram/webhook")


@pytest.mark.parametrize("secret", ["", "wrong-secret"])
def test_telegram_rejects_forged_updates(platforms, secret):
    before = len(platforms["fake"].calls)
    reply = post_telegram(platforms["rasa"], telegram_update(1, 1001, "hi"), secret=secret)
    assert reply.status_code == 403
    time.sleep(1)
    assert platforms["fake"].calls[before:] == []


def test_telegram_start_greets_with_the_disclaimer_and_buttons_work(platforms):
    fake, chat = platforms["fake"], 2002
    assert post_telegram(platforms["rasa"], telegram_update(2, chat, "/start")).status_code == 200
    sent = [m for m in fake.wait_for("telegram", "sendMessage", 2)
            if m["chat_id"] == str(chat)]
    assert "not a diagnosis" in sent[0]["text"]
    assert sent[1]["text"].startswith("Hello!")
    keyboard = json.loads(sent[1]["reply_markup"])["inline_keyboard"]
    assert [row[0]["callback_data"] for row in keyboard] == [
        "/faq_glutes_cause_back_pain", "/faq_glute_activation", "/book_appointment",
        "/ask_capabilities"]
    assert all(len(row) == 1 for row in keyboard)

    # Pressing a button continues the conversation.
    post_telegram(platforms["rasa"], telegram_update(3, chat, button="/faq_glute_activation"))
    fake.wait_for("telegram", "sendMessage", 4)
    answer, prompt = [m for m in fake.sent("telegram", "sendMessage")
                      if m["chat_id"] == str(chat)][-2:]
    assert answer["text"] == content.faqs()["faq_glute_activation"]["answer"].strip()
    # The first answer is followed by "Was this helpful?" with its two buttons.
    assert prompt["text"] == "Was this helpful?"
    assert [row[0]["callback_data"] for row in
            json.loads(prompt["reply_markup"])["inline_keyboard"]] == [
        "/feedback_helpful", "/feedback_not_helpful"]


# -- Slack ---------------------------------------------------------------------------
def post_slack(rasa: str, body: bytes, content_type: str, secret: str = SLACK_SECRET,
               headers: Dict[str, str] = None, timestamp: str = "") -> requests.Response:
    timestamp = timestamp or str(int(time.time()))
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body,
                                 hashlib.sha256).hexdigest()
    return requests.post(f"{rasa}/webhooks/slack/webhook", data=body, timeout=30, headers={
        "Content-Type": content_type, "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature, **(headers or {})})


def slack_event(text: str, ts: str, event_id: str, thread_ts: str = None) -> bytes:
    event = {"type": "message", "channel": "D1", "channel_type": "im", "user": "U123",
             "text": text, "ts": ts}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return json.dumps({"type": "event_callback", "event_id": event_id, "team_id": "T1",
                       "authorizations": [{"user_id": "UBOT"}], "event": event}).encode()


def slack_messages(fake, thread: str) -> List[Dict]:
    return [m for m in fake.sent("slack", "chat.postMessage") if m.get("thread_ts") == thread]


def wait_for_thread(fake, thread: str, count: int, timeout: float = 30) -> List[Dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(slack_messages(fake, thread)) < count:
        time.sleep(0.2)
    return slack_messages(fake, thread)


@pytest.mark.parametrize("secret", ["", "not-the-secret"])
def test_slack_rejects_unsigned_or_badly_signed_requests(platforms, secret):
    body = slack_event("hi", "1700000001.000001", "Ev0001")
    if secret:
        reply = post_slack(platforms["rasa"], body, "application/json", secret=secret)
    else:
        reply = requests.post(f"{platforms['rasa']}/webhooks/slack/webhook", data=body,
                              headers={"Content-Type": "application/json"}, timeout=30)
    assert reply.status_code == 400
    time.sleep(1)
    assert slack_messages(platforms["fake"], "1700000001.000001") == []


def test_slack_answers_in_the_thread_with_block_kit_buttons_once(platforms):
    fake, ts = platforms["fake"], "1700000002.000002"
    body = slack_event("what is the piriformis", ts, "Ev0002")
    assert post_slack(platforms["rasa"], body, "application/json").status_code == 200
    messages = wait_for_thread(fake, ts, 3)
    assert "not a diagnosis" in messages[0]["text"]
    answer = messages[1]
    assert messages[2]["text"] == "Was this helpful?"
    assert answer["text"] == content.faqs()["faq_piriformis"]["answer"].strip()
    blocks = json.loads(answer["blocks"]) if isinstance(answer["blocks"], str) else answer["blocks"]
    values = [e["value"] for e in blocks[1]["elements"]]
    assert values == [f"/{r}" for r in content.faqs()["faq_piriformis"]["related"]]

    # Slack's retries (and re-deliveries of the same event) give no second answer.
    post_slack(platforms["rasa"], body, "application/json",
               headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"})
    post_slack(platforms["rasa"], body, "application/json")
    time.sleep(3)
    assert len(slack_messages(fake, ts)) == 3

    # A button click (interactivity payload) continues the same thread's conversation.
    payload = {"type": "block_actions", "user": {"id": "U123"}, "channel": {"id": "D1"},
               "message": {"ts": "1700000002.000900", "thread_ts": ts},
               "actions": [{"type": "button", "action_id": "a1", "block_id": "b1",
                            "value": values[0], "text": {"type": "plain_text", "text": "x"}}]}
    form = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    assert post_slack(platforms["rasa"], form, "application/x-www-form-urlencoded").ok
    messages = wait_for_thread(fake, ts, 4)
    assert messages[3]["text"] == content.faqs()[values[0][1:]]["answer"].strip()


def test_each_slack_thread_is_its_own_conversation(platforms):
    fake = platforms["fake"]
    for ts, event_id in (("1700000003.000003", "Ev0003"), ("1700000004.000004", "Ev0004")):
        post_slack(platforms["rasa"], slack_event("hello", ts, event_id), "application/json")
        messages = wait_for_thread(fake, ts, 2)
        assert "not a diagnosis" in messages[0]["text"]  # a new conversation each time


# -- bad input (channels/payloads.py) ------------------------------------------------
def telegram_chat(fake, chat: int, count: int, timeout: float = 30) -> List[str]:
    """Texts sent to `chat`: at least `count`, then 1.5 s of quiet."""
    def texts() -> List[str]:
        return [m["text"] for m in fake.sent("telegram", "sendMessage")
                if m["chat_id"] == str(chat)]

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(texts()) < count:
        time.sleep(0.2)
    time.sleep(1.5)
    return texts()


def test_telegram_typed_payload_is_read_as_text_and_long_messages_are_cut(platforms):
    from actions.safety import safety_text
    from channels.payloads import MAX_MESSAGE_CHARS, TRUNCATED_NOTICE

    fake, chat = platforms["fake"], 4004
    post_telegram(platforms["rasa"], telegram_update(40, chat, "/start"))
    assert telegram_chat(fake, chat, 2)[0] == safety_text("disclaimer")

    # Accepted, `/session_start` would start a new session: the disclaimer again.
    post_telegram(platforms["rasa"], telegram_update(41, chat, "/session_start"))
    replies = telegram_chat(fake, chat, 3)[2:]
    assert replies and safety_text("disclaimer") not in replies

    # A button's payload typed by hand is a button's payload.
    before = len(telegram_chat(fake, chat, 0))
    post_telegram(platforms["rasa"], telegram_update(42, chat, "/faq_piriformis"))
    assert telegram_chat(fake, chat, before + 1)[before] == \
        content.faqs()["faq_piriformis"]["answer"].strip()

    before = len(telegram_chat(fake, chat, 0))
    text = ("what is the piriformis? " * 100)[:MAX_MESSAGE_CHARS + 400]
    post_telegram(platforms["rasa"], telegram_update(43, chat, text))
    replies = telegram_chat(fake, chat, before + 2)[before:]
    assert replies[0] == content.faqs()["faq_piriformis"]["answer"].strip()
    assert replies[-1] == TRUNCATED_NOTICE


# -- limits on the platforms' payloads (channels/limits.py) --------------------------
def deep_json(depth: int) -> str:
    return '{"k":' * (depth // 2) + "[" * (depth - depth // 2) + "1" + \
        "]" * (depth - depth // 2) + "}" * (depth // 2)


@pytest.mark.parametrize("depth", [100, 1_000, 10_000])
def test_deep_telegram_updates_get_400(platforms, depth):
    before = len(platforms["fake"].calls)
    body = json.dumps(telegram_update(50, 5005, "hi"))[:-1] + ', "extra": ' + \
        deep_json(depth) + "}"
    reply = requests.post(f"{platforms['rasa']}/webhooks/telegram/webhook", data=body,
                          headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
                          timeout=30)
    assert (reply.status_code, reply.text) == (400, "bad update: too_deep")
    assert platforms["process"].poll() is None
    time.sleep(1)
    assert platforms["fake"].calls[before:] == []


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"', b""])
def test_telegram_updates_that_are_not_objects_get_400(platforms, body):
    reply = requests.post(f"{platforms['rasa']}/webhooks/telegram/webhook", data=body,
                          headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
                          timeout=30)
    assert reply.status_code == 400
    assert platforms["process"].poll() is None


def interaction(value: str, thread: str, action_ts: str = "", trigger_id: str = "",
                user: str = "U123") -> Dict[str, Any]:
    """A block_actions payload as Slack sends it for a click on one of our buttons."""
    action = {"type": "button", "action_id": "a1", "block_id": "b1", "value": value,
              "text": {"type": "plain_text", "text": "x"}}
    if action_ts:
        action["action_ts"] = action_ts
    payload = {"type": "block_actions", "user": {"id": user, "username": "pat"},
               "channel": {"id": "D1", "name": "directmessage"}, "team": {"id": "T1"},
               "message": {"ts": thread + "1", "thread_ts": thread, "type": "message",
                           "blocks": [{"type": "actions", "elements": [action]}]},
               "container": {"type": "message", "message_ts": thread + "1"},
               "actions": [action]}
    if trigger_id:
        payload["trigger_id"] = trigger_id
    return payload


def form(payload: Any) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return urllib.parse.urlencode({"payload": text}).encode()


@pytest.mark.parametrize("body", [
    form("not json"),
    form("[1, 2]"),
    form('{"payload": ' * 600 + "1" + "}" * 600),
    form({"type": "view_submission", "user": {"id": "U123"}, "view": {"id": "V1"}}),
    form({"type": "shortcut", "callback_id": "x", "trigger_id": "1.2.3"}),
    form({"type": "block_actions", "actions": {"type": "button"}, "user": {"id": "U1"}}),
    form({"type": "block_actions", "actions": [], "user": {"id": "U1"}}),
    form({"type": "block_actions", "actions": ["button"], "user": {"id": "U1"}}),
    form({"type": "block_actions", "actions": [{"type": "button", "value": "/greet"}]}),
    form({"type": "block_actions", "actions": [{"type": "button", "value": "/greet"}],
          "user": "U1"}),
    form({"type": "block_actions", "actions": [{"type": "button", "value": "/greet"}],
          "user": {"id": 5}}),
    form({"type": "block_actions", "actions": [{"type": "select", "selected_options": []}],
          "user": {"id": "U1"}}),
    form({"type": "block_actions", "actions": [{"type": "static_select"}],
          "user": {"id": "U1"}}),
    form({"type": "block_actions", "actions": [{"type": "button", "value": {"x": 1}}],
          "user": {"id": "U1"}}),
    form({"type": "block_actions", "actions": [{"type": "button", "value": "/greet"}],
          "user": {"id": "U1"}, "channel": "D1"}),
    form({"type": "block_actions", "actions": [{"type": "button", "value": "/greet"}],
          "user": {"id": "U1"}, "message": {"ts": 5}}),
    urllib.parse.urlencode({"other": "x"}).encode(),
    urllib.parse.urlencode([("payload", "{}"), ("payload", "{}")]).encode(),
    b"",
], ids=lambda body: body[:60].decode())
def test_unexpected_signed_slack_form_payloads_get_400(platforms, body):
    reply = post_slack(platforms["rasa"], body, "application/x-www-form-urlencoded")
    assert reply.status_code == 400, reply.text
    assert platforms["process"].poll() is None


@pytest.mark.parametrize("body", [
    b"not json", b"[1, 2]", b'{"event": "hi"}', b'{"event": {"text": ["hi"]}}',
    b'{"event": {"type": "message", "text": "hi", "user": 5, "channel_type": "im"}}',
    b'{"authed_users": "U1", "event": {}}', b'{"authorizations": [5], "event": {}}',
    b'{"event": ' + deep_json(10_000).encode() + b"}",
], ids=lambda body: body[:50].decode())
def test_unexpected_signed_slack_events_get_400(platforms, body):
    reply = post_slack(platforms["rasa"], body, "application/json")
    assert reply.status_code == 400, reply.text
    assert platforms["process"].poll() is None


def test_a_slack_click_is_answered_once_however_often_it_is_delivered(platforms):
    fake, thread = platforms["fake"], "1700000006.000006"
    click = form(interaction("/faq_piriformis", thread, action_ts="1700000006.100001",
                             trigger_id="111.222.aaa"))
    now = int(time.time())
    # The same click three times: as it was signed (a replay), and signed anew.
    for timestamp in (now, now, now - 1):
        assert post_slack(platforms["rasa"], click, "application/x-www-form-urlencoded",
                          timestamp=str(timestamp)).status_code == 200
    messages = wait_for_thread(fake, thread, 3)
    time.sleep(3)
    assert [m["text"] for m in slack_messages(fake, thread)] == [
        m["text"] for m in messages[:3]]
    assert messages[1]["text"] == content.faqs()["faq_piriformis"]["answer"].strip()
    # Without action_ts, the trigger_id tells the deliveries apart.
    for _ in range(2):
        post_slack(platforms["rasa"], form(interaction(
            "/faq_glute_activation", thread, trigger_id="333.444.bbb")),
            "application/x-www-form-urlencoded", timestamp=str(now - 2))
    time.sleep(4)
    texts = [m["text"] for m in slack_messages(fake, thread)]
    assert texts.count(content.faqs()["faq_glute_activation"]["answer"].strip()) == 1
    # A new click on a button is a new delivery.
    post_slack(platforms["rasa"], form(interaction("/faq_piriformis", thread,
                                                   action_ts="1700000006.200002")),
               "application/x-www-form-urlencoded")
    time.sleep(4)
    texts = [m["text"] for m in slack_messages(fake, thread)]
    assert texts.count(content.faqs()["faq_piriformis"]["answer"].strip()) == 2


def test_a_slack_retry_of_an_event_never_seen_is_answered(platforms):
    fake, ts = platforms["fake"], "1700000007.000007"
    body = slack_event("hello", ts, "Ev0007")
    headers = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"}
    assert post_slack(platforms["rasa"], body, "application/json",
                      headers=headers).status_code == 200
    assert "not a diagnosis" in wait_for_thread(fake, ts, 2)[0]["text"]
    post_slack(platforms["rasa"], body, "application/json",
               headers={**headers, "X-Slack-Retry-Num": "2"})
    post_slack(platforms["rasa"], body, "application/json")
    time.sleep(3)
    assert len(slack_messages(fake, ts)) == 2


def test_delivery_log_remembers_keys_for_its_ttl_in_memory():
    log = DeliveryLog(ttl_seconds=0.5)
    assert log.first_time("a") and not log.first_time("a") and log.first_time("b")
    time.sleep(0.6)
    assert log.first_time("a")


@pytest.mark.skipif(not redis_available(), reason="Redis is not running")
def test_delivery_log_is_shared_through_the_lock_stores_redis():
    from stores.lock_store import ClinicRedisLockStore

    store = ClinicRedisLockStore(host=REDIS["REDIS_HOST"], port=int(REDIS["REDIS_PORT"]),
                                 db=int(REDIS["REDIS_DB"]),
                                 key_prefix=f"deliverytest{time.time_ns()}")
    first, second = DeliveryLog(), DeliveryLog()  # as in two processes
    try:
        assert first.first_time("click", store)
        assert not second.first_time("click", store)
        assert not first.first_time("click", store)
        [name] = list(store.red.scan_iter(f"{store.key_prefix}delivery:*"))
        assert 0 < store.red.ttl(name) <= 600
    finally:
        for name in store.red.scan_iter(f"{store.key_prefix}*"):
            store.red.delete(name)
    # Redis unreachable: this process's memory still answers once.
    down = ClinicRedisLockStore(host="127.0.0.1", port=1, socket_timeout=1)
    assert second.first_time("other", down) and not second.first_time("other", down)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> Iterator[Dict[str, Any]]:
    """Two Rasa processes with the Redis lock store (endpoints.workers.yml), Slack on."""
    if not redis_available():
        pytest.skip("Redis is not running")
    fake = FakePlatforms()
    fake.start()
    env = {**REDIS, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": SLACK_SECRET,
           "SLACK_API_URL": f"{fake.url}/slack/api/"}
    with running_assistant(tmp_path_factory.mktemp("slack_two"), env_extra=env,
                           endpoints="endpoints.workers.yml", rasa_processes=2) as servers:
        yield {"urls": list(servers.rasa_urls.values()), "fake": fake}


def test_a_slack_click_delivered_to_two_processes_is_answered_once(two_processes):
    fake, thread = two_processes["fake"], f"17000000{int(time.time()) % 100:02d}.000008"
    click = form(interaction("/faq_piriformis", thread, action_ts=f"{time.time():.6f}",
                             trigger_id=f"{time.time_ns()}.1.c"))
    replies = [post_slack(url, click, "application/x-www-form-urlencoded",
                          timestamp=str(int(time.time()) - n))
               for n, url in enumerate(two_processes["urls"] * 2)]
    assert [r.status_code for r in replies] == [200] * 4
    wait_for_thread(fake, thread, 3)
    time.sleep(3)
    texts = [m["text"] for m in slack_messages(fake, thread)]
    assert texts.count(content.faqs()["faq_piriformis"]["answer"].strip()) == 1, texts


# -- what the server shows -----------------------------------------------------------
def test_root_answers_without_the_version(platforms):
    reply = requests.get(f"{platforms['rasa']}/", timeout=10)
    assert reply.status_code == 200
    assert rasa.__version__ not in reply.text and rasa.__version__ not in str(reply.headers)
    assert reply.text == "ok"


def handshake(rasa_url: str, origin: str = "") -> requests.Response:
    return requests.get(f"{rasa_url}/socket.io/", params={"EIO": "4", "transport": "polling"},
                        headers={"Origin": origin} if origin else {}, timeout=10)


def websocket_upgrade(rasa_url: str, origin: str = "") -> int:
    """The status of a WebSocket handshake on the Socket.IO path (101: switched)."""
    host, port = urllib.parse.urlsplit(rasa_url).hostname, urllib.parse.urlsplit(rasa_url).port
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", "/socket.io/?EIO=4&transport=websocket", headers={
            "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
            **({"Origin": origin} if origin else {})})
        return connection.getresponse().status
    finally:
        connection.close()


def test_socketio_refuses_origins_outside_cors(platforms):
    rasa_url, allowed = platforms["rasa"], platforms["cors"]
    assert handshake(rasa_url, allowed).status_code == 200
    assert handshake(rasa_url).status_code == 200  # not a browser: no Origin header
    for origin in ("https://evil.example", allowed + ".evil.example", "null",
                   allowed.replace("localhost", "127.0.0.1")):
        reply = handshake(rasa_url, origin)
        assert (reply.status_code, reply.json()["error"]) == (403, "origin_not_allowed")
    # A Socket.IO client from a refused origin cannot connect; from the widget's it can.
    client = socketio.Client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(rasa_url, transports=["polling"], socketio_path="/socket.io",
                       headers={"Origin": "https://evil.example"}, wait_timeout=5)
    client = socketio.Client()
    client.connect(rasa_url, transports=["polling"], socketio_path="/socket.io",
                   headers={"Origin": allowed}, wait_timeout=5)
    client.disconnect()
    # The WebSocket upgrade (browsers apply no CORS to it): refused, or switched.
    assert websocket_upgrade(rasa_url, "https://evil.example") == 403
    assert websocket_upgrade(rasa_url, allowed) == 101
    assert websocket_upgrade(rasa_url) == 101
    assert platforms["process"].poll() is None
