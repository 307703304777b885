"""The actions behind follow-ups, exercise requests, cautions and clinic questions
(actions/exercise_followups.py, actions/cautions.py, actions/clinic.py,
actions/opening_hours.py): exact replies and events, from the content files."""
from __future__ import annotations

import datetime as dt

import pytest
from rasa_sdk.events import SlotSet

from actions import content, opening_hours
from actions.cautions import ActionCaution
from actions.clinic import ActionClinicInfo
from actions.exercise_followups import (DETAILS, ActionExerciseDetail, ActionRecommendExercise,
                                        described_exercises, named_exercises)
from actions.exercises import WARNING_SIGNS_LINE, ActionExerciseInstructions
from tests.conftest import make_tracker, sent

FLAG = {"red_flag_state": {"tier": "urgent", "category": "cancer", "since": 4e9}}


def exercise_entity(value):
    return [{"entity": "exercise", "value": value}]


# -- follow-ups about the exercise just taught --------------------------------------------
@pytest.mark.parametrize("intent", sorted(DETAILS))
async def test_each_follow_up_is_answered_from_the_current_exercise(dispatcher, intent):
    tracker = make_tracker(intent, text="how about that", slots={"exercise": "glute_bridge"})
    events = await ActionExerciseDetail().run(dispatcher, tracker, {})
    field = DETAILS[intent][0]
    value = content.exercises()["glute_bridge"][field]
    [message] = dispatcher.messages
    for part in (value if isinstance(value, list) else [value.rstrip(".")]):
        assert part in message["text"]
    assert message["text"].startswith("Glute bridge, ")
    if field == "stop_if":  # "when to stop" always ends with the warning signs
        assert message["text"].endswith(WARNING_SIGNS_LINE)
    assert events == [SlotSet("exercise", "glute_bridge")]
    assert message["buttons"][-1]["payload"] == "/book_appointment"


async def test_a_named_exercise_wins_over_the_current_one(dispatcher):
    tracker = make_tracker("ask_exercise_harder", entities=exercise_entity("clamshell"),
                           slots={"exercise": "glute_bridge"})
    assert await ActionExerciseDetail().run(dispatcher, tracker, {}) == [
        SlotSet("exercise", "clamshell")]
    assert content.exercises()["clamshell"]["harder"].rstrip(".") in dispatcher.messages[0]["text"]


async def test_without_an_exercise_in_context_it_asks_which_with_buttons(dispatcher):
    tracker = make_tracker("ask_exercise_dose", text="how many reps")
    assert await ActionExerciseDetail().run(dispatcher, tracker, {}) == []
    [message] = dispatcher.messages
    assert message["text"] == "Which exercise is that about?"
    assert [b["payload"] for b in message["buttons"]] == [
        f'/ask_exercise_dose{{"exercise":"{e}"}}' for e in content.exercises()]


async def test_no_exercise_advice_while_a_warning_sign_stands(dispatcher):
    tracker = make_tracker("ask_exercise_dose", slots={"exercise": "glute_bridge", **FLAG})
    assert await ActionExerciseDetail().run(dispatcher, tracker, {}) == []
    assert "Glute bridge" not in dispatcher.messages[0]["text"]
    assert "doctor" in " ".join(m["text"] for m in dispatcher.messages)


# -- exercises named by description --------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("the one where you lie on your side", ["clamshell"]),
    ("the one with the band, how does that go", ["crab_walk"]),
    ("the kneeling one", ["fire_hydrant", "donkey_kick"]),
    ("how do I do a glute exercise", []),
])
def test_descriptions_resolve_to_exercises(text, expected):
    assert described_exercises(text) == expected


async def test_a_description_that_fits_two_asks_which_of_the_two(dispatcher):
    tracker = make_tracker("ask_exercise", text="the kneeling one")
    assert await ActionExerciseInstructions().run(dispatcher, tracker, {}) == []
    [message] = dispatcher.messages
    assert message["text"] == "Do you mean the fire hydrant or the donkey kick?"
    assert [b["title"] for b in message["buttons"]] == ["Fire hydrant", "Donkey kick"]


async def test_a_description_that_fits_one_teaches_it(dispatcher):
    tracker = make_tracker("ask_exercise", text="show me the one on your side")
    events = await ActionExerciseInstructions().run(dispatcher, tracker, {})
    assert SlotSet("exercise", "clamshell") in events
    assert dispatcher.messages[0]["text"].startswith(content.exercises()["clamshell"]["name"])


