"""Bad input: the payload gate and the input checks (unit), then random input against the
real REST endpoint (property-based, checked in the stored conversations), and Socket.IO."""
from __future__ import annotations

import json
import re
import sqlite3
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import requests
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from actions import content
from actions.buttons import faq_button
from actions.exercises import exercise_button
from actions.safety import safety_text
from actions.exercise_followups import DETAILS
from channels import payloads
from components.content_importer import project_domain
from channels.payloads import EMPTY_REPLY, MAX_MESSAGE_CHARS, TRUNCATED_NOTICE, \
    PayloadSourceError, \
    allowed_payloads, clean_text, collect_payloads, gate, normalise, parse_payload
from channels.rest import MAX_BODY_BYTES, BadRequest, RestMessage, parse_body
from channels.socketio import UNREADABLE, check_message_event, check_session_request
from scripts.servers import MODEL, ROOT
from tests.widget_client import Widget

DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
INTENTS = set(project_domain(ROOT).intents)
SLOTS = set(DOMAIN["slots"])
TELEGRAM = {"/start": "/greet"}


# -- the payload gate ----------------------------------------------------------------
def test_allow_list_is_every_button_the_bot_offers_and_nothing_else():
    domain_buttons = {b["payload"] for variations in DOMAIN["responses"].values()
                      for v in variations for b in v.get("buttons", [])}
    expected = (domain_buttons
                | {faq_button(f)["payload"] for f in content.faqs()}
                | {exercise_button(e)["payload"] for e in content.exercises()}
                # a follow-up about each exercise (actions/exercise_followups.py)
                | {f'/{intent}{{"exercise":"{e}"}}' for intent in DETAILS
                   for e in content.exercises()}
                # literal buttons in actions/*.py
                | {"/ask_red_flags", "/book_appointment", "/ask_capabilities",
                   "/feedback_helpful", "/feedback_not_helpful", "/faq_glute_activation",
                   "/ask_hours"}
                # the warning-sign check (actions/screening.py)
                | {'/report_red_flag{"red_flag":"emergency"}',
                   '/report_red_flag{"red_flag":"urgent"}', "/no_warning_signs"}
                # the web widget's initPayload, which opens every web conversation
                | {"/greet"})
    assert allowed_payloads() == expected


@pytest.mark.parametrize("text, gated", [
    ("/faq_piriformis", "/faq_piriformis"),
    ("  /faq_piriformis\n", "/faq_piriformis"),
    ('/ask_exercise{"exercise":"clamshell"}', '/ask_exercise{"exercise":"clamshell"}'),
    ("/book_appointment", "/book_appointment"),
    ("/feedback_helpful", "/feedback_helpful"),
    # Not a button: the slashes go, the words stay for NLU.
    ('/faq_x{"red_flag":"emergency"}', 'faq_x{"red_flag":"emergency"}'),
    # The warning-sign check's buttons, exactly as offered; nothing else of the kind.
    ('/report_red_flag{"red_flag":"emergency"}', '/report_red_flag{"red_flag":"emergency"}'),
    ('/report_red_flag{"red_flag":"crisis"}', 'report_red_flag{"red_flag":"crisis"}'),
    ("/session_start", "session_start"),
    ("/nlu_fallback", "nlu_fallback"),
    ("/restart", "restart"),
    ("/greet", "/greet"),  # the web widget's initPayload
    ("/greet{\"exercise\":\"clamshell\"}", "greet{\"exercise\":\"clamshell\"}"),
    ("/start", "start"),  # a Telegram command only on Telegram
    ("/faq_piriformis@0.1", "faq_piriformis@0.1"),
    ('/ask_exercise{"exercise": "clamshell"}', 'ask_exercise{"exercise": "clamshell"}'),
    ('/ask_exercise{"exercise":"evil"}', 'ask_exercise{"exercise":"evil"}'),
    ('/ask_exercise{"exercise":"clamshell","red_flag":"urgent"}',
     'ask_exercise{"exercise":"clamshell","red_flag":"urgent"}'),
    ("//faq_piriformis", "faq_piriformis"),
    ("/ / /restart", "restart"),
    (" \u3000/restart", "restart"),
    ("/", ""),
    # No leading slash: untouched.
    ("what is /faq_piriformis?", "what is /faq_piriformis?"),
    ("hello", "hello"),
])
def test_gate(text, gated):
    assert gate(text) == gated


