"""action_urgent_care and action_red_flag_info: replies for warning signs.

Messages come from data/safety/red_flags.yml; phone numbers from the clinic settings.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, List, Optional, Text

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import content
from actions.alerts import send_staff_alert

TIERS = ("emergency", "urgent")


@lru_cache(maxsize=None)
def safety_messages() -> Dict[str, str]:
    path = content.DATA_DIR / "safety" / "red_flags.yml"
    messages = yaml.safe_load(path.read_text(encoding="utf-8"))["messages"]
    missing = {*TIERS, "info", "disclaimer"} - set(messages)
    if missing:
        raise content.ContentError(f"{path}: messages {sorted(missing)} missing")
    return messages


def latest_entity(tracker: Tracker, name: str) -> Optional[Dict[str, Any]]:
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == name:
            return entity
    return None


def safety_text(kind: str) -> str:
    return safety_messages()[kind].format(**content.clinic())


class ActionUrgentCare(Action):
    def name(self) -> Text:
        return "action_urgent_care"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        flag = latest_entity(tracker, "red_flag") or {}
        # The classifier alone (no tier from the detector) still gets the safest reply.
        tier = flag.get("value") if flag.get("value") in TIERS else "emergency"
        dispatcher.utter_message(text=safety_text(tier))
        send_staff_alert(tier, flag.get("role"), tracker.get_latest_input_channel(),
                         tracker.sender_id)
        # Forget the exercise being taught: no exercise advice after a red flag.
        return [SlotSet("exercise", None)]


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
