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
                             "harder", "stop_if", *_review],
                "properties": {
                    "name": _text, "purpose": _text, "steps": _texts, "dose": _text,
                    "mistakes": _texts, "easier": _text, "harder": _text,
                    "stop_if": _texts, **_review,
                },
            },
        }
    },
}

CLINIC_KEYS = ["name", "phone", "booking_url", "email", "address", "hours",
               "emergency_number", "non_emergency_line", "crisis_line"]
CLINIC_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": CLINIC_KEYS,
    "properties": {key: _text for key in CLINIC_KEYS},
}


PAIN_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["acknowledgement", "acknowledgement_no_topic", "screen_lead", "topics",
                 "default"],
    "properties": {
        "acknowledgement": _text, "acknowledgement_no_topic": _text, "screen_lead": _text,
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
    return entries


@lru_cache(maxsize=None)
def exercises() -> Dict[str, Dict[str, Any]]:
    return _load("knowledge/exercises.yml", EXERCISE_SCHEMA)["exercises"]


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
    """Clinic settings; CLINIC_<KEY> environment variables override the file."""
    settings = dict(_clinic_file())
    for key in settings:
        value = os.environ.get(f"CLINIC_{key.upper()}", "").strip()
        if value:
            settings[key] = value
    return settings


def review_due(entry: Dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(entry["review_due"])
