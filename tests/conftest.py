"""Shared test helpers: build rasa-sdk trackers the way Rasa sends them."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher


def make_tracker(intent: str, entities: Optional[List[Dict[str, Any]]] = None,
                 ranking: Optional[List[Dict[str, Any]]] = None,
                 text: str = "text", slots: Optional[Dict[str, Any]] = None,
                 channel: str = "rest", sender_id: str = "test-user") -> Tracker:
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": entities or [],
        "intent_ranking": ranking or [{"name": intent, "confidence": 0.9}],
    }
    events = [{"event": "user", "text": text, "parse_data": latest, "input_channel": channel}]
    return Tracker(sender_id, slots or {}, latest, events, False, None, {}, "action_listen")


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


def sent(dispatcher: CollectingDispatcher) -> List[Dict[str, Any]]:
    """The messages an action sent, without the empty keys rasa-sdk adds."""
    return [{k: v for k, v in m.items() if v not in (None, [], {})} for m in dispatcher.messages]
