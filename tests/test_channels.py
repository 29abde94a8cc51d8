"""The secured Telegram and Twilio connectors, served over real HTTP.

Each connector's webhook runs in a Sanic app on a local port (as Rasa mounts
it, under /webhooks/<channel>), with a recorder in place of the assistant that
answers each message. A correctly signed request reaches the recorder; a forged
or unsigned one gets 403 and reaches nothing. Twilio's and Telegram's APIs are
local fakes (tests/provider_apis.py), which the tests at the end also point the
running assistant at: SMS conversations stored under a hash of the number, and
replies that fail (500, no answer) lose nothing.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import List

import pytest
import yaml
from sanic import Sanic
from twilio.request_validator import RequestValidator

from channels.credentials import ChannelConfigError, build
from channels.guard import conversation_tag
from channels.secure import SEND_ATTEMPTS, SecureTelegramInput, SecureTelegramOutput, SecureTwilioInput
from channels.web import WebChatInput
from tests import provider_apis
from tests.provider_apis import FAIL, HANG, OK, TELEGRAM_SECRET

TWILIO_TOKEN = "twilio-auth-token-for-tests"
CONVERSATION_KEY = "5c" * 32  # as credentials.build derives one from CHANNEL_SECRET_KEY
CLINIC_NUMBER = "+13055550100"
ROOT = Path(__file__).resolve().parent.parent
JWT_KEY = "socketio-jwt-key-for-tests-0123456789abcdef"
WIDGET_ORIGIN = "https://www.clinic.example"
SECRET = {"CHANNEL_SECRET_KEY": "channel-secret-for-tests-0123456789abcdef"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


REPLIES = ("Noted.", "Anything else?")


def serve(*channels) -> tuple:
    """Mounts the channels' blueprints on one app, as Rasa does; returns (base url, received messages)."""
    received: List = []

    async def on_new_message(message):
        received.append(message)
        for reply in REPLIES:  # as Rasa's processor hands over a turn's replies
            await message.output_channel.send_response(message.sender_id, {"text": reply})

    app = Sanic(f"channel_test_{uuid.uuid4().hex[:8]}")
    for channel in channels:
        app.blueprint(channel.blueprint(on_new_message), url_prefix=f"/webhooks/{channel.name()}")
    port = free_port()

    def run():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(
            app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False))
        loop.run_until_complete(server.startup())
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    base = f"http://127.0.0.1:{port}/webhooks"
    for _ in range(50):
        try:
            urllib.request.urlopen(base + f"/{channels[0].name()}/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    return base, received


@pytest.fixture(scope="module")
def twilio_api():
    api = provider_apis.fake_twilio_api()
    yield api
    api.set_mode(OK)  # requests still hanging are let go


@pytest.fixture(scope="module")
def telegram_api():
    api = provider_apis.fake_telegram_api()
    yield api
    api.set_mode(OK)


@pytest.fixture(scope="module")
def server(twilio_api, telegram_api):
    """One app with both connectors (Sanic 21 serves one app per process reliably), replying
    through fakes of Twilio's and Telegram's APIs."""
    api = telegram_api
    twilio = SecureTwilioInput.from_credentials(
        {"account_sid": "AC123", "auth_token": TWILIO_TOKEN, "twilio_number": CLINIC_NUMBER,
         "conversation_key": CONVERSATION_KEY, "api_url": twilio_api.url})
    telegram = SecureTelegramInput.from_credentials({
        "access_token": provider_apis.TELEGRAM_TOKEN, "verify": provider_apis.TELEGRAM_BOT_NAME,
        "webhook_url": provider_apis.TELEGRAM_WEBHOOK_URL, "secret_token": TELEGRAM_SECRET, "api_server": api.url})
    # The widget's socket.io channel as make run configures it with SOCKETIO_JWT_KEY set.
    webchat = WebChatInput.from_credentials(
        {**build({**SECRET, "WIDGET_ORIGINS": WIDGET_ORIGIN, "SOCKETIO_JWT_KEY": JWT_KEY})[0]["channels.web.WebChatInput"]})
    base, received = serve(twilio, telegram, webchat)
    return base, received, api, twilio, webchat


def post(url: str, data: bytes, headers: dict, timeout: float = 10) -> int:
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


# --- Twilio (SMS and WhatsApp) ---------------------------------------------------------

@pytest.fixture(scope="module")
def twilio(server):
    base, received, _, _, _ = server
    return base + "/twilio", received


def twilio_post(base, form, signature=None, token=TWILIO_TOKEN, timeout: float = 10):
    url = base + "/webhook"
    if signature is None:
        signature = RequestValidator(token).compute_signature(url, form)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature:
        headers["X-Twilio-Signature"] = signature
    return post(url, urllib.parse.urlencode(form).encode(), headers, timeout)


def sms_conversation_id(key: str, sender: str) -> str:
    """What the conversation from this Twilio sender ("+1...", "whatsapp:+1...") is called in Rasa."""
    kind = "whatsapp" if sender.startswith("whatsapp:") else "sms"
    return f"{kind}-" + hmac.new(key.encode(), sender.encode(), hashlib.sha256).hexdigest()[:32]


@pytest.mark.parametrize("sender, clinic", [("+13055550123", CLINIC_NUMBER),
                                            ("whatsapp:+13055550123", "whatsapp:" + CLINIC_NUMBER)])
def test_twilio_message_is_processed_under_a_hash_of_the_number_and_answered_to_the_number(
        twilio, twilio_api, sender, clinic):
    base, received = twilio
    status = twilio_post(base, {"From": sender, "Body": "what causes sciatica?"})
    assert status in (200, 204)  # Rasa's Twilio webhook answers 204
    conversation = sms_conversation_id(CONVERSATION_KEY, sender)
    assert [(m.sender_id, m.text, m.input_channel) for m in received][-1] == (
        conversation, "what causes sciatica?", "twilio")
    assert "3055550123" not in repr(vars(received[-1]))  # nothing the assistant gets holds the number
    # The answer went to the visitor's number, from the clinic's, on the same channel (SMS or WhatsApp).
    assert twilio_api.called("Messages.json")[-2:] == [{"To": sender, "From": clinic, "Body": reply}
                                                       for reply in REPLIES]


@pytest.mark.parametrize("mode", [FAIL, HANG])
def test_twilio_reply_that_cannot_be_sent_is_retried_logged_and_loses_nothing(twilio, twilio_api, caplog, mode):
    base, received = twilio
    sender = "+13055550131" if mode == FAIL else "+13055550132"
    conversation = sms_conversation_id(CONVERSATION_KEY, sender)
    twilio_api.set_mode(mode)
    try:
        with caplog.at_level(logging.ERROR, logger="channels.secure"):
            started = time.monotonic()
            status = twilio_post(base, {"From": sender, "Body": "my back flares at night"}, timeout=30)
            took = time.monotonic() - started
    finally:
        twilio_api.set_mode(OK)
    # The message was handled to the end (Rasa saves the conversation after its replies) ...
    assert status == 204 and (received[-1].sender_id, received[-1].text) == (conversation, "my back flares at night")
    # ... after three tries of the first reply (the second is not tried: the API is failing), within
    # the 15 s Twilio waits for an answer.
    assert [call["To"] for call in twilio_api.called("Messages.json")].count(sender) == SEND_ATTEMPTS
    assert took < 14
    logged, skipped = [r.getMessage() for r in caplog.records if "REPLY NOT SENT" in r.getMessage()]
    assert f"conversation {conversation_tag(conversation)}: twilio's API failed" in logged
    assert "failed on an earlier reply" in skipped
    assert "3055550" not in logged and "flares" not in logged


@pytest.mark.parametrize("signature", ["", "forged-signature", "d3Jvbmc="])
def test_twilio_unsigned_or_forged_message_is_refused(twilio, signature):
    base, received = twilio
    before = len(received)
    assert twilio_post(base, {"From": "+13055550999", "Body": "hi"}, signature=signature) == 403
    assert len(received) == before


def test_twilio_signature_of_another_message_does_not_fit(twilio):
    base, received = twilio
    before = len(received)
    genuine = RequestValidator(TWILIO_TOKEN).compute_signature(base + "/webhook", {"From": "+1", "Body": "a"})
    assert twilio_post(base, {"From": "+1", "Body": "b"}, signature=genuine) == 403
    assert len(received) == before


# --- Telegram ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def telegram(server):
    base, received, api, _, _ = server
    return base + "/telegram", received, api


def telegram_update(text: str, update_id: int = 1, chat: int = 4242) -> bytes:
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1763700000, "text": text,
        "chat": {"id": chat, "type": "private"}, "from": {"id": chat, "is_bot": False, "first_name": "Ana"}}}).encode()


