"""Hands a visitor over to the clinic's staff with the configured contacts."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.clinic_settings import settings


class ActionHandOverToStaff(Action):
    def name(self) -> Text:
        return "action_hand_over_to_staff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        clinic = settings()
        text = f"Of course, a person at {clinic.name} can help. {clinic.contact_line()}"
        if clinic.hours:
            text += f" Opening hours: {clinic.hours}."
        dispatcher.utter_message(text=text)
        return []
