"""The red-flag safety net: never miss a warning sign, rarely cry wolf."""
from __future__ import annotations

from pathlib import Path

import pytest
from rasa.shared.nlu.training_data.message import Message

from components.red_flags import RedFlagDetector, load_matcher
from scripts.evaluate import red_flag_figures

ROOT = Path(__file__).resolve().parents[1]
# Three sets written separately by different authors; each was first measured before
# the patterns were improved with it (see README "Safety net" for those figures).
GATED_SETS = ["tests/safety/red_flag_cases.yml", "tests/safety/red_flag_cases_blind.yml",
              "tests/safety/red_flag_cases_holdout.yml"]
MAX_FALSE_ALARM_RATE = 0.02  # issue #14: at most 2% on every case file


@pytest.fixture(scope="module")
def matcher():
    return load_matcher()


@pytest.fixture(scope="module")
def detector():
    return RedFlagDetector(RedFlagDetector.get_default_config())


@pytest.mark.parametrize("path", GATED_SETS)
def test_no_red_flag_is_missed_and_false_alarms_stay_rare(matcher, path):
    figures = red_flag_figures(matcher, ROOT / path)
    assert figures["n_flags"] >= 50 and figures["n_near"] >= 50
    assert [c["text"] for c in figures["missed"]] == []
    assert figures["false_alarm_rate"] <= MAX_FALSE_ALARM_RATE, figures["alarms"]
    assert [c["text"] for c in figures["wrong_tier"]] == []


@pytest.mark.parametrize("text, category, tier", [
    ("i cant pee properly since yesterday and my back is agony", "cauda_equina", "emergency"),
    ("numb between my legs", "cauda_equina", "emergency"),
    ("sciatica down both legs now", "cauda_equina", "emergency"),
    ("fell off a ladder onto my back", "fracture", "emergency"),
    ("i have osteoporosis and slipped in the shower", "fracture", "urgent"),
    ("back pain and a fever of 39", "infection", "emergency"),
    ("i had breast cancer 6 years ago and now my back aches", "cancer", "urgent"),
    ("lost 6kg without trying and my back hurts", "cancer", "urgent"),
    ("the pain is constant and worse at night", "cancer", "urgent"),
    ("back pain with a tearing pain into my tummy", "vascular", "emergency"),
])
def test_each_category_is_recognised(matcher, text, category, tier):
    findings = matcher.detect(text)
    assert findings, text
    assert (findings[0].category, findings[0].tier) == (category, tier)


@pytest.mark.parametrize("text", [
    "no fever, just a stiff lower back",                     # negation
    "i don't have any numbness or bladder problems",        # negation
    "my dad had cancer, could my back pain be my glutes?",  # another person
    "what if i lose bladder control one day?",              # hypothetical
    "what is cauda equina syndrome?",                       # question
    "had a fever last week but it went away, back is sore",  # resolved
    "my back aches after sitting at my desk all day",       # ordinary pain
    "set the oven temperature to 200",                      # not a body
    "add this to my chill playlist",                        # "chill" is not "chills"
    "doing the knee to chest stretch hurts a bit",          # exercise name
])
def test_context_stops_false_alarms(matcher, text):
    assert matcher.detect(text) == []


def test_the_most_serious_finding_comes_first(matcher):
    findings = matcher.detect("i had cancer years ago and now i cant control my bladder")
    assert [f.tier for f in findings] == ["emergency", "urgent"]


def _message(text, intent, ranking=()):
    message = Message(data={"text": text, "intent": {"name": intent, "confidence": 0.8},
                            "intent_ranking": list(ranking), "entities": []})
    return message


def test_component_overrides_any_prediction_for_an_affirmed_red_flag(detector):
    message = _message("how do i do a glute bridge? also i wet myself today", "ask_exercise")
    detector.process([message])
    assert message.get("intent") == {"name": "report_red_flag", "confidence": 1.0}
    [entity] = message.get("entities")
    assert (entity["entity"], entity["value"], entity["role"]) == (
        "red_flag", "emergency", "cauda_equina")
    assert message.get("text")[entity["start"]:entity["end"]] == "wet myself"


def test_findings_point_at_the_words_of_the_original_message(matcher):
    text = "My back hurts and I CAN'T  pee since Monday"
    [finding] = matcher.detect(text)
    assert text[finding.start:finding.end] == finding.text == "CAN'T  pee"