GENUINE = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}


def test_telegram_update_with_the_secret_token_is_processed(telegram):
    base, received, api = telegram
    status = post(base + "/webhook", telegram_update("what causes sciatica?"), GENUINE)
    assert status == 200
    assert (str(received[-1].sender_id), received[-1].text) == ("4242", "what causes sciatica?")
    assert api.called("sendMessage")[-2:] == [{"chat_id": "4242", "text": reply} for reply in REPLIES]


@pytest.mark.parametrize("mode", [FAIL, HANG])
def test_telegram_reply_that_cannot_be_sent_is_retried_logged_and_the_update_acknowledged(
        telegram, caplog, mode):
    """Telegram sends an update again until it gets a 2xx: a reply failure must not cause that."""
    base, received, api = telegram
    chat = 5151 if mode == FAIL else 5152
    api.set_mode(mode)
    try:
        with caplog.at_level(logging.ERROR, logger="channels.secure"):
            status = post(base + "/webhook", telegram_update("my back flares at night", 3, chat), GENUINE, timeout=30)
    finally:
        api.set_mode(OK)
    assert status == 200
    assert (str(received[-1].sender_id), received[-1].text) == (str(chat), "my back flares at night")
    assert [call["chat_id"] for call in api.called("sendMessage")].count(str(chat)) == SEND_ATTEMPTS
    logged, skipped = [r.getMessage() for r in caplog.records if "REPLY NOT SENT" in r.getMessage()]
    assert "failed on an earlier reply" in skipped
    assert f"conversation {conversation_tag(str(chat))}" in logged and "flares" not in logged


