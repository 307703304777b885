"""End to end over REST: the trained model, the action server and Rasa, as a user meets them."""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Dict, List

import pytest
import requests

from actions import content

MODEL = Path(__file__).resolve().parents[1] / "models" / "assistant.tar.gz"

pytestmark = pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run `make train`")


@pytest.fixture(scope="module")
def rasa_url(assistant) -> str:
    return assistant["url"]


class User:
    """One person chatting over REST."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/webhooks/rest/webhook"
        self.sender = f"test-{uuid.uuid4().hex[:12]}"

    def say(self, text: str) -> List[Dict]:
        response = requests.post(self.url, json={"sender": self.sender, "message": text},
                                 timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def say_past_disclaimer(self, text: str) -> List[Dict]:
        """Skip the disclaimer that opens every conversation."""
        replies = self.say(text)
        if replies and "not a diagnosis" in replies[0].get("text", ""):
            return replies[1:]
        return replies


FEEDBACK_PROMPT = "Was this helpful?"  # after the first answer of a session, then every 3rd


def texts(replies: List[Dict]) -> List[str]:
    return [r.get("text", "") for r in replies]


def payloads(reply: Dict) -> List[str]:
    return [b["payload"] for b in reply.get("buttons", [])]


def test_first_reply_is_the_disclaimer_then_the_greeting(rasa_url):
    user = User(rasa_url)
    replies = user.say("hi there")
    assert "general information" in replies[0]["text"] and "not a diagnosis" in replies[0]["text"]
    assert replies[1]["text"].startswith("Hello!")
    # Only the first reply of a conversation carries it.
    assert all("not a diagnosis" not in t for t in texts(user.say("thanks")))


@pytest.mark.parametrize("faq_id", sorted(content.faqs()))
def test_every_faq_is_answered_when_asked_in_words(rasa_url, faq_id):
    entry = content.faqs()[faq_id]
    replies = User(rasa_url).say_past_disclaimer(entry["question"])
    assert texts(replies) == [entry["answer"].strip(), FEEDBACK_PROMPT]
    # the exercises the answer names (each a lesson), then its related questions
    assert payloads(replies[0]) == [
        *(f'/ask_exercise{{"exercise":"{e}"}}' for e in entry.get("exercises", [])),
        *(f"/{r}" for r in entry["related"])]


def test_related_question_buttons_lead_to_their_answer(rasa_url):
    user = User(rasa_url)
    first = user.say_past_disclaimer("what is the piriformis?")
    follow_up = payloads(first[0])[0]
    replies = user.say(follow_up)
    # The second answer: no feedback prompt.
    assert texts(replies) == [content.faqs()[follow_up[1:]]["answer"].strip()]


def test_feedback_prompt_every_third_answer_and_the_buttons_answer(rasa_url):
    user = User(rasa_url)
    asked = []
    for question in ["what is the piriformis?", "/faq_hip_flexors", "/faq_tight_glutes",
                     "/faq_glute_anatomy", "/faq_walking_glutes", "/faq_which_doctor"]:
        replies = user.say_past_disclaimer(question)
        asked.append(texts(replies)[-1] == FEEDBACK_PROMPT)
        if asked[-1]:
            assert payloads(replies[-1]) == ["/feedback_helpful", "/feedback_not_helpful"]
    assert asked == [True, False, False, True, False, False]
    assert texts(user.say("/feedback_helpful")) == ["Thank you, I'm glad it helped."]
    not_helpful = user.say("/feedback_not_helpful")  # a second click: thanked, not counted
    assert content.clinic()["phone"] in not_helpful[0]["text"]


@pytest.mark.parametrize("message, exercise", [
    ("how do i do a clam", "clamshell"),
    ("show me the hip bridge", "glute_bridge"),
    ("how to do the knee hug stretch", "knee_to_chest"),
    ("fire hydrants how", "fire_hydrant"),
])
def test_exercise_instructions_with_synonyms(rasa_url, message, exercise):
    replies = User(rasa_url).say_past_disclaimer(message)
    steps = content.exercises()[exercise]["steps"]
    assert len(replies) == 4 and replies[3]["text"] == FEEDBACK_PROMPT
    assert f"1. {steps[0]}" in replies[0]["text"]
    assert replies[2]["text"].startswith("When to stop:")


def test_exercise_without_a_name_asks_which_and_the_button_works(rasa_url):
    user = User(rasa_url)
    replies = user.say_past_disclaimer("can you teach me one of the exercises")
    assert replies[0]["text"].endswith("Which exercise would you like to learn?")
    assert "clamshell" in replies[0]["text"]
    button = payloads(replies[0])[3]
    assert button == '/ask_exercise{"exercise":"clamshell"}'
    assert "1. " in user.say(button)[0]["text"]


def test_booking_gives_the_clinic_details(rasa_url):
    replies = User(rasa_url).say_past_disclaimer("how can i book an appointment with a physio")
    settings = content.clinic()
    for value in (settings["name"], settings["phone"], settings["booking_url"], settings["hours"]):
        assert value in replies[0]["text"]


def test_red_flag_gets_urgent_care_and_no_exercise(rasa_url):
    replies = User(rasa_url).say_past_disclaimer(
        "how do i do the glute bridge? since yesterday i cant feel my groin and i wet myself")
    assert len(replies) == 1
    assert "emergency department" in replies[0]["text"]


@pytest.mark.parametrize("message, start", [
    ("bye", "Goodbye"),
    ("thank you so much", "You're welcome"),
    ("yes", "Great."),
    ("no", "No problem."),
    ("are you a bot?", "I'm a virtual assistant"),
    ("what can you do", "I can explain"),
    ("what's the weather like in paris tomorrow", "Sorry, that's outside what I can help with"),
    ("what are the warning signs that back pain is serious", "Most back pain is not serious"),
])
def test_conversation_basics(rasa_url, message, start):
    replies = User(rasa_url).say_past_disclaimer(message)
    assert replies[0]["text"].startswith(start), replies


def test_unsure_message_gets_did_you_mean_with_none_of_these(rasa_url):
    replies = User(rasa_url).say_past_disclaimer("back glute stuff idk")
    assert replies[0]["text"].startswith("Sorry, I'm not sure I understood")
    assert payloads(replies[0])[-1] == "/book_appointment"
