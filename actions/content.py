"""Load the assistant's content files from data/ and validate them against a schema.

Content (answers, exercises, clinic details, safety messages) lives in YAML so that
clinic staff can edit it without touching code. A broken file fails loudly at start-up
(the action server imports this module) rather than mid-conversation.
"""
from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict

import jsonschema
import yaml

DATA_DIR = Path(os.environ.get("ASSISTANT_DATA_DIR", Path(__file__).resolve().parents[1] / "data"))

_text = {"type": "string", "minLength": 1}
_texts = {"type": "array", "items": _text, "minItems": 1}
_date = {"type": "string", "format": "date"}
_review = {"source": _text, "reviewed": _date, "review_due": _date}

FAQ_SCHEMA = {
    "type": "object",
    "required": ["faqs"],
    "properties": {
        "faqs": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^faq_[a-z_]+$"},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["question", "answer", "related", *_review],
                "properties": {
                    "question": {"type": "string", "minLength": 5, "maxLength": 60},
                    "answer": _text,
                    "related": {
                        "type": "array", "minItems": 2, "maxItems": 3, "uniqueItems": True,
                        "items": {"type": "string", "pattern": "^faq_[a-z_]+$"},
                    },
                    # exercises the answer names, offered as buttons (ids of exercises.yml)
                    "exercises": {"type": "array", "uniqueItems": True, "items": _text},
                    **_review,
                },
            },
        }
    },
}

EXERCISE_SCHEMA = {
    "type": "object",
    "required": ["exercises"],
    "properties": {
        "exercises": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "purpose", "steps", "dose", "mistakes", "easier",
                             "harder", "stop_if", "position", "frequency", "equipment",
                             "names", "known_as", "tags", *_review],
                "properties": {
                    "name": _text, "purpose": _text, "steps": _texts, "dose": _text,
                    "mistakes": _texts, "easier": _text, "harder": _text,
                    "stop_if": _texts, "position": _text, "frequency": _text,
                    "equipment": _text, "names": _texts, "known_as": _texts, "tags": _texts,
                    **_review,
                },
            },
        }
    },
}

CLINIC_KEYS = ["name", "phone", "booking_url", "email", "address", "emergency_number",
               "non_emergency_line", "crisis_line", "timezone",
               *(f"hours_{day}" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))]
# Answers in the clinic's words; empty when the clinic has not decided them (the
# assistant then says to call). closures: comma-separated dates.
CLINIC_OPTIONAL_KEYS = ["closures", "price", "insurance", "referral", "first_visit_length",
                        "what_to_wear", "cancellation", "parking", "home_visits",
                        "video_visits", "under_18"]
CLINIC_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": CLINIC_KEYS + CLINIC_OPTIONAL_KEYS,
    "properties": {**{key: _text for key in CLINIC_KEYS},
                   **{key: {"type": "string"} for key in CLINIC_OPTIONAL_KEYS}},
}


PAIN_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["acknowledgement", "acknowledgement_no_topic", "screen_lead", "after_check",
                 "after_check_no_topic", "context_acknowledgement", "topics", "default"],
    "properties": {
        "acknowledgement": _text, "acknowledgement_no_topic": _text, "screen_lead": _text,
        "after_check": _text, "after_check_no_topic": _text, "context_acknowledgement": _text,
        "topics": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False, "required": ["words", "faqs"],
            "properties": {"words": _texts, "faqs": {
                "type": "array", "minItems": 1, "items": {"pattern": "^faq_[a-z_]+$"}}}}},
        "default": {"type": "array", "minItems": 1, "items": {"pattern": "^faq_[a-z_]+$"}},
    },
}


QUESTIONS_SCHEMA = {
    "type": "object",
    "minProperties": 1,
    "propertyNames": {"pattern": "^ask_[a-z_]+$"},
    "additionalProperties": {
        "type": "object", "additionalProperties": False, "required": ["answer"],
        "properties": {"answer": _text, "related_from_text": {"enum": ["true", "false"]}},
    },
}


class ContentError(ValueError):
    """A content file is missing, malformed or inconsistent."""


def _load(relative: str, schema: Dict[str, Any]) -> Dict[str, Any]:
    path = DATA_DIR / relative
    try:
        # Dates stay strings so that the schema checks their format.
        content = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
        jsonschema.validate(content, schema, format_checker=jsonschema.FormatChecker())
    except (OSError, yaml.YAMLError, jsonschema.ValidationError) as error:
        raise ContentError(f"{path}: {error}") from error
    return content


