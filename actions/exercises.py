"""action_exercise_instructions: teach one exercise from data/knowledge/exercises.yml."""
from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import content, safety, screening
from actions.feedback import ask_for_feedback

OTHER = re.compile(r"\b(other|another|second)\b", re.IGNORECASE)
# Every exercise ends with this, so the "when to stop" advice points to urgent care.
WARNING_SIGNS_LINE = (
    "Stop and get urgent medical help (do not keep exercising) if you get numbness "
    "between your legs, new bladder or bowel problems, or weakness or pain spreading "
    "down both legs."
)


def exercise_button(exercise_id: str) -> Dict[str, str]:
    name = content.exercises()[exercise_id]["name"]
    entities = json.dumps({"exercise": exercise_id}, separators=(",", ":"))
    return {"title": name, "payload": f"/ask_exercise{entities}"}


def entity_exercise(tracker: Tracker) -> Optional[str]:
    """The exercise the NLU entity names in the latest message, if it is a known one."""
    known = content.exercises()
    return next((e["value"] for e in tracker.latest_message.get("entities") or []
                 if e.get("entity") == "exercise" and e.get("value") in known), None)


_CLAUSE_END = re.compile(r"[,;.!?]+\s+|\s+but\s+", re.IGNORECASE)


def asking_clause(text: str) -> str:
    """The last clause that names or describes an exercise: the request usually comes
    last ("squats are hard with my bump, how do I do the sideways walking one")."""
    from actions.exercise_followups import described_exercises, named_exercises

    clauses = [c for c in _CLAUSE_END.split(text) if c.strip()]
    if len(clauses) < 2:
        return text
    for clause in reversed(clauses):
        if named_exercises(clause) or described_exercises(clause):
            return clause
    return text


_POSITION = re.compile(r"\b(first|1st|second|2nd|third|3rd|last|next)\b(?:\s+\w+)?\s+"
                       r"(?:one|exercise|move)\b|\bnext\b", re.IGNORECASE)
_INDEX = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "last": -1}


def listed_exercises(tracker: Tracker) -> List[str]:
    """The exercises of the latest reply that named two or more, in the order named."""
    from actions.exercise_followups import exercise_positions

    for event in reversed(tracker.events or []):
        if event.get("event") == "bot" and event.get("text"):
            named = exercise_positions(event["text"])
            if len(named) >= 2:
                return named
    return []


def exercise_by_position(tracker: Tracker, text: str) -> Optional[str]:
    """"start me on the first one" after a list; "next one": the one after the exercise
    just taught in that list (in the content's order without a list)."""
    match = _POSITION.search(text)
    if match is None:
        return None
    word = (match.group(1) or "next").lower()
    listed = listed_exercises(tracker)
    if word != "next":
        return listed[_INDEX[word]] if listed else None
    order = listed or list(content.exercises())
    current = tracker.get_slot("exercise")
    if current not in order:
        return order[0] if listed else None
    following = order.index(current) + 1
    return order[following] if following < len(order) else None


def exercise_just_named(tracker: Tracker) -> Optional[str]:
    """The one exercise the assistant's last reply named ("Simple exercises such as the
    glute bridge ..." -> "and that one? how do I do it?"), else None."""
    from actions.exercise_followups import every_exercise_named

    replies: List[str] = []
    users_seen = 0  # the latest message, then the replies before it, back to the one before
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            users_seen += 1
            if users_seen == 2:
                break
        elif users_seen == 1 and event.get("event") == "bot" and event.get("text"):
            replies.append(event["text"])
    named = every_exercise_named(" ".join(reversed(replies))) if replies else []
    return named[0] if len(named) == 1 else None


def requested_exercise(tracker: Tracker) -> Tuple[Optional[str], List[str]]:
    """The exercise asked for: named (entity), or described ("the one on your side");
    with the candidates when a description fits several ("the kneeling one")."""
    from actions.exercise_followups import described_exercises, named_exercises

    named = entity_exercise(tracker)
    if named is not None:
        return named, []
    known = content.exercises()
    text = asking_clause(tracker.latest_message.get("text") or "")
    current = tracker.get_slot("exercise")
    for found in (named_exercises(text), described_exercises(text)):
        if len(found) > 1 and current in found and OTHER.search(text):
            found = [e for e in found if e != current]  # "and the other kneeling one?"
        if len(found) == 1:
            return found[0], []
        if found:
            return None, found
    positional = exercise_by_position(tracker, text)
    if positional is not None:
        return positional, []
    # "how do I do it?" after the exercise was named: by the last reply, or taught before
    just_named = exercise_just_named(tracker)
    if just_named is not None:
        return just_named, []
    return (current, []) if current in known else (None, [])


