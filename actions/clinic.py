"""action_clinic_info: how to book a visit or contact the clinic."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import content


def booking_text(settings: Dict[str, str]) -> str:
    return (
        f"You can book a visit with a physiotherapist at {settings['name']}:\n"
        f"- Online: {settings['booking_url']}\n"
        f"- Phone: {settings['phone']}\n"
        f"- Email: {settings['email']}\n"
        f"- Address: {settings['address']}\n"
        f"- Opening hours: {settings['hours']}"
    )


class ActionClinicInfo(Action):
    def name(self) -> Text:
        return "action_clinic_info"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(text=booking_text(content.clinic()))
        return []
