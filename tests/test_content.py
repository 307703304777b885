"""Content checks: the knowledge base is complete, consistent, short and safe."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import textstat
import yaml

from actions import content
from actions.exercises import instructions
from components.content_importer import project_domain

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT.parent / "shared" / "SPEC.md"
ARTICLE = ROOT.parent / "shared" / "knowledge" / "source_article.md"
BANNED = re.compile(r"\b(cure[sd]?|guarantee[sd]?|guaranteed|diagnos\w*|miracle|100 ?%)\b", re.I)
MAX_WORDS = 120
# Flesch-Kincaid grade: we aim at 8 or below (printed per answer after the tests, see
# conftest.py); above 10 an answer fails.
READING_AIM, READING_LIMIT = 8, 10
READING_LEVELS: dict = {}  # answer id -> grade, for the summary
SPEC_EXERCISES = {"glute_bridge", "crab_walk", "squat_side_leg_lift", "clamshell",
                  "fire_hydrant", "donkey_kick", "knee_to_chest"}


def domain_intents() -> set:
    return set(project_domain(ROOT).intents)


def spec_faq_intents() -> set:
    if not SPEC.exists():
        pytest.skip("../shared/SPEC.md is not beside the repository")
    return set(re.findall(r"`(faq_[a-z_]+)`", SPEC.read_text()))


def test_every_spec_faq_intent_has_an_answer_and_a_domain_entry():
    spec = spec_faq_intents()
    assert len(spec) == 20
    assert set(content.faqs()) == spec
    assert {i for i in domain_intents() if i.startswith("faq_")} == spec


@pytest.mark.parametrize("faq_id", sorted(content.faqs()))
def test_answer_is_short_safe_sourced_and_current(faq_id):
    entry = content.faqs()[faq_id]
    words = len(entry["answer"].split())
    assert words <= MAX_WORDS, f"{faq_id}: {words} words"
    assert not BANNED.search(entry["answer"]), BANNED.search(entry["answer"]).group(0)
    assert 2 <= len(entry["related"]) <= 3
    assert content.review_due(entry) >= dt.date.today(), f"{faq_id}: past its review date"
    if ARTICLE.exists():
        heading = entry["source"].split("FAQ: ", 1)[-1].rstrip("?")
        assert heading.lower() in ARTICLE.read_text().lower(), entry["source"]


def test_exercises_cover_the_spec_and_are_complete():
    exercises = content.exercises()
    assert set(exercises) == SPEC_EXERCISES
    for exercise_id, exercise in exercises.items():
        assert len(exercise["steps"]) >= 4, exercise_id
        assert exercise["stop_if"], exercise_id
        assert content.review_due(exercise) >= dt.date.today(), exercise_id
        text = " ".join(str(v) for v in exercise.values())
        assert not BANNED.search(text), (exercise_id, BANNED.search(text).group(0))
        assert exercise["source"].strip(), f"{exercise_id}: no source"


def test_exercise_entities_and_synonyms_use_the_normalised_values():
    data = yaml.safe_load((ROOT / "data/nlu/exercises.yml").read_text())["nlu"]
    synonyms = {item["synonym"] for item in data if "synonym" in item}
    assert synonyms <= SPEC_EXERCISES
    assert {"clamshell", "glute_bridge", "knee_to_chest"} <= synonyms


def test_clinic_settings_come_from_the_file_and_the_environment(monkeypatch):
    assert content.clinic()["name"] == "Riverside Physiotherapy"
    monkeypatch.setenv("CLINIC_PHONE", "+44 1234 567890")
    monkeypatch.setenv("CLINIC_NAME", "   ")  # blank values do not erase the file's
    settings = content.clinic()
    assert settings["phone"] == "+44 1234 567890"
    assert settings["name"] == "Riverside Physiotherapy"


def test_a_broken_content_file_fails_loudly(tmp_path, monkeypatch):
    (tmp_path / "knowledge").mkdir()
    (tmp_path / "knowledge" / "faq.yml").write_text(
        "faqs:\n  faq_x:\n    question: Is this valid?\n    answer: no\n"
        "    related: [faq_missing, faq_x]\n    source: s\n"
        "    reviewed: 2026-01-01\n    review_due: 2027-01-01\n")
    monkeypatch.setattr(content, "DATA_DIR", tmp_path)
    content.faqs.cache_clear()
    try:
        with pytest.raises(content.ContentError, match="faq_missing"):
            content.faqs()
        (tmp_path / "knowledge" / "faq.yml").write_text("faqs:\n  faq_x:\n    answer: 3\n")
        content.faqs.cache_clear()
        with pytest.raises(content.ContentError, match="question"):
            content.faqs()
        # An answer without its source cannot be loaded.
        (tmp_path / "knowledge" / "faq.yml").write_text(
            "faqs:\n  faq_x:\n    question: Is this valid?\n    answer: no\n"
            "    related: [faq_x, faq_x]\n    reviewed: 2026-01-01\n    review_due: 2027-01-01\n")
        content.faqs.cache_clear()
        with pytest.raises(content.ContentError, match="source"):
            content.faqs()
    finally:
        content.faqs.cache_clear()


def answers() -> dict:
    texts = {faq_id: entry["answer"] for faq_id, entry in content.faqs().items()}
    texts.update({exercise_id: " ".join(instructions(exercise))
                  for exercise_id, exercise in content.exercises().items()})
    return texts


@pytest.mark.parametrize("answer_id, text", sorted(answers().items()))
def test_reading_level(answer_id, text):
    grade = textstat.flesch_kincaid_grade(text)
    READING_LEVELS[answer_id] = grade
    assert grade <= READING_LIMIT, f"{answer_id}: reading grade {grade:.1f}"
