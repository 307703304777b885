"""Every custom action: exact messages and events."""
from __future__ import annotations

import pytest
from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet

from actions import content
from actions.clinic import ActionClinicInfo
from actions.exercises import WARNING_SIGNS_LINE, ActionExerciseInstructions
from actions.fallback import ActionDidYouMean
from actions.faq import ActionAnswerFaq
from actions.feedback import ActionRecordFeedback
from actions.safety import ActionRedFlagInfo, ActionUrgentCare
from actions.session import ActionSessionStart
from tests.conftest import make_tracker, sent

BOOK = {"title": "None of these", "payload": "/book_appointment"}


async def test_faq_answer_comes_from_the_knowledge_base_with_related_buttons(dispatcher):
    events = await ActionAnswerFaq().run(dispatcher, make_tracker("faq_piriformis"), {})
    entry = content.faqs()["faq_piriformis"]
    # The first answer of a session is followed by the feedback prompt.
    assert events == [SlotSet("last_answer", "faq_piriformis"),
                      SlotSet("answers_since_feedback", 0.0),
                      SlotSet("feedback_answer", "faq_piriformis")]
    assert sent(dispatcher) == [{
        "text": entry["answer"],
        "buttons": [{"title": content.faqs()[r]["question"], "payload": f"/{r}"}
                    for r in entry["related"]],
    }, {"text": "Was this helpful?", "buttons": [
        {"title": "Yes, it helped", "payload": "/feedback_helpful"},
        {"title": "No, it didn't", "payload": "/feedback_not_helpful"}]}]
    assert all(b["payload"].startswith("/faq_") for b in dispatcher.messages[0]["buttons"])


@pytest.mark.parametrize("faq_id", sorted(content.faqs()))
async def test_every_faq_intent_is_answered(dispatcher, faq_id):
    await ActionAnswerFaq().run(dispatcher, make_tracker(faq_id), {})
    entry = content.faqs()[faq_id]
    assert dispatcher.messages[0]["text"] == entry["answer"]
    # the exercises the answer names (a lesson each), then 2-3 related questions
    payloads = [b["payload"] for b in dispatcher.messages[0]["buttons"]]
    exercises = entry.get("exercises", [])
    assert payloads[:len(exercises)] == [f'/ask_exercise{{"exercise":"{e}"}}' for e in exercises]
    assert 2 <= len(payloads) - len(exercises) <= 3


async def test_unknown_faq_intent_gets_did_you_mean_not_a_guess(dispatcher):
    tracker = make_tracker("faq_unknown", ranking=[
        {"name": "faq_unknown", "confidence": 0.5},
        {"name": "faq_hip_flexors", "confidence": 0.3}])
    await ActionAnswerFaq().run(dispatcher, tracker, {})
    assert sent(dispatcher) == [{
        "text": "Sorry, I'm not sure I understood. Did you mean one of these?",
        "buttons": [{"title": content.faqs()["faq_hip_flexors"]["question"],
                     "payload": "/faq_hip_flexors"}, BOOK],
    }]


async def test_did_you_mean_offers_the_top_three_faqs_and_none_of_these(dispatcher):
    ranking = [{"name": "nlu_fallback", "confidence": 0.4},
               {"name": "faq_tight_glutes", "confidence": 0.4},
               {"name": "greet", "confidence": 0.2},
               {"name": "faq_piriformis", "confidence": 0.15},
               {"name": "faq_hip_flexors", "confidence": 0.1},
               {"name": "faq_walking_glutes", "confidence": 0.08},
               {"name": "faq_glute_anatomy", "confidence": 0.01}]
    events = await ActionDidYouMean().run(dispatcher, make_tracker("nlu_fallback", ranking=ranking), {})
    assert events == []
    buttons = dispatcher.messages[0]["buttons"]
    assert [b["payload"] for b in buttons] == [
        "/faq_tight_glutes", "/faq_piriformis", "/faq_hip_flexors", "/book_appointment"]
    assert buttons[-1] == BOOK