@pytest.mark.parametrize("mode", [FAIL, HANG])
def test_telegram_update_is_handled_while_the_bot_api_cannot_say_who_the_bot_is(telegram_api, mode):
    """Rasa's webhook asks getMe for every update, outside its error handling (a 500 to Telegram)."""
    output = SecureTelegramOutput(provider_apis.TELEGRAM_TOKEN, telegram_api.url, provider_apis.TELEGRAM_BOT_NAME)
    telegram_api.set_mode(mode)
    try:
        assert asyncio.run(output.get_me()).username == provider_apis.TELEGRAM_BOT_NAME
    finally:
        telegram_api.set_mode(OK)


@pytest.mark.parametrize("headers", [{}, {"X-Telegram-Bot-Api-Secret-Token": "guess"},
                                     {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET[:-1]}])
def test_telegram_update_without_the_secret_token_is_refused(telegram, headers):
    base, received, _ = telegram
    before = len(received)
    assert post(base + "/webhook", telegram_update("hi", 2), {"Content-Type": "application/json", **headers}) == 403
    assert len(received) == before


def test_telegram_set_webhook_url_registers_nothing(telegram):
    base, _, api = telegram
    assert post(base + "/set_webhook", b"", GENUINE) == 404
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(base + "/set_webhook", timeout=10)
    assert answer.value.code == 404
    assert api.called("setWebhook") == []


TELEGRAM_ENVIRONMENT = {"TELEGRAM_TOKEN": provider_apis.TELEGRAM_TOKEN, "TELEGRAM_BOT_NAME": "clinic_bot",
                        "TELEGRAM_WEBHOOK_URL": provider_apis.TELEGRAM_WEBHOOK_URL,
                        "TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET}


def register_telegram_webhook(environment: dict) -> subprocess.CompletedProcess:
    """`make telegram-webhook`'s command, with only these settings in the environment."""
    return subprocess.run([sys.executable, "-m", "channels.secure", "register-telegram-webhook"],
                          cwd=ROOT, env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
                                         **environment},
                          capture_output=True, text=True, timeout=120)


