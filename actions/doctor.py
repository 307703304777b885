""""A doctor has seen me": the red-flag state ends (the doctor's advice now leads), and
what the doctor found ("they found osteopenia on a scan") gets its caution."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import safety
from actions.cautions import ActionCaution, situations_in


# What the visitor can do next, whichever way the doctor's visit went.
NEXT_STEPS = [{"title": "Glute exercises", "payload": "/faq_glute_activation"},
              {"title": "Book a visit", "payload": "/book_appointment"}]


class ActionSeenDoctor(Action):
    def name(self) -> Text:
        return "action_seen_doctor"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        if safety.active_flag(tracker) is None:
            if situations_in(tracker.latest_message.get("text") or ""):
                # "I've got osteopenia, they found it on a scan": what the doctor found
                # needs its caution, not only "follow their advice".
                return await ActionCaution().run(dispatcher, tracker, domain)
            dispatcher.utter_message(text=safety.safety_text("seen_doctor_no_flag"),
                                     buttons=list(NEXT_STEPS))
            return []
        dispatcher.utter_message(text=safety.safety_text("seen_doctor"),
                                 buttons=list(NEXT_STEPS))
        return [SlotSet(safety.STATE_SLOT, None), SlotSet("screening", "cleared")]
