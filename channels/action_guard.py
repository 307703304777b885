"""The action guard: Rasa's action endpoint, served by Rasa itself.

endpoints.yml points Rasa's action endpoint at /webhooks/action_guard/webhook of the same
Rasa server. This route forwards each call, byte for byte, to the action server
(ACTION_SERVER_URL, default http://127.0.0.1:5055/webhook) with one aiohttp session per
process, and passes its answer back unchanged, status included (so rasa-sdk's 400
ActionExecutionRejection and 404 unknown-action bodies reach Rasa as they were). Rasa's
own calls to the route do not go over HTTP: runtime/local_routes.py hands them to
`answer_locally`, which gives Rasa what the route would have.

When the action server cannot be reached, answers 5xx or something that is not a JSON
object, or does not answer in time, Rasa gets a valid action-server answer instead,
and the error is logged:

- for most actions, no events and one message: an apology with the clinic's phone
  number (data/clinic.yml, CLINIC_* overrides), at most once per user message;
- for `action_session_start`, `action_urgent_care` and `action_crisis_support`, the real action run in this
  process (they only read the content files): the disclaimer must open every
  conversation (Rasa starts a session only once, so it would never come later) and a
  red flag must always get the urgent-care message.

Time limit: the custom-action calls for one user message share ACTION_TIMEOUT_SECONDS
(default 1.8 s), counted from the session start call if the message opened a session,
else from when Rasa logged the message (after NLU). Each call still gets at least
MIN_CALL_SECONDS (0.2 s), so even when every call hangs the actions take at most 2 s and
NLU and the rest of the turn have 1 s before the user's 3 s are up.

Once the model is loaded it freezes the heap (runtime/heap.py); the speed-ups of
runtime/ are installed by launcher.py, which starts every Rasa process.

Only local callers are served (Rasa calls 127.0.0.1; a request that came through a
proxy carries forwarding headers and is refused), so the public Rasa port does not
expose the actions.
"""
from __future__ import annotations

import asyncio
import gzip
import ipaddress
import logging
import os
import time
import zlib
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text, Tuple

import aiohttp
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from sanic import Blueprint, response
from sanic.request import Request

from actions import content
from actions.alerts import conversation_reference
from actions.safety import ActionCrisisSupport, ActionUrgentCare
from actions.session import ActionSessionStart
import runtime
import runtime.heap
from runtime import fast_json
from runtime.local_routes import Answer

logger = logging.getLogger(__name__)

DEFAULT_ACTION_SERVER_URL = "http://127.0.0.1:5055/webhook"
DEFAULT_TIMEOUT_SECONDS = 1.8
MIN_CALL_SECONDS = 0.2
REMEMBERED_SESSION_STARTS = 10_000  # conversations; only the current turn's one matters
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
# Actions the guard runs itself when the action server fails (see the module docstring).
LOCAL_FALLBACK_ACTIONS = (ActionSessionStart, ActionUrgentCare, ActionCrisisSupport)


def apology_text() -> str:
    clinic = content.clinic()
    return (f"Sorry, something went wrong on our side and I can't answer that right now. "
            f"Please try again in a few minutes, or call {clinic['name']} on "
            f"{clinic['phone']}. In an emergency, call {clinic['emergency_number']}.")


def apology() -> Dict[str, Any]:
    dispatcher = CollectingDispatcher()  # the same message format as the action server's
    dispatcher.utter_message(text=apology_text())
    return {"events": [], "responses": dispatcher.messages}


def latest_message(events: List[Dict[str, Any]]) -> Optional[Tuple[float, bool]]:
    """When the latest user message was logged, and whether a session start ran for it.

    Rasa logs `action_session_start` (and the message) only after that action has run, so
    the session start's own time is not in the tracker: the guard remembers it."""
    logged_at = None
    for event in reversed(events):
        kind = event.get("event")
        if kind == "user":
            if logged_at is not None:  # the message before: no session start in between
                break
            logged_at = event.get("timestamp")
            if not isinstance(logged_at, (int, float)):
                return None
        elif logged_at is not None and kind == "action" \
                and event.get("name") == "action_session_start":
            return logged_at, True
    return (logged_at, False) if logged_at is not None else None


