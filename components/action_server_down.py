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
"""
from __future__ import annotations

import logging

from rasa.core.actions.action import ActionExecutionRejection, RemoteAction

logger = logging.getLogger(__name__)
_original_run = RemoteAction.run
# Marks the output channel of a message that already got the apology.
_APOLOGISED = "_clinic_apologised_for_action_server"


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
    try:
        return await _original_run(self, output_channel, nlg, tracker, domain)
    except ActionExecutionRejection:
        raise
    except Exception:
        if output_channel is not None and not getattr(output_channel, _APOLOGISED, False):
            logger.error("Custom action '%s' failed: the visitor was told and given the clinic's contacts.",
                         self.name())
            setattr(output_channel, _APOLOGISED, True)
            await output_channel.send_text_message(tracker.sender_id, apology())
        raise


def install() -> None:
    RemoteAction.run = run_or_apologise
