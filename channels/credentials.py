"""Builds the credentials Rasa starts with: rest and socketio always, each
messaging channel when its settings are in the environment.

    python -m channels.credentials var/credentials.yml

Secrets stay in the environment; the file is written under var/ (not in git)
readable by its owner only. A channel with some of its settings but not all
stops start-up with the names of the missing ones, rather than being left off
without a word.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Dict, List, Mapping, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "credentials.yml"

# connector -> (required {credential: variable}, optional {credential: variable})
CHANNELS: Dict[str, Tuple[Dict[str, str], Dict[str, str]]] = {
    # Rasa's own Twilio and Telegram connectors accept unsigned requests: ours check (channels/secure.py).
    "channels.secure.SecureTwilioInput": (
        {"account_sid": "TWILIO_ACCOUNT_SID", "auth_token": "TWILIO_AUTH_TOKEN", "twilio_number": "TWILIO_NUMBER"},
        {"public_url": "TWILIO_WEBHOOK_URL"}),
    "channels.secure.SecureTelegramInput": (
        {"access_token": "TELEGRAM_TOKEN", "verify": "TELEGRAM_BOT_NAME", "webhook_url": "TELEGRAM_WEBHOOK_URL",
         "secret_token": "TELEGRAM_SECRET_TOKEN"}, {}),
    # Rasa's Messenger connector checks X-Hub-Signature with the app secret.
    "facebook": ({"verify": "FACEBOOK_VERIFY_TOKEN", "secret": "FACEBOOK_APP_SECRET",
                  "page-access-token": "FACEBOOK_PAGE_ACCESS_TOKEN"}, {}),
    # Rasa's Slack connector checks X-Slack-Signature with the signing secret.
    "slack": ({"slack_token": "SLACK_TOKEN", "slack_signing_secret": "SLACK_SIGNING_SECRET"},
              {"slack_channel": "SLACK_CHANNEL"}),
}


class ChannelConfigError(ValueError):
    pass


def build(environment: Mapping[str, str]) -> Tuple[dict, List[str]]:
    """(credentials, names of the messaging channels enabled)."""
    credentials = yaml.safe_load(BASE.read_text()) or {}
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
    print("Channels: rest, socketio" + "".join(f", {name}" for name in enabled))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