def instructions(exercise: Dict[str, Any]) -> List[str]:
    """The exercise as three phone-sized messages (no blank lines: channels split on them)."""
    steps = "\n".join(f"{n}. {step}" for n, step in enumerate(exercise["steps"], start=1))
    mistakes = "\n".join(f"- {m}" for m in exercise["mistakes"])
    stop = "\n".join(f"- {s}" for s in exercise["stop_if"])
    return [
        f"{exercise['name']}: {exercise['purpose']}\n{steps}",
        f"How much: {exercise['dose']}.\nCommon mistakes:\n{mistakes}\n"
        f"Easier: {exercise['easier']}\nHarder: {exercise['harder']}",
        f"When to stop:\n{stop}\n- {WARNING_SIGNS_LINE}",
    ]


def teach(dispatcher: CollectingDispatcher, tracker: Tracker,
          exercise_id: str) -> List[Dict[Text, Any]]:
    """The lesson (after the caution of a situation mentioned, e.g. pregnancy), then the
    feedback prompt if due; remembers the exercise."""
    from actions.cautions import caution_text, known_situations, remember

    situations = known_situations(tracker)
    if situations:
        dispatcher.utter_message(text=caution_text(situations))
    *first, last = instructions(content.exercises()[exercise_id])
    for text in first:
        dispatcher.utter_message(text=text)
    others = [e for e in content.exercises() if e != exercise_id][:2]
    dispatcher.utter_message(
        text=last,
        buttons=[exercise_button(e) for e in others]
        + [{"title": "Warning signs", "payload": "/ask_red_flags"}],
    )
    return [SlotSet("exercise", exercise_id), SlotSet("last_answer", exercise_id),
            *remember(tracker, situations), *ask_for_feedback(dispatcher, tracker, exercise_id)]


def teach_or_screen(dispatcher: CollectingDispatcher, tracker: Tracker,
                    exercise_id: str) -> List[Dict[Text, Any]]:
    """The lesson; if the warning-sign check was asked and passed over, it is asked once
    more first, in the same reply: the visitor who asked for a lesson gets it, and a sign
    chosen then still stops the exercise (the lesson ends with when to stop)."""
    if tracker.get_slot(screening.SCREEN_SLOT) == screening.ASKED:
        events = screening.ask(dispatcher, tracker,
                               {"intent": "ask_exercise", "exercise": exercise_id,
                                "taught": True},
                               again=True, tail=safety.safety_text("screen_then_lesson"))
        return events + teach(dispatcher, tracker, exercise_id)
    return teach(dispatcher, tracker, exercise_id)


def ask_which(dispatcher: CollectingDispatcher, candidates: Optional[List[str]] = None) -> None:
    names = [content.exercises()[e]["name"] for e in candidates or []]
    # Without candidates, the names are in the text too: not every channel shows buttons,
    # and "show me some exercises" should see them.
    every = [e["name"].lower() for e in content.exercises().values()]
    dispatcher.utter_message(
        text=f"Do you mean the {' or the '.join(n.lower() for n in names)}?" if names
        else f"I can teach these step by step: {', '.join(every[:-1])} and {every[-1]}. "
             f"Which exercise would you like to learn?",
        buttons=[exercise_button(e) for e in candidates or content.exercises()],
    )


class ActionExerciseInstructions(Action):
    """The lesson, unless a warning sign stands (then why not, and the advice again) or
    the warning-sign check was asked and passed over (then it is asked once more first)."""

    def name(self) -> Text:
        return "action_exercise_instructions"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        flag = safety.active_flag(tracker)
        if flag is not None:
            safety.utter_no_exercise(dispatcher, flag)
            return [SlotSet("exercise", None)]
        exercise_id, candidates = requested_exercise(tracker)
        if exercise_id is None and not candidates:
            from actions.exercise_followups import ActionRecommendExercise, requested_tags

            if requested_tags(tracker.latest_message.get("text") or ""):
                # "show me one I can do standing": a request for a kind of exercise
                return await ActionRecommendExercise().run(dispatcher, tracker, domain)
        if exercise_id is None:
            ask_which(dispatcher, candidates)
            return []
        return teach_or_screen(dispatcher, tracker, exercise_id)
