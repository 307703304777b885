"""The warning-sign check: one question, the signs in plain words in two groups.

Asked (action_screen_red_flags) when the intent model suspects a red flag that the
deterministic detector does not confirm, when someone asks whether their pain is serious,
once per session when someone first describes their pain (actions/pain.py), and once more
before the first exercise lesson, in the same reply, if it was passed over. The buttons:

- the emergency signs -> `/report_red_flag{"red_flag":"emergency"}` -> action_urgent_care;
- the urgent signs -> `/report_red_flag{"red_flag":"urgent"}` -> action_urgent_care;
- none of these -> `/no_warning_signs` -> action_screen_answer, which carries on with
  what the visitor had asked (slot `screen_pending`: an intent, and an exercise or the
  FAQ answers that fit a description; never their words).

A typed "yes" or "no" right after the question (action_yes_no) asks which group, or
counts as none of these. Slot `screening`: asked, reasked, cleared or flagged.
"""
from __future__ import annotations

import re

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import content, safety
from actions.buttons import faq_button
from actions.cautions import remember, situations_in

SCREEN_SLOT, PENDING_SLOT = "screening", "screen_pending"
ASKED, REASKED, CLEARED = "asked", "reasked", "cleared"
EMERGENCY_PAYLOAD = '/report_red_flag{"red_flag":"emergency"}'
URGENT_PAYLOAD = '/report_red_flag{"red_flag":"urgent"}'
NONE_PAYLOAD = "/no_warning_signs"
SCREEN_PAYLOADS = (EMERGENCY_PAYLOAD, URGENT_PAYLOAD, NONE_PAYLOAD)
# Intents that a check may interrupt and "none of these" then answers.
RESUMABLE = ("faq_", "ask_exercise", "describe_pain", "book_appointment", "ask_phone_number")
MIN_PENDING_CONFIDENCE = 0.3
MIN_NAMED_EXERCISE_CONFIDENCE = 0.15
QUESTION = re.compile(r"\?\s*$|^\s*(what|how|why|when|can|could|does|do|is|are|should|will)\b",
                      re.IGNORECASE)


def screen_buttons() -> List[Dict[str, str]]:
    return [
        {"title": safety.safety_text("screen_emergency"), "payload": EMERGENCY_PAYLOAD},
        {"title": safety.safety_text("screen_urgent"), "payload": URGENT_PAYLOAD},
        {"title": safety.safety_text("screen_none"), "payload": NONE_PAYLOAD},
    ]


def ask(dispatcher: CollectingDispatcher, tracker: Tracker, pending: Optional[Dict[str, Any]],
        again: bool = False, lead: str = "", tail: str = "") -> List[Dict[Text, Any]]:
    """Ask the check; remember what to carry on with when none of the signs apply."""
    text = " ".join(part for part in (lead, safety.safety_text("screen"), tail) if part)
    dispatcher.utter_message(text=text, buttons=screen_buttons())
    return [SlotSet(SCREEN_SLOT, REASKED if again else ASKED), SlotSet(PENDING_SLOT, pending)]


def pending_from_ranking(tracker: Tracker) -> Optional[Dict[str, Any]]:
    """What the latest message asked besides a warning sign: the best resumable intent
    the model ranked (the classifier's first choice was a red flag or "is it serious")."""
    from actions.exercises import entity_exercise  # that module imports this one

    named = entity_exercise(tracker)
    # The question at the end of a long message, read on its own (components/
    # focus_sentence.py), before the whole message's other readings.
    focus = tracker.latest_message.get("focus_intent")
    ranking = tracker.latest_message.get("intent_ranking") or []
    for item in ([focus] if focus else []) + ranking:
        name = item.get("name") or ""
        # A named exercise makes a weaker "how does it go?" reading worth carrying on with.
        least = MIN_NAMED_EXERCISE_CONFIDENCE if name == "ask_exercise" and named \
            else MIN_PENDING_CONFIDENCE
        if name.startswith(RESUMABLE) and item.get("confidence", 0) >= least:
            pending: Dict[str, Any] = {"intent": name}
            if name == "ask_exercise" and named:
                pending["exercise"] = named
            return pending
    # A statement the model read as a warning sign ("I sit all day and my back aches"):
    # after "none of these" it gets the reply to a description of pain.
    text = tracker.latest_message.get("text") or ""
    if not QUESTION.search(text):
        from actions.pain import fitting_answers

        return {"intent": "describe_pain", "topics": fitting_answers(text)}
    return {"intent": "ask_if_serious"}  # "is this something serious?"


