"""REST connector: Rasa's, with the body checked before Rasa sees it.

Rasa's RestInput passes whatever the body holds to Rasa: `{"sender": 5, "message": 5}`
gets an empty reply, invalid JSON an HTML error page, and a missing `sender` puts the
message into a conversation shared by everyone ("default"). This connector answers a
bad body with a 4xx and a JSON error instead:

| body | status | `error` |
|---|---|---|
| more than MAX_BODY_BYTES | 413 | `body_too_large` |
| not JSON, or not a JSON object | 400 | `invalid_json` |
| `sender` not a string, blank, over 128 characters, control chars | 400 | `invalid_sender` |
| `message` missing or not a string | 400 | `invalid_message` |
| `message` blank without control characters (or only "/") | 400 | `empty_message` |
| `message` over MAX_MESSAGE_CHARS characters | 413 | `message_too_long` |
| `metadata` present but not an object | 400 | `invalid_metadata` |
| `metadata` (or any other field) nested deeper than the limit | 400 | `metadata_too_deep` |
| `metadata` (or another field) too large: keys, items, a string | 413 | `metadata_too_large` |

The limits are channels/limits.py's METADATA (ENVELOPE for the body's other fields), and
the body is parsed by its `loads`, which never parses nesting deeper than PARSE_DEPTH.

The safety net reads the text of a message refused for its size (a body up to
SCREEN_BODY_BYTES, a message over MAX_MESSAGE_CHARS) or for its metadata: one that holds
a warning sign or a crisis is accepted instead, without its metadata (and any other
field), and Rasa reads its excerpt (channels/payloads.py).

Accepted messages then go through the shared normalisation (channels/payloads.py:
control characters, the payload gate). `input_channel` in the body is ignored: every
message is recorded as `rest`.
"""
from __future__ import annotations

import logging
from asyncio import CancelledError
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.utils.endpoints import bool_arg
from sanic import Blueprint, response
from sanic.request import Request

from channels import backpressure, limits, server
from channels.payloads import MAX_ID_CHARS, MAX_MESSAGE_CHARS, allowed_payloads, \
    clean_text, guard_messages, normalise, safety_findings, valid_id

logger = logging.getLogger(__name__)

# A maximal message is 2,000 characters, up to 8 KB of UTF-8 (or 24 KB as \u escapes).
MAX_BODY_BYTES = 64 * 1024
# A larger body is refused unread; up to this size its message is screened first.
SCREEN_BODY_BYTES = 256 * 1024


class BadRequest(ValueError):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


@dataclass(frozen=True)
class RestMessage:
    sender: str
    text: str
    metadata: Optional[Dict[str, Any]]


def _too_large() -> BadRequest:
    return BadRequest(413, "body_too_large",
                      f"The request body must be at most {MAX_BODY_BYTES} bytes.")


