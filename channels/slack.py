"""Slack connector: Rasa's, with a required signing secret, no duplicate answers to
Slack's retries, one conversation per thread, up to 25 Block Kit buttons, and every
message through the shared normalisation and payload gate (channels/payloads.py).

`api_url` points the Web API client at another server (used by the tests' fake Slack).
"""
from __future__ import annotations

import collections
import logging
from typing import Any, Awaitable, Callable, Deque, Dict, List, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.slack import SlackBot, SlackInput
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request

from channels.payloads import allowed_payloads, guard_messages

logger = logging.getLogger(__name__)

BUTTONS_PER_BLOCK = 5
MAX_BUTTONS = 25
SEEN_EVENTS = 1000  # recent Events API ids remembered, to drop re-deliveries


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
        self._seen_events: Deque[Text] = collections.deque(maxlen=SEEN_EVENTS)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        allowed_payloads()  # a button the gate cannot enumerate stops Rasa here, not later
        return super().blueprint(guard_messages(on_new_message))

    def get_output_channel(self, channel: Optional[Text] = None,
                           thread_id: Optional[Text] = None) -> OutputChannel:
        return ClinicSlackBot(self.slack_token, channel or self.slack_channel, thread_id,
                              self.proxy, self.api_url)

    async def process_message(self, request: Request,
                              on_new_message: Callable[[UserMessage], Awaitable[Any]],
                              text: Text, sender_id: Optional[Text],
                              metadata: Optional[Dict]) -> Any:
        # Rasa acknowledges at once and answers in the background, so any retry is a
        # copy of a message already being answered.
        if request.headers.get(self.retry_num_header):
            logger.info("Ignored Slack retry #%s (%s)", request.headers.get(self.retry_num_header),
                        request.headers.get(self.retry_reason_header))
            return response.text("", headers={"X-Slack-No-Retry": "1"})
        event_id = (request.json or {}).get("event_id") if request.headers.get(
            "content-type") == "application/json" else None
        if event_id:
            if event_id in self._seen_events:
                return response.text("")
            self._seen_events.append(event_id)
        return await super().process_message(request, on_new_message, text, sender_id,
                                             metadata)