def apologised_this_turn(events: List[Dict[str, Any]], text: str) -> bool:
    """Whether the apology was sent for the latest user message: after it, or before it
    by the session start it opened."""
    latest = latest_message(events)
    opened_session = latest is not None and latest[1]
    seen_message = False
    for event in reversed(events):
        kind = event.get("event")
        if kind == "bot" and event.get("text") == text:
            return True
        if kind == "user":
            if seen_message or not opened_session:
                return False
            seen_message = True
        elif seen_message and kind == "action" and event.get("name") == "action_session_start":
            return False
    return False


def is_local(request: Request) -> bool:
    if any(header in request.headers for header in FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.ip)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def decode_call(body: bytes, encoding: Optional[str]) -> Dict[str, Any]:
    """The action call Rasa sent (compressed, as aiohttp's deflate, when
    COMPRESS_ACTION_SERVER_REQUEST is on)."""
    encoding = (encoding or "").lower()
    try:
        raw = gzip.decompress(body) if encoding == "gzip" else \
            zlib.decompress(body) if encoding == "deflate" else body
        call = fast_json.loads(raw)
    except (OSError, zlib.error, ValueError, RecursionError):
        return {}
    return call if isinstance(call, dict) else {}


class ActionGuardInput(InputChannel):
    """`channels.action_guard.ActionGuardInput` in credentials.yml, always enabled."""

    @classmethod
    def name(cls) -> Text:
        return "action_guard"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls()

    def __init__(self, url: Optional[str] = None, timeout: Optional[float] = None) -> None:
        self.url = url or os.environ.get("ACTION_SERVER_URL", "").strip() \
            or DEFAULT_ACTION_SERVER_URL
        self.timeout = max(MIN_CALL_SECONDS, timeout if timeout is not None else float(
            os.environ.get("ACTION_TIMEOUT_SECONDS", "").strip() or DEFAULT_TIMEOUT_SECONDS))
        self._session: Optional[aiohttp.ClientSession] = None
        # sender -> when Rasa called action_session_start for it (see call_timeout)
        self._session_starts: "OrderedDict[str, float]" = OrderedDict()
        self._local = ActionExecutor()
        for action in LOCAL_FALLBACK_ACTIONS:
            self._local.register_action(action)

    def session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the server's event loop; one per process.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def call_timeout(self, call: Dict[str, Any]) -> float:
        """What is left of the time for the current user message (see the docstring)."""
        now, sender = time.time(), str(call.get("sender_id"))
        if call.get("next_action") == "action_session_start":
            # Always the first call of its message: the message's time starts now.
            self._session_starts[sender] = now
            self._session_starts.move_to_end(sender)
            while len(self._session_starts) > REMEMBERED_SESSION_STARTS:
                self._session_starts.popitem(last=False)
            return self.timeout
        events = (call.get("tracker") or {}).get("events")
        latest = latest_message(events) if isinstance(events, list) else None
        if latest is None:
            return self.timeout
        started, opened_session = latest
        if opened_session:
            started = min(started, self._session_starts.get(sender, started))
        return max(MIN_CALL_SECONDS, min(self.timeout, started + self.timeout - now))

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
                  ) -> Blueprint:
        blueprint = Blueprint("action_guard", __name__)
        # Rasa's calls to this route skip HTTP (runtime/local_routes.py).
        runtime.local_routes.serve(f"/webhooks/{self.name()}/webhook", self.answer_locally)

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> response.HTTPResponse:
            return response.json({"status": "ok"})

        @blueprint.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> response.HTTPResponse:
            if not is_local(request):
                return response.json({"error": "forbidden"}, status=403)
            return await self.forward(request.body, request.headers.get("content-encoding"))

        @blueprint.listener("after_server_start")
        async def started(app: Any, _: Any) -> None:
            runtime.local_routes.listening(app.state.host, app.state.port)
            runtime.heap.freeze()  # the model is loaded (before_server_start)

        @blueprint.listener("after_server_stop")
        async def close_session(*_: Any) -> None:
            if self._session is not None:
                await self._session.close()
            await runtime.http_sessions.close_all()  # Rasa's own, to its endpoints

        return blueprint

    async def forward(self, body: bytes, encoding: Optional[str]) -> response.HTTPResponse:
        """The HTTP route: the call as Rasa sent it, forwarded byte for byte."""
        headers = {"Content-Type": "application/json"}
        if encoding:
            headers["Content-Encoding"] = encoding
        answer = await self.relay(decode_call(body, encoding), body, headers=headers)
        return response.raw(answer.body, status=answer.status,
                            content_type=answer.content_type)

    async def answer_locally(self, call: Any, compress: Any) -> Answer:
        """Rasa's call in the process (runtime/local_routes.py): encoded once, for the
        action server, as Rasa's aiohttp would have (and compressed if Rasa would)."""
        body = fast_json.dumps(call)
        return await self.relay(call if isinstance(call, dict) else {}, body,
                                headers={"Content-Type": "application/json"},
                                compress=compress or None)

    async def relay(self, call: Dict[str, Any], body: bytes, headers: Dict[str, str],
                    compress: Any = None) -> Answer:
        """The action server's answer to `call` (encoded as `body`), or the fallback."""
        timeout = self.call_timeout(call)
        deadline = time.monotonic() + timeout
        problem = ""
        for attempt in (1, 2):
            try:
                async with self.session().post(
                        self.url, data=body, headers=headers, compress=compress,
                        timeout=aiohttp.ClientTimeout(total=deadline - time.monotonic()),
                ) as answer:
                    payload = await answer.read()
                    decoded = _object(payload) if answer.status < 300 else None
                    if answer.status < 500 and (answer.status >= 300 or decoded is not None):
                        # Rasa reads the body as JSON only with a JSON content type.
                        return Answer(answer.status, payload, answer.headers.get(
                            "Content-Type", "application/json"), decoded)
                    problem = f"answered HTTP {answer.status}" if answer.status >= 500 \
                        else "answered something that is not a JSON object"
                break
            except asyncio.TimeoutError:
                problem = f"did not answer within {timeout:.2f} s"
                break
            except aiohttp.ServerDisconnectedError as error:
                # A kept-alive connection the server has just closed: try a fresh one.
                problem = f"closed the connection ({error!r})"
                if attempt == 2 or time.monotonic() >= deadline:
                    break
            except aiohttp.ClientError as error:
                problem = f"is unreachable ({error!r})"
                break
        fallback = await self.fallback(call, problem)
        return Answer(200, fast_json.dumps(fallback), "application/json", fallback)

    async def fallback(self, call: Dict[str, Any], problem: str) -> Dict[str, Any]:
        action = call.get("next_action")
        # As in staff alerts: a reference that finds the conversation, not its id.
        sender = conversation_reference(str(call.get("sender_id")))
        if action in self._local.actions:
            logger.error("Action server %s %s for %r (conversation ref %s); running it here.",
                         self.url, problem, action, sender)
            try:
                return await self._local.run(call) or apology()
            except Exception:  # noqa: BLE001 - the user must still get an answer
                logger.exception("Local fallback for %r failed; apologising", action)
        else:
            logger.error("Action server %s %s for %r (conversation ref %s); answering with an "
                         "apology and the clinic's phone number.", self.url, problem, action,
                         sender)
        events = (call.get("tracker") or {}).get("events")
        if isinstance(events, list) and apologised_this_turn(events, apology_text()):
            return {"events": [], "responses": []}  # one apology per user message is enough
        return apology()


def _object(payload: bytes) -> Optional[Dict[str, Any]]:
    """`payload` decoded, if it is a JSON object."""
    try:
        decoded = fast_json.loads(payload)
    except (ValueError, RecursionError):
        return None
    return decoded if isinstance(decoded, dict) else None
