"""A Socket.IO client that talks like rasa-webchat, for the tests that hold a conversation
over the widget's channel (tests/test_bad_input.py, tests/test_input_limits.py)."""
from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Dict, List

import socketio


class Widget:
    """A Socket.IO client that talks like rasa-webchat."""

    def __init__(self, url: str) -> None:
        self.session_id = f"sio-{uuid.uuid4().hex}"
        self.received: List[Dict[str, Any]] = []
        self.client = socketio.Client()
        confirmed = threading.Event()
        self.client.on("bot_uttered", self.received.append)
        self.client.on("session_confirm", lambda _: confirmed.set())
        self.client.connect(url, transports=["polling"], socketio_path="/socket.io")
        self.client.emit("session_request", {"session_id": self.session_id})
        assert confirmed.wait(10)

    def send(self, data: Any, count: int, timeout: float = 30) -> List[Dict[str, Any]]:
        """What the bot sends back: at least `count` messages, then 1 s of quiet."""
        before = len(self.received)
        self.client.emit("user_uttered", data)
        deadline = time.monotonic() + timeout
        seen, quiet_since = before, time.monotonic()
        while time.monotonic() < deadline:
            if len(self.received) != seen:
                seen, quiet_since = len(self.received), time.monotonic()
            elif seen >= before + count and time.monotonic() - quiet_since > 1:
                break
            time.sleep(0.1)
        return self.received[before:]

    def say(self, text: str, count: int) -> List[str]:
        return [m.get("text") for m in self.send(
            {"message": text, "session_id": self.session_id}, count)]
