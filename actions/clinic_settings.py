"""Loads and checks clinic.yml, the one place clinic details live.

The assistant must never invent a phone number, price or opening hour, so every
such detail is read from here; an empty value means "not stated", and the
answer then points to staff instead. CLINIC_CONFIG can name another file
(tests use that).
"""
from __future__ import annotations

import logging
import os
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Optional, Tuple
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from actions.outbox import Destination

logger = logging.getLogger(__name__)
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "clinic.yml"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{6,}$")
_URL = re.compile(r"^https?://[^\s]+$")


class ClinicConfigError(ValueError):
    """clinic.yml is missing, unreadable, or holds a malformed value."""


@dataclass(frozen=True)
class ClinicSettings:
    name: str
    city: str
    time_zone: str
    emergency_number: str
    phone: str = ""
    email: str = ""
    booking_page: str = ""
    hours: str = ""
    address: str = ""
    prices: str = ""
    insurance: str = ""
    gift_cards: str = ""
    # Session lengths (minutes) the booking form offers; empty: it doesn't ask.
    session_lengths: Tuple[int, ...] = ()
    # Conversations with no message for this many days are deleted by `make forget-old`.
    keep_conversations_days: int = 90
    # Where booking requests go (the booking system's webhook, signed JSON POST).
    booking_webhook_url: str = ""
    # Where staff hear about escalations and hand-overs (signed JSON POST).
    staff_webhook_url: str = ""
    # Shared secrets for signing, from the environment only (never in clinic.yml).
    booking_webhook_secret: str = field(default="", repr=False)
    staff_webhook_secret: str = field(default="", repr=False)

    def webhook_for(self, kind: str) -> Optional[Destination]:
        """Where an outbox item of this kind is sent; None if not configured."""
        if kind == "booking_request":
            url, secret = self.booking_webhook_url, self.booking_webhook_secret
        else:
            url, secret = self.staff_webhook_url, self.staff_webhook_secret
        return Destination(url, secret) if url else None

    def contact_line(self) -> str:
        """How to reach a person, from whatever is configured."""
        ways = []
        if self.phone:
            ways.append(f"call {self.phone}")
        if self.email:
            ways.append(f"e-mail {self.email}")
        if not ways:
            return f"Please contact {self.name} directly and a member of staff will help."
        return f"You can {' or '.join(ways)} and a member of staff will help."


REQUIRED = ("name", "city", "time_zone", "emergency_number")
# Settings that only ever come from the environment, and the settings the
# environment may override (so a deployment needs no edit of the file).
FROM_ENVIRONMENT = {"booking_webhook_secret": "BOOKING_WEBHOOK_SECRET",
                    "staff_webhook_secret": "STAFF_WEBHOOK_SECRET"}