@lru_cache(maxsize=None)
def faqs() -> Dict[str, Dict[str, Any]]:
    entries = _load("knowledge/faq.yml", FAQ_SCHEMA)["faqs"]
    for faq_id, entry in entries.items():
        missing = [ref for ref in entry["related"] if ref not in entries or ref == faq_id]
        if missing:
            raise ContentError(f"{faq_id}: related ids {missing} do not exist or point to itself")
        unknown = [e for e in entry.get("exercises", []) if e not in exercises()]
        if unknown:
            raise ContentError(f"{faq_id}: unknown exercises {unknown}")
    return entries


@lru_cache(maxsize=None)
def exercises() -> Dict[str, Dict[str, Any]]:
    return _load("knowledge/exercises.yml", EXERCISE_SCHEMA)["exercises"]


CAUTIONS_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["situations"],
    "properties": {"situations": {"type": "object", "minProperties": 1, "additionalProperties": {
        "type": "object", "additionalProperties": False,
        "required": ["words", "caution", "suggest"],
        "properties": {"words": _texts, "caution": _text,
                       "suggest": {"type": "array", "items": _text},
                       # exercises the caution warns about: never suggested with it
                       "avoid": {"type": "array", "items": _text}}}}},
}


@lru_cache(maxsize=None)
def cautions() -> Dict[str, Dict[str, Any]]:
    entries = _load("knowledge/cautions.yml", CAUTIONS_SCHEMA)["situations"]
    used = {tag for entry in exercises().values() for tag in entry["tags"]}
    for name, entry in entries.items():
        if set(entry["suggest"]) - used:
            raise ContentError(f"cautions.yml: {name} suggests tags no exercise has")
        if set(entry.get("avoid", [])) - set(exercises()):
            raise ContentError(f"cautions.yml: {name} avoids an exercise that does not exist")
    return entries


EXERCISE_REQUESTS_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "required": ["tags", "intro", "intro_default", "intro_once_cleared", "no_match"],
    "properties": {"tags": {"type": "object", "minProperties": 1,
                            "additionalProperties": _texts},
                   "not_when": {"type": "object", "additionalProperties": _texts},
                   "intro": _text, "intro_default": _text, "intro_once_cleared": _text,
                   "no_match": _text},
}


@lru_cache(maxsize=None)
def exercise_requests() -> Dict[str, Any]:
    entries = _load("knowledge/exercise_requests.yml", EXERCISE_REQUESTS_SCHEMA)
    used = {tag for entry in exercises().values() for tag in entry["tags"]}
    if set(entries["tags"]) - used:
        raise ContentError(f"exercise_requests.yml: tags no exercise has: "
                           f"{sorted(set(entries['tags']) - used)}")
    return entries


@lru_cache(maxsize=None)
def pain_descriptions() -> Dict[str, Any]:
    entries = _load("knowledge/pain_descriptions.yml", PAIN_SCHEMA)
    known = faqs()
    named = {f for topic in entries["topics"] for f in topic["faqs"]} | set(entries["default"])
    if named - set(known):
        raise ContentError(f"pain_descriptions.yml: unknown FAQ ids {sorted(named - set(known))}")
    return entries


@lru_cache(maxsize=None)
def questions() -> Dict[str, Dict[str, Any]]:
    return _load("knowledge/questions.yml", QUESTIONS_SCHEMA)


@lru_cache(maxsize=None)
def _clinic_file() -> Dict[str, str]:
    return _load("clinic.yml", CLINIC_SCHEMA)


def clinic() -> Dict[str, str]:
    """Clinic settings; CLINIC_<KEY> environment variables override the file. `hours`
    (the readable opening hours) is derived from the structured ones."""
    from actions import opening_hours

    settings = dict(_clinic_file())
    for key in settings:
        value = os.environ.get(f"CLINIC_{key.upper()}", "").strip()
        if value:
            settings[key] = value
    try:
        settings["hours"] = opening_hours.hours_text(settings)
        opening_hours.closures(settings)
    except ValueError as error:
        raise ContentError(f"clinic settings: {error}") from error
    return settings


CLINIC_QUESTIONS_SCHEMA = {
    "type": "object",
    "required": ["not_set"],
    "properties": {"not_set": _text},
    "patternProperties": {"^ask_[a-z_0-9]+$": {
        "type": "object", "additionalProperties": False, "required": ["answer"],
        "properties": {"answer": _text}}},
    "additionalProperties": False,
}


@lru_cache(maxsize=None)
def clinic_questions() -> Dict[str, Any]:
    entries = _load("knowledge/clinic_questions.yml", CLINIC_QUESTIONS_SCHEMA)
    import string

    known = set(CLINIC_KEYS) | set(CLINIC_OPTIONAL_KEYS) | {"hours"}
    for intent, entry in entries.items():
        text = entry if intent == "not_set" else entry["answer"]
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f}
        if fields - known:
            raise ContentError(f"clinic_questions.yml: {intent} uses unknown settings "
                               f"{sorted(fields - known)}")
    return entries


def review_due(entry: Dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(entry["review_due"])
