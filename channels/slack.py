"""Slack connector: Rasa's, with a required signing secret, one answer per delivery,
one conversation per thread, up to 25 Block Kit buttons, and every message through the
shared normalisation and payload gate (channels/payloads.py).

Signed requests are checked before Rasa's handler reads them: the event, or the form's
`payload`, must be a JSON object within the SLACK limits of channels/limits.py (parsed
by its `loads`, never deeper than PARSE_DEPTH) with the fields Rasa's handler reads of
the types it assumes, and an interaction must be one Rasa can answer; anything else gets
400 (Rasa's handler raised, or answered 500, for most of it).

One answer per delivery (channels/deliveries.py, shared by the Rasa processes through
the lock store's Redis): an event is known by its `event_id`, an interaction by its
user and `action_ts` (else `trigger_id`), anything else by its signature (a replay of
the same signed request). A retry (`X-Slack-Retry-Num`) of an event already seen gets
no second answer; one of an event no process has seen is answered, so that nothing is
lost (Rasa's own code still ignores `http_timeout` retries); a retry without
`event_id` is ignored.

`api_url` points the Web API client at another server (used by the tests' fake Slack).
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.slack import SlackBot, SlackInput
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request

from channels import limits
from channels.deliveries import DeliveryLog
from channels.payloads import allowed_payloads, guard_messages

logger = logging.getLogger(__name__)

BUTTONS_PER_BLOCK = 5
MAX_BUTTONS = 25
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"  # interactivity payloads


class BadPayload(ValueError):
    """A signed request whose content Rasa's handler cannot read."""


def _is_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _texts(data: Dict[str, Any], *fields: str) -> None:
    for field in fields:
        if not _is_text(data.get(field)):
            raise BadPayload(f"`{field}` is not a string")


def _object(data: Dict[str, Any], field: str) -> Dict[str, Any]:
    value = data.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadPayload(f"`{field}` is not an object")
    return value


def read_json(raw: Any) -> Dict[str, Any]:
    """A JSON object within the Slack limits (channels/limits.py), or BadPayload."""
    try:
        value = limits.loads(raw)
        limits.check(value, limits.SLACK)
    except limits.StructureError as error:
        raise BadPayload(f"beyond the limits ({error.problem})") from None
    except (ValueError, RecursionError):
        raise BadPayload("not JSON") from None
    if not isinstance(value, dict):
        raise BadPayload("not a JSON object")
    return value


def check_event(data: Dict[str, Any]) -> None:
    """BadPayload unless Rasa's handler can read this Events API body."""
    _texts(_object(data, "event"), "type", "text", "user", "channel", "channel_type",
           "ts", "thread_ts")
    users = data.get("authed_users")
    if users is not None and not (isinstance(users, list) and all(
            isinstance(user, str) for user in users)):
        raise BadPayload("`authed_users` is not a list of strings")
    authorizations = data.get("authorizations")
    if authorizations is not None:
        if not isinstance(authorizations, list) or not all(
                isinstance(a, dict) for a in authorizations):
            raise BadPayload("`authorizations` is not a list of objects")
        if authorizations:
            _texts(authorizations[0], "user_id")


class ClinicSlackBot(SlackBot):
    def __init__(self, token: Text, slack_channel: Optional[Text] = None,
                 thread_id: Optional[Text] = None, proxy: Optional[Text] = None,
                 api_url: Optional[Text] = None) -> None:
        super().__init__(token, slack_channel, thread_id, proxy)
        if api_url:
            self.client.base_url = api_url.rstrip("/") + "/"

    async def send_text_with_buttons(self, recipient_id: Text, text: Text,
                                     buttons: List[Dict[Text, Any]], **kwargs: Any) -> None:
        # Rasa's SlackBot drops every button past 5; Block Kit takes more in several rows.
        blocks: List[Dict[Text, Any]] = [
            {"type": "section", "text": {"type": "plain_text", "text": text}}]
        buttons = buttons[:MAX_BUTTONS]
        for start in range(0, len(buttons), BUTTONS_PER_BLOCK):
            blocks.append({"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": b["title"][:75]},
                 "value": b["payload"]}
                for b in buttons[start:start + BUTTONS_PER_BLOCK]]})
        await self._post_message(channel=self.slack_channel or recipient_id, text=text,
                                 blocks=blocks)


