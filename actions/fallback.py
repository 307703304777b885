"""action_did_you_mean: the reply to nlu_fallback.

First, the conversation may settle what the classifier could not (`revised_intent`): a
follow-up about the exercise just taught, a request naming an exercise, an answer
related to the one just given, a statement naming a situation that needs a caution (its
reply gives it), or two readings with the same reply ("thanks, that's everything": thank
or goodbye). The action that answers that intent then answers the message (`answer_as`);
the stored message keeps the classifier's reading, so it is stored once and counted as a
fallback. Otherwise it offers the FAQ questions the classifier ranked highest as buttons,
plus "none of these", instead of answering something the model is unsure of.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import content
from actions.buttons import faq_button
from actions.cautions import situations_in

MAX_SUGGESTIONS = 3
# Below this the ranking is noise; suggesting such questions would only confuse.
MIN_SUGGESTION_CONFIDENCE = 0.05
NONE_OF_THESE = {"title": "None of these", "payload": "/book_appointment"}
# Readings that get the same kind of reply: together they can settle a message.
FAMILIES = ({"thank", "goodbye"}, {"ask_exercise", "recommend_exercise"})
FAMILY_CONFIDENCE = 0.6
# The least confidence with which the conversation so far may settle a reading.
CONTEXT_CONFIDENCE = 0.35
# Two FAQ answers that between them take this much are both about what was asked.
FAQ_PAIR_CONFIDENCE = 0.8
# A statement naming a situation that needs a caution (data/knowledge/cautions.yml): its
# reply gives the caution, so a weaker reading is enough.
STATEMENTS = ("describe_pain", "share_context", "describe_situation")
STATEMENT_CONFIDENCE = 0.25


def _ranking(tracker: Tracker) -> List[Dict[str, Any]]:
    return [item for item in tracker.latest_message.get("intent_ranking") or []
            if item.get("name") not in (None, "nlu_fallback")]


def _names_exercise(tracker: Tracker) -> bool:
    """An exercise named (entity, other name) or described as only one is ("the standing
    one holding the counter")."""
    from actions.exercise_followups import described_exercises, named_exercises
    from actions.exercises import entity_exercise

    text = tracker.latest_message.get("text") or ""
    return entity_exercise(tracker) is not None or bool(named_exercises(text)) \
        or len(described_exercises(text)) == 1


def revised_intent(tracker: Tracker) -> Optional[str]:
    """The intent the conversation settles an unsure message as, or None."""
    ranking = _ranking(tracker)
    if not ranking:
        return None
    top, confidence = ranking[0]["name"], ranking[0].get("confidence", 0.0)
    if top == "out_of_scope":
        return None
    for family in FAMILIES:
        if top in family and sum(i.get("confidence", 0.0) for i in ranking
                                 if i["name"] in family) >= FAMILY_CONFIDENCE:
            return top
    faqs = content.faqs()
    if top in faqs and len(ranking) > 1 and ranking[1]["name"] in faqs and \
            confidence + ranking[1].get("confidence", 0.0) >= FAQ_PAIR_CONFIDENCE:
        return top
    if top in STATEMENTS and confidence >= STATEMENT_CONFIDENCE and situations_in(
            tracker.latest_message.get("text") or ""):
        return top  # "I was diagnosed with osteoporosis and get a lot of back ache"
    if confidence < CONTEXT_CONFIDENCE:
        return None
    if top == "ask_exercise" and _names_exercise(tracker):
        return top  # "a physio once gave me the fire hydrant, remind me how it goes?"
    from actions.exercise_followups import DETAILS

    if top in DETAILS and tracker.get_slot("exercise") in content.exercises():
        return top  # "what if I feel unsteady?" about the exercise just taught
    last = tracker.get_slot("last_answer")
    if last in faqs and (top == last or top in faqs[last].get("related", [])
                         or top == "ask_exercise_purpose"):
        return top  # "why would that end up in my back?" after an answer
    return None


def answering_action(intent: str) -> Action:
    """The action the rules give `intent` (data/rules), for the intents `revised_intent`
    can return."""
    from actions.courtesy import ActionCourtesy
    from actions.exercise_followups import DETAILS, ActionExerciseDetail, \
        ActionRecommendExercise
    from actions.exercises import ActionExerciseInstructions
    from actions.faq import ActionAnswerFaq
    from actions.pain import ActionDescribePain, ActionShareContext
    from actions.cautions import ActionCaution

    if intent in content.faqs():
        return ActionAnswerFaq()
    if intent in DETAILS:
        return ActionExerciseDetail()
    return {"thank": ActionCourtesy(), "goodbye": ActionCourtesy(),
            "ask_exercise": ActionExerciseInstructions(),
            "recommend_exercise": ActionRecommendExercise(),
            "describe_pain": ActionDescribePain(), "share_context": ActionShareContext(),
            "describe_situation": ActionCaution()}[intent]


async def answer_as(dispatcher: CollectingDispatcher, tracker: Tracker, intent: str,
                    domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
    """Answer the latest message as `intent` (its text and entities kept)."""
    latest = dict(tracker.latest_message)
    confidence = next((i.get("confidence", 0.0) for i in _ranking(tracker)
                       if i["name"] == intent), 0.0)
    latest["intent"] = {"name": intent, "confidence": confidence}
    settled = Tracker(tracker.sender_id, tracker.slots, latest, tracker.events,
                      tracker.is_paused(), tracker.followup_action, tracker.active_loop,
                      tracker.latest_action_name)
    return await answering_action(intent).run(dispatcher, settled, domain)


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

        if safety.repeat_advice(dispatcher, tracker):
            dispatcher.utter_message(text=safety.safety_text("flag_other"))
            return []
        dispatcher.utter_message(response="utter_out_of_scope")
        return []


class ActionDidYouMean(Action):
    def name(self) -> Text:
        return "action_did_you_mean"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        from actions import safety

        if safety.repeat_advice(dispatcher, tracker):  # whatever was meant
            dispatcher.utter_message(text=safety.safety_text("flag_other"))
            return []
        intent = revised_intent(tracker)
        if intent is not None:
            return await answer_as(dispatcher, tracker, intent, domain)
        utter_did_you_mean(dispatcher, tracker)
        return []