def test_telegram_start_is_a_command_there_only():
    assert gate("/start", TELEGRAM) == "/greet"
    assert gate(" /start ", TELEGRAM) == "/greet"
    assert gate("/restart", TELEGRAM) == "restart"
    assert gate("/faq_piriformis", TELEGRAM) == "/faq_piriformis"


def test_every_allowed_payload_is_an_intent_of_the_domain_with_known_entities():
    for payload in allowed_payloads():
        intent, entities = parse_payload(payload)
        assert intent in INTENTS
        assert set(entities) <= {"exercise", "red_flag"}
        assert set(entities.get("exercise", []) and [entities["exercise"]]) <= \
            set(content.exercises())
        # the warning-sign check's buttons: a tier, and only with report_red_flag
        if "red_flag" in entities:
            assert intent == "report_red_flag"
            assert entities["red_flag"] in ("emergency", "urgent")


def write_tree(tmp_path: Path, action_source: str, intents: List[str]) -> Tuple[Path, Path]:
    domain = tmp_path / "domain.yml"
    domain.write_text(yaml.safe_dump({"intents": intents, "responses": {"utter_x": [
        {"text": "x", "buttons": [{"title": "t", "payload": "/greet"}]}]}}))
    actions = tmp_path / "actions"
    actions.mkdir()
    (actions / "module.py").write_text(action_source)
    return domain, actions


def test_allow_list_follows_constant_payloads_in_actions(tmp_path):
    domain, actions = write_tree(tmp_path, (
        'A, B = "thank", "deny"\n'
        'PREFIX = "/"\n'
        'X = [{"payload": f"/{A}"}, {"title": "t", "payload": PREFIX + B}]\n'
        'def f():\n    return dict(title="t", payload="/goodbye")\n'), ["greet", "thank", "deny",
                                                                     "goodbye"])
    assert collect_payloads(domain, actions, None) == {"/greet", "/thank", "/deny", "/goodbye"}


def test_a_payload_built_at_run_time_elsewhere_stops_start_up(tmp_path):
    domain, actions = write_tree(tmp_path, (
        'def new_button(name):\n    return {"title": name, "payload": f"/{name}"}\n'), ["greet"])
    with pytest.raises(PayloadSourceError, match=r"actions/module.py:2 in new_button"):
        collect_payloads(domain, actions, None)


def test_a_button_for_an_unknown_intent_stops_start_up(tmp_path):
    domain, actions = write_tree(tmp_path, 'B = {"payload": "/no_such_intent"}\n', ["greet"])
    with pytest.raises(PayloadSourceError, match="no intent 'no_such_intent'"):
        collect_payloads(domain, actions, None)


@pytest.mark.parametrize("text, cleaned", [
    ("a\x00b\x07c\x1bd\x7fe\x85f\x9fg", "abcdefg"),
    ("line\r\nnext\rlast\ttab\n", "line\nnext\nlast\ttab\n"),
    ("surrogate \ud800\udfff gone", "surrogate  gone"),
    ("emoji 👨‍👩‍👧 and scripts: здравствуйте 背痛 ألم",
     "emoji 👨‍👩‍👧 and scripts: здравствуйте 背痛 ألم"),
])
def test_clean_text(text, cleaned):
    assert clean_text(text) == cleaned


def test_normalise_cuts_long_messages_after_cleaning_and_gating():
    assert normalise("\x00" * 10 + "a" * MAX_MESSAGE_CHARS) == payloads.Normalised(
        "a" * MAX_MESSAGE_CHARS, False)
    assert normalise("/" + "b" * MAX_MESSAGE_CHARS) == payloads.Normalised(
        "b" * MAX_MESSAGE_CHARS, False)
    assert normalise("c" * (MAX_MESSAGE_CHARS + 1)) == payloads.Normalised(
        "c" * MAX_MESSAGE_CHARS, True)