def test_telegram_webhook_is_registered_by_the_command_with_the_secret_token(telegram_api):
    done = register_telegram_webhook({**TELEGRAM_ENVIRONMENT, "TELEGRAM_API_SERVER": telegram_api.url})
    assert done.returncode == 0, done.stderr
    assert telegram_api.called("setWebhook")[-1] == {"url": provider_apis.TELEGRAM_WEBHOOK_URL,
                                                     "secret_token": TELEGRAM_SECRET}
    assert "sends the bot's updates to https://bot.example/webhooks/telegram/webhook" in done.stdout


def test_telegram_webhook_command_names_what_is_missing_or_refused(telegram_api):
    before = len(telegram_api.called("setWebhook"))
    done = register_telegram_webhook({"TELEGRAM_TOKEN": provider_apis.TELEGRAM_TOKEN})
    assert done.returncode == 1
    assert "Set TELEGRAM_BOT_NAME, TELEGRAM_WEBHOOK_URL, TELEGRAM_SECRET_TOKEN first" in done.stderr
    assert len(telegram_api.called("setWebhook")) == before
    telegram_api.set_mode(FAIL)
    try:
        done = register_telegram_webhook({**TELEGRAM_ENVIRONMENT, "TELEGRAM_API_SERVER": telegram_api.url})
    finally:
        telegram_api.set_mode(OK)
    assert done.returncode == 1 and "Telegram did not register the webhook: Internal Server Error" in done.stderr


def test_missing_credentials_are_named():
    with pytest.raises(ValueError, match="telegram: missing secret_token"):
        SecureTelegramInput.from_credentials({"access_token": "1:x", "verify": "b", "webhook_url": "https://x"})
    with pytest.raises(ValueError, match="secret_token must be 16-256 characters"):
        SecureTelegramInput.from_credentials({"access_token": "1:x", "verify": "b", "webhook_url": "https://x",
                                              "secret_token": "short"})
    with pytest.raises(ValueError, match="twilio: missing auth_token"):
        SecureTwilioInput.from_credentials({"account_sid": "AC1", "twilio_number": "+1"})


# --- which channels start ------------------------------------------------------------------

def test_only_rest_and_socketio_without_channel_settings():
    from channels.credentials import build

    credentials, enabled = build(SECRET)
    assert set(credentials) == {"channels.web.WebChatInput"} and enabled == []  # REST only with its token
    credentials, _ = build({**SECRET, "REST_CHANNEL_TOKEN": "rest-channel-token-0123456789abcdef"})
    assert set(credentials) == {"channels.web.GuardedRestInput", "channels.web.WebChatInput"}
    assert credentials["channels.web.GuardedRestInput"] == {"token": "rest-channel-token-0123456789abcdef"}
    with pytest.raises(ChannelConfigError, match="REST_CHANNEL_TOKEN is too short"):
        build({**SECRET, "REST_CHANNEL_TOKEN": "short"})


def test_a_channel_starts_when_its_settings_are_in_the_environment():
    from channels.credentials import build

    credentials, enabled = build({**SECRET, "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t", "TWILIO_NUMBER": "+1305",
                                  "SLACK_TOKEN": "xoxb", "SLACK_SIGNING_SECRET": "s"})
    assert enabled == ["SecureTwilioInput", "GuardedSlackInput"]
    twilio = credentials["channels.secure.SecureTwilioInput"]
    assert {key: twilio[key] for key in ("account_sid", "auth_token", "twilio_number")} == {
        "account_sid": "AC1", "auth_token": "t", "twilio_number": "+1305"}
    # Its own key, derived from the channels' secret, differs from the widget's.
    assert len(twilio["conversation_key"]) == 64
    assert twilio["conversation_key"] != credentials["channels.web.WebChatInput"]["session_key"]
    assert credentials["channels.secure.GuardedSlackInput"]["slack_signing_secret"] == "s"