# -- requests for a kind of exercise -------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("is there anything I can do standing at the kitchen counter", ["crab_walk", "squat_side_leg_lift"]),
    ("something gentle to start with", ["glute_bridge", "clamshell", "knee_to_chest"]),
])
async def test_recommendations_fit_what_was_asked(dispatcher, text, expected):
    tracker = make_tracker("recommend_exercise", text=text)
    assert await ActionRecommendExercise().run(dispatcher, tracker, {}) == []
    [message] = dispatcher.messages
    names = [content.exercises()[e]["name"] for e in expected]
    assert [b["title"] for b in message["buttons"]] == names + ["Book a visit"]
    assert all(n in message["text"] for n in names)


async def test_a_request_describing_one_exercise_of_the_kind_asked_teaches_it(dispatcher):
    tracker = make_tracker("recommend_exercise",
                           text="something gentle standing, holding on to the kitchen worktop?")
    events = await ActionRecommendExercise().run(dispatcher, tracker, {})
    assert SlotSet("exercise", "squat_side_leg_lift") in events
    assert dispatcher.messages[0]["text"].startswith(
        content.exercises()["squat_side_leg_lift"]["name"])


async def test_a_request_only_one_exercise_fits_gets_its_lesson(dispatcher):
    tracker = make_tracker("recommend_exercise", text="give me a stretch")
    events = await ActionRecommendExercise().run(dispatcher, tracker, {})
    assert SlotSet("exercise", "knee_to_chest") in events
    assert dispatcher.messages[0]["text"].startswith("Knee-to-chest stretch: ")


async def test_a_request_with_a_situation_gets_its_caution_and_only_exercises_that_suit(
        dispatcher):
    tracker = make_tracker("recommend_exercise", text="my mum has osteoporosis and can't get "
                                                      "down on the floor, what can she do?")
    events = await ActionRecommendExercise().run(dispatcher, tracker, {})
    assert events == [SlotSet("situation", ["osteoporosis", "cannot_get_to_floor"])]
    [message] = dispatcher.messages
    cautions = content.cautions()
    assert message["text"].startswith(cautions["osteoporosis"]["caution"])
    assert cautions["cannot_get_to_floor"]["caution"] in message["text"]
    shown = [b["title"] for b in message["buttons"]][:-1]
    positions = {content.exercises()[e]["name"]: set(content.exercises()[e]["tags"])
                 for e in content.exercises()}
    assert shown and all(positions[name] & {"standing", "bed"} for name in shown)
    assert "Knee-to-chest stretch" not in shown  # osteoporosis: curls the spine forward


# -- cautions ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, situation, phrase", [
    ("is it safe to do these while I'm pregnant?", "pregnancy", "midwife"),
    ("I had a microdiscectomy four weeks ago", "surgery", "surgeon"),
    ("I have osteoporosis, which are safe?", "osteoporosis", "GP"),
    ("I can't get down on the floor any more", "cannot_get_to_floor", "standing"),
])
async def test_situations_get_their_caution_and_are_remembered(dispatcher, text, situation, phrase):
    events = await ActionCaution().run(dispatcher, make_tracker("describe_situation", text=text), {})
    assert events == [SlotSet("situation", [situation])]
    [message] = dispatcher.messages
    assert message["text"].startswith(content.cautions()[situation]["caution"])
    assert phrase in message["text"]


async def test_a_lesson_after_a_situation_starts_with_its_caution(dispatcher):
    tracker = make_tracker("ask_exercise", entities=exercise_entity("glute_bridge"),
                           text="can I do the bridge now?", slots={"situation": ["surgery"]})
    await ActionExerciseInstructions().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["text"] == content.cautions()["surgery"]["caution"]
    assert dispatcher.messages[1]["text"].startswith("Glute bridge: ")


async def test_an_answer_without_exercises_does_not_forget_a_situation(dispatcher):
    """Blind set 17: a caesarean, then an FAQ answer, then the lesson lacked the caution."""
    from actions.faq import ActionAnswerFaq

    tracker = make_tracker("faq_squeezing_glutes", text="does clenching your bum help?",
                           slots={"situation": ["surgery"]})
    events = await ActionAnswerFaq().run(dispatcher, tracker, {})
    assert not [e for e in events if e.get("name") == "situation"]


