"""JSON for the hot paths of our own code: orjson, with the standard library's `json`
where orjson refuses.

Every custom action sends the conversation's recent events to the action server as
JSON, and every stored event is written as JSON: the standard library's encoder was
about 5% of our Rasa CPU per message (py-spy, README "Benchmark"); orjson does the same
work several times faster. It writes the same JSON values (compact, UTF-8 rather than
\\u escapes; non-string keys as strings, like `json`). What it refuses, `json` handles
as before: a string with a lone surrogate, an integer beyond 64 bits, a type orjson does
not know; when reading, NaN and Infinity literals and numbers of 19 digits or more
(orjson would read an integer beyond 64 bits as a float). So nothing that worked before
fails or changes.
"""
from __future__ import annotations

import json
import re
from typing import Any, Union

import orjson

# NumPy: Rasa's confidences are numpy.float64, a float subclass that `json` writes as a
# float and orjson only with this option.
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
# orjson reads an integer beyond 64 bits as a float; `json` keeps it exact.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")
_LONG_DIGITS_TEXT = re.compile(r"[0-9]{19}")


def dumps(value: Any, sort_keys: bool = False) -> bytes:
    """`value` as UTF-8 JSON."""
    try:
        return orjson.dumps(value, option=_OPTIONS | (orjson.OPT_SORT_KEYS if sort_keys else 0))
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value, sort_keys=sort_keys).encode("utf-8")


def dumps_text(value: Any) -> str:
    return dumps(value).decode("utf-8")


def loads(data: Union[bytes, str]) -> Any:
    long_digits = _LONG_DIGITS_TEXT if isinstance(data, str) else _LONG_DIGITS
    if long_digits.search(data) is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)  # raises json's error if it is not JSON at all