# -- REST body checks ----------------------------------------------------------------
@pytest.mark.parametrize("body, status, error", [
    (b"", 400, "invalid_json"),
    (b"not json", 400, "invalid_json"),
    (b'{"sender": "a", "message": "hi"', 400, "invalid_json"),
    (b"null", 400, "invalid_json"),
    (b'[{"sender": "a", "message": "hi"}]', 400, "invalid_json"),
    (b'"hi"', 400, "invalid_json"),
    (b"[" * 5000 + b"]" * 5000, 400, "invalid_json"),
    (b"\xff\xfe\x00garbage", 400, "invalid_json"),
    (b'{"message": "hi"}', 400, "invalid_sender"),
    (b'{"sender": 5, "message": "hi"}', 400, "invalid_sender"),
    (b'{"sender": null, "message": "hi"}', 400, "invalid_sender"),
    (b'{"sender": " ", "message": "hi"}', 400, "invalid_sender"),
    (b'{"sender": "a\\nb", "message": "hi"}', 400, "invalid_sender"),
    (json.dumps({"sender": "s" * 129, "message": "hi"}).encode(), 400, "invalid_sender"),
    (b'{"sender": "a"}', 400, "invalid_message"),
    (b'{"sender": "a", "message": 5}', 400, "invalid_message"),
    (b'{"sender": "a", "message": null}', 400, "invalid_message"),
    (b'{"sender": "a", "message": ["hi"]}', 400, "invalid_message"),
    (b'{"sender": "a", "message": ""}', 400, "empty_message"),
    (b'{"sender": "a", "message": " \\n\\t "}', 400, "empty_message"),
    (b'{"sender": "a", "message": "\\u0000\\u001b\\ud800"}', 400, "empty_message"),
    (b'{"sender": "a", "message": " / / "}', 400, "empty_message"),
    (json.dumps({"sender": "a", "message": "x" * (MAX_MESSAGE_CHARS + 1)}).encode(), 413,
     "message_too_long"),
    (json.dumps({"sender": "a", "message": "x" * 100_000}).encode(), 413, "body_too_large"),
    (b'{"sender": "a", "message": "hi", "metadata": "x"}', 400, "invalid_metadata"),
])
def test_bad_rest_bodies(body, status, error):
    with pytest.raises(BadRequest) as raised:
        parse_body(body)
    assert (raised.value.status, raised.value.error) == (status, error)


def test_good_rest_bodies():
    assert parse_body(json.dumps({"sender": "a", "message": "x" * MAX_MESSAGE_CHARS}).encode()
                      ) == RestMessage("a", "x" * MAX_MESSAGE_CHARS, None)
    assert parse_body('{"sender": "ü", "message": "😀 hi", "metadata": {"k": 1}, '
                      '"input_channel": "slack"}'.encode()) == RestMessage("ü", "😀 hi", {"k": 1})


# -- Socket.IO event checks ----------------------------------------------------------
@pytest.mark.parametrize("args, problem", [
    ((), "the event data is not an object"),
    (("hello",), "the event data is not an object"),
    (({"message": "hi", "session_id": "s"}, "extra"), "the event data is not an object"),
    (({"message": 5, "session_id": "s"},), "`message` is not a string"),
    (({"message": "hi"},), "no valid `session_id`"),
    (({"message": "hi", "session_id": 7},), "no valid `session_id`"),
    (({"message": "hi", "session_id": "a\x00"},), "no valid `session_id`"),
])
def test_unreadable_socket_events(args, problem):
    assert check_message_event(args, True, "metadata") == (None, problem)


def test_readable_socket_events_keep_their_data_and_drop_bad_metadata():
    good = {"message": "hi", "session_id": "s", "metadata": '{"a": 1}'}
    assert check_message_event((good,), True, "metadata") == (
        {"message": "hi", "session_id": "s", "metadata": {"a": 1}}, "")
    assert check_message_event(({"session_id": "s", "metadata": "{not json"},), True,
                               "metadata") == ({"session_id": "s", "metadata": {}}, "")
    assert check_session_request(({"session_id": "abc"},)) == {"session_id": "abc"}
    assert len(check_session_request(("junk",))["session_id"]) == 32
    assert check_session_request(({"session_id": 5},))["session_id"] != 5


# -- random input against the real REST endpoint -------------------------------------
needs_model = pytest.mark.skipif(not MODEL.exists(), reason="no trained model: run `make train`")


def stored_events(db: Path, sender: str) -> List[Dict[str, Any]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT data FROM events WHERE sender_id = ? ORDER BY id",
                                  (sender,)).fetchall()
    return [json.loads(data) for (data,) in rows]


