"""Backpressure (channels/backpressure.py): the admission count (unit), then 200 messages
sent at once on one conversation over REST and a burst over Socket.IO, against the real
server: each message is answered and stored exactly once, in order, or refused with a
clear status (REST 429, Socket.IO the "one moment" reply), never a 200 with nothing."""
from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, List, Tuple

import aiohttp
import pytest

from actions.safety import safety_text
from channels import backpressure
from channels.backpressure import BUSY_REPLY, QUEUE_LIMIT, Busy, admission
from tests.widget_client import Widget

RED_FLAG = "i've lost control of my bladder since this morning"


# -- the admission count (unit) -------------------------------------------------------
def test_a_conversation_holds_at_most_the_limit_and_others_are_not_affected():
    with admission("a", "hello"):
        with admission("a", "hello"):
            assert backpressure.in_hand("a") == 2
            assert backpressure.in_hand("b") == 0
    assert backpressure.in_hand("a") == 0


def test_beyond_the_limit_busy_is_raised_and_the_place_is_not_taken():
    places = [admission("c", "hi") for _ in range(QUEUE_LIMIT)]
    for place in places:
        place.__enter__()
    with pytest.raises(Busy) as refused:
        with admission("c", "hi"):
            pytest.fail("admitted beyond the limit")
    assert refused.value.replies == [BUSY_REPLY]
    assert backpressure.in_hand("c") == QUEUE_LIMIT
    for place in places:
        place.__exit__(None, None, None)
    assert backpressure.in_hand("c") == 0


def test_a_refused_message_with_a_warning_sign_gets_the_advice_first():
    places = [admission("d", "hi") for _ in range(QUEUE_LIMIT)]
    for place in places:
        place.__enter__()
    try:
        with pytest.raises(Busy) as refused:
            with admission("d", RED_FLAG):
                pass
    finally:
        for place in places:
            place.__exit__(None, None, None)
    assert refused.value.replies == [safety_text("emergency"), BUSY_REPLY]


def test_a_failure_while_handling_gives_the_place_back():
    with pytest.raises(RuntimeError):
        with admission("e", "hi"):
            raise RuntimeError
    assert backpressure.in_hand("e") == 0


# -- against the real server -----------------------------------------------------------
def stored_user_texts(db: Path, sender: str) -> List[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT data FROM events WHERE sender_id = ? ORDER BY id",
                                  (sender,)).fetchall()
    events = [json.loads(data) for (data,) in rows]
    return [e["text"] for e in events if e.get("event") == "user"]


async def flood(url: str, sender: str, texts: List[str]) -> List[Tuple[int, Any, float]]:
    """Every text POSTed at once: (status, body, seconds until the answer) for each."""
    loop = asyncio.get_running_loop()

    async def one(session: aiohttp.ClientSession, text: str) -> Tuple[int, Any, float]:
        async with session.post(f"{url}/webhooks/rest/webhook",
                                json={"sender": sender, "message": text}) as answer:
            return answer.status, await answer.json(), loop.time()

    timeout = aiohttp.ClientTimeout(total=180)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        return await asyncio.gather(*[one(session, text) for text in texts])


def test_200_messages_at_once_are_each_answered_and_stored_once_in_order_or_refused(assistant):
    sender = f"flood-{uuid.uuid4().hex[:8]}"
    texts = [f"how do I do a glute bridge? ({n})" for n in range(200)]
    answers = asyncio.run(flood(assistant["url"], sender, texts))
    statuses = {status for status, _, _ in answers}
    assert statuses <= {200, 429}, statuses
    answered = [(done, text, body) for text, (status, body, done) in zip(texts, answers)
                if status == 200]
    refused = [body for status, body, _ in answers if status == 429]
    # Places free up as answers go out, so a few more than QUEUE_LIMIT may be answered.
    assert len(answered) >= 1 and len(refused) >= 100 and len(answered) + len(refused) == 200
    for _, _, body in answered:
        assert body and any("bridge" in m.get("text", "").lower() for m in body), body
    for body in refused:
        assert body["error"] == "conversation_busy"
        assert body["messages"] == [{"text": BUSY_REPLY}]
    # Stored exactly once each, in the order they were answered; nothing refused stored.
    in_order = [text for _, text, _ in sorted(answered)]
    assert stored_user_texts(assistant["db"], sender) == in_order


def test_a_refused_red_flag_message_still_gets_the_urgent_advice(assistant):
    sender = f"flood-flag-{uuid.uuid4().hex[:8]}"
    texts = ["what is the piriformis?"] * (QUEUE_LIMIT + 12) + [RED_FLAG]
    answers = asyncio.run(flood(assistant["url"], sender, texts))
    status, body, _ = answers[-1]
    emergency = safety_text("emergency")
    if status == 429:
        assert body["messages"][0]["text"] == emergency
    else:
        assert status == 200 and any(emergency in m.get("text", "") for m in body)


def test_a_burst_on_the_widget_gets_answers_or_the_one_moment_reply(assistant):
    widget = Widget(assistant["url"])
    try:
        widget.send({"message": "hi", "session_id": widget.session_id}, count=2)
        texts = [f"what is the gluteus medius? ({n})" for n in range(24)]
        before = len(widget.received)
        # In two bursts of 12: the polling transport sends what is queued in one request,
        # and Engine.IO refuses a request of more than 16 packets.
        for n, text in enumerate(texts):
            widget.client.emit("user_uttered", {"message": text,
                                                "session_id": widget.session_id})
            if n == 11:
                time.sleep(0.2)
        deadline, seen = time.monotonic() + 60, -1
        while len(widget.received) != seen and time.monotonic() < deadline:
            seen = len(widget.received)  # until 2 s pass with nothing new
            time.sleep(2)
        received = [m.get("text", "") for m in widget.received[before:]]
        # Then the conversation goes on as usual.
        replies = widget.send({"message": "thanks", "session_id": widget.session_id},
                              count=1, timeout=60)
    finally:
        widget.client.disconnect()
    assert replies and BUSY_REPLY not in [m.get("text") for m in replies]
    stored = stored_user_texts(assistant["db"], widget.session_id)
    busy = received.count(BUSY_REPLY)
    answered = [text for text in texts if text in stored]
    assert stored[-1] == "thanks"
    assert busy >= 1 and busy + len(answered) == len(texts)
    assert len(set(stored)) == len(stored)  # nothing twice
