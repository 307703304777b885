"""runtime/payload_parses.py: the parse of a button's payload is the graph's own, computed
once per loaded model; typed text still goes through the NLU graph every time."""
from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import pytest
from rasa.core.agent import Agent
from rasa.core.channels.channel import UserMessage
from rasa.core.processor import MessageProcessor

from channels.payloads import allowed_payloads
from runtime import payload_parses

MODEL = Path(__file__).resolve().parents[1] / "models" / "assistant.tar.gz"
pytestmark = pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run `make train`")


@pytest.fixture(scope="module")
def processor() -> MessageProcessor:
    return Agent.load(str(MODEL)).processor


@pytest.fixture
def graph_runs(processor, monkeypatch):
    """The texts the NLU graph parsed, with runtime/payload_parses.py installed."""
    monkeypatch.setattr(MessageProcessor, "_parse_message_with_graph",
                        payload_parses.parse_message_with_graph)
    monkeypatch.setitem(processor.__dict__, "_payload_parses", {})
    runs = []
    rasa_parse = payload_parses._rasa_parse

    def counted(self, message, tracker, only_output_properties=True):
        runs.append(message.text)
        return rasa_parse(self, message, tracker, only_output_properties)

    monkeypatch.setattr(payload_parses, "_rasa_parse", counted)
    return runs


def parse(processor: MessageProcessor, text: str) -> dict:
    return asyncio.run(processor.parse_message(UserMessage(text, sender_id="t")))


def test_every_payload_parses_as_the_graph_parses_it(processor, graph_runs):
    payloads = sorted(allowed_payloads())
    assert len(payloads) > 20  # the bot's buttons: FAQ, exercises, booking, ...
    by_graph = {text: payload_parses._rasa_parse(processor, UserMessage(text), None)
                for text in payloads}
    graph_runs.clear()
    for _ in range(2):
        assert {text: parse(processor, text) for text in payloads} == {
            text: {**parsed} for text, parsed in by_graph.items()}
    assert sorted(graph_runs) == payloads  # each one once, on its first click


def test_a_parse_handed_out_can_be_changed_without_changing_the_next(processor, graph_runs):
    first = parse(processor, "/book_appointment")
    expected = copy.deepcopy(first)
    first["intent"]["name"] = "changed"
    first["entities"].append({"entity": "x"})
    assert parse(processor, "/book_appointment") == expected


@pytest.mark.parametrize("text", ["how do I do a clamshell", "/not_a_button",
                                  '/ask_exercise{"exercise":"moonwalk"}'])
def test_other_texts_go_through_the_graph_every_time(processor, graph_runs, text):
    parse(processor, text)
    parse(processor, text)
    assert graph_runs == [text, text]
