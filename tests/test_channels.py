"""The secured Telegram and Twilio connectors, served over real HTTP.

Each connector's webhook runs in a Sanic app on a local port (as Rasa mounts
it, under /webhooks/<channel>), with a recorder in place of the assistant. A
correctly signed request reaches the recorder; a forged or unsigned one gets
403 and reaches nothing. Telegram's Bot API (getMe, setWebhook) is a local
fake server.
"""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List

import pytest
from sanic import Sanic
from twilio.request_validator import RequestValidator

from channels.credentials import ChannelConfigError, build
from channels.secure import SecureTelegramInput, SecureTwilioInput
from channels.web import WebChatInput

TWILIO_TOKEN = "twilio-auth-token-for-tests"
TELEGRAM_SECRET = "telegram-secret-token-for-tests"
JWT_KEY = "socketio-jwt-key-for-tests-0123456789abcdef"
WIDGET_ORIGIN = "https://www.clinic.example"
SECRET = {"CHANNEL_SECRET_KEY": "channel-secret-for-tests-0123456789abcdef"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(*channels) -> tuple:
    """Mounts the channels' blueprints on one app, as Rasa does; returns (base url, received messages)."""
    received: List = []

    async def on_new_message(message):
        received.append(message)

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
def server():
    """One app with both connectors (Sanic 21 serves one app per process reliably)."""
    api = FakeTelegramApi()
    twilio = SecureTwilioInput.from_credentials(
        {"account_sid": "AC123", "auth_token": TWILIO_TOKEN, "twilio_number": "+13055550100"})
    telegram = SecureTelegramInput.from_credentials({
        "access_token": "123:TEST", "verify": "clinic_bot",
        "webhook_url": "https://bot.example/webhooks/telegram/webhook",
        "secret_token": TELEGRAM_SECRET, "api_server": api.url})
    # The widget's socket.io channel as make run configures it with SOCKETIO_JWT_KEY set.
    webchat = WebChatInput.from_credentials(
        {**build({**SECRET, "WIDGET_ORIGINS": WIDGET_ORIGIN, "SOCKETIO_JWT_KEY": JWT_KEY})[0]["channels.web.WebChatInput"]})
    base, received = serve(twilio, telegram, webchat)
    return base, received, api, twilio, webchat


def post(url: str, data: bytes, headers: dict) -> int:
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


# --- Twilio (SMS and WhatsApp) ---------------------------------------------------------

@pytest.fixture(scope="module")
def twilio(server):
    base, received, _, _, _ = server
    return base + "/twilio", received


def twilio_post(base, form, signature=None):
    url = base + "/webhook"
    if signature is None:
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if signature:
        headers["X-Twilio-Signature"] = signature
    return post(url, urllib.parse.urlencode(form).encode(), headers)


def test_twilio_message_signed_by_twilio_is_processed(twilio):
    base, received = twilio
    status = twilio_post(base, {"From": "+13055550123", "Body": "what causes sciatica?"})
    assert status in (200, 204)  # Rasa's Twilio webhook answers 204
    assert [(m.sender_id, m.text, m.input_channel) for m in received][-1] == (
        "+13055550123", "what causes sciatica?", "twilio")


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

class FakeTelegramApi:
    """Answers the Bot API calls the connector makes (getMe, setWebhook)."""

    def __init__(self):
        self.calls: List[tuple] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                method = self.path.rsplit("/", 1)[-1]
                calls.append((method, body))
                result = {"id": 1, "is_bot": True, "first_name": "Clinic", "username": "clinic_bot"} \
                    if method == "getMe" else True
                answer = json.dumps({"ok": True, "result": result}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def telegram(server):
    base, received, api, _, _ = server
    return base + "/telegram", received, api


def telegram_update(text: str, update_id: int = 1) -> bytes:
    return json.dumps({"update_id": update_id, "message": {
        "message_id": update_id, "date": 1763700000, "text": text,
        "chat": {"id": 4242, "type": "private"}, "from": {"id": 4242, "is_bot": False, "first_name": "Ana"}}}).encode()


def test_telegram_update_with_the_secret_token_is_processed(telegram):
    base, received, _ = telegram
    status = post(base + "/webhook", telegram_update("what causes sciatica?"),
                  {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
    assert status == 200
    assert (str(received[-1].sender_id), received[-1].text) == ("4242", "what causes sciatica?")


@pytest.mark.parametrize("headers", [{}, {"X-Telegram-Bot-Api-Secret-Token": "guess"},
                                     {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET[:-1]}])
def test_telegram_update_without_the_secret_token_is_refused(telegram, headers):
    base, received, _ = telegram
    before = len(received)
    assert post(base + "/webhook", telegram_update("hi", 2), {"Content-Type": "application/json", **headers}) == 403
    assert len(received) == before


def test_telegram_set_webhook_registers_the_secret_token(telegram):
    base, _, api = telegram
    with urllib.request.urlopen(base + "/set_webhook", timeout=10) as answer:
        assert answer.status == 200
    [(_, body)] = [call for call in api.calls if call[0] == "setWebhook"]
    assert json.loads(body) == {"url": "https://bot.example/webhooks/telegram/webhook", "secret_token": TELEGRAM_SECRET}


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
    assert set(credentials) == {"channels.web.GuardedRestInput", "channels.web.WebChatInput"} and enabled == []


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

def test_the_running_assistant_loads_the_secured_twilio_connector(assistant):
    """make run's credentials put our connector on /webhooks/twilio: forged gets 403, signed gets in.
    (The reply then goes to Twilio's API, which this machine cannot reach; the blueprint tests
    above show the signed message reaching the assistant.)"""
    from tests.running_assistant import TWILIO_TEST_SETTINGS

    url = f"http://localhost:{assistant.port}/webhooks/twilio/webhook"
    validator = RequestValidator(TWILIO_TEST_SETTINGS["TWILIO_AUTH_TOKEN"])
    message = {"From": "+13055550777", "Body": "what causes sciatica?"}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    body = urllib.parse.urlencode(message).encode()
    assert post(url, body, {**headers, "X-Twilio-Signature": "forged"}) == 403
    assert post(url, body, headers) == 403
    assert post(url, body, {**headers, "X-Twilio-Signature": validator.compute_signature(url, message)}) in (200, 204)


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


def test_a_numbered_sms_reply_reaches_the_assistant_as_the_button(server):
    base, received, _, channel, _ = server
    channel.choices.remember("+13055550124", BUTTONS)
    assert twilio_post(base + "/twilio", {"From": "+13055550124", "Body": "2"}) in (200, 204)
    assert (received[-1].sender_id, received[-1].text) == ("+13055550124", "Deep tissue")


def test_twilio_replies_send_numbered_choices_and_read_the_number_back():
    import asyncio as aio

    channel = SecureTwilioInput("AC1", TWILIO_TOKEN, "+13055550100")
    sent = []
    output = channel.get_output_channel()

    async def fake_send(recipient_id, message, **kwargs):  # Twilio's API is not called in tests
        sent.append(message)

    output.send_text_message = fake_send
    aio.run(output.send_text_with_buttons("+13055550123", "Which kind of massage?", BUTTONS))
    aio.run(output.send_custom_json("+13055550123", {"red_flag_tier": "emergency"}))  # widget-only: not sent
    assert len(sent) == 1 and "2. Deep tissue" in sent[0]
    assert channel.choices.resolve("+13055550123", "2") == "Deep tissue"


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