async def test_did_you_mean_without_plausible_faqs_offers_capabilities(dispatcher):
    tracker = make_tracker("nlu_fallback", ranking=[{"name": "nlu_fallback", "confidence": 0.3},
                                                   {"name": "out_of_scope", "confidence": 0.3}])
    await ActionDidYouMean().run(dispatcher, tracker, {})
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == [
        "/ask_capabilities", "/book_appointment"]


async def test_exercise_instructions_in_three_messages(dispatcher):
    tracker = make_tracker("ask_exercise", entities=[
        {"entity": "exercise", "value": "clamshell", "start": 0, "end": 4}])
    events = await ActionExerciseInstructions().run(dispatcher, tracker, {})
    clam = content.exercises()["clamshell"]
    assert events == [SlotSet("exercise", "clamshell"), SlotSet("last_answer", "clamshell"),
                      SlotSet("answers_since_feedback", 0.0),
                      SlotSet("feedback_answer", "clamshell")]
    texts = [m["text"] for m in dispatcher.messages]
    assert len(texts) == 4 and texts[3] == "Was this helpful?"
    assert texts[0].startswith(f"{clam['name']}: {clam['purpose']}\n1. {clam['steps'][0]}")
    assert f"How much: {clam['dose']}." in texts[1]
    assert f"Easier: {clam['easier']}" in texts[1] and f"Harder: {clam['harder']}" in texts[1]
    assert all(f"- {m}" in texts[1] for m in clam["mistakes"])
    assert texts[2].startswith("When to stop:") and texts[2].endswith(WARNING_SIGNS_LINE)
    payloads = [b["payload"] for b in dispatcher.messages[2]["buttons"]]
    assert payloads[-1] == "/ask_red_flags"
    assert '/ask_exercise{"exercise":"glute_bridge"}' in payloads


async def test_exercise_without_a_known_exercise_asks_which_one(dispatcher):
    tracker = make_tracker("ask_exercise", entities=[{"entity": "exercise", "value": "yoga"}])
    events = await ActionExerciseInstructions().run(dispatcher, tracker, {})
    assert events == []
    names = [e["name"].lower() for e in content.exercises().values()]
    assert dispatcher.messages[0]["text"] == (
        f"I can teach these step by step: {', '.join(names[:-1])} and {names[-1]}. "
        "Which exercise would you like to learn?")
    assert [b["payload"] for b in dispatcher.messages[0]["buttons"]] == [
        f'/ask_exercise{{"exercise":"{e}"}}' for e in content.exercises()]


async def test_clinic_info_uses_the_settings_and_the_environment(dispatcher, monkeypatch):
    monkeypatch.setenv("CLINIC_BOOKING_URL", "https://book.example/x")
    events = await ActionClinicInfo().run(dispatcher, make_tracker("book_appointment"), {})
    settings = content.clinic()
    assert events == []
    assert sent(dispatcher) == [{"text": (
        f"You can book a visit with a physiotherapist at {settings['name']}:\n"
        f"- Online: https://book.example/x\n"
        f"- Phone: {settings['phone']}\n"
        f"- Email: {settings['email']}\n"
        f"- Address: {settings['address']}\n"
        f"- Opening hours: {settings['hours']}")}]


@pytest.mark.parametrize("tier, expected", [
    ("emergency", "call 999 or go to the nearest emergency department"),
    ("urgent", "checked by a doctor within 24 hours"),
    (None, "call 999 or go to the nearest emergency department"),  # classifier only: safest
])
async def test_urgent_care_by_tier(dispatcher, tier, expected):
    entities = [{"entity": "red_flag", "value": tier, "role": "cancer"}] if tier else []
    events = await ActionUrgentCare().run(
        dispatcher, make_tracker("report_red_flag", entities=entities), {})
    state = events[1]["value"]
    assert events == [SlotSet("exercise", None), SlotSet("red_flag_state", state),
                      SlotSet("screening", "flagged"), SlotSet("screen_pending", None)]
    assert state["tier"] == (tier or "emergency")
    assert state["category"] == ("cancer" if tier else "screened")
    assert len(dispatcher.messages) == 1
    assert expected in dispatcher.messages[0]["text"]
    assert "exercise" in dispatcher.messages[0]["text"]  # "do not do any exercises"


