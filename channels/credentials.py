"""Builds the credentials Rasa starts with: socketio always, rest with its token
(REST_CHANNEL_TOKEN), each messaging channel when its settings are in the environment.

    python -m channels.credentials var/credentials.yml

Secrets stay in the environment; the file is written under var/ (not in git)
readable by its owner only. A channel with some of its settings but not all
stops start-up with the names of the missing ones, rather than being left off
without a word.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import sys
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "credentials.yml"

# connector -> (required {credential: variable}, optional {credential: variable})
CHANNELS: Dict[str, Tuple[Dict[str, str], Dict[str, str]]] = {
    # Rasa's own Twilio and Telegram connectors accept unsigned requests: ours check (channels/secure.py).
    "channels.secure.SecureTwilioInput": (
        {"account_sid": "TWILIO_ACCOUNT_SID", "auth_token": "TWILIO_AUTH_TOKEN", "twilio_number": "TWILIO_NUMBER"},
        # TWILIO_API_URL: another address for Twilio's API (the tests' fake); api.twilio.com if unset
        {"public_url": "TWILIO_WEBHOOK_URL", "api_url": "TWILIO_API_URL"}),
    "channels.secure.SecureTelegramInput": (
        {"access_token": "TELEGRAM_TOKEN", "verify": "TELEGRAM_BOT_NAME", "webhook_url": "TELEGRAM_WEBHOOK_URL",
         "secret_token": "TELEGRAM_SECRET_TOKEN"},
        # TELEGRAM_API_SERVER: a local Bot API server (or the tests' fake); api.telegram.org if unset
        {"api_server": "TELEGRAM_API_SERVER"}),
    # Rasa's Messenger connector checks X-Hub-Signature with the app secret.
    "channels.secure.GuardedFacebookInput": ({"verify": "FACEBOOK_VERIFY_TOKEN", "secret": "FACEBOOK_APP_SECRET",
                  "page-access-token": "FACEBOOK_PAGE_ACCESS_TOKEN"}, {}),
    # Rasa's Slack connector checks X-Slack-Signature with the signing secret.
    "channels.secure.GuardedSlackInput": (
        {"slack_token": "SLACK_TOKEN", "slack_signing_secret": "SLACK_SIGNING_SECRET"},
        {"slack_channel": "SLACK_CHANNEL"}),
}


class ChannelConfigError(ValueError):
    pass


WEB_CHAT = "channels.web.WebChatInput"
# The web pages that may host the widget (its socket.io connection checks their Origin).
DEFAULT_ORIGINS = "http://localhost:8080 http://127.0.0.1:8080"


def web_chat_settings(environment: Mapping[str, str]) -> Dict[str, object]:
    """WIDGET_ORIGINS (space- or comma-separated) and, when set, SOCKETIO_JWT_KEY."""
    origins = (environment.get("WIDGET_ORIGINS") or DEFAULT_ORIGINS).replace(",", " ").split()
    for origin in origins:
        if origin == "*" or not origin.startswith(("http://", "https://")) or origin.endswith("/"):
            raise ChannelConfigError(f"WIDGET_ORIGINS: {origin!r} should be a page's origin such as "
                                     "https://www.example.com (scheme and host, no path, no '*')")
    settings: Dict[str, object] = {"cors_allowed_origins": origins}
    jwt_key = environment.get("SOCKETIO_JWT_KEY", "").strip()
    if jwt_key:
        if len(jwt_key) < 32:
            raise ChannelConfigError("SOCKETIO_JWT_KEY is too short: use at least 32 random characters")
        settings.update(jwt_key=jwt_key, jwt_method="HS256")
    return settings


# One secret for the channels' own keys (CHANNEL_SECRET_KEY; `make run` keeps a random one in
# var/channel-secret-key). Each channel gets a key derived for its purpose alone, so no key
# serves two purposes and the servers of a multi-server set-up derive the same ones.
SECRET_VARIABLE = "CHANNEL_SECRET_KEY"
TWILIO = "channels.secure.SecureTwilioInput"
# The REST channel, a developer's tool, is on only with its token (REST_CHANNEL_TOKEN;
# `make run` keeps a random one in var/rest-token in the embedded profile).
REST = "channels.web.GuardedRestInput"
REST_TOKEN_VARIABLE = "REST_CHANNEL_TOKEN"


def rest_settings(environment: Mapping[str, str]) -> Optional[Dict[str, str]]:
    """The REST channel's credentials, or None (left out) without REST_CHANNEL_TOKEN."""
    token = environment.get(REST_TOKEN_VARIABLE, "").strip()
    if not token:
        return None
    if len(token) < 32:
        raise ChannelConfigError(f"{REST_TOKEN_VARIABLE} is too short: use at least 32 random characters")
    return {"token": token}


