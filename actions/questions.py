"""action_answer_question: questions a clinic answers the same way every time, from
data/knowledge/questions.yml (ask_diagnosis: "is it my disc?"; ask_medication: "can I
take ibuprofen?"). Never a diagnosis and never advice on medicines: the answer says who
can help, offers booking and, for a diagnosis request, the FAQ answers that fit."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import content, safety
from actions.buttons import faq_button
from actions.pain import fitting_answers


class ActionAnswerQuestion(Action):
    def name(self) -> Text:
        return "action_answer_question"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name") or ""
        entry = content.questions().get(intent)
        if entry is None:  # an intent without an entry yet: never guess an answer
            dispatcher.utter_message(response="utter_out_of_scope")
            return []
        safety.repeat_advice(dispatcher, tracker)  # "just a strain?" after a warning sign
        related = fitting_answers(tracker.latest_message.get("text") or "") \
            if entry.get("related_from_text") == "true" else []
        dispatcher.utter_message(
            text=entry["answer"],
            buttons=[faq_button(f) for f in related[:2]]
            + [{"title": "Book a visit", "payload": "/book_appointment"}])
        return []
