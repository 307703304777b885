"""Socket.IO connector (the web widget): Rasa's, with every event checked first.

Rasa's handlers assume well-formed events: a `user_uttered` whose data is not an object,
whose `message` is not a string or whose metadata is not JSON raises inside the handler,
and a message without a `session_id` is dropped with only a server-side warning. Here an
event that cannot be read gets a short bot message to that socket alone (Socket.IO has
no status codes) and is not passed to Rasa; readable messages go through the shared
normalisation (channels/payloads.py), where a message over MAX_MESSAGE_CHARS is cut to
that length and the user is told after the answer.

Limits (channels/limits.py): python-socketio reads every packet with `limits.loads`, so
nesting deeper than PARSE_DEPTH is never parsed; an event whose metadata, customData or
any other field goes beyond the METADATA / ENVELOPE limits is refused like an unreadable
one, unless the safety net finds a warning sign in its message: that message is passed
on without those fields.

Origins: a browser's WebSocket is not bound by CORS, so engine.io checks the `Origin`
header of every polling request and WebSocket upgrade against the origins Rasa's
`--cors` allows (CORS_ORIGINS in scripts/run.sh; `*` allows any), and refuses the others
with 403. A request without an `Origin` header (a non-browser client: the tests, a
server-side integration) is allowed: only browsers send it, and a page on another site
can neither omit nor forge it.

Buttons go to the widget as persistent `buttons`, not Rasa's `quick_replies`: the widget
shows quick replies only under the latest message, so the "Was this helpful?" prompt
that follows an answer would hide the answer's related-question buttons.
"""
from __future__ import annotations

import functools
import logging
import uuid
from typing import Any, Awaitable, Callable, Dict, Iterable, Optional, Text, Tuple

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic_cors.core import try_match, try_match_any

from channels import limits, server
from channels.payloads import allowed_payloads, clean_text, guard_messages, \
    safety_findings, valid_id

logger = logging.getLogger(__name__)

UNREADABLE = ("Sorry, I could not read that message. Please type your question as text "
              "and send it again.")


def check_message_event(args: Tuple[Any, ...], session_persistence: bool,
                        metadata_key: str, urgent: Callable[[str], bool] = lambda text: False,
                        ) -> Tuple[Optional[Dict[str, Any]], str]:
    """The event data Rasa's handler can use, or None and what is wrong with it.
    `urgent(text)`: whether the safety net finds a flag, which lets a message through
    without the fields that are beyond the limits."""
    if len(args) != 1 or not isinstance(args[0], dict):
        return None, "the event data is not an object"
    data = dict(args[0])
    if not isinstance(data.get("message", ""), str):
        return None, "`message` is not a string"
    if session_persistence and valid_id(data.get("session_id")) is None:
        return None, "no valid `session_id`"
    metadata = data.get(metadata_key)
    if isinstance(metadata, str):
        try:
            metadata = limits.loads(metadata)
        except (ValueError, RecursionError):
            metadata = None
    # Unreadable metadata is dropped, not the message: it only annotates the tracker.
    data[metadata_key] = metadata if isinstance(metadata, dict) else {}
    try:
        limits.check(data[metadata_key], limits.METADATA)
        limits.check({key: value for key, value in data.items()
                      if key not in ("message", "session_id")}, limits.ENVELOPE)
    except limits.StructureError as error:
        if not urgent(data.get("message", "")):
            return None, f"metadata or another field is beyond the limits ({error.problem})"
        logger.warning("Accepted a Socket.IO message with a warning sign without its "
                       "metadata (%s)", error.problem)
        data = {key: data[key] for key in ("message", "session_id") if key in data}
        data[metadata_key] = {}
    return data, ""


def check_session_request(args: Tuple[Any, ...]) -> Dict[str, Any]:
    """A session request Rasa's handler can use: a fresh session id unless a valid one."""
    data = args[0] if len(args) == 1 and isinstance(args[0], dict) else {}
    session_id = valid_id(data.get("session_id"))
    return {**data, "session_id": session_id or uuid.uuid4().hex}


