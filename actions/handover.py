"""Hands a visitor over to the clinic's staff.

The visitor gets the configured phone, e-mail and hours; if a staff webhook is
configured, staff also get a hand-over event (conversation id, channel, why)
so a person can pick the conversation up. Asked for ("talk to a person",
"call me back") or after two misunderstood messages in a row (fallback.py).
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.clinic_settings import ClinicSettings, settings
from actions.staff_notifications import notify_staff


async def hand_over(dispatcher: CollectingDispatcher, tracker: Tracker, clinic: ClinicSettings, reason: str,
              opening: str) -> None:
    text = f"{opening} {clinic.contact_line()}"
    if clinic.hours:
        text += f" Opening hours: {clinic.hours}."
    if clinic.staff_webhook_url:
        await notify_staff("handover", {"conversation_id": tracker.sender_id, "reason": reason,
                                  "channel": tracker.get_latest_input_channel(), "clinic": clinic.name})
        text += " I've also let the team know, so someone can pick up this conversation."
    dispatcher.utter_message(text=text)


class ActionHandOverToStaff(Action):
    def name(self) -> Text:
        return "action_hand_over_to_staff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        clinic = settings()
        await hand_over(dispatcher, tracker, clinic, "asked_for_a_person", f"Of course, a person at {clinic.name} can help.")
        return []
