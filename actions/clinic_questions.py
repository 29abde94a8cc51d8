"""Questions about the clinic: price, hours, address, insurance, gift cards, contact.

Every answer comes from clinic.yml. An empty setting means the clinic has not
stated it, and the visitor is pointed to a person instead: the assistant never
guesses a price or an opening time.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.clinic_settings import ClinicSettings, settings

# intent -> (setting in clinic.yml, how to introduce it, what we'd say we don't have)
CLINIC_QUESTIONS = {
    "ask_price": ("prices", "Prices", "prices"),
    "ask_hours": ("hours", "Opening hours", "the opening hours"),
    "ask_location": ("address", "You'll find us at", "the address"),
    "ask_insurance": ("insurance", "About insurance", "insurance details"),
    "ask_gift_cards": ("gift_cards", "Gift cards", "gift card details"),
}


def answer_for(intent: Text, clinic: ClinicSettings) -> Text:
    if intent == "ask_contact":
        return clinic.contact_line()
    setting, label, missing = CLINIC_QUESTIONS[intent]
    value = getattr(clinic, setting)
    if value:
        return f"{label}: {value}"
    return f"I don't have {missing} here, and I'd rather not guess. {clinic.contact_line()}"


class ActionAnswerClinicQuestion(Action):
    def name(self) -> Text:
        return "action_answer_clinic_question"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent not in CLINIC_QUESTIONS and intent != "ask_contact":
            intent = "ask_contact"
        dispatcher.utter_message(text=answer_for(intent, settings()))
        return []
