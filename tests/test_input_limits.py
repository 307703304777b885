"""Limits on structured input (channels/limits.py): the walker and the bounded parser
(unit), then deeply nested and random metadata sent to the real server over REST and
Socket.IO, which must refuse it (or, for a message with a warning sign, answer it
without the metadata), keep answering, and stay alive."""
from __future__ import annotations

import json
import sqlite3
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actions.safety import safety_text
from channels import limits
from channels.limits import METADATA, TOO_DEEP, StructureError, check_structure
from channels.socketio import UNREADABLE
from scripts.servers import MODEL
from tests.widget_client import Widget

RED_FLAG = "since yesterday i cant feel my groin and i wet myself"
DEPTHS = [100, 200, 1_000, 10_000]
KINDS = ["dicts", "lists", "mixed"]
from tests.conftest import API_TOKEN  # the shared assistant's (conftest.py)


def nested(depth: int, kind: str) -> Any:
    """`depth` containers, one inside the other (built without recursion)."""
    value: Any = "leaf"
    for level in range(depth):
        as_dict = kind == "dicts" or (kind == "mixed" and level % 2 == 0)
        value = {"k": value} if as_dict else [value]
    return value


def nested_json(depth: int, kind: str) -> str:
    """The JSON text of `nested(depth, kind)`, written without a recursive encoder."""
    opens, closes = [], []
    for level in range(depth):
        as_dict = kind == "dicts" or (kind == "mixed" and level % 2 == 0)
        opens.append('{"k":' if as_dict else "[")
        closes.append("}" if as_dict else "]")
    return "".join(reversed(opens)) + '"leaf"' + "".join(closes)


def as_metadata(depth: int, kind: str) -> str:
    """Metadata (an object) holding `depth` nested containers in all."""
    return '{"k":' + nested_json(depth - 1, kind) + "}"


# -- the walker and the parser (unit) --------------------------------------------------
def limits_of(**kwargs: int) -> Dict[str, int]:
    return {"max_depth": 3, "max_keys": 5, "max_items": 5, "max_string": 10, **kwargs}


@pytest.mark.parametrize("value", [
    None, 1, 1.5, True, "x" * 10, {}, [], {"a": {"b": [1, 2]}}, [[["x"]]],
    {"a": 1, "b": 2, "c": 3, "d": 4, "e": [1, 2, 3, 4, 5]},
])
def test_values_within_the_limits_pass(value):
    check_structure(value, **limits_of())


@pytest.mark.parametrize("value, problem", [
    ([[[[]]]], "too_deep"),
    ({"a": {"b": {"c": {}}}}, "too_deep"),
    ([{"a": [{}]}], "too_deep"),
    ({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}, "too_many_keys"),
    ({"a": {"b": 1, "c": 2}, "d": {"e": 1, "f": 2}}, "too_many_keys"),
    ([1, 2, 3, 4, 5, 6], "too_many_items"),
    ([[1, 2, 3], [4, 5]], "too_many_items"),
    ("x" * 11, "string_too_long"),
    ({"k" * 11: 1}, "string_too_long"),
    ([["x" * 11]], "string_too_long"),
    ({"a": TOO_DEEP}, "too_deep"),
    ({"a": {1, 2}}, "not_json"),
    ({1: "a"}, "not_json"),
    (b"bytes", "not_json"),
])
def test_values_beyond_the_limits_are_refused(value, problem):
    with pytest.raises(StructureError) as raised:
        check_structure(value, **limits_of())
    assert raised.value.problem == problem


@pytest.mark.parametrize("kind", KINDS)
def test_the_walker_does_not_recurse(kind):
    value = nested(200_000, kind)  # json.dumps or repr would raise RecursionError
    with pytest.raises(StructureError, match="too_deep"):
        check_structure(value, max_depth=10, max_keys=10**9, max_items=10**9,
                        max_string=100)
    assert sys.getrecursionlimit() < 200_000
    check_structure(value, max_depth=200_001, max_keys=10**9, max_items=10**9,
                    max_string=100)


@pytest.mark.parametrize("depth", DEPTHS + [100_000])
@pytest.mark.parametrize("kind", KINDS)
def test_the_parser_cuts_deep_nesting_unread_and_keeps_the_rest(depth, kind):
    body = '{"sender": "a", "message": "' + RED_FLAG + '", "metadata": ' + \
        as_metadata(depth, kind) + ', "after": [1, "]}"]}'
    parsed = limits.loads(body.encode())
    assert (parsed["sender"], parsed["message"], parsed["after"]) == ("a", RED_FLAG,
                                                                      [1, "]}"])
    with pytest.raises(StructureError, match="too_deep"):
        limits.check(parsed["metadata"], METADATA)


