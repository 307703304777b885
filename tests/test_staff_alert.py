"""Staff alerts for red flags, against a local HTTP server standing in for the webhook."""
from __future__ import annotations

import asyncio
import json
import logging

import pytest
from aiohttp import web

from actions import alerts
from actions.safety import ActionUrgentCare
from tests.conftest import make_tracker
from tests.services import local_http_server

SECRET_TEXT = "I'm John Smith and I wet myself this morning"
SENDER = "john.smith@example.com"


def red_flag_tracker():
    return make_tracker("report_red_flag", text=SECRET_TEXT, channel="telegram",
                        sender_id=SENDER, entities=[{
                            "entity": "red_flag", "value": "emergency",
                            "role": "cauda_equina", "start": 27, "end": 37}])


@pytest.fixture
async def webhook():
    """A local webhook; `behaviour` decides how it answers."""
    received, release = [], asyncio.Event()
    state = {"behaviour": "ok"}

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.text())
        if state["behaviour"] == "hang":
            await release.wait()
        if state["behaviour"] == "fail":
            return web.Response(status=500)
        return web.Response(text="ok")

    async with local_http_server("/hook", handle) as url:
        yield {"url": url, "received": received, "state": state, "release": release}
        release.set()


async def test_alert_has_tier_category_channel_and_reference_but_nothing_personal(
        webhook, monkeypatch, dispatcher):
    monkeypatch.setenv("STAFF_ALERT_WEBHOOK_URL", webhook["url"])
    await ActionUrgentCare().run(dispatcher, red_flag_tracker(), {})
    await asyncio.gather(*alerts._pending)
    [body] = webhook["received"]
    payload = json.loads(body)
    assert payload["tier"] == "emergency"
    assert payload["category"] == "cauda_equina"
    assert payload["channel"] == "telegram"
    assert payload["conversation_ref"] == alerts.conversation_reference(SENDER)
    assert "emergency" in payload["text"] and payload["conversation_ref"] in payload["text"]
    for private in ("John", "Smith", "wet myself", SENDER, "example.com"):
        assert private.lower() not in body.lower()


async def test_a_hanging_webhook_does_not_delay_the_reply(webhook, monkeypatch, dispatcher,
                                                          caplog):
    webhook["state"]["behaviour"] = "hang"
    monkeypatch.setenv("STAFF_ALERT_WEBHOOK_URL", webhook["url"])
    monkeypatch.setenv("STAFF_ALERT_TIMEOUT_SECONDS", "0.5")
    events = await ActionUrgentCare().run(dispatcher, red_flag_tracker(), {})
    # The reply is ready while the webhook is still holding the request.
    assert dispatcher.messages and events
    assert not webhook["release"].is_set()
    with caplog.at_level(logging.WARNING, logger="actions.alerts"):
        await asyncio.gather(*alerts._pending)
    assert "Staff alert webhook failed" in caplog.text


async def test_a_failing_webhook_is_logged(webhook, monkeypatch, dispatcher, caplog):
    webhook["state"]["behaviour"] = "fail"
    monkeypatch.setenv("STAFF_ALERT_WEBHOOK_URL", webhook["url"])
    await ActionUrgentCare().run(dispatcher, red_flag_tracker(), {})
    with caplog.at_level(logging.WARNING, logger="actions.alerts"):
        await asyncio.gather(*alerts._pending)
    assert "HTTP 500" in caplog.text
    assert "emergency department" in dispatcher.messages[0]["text"]


async def test_no_webhook_configured_sends_nothing(monkeypatch, dispatcher):
    monkeypatch.delenv("STAFF_ALERT_WEBHOOK_URL", raising=False)
    assert alerts.send_staff_alert("urgent", "cancer", "rest", "x") is None
    await ActionUrgentCare().run(dispatcher, red_flag_tracker(), {})
    assert not alerts._pending
