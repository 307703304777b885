"""Backpressure: a conversation with too many messages waiting is refused, not dropped.

Rasa serialises the messages of one conversation with its lock store: each message takes
a ticket and waits its turn. A ticket expires LOCK_LIFETIME (60 s) after it was issued, and
a message whose ticket expired while it waited raises LockError, which Rasa's channels
swallow: 200 messages sent at once on one conversation gave HTTP 200 with `[]` for the
~140 that waited longest, and none of those was stored.

So each channel admits at most QUEUE_LIMIT messages per conversation at a time (the one
being answered and those waiting behind it). A message beyond that is refused at once,
before it takes a ticket: REST answers 429 with Retry-After, the other channels send
BUSY_REPLY to the conversation (they cannot refuse a delivery: Telegram and Slack
would just redeliver it). A refused message that holds a warning sign still gets the
safety advice first (the safety net reads every message, refused or not).

The count is per Rasa process. That is enough because every message of one conversation
reaches the same process: one process under `make run`, and deploy/haproxy.cfg balances
by conversation id.
"""
from __future__ import annotations

import os
from collections import Counter
from contextlib import contextmanager
from typing import Iterator, List

# Up to 8 turns queue in a few seconds even when the action server is slow (its calls
# time out after a few seconds), far inside the 60 s a ticket lives.
QUEUE_LIMIT = int(os.environ.get("CONVERSATION_QUEUE_LIMIT", "8"))
RETRY_AFTER_SECONDS = 2
BUSY_REPLY = ("One moment, please: I'm still answering your earlier messages. Please send "
              "that last one again in a few seconds.")

_admitted: Counter = Counter()


class Busy(Exception):
    """The conversation has QUEUE_LIMIT messages in hand; `replies` say so (with the
    safety advice first when the refused text holds a warning sign)."""

    def __init__(self, replies: List[str]) -> None:
        super().__init__("conversation busy")
        self.replies = replies


def refusal_replies(text: str) -> List[str]:
    from actions.safety import safety_text
    from channels.payloads import safety_findings

    findings = safety_findings(text)
    return ([safety_text(findings[0].tier)] if findings else []) + [BUSY_REPLY]


@contextmanager
def admission(conversation_id: str, text: str) -> Iterator[None]:
    """Holds a place for one message of `conversation_id` while it is handled; raises
    Busy (before anything is queued) when the conversation has no place left."""
    if _admitted[conversation_id] >= QUEUE_LIMIT:
        raise Busy(refusal_replies(text))
    _admitted[conversation_id] += 1
    try:
        yield
    finally:
        _admitted[conversation_id] -= 1
        if _admitted[conversation_id] <= 0:
            del _admitted[conversation_id]


def in_hand(conversation_id: str) -> int:
    return _admitted.get(conversation_id, 0)