async def test_a_situation_said_in_a_message_no_caution_answered_is_known_later(dispatcher):
    """Blind set 19: "I had a microdiscectomy two months ago", answered with the safety
    check, then "How do I do the glute bridge?" lacked the surgery caution."""
    tracker = make_tracker("ask_exercise", entities=exercise_entity("glute_bridge"),
                           text="How do I do the glute bridge?")
    tracker.events[:0] = [
        {"event": "session_started"},
        {"event": "user", "text": "I had a microdiscectomy about two months ago"},
        {"event": "user", "text": "/no_warning_signs"}]
    events = await ActionExerciseInstructions().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["text"] == content.cautions()["surgery"]["caution"]
    assert SlotSet("situation", ["surgery"]) in events


@pytest.mark.parametrize("text, found", [
    ("I'm 30 weeks pregnant", ["pregnancy"]),
    ("the midwife checked my c-section scar last week", ["surgery"]),  # after the birth
])
def test_situations_in_words(text, found):
    from actions.cautions import situations_in

    assert situations_in(text) == found


# -- clinic questions ----------------------------------------------------------------------
@pytest.mark.parametrize("intent", sorted(k for k in content.clinic_questions() if k != "not_set"))
async def test_every_clinic_question_is_answered_from_the_settings_or_says_to_call(dispatcher, intent):
    assert await ActionClinicInfo().run(dispatcher, make_tracker(intent), {}) == []
    settings = content.clinic()
    template = content.clinic_questions()[intent]["answer"]
    text = dispatcher.messages[0]["text"]
    needed = [k for k in settings if "{" + k + "}" in template] + (
        ["hours"] if "{hours}" in template else [])
    if template != "not_set" and all(settings[k].strip() for k in needed):
        assert text == template.format(**settings)
    else:  # never an invented answer
        assert text == content.clinic_questions()["not_set"].format(**settings)
        assert settings["phone"] in text


async def test_an_empty_setting_filled_from_the_environment_is_answered(dispatcher, monkeypatch):
    monkeypatch.setenv("CLINIC_PRICE", "A first visit costs £60; follow-ups £45.")
    await ActionClinicInfo().run(dispatcher, make_tracker("ask_price"), {})
    assert dispatcher.messages[0]["text"] == "A first visit costs £60; follow-ups £45."


async def test_hours_name_the_day_asked_about(dispatcher, monkeypatch):
    monkeypatch.setenv("CLINIC_HOURS_SAT", "closed")
    await ActionClinicInfo().run(dispatcher, make_tracker("ask_hours", text="are you open on Saturday?"), {})
    text = dispatcher.messages[0]["text"]
    assert text.startswith("On Saturdays we're closed. Our opening hours are ")
    assert "Mon–Fri 8:00–19:00, Sat–Sun closed." in text
    assert content.clinic()["phone"] in text  # and how to book


def test_hours_text_and_open_now_come_from_the_structured_hours():
    settings = content.clinic()
    assert settings["hours"] == "Mon–Fri 8:00–19:00, Sat 9:00–13:00, Sun closed"
    london = "Europe/London"
    assert settings["timezone"] == london
    at = lambda *a: dt.datetime(*a, tzinfo=dt.timezone.utc)  # noqa: E731
    assert opening_hours.is_open(settings, at(2027, 3, 3, 10, 0))      # a Wednesday
    assert not opening_hours.is_open(settings, at(2027, 3, 3, 19, 30))
    assert not opening_hours.is_open(settings, at(2027, 3, 7, 10, 0))  # a Sunday
    assert not opening_hours.is_open(settings, at(2026, 12, 25, 10, 0))  # a closure
    # summer time: 8:30 in London is 7:30 UTC
    assert opening_hours.is_open(settings, at(2027, 7, 7, 7, 30))


def test_bad_hours_fail_loudly(monkeypatch):
    monkeypatch.setenv("CLINIC_HOURS_MON", "9 till 5")
    with pytest.raises(content.ContentError):
        content.clinic()


async def test_a_situation_with_an_exercise_named_gets_the_caution_then_the_lesson(dispatcher):
    tracker = make_tracker("describe_situation", entities=exercise_entity("clamshell"),
                           text="what about the clam while pregnant?")
    events = await ActionCaution().run(dispatcher, tracker, {})
    assert dispatcher.messages[0]["text"] == content.cautions()["pregnancy"]["caution"]
    assert dispatcher.messages[1]["text"].startswith("Clam (clamshell): ")
    assert SlotSet("situation", ["pregnancy"]) in events


