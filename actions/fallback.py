"""action_did_you_mean: the reply to nlu_fallback.

Offers the FAQ questions the classifier ranked highest as buttons, plus "none of
these", instead of answering something the model is unsure of.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import content
from actions.buttons import faq_button

MAX_SUGGESTIONS = 3
# Below this the ranking is noise; suggesting such questions would only confuse.
MIN_SUGGESTION_CONFIDENCE = 0.05
NONE_OF_THESE = {"title": "None of these", "payload": "/book_appointment"}


def suggestions(tracker: Tracker) -> List[str]:
    ranking = tracker.latest_message.get("intent_ranking") or []
    faqs = content.faqs()
    return [
        item["name"]
        for item in ranking
        if item.get("name") in faqs and item.get("confidence", 0) >= MIN_SUGGESTION_CONFIDENCE
    ][:MAX_SUGGESTIONS]


def utter_did_you_mean(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
    ids = suggestions(tracker)
    buttons = [faq_button(i) for i in ids]
    if ids:
        text = "Sorry, I'm not sure I understood. Did you mean one of these?"
    else:
        text = ("Sorry, I'm not sure I understood. I can answer questions about lower back "
                "pain and the glutes, teach exercises, or help you contact the clinic.")
        buttons = [
            {"title": "What can you ask me?", "payload": "/ask_capabilities"},
        ]
    dispatcher.utter_message(text=text, buttons=buttons + [NONE_OF_THESE])


class ActionOutOfScope(Action):
    """The out-of-scope reply; while a warning sign stands, the advice comes first (a
    visitor who asks something else still needs a doctor)."""

    def name(self) -> Text:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        from actions import safety

        flag = safety.active_flag(tracker)
        if flag is not None:
            dispatcher.utter_message(text=safety.safety_text(flag["tier"]))
        dispatcher.utter_message(response="utter_out_of_scope")
        return []


class ActionDidYouMean(Action):
    def name(self) -> Text:
        return "action_did_you_mean"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        from actions import safety

        flag = safety.active_flag(tracker)
        if flag is not None:  # whatever was meant, the advice that stands comes first
            dispatcher.utter_message(text=safety.safety_text(flag["tier"]))
        utter_did_you_mean(dispatcher, tracker)
        return []
