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


def pytest_terminal_summary(terminalreporter) -> None:
    """Reading level of every answer (tests/test_content.py), hardest first."""
    from tests.test_content import READING_AIM, READING_LEVELS

    if not READING_LEVELS:
        return
    terminalreporter.section("reading level (Flesch-Kincaid grade, aim <= 8)")
    for answer_id, grade in sorted(READING_LEVELS.items(), key=lambda item: -item[1]):
        flag = "  above the aim" if grade > READING_AIM else ""
        terminalreporter.write_line(f"{grade:5.1f}  {answer_id}{flag}")