async def test_an_answer_that_teaches_one_exercise_makes_it_the_current_one(dispatcher):
    from actions.faq import ActionAnswerFaq

    events = await ActionAnswerFaq().run(dispatcher, make_tracker("faq_best_back_exercise"), {})
    assert events[0] == SlotSet("exercise", "knee_to_chest")


@pytest.mark.parametrize("intent", ["ask_hours", "ask_price", "book_appointment", "ask_human"])
async def test_while_a_warning_sign_stands_every_clinic_answer_gives_the_advice_first(dispatcher, intent):
    from actions.safety import safety_text

    await ActionClinicInfo().run(dispatcher, make_tracker(intent, slots=FLAG), {})
    texts = [m["text"] for m in dispatcher.messages]
    assert texts[:2] == [safety_text("booking_first"), safety_text("urgent")]


async def test_out_of_scope_repeats_the_advice_while_a_warning_sign_stands(dispatcher):
    from actions.fallback import ActionOutOfScope
    from actions.safety import safety_text

    await ActionOutOfScope().run(dispatcher, make_tracker("out_of_scope", slots=FLAG), {})
    assert [m["text"] for m in dispatcher.messages] == [safety_text("urgent"),
                                                        safety_text("flag_other")]
    dispatcher.messages.clear()
    await ActionOutOfScope().run(dispatcher, make_tracker("out_of_scope"), {})
    assert [m["response"] for m in dispatcher.messages] == ["utter_out_of_scope"]


@pytest.mark.parametrize("intent, response", [("thank", "utter_you_are_welcome"),
                                              ("goodbye", "utter_goodbye")])
async def test_thanks_and_goodbyes_remind_where_to_go_while_a_warning_sign_stands(
        dispatcher, intent, response):
    """A short reminder, not the whole urgent message: the SPEC sends that only when a
    red flag is affirmed, and again for booking and "what number?"."""
    from actions.courtesy import ActionCourtesy
    from actions.safety import safety_text

    await ActionCourtesy().run(dispatcher, make_tracker(intent, slots=FLAG), {})
    assert "GP" in dispatcher.messages[0]["text"] and "24 hours" in dispatcher.messages[0]["text"]
    assert dispatcher.messages[0]["text"] != safety_text("urgent")
    assert dispatcher.messages[1]["response"] == response
    dispatcher.messages.clear()
    await ActionCourtesy().run(dispatcher, make_tracker(intent), {})
    assert [m["response"] for m in dispatcher.messages] == [response]


async def test_a_first_description_of_pain_with_a_situation_gets_its_caution_with_the_check(
        dispatcher):
    from actions.pain import ActionDescribePain

    tracker = make_tracker("describe_pain",
                           text="I'm 29 weeks pregnant and my lower back aches a lot")
    events = await ActionDescribePain().run(dispatcher, tracker, {})
    assert "midwife" in dispatcher.messages[0]["text"]
    assert any(b.get("payload") for m in dispatcher.messages for b in m.get("buttons") or [])
    assert SlotSet("situation", ["pregnancy"]) in events


@pytest.mark.parametrize("text, exercises", [
    ("how do i do a glute bridj", ["glute_bridge"]),  # spelt nearly the same
    ("fire hydrent pls", ["fire_hydrant"]),  # sounds the same
    ("donky kicks?", ["donkey_kick"]),
    ("sqwat with the leg lift", ["squat_side_leg_lift"]),
    ("klamshell", ["clamshell"]),
    ("my squad trains on mondays", []),  # an English word is never a misspelt name
    ("stretches for hamstrings", []),
])
def test_misspelt_exercise_names(text, exercises):
    assert named_exercises(text) == exercises


async def test_a_follow_up_on_an_exercise_the_situation_warns_about_repeats_the_caution(
        dispatcher):
    tracker = make_tracker("ask_exercise_position", text="would the knee hug suit him on his bed?",
                           slots={"situation": ["osteoporosis"]})
    events = await ActionExerciseDetail().run(dispatcher, tracker, {})
    assert events == [SlotSet("exercise", "knee_to_chest")]
    text = dispatcher.messages[0]["text"]
    assert text.startswith(content.cautions()["osteoporosis"]["caution"])
    assert text.endswith(content.exercises()["knee_to_chest"]["position"].rstrip(".") + ".")


