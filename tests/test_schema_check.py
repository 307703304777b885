"""runtime/schema_check.py: Rasa's action-response validation, with the schema checked once."""
from __future__ import annotations

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

from runtime import schema_check

ANSWER = {"events": [{"event": "slot", "name": "exercise", "value": "clamshell"}],
          "responses": [{"text": "Lie on your side.", "buttons": []}]}


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(jsonschema, "validate", jsonschema.validate)  # restored afterwards
    monkeypatch.setattr(schema_check, "_checked", [])
    schema_check.install()


def test_rasa_still_accepts_valid_and_rejects_invalid_action_answers(installed):
    action = RemoteAction("action_answer_faq", None)
    assert action._validate_action_result(ANSWER)
    with pytest.raises(jsonschema.ValidationError):
        action._validate_action_result({"events": [{"event": "slot", "name": 5}]})
    with pytest.raises(jsonschema.ValidationError):
        action._validate_action_result({"events": "not a list"})


def test_each_schema_is_checked_once(installed, monkeypatch):
    calls = []
    check = jsonschema.Draft7Validator.check_schema
    monkeypatch.setattr(jsonschema.Draft7Validator, "check_schema",
                        classmethod(lambda cls, schema: calls.append(1) or check(schema)))
    for _ in range(3):
        RemoteAction("action_answer_faq", None)._validate_action_result(ANSWER)
    assert len(calls) == 1
    jsonschema.validate(1, {"type": "integer"})
    assert len(calls) == 2


def test_an_invalid_schema_is_still_refused(installed):
    with pytest.raises(jsonschema.SchemaError):
        jsonschema.validate(1, {"type": "no such type"})
    with pytest.raises(jsonschema.SchemaError):  # and not remembered as valid
        jsonschema.validate(1, {"type": "no such type"})


# One of each event type Rasa knows, valid; and answers that break the schema in the
# events (wrong types inside an event type, unknown or missing type, not objects).
VALID_EVENTS = [{"event": name} for name in (
    "user_featurization", "cancel_reminder", "reminder", "action_execution_rejected",
    "form_validation", "loop_interrupted", "form", "active_loop", "reset_slots", "resume",
    "pause", "followup", "export", "restart", "undo", "rewind", "bot", "session_started",
    "agent")] + [
    {"event": "user", "text": "hi", "parse_data": {"intent": {"name": "greet",
                                                              "confidence": 0.9}}},
    {"event": "action", "name": "action_listen", "policy": None, "confidence": 1.0},
    {"event": "slot", "name": "exercise", "value": None, "timestamp": 1.5},
    {"event": "entities", "entities": [{"entity": "exercise", "value": "clamshell"}]},
]
INVALID_EVENTS = [
    {"event": "slot", "value": 1}, {"event": "slot", "name": 5, "value": 1},
    {"event": "user", "text": 5}, {"event": "action", "name": ["x"]},
    {"event": "entities"}, {"event": "entities", "entities": [{"entity": "x"}]},
    {"event": "no_such_event"}, {"name": "x", "value": 1}, {"event": 7}, "slot", None,
    {"event": "bot", "timestamp": "yesterday"}, {"event": "bot", "metadata": []},
]


def rasas_verdict(answer) -> str:
    """What jsonschema itself says (as Rasa used it): '' or the error message."""
    try:
        jsonschema.Draft7Validator.check_schema(RemoteAction.action_response_format_spec())
        error = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(
            RemoteAction.action_response_format_spec()).iter_errors(answer))
    except jsonschema.ValidationError as error:  # pragma: no cover - not raised here
        return error.message
    return error.message if error is not None else ""


def test_events_are_judged_as_jsonschema_judges_them(installed):
    schema = RemoteAction.action_response_format_spec()
    answers = [{"events": [event]} for event in VALID_EVENTS + INVALID_EVENTS] + [
        {"events": VALID_EVENTS}, {"events": VALID_EVENTS + INVALID_EVENTS[:1]},
        {"events": "not a list"}, {"responses": [{"text": "hi"}], "events": []}]
    verdicts = []
    for answer in answers:
        try:
            jsonschema.validate(answer, schema)
            verdict = ""
        except jsonschema.ValidationError as error:
            verdict = error.message
        assert verdict == rasas_verdict(answer), answer
        verdicts.append(verdict)
    assert verdicts.count("") == len(VALID_EVENTS) + 2  # the test has both kinds
    [(_, _, fast)] = schema_check._checked
    assert fast is not None  # the events' oneOf goes straight to its alternative
