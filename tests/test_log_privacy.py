"""No user text in any log (privacy/log_redaction.py): the redaction itself (unit), then
the assistant run at DEBUG, where Rasa logs the most, through every way a text reaches
it (REST, Socket.IO, the HTTP API, a refused body, a refusal for backpressure, an
over-long message), and every log it wrote is searched for what was sent."""
from __future__ import annotations

import json
import logging
import uuid
from typing import Dict, Iterator, List

import pytest
import requests

from privacy import log_redaction
from privacy.log_redaction import REDACTED, USER_TEXT, RedactingFilter, handling, redact
from scripts.servers import MODEL, running_assistant
from tests.widget_client import Widget

API_TOKEN = "log-privacy-token"
# What visitors write, and the personal data in it, which no log may hold.
MESSAGES = [
    "hi, my name is Priya Ramaswamy and my number is 07700 900 456",
    "my sciatica flared up after the divorce, email me at priya.ramaswamy@example.com",
    "I live at 14 Willowbrook Crescent, Leeds LS6 2AB and was born on 3 March 1961",
    "how do I do a glute bridge with my dodgy knee from the Kilimanjaro trek",
    "since the fall off the trampoline I can't feel my groin and I wet myself",
]
SECRETS = ["Priya", "Ramaswamy", "07700", "900 456", "priya.ramaswamy", "Willowbrook",
           "LS6 2AB", "1961", "sciatica", "divorce", "dodgy knee", "Kilimanjaro",
           "trampoline", "wet myself"]


def record(message: str, *args: object, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("rasa.core.processor", logging.DEBUG, __file__, 1, message,
                             args, exc_info)


# -- the redaction (unit) --------------------------------------------------------------
def test_the_text_being_handled_is_replaced_as_it_is_and_as_json_or_repr_quote_it():
    text = 'my "bad" back, O\'Neill here'
    with handling(text):
        for shown in (text, json.dumps(text)[1:-1], repr(text)[1:-1]):
            assert redact(f"Received user message '{shown}' with intent") == \
                f"Received user message '{USER_TEXT}' with intent"
    assert text in redact(f"said {text}")  # outside the turn: not known as user text


def test_user_data_keys_of_a_structured_record_are_redacted_and_numbers_kept():
    line = json.dumps({"event": "processor.message.parse", "parse_data_text": "ouch",
                       "parse_data_intent": {"name": "describe_pain", "confidence": 0.9987654},
                       "slot_values": ["situation: pregnancy"], "note": "ring 07700 900456"})
    assert json.loads(redact(line)) == {
        "event": "processor.message.parse", "parse_data_text": REDACTED,
        "parse_data_intent": {"name": "describe_pain", "confidence": 0.9987654},
        "slot_values": REDACTED, "note": "ring [phone number]"}


def test_personal_data_from_elsewhere_is_masked_and_decimals_are_not_phone_numbers():
    assert redact("slot contact: jo.bloggs@example.com, confidence 0.9987654 < 0.55") == \
        "slot contact: [e-mail address], confidence 0.9987654 < 0.55"


def test_arguments_exceptions_and_stacks_are_redacted_in_the_record():
    text = "call me on 07700 900456 about my back"
    with handling(text):
        try:
            raise ValueError(f"could not read {text!r}")
        except ValueError as error:
            made = record("failed for %s", text, exc_info=(type(error), error,
                                                             error.__traceback__))
        RedactingFilter().filter(made)
    assert made.getMessage() == f"failed for {USER_TEXT}"
    assert "07700" not in made.exc_text and USER_TEXT in made.exc_text


def test_installed_it_applies_to_loggers_and_handlers_made_afterwards(caplog):
    log_redaction.install()
    logger = logging.getLogger(f"made.later.{uuid.uuid4().hex}")
    with caplog.at_level(logging.DEBUG, logger=logger.name), handling("my knee, Siobhan"):
        logger.debug("got %r", "my knee, Siobhan")
    assert caplog.records[-1].getMessage() == f"got '{USER_TEXT}'"


# -- the assistant at DEBUG --------------------------------------------------------------
@pytest.fixture(scope="module")
def debug_logs(tmp_path_factory) -> Iterator[Dict[str, object]]:
    if not MODEL.exists():
        pytest.skip("no trained model: run `make train`")
    tmp = tmp_path_factory.mktemp("debug_logs")
    with running_assistant(tmp, api_token=API_TOKEN, debug=True) as servers:
        url = servers.rasa_url
        rest = f"{url}/webhooks/rest/webhook"
        sender = f"logs-{uuid.uuid4().hex[:8]}"
        replies: List[object] = []
        for text in MESSAGES:
            answer = requests.post(rest, json={"sender": sender, "message": text}, timeout=60)
            assert answer.status_code == 200, answer.text
            replies.append(answer.json())
        long_text = " ".join(MESSAGES * 30)  # cut to its start, the visitor is told
        assert requests.post(rest, json={"sender": sender, "message": long_text},
                             timeout=60).status_code == 200
        assert requests.post(rest, json={"sender": 5, "message": MESSAGES[0]},
                             timeout=60).status_code == 400
        assert requests.post(f"{url}/model/parse?token={API_TOKEN}",
                             json={"text": MESSAGES[1]}, timeout=60).status_code == 200
        widget = Widget(url)
        try:
            for text in MESSAGES[:3]:
                assert widget.send({"message": text, "session_id": widget.session_id}, 1)
        finally:
            widget.client.disconnect()
        logs = sorted(tmp.glob("*.log"))
        yield {"logs": {path.name: path.read_text(errors="replace") for path in logs},
               "replies": replies}


def test_the_debug_run_wrote_debug_lines_of_both_processes(debug_logs):
    logs = debug_logs["logs"]
    assert {"rasa.log", "actions.log"} <= set(logs)
    assert logs["rasa.log"].count("DEBUG") > 100  # the level the test is about
    assert "DEBUG" in logs["actions.log"]
    assert USER_TEXT in logs["rasa.log"] or REDACTED in logs["rasa.log"]


@pytest.mark.parametrize("secret", SECRETS + MESSAGES)
def test_no_log_holds_what_visitors_sent(debug_logs, secret):
    found = {name: text.count(secret) for name, text in debug_logs["logs"].items()
             if secret.lower() in text.lower()}
    assert found == {}


def test_the_visitor_still_got_every_answer(debug_logs):
    first, *_, flag = debug_logs["replies"]
    assert "not a diagnosis" in first[0]["text"]
    assert any("999" in reply.get("text", "") for reply in flag)


def test_the_log_is_still_readable(debug_logs):
    rasa_log = debug_logs["logs"]["rasa.log"]
    assert "Predicted next action" in rasa_log and "report_red_flag" in rasa_log
