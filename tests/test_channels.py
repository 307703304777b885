"""Slack and Telegram through the running Rasa server, with the platforms' real payloads;
their Web APIs are a local fake that records what would reach the user."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from typing import Any, Dict, Iterator, List

import pytest
import requests
from aiohttp import web

from actions import content
from scripts.servers import MODEL, free_port, running_assistant

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
        yield {"rasa": servers.rasa_url, "fake": fake}


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
               headers: Dict[str, str] = None) -> requests.Response:
    timestamp = str(int(time.time()))
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
