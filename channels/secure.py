"""Telegram and Twilio connectors that only accept genuine requests.

Rasa 3.6's own connectors process any POST to their webhook, so anyone who
guesses the URL can talk to the assistant as any phone number or chat. These
subclasses check, before anything is processed, what the provider signs:

- Twilio (SMS, WhatsApp): X-Twilio-Signature, an HMAC-SHA1 of the webhook URL
  and the form fields with the account's auth token (Twilio's RequestValidator).
- Telegram: X-Telegram-Bot-Api-Secret-Token, the secret registered with the
  webhook (this connector's /set_webhook registers it).

A request that fails the check gets 403 and never reaches the assistant.
Rasa's Messenger and Slack connectors check their signatures themselves; the
classes here only add, as for every channel, the visitor guard (channels/guard.py).
"""
from __future__ import annotations

import hmac
import logging
import re
from typing import Any, Awaitable, Callable, Dict, Optional, Text

import aiohttp
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.facebook import FacebookInput
from rasa.core.channels.slack import SlackInput
from rasa.core.channels.telegram import TelegramInput, TelegramOutput
from rasa.core.channels.twilio import TwilioInput, TwilioOutput
from sanic import Blueprint, response
from sanic.request import Request
from twilio.request_validator import RequestValidator

from channels.guard import GuardedChannel
from channels.text_buttons import OfferedChoices, numbered

logger = logging.getLogger(__name__)

FORBIDDEN = {"error": "request signature missing or invalid"}


def _require(credentials: Optional[Dict[Text, Any]], keys, channel: Text) -> Dict[Text, Any]:
    missing = [key for key in keys if not (credentials or {}).get(key)]
    if missing:
        raise ValueError(f"{channel}: missing {', '.join(missing)} in credentials (see README, Messaging channels)")
    return credentials  # type: ignore[return-value]


class TextOnlyTwilioOutput(TwilioOutput):
    """SMS/WhatsApp: buttons as numbered choices; only Twilio's own fields as custom JSON."""

    def __init__(self, account_sid, auth_token, twilio_number, choices: OfferedChoices) -> None:
        super().__init__(account_sid, auth_token, twilio_number)
        self.choices = choices

    async def send_text_with_buttons(self, recipient_id: Text, text: Text, buttons, **kwargs: Any) -> None:
        self.choices.remember(recipient_id, buttons)
        await self.send_text_message(recipient_id, numbered(text, buttons))

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        # The web widget's extras (e.g. {"red_flag_tier": ...}) mean nothing to Twilio's API.
        if {"body", "media_url"} & set(json_message):
            await super().send_custom_json(recipient_id, json_message, **kwargs)


class SecureTwilioInput(GuardedChannel, TwilioInput):
    """Twilio SMS/WhatsApp webhook at /webhooks/twilio/webhook, signature checked."""

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "SecureTwilioInput":
        credentials = _require(credentials, ("account_sid", "auth_token", "twilio_number"), "twilio")
        return cls(credentials["account_sid"], credentials["auth_token"], credentials["twilio_number"],
                   public_url=credentials.get("public_url"))

    def __init__(self, account_sid, auth_token, twilio_number, debug_mode: bool = False,
                 public_url: Optional[Text] = None) -> None:
        super().__init__(account_sid, auth_token, twilio_number, debug_mode)
        # The exact URL Twilio posts to (behind a proxy it differs from what we see).
        self.public_url = public_url
        self.choices = OfferedChoices()

    def get_output_channel(self) -> TwilioOutput:
        return TextOnlyTwilioOutput(self.account_sid, self.auth_token, self.twilio_number, self.choices)

    def is_genuine(self, request: Request) -> bool:
        signature = request.headers.get("X-Twilio-Signature", "")
        url = self.public_url or request.url
        params = {key: values[0] for key, values in (request.form or {}).items()}
        return bool(signature) and RequestValidator(self.auth_token).validate(url, params, signature)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        async def with_choices(message: UserMessage) -> Any:
            # "2" after numbered choices means the second button.
            message.text = self.choices.resolve(message.sender_id, message.text)
            return await on_new_message(message)

        blueprint = super().blueprint(with_choices)

        @blueprint.middleware("request")
        async def check_signature(request: Request):
            if request.method == "POST" and not self.is_genuine(request):
                logger.warning("Refused a Twilio request without a valid signature from %s", request.ip)
                return response.json(FORBIDDEN, status=403)
            return None

        return blueprint


class SecureTelegramOutput(TelegramOutput):
    """Telegram's Bot API, optionally at another address (a local Bot API server)."""

    def __init__(self, access_token: Optional[Text], api_server: Optional[Text] = None) -> None:
        if api_server:
            from aiogram.bot.api import TelegramAPIServer

            # aiogram 2.x takes the server on the Bot; TelegramOutput passes only the token.
            super(TelegramOutput, self).__init__(access_token, server=TelegramAPIServer.from_base(api_server))
        else:
            super().__init__(access_token)


class SecureTelegramInput(GuardedChannel, TelegramInput):
    """Telegram webhook at /webhooks/telegram/webhook, secret token checked."""

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "SecureTelegramInput":
        credentials = _require(credentials, ("access_token", "verify", "webhook_url", "secret_token"), "telegram")
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", credentials["secret_token"]):
            # Telegram allows 1-256 of these characters; fewer than 16 would be guessable.
            raise ValueError("telegram: secret_token must be 16-256 characters of A-Z, a-z, 0-9, _ and -")
        return cls(credentials["access_token"], credentials["verify"], credentials["webhook_url"],
                   secret_token=credentials["secret_token"], api_server=credentials.get("api_server"),
                   debug_mode=False)

    def __init__(self, access_token, verify, webhook_url, debug_mode: bool = False,
                 secret_token: Text = "", api_server: Optional[Text] = None) -> None:
        super().__init__(access_token, verify, webhook_url, debug_mode)
        self.secret_token = secret_token
        self.api_server = api_server

    def get_output_channel(self) -> TelegramOutput:
        return SecureTelegramOutput(self.access_token, self.api_server)

    def is_genuine(self, request: Request) -> bool:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        return bool(self.secret_token) and hmac.compare_digest(given.encode(), self.secret_token.encode())

    async def register_webhook(self) -> bool:
        """setWebhook with the secret token (aiogram 2.15 cannot pass it)."""
        base = (self.api_server or "https://api.telegram.org").rstrip("/")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.post(f"{base}/bot{self.access_token}/setWebhook",
                                    json={"url": self.webhook_url, "secret_token": self.secret_token}) as answer:
                return answer.status == 200 and (await answer.json()).get("ok") is True

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = super().blueprint(on_new_message)

        @blueprint.middleware("request")
        async def check_secret(request: Request):
            if request.path.endswith("/set_webhook"):
                registered = await self.register_webhook()
                return response.text("Webhook setup successful" if registered else "Webhook setup failed",
                                     status=200 if registered else 502)
            if request.method == "POST" and not self.is_genuine(request):
                logger.warning("Refused a Telegram request without the secret token from %s", request.ip)
                return response.json(FORBIDDEN, status=403)
            return None

        return blueprint


class GuardedFacebookInput(GuardedChannel, FacebookInput):
    """Rasa's Messenger connector (it checks X-Hub-Signature), at /webhooks/facebook/webhook, guarded."""


class GuardedSlackInput(GuardedChannel, SlackInput):
    """Rasa's Slack connector (it checks X-Slack-Signature), at /webhooks/slack/webhook, guarded."""
