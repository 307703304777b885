"""Conversation context in the actions (actions/fallback.py, actions/pain.py,
actions/exercises.py, actions/screening.py): an unsure message settled by what was just
said, the check asked together with what the visitor asked for, and the advice that stands
coming first. Exact replies and events, from the content files."""
from __future__ import annotations

import pytest
from rasa_sdk.events import SlotSet

from actions import content
from actions.exercises import ActionExerciseInstructions
from actions.fallback import ActionDidYouMean, ActionOutOfScope, revised_intent
from actions.pain import ActionDescribePain, ActionShareContext
from actions.safety import safety_text
from actions.screening import NONE_PAYLOAD, ActionScreenAnswer, ActionYesNo, last_bot_was_screen
from tests.conftest import make_tracker

# What a fallback reply says (the visitor sees "I did not understand").
FALLBACK_TEXTS = ("not sure I understood", "outside what I can help with", "I can only help with")
FLAG = {"red_flag_state": {"tier": "urgent", "category": "cancer", "since": 4e9}}


def unsure(text, ranking, slots=None):
    """A message the classifier fell back on, with its ranking below the fallback."""
    tracker = make_tracker("nlu_fallback", text=text, slots=slots,
                           ranking=[{"name": "nlu_fallback", "confidence": 0.55}]
                           + [{"name": n, "confidence": c} for n, c in ranking])
    return tracker


# -- settling an unsure message from the conversation ------------------------------------
def test_thanks_or_goodbye_together_settle_a_courtesy():
    assert revised_intent(unsure("thanks, that's everything",
                                 [("thank", 0.45), ("goodbye", 0.4)])) == "thank"


def test_a_follow_up_is_settled_by_the_exercise_just_taught():
    ranking = [("ask_exercise_stop", 0.4), ("describe_pain", 0.3)]
    assert revised_intent(unsure("what if i feel wobbly", ranking,
                                 {"exercise": "glute_bridge"})) == "ask_exercise_stop"
    assert revised_intent(unsure("what if i feel wobbly", ranking)) is None


def test_why_after_an_answer_is_settled_by_that_answer():
    ranking = [("ask_exercise_purpose", 0.44), ("ask_diagnosis", 0.3)]
    assert revised_intent(unsure("why would that hurt my back", ranking,
                                 {"last_answer": "faq_hip_flexors"})) == "ask_exercise_purpose"
    related = content.faqs()["faq_hip_flexors"]["related"][0]
    assert revised_intent(unsure("and that?", [(related, 0.4), ("greet", 0.3)],
                                 {"last_answer": "faq_hip_flexors"})) == related


def test_two_faq_answers_that_share_the_message_settle_on_the_first():
    assert revised_intent(unsure("why would sitting make them tight",
                                 [("faq_tight_glutes", 0.5), ("faq_hip_flexors", 0.4)])) \
        == "faq_tight_glutes"


@pytest.mark.parametrize("ranking, slots", [
    ([("out_of_scope", 0.5), ("thank", 0.4)], {}),  # never settles as in scope
    ([("ask_exercise_stop", 0.2), ("greet", 0.1)], {"exercise": "glute_bridge"}),  # too weak
    ([("book_appointment", 0.45), ("ask_hours", 0.4)], {}),  # nothing in context
])
def test_what_the_conversation_cannot_settle_stays_unsure(ranking, slots):
    assert revised_intent(unsure("something", ranking, slots)) is None


def test_a_statement_naming_a_situation_is_settled_as_that_statement():
    ranking = [("describe_pain", 0.45), ("report_red_flag", 0.25)]
    text = "i was diagnosed with osteoporosis last year and my lower back aches"
    assert revised_intent(unsure(text, ranking)) == "describe_pain"
    # without a situation that needs a caution, the same reading stays unsure
    assert revised_intent(unsure("my lower back aches a lot", ranking)) is None


async def test_a_settled_situation_gets_its_caution(dispatcher):
    tracker = unsure("osteoporosis and a sore back, what's ok for me",
                     [("describe_situation", 0.3), ("recommend_exercise", 0.2)])
    events = await ActionDidYouMean().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["text"].startswith(
        content.cautions()["osteoporosis"]["caution"])
    assert SlotSet("situation", ["osteoporosis"]) in events


