"""Shared test helpers: build rasa-sdk trackers the way Rasa sends them; one running
assistant (action server + Rasa, default configuration, SQLite store, HTTP API on) that
the end-to-end modules share, since each start costs about 40 s of the suite."""
from __future__ import annotations

from typing import Any, Dict, Iterator, List, Optional

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


# The shared assistant's HTTP API token (the conversation suite reads trackers with it).
API_TOKEN = "conversation-suite"


@pytest.fixture(scope="session")
def assistant(tmp_path_factory) -> Iterator[Dict[str, Any]]:
    """{url, db, log, process, token} of the shared assistant. Modules that need another
    configuration (channels, stores, faults) start their own."""
    from scripts.servers import MODEL, running_assistant

    if not MODEL.exists():
        pytest.skip("no trained model: run `make train`")
    tmp = tmp_path_factory.mktemp("assistant")
    with running_assistant(tmp, api_token=API_TOKEN) as servers:
        yield {"url": servers.rasa_url, "db": tmp / "tracker.db", "log": tmp / "rasa.log",
               "process": servers.processes["rasa"], "token": API_TOKEN}


def pytest_terminal_summary(terminalreporter) -> None:
    """Reading level of every answer (tests/test_content.py), hardest first."""
    from tests.test_content import READING_AIM, READING_LEVELS

    if not READING_LEVELS:
        return
    terminalreporter.section("reading level (Flesch-Kincaid grade, aim <= 8)")
    for answer_id, grade in sorted(READING_LEVELS.items(), key=lambda item: -item[1]):
        flag = "  above the aim" if grade > READING_AIM else ""
        terminalreporter.write_line(f"{grade:5.1f}  {answer_id}{flag}")
