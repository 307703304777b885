"""action_session_start: every conversation opens with the disclaimer; a standing red
flag (actions/safety.py) is carried into the new session, nothing else."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.safety import STATE_SLOT, active_flag, safety_text


class ActionSessionStart(Action):
    def name(self) -> Text:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        # Sent before the reply to the user's first message, on every channel.
        dispatcher.utter_message(text=safety_text("disclaimer"))
        # The tracker still holds the session that ended: its slots are readable here.
        flag = active_flag(tracker)
        carried = [SlotSet(STATE_SLOT, flag)] if flag is not None else []
        return [SessionStarted(), *carried, ActionExecuted("action_listen")]
