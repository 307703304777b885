"""Thanks and goodbyes. While a warning sign stands, "ok thanks" after being told to get
urgent care must not end on a cheerful note alone: a one-line reminder of where to go
comes first. Not the whole advice again: the SPEC gives that to booking requests and
"what number?", and the urgent message only where a red flag is affirmed."""
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
        flag = safety.active_flag(tracker)
        if flag is not None:
            dispatcher.utter_message(text=safety.safety_text(f"courtesy_{flag['tier']}"))
        dispatcher.utter_message(response=RESPONSES.get(intent, "utter_you_are_welcome"))
        return []
