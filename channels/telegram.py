"""Telegram connector: Rasa's, plus the webhook secret token Telegram sends back.

Rasa's TelegramInput does not check `X-Telegram-Bot-Api-Secret-Token`, so anyone who
learns the webhook URL could post forged updates. This connector registers the webhook
with a secret token and rejects every update that does not carry it. It also maps
Telegram's `/start` to the greeting (the disclaimer opens the conversation), passes
every message through the shared normalisation and payload gate, shows
buttons as a vertical inline keyboard, and can talk to another Bot API server
(`api_url`, used by the tests' fake Telegram).
"""
from __future__ import annotations

import asyncio
import hmac
import logging
from types import MappingProxyType
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from aiogram import Bot
from aiogram.bot.api import TELEGRAM_PRODUCTION, TelegramAPIServer
from aiogram.utils.exceptions import TelegramAPIError
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.telegram import TelegramInput, TelegramOutput
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request

from channels import limits
from channels.payloads import allowed_payloads, guard_messages

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram's own button ("Start"), mapped before the payload gate (channels/payloads.py).
COMMANDS = MappingProxyType({"/start": "/greet"})


class ClinicTelegramOutput(TelegramOutput):
    def __init__(self, access_token: Optional[Text], api_url: Optional[Text] = None) -> None:
        server = TelegramAPIServer.from_base(api_url) if api_url else TELEGRAM_PRODUCTION
        Bot.__init__(self, access_token, server=server)

    async def send_text_with_buttons(self, recipient_id: Text, text: Text,
                                     buttons: List[Dict[Text, Any]],
                                     button_type: Optional[Text] = "vertical",
                                     **kwargs: Any) -> None:
        # One button per row: FAQ questions are too long to share a row on a phone.
        await super().send_text_with_buttons(recipient_id, text, buttons,
                                             button_type=button_type, **kwargs)


class ClinicTelegramInput(TelegramInput):
    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        if not credentials:
            cls.raise_missing_credentials_exception()
        if not credentials.get("secret_token"):
            raise RasaException("Telegram needs `secret_token` (TELEGRAM_SECRET_TOKEN)")
        return cls(credentials.get("access_token"), credentials.get("verify"),
                   credentials.get("webhook_url"), credentials["secret_token"],
                   credentials.get("api_url"))

    def __init__(self, access_token: Optional[Text], verify: Optional[Text],
                 webhook_url: Optional[Text], secret_token: Text,
                 api_url: Optional[Text] = None) -> None:
        # debug_mode off: a failing update is logged, never answered with a 500.
        super().__init__(access_token, verify, webhook_url, debug_mode=False)
        self.secret_token = secret_token
        self.api_url = api_url

    def get_output_channel(self) -> TelegramOutput:
        channel = ClinicTelegramOutput(self.access_token, self.api_url)

        async def register() -> None:
            try:
                # aiogram 2 predates `secret_token`, so call the Bot API method directly.
                await channel.request("setWebhook", {"url": self.webhook_url,
                                                     "secret_token": self.secret_token})
            finally:
                # This session belongs to a short-lived loop; the server opens its own.
                await channel.session.close()

        try:
            asyncio.run(register())
        except TelegramAPIError as error:
            raise RasaException(f"Failed to set the Telegram webhook: {error}") from error
        return channel

    @staticmethod
    def check_update(request: Request) -> Optional[response.HTTPResponse]:
        """400 unless the body is a JSON object within the limits; Rasa's handler then
        reads that value (`request.json`), not Sanic's parse of the body."""
        try:
            update = limits.loads(request.body)
            limits.check(update, limits.TELEGRAM)
        except (ValueError, RecursionError) as error:  # StructureError is a ValueError
            problem = getattr(error, "problem", "not_json")
            logger.warning("Rejected a Telegram update (%s)", problem)
            return response.text(f"bad update: {problem}", status=400)
        if not isinstance(update, dict):
            logger.warning("Rejected a Telegram update (not an object)")
            return response.text("bad update: not an object", status=400)
        request.parsed_json = update
        return None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        allowed_payloads()  # a button the gate cannot enumerate stops Rasa here, not later
        blueprint = super().blueprint(guard_messages(on_new_message, COMMANDS))

        @blueprint.middleware("request")
        async def check_secret(request: Request) -> Optional[response.HTTPResponse]:
            if request.path.endswith("/webhook"):
                sent = request.headers.get(SECRET_HEADER, "")
                if not hmac.compare_digest(sent.encode(), self.secret_token.encode()):
                    logger.warning("Rejected a Telegram update without the secret token")
                    return response.text("forbidden", status=403)
                if request.method == "POST":
                    return self.check_update(request)
            return None

        return blueprint
