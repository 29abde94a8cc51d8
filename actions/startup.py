"""Checks clinic.yml (and the webhook secrets) when the action server starts.

The action server imports every module of this package, so a missing or
malformed setting stops it at once with a clear message, not mid-conversation.
(`make run` runs the same check before starting anything.)
"""
import sys

from actions.clinic_settings import ClinicConfigError, settings

try:
    settings()
except ClinicConfigError as error:
    print(f"Clinic settings problem: {error}", file=sys.stderr)
    raise SystemExit(1) from None