def is_control(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF


def acceptable(value: Any) -> bool:
    """What the REST endpoint should accept, written independently of channels/rest.py."""
    if not isinstance(value, dict):
        return False
    sender, message = value.get("sender"), value.get("message")
    return (isinstance(sender, str) and sender.strip() != "" and len(sender) <= 128
            and not any(is_control(c) for c in sender)
            and isinstance(message, str) and len(message) <= MAX_MESSAGE_CHARS
            # not blank, nor only slashes, once control characters are gone
            and not re.fullmatch(r"[\s/]*", "".join(c for c in message if not is_control(c)))
            and isinstance(value.get("metadata", {}), (dict, type(None))))


def check_stored_conversation(db: Path, sender: str, sent: str) -> None:
    """The message is stored once; a typed payload only if it is a button's, with exactly
    the button's intent and entities; everything else went through NLU."""
    events = stored_events(db, sender)
    users = [e for e in events if e["event"] == "user"]
    assert len(users) == 1, events
    [user] = users
    parse = user["parse_data"]
    intent, entities = parse["intent"]["name"], parse["entities"]
    if user["text"].strip().startswith("/"):
        assert user["text"] in allowed_payloads()
        assert "".join(c for c in sent if not is_control(c)).strip() == user["text"]
        expected_intent, expected_entities = parse_payload(user["text"])
        assert (intent, parse["intent"]["confidence"]) == (expected_intent, 1.0)
        assert {e["entity"]: e["value"] for e in entities} == expected_entities
    else:
        assert intent in INTENTS | {"nlu_fallback"}
        assert all(e.get("extractor") != "RegexMessageHandler" for e in entities), entities
        # red_flag and language come only from the safety net (components/red_flags.py)
        assert all(e["entity"] in {"exercise", "red_flag", "language"} for e in entities), entities
        red_flags = [e for e in entities if e["entity"] == "red_flag"]
        assert all(e["extractor"] == "RedFlagDetector" for e in red_flags), entities
    for stored in events:  # (not `event`: hypothesis's event() is imported)
        if stored["event"] == "slot":
            assert stored["name"] in SLOTS | {"session_started_metadata"}, stored
            if stored["name"] == "exercise":
                assert stored["value"] in set(content.exercises()) | {None}, stored


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)
ANY_CHAR_TEXT = st.text(st.characters(blacklist_categories=()), max_size=40)  # controls, Cs
SAMPLES = st.sampled_from([
    "how do i do a clamshell", "what is the piriformis", "book a visit", "hi", "thanks",
    "i wet myself and cant feel my groin", "emoji only 😀😀 👨‍👩‍👧", "здравствуйте, болит спина",
    "背中が痛い", "ألم أسفل الظهر", "\u202eevil bidi", "tab\tand\nnewline", "\x00\x1b[31mred",
    # lower-cased, "İ" becomes two characters: the red-flag offsets must still hold
    "İİ i wet myself and cant feel my groin"])
TYPED = st.builds(
    lambda prefix, intent, confidence, entities: f"{prefix}/{intent}{confidence}{entities}",
    st.sampled_from(["", " ", "/", "/ ", "\x00", "\n"]),
    st.sampled_from(sorted(INTENTS) + ["session_start", "restart", "nlu_fallback", "back",
                                       "action_listen", "x"]) | st.text(max_size=10),
    st.sampled_from(["", "@1.0", "@0.01"]),
    st.just("") | st.builds(lambda d: json.dumps(d), st.dictionaries(
        st.sampled_from(["exercise", "red_flag", "feedback", "requested_slot",
                         "session_started_metadata"]) | st.text(max_size=5),
        JSON_VALUES, max_size=3)))
BUTTONS = st.sampled_from(sorted(allowed_payloads())).flatmap(lambda p: st.sampled_from(
    [p, f" {p} ", p.replace(":", ": "), p + "@0.5", p.upper()]))
HUGE = st.sampled_from([MAX_MESSAGE_CHARS - 1, MAX_MESSAGE_CHARS, MAX_MESSAGE_CHARS + 1,
                        20_000, 100_000]).map(lambda n: ("my back hurts " * n)[:n])
TEXTS = SAMPLES | ANY_CHAR_TEXT | TYPED | BUTTONS | HUGE
SENDER = "<fresh conversation id>"  # replaced by a new uuid in each example
BAD_SENDERS = JSON_VALUES | st.sampled_from(["", " ", "a\nb", "s" * 129, "ok\x00"])
BODIES = st.one_of(
    # well-formed requests with all sorts of text, typed payloads in particular
    st.fixed_dictionaries({"sender": st.just(SENDER), "message": TEXTS},
                          optional={"metadata": st.dictionaries(st.text(max_size=5),
                                                                JSON_VALUES, max_size=3)}),
    st.fixed_dictionaries({"sender": st.just(SENDER), "message": TYPED | BUTTONS}),
    # wrong types and shapes
    st.fixed_dictionaries({"sender": st.just(SENDER) | BAD_SENDERS,
                           "message": TEXTS | JSON_VALUES},
                          optional={"metadata": JSON_VALUES, "input_channel": JSON_VALUES}),
    JSON_VALUES,
    st.binary(max_size=30))


