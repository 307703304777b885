"""Warning signs: action_urgent_care, action_crisis_support, action_red_flag_info,
action_other_language, and the red-flag state the other actions read.

Messages come from data/safety/red_flags.yml (English) and data/safety/red_flags.<lang>.yml
(the replies to French and Spanish visitors); phone numbers from the clinic settings.

The red-flag state (slot `red_flag_state`: tier, category, when) stands for
RED_FLAG_MEMORY_HOURS (default 24) after the last affirmed flag, across sessions
(actions/session.py carries it over) and restarts (it is a tracker event), or until the
visitor says a doctor has seen them. While it stands there are no exercise lessons, and
booking and "what number?" get the urgent advice first.
"""
from __future__ import annotations

import os
import time
from functools import lru_cache
from typing import Any, Dict, List, Optional, Text

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import content
from actions.alerts import send_staff_alert

TIERS = ("emergency", "urgent")
STATE_SLOT = "red_flag_state"
DEFAULT_MEMORY_HOURS = 24.0
REQUIRED_MESSAGES = {*TIERS, "info", "disclaimer", "crisis", "screen", "screen_emergency",
                     "screen_urgent", "screen_none", "screen_which", "screen_cleared",
                     "screen_then_lesson", "screen_lesson_cleared",
                     "screen_cleared_question",
                     "no_exercise", "flag_other", "booking_first", "clinic_after_doctor",
                     "seen_doctor", "seen_doctor_no_flag"}
LANGUAGE_MESSAGES = {"english_only", "emergency", "urgent", "crisis"}


@lru_cache(maxsize=None)
def safety_messages(language: str = "en") -> Dict[str, str]:
    name = "red_flags.yml" if language == "en" else f"red_flags.{language}.yml"
    path = content.DATA_DIR / "safety" / name
    try:
        messages = yaml.safe_load(path.read_text(encoding="utf-8"))["messages"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as error:
        raise content.ContentError(f"{path}: {error}") from error
    missing = (REQUIRED_MESSAGES if language == "en" else LANGUAGE_MESSAGES) - set(messages)
    if missing:
        raise content.ContentError(f"{path}: messages {sorted(missing)} missing")
    return messages


def languages() -> List[str]:
    """The languages with replies of their own (beside English)."""
    folder = content.DATA_DIR / "safety"
    return sorted(p.suffixes[-2].lstrip(".") for p in folder.glob("red_flags.*.yml"))


def safety_text(kind: str, language: str = "en") -> str:
    if language != "en" and language not in languages():
        language = "en"
    return safety_messages(language)[kind].format(**content.clinic())


def latest_entity(tracker: Tracker, name: str) -> Optional[Dict[str, Any]]:
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == name:
            return entity
    return None


def message_language(tracker: Tracker) -> str:
    entity = latest_entity(tracker, "language") or {}
    return entity.get("value") if entity.get("value") in languages() else "en"


def memory_seconds() -> float:
    hours = os.environ.get("RED_FLAG_MEMORY_HOURS", "").strip()
    return float(hours or DEFAULT_MEMORY_HOURS) * 3600


def active_flag(tracker: Tracker, now: Optional[float] = None) -> Optional[Dict[str, Any]]:
    """The standing red flag, if one was affirmed less than RED_FLAG_MEMORY_HOURS ago."""
    state = tracker.get_slot(STATE_SLOT)
    if not isinstance(state, dict) or state.get("tier") not in TIERS:
        return None
    since = state.get("since")
    if not isinstance(since, (int, float)):
        return None
    if (time.time() if now is None else now) - since >= memory_seconds():
        return None
    return state


def repeat_advice(dispatcher: CollectingDispatcher,
                  tracker: Tracker) -> Optional[Dict[str, Any]]:
    """While a warning sign stands its advice comes first, whatever the visitor says
    ("ok thanks", a question the assistant did not understand): the standing flag, after
    repeating its advice, or None."""
    flag = active_flag(tracker)
    if flag is not None:
        dispatcher.utter_message(text=safety_text(flag["tier"]))
    return flag


def utter_no_exercise(dispatcher: CollectingDispatcher, flag: Dict[str, Any]) -> None:
    dispatcher.utter_message(text=f"{safety_text('no_exercise')} {safety_text(flag['tier'])}")


def utter_number(dispatcher: CollectingDispatcher, flag: Dict[str, Any]) -> None:
    """"What number?" while a flag stands: the advice again, which holds the numbers to
    call now, then the clinic's number for later."""
    dispatcher.utter_message(text=safety_text(flag["tier"]))
    dispatcher.utter_message(text=safety_text("clinic_after_doctor"))


class ActionUrgentCare(Action):
    def name(self) -> Text:
        return "action_urgent_care"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        flag = latest_entity(tracker, "red_flag") or {}
        # Without a tier from the detector or the screening buttons: the safest reply.
        tier = flag.get("value") if flag.get("value") in TIERS else "emergency"
        dispatcher.utter_message(text=safety_text(tier, message_language(tracker)))
        category = flag.get("role") or "screened"
        send_staff_alert(tier, category, tracker.get_latest_input_channel(),
                         tracker.sender_id)
        previous = active_flag(tracker)
        if previous is not None and TIERS.index(previous["tier"]) < TIERS.index(tier):
            tier, category = previous["tier"], previous.get("category", category)
        state = {"tier": tier, "category": category, "since": time.time()}
        # Forget the exercise being taught and any pending check: no exercise advice now.
        return [SlotSet("exercise", None), SlotSet(STATE_SLOT, state),
                SlotSet("screening", "flagged"), SlotSet("screen_pending", None)]


class ActionCrisisSupport(Action):
    """Thoughts of self-harm or suicide: the crisis line and the emergency number, and a
    staff alert. Never treated as back pain or out of scope."""

    def name(self) -> Text:
        return "action_crisis_support"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(text=safety_text("crisis", message_language(tracker)))
        send_staff_alert("crisis", "self_harm", tracker.get_latest_input_channel(),
                         tracker.sender_id)
        return [SlotSet("exercise", None), SlotSet("screen_pending", None)]


class ActionRedFlagInfo(Action):
    def name(self) -> Text:
        return "action_red_flag_info"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(
            text=safety_text("info"),
            buttons=[{"title": "Book a visit", "payload": "/book_appointment"}],
        )
        return []


class ActionOtherLanguage(Action):
    """A message in French or Spanish with no warning sign: in that language, that the
    assistant speaks English (with the clinic's phone and the emergency number)."""

    def name(self) -> Text:
        return "action_other_language"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        language = message_language(tracker)
        if language == "en":  # no language entity (e.g. typed "/other_language")
            dispatcher.utter_message(response="utter_out_of_scope")
            return []
        dispatcher.utter_message(text=safety_text("english_only", language))
        return []