def test_the_parser_reads_what_json_reads_within_its_depth():
    text = json.dumps({"a": ["[{", {"b": '"}]\\'}], "c": nested(limits.PARSE_DEPTH - 1,
                                                                   "mixed")})
    assert limits.loads(text) == json.loads(text)
    for bad in (b"", b"not json", b'{"a": 1', b"\xff\xfe\x00garbage", b"[" * 50_000,
                b'"unterminated [[[[[[[[[[[[[[[[[[[[[[[[[[[['):
        with pytest.raises(ValueError):
            limits.loads(bad)


def shape_depth(value: Any) -> int:
    """Written independently of the walker: recursive, on the small values below."""
    if isinstance(value, dict):
        return 1 + max([shape_depth(v) for v in value.values()], default=0)
    if isinstance(value, list):
        return 1 + max([shape_depth(v) for v in value], default=0)
    return 0


# Letters only: nothing that the tracker store's masking of personal data could change.
LETTERS = st.characters(whitelist_categories=("Ll", "Lu", "Zs"))
SCALARS = st.none() | st.booleans() | st.integers() \
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(LETTERS, max_size=12)
SHAPES = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4)
                      | st.dictionaries(st.text(LETTERS, max_size=4), children, max_size=4),
                      max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(SHAPES, st.integers(1, 12))
def test_walker_depth_agrees_with_a_recursive_count(value, max_depth):
    text = json.dumps(value)
    assert limits.loads(text) == json.loads(text)
    try:
        check_structure(value, max_depth=max_depth, max_keys=10**6, max_items=10**6,
                        max_string=10**6)
        refused = False
    except StructureError as error:
        assert error.problem == "too_deep"
        refused = True
    assert refused == (shape_depth(value) > max_depth)


# -- against the real server ---------------------------------------------------------
pytestmark_server = pytest.mark.skipif(not MODEL.exists(),
                                       reason="no trained model: run `make train`")


def alive(assistant: Dict[str, Any]) -> None:
    process = assistant["process"]
    assert process.poll() is None, assistant["log"].read_text()[-3000:]


def stored_events(db: Path, sender: str) -> List[Dict[str, Any]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT data FROM events WHERE sender_id = ? ORDER BY id",
                                  (sender,)).fetchall()
    return [json.loads(data) for (data,) in rows]


def sent_metadata(user_event: Dict[str, Any]) -> Dict[str, Any]:
    """A stored user event's metadata without the two keys Rasa adds to every one."""
    return {key: value for key, value in (user_event.get("metadata") or {}).items()
            if key not in ("model_id", "assistant_id")}


def post(assistant: Dict[str, Any], sender: str, message: str, metadata: str
         ) -> requests.Response:
    body = ('{"sender": ' + json.dumps(sender) + ', "message": ' + json.dumps(message)
            + ', "metadata": ' + metadata + "}")
    return requests.post(f"{assistant['url']}/webhooks/rest/webhook", data=body.encode(),
                         timeout=60)


def still_answers(assistant: Dict[str, Any]) -> None:
    alive(assistant)
    reply = requests.post(f"{assistant['url']}/webhooks/rest/webhook", timeout=60,
                          json={"sender": f"ok-{uuid.uuid4().hex}", "message": "hi"})
    assert reply.status_code == 200, reply.text
    assert safety_text("disclaimer") in [r.get("text") for r in reply.json()]
    alive(assistant)


@pytestmark_server
@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("kind", KINDS)
def test_rest_refuses_deep_metadata_and_keeps_answering(assistant, depth, kind):
    sender = f"deep-{uuid.uuid4().hex}"
    reply = post(assistant, sender, "how do I do a clam?", as_metadata(depth, kind))
    alive(assistant)
    assert (reply.status_code, reply.json()["error"]) == (400, "metadata_too_deep")
    assert set(reply.json()) == {"error", "message"}
    assert stored_events(assistant["db"], sender) == []
    still_answers(assistant)