OVERRIDES = {"booking_webhook_url": "BOOKING_WEBHOOK_URL", "staff_webhook_url": "STAFF_WEBHOOK_URL"}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def _check_webhook(path: Path, key: str, url: str, secret_variable: str, secret: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ClinicConfigError(f"{path}: '{key}' does not look like a web address: {url!r}")
    # Visitors' names and phone numbers travel in these requests: HTTPS only,
    # except to this machine (a local receiver during development and tests).
    if parsed.scheme != "https" and parsed.hostname not in LOCAL_HOSTS:
        raise ClinicConfigError(f"{path}: '{key}' must use https:// (got {url!r})")
    if not secret:
        raise ClinicConfigError(
            f"{key} is set but the environment variable {secret_variable} is empty: set it to the "
            f"shared secret the receiver uses to check the signature (never put it in {path.name})")
    if len(secret) < 16:
        raise ClinicConfigError(f"{secret_variable} is too short: use at least 16 random characters")


def _session_lengths(path: Path, raw) -> Tuple[int, ...]:
    if raw in (None, "", []):
        return ()
    if not isinstance(raw, list) or not all(isinstance(m, int) and not isinstance(m, bool) for m in raw):
        raise ClinicConfigError(f"{path}: 'session_lengths' should be a list of minutes, such as [60, 90]")
    if any(not 15 <= m <= 240 for m in raw):
        raise ClinicConfigError(f"{path}: 'session_lengths' should be between 15 and 240 minutes each")
    return tuple(raw)


def _days(path: Path, raw) -> int:
    if raw in (None, ""):
        return ClinicSettings.keep_conversations_days
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= 3650:
        raise ClinicConfigError(f"{path}: 'keep_conversations_days' should be a number of days, such as 90")
    return raw


def load_settings(path: Optional[Path] = None) -> ClinicSettings:
    path = Path(path or os.environ.get("CLINIC_CONFIG") or DEFAULT_PATH)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClinicConfigError(f"Clinic settings file not found: {path}") from None
    except yaml.YAMLError as error:
        raise ClinicConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ClinicConfigError(f"{path} should be a list of 'setting: value' lines")

    known = {f.name for f in fields(ClinicSettings)} - set(FROM_ENVIRONMENT)
    secrets_in_file = sorted(set(raw) & set(FROM_ENVIRONMENT))
    if secrets_in_file:
        raise ClinicConfigError(
            f"{path}: remove {', '.join(secrets_in_file)}; secrets come from the environment "
            f"({', '.join(FROM_ENVIRONMENT[k] for k in secrets_in_file)})")
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ClinicConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = {"session_lengths": _session_lengths(path, raw.pop("session_lengths", None)),
              "keep_conversations_days": _days(path, raw.pop("keep_conversations_days", None))}
    for key, value in raw.items():
        if value is None:
            value = ""
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ClinicConfigError(f"{path}: '{key}' should be text, got {type(value).__name__}")
        values[key] = str(value).strip()
    missing = [key for key in REQUIRED if not values.get(key)]
    if missing:
        raise ClinicConfigError(f"{path}: required setting(s) missing or empty: {', '.join(missing)}")

    for key, variable in OVERRIDES.items():
        if os.environ.get(variable):
            values[key] = os.environ[variable].strip()
    for key, variable in FROM_ENVIRONMENT.items():
        values[key] = os.environ.get(variable, "").strip()

    checks = {"email": _EMAIL, "phone": _PHONE, "booking_page": _URL}
    for key, pattern in checks.items():
        if values.get(key) and not pattern.match(values[key]):
            raise ClinicConfigError(f"{path}: '{key}' does not look valid: {values[key]!r}")
    for key, secret_key in (("booking_webhook_url", "booking_webhook_secret"),
                            ("staff_webhook_url", "staff_webhook_secret")):
        if values.get(key):
            _check_webhook(path, key, values[key], FROM_ENVIRONMENT[secret_key], values[secret_key])
    if not re.fullmatch(r"[0-9]{2,4}", values["emergency_number"]):
        raise ClinicConfigError(f"{path}: 'emergency_number' should be a short number such as 911")
    try:
        ZoneInfo(values["time_zone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ClinicConfigError(
            f"{path}: 'time_zone' {values['time_zone']!r} is not a known time zone; "
            "use a name such as America/New_York") from None
    return ClinicSettings(**values)


class _LiveSettings:
    """The settings the running action server uses. Re-read when clinic.yml
    changes (staff edit it and run `make reload`, no restart); an edit that
    breaks the file is logged and the last good settings stay in use, so a
    typo never takes the assistant down."""

    def __init__(self) -> None:
        self._loaded: Optional[ClinicSettings] = None
        self._stamp: Optional[Tuple[str, int, int]] = None

    def __call__(self) -> ClinicSettings:
        path = Path(os.environ.get("CLINIC_CONFIG") or DEFAULT_PATH)
        try:
            status = path.stat()
            stamp = (str(path), status.st_mtime_ns, status.st_size)
        except OSError:
            stamp = (str(path), -1, -1)
        if self._loaded is None or stamp != self._stamp:
            try:
                self._loaded = load_settings(path)
            except ClinicConfigError as error:
                if self._loaded is None:
                    raise
                logger.error("Clinic settings not reloaded, still using the previous ones: %s", error)
            self._stamp = stamp
        return self._loaded

    def cache_clear(self) -> None:
        self._loaded = self._stamp = None


settings = _LiveSettings()


def main() -> int:
    """`python -m actions.clinic_settings`: checks the settings, as start-up does."""
    try:
        clinic = load_settings()
    except ClinicConfigError as error:
        print(f"Clinic settings problem: {error}", file=sys.stderr)
        return 1
    print(f"Clinic settings OK: {clinic.name}, time zone {clinic.time_zone}, emergency number "
          f"{clinic.emergency_number}; booking webhook: {clinic.booking_webhook_url or 'not set (requests wait in the outbox)'}; "
          f"staff webhook: {clinic.staff_webhook_url or 'not set (notifications wait in the outbox)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
