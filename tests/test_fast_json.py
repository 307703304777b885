"""runtime/fast_json.py: the same JSON values as the standard library's `json`, for
everything `json` handles (orjson where it can, `json` where orjson refuses)."""
from __future__ import annotations

import json
import math

import numpy as np
from hypothesis import given, settings, strategies as st

from runtime import fast_json

# Anything json.dumps writes: any text (lone surrogates too), ints beyond 64 bits,
# floats, non-string keys.
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(st.characters())
    | st.floats(allow_nan=False, allow_infinity=False).map(np.float64),
    lambda children: st.lists(children, max_size=4) | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=6) | st.integers() | st.booleans() | st.none(),
                      children, max_size=4),
    max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_writes_what_json_writes(value):
    assert json.loads(fast_json.dumps(value)) == json.loads(json.dumps(value))
    assert json.loads(fast_json.dumps_text(value)) == json.loads(json.dumps(value))
    try:
        expected = json.loads(json.dumps(value, sort_keys=True))
    except TypeError:  # json cannot sort keys of mixed types
        return
    assert json.loads(fast_json.dumps(value, sort_keys=True)) == expected


@settings(max_examples=400, deadline=None)
@given(VALUES)
def test_reads_what_json_reads(value):
    text = json.dumps(value)
    assert fast_json.loads(text) == json.loads(text)
    assert fast_json.loads(text.encode()) == json.loads(text)


def test_rasas_numpy_confidences_are_written_by_orjson_as_floats(monkeypatch):
    parse = {"intent": {"name": "greet", "confidence": np.float64(0.9974656177448573)}}
    monkeypatch.setattr(fast_json.json, "dumps", None)  # no fallback: orjson must do it
    assert json.loads(fast_json.dumps(parse)) == {
        "intent": {"name": "greet", "confidence": 0.9974656177448573}}


def test_sorted_keys_do_not_depend_on_insertion_order():
    assert fast_json.dumps({"b": 1, "a": [{"d": 2, "c": 3}]}, sort_keys=True) == \
        fast_json.dumps({"a": [{"c": 3, "d": 2}], "b": 1}, sort_keys=True)


def test_reads_the_literals_only_json_accepts_and_rejects_what_is_not_json():
    assert math.isnan(fast_json.loads(b'{"x": NaN}')["x"])
    try:
        fast_json.loads(b"not json")
    except ValueError:
        pass
    else:
        raise AssertionError("no error for text that is not JSON")