def test_a_request_naming_an_exercise_is_settled_as_that_request():
    ranking = [("ask_exercise", 0.52), ("report_red_flag", 0.45)]
    named = [{"entity": "exercise", "value": "fire_hydrant"}]
    tracker = make_tracker("nlu_fallback", text="a physio gave me the fire hydrant, how's it go",
                           entities=named, ranking=[{"name": "nlu_fallback", "confidence": 0.55}]
                           + [{"name": n, "confidence": c} for n, c in ranking])
    assert revised_intent(tracker) == "ask_exercise"
    assert revised_intent(unsure("how does it go", ranking)) is None  # no exercise named
    # described as only one exercise is ("the standing one holding the counter")
    assert revised_intent(unsure("and the standing one holding the counter?", ranking)) \
        == "ask_exercise"


async def test_a_settled_message_is_answered_by_that_intent_s_action(dispatcher):
    tracker = unsure("and if it hurts?", [("ask_exercise_stop", 0.5), ("greet", 0.1)],
                     {"exercise": "clamshell"})
    events = await ActionDidYouMean().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["text"].startswith("Clam (clamshell), stop if:")
    assert events == [SlotSet("exercise", "clamshell")]  # no second user message stored


async def test_an_unsettled_message_gets_the_suggestions(dispatcher):
    tracker = unsure("hmm", [("faq_piriformis", 0.3), ("greet", 0.2)])
    assert await ActionDidYouMean().run(dispatcher, tracker, {}) == []
    assert dispatcher.messages[0]["buttons"][0]["payload"] == "/faq_piriformis"


@pytest.mark.parametrize("action", [ActionDidYouMean, ActionOutOfScope])
async def test_while_a_flag_stands_the_advice_replaces_the_fallback(dispatcher, action):
    tracker = unsure("is it from sitting do you think", [("faq_hip_flexors", 0.5)], FLAG)
    assert await action().run(dispatcher, tracker, {}) == []
    texts = [m["text"] for m in dispatcher.messages]
    assert texts == [safety_text("urgent"), safety_text("flag_other")]
    assert not any(mark in t for t in texts for mark in FALLBACK_TEXTS)


# -- the check together with what was asked for -----------------------------------------
async def test_a_first_description_gets_the_check_and_the_answers_that_fit(dispatcher):
    tracker = make_tracker("describe_pain", text="i sit at a desk all day and my back aches")
    events = await ActionDescribePain().run(dispatcher, tracker, {})
    check, answers = dispatcher.messages
    assert safety_text("screen") in check["text"]
    assert [b["payload"] for b in check["buttons"]][-1] == NONE_PAYLOAD
    assert answers["text"].startswith(content.pain_descriptions()["after_check"])
    assert content.faqs()["faq_hip_flexors"]["question"] in answers["text"]
    assert answers["buttons"][0]["payload"] == "/faq_hip_flexors"
    assert SlotSet("screening", "asked") in events


async def test_a_passed_over_check_comes_with_the_first_lesson(dispatcher):
    tracker = make_tracker("ask_exercise", entities=[{"entity": "exercise", "value": "clamshell"}],
                           slots={"screening": "asked"})
    events = await ActionExerciseInstructions().run(dispatcher, tracker, {})
    texts = [m["text"] for m in dispatcher.messages]
    assert safety_text("screen") in texts[0] and texts[0].endswith(
        safety_text("screen_then_lesson"))
    assert texts[1].startswith(content.exercises()["clamshell"]["name"])
    assert SlotSet("screening", "reasked") in events and SlotSet("exercise", "clamshell") in events
    pending = next(e["value"] for e in events if e.get("name") == "screen_pending")
    assert pending == {"intent": "ask_exercise", "exercise": "clamshell", "taught": True}


async def test_none_of_these_after_a_lesson_given_with_the_check_does_not_repeat_it(dispatcher):
    slots = {"screening": "reasked",
             "screen_pending": {"intent": "ask_exercise", "exercise": "clamshell", "taught": True}}
    await ActionScreenAnswer().run(dispatcher, make_tracker("no_warning_signs", slots=slots), {})
    cleared, next_step = dispatcher.messages
    assert cleared["text"] == safety_text("screen_cleared")
    assert next_step["text"] == safety_text("screen_lesson_cleared")
    assert [b["payload"] for b in next_step["buttons"]] == [
        f'/{i}{{"exercise":"clamshell"}}'
        for i in ("ask_exercise_dose", "ask_exercise_easier", "ask_exercise_harder")]