async def test_urgent_care_uses_the_clinic_emergency_number(dispatcher, monkeypatch):
    monkeypatch.setenv("CLINIC_EMERGENCY_NUMBER", "112")
    await ActionUrgentCare().run(dispatcher, make_tracker(
        "report_red_flag", entities=[{"entity": "red_flag", "value": "emergency"}]), {})
    assert "Please call 112" in dispatcher.messages[0]["text"]


async def test_red_flag_info_lists_the_warning_signs_without_an_alarm(dispatcher):
    await ActionRedFlagInfo().run(dispatcher, make_tracker("ask_red_flags"), {})
    text = dispatcher.messages[0]["text"]
    assert text.startswith("Most back pain is not serious")
    for sign in ["bladder or bowel", "numbness between your", "both legs", "fever",
                 "history of cancer", "weight loss", "worse at night"]:
        assert sign in text


async def test_session_start_sends_the_disclaimer_first(dispatcher):
    events = await ActionSessionStart().run(dispatcher, make_tracker("greet"), {})
    assert events == [SessionStarted(), ActionExecuted("action_listen")]
    assert len(dispatcher.messages) == 1
    text = dispatcher.messages[0]["text"]
    assert "general information" in text and "not a diagnosis" in text
    assert "Riverside Physiotherapy" in text


async def test_feedback_is_asked_at_most_every_third_answer(dispatcher):
    prompts = []
    slots = {"answers_since_feedback": 0.0}
    for _ in range(6):
        dispatcher.messages.clear()
        events = await ActionAnswerFaq().run(
            dispatcher, make_tracker("faq_piriformis", slots=slots), {})
        prompts.append(any(m["text"] == "Was this helpful?" for m in dispatcher.messages))
        slots["answers_since_feedback"] = next(
            e["value"] for e in events if e["name"] == "answers_since_feedback")
    assert prompts == [False, False, True, False, False, True]


@pytest.mark.parametrize("intent, helpful", [("feedback_helpful", True),
                                             ("feedback_not_helpful", False)])
async def test_feedback_is_stored_for_the_answer_it_was_asked_about(dispatcher, intent, helpful):
    tracker = make_tracker(intent, slots={"feedback_answer": "faq_piriformis"})
    events = await ActionRecordFeedback().run(dispatcher, tracker, {})
    assert events == [SlotSet("feedback", {"answer": "faq_piriformis", "helpful": helpful}),
                      SlotSet("feedback_answer", None)]
    if helpful:
        assert sent(dispatcher) == [{"text": "Thank you, I'm glad it helped."}]
    else:
        assert content.clinic()["phone"] in dispatcher.messages[0]["text"]
        assert dispatcher.messages[0]["buttons"] == [
            {"title": "Book a visit", "payload": "/book_appointment"}]


async def test_feedback_without_a_prompt_is_thanked_but_not_counted(dispatcher):
    events = await ActionRecordFeedback().run(dispatcher, make_tracker("feedback_helpful"), {})
    assert events == []
    assert sent(dispatcher) == [{"text": "Thank you, I'm glad it helped."}]


@pytest.mark.parametrize("intent, text, phrase", [
    ("ask_diagnosis", "is it my disc? my buttock aches when i sit", "can't diagnose"),
    ("ask_medication", "can i take ibuprofen with the exercises", "pharmacist"),
])
async def test_questions_are_answered_from_their_content_file(dispatcher, intent, text, phrase):
    from actions.questions import ActionAnswerQuestion

    assert await ActionAnswerQuestion().run(dispatcher, make_tracker(intent, text=text), {}) == []
    [message] = dispatcher.messages
    assert message["text"] == content.questions()[intent]["answer"] and phrase in message["text"]
    payloads = [b["payload"] for b in message["buttons"]]
    assert payloads[-1] == "/book_appointment"
    # A diagnosis request also gets the answers that fit its words; medicines do not.
    assert (len(payloads) > 1) == (intent == "ask_diagnosis")
