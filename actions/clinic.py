"""action_clinic_info: how to book a visit or contact the clinic (book_appointment,
ask_phone_number), from the clinic settings. While a warning sign stands, the urgent
advice comes first: the visitor needs a doctor before a physiotherapist."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import content, safety


def booking_text(settings: Dict[str, str]) -> str:
    return (
        f"You can book a visit with a physiotherapist at {settings['name']}:\n"
        f"- Online: {settings['booking_url']}\n"
        f"- Phone: {settings['phone']}\n"
        f"- Email: {settings['email']}\n"
        f"- Address: {settings['address']}\n"
        f"- Opening hours: {settings['hours']}"
    )


def phone_text(settings: Dict[str, str]) -> str:
    return (f"You can call {settings['name']} on {settings['phone']} "
            f"({settings['hours']}), or book online at {settings['booking_url']}. "
            f"In an emergency, call {settings['emergency_number']}.")


def utter_clinic(dispatcher: CollectingDispatcher, intent: str) -> None:
    settings = content.clinic()
    dispatcher.utter_message(text=phone_text(settings) if intent == "ask_phone_number"
                             else booking_text(settings))


class ActionClinicInfo(Action):
    def name(self) -> Text:
        return "action_clinic_info"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name") or ""
        flag = safety.active_flag(tracker)
        if flag is not None:
            if intent == "ask_phone_number":
                safety.utter_number(dispatcher, flag)
                return []
            dispatcher.utter_message(text=safety.safety_text("booking_first"))
            dispatcher.utter_message(text=safety.safety_text(flag["tier"]))
        utter_clinic(dispatcher, intent)
        return []
