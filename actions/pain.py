"""action_describe_pain: someone describes their pain without asking anything.

The reply a clinic's receptionist would give: an acknowledgement, the FAQ answers that fit
what was said (data/knowledge/pain_descriptions.yml), the exercises and booking. The
first description of a session gets the warning-sign check first (actions/screening.py):
"none of these" then brings this reply.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Dict, List, Pattern, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import content, safety, screening
from actions.buttons import faq_button

MAX_ANSWERS = 3


@lru_cache(maxsize=None)
def _topics() -> Tuple[Tuple[Pattern[str], Tuple[str, ...]], ...]:
    topics = content.pain_descriptions()["topics"]
    return tuple((re.compile(r"\b(?:" + "|".join(re.escape(w) for w in topic["words"]) + ")",
                             re.IGNORECASE), tuple(topic["faqs"])) for topic in topics)


def fitting_answers(text: str) -> List[str]:
    """The FAQ ids whose topic words the description uses, best first."""
    found: List[str] = []
    for pattern, faqs in _topics():
        if pattern.search(text):
            found += [f for f in faqs if f not in found]
    return found[:MAX_ANSWERS]


def recent_user_texts(tracker: Tracker, limit: int = 4) -> List[str]:
    """The visitor's messages before the latest one in this session, newest first (at
    most `limit`: a turn's cost does not grow with the conversation)."""
    texts: List[str] = []
    users = 0
    for event in reversed(tracker.events):
        if event.get("event") == "session_started" or len(texts) >= limit:
            break
        if event.get("event") == "user":
            users += 1
            if users > 1 and event.get("text") and not str(event["text"]).startswith("/"):
                texts.append(str(event["text"]))
    return texts


def conversation_answers(tracker: Tracker) -> List[str]:
    """The answers that fit the latest message together with what the visitor said just
    before ("I sit at a desk all day", then "my back has ached since"), in the order of
    the topics (the most specific first)."""
    latest = tracker.latest_message.get("text") or ""
    return fitting_answers("\n".join([latest, *recent_user_texts(tracker)]))


def utter_description_reply(dispatcher: CollectingDispatcher, topics: List[str],
                            after_check: bool = False) -> None:
    """The acknowledgement and the answers that fit, named in the text (a channel without
    buttons still shows them) and offered as buttons."""
    settings = content.pain_descriptions()
    faqs = [t for t in topics if t in content.faqs()][:MAX_ANSWERS]
    prefix = "after_check" if after_check else "acknowledgement"
    text = settings[prefix] if faqs else settings[f"{prefix}_no_topic"]
    faqs = faqs or settings["default"][:MAX_ANSWERS]
    questions = "\n".join(f"- {content.faqs()[f]['question']}" for f in faqs)
    dispatcher.utter_message(
        text=f"{text}\n{questions}",
        buttons=[faq_button(f) for f in faqs]
        + [{"title": "Glute exercises", "payload": "/faq_glute_activation"},
           {"title": "Book a visit", "payload": "/book_appointment"}])


class ActionDescribePain(Action):
    def name(self) -> Text:
        return "action_describe_pain"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        if safety.repeat_advice(dispatcher, tracker):  # the advice, not exercises
            return []
        from actions.cautions import caution_text, known_situations, remember

        topics = conversation_answers(tracker)
        situations = known_situations(tracker)  # "I'm pregnant and my back aches"
        if tracker.get_slot(screening.SCREEN_SLOT) is None:  # first description this session
            if situations:  # the caution is due now, whatever the check's answer will be
                dispatcher.utter_message(text=caution_text(situations))
            events = [*remember(tracker, situations),
                      *screening.ask(dispatcher, tracker,
                                     {"intent": "describe_pain", "topics": topics},
                                     lead=content.pain_descriptions()["screen_lead"])]
            utter_description_reply(dispatcher, topics, after_check=True)
            return events
        if situations:
            dispatcher.utter_message(text=caution_text(situations))
        utter_description_reply(dispatcher, topics)
        return remember(tracker, situations)


class ActionShareContext(Action):
    """"I sit at a desk all day", "I'm training for a half marathon": no pain described
    and nothing asked yet. The answers that fit what was said, with no warning-sign check
    (nothing was said that could need one)."""

    def name(self) -> Text:
        return "action_share_context"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        if safety.repeat_advice(dispatcher, tracker):
            return []
        from actions.cautions import caution_text, known_situations, remember

        situations = known_situations(tracker)
        if situations:
            dispatcher.utter_message(text=caution_text(situations))
        settings = content.pain_descriptions()
        faqs = fitting_answers(tracker.latest_message.get("text") or "") \
            or settings["default"][:MAX_ANSWERS]
        questions = "\n".join(f"- {content.faqs()[f]['question']}" for f in faqs)
        dispatcher.utter_message(
            text=f"{settings['context_acknowledgement']}\n{questions}",
            buttons=[faq_button(f) for f in faqs]
            + [{"title": "Glute exercises", "payload": "/faq_glute_activation"},
               {"title": "Book a visit", "payload": "/book_appointment"}])
        return remember(tracker, situations)