@pytestmark_server
def test_rest_refuses_large_metadata(assistant):
    wide = json.dumps({f"k{i}": i for i in range(METADATA.max_keys + 1)})
    long = json.dumps({"k": "x" * (METADATA.max_string + 1)})
    many = json.dumps({"k": list(range(METADATA.max_items + 1))})
    for metadata in (wide, long, many):
        reply = post(assistant, f"big-{uuid.uuid4().hex}", "hi", metadata)
        assert (reply.status_code, reply.json()["error"]) == (413, "metadata_too_large")
    # and deep nesting in another field of the body
    reply = requests.post(f"{assistant['url']}/webhooks/rest/webhook", timeout=60, data=(
        '{"sender": "x", "message": "hi", "extra": ' + nested_json(5_000, "lists") + "}"))
    assert (reply.status_code, reply.json()["error"]) == (400, "metadata_too_deep")
    # Within the limits: accepted, and stored with the message.
    sender = f"fine-{uuid.uuid4().hex}"
    metadata = {"page": "home", "deep": nested(METADATA.max_depth - 1, "mixed")}
    reply = post(assistant, sender, "hi", json.dumps(metadata))
    assert reply.status_code == 200, reply.text
    [user] = [e for e in stored_events(assistant["db"], sender) if e["event"] == "user"]
    assert sent_metadata(user) == metadata
    still_answers(assistant)


@pytestmark_server
@pytest.mark.parametrize("depth", [100, 10_000])
def test_rest_answers_a_red_flag_whose_metadata_is_refused_without_it(assistant, depth):
    sender = f"urgent-{uuid.uuid4().hex}"
    reply = post(assistant, sender, RED_FLAG, as_metadata(depth, "mixed"))
    assert reply.status_code == 200, reply.text
    assert any("emergency department" in r.get("text", "") for r in reply.json())
    [user] = [e for e in stored_events(assistant["db"], sender) if e["event"] == "user"]
    assert user["text"] == RED_FLAG
    assert sent_metadata(user) == {}
    still_answers(assistant)


@pytestmark_server
@pytest.mark.parametrize("depth", [100, 10_000])
def test_http_api_bodies_are_depth_limited(assistant, depth):
    sender = f"api-{uuid.uuid4().hex}"
    url = f"{assistant['url']}/conversations/{sender}/tracker/events?token={API_TOKEN}"
    deep = '[{"event": "user", "text": "hi", "metadata": ' + as_metadata(depth, "mixed") + "}]"
    reply = requests.post(url, data=deep, headers={"Content-Type": "application/json"},
                          timeout=30)
    assert (reply.status_code, reply.json()["error"]) == (400, "too_deep")
    alive(assistant)
    reply = requests.post(f"{assistant['url']}/model/parse?token={API_TOKEN}", timeout=30,
                          json={"text": "what is the piriformis", "extra": {"k": [1]}})
    assert reply.status_code == 200, reply.text
    assert reply.json()["intent"]["name"]
    assert requests.get(f"{assistant['url']}/", timeout=10).text == "ok"
    still_answers(assistant)


def oracle_statuses(metadata: Any) -> Set[int]:
    """What the server may answer, written independently of channels/limits.py (a value
    beyond more than one limit may get either refusal)."""
    if metadata is None:
        return {200}
    if not isinstance(metadata, dict):
        return {400}
    keys, items, strings = 0, 0, []
    pending = [metadata]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            keys += len(value)
            strings += list(value)
            pending += value.values()
        elif isinstance(value, list):
            items += len(value)
            pending += value
        elif isinstance(value, str):
            strings.append(value)
    statuses = set()
    if shape_depth(metadata) > METADATA.max_depth:
        statuses.add(400)
    if keys > METADATA.max_keys or items > METADATA.max_items or \
            any(len(text) > METADATA.max_string for text in strings):
        statuses.add(413)
    return statuses or {200}


def build_shape(chain: List[str], siblings: List[Any], leaf: Any) -> Any:
    """A random shape: a chain of containers (d: object, l: array), with siblings along it."""
    value = leaf
    for level, kind in enumerate(reversed(chain)):
        extra = siblings[level % len(siblings)] if siblings else None
        value = {"k": value, "s": extra} if kind == "d" else [value, extra]
    return {"m": value}


RANDOM_METADATA = st.one_of(
    st.builds(build_shape, st.lists(st.sampled_from("dl"), max_size=40),
              st.lists(SHAPES, max_size=3), SCALARS),
    st.dictionaries(st.text(LETTERS, max_size=5), SHAPES, max_size=6),
    st.dictionaries(st.text(LETTERS, max_size=3),
                    st.integers(3990, 4010).map(lambda n: "x" * n), max_size=2),
    st.dictionaries(st.text(LETTERS, max_size=4), st.lists(st.integers(), max_size=600),
                    max_size=2),
    SHAPES)