async def test_after_an_operation_the_recommendation_lists_exercises_for_once_cleared(dispatcher):
    """The surgery caution suggests no exercise of its own: the reply must still name some
    (for when the surgeon agrees), never an intro over an empty list."""
    tracker = make_tracker("recommend_exercise", text="what's a gentle one to start with",
                           slots={"situation": ["surgery"]})
    await ActionRecommendExercise().run(dispatcher, tracker, {})
    [message] = sent(dispatcher)
    intro, *lines = message["text"].split("\n")
    assert "surgeon" in intro
    assert lines[0] == content.exercise_requests()["intro_once_cleared"]
    assert len(lines) >= 2 and all(line.startswith("- ") for line in lines[1:])


def test_that_one_is_the_exercise_the_last_reply_named():
    from actions.exercises import requested_exercise

    tracker = make_tracker("ask_exercise", text="and that one? how do i do it")
    said = content.faqs()["faq_squeezing_glutes"]["answer"]  # names the glute bridge
    tracker.events[:0] = [{"event": "user", "text": "does squeezing them help"},
                          {"event": "bot", "text": said}, {"event": "action", "name": "action_listen"}]
    assert requested_exercise(tracker) == ("glute_bridge", [])
    # A reply that names several, or none, leaves it to the exercise taught before.
    tracker.events[1] = {"event": "bot", "text": "Glute bridge or clam: which one?"}
    tracker.slots["exercise"] = "crab_walk"
    assert requested_exercise(tracker) == ("crab_walk", [])


@pytest.mark.parametrize("text, exercise", [
    ("my bump gets in the way of squats lol, how do I do the sideways walking one", "crab_walk"),
    ("I did the bridge yesterday, now show me the clam", "clamshell"),
    ("show me the clam", "clamshell"),
])
def test_the_exercise_asked_for_is_the_one_in_the_last_clause_that_names_one(text, exercise):
    from actions.exercises import requested_exercise

    assert requested_exercise(make_tracker("ask_exercise", text=text)) == (exercise, [])


def test_after_a_list_of_exercises_that_one_is_not_guessed():
    from actions.exercises import exercise_just_named

    tracker = make_tracker("ask_exercise_dose", text="how many times")
    listed = ("Good exercises to start with:\n- Glute bridge: lying\n- Clam (clamshell): on your "
              "side, clam\n- Knee-to-chest stretch: lying")
    tracker.events[:0] = [{"event": "user", "text": "what can I do"},
                          {"event": "bot", "text": listed}]
    assert exercise_just_named(tracker) is None


@pytest.mark.parametrize("text, tags", [
    ("what can I do on my break, I can't lie on the ward floor", ["standing"]),
    ("I cannot lie on my back", ["standing"]),
    ("something I can do lying down", ["lying"]),
    ("my knees won't let me kneel, anything on all fours?", []),
])
def test_a_kind_said_not_to_suit_is_not_asked_for(text, tags):
    from actions.exercise_followups import requested_tags

    assert requested_tags(text) == tags


def test_the_first_one_and_the_next_one_follow_the_list_just_given():
    from actions.exercises import requested_exercise

    listed = ("These fit what you asked for:\n- Crab walk: standing\n- Glute bridge: lying\n"
              "- Squat with side leg lift: standing")

    def tracker(text, current=None):
        made = make_tracker("ask_exercise", text=text, slots={"exercise": current})
        made.events[:0] = [{"event": "user", "text": "what can I do"},
                           {"event": "bot", "text": listed}]
        return made

    assert requested_exercise(tracker("ok start me on the first one")) == ("crab_walk", [])
    assert requested_exercise(tracker("the last one please")) == ("squat_side_leg_lift", [])
    assert requested_exercise(tracker("next one", current="crab_walk")) == ("glute_bridge", [])
    assert requested_exercise(tracker("next one", current="squat_side_leg_lift")) == (
        "squat_side_leg_lift", [])  # the end of the list: the one taught, again


def test_a_situation_said_before_the_warning_sign_check_is_kept_after_none_of_these():
    from actions.cautions import known_situations

    tracker = make_tracker("no_warning_signs", text="/no_warning_signs")
    tracker.events[:0] = [{"event": "user",
                           "text": "10 weeks out from a microdiscectomy and my glutes are weak"}]
    assert known_situations(tracker) == ["surgery"]