def channel_key(secret: str, purpose: str) -> str:
    """The key for one purpose, derived from the channels' secret (HMAC-SHA256, hex)."""
    return hmac.new(secret.encode("utf-8"), f"clinic-assistant/{purpose}".encode(), hashlib.sha256).hexdigest()


def channel_secret(environment: Mapping[str, str]) -> str:
    secret = environment.get(SECRET_VARIABLE, "").strip()
    if len(secret) < 32:
        raise ChannelConfigError(f"{SECRET_VARIABLE} must be set to at least 32 random characters (make run "
                                 "creates one in var/channel-secret-key; a multi-server set-up gives every "
                                 "Rasa server the same one)")
    return secret


def build(environment: Mapping[str, str]) -> Tuple[dict, List[str]]:
    """(credentials, names of the messaging channels enabled)."""
    secret = channel_secret(environment)
    credentials = yaml.safe_load(BASE.read_text()) or {}
    credentials[WEB_CHAT] = {**(credentials.get(WEB_CHAT) or {}), **web_chat_settings(environment),
                             # signs the session tokens that tie a widget to its conversation
                             "session_key": channel_key(secret, "widget-session")}
    rest = rest_settings(environment)
    if rest is None:
        credentials.pop(REST, None)
    else:
        credentials[REST] = rest
    enabled = []
    for connector, (required, optional) in CHANNELS.items():
        present = {key: environment.get(var, "").strip() for key, var in required.items()}
        if not any(present.values()):
            continue
        missing = [required[key] for key, value in present.items() if not value]
        if missing:
            raise ChannelConfigError(f"{connector.rsplit('.', 1)[-1]}: set {', '.join(missing)} as well "
                                     "(or none of its settings to leave the channel off)")
        settings = dict(present)
        settings.update({key: environment[var].strip() for key, var in optional.items() if environment.get(var)})
        if connector == TWILIO:  # SMS/WhatsApp conversations are named by a keyed hash of the number
            settings["conversation_key"] = channel_key(secret, "sms-conversation-id")
        credentials[connector] = settings
        enabled.append(connector.rsplit(".", 1)[-1])
    return credentials, enabled


def main(argv: List[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else ROOT / "var" / "credentials.yml"
    try:
        credentials, enabled = build(os.environ)
    except ChannelConfigError as error:
        print(f"Messaging channel settings: {error}", file=sys.stderr)
        return 1
    target.parent.mkdir(parents=True, exist_ok=True)
    target.touch(mode=0o600, exist_ok=True)
    target.chmod(0o600)
    target.write_text(yaml.safe_dump(credentials, sort_keys=False))
    web_chat = credentials[WEB_CHAT]
    print("Channels: " + ("rest (with its token), " if REST in credentials else "")
          + "socketio" + "".join(f", {name}" for name in enabled)
          + f"; the widget may be used on {' '.join(web_chat['cors_allowed_origins'])}"
          + ("; it needs a signed token (SOCKETIO_JWT_KEY)" if web_chat.get("jwt_key") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
