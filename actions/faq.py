"""action_answer_faq: answer an FAQ intent from data/knowledge/faq.yml."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import content, safety
from actions.buttons import faq_button
from actions.exercises import exercise_button
from actions.fallback import utter_did_you_mean
from actions.feedback import ask_for_feedback


def answer_faq(dispatcher: CollectingDispatcher, tracker: Tracker,
               faq_id: str, lead: str = "") -> List[Dict[Text, Any]]:
    """The answer with its related questions as buttons, then the feedback prompt if due."""
    from actions.cautions import caution_text, known_situations, remember

    entry = content.faqs()[faq_id]
    safety.repeat_advice(dispatcher, tracker)  # information, but the advice first
    situations = known_situations(tracker) if entry.get("exercises") else []
    if situations:  # exercise advice after "I'm pregnant": the caution first
        dispatcher.utter_message(text=caution_text(situations))
    if lead:
        dispatcher.utter_message(text=lead)
    # An answer that lists exercises offers them as buttons, so that a visitor who only
    # clicks can reach each lesson.
    dispatcher.utter_message(
        text=entry["answer"],
        buttons=[exercise_button(e) for e in entry.get("exercises", [])]
        + [faq_button(related) for related in entry["related"]],
    )
    # An answer that teaches one exercise (the knee-to-chest stretch) makes it the
    # current one, so "how long do I hold it?" is about it.
    current = [SlotSet("exercise", entry["exercises"][0])] if len(entry.get("exercises", [])) == 1 \
        else []
    return [*current, SlotSet("last_answer", faq_id), *remember(tracker, situations),
            *ask_for_feedback(dispatcher, tracker, faq_id)]


class ActionAnswerFaq(Action):
    def name(self) -> Text:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent not in content.faqs():
            # Only reachable if an FAQ intent has no answer yet: never guess one.
            utter_did_you_mean(dispatcher, tracker)
            return []
        return answer_faq(dispatcher, tracker, intent)