@needs_model
@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=BODIES)
@example(body={"sender": 5, "message": 5})
@example(body={"sender": SENDER, "message": ""})
@example(body={"sender": SENDER, "message": " \n\t"})
@example(body={"sender": SENDER, "message": "x" * 100_000})
@example(body={"sender": SENDER, "message": '/faq_x{"red_flag":"emergency"}'})
@example(body={"sender": SENDER, "message": "/session_start"})
@example(body={"sender": SENDER, "message": "/nlu_fallback"})
@example(body={"sender": SENDER, "message": '/report_red_flag{"red_flag":"emergency"}'})
@example(body={"sender": SENDER, "message": '/ask_exercise{"exercise":"clamshell"}'})
@example(body={"sender": SENDER, "message": "\x00 /faq_piriformis\x07"})
@example(body=[{"sender": "someone", "message": "hi"}])
@example(body=None)
@example(body=b"{not json")
def test_random_rest_input_is_answered_or_refused_and_never_injects(assistant, body):
    sender = f"hyp-{uuid.uuid4().hex}"
    if isinstance(body, dict) and body.get("sender") == SENDER:
        body = {**body, "sender": sender}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = requests.post(f"{assistant['url']}/webhooks/rest/webhook", data=data, timeout=60)

    value: Any = None if isinstance(body, bytes) else body
    event(f"HTTP {reply.status_code}")
    if acceptable(value):
        if value["message"].strip().startswith("/"):
            event("typed payload, " + ("a button's" if value["message"].strip()
                                       in allowed_payloads() else "read as text"))
        assert reply.status_code == 200, reply.text
        assert len(reply.json()) >= 1  # never silence
        check_stored_conversation(assistant["db"], sender, value["message"])
    else:
        assert reply.status_code in (400, 413), reply.text
        assert set(reply.json()) == {"error", "message"}
        if reply.status_code == 413:
            assert len(data) > MAX_BODY_BYTES or len(value["message"]) > MAX_MESSAGE_CHARS
        assert stored_events(assistant["db"], sender) == []  # nothing half-processed


# -- Socket.IO (the web widget) ------------------------------------------------------
@pytest.fixture
def widget(assistant) -> Iterator[Widget]:
    client = Widget(assistant["url"])
    yield client
    client.client.disconnect()


@needs_model
def test_socketio_typed_payload_is_read_as_text(assistant, widget):
    replies = widget.say("/session_start", 2)
    assert replies[0] == safety_text("disclaimer")
    assert len(replies) >= 2
    # The typed intent did not run: a second disclaimer would mean a new session.
    assert widget.say("/session_start", 1).count(safety_text("disclaimer")) == 0
    [first, second] = [e for e in stored_events(assistant["db"], widget.session_id)
                       if e["event"] == "user"]
    assert first["text"] == second["text"] == "session_start"
    assert first["parse_data"]["intent"]["name"] != "session_start"


@needs_model
def test_socketio_long_message_is_cut_and_the_user_is_told_after_the_answer(assistant,
                                                                             widget):
    text = ("what is the piriformis? " * 200)[:MAX_MESSAGE_CHARS + 500]
    replies = widget.say(text, 3)
    faq = content.faqs()["faq_piriformis"]
    assert replies[0] == safety_text("disclaimer")
    assert replies[1] == faq["answer"].strip()
    assert replies[-1] == TRUNCATED_NOTICE
    [user] = [e for e in stored_events(assistant["db"], widget.session_id)
              if e["event"] == "user"]
    assert user["text"] == text[:MAX_MESSAGE_CHARS]


@needs_model
@pytest.mark.parametrize("data, reply", [
    ("a string, not an object", UNREADABLE),
    ({"message": 5}, UNREADABLE),
    ({"message": ["hi"]}, UNREADABLE),
    (None, UNREADABLE),
    ({"message": " \x00\n "}, EMPTY_REPLY),
    ({"message": "/"}, EMPTY_REPLY),
    ({}, EMPTY_REPLY),
], ids=["string", "number", "list", "no-data", "blank", "slash", "no-message"])
def test_socketio_unreadable_or_empty_events_get_a_reply_and_store_nothing(assistant, widget,
                                                                           data, reply):
    if isinstance(data, dict):
        data = {**data, "session_id": widget.session_id}
    assert widget.send(data, 1) == [{"text": reply}]
    assert stored_events(assistant["db"], widget.session_id) == []