def test_yes_or_no_answers_a_check_that_was_not_the_last_message():
    latest = {"text": "no", "intent": {"name": "deny", "confidence": 0.9}}
    events = [{"event": "user", "text": "my back aches", "parse_data": {}},
              {"event": "bot", "text": "check", "data": {"buttons": [{"payload": NONE_PAYLOAD}]}},
              {"event": "bot", "text": "answers", "data": {"buttons": [{"payload": "/faq_x"}]}},
              {"event": "action", "name": "action_listen"},
              {"event": "user", "text": "no", "parse_data": latest}]
    from rasa_sdk import Tracker

    tracker = Tracker("t", {}, latest, events, False, None, {}, "action_listen")
    assert last_bot_was_screen(tracker)


async def test_ok_after_the_advice_repeats_it(dispatcher):
    tracker = make_tracker("affirm", text="k", slots=FLAG)
    assert await ActionYesNo().run(dispatcher, tracker, {}) == []
    assert [m["text"] for m in dispatcher.messages] == [safety_text("urgent")]


# -- what someone says about themselves ----------------------------------------------------
async def test_context_without_pain_gets_the_answers_that_fit_and_no_check(dispatcher):
    tracker = make_tracker("share_context", text="i drive a van for a living")
    assert await ActionShareContext().run(dispatcher, tracker, {}) == []
    [message] = dispatcher.messages
    assert message["text"].startswith(content.pain_descriptions()["context_acknowledgement"])
    assert message["buttons"][0]["payload"] == "/faq_hip_flexors"
    assert not any(b["payload"] == NONE_PAYLOAD for b in message["buttons"])


async def test_context_while_a_flag_stands_gets_the_advice(dispatcher):
    tracker = make_tracker("share_context", text="i run a lot", slots=FLAG)
    assert await ActionShareContext().run(dispatcher, tracker, {}) == []
    assert [m["text"] for m in dispatcher.messages] == [safety_text("urgent")]


async def test_a_description_gets_the_answers_that_fit_what_was_said_before(dispatcher):
    from rasa_sdk import Tracker

    latest = {"text": "my lower back has ached since i started", "entities": [],
              "intent": {"name": "describe_pain", "confidence": 0.9}}
    events = [{"event": "session_started"},
              {"event": "user", "text": "i sit at a desk all day", "parse_data": {}},
              {"event": "bot", "text": "thanks"},
              {"event": "user", "text": latest["text"], "parse_data": latest}]
    tracker = Tracker("t", {"screening": "cleared"}, latest, events, False, None, {},
                      "action_listen")
    await ActionDescribePain().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["buttons"][0]["payload"] == "/faq_hip_flexors"


# -- the advice that stands comes before any answer ------------------------------------------
async def test_faq_and_diagnosis_answers_repeat_the_advice_first(dispatcher):
    from actions.faq import ActionAnswerFaq
    from actions.questions import ActionAnswerQuestion

    await ActionAnswerFaq().run(dispatcher, make_tracker("faq_piriformis", slots=FLAG), {})
    await ActionAnswerQuestion().run(dispatcher, make_tracker("ask_diagnosis", text="just a strain?",
                                                              slots=FLAG), {})
    texts = [m["text"] for m in dispatcher.messages]
    assert texts == [safety_text("urgent"), content.faqs()["faq_piriformis"]["answer"],
                     safety_text("urgent"), content.questions()["ask_diagnosis"]["answer"]]


async def test_a_request_that_describes_one_exercise_teaches_it(dispatcher):
    from actions.exercise_followups import ActionRecommendExercise

    tracker = make_tracker("recommend_exercise", text="something for my lunch break, the one "
                           "where you lie on your side and open your knees?")
    events = await ActionRecommendExercise().run(dispatcher, tracker, {})
    assert SlotSet("exercise", "clamshell") in events
