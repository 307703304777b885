"""Limits on the structure of what a channel receives, checked before any encoder sees it.

orjson (runtime/fast_json.py, which writes every stored event and every action call)
corrupts its heap and aborts the whole process on values nested about 100 levels deep
(`realloc(): invalid next size`; the depth that crashes depends on the data's layout),
and a message's `metadata` is stored in its event. The standard library's `json` raises
RecursionError instead, ujson (Sanic's `request.json`) refuses past 1,024 levels. So
every structured input of every channel is read here, never by a recursive parser on
the full nesting, and checked against its channel's `Limits`:

1. `loads` parses JSON, but any container nested deeper than PARSE_DEPTH is cut out
   unread (an iterative scan of the brackets finds it) and replaced by the TOO_DEEP
   marker, so the parser never recurses far and the text outside the cut stays
   readable: the safety net can still read the message of a request refused for its
   metadata (channels/rest.py, channels/socketio.py).
2. `check_structure` walks the parsed value iteratively (no recursion at any depth) and
   raises StructureError for anything deeper, larger or with more keys or items than
   allowed, or holding the marker. It stops at the first problem, so it costs at most
   its limits.

Accepted values are at most METADATA.max_depth levels deep, a tenth of where orjson
broke, so nothing that reaches the tracker store can take the process down.
"""
from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple, Union

# Deeper containers are not parsed at all (far more than any limit below allows).
PARSE_DEPTH = 20
# A fresh value per process: no input can contain it by chance or on purpose.
TOO_DEEP = f"\u0000too-deep-{secrets.token_hex(16)}"
_TOO_DEEP_JSON = json.dumps(TOO_DEEP)
# Strings (so that brackets inside them are not counted) and brackets.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


@dataclass(frozen=True)
class Limits:
    """At most `max_depth` nested containers (a flat object is 1), `max_keys` object keys
    and `max_items` array items in all, each string (key or value) at most `max_string`
    characters."""
    max_depth: int
    max_keys: int
    max_items: int
    max_string: int


# `metadata` of a REST or Socket.IO message: annotations of the tracker (the widget's
# customData is a handful of keys), so small, and shallow enough for any encoder.
METADATA = Limits(max_depth=10, max_keys=200, max_items=500, max_string=4_000)
# The other fields of a REST body or Socket.IO event, taken together: `message` and the
# ids are checked by their own rules (channels/payloads.py), the rest as metadata.
ENVELOPE = Limits(max_depth=METADATA.max_depth + 1, max_keys=METADATA.max_keys + 20,
                  max_items=METADATA.max_items, max_string=METADATA.max_string)
# Payloads made by the platforms: a Slack event or interaction carries the message's
# blocks (text up to 40,000 characters); a Telegram update a message and its reply.
SLACK = Limits(max_depth=16, max_keys=5_000, max_items=5_000, max_string=50_000)
TELEGRAM = Limits(max_depth=16, max_keys=2_000, max_items=2_000, max_string=20_000)


class StructureError(ValueError):
    """`problem`: too_deep, too_many_keys, too_many_items, string_too_long or not_json."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem

    @property
    def too_deep(self) -> bool:
        return self.problem == "too_deep"


def _text(raw: Union[bytes, str]) -> str:
    if isinstance(raw, str):
        return raw
    # As json.loads(bytes) reads it: UTF-8, -16 or -32 by the first bytes.
    return raw.decode(json.detect_encoding(raw), "surrogatepass")


def deep_spans(text: str, max_depth: int) -> List[Tuple[int, int]]:
    """The (start, end) of each outermost container nested deeper than `max_depth`."""
    spans: List[Tuple[int, int]] = []
    depth, start = 0, 0
    for token in _TOKENS.finditer(text):
        char = token.group()
        if char in "[{":
            depth += 1
            if depth == max_depth + 1:
                start = token.start()
        elif char in "]}":
            if depth == max_depth + 1:
                spans.append((start, token.end()))
            depth = max(depth - 1, 0)
    if depth > max_depth:  # unbalanced: cut to the end (the JSON is invalid anyway)
        spans.append((start, len(text)))
    return spans


def loads(raw: Union[bytes, str], max_depth: int = PARSE_DEPTH,
          parse_int: Optional[Callable[[str], Any]] = None) -> Any:
    """`raw` as JSON, each container deeper than `max_depth` replaced by TOO_DEEP unread.
    Raises ValueError (json.JSONDecodeError, UnicodeDecodeError) if it is not JSON."""
    text = _text(raw)
    spans = deep_spans(text, max_depth)
    if spans:
        pieces, last = [], 0
        for start, end in spans:
            pieces += [text[last:start], _TOO_DEEP_JSON]
            last = end
        text = "".join(pieces + [text[last:]])
    return json.loads(text, parse_int=parse_int)


class BoundedJson:
    """A `json` module for python-socketio's packets (`Packet.json`): reading as `loads`
    above (and engineio's cap on integer digits), writing as the standard library."""

    dumps = staticmethod(json.dumps)

    @staticmethod
    def loads(raw: Union[bytes, str], **kwargs: Any) -> Any:
        from engineio.json import _safe_int

        return loads(raw, parse_int=kwargs.get("parse_int", _safe_int))


def check_structure(value: Any, max_depth: int, max_keys: int, max_items: int,
                    max_string: int) -> None:
    """Raises StructureError unless `value` (parsed JSON) keeps within the limits."""
    keys = items = 0
    stack: List[Tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, str):
            if current == TOO_DEEP:
                raise StructureError("too_deep")
            if len(current) > max_string:
                raise StructureError("string_too_long")
            continue
        if isinstance(current, dict):
            children: Any = current.values()
            keys += len(current)
            if keys > max_keys:
                raise StructureError("too_many_keys")
            for key in current:
                if not isinstance(key, str):
                    raise StructureError("not_json")
                if len(key) > max_string:
                    raise StructureError("string_too_long")
        elif isinstance(current, list):
            children = current
            items += len(current)
            if items > max_items:
                raise StructureError("too_many_items")
        elif current is None or isinstance(current, (bool, int, float)):
            continue
        else:
            raise StructureError("not_json")
        if depth > max_depth:
            raise StructureError("too_deep")
        stack.extend((child, depth + 1) for child in children
                     if not (child is None or isinstance(child, (bool, int, float))))


def check(value: Any, limits: Limits) -> None:
    check_structure(value, limits.max_depth, limits.max_keys, limits.max_items,
                    limits.max_string)
