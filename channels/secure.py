"""Telegram and Twilio connectors that only accept genuine requests, hide SMS
numbers, and never lose a visitor's message because a reply could not be sent.

Rasa 3.6's own connectors process any POST to their webhook, so anyone who
guesses the URL can talk to the assistant as any phone number or chat. These
subclasses check, before anything is processed, what the provider signs:

- Twilio (SMS, WhatsApp): X-Twilio-Signature, an HMAC-SHA1 of the webhook URL
  and the form fields with the account's auth token (Twilio's RequestValidator).
- Telegram: X-Telegram-Bot-Api-Secret-Token, the secret registered with the
  webhook (`python -m channels.secure register-telegram-webhook`, `make telegram-webhook`).

A request that fails the check gets 403 and never reaches the assistant.

An SMS/WhatsApp conversation is named by a keyed hash of the visitor's number
("sms-<32 hex>", "whatsapp-<32 hex>"), so the number is stored nowhere: not in
the tracker store, staff notifications, `make pending` or exports. Only the
output channel of the message being answered holds the number, to reply to it.

Replies: Rasa saves a conversation only after its replies are sent, so a reply
that raised (Twilio's or Telegram's API down, refusing or hanging) lost the
visitor's message, and Rasa's Twilio client blocked the server's event loop
with no timeout. Here each call to the provider's API has a SEND_TIMEOUT_SECONDS
timeout (off the event loop for Twilio's synchronous client) and is retried
SEND_ATTEMPTS times with a short back-off; a reply still not sent is logged
(conversation named by channels.guard.conversation_tag) and Rasa goes on to save
the conversation, the visitor's message and the assistant's answer included.

Rasa's Messenger and Slack connectors check their signatures themselves; the
classes here only add, as for every channel, the visitor guard (channels/guard.py).
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import hmac
import logging
import os
import re
import sys
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Text, Tuple, TypeVar

import aiohttp
from aiogram import Bot, types
from aiogram.bot.api import TELEGRAM_PRODUCTION, TelegramAPIServer
from aiogram.utils.exceptions import NetworkError, RestartingTelegram, TelegramAPIError
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.facebook import FacebookInput
from rasa.core.channels.slack import SlackInput
from rasa.core.channels.telegram import TelegramInput, TelegramOutput
from rasa.core.channels.twilio import TwilioInput, TwilioOutput
from sanic import Blueprint, response
from sanic.request import Request
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator

from channels.guard import GuardedChannel, conversation_tag
from channels.text_buttons import OfferedChoices, numbered

logger = logging.getLogger(__name__)

FORBIDDEN = {"error": "request signature missing or invalid"}
NOT_HERE = {"error": "not found: the Telegram webhook is registered with `make telegram-webhook`"}

# Each call to Twilio's or Telegram's API: up to SEND_ATTEMPTS tries, SEND_TIMEOUT_SECONDS each, with
# these pauses between them. Worst case (an API that accepts and never answers) about 10.5 s, within
# the 15 s Twilio waits for a webhook's answer, so a failing reply never holds a conversation long.
SEND_ATTEMPTS = 3
SEND_TIMEOUT_SECONDS = 3
SEND_BACKOFF_SECONDS = (0.5, 1.0)
# Hex digits of HMAC-SHA256 kept in an SMS/WhatsApp conversation id: 128 bits, no collision in any clinic.
CONVERSATION_ID_HEX = 32

T = TypeVar("T")


def _require(credentials: Optional[Dict[Text, Any]], keys, channel: Text) -> Dict[Text, Any]:
    missing = [key for key in keys if not (credentials or {}).get(key)]
    if missing:
        raise ValueError(f"{channel}: missing {', '.join(missing)} in credentials (see README, Messaging channels)")
    return credentials  # type: ignore[return-value]


# --- replies that may fail -------------------------------------------------------------------

class ReplyNotSent(Exception):
    """A reply given up on (and logged). Caught where Rasa hands the reply over, so that Rasa
    carries on and saves the conversation."""


class _Replies:
    """The replies to one incoming message (one webhook request)."""

    def __init__(self) -> None:
        self.api_failing = False


# Set by the webhook for each genuine request: once one reply has been given up on because the
# provider's API is failing, the other replies to the same message are not tried (a turn with
# several replies would otherwise wait 10 s for each).
_replies: contextvars.ContextVar[Optional[_Replies]] = contextvars.ContextVar("clinic_channel_replies",
                                                                            default=None)


def _answering_a_new_message() -> None:
    # Sanic runs a request's middleware and handler in one task: the sends below see this one.
    _replies.set(_Replies())


def worth_retrying(error: Exception) -> bool:
    """Network errors, timeouts and the provider's own failures (5xx, 429) may pass; a refusal of
    the request itself (a 4xx: a bad number, a blocked bot) will not."""
    if isinstance(error, TwilioRestException):
        return error.status >= 500 or error.status == 429
    if isinstance(error, TelegramAPIError):
        # aiogram raises the base class itself for Telegram's 5xx
        return isinstance(error, (NetworkError, RestartingTelegram)) or type(error) is TelegramAPIError
    return True


def describe(error: Exception) -> str:
    """The failure, without the message or the number (Twilio's error text may quote the number)."""
    if isinstance(error, TwilioRestException):
        return f"HTTP {error.status}, Twilio error {error.code}"
    if isinstance(error, asyncio.TimeoutError):
        return f"no answer within {SEND_TIMEOUT_SECONDS} s"
    if isinstance(error, TelegramAPIError):  # Telegram's description ("Bad Request: chat not found")
        return f"{type(error).__name__}: {error}"
    return type(error).__name__


class RetryingOutput:
    """Mix in before a Rasa output channel whose provider calls go through `_with_retries`."""

    async def _with_retries(self, send: Callable[[], Awaitable[T]], conversation_id: Any) -> T:
        replies = _replies.get()
        tag = conversation_tag(conversation_id)
        if replies is not None and replies.api_failing:
            logger.error("REPLY NOT SENT in conversation %s: %s's API failed on an earlier reply to the same "
                         "message.", tag, self.name())  # type: ignore[attr-defined]
            raise ReplyNotSent()
        attempt = 1
        while True:
            try:
                return await send()
            except Exception as error:
                if attempt < SEND_ATTEMPTS and worth_retrying(error):
                    await asyncio.sleep(SEND_BACKOFF_SECONDS[attempt - 1])
                    attempt += 1
                    continue
                if replies is not None and worth_retrying(error):
                    replies.api_failing = True
                logger.error("REPLY NOT SENT in conversation %s: %s's API failed (%s; %d attempt%s). The visitor "
                             "did not get this reply; the conversation goes on, and is saved, as if they had.",
                             tag, self.name(), describe(error), attempt,  # type: ignore[attr-defined]
                             "" if attempt == 1 else "s")
                raise ReplyNotSent() from error

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        try:
            await super().send_response(recipient_id, message)  # type: ignore[misc]
        except ReplyNotSent:
            pass  # logged when given up; Rasa goes on to save the conversation

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        try:  # also called directly: the guard's and the action-server-down apology's replies
            await super().send_text_message(recipient_id, text, **kwargs)  # type: ignore[misc]
        except ReplyNotSent:
            pass


# --- Twilio: SMS and WhatsApp ------------------------------------------------------------------

class TextOnlyTwilioOutput(RetryingOutput, TwilioOutput):
    """SMS/WhatsApp: buttons as numbered choices; only Twilio's own fields as custom JSON; replies
    to the number of the message being answered (Rasa's recipient is the conversation's hash)."""

    def __init__(self, account_sid, auth_token, twilio_number, choices: OfferedChoices,
                 api_url: Optional[Text] = None) -> None:
        super().__init__(account_sid, auth_token, twilio_number)
        # requests' timeout: a hanging API frees the worker thread too, not only the reply
        self.http_client = TwilioHttpClient(timeout=SEND_TIMEOUT_SECONDS)
        if api_url:
            self.api.base_url = api_url.rstrip("/")
        self.choices = choices
        self.visitor: Optional[Tuple[Text, Text]] = None  # (conversation id, number) being answered

    def answering(self, conversation_id: Text, number: Text) -> None:
        self.visitor = (conversation_id, number)

    async def send_text_with_buttons(self, recipient_id: Text, text: Text, buttons, **kwargs: Any) -> None:
        self.choices.remember(recipient_id, buttons)
        await self.send_text_message(recipient_id, numbered(text, buttons))

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        # The web widget's extras (e.g. {"red_flag_tier": ...}) mean nothing to Twilio's API.
        if {"body", "media_url"} & set(json_message):
            await super().send_custom_json(recipient_id, json_message, **kwargs)

    async def _send_message(self, message_data: Dict[Text, Any]) -> Any:
        conversation_id = message_data.get("to")
        if self.visitor is None or conversation_id != self.visitor[0]:
            # e.g. a message sent through Rasa's HTTP API: the number is kept nowhere to look it up
            logger.error("REPLY NOT SENT in conversation %s: an SMS/WhatsApp number is known only while that "
                         "visitor's own message is answered.", conversation_tag(conversation_id))
            return None
        data = {**message_data, "to": self.visitor[1]}
        if "from_" in data:  # the clinic's number, on the visitor's side (SMS or WhatsApp)
            clinic_number = str(data["from_"]).replace("whatsapp:", "", 1)
            data["from_"] = "whatsapp:" + clinic_number if data["to"].startswith("whatsapp:") else clinic_number
        # Twilio's client is synchronous: in a thread, the server goes on serving other visitors.
        return await self._with_retries(functools.partial(asyncio.to_thread, self.messages.create, **data),
                                        conversation_id)


class _TwilioInputByConversationId(TwilioInput):
    """Rasa's Twilio webhook, where each message's sender becomes its conversation id first of all
    (before the guard, the numbered choices or Rasa see it)."""

    def __init__(self, account_sid, auth_token, twilio_number, conversation_key: Text,
                 debug_mode: bool = False) -> None:
        super().__init__(account_sid, auth_token, twilio_number, debug_mode)
        self.conversation_key = conversation_key

    def conversation_id(self, sender: Text) -> Text:
        """ "sms-" or "whatsapp-" and a keyed hash (HMAC-SHA256) of the number Twilio names as From."""
        kind = "whatsapp" if sender.startswith("whatsapp:") else "sms"
        digest = hmac.new(self.conversation_key.encode(), sender.encode(), hashlib.sha256).hexdigest()
        return f"{kind}-{digest[:CONVERSATION_ID_HEX]}"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        async def by_conversation_id(message: UserMessage) -> Any:
            number = str(message.sender_id)
            message.sender_id = self.conversation_id(number)
            message.output_channel.answering(message.sender_id, number)  # type: ignore[union-attr]
            return await on_new_message(message)

        return super().blueprint(by_conversation_id)


class SecureTwilioInput(GuardedChannel, _TwilioInputByConversationId):
    """Twilio SMS/WhatsApp webhook at /webhooks/twilio/webhook, signature checked."""

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "SecureTwilioInput":
        credentials = _require(credentials, ("account_sid", "auth_token", "twilio_number", "conversation_key"),
                               "twilio")
        return cls(credentials["account_sid"], credentials["auth_token"], credentials["twilio_number"],
                   credentials["conversation_key"], public_url=credentials.get("public_url"),
                   api_url=credentials.get("api_url"))

    def __init__(self, account_sid, auth_token, twilio_number, conversation_key: Text, debug_mode: bool = False,
                 public_url: Optional[Text] = None, api_url: Optional[Text] = None) -> None:
        super().__init__(account_sid, auth_token, twilio_number, conversation_key, debug_mode)
        # The exact URL Twilio posts to (behind a proxy it differs from what we see).
        self.public_url = public_url
        self.api_url = api_url
        self.choices = OfferedChoices()

    def get_output_channel(self) -> TwilioOutput:
        return TextOnlyTwilioOutput(self.account_sid, self.auth_token, self.twilio_number, self.choices,
                                    self.api_url)

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
            if request.method == "POST":
                if not self.is_genuine(request):
                    logger.warning("Refused a Twilio request without a valid signature from %s", request.ip)
                    return response.json(FORBIDDEN, status=403)
                _answering_a_new_message()
            return None

        return blueprint


# --- Telegram -----------------------------------------------------------------------------------

class SecureTelegramOutput(RetryingOutput, TelegramOutput):
    """Telegram's Bot API (or a local Bot API server), with a timeout, retried replies, and the
    bot's own identity asked once."""

    def __init__(self, access_token: Optional[Text], api_server: Optional[Text] = None,
                 bot_name: Text = "") -> None:
        # aiogram 2.x takes the server and the timeout on the Bot; TelegramOutput passes only the token.
        Bot.__init__(self, access_token, timeout=SEND_TIMEOUT_SECONDS,
                     server=TelegramAPIServer.from_base(api_server) if api_server else TELEGRAM_PRODUCTION)
        self.bot_name = bot_name
        self._me: Optional[types.User] = None

    async def request(self, method, data=None, files=None, **kwargs):
        if not (data or {}).get("chat_id"):  # not a reply (getMe, setWebhook)
            return await super().request(method, data, files, **kwargs)
        return await self._with_retries(functools.partial(super().request, method, data, files, **kwargs),
                                        data["chat_id"])

    async def get_me(self) -> types.User:
        """Rasa's webhook asks Telegram who the bot is for every update (to compare with
        TELEGRAM_BOT_NAME), outside its error handling: an unreachable API answered Telegram 500,
        and Telegram sent the update again. Asked once here; while Telegram cannot be reached the
        update is handled all the same, its secret token having shown it is Telegram's, for this bot."""
        if self._me is None:
            try:
                self._me = await super().get_me()
            except (TelegramAPIError, asyncio.TimeoutError) as error:
                logger.warning("Could not ask Telegram's API who the bot is (%s); handling the update anyway.",
                               describe(error))
                return types.User(id=self.id, is_bot=True, first_name=self.bot_name, username=self.bot_name)
        return self._me


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
        return SecureTelegramOutput(self.access_token, self.api_server, self.verify)

    def is_genuine(self, request: Request) -> bool:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        return bool(self.secret_token) and hmac.compare_digest(given.encode(), self.secret_token.encode())

    async def register_webhook(self) -> Tuple[bool, Text]:
        """setWebhook with the secret token (aiogram 2.15 cannot pass it): (registered, Telegram's answer)."""
        base = (self.api_server or "https://api.telegram.org").rstrip("/")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.post(f"{base}/bot{self.access_token}/setWebhook",
                                    json={"url": self.webhook_url, "secret_token": self.secret_token}) as answer:
                result = await answer.json(content_type=None)
                return answer.status == 200 and result.get("ok") is True, str(result.get("description") or "")

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = super().blueprint(on_new_message)

        @blueprint.middleware("request")
        async def check_secret(request: Request):
            if request.path.endswith("/set_webhook"):
                # Rasa's route lets anyone re-register the webhook; registering is a CLI step here.
                return response.json(NOT_HERE, status=404)
            if request.method == "POST":
                if not self.is_genuine(request):
                    logger.warning("Refused a Telegram request without the secret token from %s", request.ip)
                    return response.json(FORBIDDEN, status=403)
                _answering_a_new_message()
            return None

        return blueprint


def register_telegram_webhook(environment: Mapping[str, str]) -> int:
    """Registers TELEGRAM_WEBHOOK_URL with Telegram, with TELEGRAM_SECRET_TOKEN (settings as `make run` reads them)."""
    from channels.credentials import CHANNELS

    required, optional = CHANNELS["channels.secure.SecureTelegramInput"]
    missing = [variable for variable in required.values() if not environment.get(variable, "").strip()]
    if missing:
        print(f"Set {', '.join(missing)} first (README, Messaging channels).", file=sys.stderr)
        return 1
    settings = {key: environment[variable].strip() for key, variable in {**required, **optional}.items()
                if environment.get(variable, "").strip()}
    try:
        channel = SecureTelegramInput.from_credentials(settings)
        registered, answer = asyncio.run(channel.register_webhook())
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        print(f"Could not reach Telegram's API ({type(error).__name__}: {error}); nothing registered.", file=sys.stderr)
        return 1
    if not registered:
        print(f"Telegram did not register the webhook: {answer or 'no reason given'}", file=sys.stderr)
        return 1
    print(f"Telegram now sends the bot's updates to {channel.webhook_url}, with the secret token.")
    return 0


def main(argv: List[str]) -> int:
    if argv[1:] == ["register-telegram-webhook"]:
        return register_telegram_webhook(os.environ)
    print("usage: python -m channels.secure register-telegram-webhook", file=sys.stderr)
    return 2


class GuardedFacebookInput(GuardedChannel, FacebookInput):
    """Rasa's Messenger connector (it checks X-Hub-Signature), at /webhooks/facebook/webhook, guarded."""


class GuardedSlackInput(GuardedChannel, SlackInput):
    """Rasa's Slack connector (it checks X-Slack-Signature), at /webhooks/slack/webhook, guarded."""


if __name__ == "__main__":
    sys.exit(main(sys.argv))