def test_the_channels_secret_is_required_and_named():
    from channels.credentials import ChannelConfigError, build

    for environment in ({}, {"CHANNEL_SECRET_KEY": "too-short"}):
        with pytest.raises(ChannelConfigError, match="CHANNEL_SECRET_KEY must be set"):
            build(environment)
    other = build({"CHANNEL_SECRET_KEY": "another-channel-secret-0123456789abcdef"})[0]
    assert other["channels.web.WebChatInput"]["session_key"] != build(SECRET)[0]["channels.web.WebChatInput"][
        "session_key"]


def test_half_configured_channel_names_what_is_missing():
    from channels.credentials import ChannelConfigError, build

    with pytest.raises(ChannelConfigError, match="set TELEGRAM_BOT_NAME, TELEGRAM_WEBHOOK_URL, TELEGRAM_SECRET_TOKEN"):
        build({**SECRET, "TELEGRAM_TOKEN": "123:abc"})


# --- through the running assistant ----------------------------------------------------------

def sms_to(assistant, sender: str, body: str, signature=None) -> int:
    """A message from this number to the running assistant's Twilio webhook, signed as Twilio signs it."""
    from tests.running_assistant import TWILIO_TEST_SETTINGS

    return twilio_post(f"http://localhost:{assistant.port}/webhooks/twilio", {"From": sender, "Body": body},
                       signature, TWILIO_TEST_SETTINGS["TWILIO_AUTH_TOKEN"], timeout=30)


def stored_conversation_id(assistant, sender: str) -> str:
    """The conversation id the running assistant gives this number (its key is in its credentials)."""
    settings = yaml.safe_load(assistant.credentials.read_text())["channels.secure.SecureTwilioInput"]
    return sms_conversation_id(settings["conversation_key"], sender)


def rows_holding(assistant, text: str) -> list:
    """Every row of every table of the running assistant's tracker store that holds this text."""
    with sqlite3.connect(assistant.db) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [row for table in tables for row in db.execute(f'SELECT * FROM "{table}"') if text in repr(row)]


def said(assistant, conversation_id: str) -> List[tuple]:
    """(who, text) of the conversation's messages, as the server reads them from its tracker store."""
    return [(event["event"], event.get("text")) for event in assistant.tracker(conversation_id)["events"]
            if event["event"] in ("user", "bot")]


