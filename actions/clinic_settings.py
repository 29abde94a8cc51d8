"""Loads and checks clinic.yml, the one place clinic details live.

The assistant must never invent a phone number, price or opening hour, so every
such detail is read from here; an empty value means "not stated", and the
answer then points to staff instead. CLINIC_CONFIG can name another file
(tests use that).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Optional

import yaml

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
    # Where staff are told about emergency/urgent escalations (JSON POST).
    staff_webhook_url: str = ""

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

    known = {f.name for f in fields(ClinicSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ClinicConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = {}
    for key, value in raw.items():
        if value is None:
            value = ""
        if not isinstance(value, (str, int)):
            raise ClinicConfigError(f"{path}: '{key}' should be text, got {type(value).__name__}")
        values[key] = str(value).strip()
    missing = [key for key in REQUIRED if not values.get(key)]
    if missing:
        raise ClinicConfigError(f"{path}: required setting(s) missing or empty: {', '.join(missing)}")

    # Deployments can point the staff webhook elsewhere without editing the file.
    if os.environ.get("STAFF_WEBHOOK_URL"):
        values["staff_webhook_url"] = os.environ["STAFF_WEBHOOK_URL"].strip()
    checks = {"email": _EMAIL, "phone": _PHONE, "booking_page": _URL, "staff_webhook_url": _URL}
    for key, pattern in checks.items():
        if values.get(key) and not pattern.match(values[key]):
            raise ClinicConfigError(f"{path}: '{key}' does not look valid: {values[key]!r}")
    if not re.fullmatch(r"[0-9]{2,4}", values["emergency_number"]):
        raise ClinicConfigError(f"{path}: 'emergency_number' should be a short number such as 911")
    return ClinicSettings(**values)


@lru_cache(maxsize=1)
def settings() -> ClinicSettings:
    """The settings used by the running action server (read once)."""
    return load_settings()
