""""Was this helpful?" after answers, and action_record_feedback for the two buttons.

The prompt follows the first answer of a session, then at most every FEEDBACK_EVERY-th
answer, so it does not nag. A click is stored as a `feedback` slot event
({"answer": <faq intent or exercise id>, "helpful": bool}) that `make report` counts.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import content

HELPFUL, NOT_HELPFUL = "feedback_helpful", "feedback_not_helpful"
FEEDBACK_BUTTONS = [
    {"title": "Yes, it helped", "payload": f"/{HELPFUL}"},
    {"title": "No, it didn't", "payload": f"/{NOT_HELPFUL}"},
]
PROMPT = "Was this helpful?"


def feedback_every() -> int:
    """Answers between two prompts (FEEDBACK_EVERY in the environment, default 3)."""
    return max(1, int(os.environ.get("FEEDBACK_EVERY", "") or 3))


def ask_for_feedback(dispatcher: CollectingDispatcher, tracker: Tracker,
                     answer_id: str) -> List[Dict[Text, Any]]:
    """After an answer: the prompt when it is due, and the slots that count answers."""
    from actions import safety

    if safety.active_flag(tracker) is not None:  # not after urgent-care advice
        return []
    since = tracker.get_slot("answers_since_feedback")
    if since is not None and since + 1 < feedback_every():
        return [SlotSet("answers_since_feedback", since + 1)]
    dispatcher.utter_message(text=PROMPT, buttons=FEEDBACK_BUTTONS)
    return [SlotSet("answers_since_feedback", 0.0), SlotSet("feedback_answer", answer_id)]


class ActionRecordFeedback(Action):
    def name(self) -> Text:
        return "action_record_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        helpful = (tracker.latest_message.get("intent") or {}).get("name") == HELPFUL
        if helpful:
            dispatcher.utter_message(text="Thank you, I'm glad it helped.")
        else:
            clinic = content.clinic()
            dispatcher.utter_message(
                text="Thanks for telling us: the clinic team reviews answers that did not "
                     "help. You could ask in other words, or talk to a physiotherapist on "
                     f"{clinic['phone']}.",
                buttons=[{"title": "Book a visit", "payload": "/book_appointment"}])
        answer = tracker.get_slot("feedback_answer")
        if not answer:  # feedback without a prompt (typed, or a second click)
            return []
        return [SlotSet("feedback", {"answer": answer, "helpful": helpful}),
                SlotSet("feedback_answer", None)]