def test_component_withdraws_a_red_flag_prediction_that_context_discounts(detector):
    message = _message("what if i lose control of my bladder?", "report_red_flag", [
        {"name": "report_red_flag", "confidence": 0.6},
        {"name": "ask_red_flags", "confidence": 0.3}])
    detector.process([message])
    assert message.get("intent")["name"] == "ask_red_flags"
    assert message.get("entities") == []


@pytest.mark.parametrize("text, expected", [
    ("my back is sore and i feel a bit off", "ask_if_serious"),  # nothing found: the check
    ("the wound healed well, there's no fever or redness", "describe_pain"),  # negated
])
def test_an_unsure_message_leaning_to_a_red_flag_is_read_as_one(text, expected, detector):
    message = _message(text, "nlu_fallback", [
        {"name": "nlu_fallback", "confidence": 0.55},
        {"name": "report_red_flag", "confidence": 0.47},
        {"name": "seen_doctor", "confidence": 0.29}])
    detector.process([message])
    assert message.get("intent")["name"] == expected


def test_an_unsure_message_leaning_elsewhere_stays_unsure(detector):
    message = _message("i'm dying to try that one", "nlu_fallback", [
        {"name": "nlu_fallback", "confidence": 0.55},
        {"name": "report_crisis", "confidence": 0.4}])
    detector.process([message])
    assert message.get("intent")["name"] == "nlu_fallback"


def test_component_leaves_ordinary_messages_alone(detector):
    message = _message("what is the piriformis", "faq_piriformis")
    detector.process([message])
    assert message.get("intent") == {"name": "faq_piriformis", "confidence": 0.8}


# -- the quick test before the matcher: same findings, matcher skipped for most texts ----
def _every_text() -> list:
    import yaml

    texts = []
    for path in GATED_SETS:
        cases = yaml.safe_load((ROOT / path).read_text())
        texts += [case["text"] for group in cases.values() if isinstance(group, list)
                  for case in group]
    for path in sorted((ROOT / "data" / "nlu").glob("*.yml")):
        for item in yaml.safe_load(path.read_text()).get("nlu", []):
            texts += [line[2:].strip() for line in str(item.get("examples", "")).splitlines()
                      if line.startswith("- ")]
    return texts


def test_quick_test_never_skips_a_message_the_matcher_finds_something_in(matcher, monkeypatch):
    texts = _every_text()
    assert len(texts) > 2000
    quick = {text: matcher.analyse(text) for text in texts}
    skipped = sum(not matcher._may_fire(matcher.nlp(matcher_text(text))) for text in texts)
    every = ({key for key, _ in matcher._patterns}, set(range(len(matcher._patterns))))
    monkeypatch.setattr(matcher, "_possible", lambda doc: every)  # every pattern runs
    assert {text: matcher.analyse(text) for text in texts} == quick
    assert skipped > len(texts) / 2  # the point of it: most messages skip the matcher


def matcher_text(text: str) -> str:
    from components.red_flags import normalise

    return normalise(text)


def _reference_normalise(text):
    """normalise_with_offsets without its shortcuts: every pass applied, white space
    as `\\s+`."""
    import re
    from components.red_flags import _CONTRACTIONS, _substitute

    out, origin = text.lower().replace("’", "'"), list(range(len(text) + 1))
    for pattern, replacement in [*_CONTRACTIONS, (re.compile(r"\s+"), " ")]:
        out, origin = _substitute(pattern, replacement, out, origin)
    return out, origin


@pytest.mark.parametrize("text", ["i cant  pee\n\tsince   yesterday", "it's fine", " x ",
                                  "I'm ok\r\nI've  no pain", "plain text"])
def test_normalise_gives_the_same_text_and_offsets_as_before(text):
    from components.red_flags import normalise_with_offsets

    assert normalise_with_offsets(text) == _reference_normalise(text)


def test_a_letter_whose_lower_case_is_longer_keeps_the_offsets_right(matcher):
    from components.red_flags import normalise_with_offsets

    text = "İİ since yesterday i cant feel my groin and i wet myself"
    out, origin = normalise_with_offsets(text)
    assert len(origin) == len(out) + 1 and origin[:5] == [0, 0, 1, 1, 2]
    findings = matcher.detect(text)
    assert findings and findings[0].category == "cauda_equina"
    assert all(text[f.start:f.end] == f.text for f in findings)


def test_normalise_matches_the_reference_on_random_text():
    from hypothesis import given, settings, strategies as st

    from components.red_flags import normalise_with_offsets

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet=st.sampled_from(list("abcinotsvw'’ \t\n\r\u00a0IM")), max_size=40))
    def check(text):
        assert normalise_with_offsets(text) == _reference_normalise(text)

    check()