class ClinicSlackInput(SlackInput):
    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        if not credentials:
            cls.raise_missing_credentials_exception()
        if not credentials.get("slack_signing_secret"):
            raise RasaException("Slack needs `slack_signing_secret` (SLACK_SIGNING_SECRET)")
        channel = cls(
            credentials.get("slack_token"),
            credentials.get("slack_channel"),
            credentials.get("proxy"),
            slack_retry_reason_header="x-slack-retry-reason",
            slack_retry_number_header="x-slack-retry-num",
            use_threads=True,
            slack_signing_secret=credentials["slack_signing_secret"],
            conversation_granularity="thread",
        )
        channel.api_url = credentials.get("api_url")
        return channel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api_url: Optional[Text] = None
        self.deliveries = DeliveryLog()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        allowed_payloads()  # a button the gate cannot enumerate stops Rasa here, not later
        blueprint = super().blueprint(guard_messages(on_new_message))

        @blueprint.middleware("request")
        async def check_payload(request: Request) -> Optional[response.HTTPResponse]:
            if request.method != "POST" or not request.path.endswith("/webhook") \
                    or not self.is_request_from_slack_authentic(request):
                return None  # Rasa's handler refuses what is not signed (400)
            try:
                self.read_payload(request)
            except BadPayload as error:
                logger.warning("Rejected a signed Slack request: %s", error)
                return response.text(f"Bad request: {error}", status=400)
            return None

        return blueprint

    def read_payload(self, request: Request) -> None:
        """BadPayload unless Rasa's handler can read and answer this signed request. The
        value read is what the handler then gets (`request.json`, `request.ctx`)."""
        content_type = request.headers.get("content-type")
        if content_type == JSON:
            data = read_json(request.body)
            check_event(data)
            request.parsed_json = data
        elif content_type == FORM:
            values = (request.form.getlist("payload") if request.form else None) or []
            if len(values) != 1:
                raise BadPayload("no single `payload` field")
            payload = read_json(values[0])
            self.check_interaction(payload)
            request.ctx.slack_payload = payload

    def check_interaction(self, payload: Dict[str, Any]) -> None:
        """BadPayload unless Rasa's handler answers this interaction (it raised, or
        answered 500, for anything else)."""
        actions = payload.get("actions")
        if not (isinstance(actions, list) and actions and isinstance(actions[0], dict)):
            raise BadPayload("no `actions`")
        _texts(actions[0], "type", "action_ts")
        if not self._is_interactive_message(payload):
            raise BadPayload("not an interaction this bot answers")
        user = _object(payload, "user")
        if not isinstance(user.get("id"), str):
            raise BadPayload("no `user.id`")
        _texts(_object(payload, "channel"), "id")
        _texts(_object(payload, "message"), "ts", "thread_ts")
        _texts(payload, "trigger_id")
        try:
            answer = self._get_interactive_response(actions[0])
        except (AttributeError, IndexError, KeyError, TypeError):
            raise BadPayload("an action without its value") from None
        if not _is_text(answer) or (answer is None and actions[0]["type"] != "button"):
            raise BadPayload("an action without its value")  # (a link button has none)

    def delivery_key(self, request: Request) -> Optional[Text]:
        """What identifies this delivery however often Slack (or anyone) sends it."""
        payload = getattr(request.ctx, "slack_payload", None)
        if payload is not None:
            action, user = payload["actions"][0], payload["user"]["id"]
            stamp = action.get("action_ts") or payload.get("trigger_id")
            if stamp:
                return f"interaction:{user}:{stamp}"
        elif request.headers.get("content-type") == JSON:
            event_id = request.json.get("event_id")
            if isinstance(event_id, str) and event_id:
                return f"event:{event_id}"
        signature = request.headers.get("X-Slack-Signature")
        return f"signature:{signature}" if signature else None

    def get_output_channel(self, channel: Optional[Text] = None,
                           thread_id: Optional[Text] = None) -> OutputChannel:
        return ClinicSlackBot(self.slack_token, channel or self.slack_channel, thread_id,
                              self.proxy, self.api_url)

    async def process_message(self, request: Request,
                              on_new_message: Callable[[UserMessage], Awaitable[Any]],
                              text: Text, sender_id: Optional[Text],
                              metadata: Optional[Dict]) -> Any:
        # Rasa acknowledges at once and answers in the background, so a delivery seen
        # before is a copy of a message already being answered.
        key = self.delivery_key(request)
        retry = request.headers.get(self.retry_num_header)
        if retry and not (key or "").startswith("event:"):
            logger.info("Ignored Slack retry #%s (%s) of a delivery without event_id", retry,
                        request.headers.get(self.retry_reason_header))
            return response.text("", headers={"X-Slack-No-Retry": "1"})
        agent = getattr(request.app.ctx, "agent", None)
        if key and not self.deliveries.first_time(key, getattr(agent, "lock_store", None)):
            logger.info("Ignored a Slack delivery seen before (%s, retry %s)",
                        key.split(":")[0], retry or "none")
            return response.text("", headers={"X-Slack-No-Retry": "1"})
        return await super().process_message(request, on_new_message, text, sender_id,
                                             metadata)
