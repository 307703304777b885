"""The safety net as a whole (components/red_flags.py SafetyNet and RedFlagDetector,
components/languages.py, the channels' excerpt): the fresh blind sets, French and
Spanish, crisis messages, the misspelling layer, the detector's say over the intent, and
the whole text read before any size limit."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rasa.shared.nlu.training_data.message import Message

from channels.payloads import MAX_MESSAGE_CHARS, excerpt
from channels.rest import BadRequest, parse_body
from components.red_flags import RedFlagDetector, load_safety_net

ROOT = Path(__file__).resolve().parents[1]
# Both blind sets: the fresh one and the second one (written after the first tuning).
BLIND_SETS = [ROOT / "tests" / "safety" / "fresh", ROOT / "tests" / "safety" / "second"]
LANGUAGE_CASES = ROOT / "tests" / "safety" / "languages_cases.yml"
MAX_FALSE_ALARM_RATE = 0.02
ORDER = {"crisis": 0, "emergency": 1, "urgent": 2}


@pytest.fixture(scope="module")
def net():
    return load_safety_net()


def flags_of(net, text):
    return [f for f in net.detect(text) if f.tier != "crisis"]


def crisis_of(net, text):
    return any(f.tier == "crisis" for f in net.detect(text))


def _load(folder, name, key):
    return yaml.safe_load((folder / name).read_text())[key]


blind_sets = pytest.mark.parametrize("folder", BLIND_SETS, ids=lambda p: p.name)


# -- the fresh blind sets (README "Safety net": first and final figures) ---------------------
@blind_sets
def test_every_blind_red_flag_is_found_at_its_tier_or_above(net, folder):
    cases = _load(folder, "red_flags.yml", "red_flags")
    assert len(cases) >= 120
    missed = [c["text"] for c in cases if not flags_of(net, c["text"])]
    assert missed == []
    too_low = [c["text"] for c in cases
               if ORDER[flags_of(net, c["text"])[0].tier] > ORDER[c["tier"]]]
    assert too_low == []


@blind_sets
def test_blind_near_misses_rarely_raise_an_alarm(net, folder):
    cases = _load(folder, "near_misses.yml", "near_misses")
    assert len(cases) >= 130
    alarms = [c["text"] for c in cases if flags_of(net, c["text"])]
    assert len(alarms) <= MAX_FALSE_ALARM_RATE * len(cases), alarms


@blind_sets
def test_blind_crisis_messages_are_all_found_and_their_near_misses_are_not(net, folder):
    crisis = _load(folder, "crisis.yml", "crisis")
    near = _load(folder, "crisis.yml", "near_misses")
    assert len(crisis) >= 29 and len(near) >= 29
    assert [c["text"] for c in crisis if not crisis_of(net, c["text"])] == []
    assert [c["text"] for c in near if crisis_of(net, c["text"])] == []


@pytest.mark.parametrize("language", ["fr", "es"])
def test_french_and_spanish_cases(net, language):
    cases = yaml.safe_load(LANGUAGE_CASES.read_text())[language]
    assert len(cases["red_flags"]) >= 40 and len(cases["near_misses"]) >= 40
    assert [c["text"] for c in cases["red_flags"] if not flags_of(net, c["text"])] == []
    alarms = [c["text"] for c in cases["near_misses"] if flags_of(net, c["text"])]
    assert len(alarms) <= MAX_FALSE_ALARM_RATE * len(cases["near_misses"]), alarms
    assert len(cases["crisis"]) >= 20
    assert [c["text"] for c in cases["crisis"] if not crisis_of(net, c["text"])] == []
    assert [c["text"] for c in cases["near_misses"] if crisis_of(net, c["text"])] == []


@pytest.mark.parametrize("text, language", [
    ("j'ai mal au dos depuis une semaine", "fr"),
    ("me duele la espalda desde el lunes", "es"),
    ("my back hurts since monday", "en"),
    ("merci", "en"),  # too short to tell: English
    ("plan a trip to barcelona", "en"),
])
def test_the_reply_language(net, text, language):
    assert net.analyse(text).language == language


# -- the misspelling layer ----------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "i cnt hold my wee n my bak hurts",       # texting forms (the spellings list)
    "feva and bad back pain since sunday",
    "i have incontinance since my back went",  # edit distance
    "numbnes round my privates",
])
def test_misspelled_flags_are_found(net, text):
    assert flags_of(net, text)


@pytest.mark.parametrize("text", [
    "my feet are a bit numbish after the run",  # not a saddle word
    "i have a bladder infection test at the gp next week",
    "my tummy muscles feel sore after the plank",
])
def test_misspelling_layer_does_not_invent_flags(net, text):
    assert flags_of(net, text) == []


# -- the detector's say over the intent ---------------------------------------------------------
def _message(text, intent, ranking=()):
    return Message(data={"text": text, "intent": {"name": intent, "confidence": 0.8},
                         "intent_ranking": list(ranking), "entities": []})


@pytest.fixture(scope="module")
def detector():
    return RedFlagDetector(RedFlagDetector.get_default_config())


def test_a_red_flag_the_detector_does_not_confirm_gets_the_check(detector):
    message = _message("I'm 45 and stiff until I've had my first coffee", "report_red_flag",
                       [{"name": "report_red_flag", "confidence": 0.8},
                        {"name": "describe_pain", "confidence": 0.15}])
    detector.process([message])
    assert message.get("intent")["name"] == "ask_if_serious"
    assert message.get("intent_ranking")[1]["name"] == "describe_pain"  # kept for the resume


def test_a_model_crisis_without_the_detector_is_withdrawn(detector):
    message = _message("this job is killing me", "report_crisis",
                       [{"name": "report_crisis", "confidence": 0.6},
                        {"name": "describe_pain", "confidence": 0.3}])
    detector.process([message])
    assert message.get("intent")["name"] == "describe_pain"


def test_a_crisis_wins_over_everything(detector):
    message = _message("my back is agony and i want to kill myself", "describe_pain")
    detector.process([message])
    assert message.get("intent") == {"name": "report_crisis", "confidence": 1.0}


def test_french_without_a_flag_is_other_language_with_the_language(detector):
    message = _message("bonjour, je voudrais des exercices pour le dos", "greet")
    detector.process([message])
    assert message.get("intent")["name"] == "other_language"
    assert {"entity": "language", "value": "fr"}.items() <= message.get("entities")[0].items()


def test_spanish_with_a_flag_is_a_red_flag_in_spanish(detector):
    message = _message("tengo fiebre y mucho dolor de espalda", "out_of_scope")
    detector.process([message])
    assert message.get("intent")["name"] == "report_red_flag"
    entities = {e["entity"]: e["value"] for e in message.get("entities")}
    assert entities == {"language": "es", "red_flag": "emergency"}


def test_button_payloads_are_left_to_rasa(detector):
    message = _message('/report_red_flag{"red_flag":"urgent"}', "report_red_flag")
    detector.process([message])
    assert message.get("intent") == {"name": "report_red_flag", "confidence": 0.8}


# -- the whole text before any size limit ----------------------------------------------------
STORY = "I work at a desk and my lower back aches by the end of the day. " * 40


def test_a_flag_beyond_the_limit_is_moved_into_what_rasa_reads(net):
    text = STORY + "Since Monday I have had a fever and shivers."
    cut = excerpt(text)
    assert len(cut) <= MAX_MESSAGE_CHARS and cut.startswith("Since Monday I have had a fever")
    assert flags_of(net, cut)


def test_without_a_flag_the_excerpt_is_the_start():
    assert excerpt(STORY * 2) == (STORY * 2)[:MAX_MESSAGE_CHARS]


def _body(message: str) -> bytes:
    import json

    return json.dumps({"sender": "s", "message": message}).encode()


def test_rest_accepts_an_over_long_message_with_a_flag_and_refuses_one_without(net):
    urgent = lambda text: bool(net.detect(text))  # noqa: E731
    assert parse_body(_body(STORY + "I wet myself today."), urgent).text.endswith("today.")
    with pytest.raises(BadRequest) as error:
        parse_body(_body(STORY * 2), urgent)
    assert (error.value.status, error.value.error) == (413, "message_too_long")


def test_rest_screens_a_body_over_its_size_limit_up_to_256_kb(net):
    urgent = lambda text: bool(net.detect(text))  # noqa: E731
    big = STORY * 30 + "I can't feel anything between my legs."  # ~75 KB
    assert len(_body(big)) > 64 * 1024
    assert parse_body(_body(big), urgent).sender == "s"
    with pytest.raises(BadRequest) as error:
        parse_body(_body(STORY * 30), urgent)
    assert error.value.error == "body_too_large"
    with pytest.raises(BadRequest):
        parse_body(_body(STORY * 120 + "I wet myself."), urgent)  # over 256 KB: unread