def last_bot_was_screen(tracker: Tracker) -> bool:
    """Whether the assistant's latest reply (all its messages) held the check, so that
    "yes"/"no" answer it."""
    users = 0
    for event in reversed(tracker.events):
        if event.get("event") == "bot":
            buttons = (event.get("data") or {}).get("buttons") or []
            if any(b.get("payload") in SCREEN_PAYLOADS for b in buttons):
                return True
        if event.get("event") == "user":
            users += 1  # the first is the "yes" or "no" being answered
            if users > 1:
                return False
    return False


def carry_on(dispatcher: CollectingDispatcher, tracker: Tracker,
             pending: Optional[Dict[str, Any]]) -> List[Dict[Text, Any]]:
    """Answer what the check interrupted."""
    # Imported here: these modules import this one for the check itself.
    from actions.clinic import utter_clinic
    from actions.exercises import ask_which, teach
    from actions.faq import answer_faq
    from actions.pain import utter_description_reply

    intent = (pending or {}).get("intent") or ""
    if intent in content.faqs():
        return answer_faq(dispatcher, tracker, intent)
    if intent == "ask_exercise":
        exercise = (pending or {}).get("exercise")
        if exercise in content.exercises() and (pending or {}).get("taught"):
            # the lesson came with the check: what to ask about it next
            from actions.exercise_followups import detail_button

            dispatcher.utter_message(
                text=safety.safety_text("screen_lesson_cleared"),
                buttons=[{**detail_button(intent, exercise), "title": title}
                         for intent, title in (("ask_exercise_dose", "How much"),
                                               ("ask_exercise_easier", "Easier"),
                                               ("ask_exercise_harder", "Harder"))])
            return []
        if exercise in content.exercises():
            return teach(dispatcher, tracker, exercise)
        ask_which(dispatcher)
        return []
    if intent == "describe_pain":
        from actions.cautions import caution_text

        situations = tracker.get_slot("situation") or []
        if situations:
            dispatcher.utter_message(text=caution_text(situations))
        utter_description_reply(dispatcher, (pending or {}).get("topics") or [])
        return []
    if intent in ("book_appointment", "ask_phone_number"):
        utter_clinic(dispatcher, intent)
        return []
    if intent == "ask_if_serious":
        dispatcher.utter_message(
            text=safety.safety_text("screen_cleared_question"),
            buttons=[{"title": "Book a visit", "payload": "/book_appointment"},
                     {"title": "Warning signs", "payload": "/ask_red_flags"}])
        return []
    dispatcher.utter_message(
        text="What would you like to know?",
        buttons=[faq_button("faq_glutes_cause_back_pain"),
                 {"title": "Glute exercises", "payload": "/faq_glute_activation"},
                 {"title": "Book a visit", "payload": "/book_appointment"}])
    return []


def answer_none(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[Dict[Text, Any]]:
    pending = tracker.get_slot(PENDING_SLOT)
    dispatcher.utter_message(text=safety.safety_text("screen_cleared"))
    return [SlotSet(SCREEN_SLOT, CLEARED), SlotSet(PENDING_SLOT, None),
            *carry_on(dispatcher, tracker, pending if isinstance(pending, dict) else None)]


class ActionScreenRedFlags(Action):
    """The check, for a suspected flag or "is this serious?"."""

    def name(self) -> Text:
        return "action_screen_red_flags"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        # "I had a microdiscectomy two months ago, is that a worry?": the situation is
        # kept for the lessons that follow, though this reply is the check.
        situations = remember(tracker, situations_in(tracker.latest_message.get("text") or ""))
        if safety.repeat_advice(dispatcher, tracker):  # already told: not asked again
            return situations
        # A fresh suspicion ("now my bum feels numb") counts as a new check: if it is
        # passed over too, it comes once more with the next lesson.
        return [*ask(dispatcher, tracker, pending_from_ranking(tracker)), *situations]


class ActionScreenAnswer(Action):
    """"None of these": carry on with what the check interrupted."""

    def name(self) -> Text:
        return "action_screen_answer"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        # "None of these" cannot undo a sign described earlier; a doctor's visit can.
        if safety.repeat_advice(dispatcher, tracker):
            return []
        return answer_none(dispatcher, tracker)


class ActionYesNo(Action):
    """"yes" / "no": an answer to the check when it was the last question, else the
    ordinary replies (utter_affirm / utter_deny)."""

    def name(self) -> Text:
        return "action_yes_no"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if safety.repeat_advice(dispatcher, tracker):  # "ok" after the urgent advice
            return []
        if last_bot_was_screen(tracker):
            if intent == "deny":
                return answer_none(dispatcher, tracker)
            dispatcher.utter_message(text=safety.safety_text("screen_which"),
                                     buttons=screen_buttons())
            return []
        dispatcher.utter_message(response="utter_affirm" if intent == "affirm" else "utter_deny")
        return []