def server_examples(count: int) -> Any:
    """Hypothesis settings for examples sent to the one real server: reproducible, no
    deadline (a turn takes what it takes), fixtures shared across examples."""
    return settings(max_examples=count, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@pytestmark_server
@server_examples(60)
@given(metadata=RANDOM_METADATA)
def test_rest_random_metadata_shapes(assistant, metadata):
    sender = f"shape-{uuid.uuid4().hex}"
    reply = post(assistant, sender, "what is the piriformis", json.dumps(metadata))
    alive(assistant)
    assert reply.status_code in oracle_statuses(metadata), reply.text
    if reply.status_code == 200:
        [user] = [e for e in stored_events(assistant["db"], sender) if e["event"] == "user"]
        assert sent_metadata(user) == metadata
    else:
        assert stored_events(assistant["db"], sender) == []


# -- Socket.IO -----------------------------------------------------------------------
@pytest.fixture
def widget(assistant) -> Iterator[Widget]:
    client = Widget(assistant["url"])
    yield client
    client.client.disconnect()


def emit_raw(widget: Widget, event_data: str, count: int) -> List[Dict[str, Any]]:
    """Emit `user_uttered` with data given as JSON text, so that the client's own json
    encoder never walks the nesting (the server still receives it as JSON)."""
    packet_class = widget.client.packet_class
    original = packet_class.json
    placeholder = f"raw-{uuid.uuid4().hex}"

    class Passthrough:
        @staticmethod
        def dumps(value: Any, **kwargs: Any) -> str:
            if value == ["user_uttered", placeholder]:
                return '["user_uttered",' + event_data + "]"
            return original.dumps(value, **kwargs)

        loads = staticmethod(original.loads)

    packet_class.json = Passthrough
    try:
        return widget.send(placeholder, count)
    finally:
        packet_class.json = original


@pytestmark_server
@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("field", ["metadata", "customData"])
def test_socketio_refuses_deep_metadata_and_keeps_answering(assistant, widget, depth, kind,
                                                           field):
    data = ('{"message": "how do I do a clam?", "session_id": ' + json.dumps(
        widget.session_id) + ', "' + field + '": ' + as_metadata(depth, kind) + "}")
    assert emit_raw(widget, data, 1) == [{"text": UNREADABLE}]
    alive(assistant)
    assert stored_events(assistant["db"], widget.session_id) == []
    replies = widget.send({"message": "hi", "session_id": widget.session_id}, 2)
    assert safety_text("disclaimer") in [r.get("text") for r in replies]
    still_answers(assistant)


@pytestmark_server
def test_socketio_answers_a_red_flag_whose_metadata_is_refused_without_it(assistant, widget):
    data = ('{"message": ' + json.dumps(RED_FLAG) + ', "session_id": ' + json.dumps(
        widget.session_id) + ', "metadata": ' + as_metadata(10_000, "mixed") + "}")
    replies = emit_raw(widget, data, 2)
    assert any("emergency department" in r.get("text", "") for r in replies), replies
    [user] = [e for e in stored_events(assistant["db"], widget.session_id)
              if e["event"] == "user"]
    assert user["text"] == RED_FLAG and sent_metadata(user) == {}
    alive(assistant)


@pytestmark_server
@server_examples(25)
@given(metadata=RANDOM_METADATA)
def test_socketio_random_metadata_shapes(assistant, metadata):
    widget = Widget(assistant["url"])
    try:
        replies = widget.send({"message": "what is the piriformis",
                               "session_id": widget.session_id, "metadata": metadata}, 1)
    finally:
        widget.client.disconnect()
    alive(assistant)
    stored = stored_events(assistant["db"], widget.session_id)
    if isinstance(metadata, dict) and oracle_statuses(metadata) == {200}:
        [user] = [e for e in stored if e["event"] == "user"]
        assert sent_metadata(user) == metadata
    elif isinstance(metadata, dict):
        assert replies == [{"text": UNREADABLE}] and stored == []
    else:  # not an object: dropped, the message answered (as before)
        [user] = [e for e in stored if e["event"] == "user"]
        assert sent_metadata(user) == {}
