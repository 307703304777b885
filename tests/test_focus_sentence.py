"""components/focus_sentence.py: which sentence is read on its own, and when its reading
replaces the whole message's. The sentence classifier is replaced by fixed readings here;
the trained one is measured by the conversation suites."""
from typing import Any, Dict, Optional

import numpy as np
import pytest
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from components.focus_sentence import FocusSentenceClassifier, focus_sentence


@pytest.mark.parametrize("text, questions_only, expected", [
    ("I sit all day. My back aches. Would glute work help?", True, "Would glute work help?"),
    ("What could he start with? He's not very fit", True, "What could he start with?"),
    ("I sit all day\nhow many bridges should I do", True, "how many bridges should I do"),
    ("Is it my glutes?", True, None),  # one sentence: the whole message is that question
    ("Hi there. Keen cyclist and my back aches on long rides.", True, None),
    ("Hi there. Keen cyclist and my back aches on long rides.", False,
     "Keen cyclist and my back aches on long rides."),
    ("My back hurts. Why?", True, None),  # a one-word question says too little alone
])
def test_focus_sentence(text: str, questions_only: bool, expected: Optional[str]) -> None:
    assert focus_sentence(text, questions_only) == expected


class FixedReading(FocusSentenceClassifier):
    def __init__(self, readings: Dict[str, Dict[str, float]]) -> None:
        config = {**FocusSentenceClassifier.get_default_config(), "threshold": 0.55,
                  "whole_threshold": 0.55}
        super().__init__(config, None, None, np.array(["x"]), np.zeros((1, 1)), np.zeros(1))
        self.readings = readings

    def probabilities(self, sentence: str) -> Dict[str, float]:
        return self.readings[sentence]


def _message(text: str, intent: str, confidence: float) -> Message:
    ranking = [{"name": intent, "confidence": confidence},
               {"name": "other", "confidence": 1.0 - confidence}]
    return Message(data={TEXT: text, INTENT: {"name": intent, "confidence": confidence},
                         INTENT_RANKING_KEY: ranking})


STORY = "I swapped jobs and sit all day now. It aches every morning. Would glute work help?"
QUESTION = "Would glute work help?"


def _read(message: Message, readings: Dict[str, Dict[str, float]]) -> Message:
    return FixedReading(readings).process([message])[0]


def test_the_question_after_a_story_is_answered() -> None:
    message = _read(_message(STORY, "describe_pain", 0.8),
                    {QUESTION: {"faq_strengthening_glutes_helps": 0.7, "describe_pain": 0.3}})
    assert message.get(INTENT) == {"name": "faq_strengthening_glutes_helps", "confidence": 0.7}
    ranking = message.get(INTENT_RANKING_KEY)
    assert ranking[0]["name"] == "faq_strengthening_glutes_helps"
    # the whole message's readings follow, scaled below the chosen one
    assert ranking[1] == {"name": "describe_pain", "confidence": pytest.approx(0.8 * 0.3)}


@pytest.mark.parametrize("whole, confidence, reading", [
    ("faq_hip_flexors", 0.9, {"faq_strengthening_glutes_helps": 0.9}),  # confident answer
    ("report_red_flag", 0.3, {"faq_strengthening_glutes_helps": 0.9}),  # the safety net's
    ("describe_pain", 0.8, {"faq_strengthening_glutes_helps": 0.5}),  # question unsure
    ("describe_pain", 0.8, {"share_context": 0.9}),  # the question reads as a story too
    ("describe_pain", 0.8, {"thank": 0.9}),  # not an answer
])
def test_kept(whole: str, confidence: float, reading: Dict[str, float]) -> None:
    message = _read(_message(STORY, whole, confidence), {QUESTION: reading})
    assert message.get(INTENT) == {"name": whole, "confidence": confidence}


def test_an_unsure_opening_is_read_from_its_last_sentence() -> None:
    text = "Good afternoon. I am seventy-four and would welcome advice about my lower back."
    last = "I am seventy-four and would welcome advice about my lower back."
    message = _read(_message(text, "greet", 0.4), {last: {"describe_pain": 0.8}})
    assert message.get(INTENT)["name"] == "describe_pain"


def test_a_single_sentence_and_a_button_are_left_alone() -> None:
    readings: Dict[str, Dict[str, float]] = {}  # a lookup would fail: nothing is read
    for text in ("Would glute work help?", '/ask_exercise{"exercise":"clamshell"}'):
        message = _read(_message(text, "describe_pain", 0.3), readings)
        assert message.get(INTENT)["name"] == "describe_pain"


def test_beside_a_warning_sign_the_question_is_kept_for_after_the_check() -> None:
    message = _read(_message(STORY, "report_red_flag", 0.9),
                    {QUESTION: {"faq_strengthening_glutes_helps": 0.8}})
    assert message.get(INTENT) == {"name": "report_red_flag", "confidence": 0.9}
    assert message.get("focus_intent") == {"name": "faq_strengthening_glutes_helps",
                                           "confidence": 0.8}
    assert "focus_intent" in message.as_dict(only_output_properties=True)


def test_an_unsure_reading_the_question_confirms_is_made_sure() -> None:
    text = "Can you tell me what's wrong with me? It aches deep in my buttock."
    message = _read(_message(text, "ask_diagnosis", 0.46),
                    {"Can you tell me what's wrong with me?": {"ask_diagnosis": 0.99}})
    assert message.get(INTENT) == {"name": "ask_diagnosis", "confidence": 0.99}


def test_two_kinds_of_story_together_are_sure_enough() -> None:
    text = "I coach football and my back has gone stiff from the touchline."
    message = Message(data={TEXT: text, INTENT: {"name": "share_context", "confidence": 0.44},
                            INTENT_RANKING_KEY: [{"name": "share_context", "confidence": 0.44},
                                                 {"name": "describe_pain", "confidence": 0.3},
                                                 {"name": "report_red_flag",
                                                  "confidence": 0.23}]})
    message = _read(message, {})
    assert message.get(INTENT) == {"name": "share_context", "confidence": pytest.approx(0.74)}
    # not when the second reading is of another kind
    other = _message(text, "share_context", 0.44)
    other.set(INTENT_RANKING_KEY, [{"name": "share_context", "confidence": 0.44},
                                   {"name": "report_red_flag", "confidence": 0.4}])
    assert _read(other, {}).get(INTENT)["confidence"] == 0.44


def test_two_intents_of_a_configured_group_are_sure_enough_and_others_not() -> None:
    """config.yml's `alike` groups: exercise requests answered alike."""
    import yaml

    from scripts.servers import ROOT

    config = yaml.safe_load((ROOT / "config.yml").read_text())
    [options] = [c for c in config["pipeline"] if c["name"].endswith("FocusSentenceClassifier")]

    def read(first: str, second: str) -> Dict[str, Any]:
        message = Message(data={TEXT: "Which glute exercises are ok to do while pregnant?",
                                INTENT: {"name": first, "confidence": 0.47},
                                INTENT_RANKING_KEY: [{"name": first, "confidence": 0.47},
                                                     {"name": second, "confidence": 0.45}]})
        reader = FixedReading({})
        reader.config = {**reader.config, "alike": options["alike"]}
        return reader.process([message])[0].get(INTENT)

    assert read("recommend_exercise", "describe_situation") == {
        "name": "recommend_exercise", "confidence": pytest.approx(0.92)}
    assert read("ask_exercise", "recommend_exercise")["name"] == "ask_exercise"
    assert read("ask_diagnosis", "ask_capabilities")["confidence"] == 0.47  # not alike
