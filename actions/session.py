"""action_session_start: every conversation opens with the disclaimer."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, SessionStarted
from rasa_sdk.executor import CollectingDispatcher

from actions.safety import safety_text


class ActionSessionStart(Action):
    def name(self) -> Text:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        # Sent before the reply to the user's first message, on every channel.
        dispatcher.utter_message(text=safety_text("disclaimer"))
        return [SessionStarted(), ActionExecuted("action_listen")]