def persistent_buttons(emit: Callable[..., Awaitable[Any]],
                       bot_message_evt: str) -> Callable[..., Awaitable[Any]]:
    """`emit` that sends the bot's quick replies as the widget's persistent buttons."""
    async def emit_with_buttons(event: str, data: Any = None, *args: Any, **kwargs: Any) -> Any:
        if event == bot_message_evt and isinstance(data, dict) and data.get("quick_replies"):
            replies = data["quick_replies"]
            data = {key: value for key, value in data.items() if key != "quick_replies"}
            data["buttons"] = [{"title": reply["title"], "payload": reply["payload"]}
                               for reply in replies]
        return await emit(event, data, *args, **kwargs)

    return emit_with_buttons


def origin_allowed(origin: Optional[str], allowed: Iterable[str], own_origin: str) -> bool:
    """Whether a request with this `Origin` header may open a Socket.IO connection:
    none (not a browser), this server's own, or one that `allowed` (the CORS origins,
    as sanic-cors matches them: exact, case-insensitive, or a regex such as `.*`) holds."""
    if not origin:
        return True
    return origin == own_origin or bool(try_match_any(origin, list(allowed)))


def cors_origins(request: Request) -> Iterable[str]:
    """The origins Rasa's `--cors` set up (sanic-cors, rasa.server.configure_cors)."""
    context = getattr(request.app.ctx, "sanic_cors", None)
    for pattern, options in getattr(context, "resources", []):
        if try_match(request.path, pattern):
            return options.get("origins") or []
    return []


def check_origin(handle_request: Callable[..., Awaitable[Any]]
                 ) -> Callable[..., Awaitable[Any]]:
    """engine.io's request handler, refusing origins outside the CORS origins first.
    (engine.io's own check would also add CORS headers, which sanic-cors already adds:
    Rasa turns it off with `cors_allowed_origins=[]`.)"""
    @functools.wraps(handle_request)  # Sanic names the route after it
    async def handle(request: Request, *args: Any, **kwargs: Any) -> Any:
        origin = request.headers.get("origin")
        own = f"{request.scheme}://{request.host}"
        if not origin_allowed(origin, cors_origins(request), own):
            logger.warning("Refused a Socket.IO connection from origin %r", origin[:100])
            return response.json({"error": "origin_not_allowed",
                                  "message": "This origin may not connect."}, status=403)
        return await handle_request(request, *args, **kwargs)

    return handle


class ClinicSocketIOInput(SocketIOInput):
    """`socketio` in credentials.yml; same URL, events and settings as Rasa's."""

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        allowed_payloads()  # a button the gate cannot enumerate stops Rasa here, not later
        blueprint = super().blueprint(guard_messages(on_new_message))
        sio = self.sio
        assert sio is not None  # set by super().blueprint
        handlers = sio.handlers[self.namespace or "/"]
        rasa_message_handler = handlers[self.user_message_evt]
        rasa_session_handler = handlers["session_request"]
        sio.emit = persistent_buttons(sio.emit, self.bot_message_evt)
        # Every packet is read with the nesting limit (the default is the standard
        # library's json, on the whole nesting).
        sio.packet_class = type("BoundedPacket", (sio.packet_class,),
                                {"json": limits.BoundedJson})
        # The blueprint attaches engine.io to the app when it is registered, with this
        # handler (an attribute of the instance, so that it is the one attached).
        sio.eio.handle_request = check_origin(sio.eio.handle_request)
        server.install(blueprint)

        # Registering again under the same event name replaces Rasa's handlers.
        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: Text, *args: Any) -> None:
            data, problem = check_message_event(
                args, self.session_persistence, self.metadata_key,
                lambda text: bool(safety_findings(clean_text(text))))
            if data is None:
                logger.warning("Unreadable Socket.IO message from %s: %s", sid, problem)
                await sio.emit(self.bot_message_evt, {"text": UNREADABLE}, room=sid,
                               namespace=self.namespace)
                return
            await rasa_message_handler(sid, data)

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: Text, *args: Any) -> None:
            await rasa_session_handler(sid, check_session_request(args))

        return blueprint
