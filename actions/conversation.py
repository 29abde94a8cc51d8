"""The greeting: what the assistant is, and what to do in an emergency."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.clinic_settings import settings


class ActionGreet(Action):
    def name(self) -> Text:
        return "action_greet"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        clinic = settings()
        dispatcher.utter_message(
            text=(
                f"Hi! I'm the virtual assistant of {clinic.name}. Ask me about sciatica, "
                "its causes and symptoms, and how massage and exercise can help.\n"
                "I share general information, not medical advice. In an emergency, "
                f"call {clinic.emergency_number} now."
            )
        )
        dispatcher.utter_message(response="utter_topics")
        return []
