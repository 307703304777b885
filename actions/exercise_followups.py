"""Follow-ups about an exercise, and requests for a kind of exercise.

- action_exercise_detail: "how many sets?", "make it easier", "can I do it in bed?"...
  about the exercise named in the message, described in it ("the one on your side"), or
  else the one just taught (slot `exercise`), answered from that exercise's fields in
  data/knowledge/exercises.yml. The intent says which field.
- action_recommend_exercise: "give me a stretch", "one I can do standing": the exercises
  whose tags fit the words of the message (data/knowledge/exercise_requests.yml).

While a warning sign stands neither gives exercise advice (actions/safety.py).
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Dict, List, Optional, Pattern, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import content, safety
from actions.cautions import avoided_exercises, caution_text, known_situations, remember, \
    suggested_exercises
from actions.exercises import WARNING_SIGNS_LINE, entity_exercise, exercise_button, \
    asking_clause, exercise_just_named, teach_or_screen

# intent -> (field of the exercise, how the reply introduces it)
DETAILS: Dict[str, Tuple[str, str]] = {
    "ask_exercise_dose": ("dose", "How much"),
    "ask_exercise_easier": ("easier", "To make it easier"),
    "ask_exercise_harder": ("harder", "To make it harder"),
    "ask_exercise_stop": ("stop_if", "Stop if"),
    "ask_exercise_position": ("position", "Position"),
    "ask_exercise_frequency": ("frequency", "How often"),
    "ask_exercise_purpose": ("purpose", "Why it helps"),
    "ask_exercise_equipment": ("equipment", "What you need"),
    "ask_exercise_mistakes": ("mistakes", "Common mistakes"),
    "ask_exercise_technique": ("steps", "How to do it"),
}
MAX_RECOMMENDED = 3
BOOK_BUTTON = {"title": "Book a visit", "payload": "/book_appointment"}
WHY_LEAD = "The reason is in that answer; here it is again:"


def _phrases_pattern(phrases: List[str]) -> Pattern[str]:
    return re.compile(r"(?<![a-z])(?:" + "|".join(re.escape(p.lower()) for p in phrases) + ")",
                      re.IGNORECASE)


@lru_cache(maxsize=None)
def _phrases(field: str) -> Tuple[Tuple[str, Tuple[Pattern[str], ...]], ...]:
    return tuple((exercise_id, tuple(_phrases_pattern([p]) for p in entry[field]))
                 for exercise_id, entry in content.exercises().items())


def _matching(field: str, text: str) -> List[str]:
    """The exercises with the most phrases of `field` in the text ("on all fours where
    you kick your leg back": the donkey kick, not the fire hydrant)."""
    scores = [(sum(bool(p.search(text)) for p in patterns), exercise_id)
              for exercise_id, patterns in _phrases(field)]
    best = max((score for score, _ in scores), default=0)
    if not best and field == "names":
        corrected = respelled_names(text)
        return _matching(field, corrected) if corrected != text else []
    return [e for score, e in scores if score == best] if best else []


@lru_cache(maxsize=1)
def _name_sounds() -> Tuple[Dict[str, str], frozenset]:
    """Metaphone code -> one-word exercise name ("bridge", "hydrant"...), and the words
    of English that are never read as a misspelt name ("squad" is not "squat")."""
    import jellyfish
    import wordfreq

    words = {w for entry in content.exercises().values() for name in entry["names"]
             for w in name.lower().split() if w.isalpha() and len(w) >= 4}
    known = frozenset(wordfreq.top_n_list("en", 50000))
    return {jellyfish.metaphone(w): w for w in sorted(words)}, known


def respelled_names(text: str) -> str:
    """The text with misspelt exercise names written right: an unknown word that sounds
    like one ("fire hydrent", "donky kicks") or is spelt nearly like one ("glute bridj")
    becomes that name."""
    import jellyfish

    sounds, known = _name_sounds()

    def respell(match: "re.Match[str]") -> str:
        word = match.group(0)
        lower = word.lower()
        if len(lower) < 4 or lower in known:
            return word
        sound = jellyfish.metaphone(lower)
        if sound in sounds:
            return sounds[sound]
        # or spelt nearly the same ("bridj", "bridg"): Jaro-Winkler weighs the start
        score, name = max((jellyfish.jaro_winkler_similarity(lower, name), name)
                          for name in sounds.values())
        return name if score >= 0.88 else word

    return re.sub(r"[A-Za-z]+", respell, text)


def named_exercises(text: str) -> List[str]:
    """Exercises named in other words than the NLU entity caught ("the clam one")."""
    return _matching("names", text)


def exercise_positions(text: str) -> List[str]:
    """The exercises a text of ours names, in the order it first names them."""
    found = []
    for exercise_id, patterns in _phrases("names"):
        starts = [m.start() for p in patterns for m in [p.search(text)] if m]
        if starts:
            found.append((min(starts), exercise_id))
    return [exercise_id for _, exercise_id in sorted(found)]


def every_exercise_named(text: str) -> List[str]:
    """Every exercise a text of ours names (a reply: spelt right, no ranking by count)."""
    return [exercise_id for exercise_id, patterns in _phrases("names")
            if any(p.search(text) for p in patterns)]


def described_exercises(text: str) -> List[str]:
    """The exercises the text describes ("the kneeling one": two of them)."""
    return _matching("known_as", text)


@lru_cache(maxsize=None)
def _tag_patterns() -> Tuple[Tuple[str, Pattern[str]], ...]:
    return tuple((tag, _phrases_pattern(words))
                 for tag, words in content.exercise_requests()["tags"].items())


@lru_cache(maxsize=None)
def _not_when_patterns() -> Dict[str, Pattern[str]]:
    return {tag: _phrases_pattern(words)
            for tag, words in (content.exercise_requests().get("not_when") or {}).items()}


def requested_tags(text: str) -> List[str]:
    unless = _not_when_patterns()
    return [tag for tag, pattern in _tag_patterns() if pattern.search(text)
            and not (tag in unless and unless[tag].search(text))]


def recommended(text: str) -> Tuple[List[str], bool]:
    """The exercises that fit most of the requested tags, and whether any fit at all."""
    tags = requested_tags(text)
    exercises = content.exercises()
    scored = [(sum(t in entry["tags"] for t in tags), exercise_id)
              for exercise_id, entry in exercises.items()]
    best = max((score for score, _ in scored), default=0)
    if best == 0:
        beginners = [e for e, entry in exercises.items() if "beginner" in entry["tags"]]
        return beginners[:MAX_RECOMMENDED], not tags
    return [e for score, e in scored if score == best][:MAX_RECOMMENDED], True


def previous_user_text(tracker: Tracker) -> str:
    users = [e for e in tracker.events if e.get("event") == "user"]
    return (users[-2].get("text") or "") if len(users) > 1 else ""


def detail_button(intent: str, exercise_id: str) -> Dict[str, str]:
    entities = json.dumps({"exercise": exercise_id}, separators=(",", ":"))
    return {"title": content.exercises()[exercise_id]["name"], "payload": f"/{intent}{entities}"}


def detail_text(exercise_id: str, intent: str) -> str:
    exercise = content.exercises()[exercise_id]
    field, label = DETAILS[intent]
    value = exercise[field]
    if field == "steps":  # in order, as in the lesson
        body = "\n".join(f"{n}. {step}" for n, step in enumerate(value, 1))
        return f"{exercise['name']}, {label.lower()}:\n{body}"
    if isinstance(value, list):
        lines = value + ([WARNING_SIGNS_LINE] if field == "stop_if" else [])
        body = "\n".join(f"- {line}" for line in lines)
        return f"{exercise['name']}, {label.lower()}:\n{body}"
    value = value.rstrip(".")
    return f"{exercise['name']}, {label.lower()}: {value}."


def exercise_in_question(tracker: Tracker) -> Tuple[Optional[str], List[str]]:
    """The exercise a follow-up is about: named (entity or other name), else the current
    one, else described ("how many reps of the kneeling one?"); with the candidates when a description fits
    several. A description does not replace the current exercise: "the harder version
    with the band" is about the clam just taught, not the crab walk."""
    entity = entity_exercise(tracker)
    if entity is not None:
        return entity, []
    known = content.exercises()
    text = asking_clause(tracker.latest_message.get("text") or "")
    named = named_exercises(text)
    if len(named) == 1:
        return named[0], []
    just_named = exercise_just_named(tracker)
    if just_named is not None:
        return just_named, []
    current = tracker.get_slot("exercise")
    if current in known:
        return current, []
    described = described_exercises(text)
    return (described[0], []) if len(described) == 1 else (None, described)


def _names_an_exercise(tracker: Tracker) -> bool:
    return entity_exercise(tracker) is not None \
        or bool(named_exercises(tracker.latest_message.get("text") or ""))


class ActionExerciseDetail(Action):
    def name(self) -> Text:
        return "action_exercise_detail"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        flag = safety.active_flag(tracker)
        if flag is not None:
            safety.utter_no_exercise(dispatcher, flag)
            return []
        intent = (tracker.latest_message.get("intent") or {}).get("name") or ""
        if intent not in DETAILS:
            intent = "ask_exercise_purpose"
        last = tracker.get_slot("last_answer")
        if intent == "ask_exercise_purpose" and last in content.faqs() \
                and not _names_an_exercise(tracker):
            # "why?" after an answer: the answers are written as explanations, so the
            # reasoning is that answer; its related questions come as buttons
            from actions.faq import answer_faq

            return answer_faq(dispatcher, tracker, last, lead=WHY_LEAD)
        exercise_id, candidates = exercise_in_question(tracker)
        if exercise_id is None and intent == "ask_exercise_easier" and not candidates:
            # "the easiest one", before any exercise: the gentlest ones to start with
            return await ActionRecommendExercise().run(dispatcher, tracker, domain)
        if exercise_id is None:
            choices = candidates or list(content.exercises())
            dispatcher.utter_message(
                text="Which exercise do you mean?" if candidates else
                "Which exercise is that about?",
                buttons=[detail_button(intent, e) for e in choices])
            return []
        # "Would the knee hug suit him on his bed?" after osteoporosis: the caution that
        # warns about this exercise comes first.
        situations = known_situations(tracker)
        warning = [s for s in situations if exercise_id in avoided_exercises([s])]
        text = detail_text(exercise_id, intent)
        dispatcher.utter_message(
            text=f"{caution_text(warning)}\n{text}" if warning else text,
            buttons=[{**exercise_button(exercise_id),
                      "title": f"Show me the {content.exercises()[exercise_id]['name'].lower()}"},
                     BOOK_BUTTON])
        return [SlotSet("exercise", exercise_id), *remember(tracker, situations)]


class ActionRecommendExercise(Action):
    def name(self) -> Text:
        return "action_recommend_exercise"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        flag = safety.active_flag(tracker)
        if flag is not None:
            safety.utter_no_exercise(dispatcher, flag)
            return []
        text = tracker.latest_message.get("text") or ""
        named = entity_exercise(tracker)
        if named is None:  # "something for lunch: the one where you lie on your side?"
            tags = requested_tags(text)
            # A description that fits one exercise wins when that exercise is also of a
            # kind asked for ("something gentle standing, holding the kitchen worktop").
            described = [e for e in described_exercises(text)
                         if not tags or set(tags) & set(content.exercises()[e]["tags"])]
            found = named_exercises(text) or described
            named = found[0] if len(found) == 1 else None
        if named is not None:  # "how would he do the squat with the side leg lift?"
            return teach_or_screen(dispatcher, tracker, named)
        if not requested_tags(text):  # "which exercise works it best?": "it" was said before
            text = f"{previous_user_text(tracker)} {text}"
        requests = content.exercise_requests()
        choice, fits = recommended(text)
        if len(choice) == 1 and fits:
            return teach_or_screen(dispatcher, tracker, choice[0])
        exercises = content.exercises()
        intro = requests["intro"] if fits and requested_tags(text) else (
            requests["intro_default"] if fits else requests["no_match"])
        # Pregnancy, osteoporosis, not getting down to the floor...: the caution first,
        # and only exercises that suit it.
        situations = known_situations(tracker)
        if situations:
            suited = suggested_exercises(situations)
            if suited:
                choice = [e for e in choice if e in suited] or suited[:MAX_RECOMMENDED]
            else:  # after an operation: none is suggested before the surgeon agrees
                avoid = avoided_exercises(situations)
                choice = [e for e in choice if e not in avoid]
                intro = requests["intro_once_cleared"]
            intro = f"{caution_text(situations)}\n{intro}"
        lines = "\n".join(f"- {exercises[e]['name']}: {exercises[e]['position']}" for e in choice)
        dispatcher.utter_message(text=f"{intro}\n{lines}",
                                 buttons=[exercise_button(e) for e in choice] + [BOOK_BUTTON])
        return remember(tracker, situations)
