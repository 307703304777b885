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
