"""action_exercise_instructions: teach one exercise from data/knowledge/exercises.yml."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import content, safety, screening
from actions.feedback import ask_for_feedback

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


def requested_exercise(tracker: Tracker) -> Optional[str]:
    known = content.exercises()
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == "exercise" and entity.get("value") in known:
            return entity["value"]
    return None


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
    """The lesson, then the feedback prompt if due; remembers the exercise."""
    *first, last = instructions(content.exercises()[exercise_id])
    for text in first:
        dispatcher.utter_message(text=text)
    others = [e for e in content.exercises() if e != exercise_id][:2]
    dispatcher.utter_message(
        text=last,
        buttons=[exercise_button(e) for e in others]
        + [{"title": "Warning signs", "payload": "/ask_red_flags"}],
    )
    return [SlotSet("exercise", exercise_id),
            *ask_for_feedback(dispatcher, tracker, exercise_id)]


def ask_which(dispatcher: CollectingDispatcher) -> None:
    dispatcher.utter_message(
        text="Which exercise would you like to learn?",
        buttons=[exercise_button(e) for e in content.exercises()],
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
        exercise_id = requested_exercise(tracker)
        if exercise_id is None:
            ask_which(dispatcher)
            return []
        if tracker.get_slot(screening.SCREEN_SLOT) == screening.ASKED:
            return screening.ask(dispatcher, tracker,
                                 {"intent": "ask_exercise", "exercise": exercise_id},
                                 again=True)
        return teach(dispatcher, tracker, exercise_id)