def logged(assistant, text: str, seconds: float = 10) -> str:
    """The running assistant's log once it holds this text ('' if it does not within the time)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        log = (assistant.workdir / "rasa.log").read_text(errors="replace")
        if text in log:
            return log
        time.sleep(0.1)
    return ""


def test_sms_to_the_running_assistant_is_stored_under_a_hash_and_answered_to_the_number(assistant):
    """make run's credentials put our connector on /webhooks/twilio: forged or unsigned gets 403; a
    signed message is stored under a keyed hash of the number, and answered to the number."""
    twilio_api = provider_apis.shared()["twilio"]
    number = "+13055550777"
    assert sms_to(assistant, number, "what causes sciatica?", signature="forged") == 403
    assert sms_to(assistant, number, "what causes sciatica?", signature="") == 403
    assert sms_to(assistant, number, "what causes sciatica?") == 204
    conversation = stored_conversation_id(assistant, number)
    messages = said(assistant, conversation)
    assert ("user", "what causes sciatica?") in messages and messages[-1][0] == "bot"
    replies = [call for call in twilio_api.called("Messages.json") if call["To"] == number]
    assert replies and replies[0]["From"] == "+13055550100" and replies[0]["Body"] in messages[-1][1]
    # The number is nowhere in the tracker store (conversation ids, events, metadata) nor in the log.
    assert rows_holding(assistant, "3055550777") == []
    assert "3055550777" not in (assistant.workdir / "rasa.log").read_text(errors="replace")


@pytest.mark.parametrize("mode", [FAIL, HANG])
def test_sms_whose_reply_cannot_be_sent_is_stored_with_its_answer(assistant, mode):
    """Twilio's API answering 500, or not answering: the visitor's message and the assistant's answer
    are stored, the reply is tried three times and the failure logged, within the 15 s Twilio waits;
    the server goes on answering others meanwhile."""
    twilio_api = provider_apis.shared()["twilio"]
    number = "+13055550778" if mode == FAIL else "+13055550779"
    conversation = stored_conversation_id(assistant, number)
    answer: dict = {}

    def send():
        started = time.monotonic()
        answer["status"] = sms_to(assistant, number, "what causes sciatica?")
        answer["seconds"] = time.monotonic() - started

    twilio_api.set_mode(mode)
    sending = threading.Thread(target=send)
    try:
        sending.start()
        assert twilio_api.wait_for(lambda: any(call["To"] == number for call in twilio_api.called("Messages.json")))
        with urllib.request.urlopen(f"http://localhost:{assistant.port}/", timeout=2) as health:
            assert health.status == 200  # while the reply is failing (or hanging)
        sending.join(30)
    finally:
        twilio_api.set_mode(OK)
    assert answer["status"] == 204 and answer["seconds"] < 15
    assert [call["To"] for call in twilio_api.called("Messages.json")].count(number) == SEND_ATTEMPTS
    messages = said(assistant, conversation)
    assert ("user", "what causes sciatica?") in messages and messages[-1][0] == "bot"
    log = logged(assistant, f"REPLY NOT SENT in conversation {conversation_tag(conversation)}: twilio's API failed")
    assert log and number[2:] not in log


def test_telegram_update_whose_reply_cannot_be_sent_is_stored_with_its_answer(assistant):
    """Telegram's Bot API failing (getMe and sendMessage): the update gets 200 (anything else and
    Telegram sends it again), the message and the answer are stored, the failure is logged."""
    telegram_api = provider_apis.shared()["telegram"]
    chat = 707070
    telegram_api.set_mode(FAIL)
    try:
        status = post(f"http://localhost:{assistant.port}/webhooks/telegram/webhook",
                      telegram_update("what causes sciatica?", 9, chat), GENUINE, timeout=30)
    finally:
        telegram_api.set_mode(OK)
    assert status == 200
    messages = said(assistant, str(chat))
    assert ("user", "what causes sciatica?") in messages and messages[-1][0] == "bot"
    assert [call["chat_id"] for call in telegram_api.called("sendMessage")].count(str(chat)) == SEND_ATTEMPTS
    assert logged(assistant, f"REPLY NOT SENT in conversation {conversation_tag(str(chat))}: telegram's API failed")
    assert post(f"http://localhost:{assistant.port}/webhooks/telegram/set_webhook", b"", GENUINE) == 404
    assert telegram_api.called("setWebhook") == []


# --- buttons on text-only channels ------------------------------------------------------------

BUTTONS = [{"title": "Swedish", "payload": "Swedish"}, {"title": "Deep tissue", "payload": "Deep tissue"},
           {"title": "Not sure, the therapist can advise", "payload": "Not sure, the therapist can advise"}]


def test_buttons_become_numbered_choices_a_reply_can_pick():
    from channels.text_buttons import OfferedChoices, numbered

    text = numbered("Which kind of massage would you like?", BUTTONS)
    assert text.splitlines()[2:5] == ["1. Swedish", "2. Deep tissue", "3. Not sure, the therapist can advise"]
    choices = OfferedChoices()
    choices.remember("+1305", BUTTONS)
    assert choices.resolve("+1305", "2") == "Deep tissue"
    assert choices.resolve("+1305", " #3 ") == "Not sure, the therapist can advise"
    assert choices.resolve("+1305", "option 1") == "Swedish"
    assert choices.resolve("+1305", "7") == "7"                      # no such choice: read as text
    assert choices.resolve("+1999", "2") == "2"                      # nothing offered to this person
    assert choices.resolve("+1305", "2 people") == "2 people"        # not a choice


def test_numbered_choices_sent_by_sms_are_read_back_in_the_same_conversation(server, twilio_api):
    base, received, _, channel, _ = server
    number = "+13055550124"
    conversation = sms_conversation_id(CONVERSATION_KEY, number)
    output = channel.get_output_channel()  # as for a message from this number
    output.answering(conversation, number)
    before = len(twilio_api.called("Messages.json"))
    asyncio.run(output.send_text_with_buttons(conversation, "Which kind of massage?", BUTTONS))
    asyncio.run(output.send_custom_json(conversation, {"red_flag_tier": "emergency"}))  # widget-only: not sent
    sent = twilio_api.called("Messages.json")[before:]
    assert [message["To"] for message in sent] == [number, number] and "2. Deep tissue" in sent[1]["Body"]
    assert twilio_post(base + "/twilio", {"From": number, "Body": "2"}) == 204
    assert (received[-1].sender_id, received[-1].text) == (conversation, "Deep tissue")


def test_an_sms_reply_goes_only_to_the_number_of_the_message_being_answered(server, twilio_api):
    """Rasa's HTTP API can send to a conversation id; no number is kept to look up."""
    channel = server[3]
    before = len(twilio_api.calls)
    asyncio.run(channel.get_output_channel().send_text_message(sms_conversation_id(CONVERSATION_KEY, "+1"), "hi"))
    output = channel.get_output_channel()
    output.answering(sms_conversation_id(CONVERSATION_KEY, "+13055550125"), "+13055550125")
    asyncio.run(output.send_text_message(sms_conversation_id(CONVERSATION_KEY, "+13055550126"), "hi"))
    assert len(twilio_api.calls) == before


