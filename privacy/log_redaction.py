"""No user text in any log, at any level, Rasa's own loggers included.

Rasa logs what visitors write in several places: at DEBUG the processor's "Received user
message ..." and its parse data, the tracker's events and slot values, the policies'
states; at ERROR its REST channel's timeouts and failures; Sanic logs request errors.
What visitors write is health information, and often personal data.

`RedactingFilter` rewrites every log record before any handler sees it:

1. the texts of the message being handled (`handling`, entered by every channel of
   ours in channels/payloads.py for the whole turn, its actions and store writes
   included) become "[user text]", as they are and as JSON or `repr` would quote them;
2. in a structured (structlog JSON) record, the values of the keys that Rasa itself
   marks as holding user data (rasa.utils.log_utils' anonymizable keys) become
   "[redacted]";
3. what is left goes through the PII masker of the store (privacy/pii.py): a phone
   number or an e-mail address from an earlier turn, an entity value, a slot.

`install()` puts the filter into the record factory, so that it applies to every logger
and every handler, including those Sanic and Rasa configure after start-up. Records are
only made for enabled levels, so at INFO this costs nothing per turn.
"""
from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Tuple

USER_TEXT = "[user text]"
REDACTED = "[redacted]"
# Shorter texts ("hi", "ok", "/greet") say nothing about a person and would blank out
# ordinary words of the log lines.
MIN_CHARS = 4

# The keys that Rasa's structlog calls put user data under (rasa.utils.log_utils).
STRUCTURED_KEYS = frozenset({
    "text", "response_text", "user_text", "slot_values", "parse_data_text",
    "parse_data_entities", "prediction_events", "tracker_latest_message",
    "prefilled_slots", "message", "response", "slot_candidates", "rasa_event",
    "rasa_events", "tracker_states", "current_states", "old_states", "successes",
    "current_entity", "next_entity", "states", "entity", "token_text", "user_message",
    "json_message", "tracker", "events", "entities",
})

_texts: contextvars.ContextVar[Tuple[str, ...]] = contextvars.ContextVar(
    "clinic_user_texts", default=())


@contextmanager
def handling(text: Any) -> Iterator[None]:
    """While a message is handled (and in every task started meanwhile), its text is
    kept out of the logs."""
    if not isinstance(text, str) or len(text.strip()) < MIN_CHARS:
        yield
        return
    token = _texts.set(_texts.get() + (text,))
    try:
        yield
    finally:
        _texts.reset(token)


def _quoted_forms(text: str) -> Tuple[str, ...]:
    forms = {text, text.strip(), json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1],
             repr(text)[1:-1]}
    return tuple(sorted((f for f in forms if len(f) >= MIN_CHARS), key=len, reverse=True))


_region: Optional[str] = "GB"
# Set while this thread redacts: the records the masker makes meanwhile (loading spaCy,
# its own error line, which names only the error's type) pass as they are, instead of
# coming back here.
_redacting = threading.local()


# A confidence or a duration ("0.9987", "12.5"): one dot, at most three digits before it.
# Not personal data, and what a log line is read for; kept out of the masker's sight.
_DECIMAL = re.compile(r"(?<![\d.])\d{1,3}\.\d+(?![\d.])")
_SHIELD = "zzdecimalzz"  # a word no recognizer takes for personal data


def _mask(text: str) -> str:
    from privacy.pii import blunt_mask, masker

    decimals = _DECIMAL.findall(text)
    shielded = _DECIMAL.sub(_SHIELD, text) if decimals else text
    try:
        masked = masker(_region).mask(shielded)
    except Exception:  # noqa: BLE001 - a log line must never fail, nor leak
        masked = blunt_mask(shielded)
    if not decimals:
        return masked
    values = iter(decimals)
    return re.sub(_SHIELD, lambda _: next(values, ""), masked)


def _structured(value: Any) -> Any:
    """A structlog record's values: user-data keys redacted, other strings masked
    (numbers stay numbers: a confidence of 0.99874 is not a phone number)."""
    if isinstance(value, dict):
        return {key: REDACTED if key in STRUCTURED_KEYS else _structured(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_structured(item) for item in value]
    if isinstance(value, str):
        return _mask(value)
    return value


def redact(message: str) -> str:
    for text in _texts.get():
        for form in _quoted_forms(text):
            message = message.replace(form, USER_TEXT)
    if message.lstrip().startswith("{") and '"event"' in message:
        try:
            record = json.loads(message)
        except ValueError:
            record = None
        if isinstance(record, dict):
            return json.dumps(_structured(record), ensure_ascii=False)
    return _mask(message)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (arguments merged in), exception and stack text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "clinic_redacted", False) or getattr(_redacting, "on", False):
            return True
        _redacting.on = True
        try:
            self._redact(record)
        finally:
            _redacting.on = False
        return True

    @staticmethod
    def _redact(record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: keep only its template
            message = str(record.msg)
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record.clinic_redacted = True


_installed: Optional[Callable[..., logging.LogRecord]] = None


def install(region: Optional[str] = "GB") -> None:
    """Every log record of this process is redacted when it is made; `region` is the
    country whose local phone numbers the masker reads (the clinic's)."""
    global _installed, _region
    _region = region
    if _installed is not None:
        return
    previous = logging.getLogRecordFactory()
    redacting = RedactingFilter()

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redacting.filter(record)
        return record

    _installed = make_record
    logging.setLogRecordFactory(make_record)