def _metadata(data: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The body's `metadata`, or BadRequest if it, or any field other than `sender` and
    `message` (which have their own checks), is not within the limits."""
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadRequest(400, "invalid_metadata", "`metadata` must be a JSON object.")
    try:
        if metadata is not None:
            limits.check(metadata, limits.METADATA)
        limits.check({key: value for key, value in data.items()
                      if key not in ("sender", "message")}, limits.ENVELOPE)
    except limits.StructureError as error:
        if error.too_deep:
            raise BadRequest(400, "metadata_too_deep",
                             f"`metadata` and the other fields must be nested at most "
                             f"{limits.METADATA.max_depth} levels deep.") from None
        raise BadRequest(413, "metadata_too_large",
                         f"`metadata` may have at most {limits.METADATA.max_keys} keys "
                         f"and {limits.METADATA.max_items} array items, each string at "
                         f"most {limits.METADATA.max_string} characters.") from None
    return metadata


def parse_body(body: bytes, urgent: Callable[[str], bool] = lambda text: False
               ) -> RestMessage:
    """The message in a REST request body, or BadRequest saying what is wrong with it.
    `urgent(text)`: whether the safety net finds a flag, which lets a message through
    that is over-long (it is then cut to its excerpt by the shared normalisation) or
    whose metadata is refused (it is then dropped)."""
    too_large = len(body) > MAX_BODY_BYTES
    if len(body) > SCREEN_BODY_BYTES:
        raise _too_large()
    try:
        data = limits.loads(body) if body else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        if too_large:
            raise _too_large()
        raise BadRequest(400, "invalid_json",
                         'The body must be a JSON object: {"sender": "...", "message": "..."}.')
    sender = valid_id(data.get("sender"))
    if sender is None:
        raise BadRequest(400, "invalid_sender",
                         f"`sender` must be a non-blank string of at most {MAX_ID_CHARS} "
                         f"characters without control characters.")
    message = data.get("message")
    if not isinstance(message, str):
        raise BadRequest(400, "invalid_message", "`message` must be a string.")
    flagged: List[bool] = []  # the safety net runs once, and only if needed

    def is_urgent() -> bool:
        if not flagged:
            flagged.append(bool(urgent(message)))
        return flagged[0]

    if (too_large or len(message) > MAX_MESSAGE_CHARS) and not is_urgent():
        if too_large:
            raise _too_large()
        raise BadRequest(413, "message_too_long",
                         f"`message` must be at most {MAX_MESSAGE_CHARS} characters.")
    if not normalise(message).text.strip():  # also "/": nothing left once gated
        raise BadRequest(400, "empty_message", "`message` must contain some text.")
    try:
        metadata = _metadata(data)
    except BadRequest as error:
        if not is_urgent():
            raise
        logger.warning("Accepted a REST message with a warning sign without its metadata "
                       "(%s)", error.error)
        metadata = None
    return RestMessage(sender, message, metadata)


class ClinicRestInput(RestInput):
    """`rest` in credentials.yml; the URL stays /webhooks/rest/webhook.

    Its own webhook handler instead of Rasa's, which answers 200 with `[]` when handling
    fails (a lock that expired while the message waited, an exception) and logs the text.
    Here a 200 always means the message was processed and its answer stored:

    - 429 `conversation_busy` (Retry-After): the conversation has
      backpressure.QUEUE_LIMIT messages in hand; `messages` holds what the visitor should
      see (the safety advice first if the refused text holds a warning sign);
    - 503 `not_processed`: handling failed; nothing of this message was stored unless
      the tracker store says otherwise (stores/), so sending it again is safe.
    """

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        allowed_payloads()  # a button the gate cannot enumerate stops Rasa here, not later
        handle = guard_messages(on_new_message, raise_busy=True)
        blueprint = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)
        server.install(blueprint)

        @blueprint.middleware("request")
        async def check_body(request: Request) -> Optional[response.HTTPResponse]:
            if request.method != "POST" or not request.path.endswith("/webhook"):
                return None
            try:
                request.ctx.clinic_message = parse_body(
                    request.body, lambda text: bool(safety_findings(clean_text(text))))
            except BadRequest as error:
                logger.info("Rejected a REST request (%s): %s", error.status, error.error)
                return response.json({"error": error.error, "message": error.message},
                                     status=error.status)
            return None

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> response.HTTPResponse:
            return response.json({"status": "ok"})

        @blueprint.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> Any:
            message: RestMessage = request.ctx.clinic_message
            if bool_arg(request, "stream", default=False):
                if backpressure.in_hand(message.sender) >= backpressure.QUEUE_LIMIT:
                    return _busy(backpressure.refusal_replies(message.text))
                # Not raise_busy: a refusal that races past the check above is streamed.
                return response.stream(self.stream_response(
                    guard_messages(on_new_message), message.text, message.sender,
                    self.name(), message.metadata), content_type="text/event-stream")
            collector = CollectingOutputChannel()
            try:
                await handle(UserMessage(message.text, collector, message.sender,
                                         input_channel=self.name(),
                                         metadata=message.metadata))
            except backpressure.Busy as busy:
                return _busy(busy.replies)
            except (Exception, CancelledError) as error:  # noqa: B902 (answered, never lost)
                # No text: the log never holds what visitors write.
                logger.error("A REST message was not processed (%s)", type(error).__name__)
                return response.json(
                    {"error": "not_processed",
                     "message": "The message could not be processed. Please send it again."},
                    status=503, headers={"Retry-After": str(backpressure.RETRY_AFTER_SECONDS)})
            return response.json(collector.messages)

        return blueprint


def _busy(replies: List[str]) -> response.HTTPResponse:
    return response.json(
        {"error": "conversation_busy",
         "message": f"This conversation already has {backpressure.QUEUE_LIMIT} messages "
                    f"waiting. Send this one again in a few seconds.",
         "messages": [{"text": text} for text in replies]},
        status=429, headers={"Retry-After": str(backpressure.RETRY_AFTER_SECONDS)})
