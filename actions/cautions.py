"""Cautions for situations where general exercise advice needs one first (pregnancy,
recent surgery, osteoporosis, not getting down to the floor), from
data/knowledge/cautions.yml. A situation mentioned is remembered for the session (slot
`situation`): every later lesson begins with its caution."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Dict, List, Pattern, Set, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import content, safety

SLOT = "situation"
BOOK_BUTTON = {"title": "Book a visit", "payload": "/book_appointment"}


@lru_cache(maxsize=None)
def _patterns() -> Tuple[Tuple[str, Pattern[str]], ...]:
    return tuple((name, re.compile(r"(?<![a-z])(?:" + "|".join(
        re.escape(w.lower()) for w in entry["words"]) + ")", re.IGNORECASE))
        for name, entry in content.cautions().items())


def situations_in(text: str) -> List[str]:
    normalised = text.replace("’", "'")
    return [name for name, pattern in _patterns() if pattern.search(normalised)]


def known_situations(tracker: Tracker) -> List[str]:
    """The situations of this message (first: the visitor just said it), then those of
    the session so far: remembered, or said in a message no caution answered ("I had a
    microdiscectomy two months ago" read as a worry and answered with the safety check).
    Only the events Rasa loaded are read (the store's recent window), so the cost does not
    grow with the conversation; the slot keeps what is older."""
    texts = []
    for event in reversed(tracker.events):
        if event.get("event") == "session_started":
            break
        if event.get("event") == "user" and not (event.get("text") or "").startswith("/"):
            texts.append(event.get("text") or "")
    latest = tracker.latest_message.get("text") or ""
    if latest.startswith("/"):
        # A button ("None of these" after the warning-sign check): the message typed
        # before it is the one the visitor "just said".
        latest = texts[0] if texts else ""
    found = situations_in(latest)
    earlier = {s for text in texts for s in situations_in(text)} | set(
        tracker.get_slot(SLOT) or [])
    return [s for s in content.cautions() if s in found] + \
        [s for s in content.cautions() if s in earlier and s not in found]


def remember(tracker: Tracker, situations: List[str]) -> List[Dict[Text, Any]]:
    """Add these situations to the session's; never forgets one (an answer that needs no
    caution, such as an FAQ without exercises, passes none)."""
    remembered = tracker.get_slot(SLOT) or []
    ordered = [s for s in content.cautions() if s in situations or s in remembered]
    return [SlotSet(SLOT, ordered)] if ordered != remembered else []


def caution_text(situations: List[str]) -> str:
    return "\n".join(content.cautions()[s]["caution"] for s in situations)


def avoided_exercises(situations: List[str]) -> Set[str]:
    """The exercises a caution of these situations warns against (cautions.yml `avoid`)."""
    return {e for s in situations for e in content.cautions()[s].get("avoid", [])}


def suggested_exercises(situations: List[str]) -> List[str]:
    tags = {t for s in situations for t in content.cautions()[s]["suggest"]}
    avoid = avoided_exercises(situations)
    return [e for e, entry in content.exercises().items()
            if tags & set(entry["tags"]) and e not in avoid]


class ActionCaution(Action):
    """"Is it safe to do these while I'm pregnant?", "I had a new hip six weeks ago"."""

    def name(self) -> Text:
        return "action_caution"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        from actions.exercises import exercise_button

        flag = safety.active_flag(tracker)
        if flag is not None:
            safety.utter_no_exercise(dispatcher, flag)
            return []
        situations = known_situations(tracker)
        from actions.exercise_followups import named_exercises
        from actions.exercises import requested_exercise, teach_or_screen

        named, _ = requested_exercise(tracker) if (
            any(e.get("entity") == "exercise" for e in tracker.latest_message.get("entities") or [])
            or named_exercises(tracker.latest_message.get("text") or "")) else (None, [])
        if situations and named:
            # "what about the clam while pregnant?": the caution, then the lesson
            return teach_or_screen(dispatcher, tracker, named)
        if not situations:
            dispatcher.utter_message(
                text="If you have a health condition, are pregnant or have had recent "
                     "surgery, check with your doctor or a physiotherapist before starting "
                     "new exercises. A physiotherapist can assess you and tailor them.",
                buttons=[BOOK_BUTTON])
            return []
        exercises = suggested_exercises(situations)
        names = ", ".join(content.exercises()[e]["name"].lower() for e in exercises)
        text = caution_text(situations)
        current = tracker.get_slot("exercise")
        if current in content.exercises() and "cannot_get_to_floor" in situations:
            # "can I do it on the bed instead?" about the exercise just taught
            entry = content.exercises()[current]
            text += f"\n{entry['name']}: {entry['position']}"
        if exercises:
            text += f"\nThese suit that position: {names}."
        dispatcher.utter_message(text=text,
                                 buttons=[exercise_button(e) for e in exercises[:4]] + [BOOK_BUTTON])
        return remember(tracker, situations)
