"""Thanks and goodbyes. While a warning sign stands, the advice comes first: "ok thanks"
after being told to get urgent care must not end on a cheerful note alone."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import safety

RESPONSES = {"thank": "utter_you_are_welcome", "goodbye": "utter_goodbye"}


class ActionCourtesy(Action):
    def name(self) -> Text:
        return "action_courtesy"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        safety.repeat_advice(dispatcher, tracker)
        dispatcher.utter_message(response=RESPONSES.get(intent, "utter_you_are_welcome"))
        return []
