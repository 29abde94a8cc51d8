"""When the action server can't be reached, the visitor hears so.

Rasa 3.6 logs a failed custom action and carries on without its events: the
visitor is left with no reply at all (or a booking form that silently stops).
Here a failed call to the action server first tells the visitor, once per
message, that something went wrong and how to reach the clinic (and, as every
health answer does, the emergency number), then fails as before, so the
conversation stays as it was and carries on once the action server is back.
A rejection by a form's validation (ActionExecutionRejection) is normal dialogue,
not a failure, and passes through untouched. Installed with the other Rasa
adjustments when Rasa loads the project's components (components/__init__.py).

A hung action server (alive, not answering) counts as failed after
ACTION_TIMEOUT_SECONDS instead of Rasa's 300 s, and within that message the
other custom actions are not called at all, so the visitor waits one timeout,
not one per action.
"""
from __future__ import annotations

import asyncio
import logging

import rasa.core.actions.action as rasa_actions
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.shared.exceptions import RasaException

logger = logging.getLogger(__name__)
_original_run = RemoteAction.run
# Marks the output channel of a message that already got the apology.
_APOLOGISED = "_clinic_apologised_for_action_server"
# Marks the output channel of a message during which the action server did not answer in time.
_TIMED_OUT = "_clinic_action_server_timed_out"
# How long the Rasa server waits for one custom action to answer (RemoteAction.run timed). Under
# the heaviest load the tests put on one server (tests/test_load_and_fuzz.py: 70 visitors at once,
# 1,099 custom-action calls, 2 cores), two runs: p50 0.94 / 1.01 s, p99 2.7 / 2.0 s, longest
# 2.95 / 2.04 s; idle, 0.003-0.02 s. Twice the longest, so a busy server is not taken for a hung
# one, and still seconds (the visitor's apology comes after about 7 s: aiohttp rounds it up).
ACTION_TIMEOUT_SECONDS = 6


def apology() -> str:
    try:
        from actions.clinic_settings import settings

        clinic = settings()
        contact, emergency = clinic.contact_line(), clinic.emergency_number
    except Exception:  # the apology must not fail too; settings are checked at start-up
        contact, emergency = "Please contact the clinic directly.", "911"
    return (f"Sorry, something went wrong on my side and I couldn't finish that. Please try again in a "
            f"few minutes. {contact} If this is an emergency, call {emergency} now.")


async def run_or_apologise(self: RemoteAction, output_channel, nlg, tracker, domain):
    if getattr(output_channel, _TIMED_OUT, False):
        raise RasaException(f"Custom action '{self.name()}' not called: the action server did not answer "
                            "earlier in this message")
    try:
        return await _original_run(self, output_channel, nlg, tracker, domain)
    except ActionExecutionRejection:
        raise
    except Exception as error:
        timed_out = isinstance(error, asyncio.TimeoutError)
        if output_channel is not None:
            if timed_out:
                setattr(output_channel, _TIMED_OUT, True)
            if not getattr(output_channel, _APOLOGISED, False):
                logger.error("Custom action '%s' failed%s: the visitor was told and given the clinic's contacts.",
                             self.name(), f" (no answer within {ACTION_TIMEOUT_SECONDS} s)" if timed_out else "")
                setattr(output_channel, _APOLOGISED, True)
                await output_channel.send_text_message(tracker.sender_id, apology())
        if timed_out:
            # As Rasa reports an action server it can't reach (its slot extraction expects this type).
            raise RasaException(f"Custom action '{self.name()}': no answer within {ACTION_TIMEOUT_SECONDS} s") \
                from error
        raise


def install() -> None:
    RemoteAction.run = run_or_apologise
    # RemoteAction.run passes this module constant to the endpoint's request() as its timeout
    # (aiohttp's total time for the call); Rasa 3.6 has no setting for it.
    rasa_actions.DEFAULT_REQUEST_TIMEOUT = ACTION_TIMEOUT_SECONDS