# --- the widget's socket.io channel: allowed pages, signed tokens ------------------------------

def widget_connects(server, origin=None, token=None) -> bool:
    import jwt
    import socketio

    base = server[0].rsplit("/webhooks", 1)[0]
    client = socketio.Client(reconnection=False)
    auth = None
    if token is not None:
        key = JWT_KEY if token.pop("_key", True) else "another-key-0123456789abcdef0123456789"
        auth = {"token": jwt.encode(token, key, algorithm="HS256")}
    try:
        client.connect(base, headers={"Origin": origin} if origin else {}, auth=auth, transports=["polling"],
                       socketio_path="/socket.io", wait_timeout=10)
    except socketio.exceptions.ConnectionError:
        return False
    client.disconnect()
    return True


def test_the_widget_connects_from_the_clinic_site_with_a_signed_token(server):
    assert widget_connects(server, WIDGET_ORIGIN, {"sub": "visitor"})
    assert widget_connects(server, None, {"sub": "visitor", "exp": int(time.time()) + 60})  # no Origin: not a browser


@pytest.mark.parametrize("origin, token", [
    ("https://evil.example", {"sub": "visitor"}),        # another site embedding the widget
    ("http://www.clinic.example", {"sub": "visitor"}),   # same host, other scheme
    (WIDGET_ORIGIN, None),                               # no token
    (WIDGET_ORIGIN, {"sub": "visitor", "_key": False}),  # signed with another key
    (WIDGET_ORIGIN, {"sub": "visitor", "exp": 1}),       # expired
])
def test_the_widget_is_refused_from_another_site_or_without_a_valid_token(server, origin, token):
    assert not widget_connects(server, origin, token)


def test_widget_origins_and_jwt_key_are_checked_when_the_credentials_are_built():
    settings = build(SECRET)[0]["channels.web.WebChatInput"]
    assert settings["cors_allowed_origins"] == ["http://localhost:8080", "http://127.0.0.1:8080"]
    assert "jwt_key" not in settings
    assert build({**SECRET, "WIDGET_ORIGINS": "https://a.example, https://b.example"})[0]["channels.web.WebChatInput"][
        "cors_allowed_origins"] == ["https://a.example", "https://b.example"]
    for bad in ("*", "www.clinic.example", "https://www.clinic.example/"):
        with pytest.raises(ChannelConfigError, match="WIDGET_ORIGINS"):
            build({**SECRET, "WIDGET_ORIGINS": bad})
    with pytest.raises(ChannelConfigError, match="SOCKETIO_JWT_KEY is too short"):
        build({**SECRET, "SOCKETIO_JWT_KEY": "short"})
