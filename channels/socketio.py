"""Socket.IO connector (the web widget): Rasa's, with every event checked first.

Rasa's handlers assume well-formed events: a `user_uttered` whose data is not an object,
whose `message` is not a string or whose metadata is not JSON raises inside the handler,
and a message without a `session_id` is dropped with only a server-side warning. Here an
event that cannot be read gets a short bot message to that socket alone (Socket.IO has
no status codes) and is not passed to Rasa; readable messages go through the shared
normalisation (channels/payloads.py), where a message over MAX_MESSAGE_CHARS is cut to
that length and the user is told after the answer.

Buttons go to the widget as persistent `buttons`, not Rasa's `quick_replies`: the widget
shows quick replies only under the latest message, so the "Was this helpful?" prompt
that follows an answer would hide the answer's related-question buttons.
"""
from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional, Text, Tuple

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketIOInput
from sanic import Blueprint

from channels.payloads import allowed_payloads, guard_messages, valid_id

logger = logging.getLogger(__name__)

UNREADABLE = ("Sorry, I could not read that message. Please type your question as text "
              "and send it again.")


def check_message_event(args: Tuple[Any, ...], session_persistence: bool,
                        metadata_key: str) -> Tuple[Optional[Dict[str, Any]], str]:
    """The event data Rasa's handler can use, or None and what is wrong with it."""
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
            metadata = json.loads(metadata)
        except (ValueError, RecursionError):
            metadata = None
    # Unreadable metadata is dropped, not the message: it only annotates the tracker.
    data[metadata_key] = metadata if isinstance(metadata, dict) else {}
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

        # Registering again under the same event name replaces Rasa's handlers.
        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: Text, *args: Any) -> None:
            data, problem = check_message_event(args, self.session_persistence,
                                                self.metadata_key)
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
