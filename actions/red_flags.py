"""Escalating red-flag symptoms (see spacy_pipeline/red_flags.yml).

The NLU's red-flag detector marks the message with `red_flag_tier`; this action
says what to do, first and in plain words, stops any form in progress, keeps
the most serious tier in the conversation (so a later booking request is met
with the same advice), and tells staff about emergency and urgent ones, naming
the booking requests this conversation already sent, so staff can hold them.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.clinic_settings import ClinicSettings, settings
from actions.faq_answer import answers as faq_answers
from actions.outbox import Outbox
from actions.staff_notifications import notify_staff

logger = logging.getLogger(__name__)

SEVERITY = ["emergency", "urgent", "unclear", "see_doctor"]  # most serious first
NOTIFY_STAFF = {"emergency", "urgent"}


def more_serious(a: Optional[str], b: Optional[str]) -> Optional[str]:
    known = [t for t in (a, b) if t in SEVERITY]
    return min(known, key=SEVERITY.index) if known else None


# Tier "unclear": the learned layer (or the intent classifier) suspects a red flag the patterns did
# not find. A guess must not tell anyone they have an emergency, and must not let one pass: so the
# visitor is asked, with the signs named and the emergency number, and a "yes" escalates.
SAFETY_CHECK = (
    "Before I answer, a quick safety check. Do you have any of these right now: numbness around your "
    "groin, bottom or inner thighs; new trouble controlling your bladder or bowels; weakness or numbness "
    "in both legs; chest pain or trouble breathing; a drooping face, a weak arm or slurred speech; or pain "
    "after a serious fall or crash? If yes, please call {number} now or go to the nearest emergency "
    "department. For other new or worrying symptoms, please see a doctor before any massage."
)
SAFETY_CHECK_YES = "Yes, one of these"
SAFETY_CHECK_NO = "No, none of these"


def advice(tier: str, clinic: ClinicSettings) -> Text:
    number = clinic.emergency_number
    if tier == "emergency":
        return (
            f"Please call {number} now, or go to the nearest emergency department. "
            "What you describe can be a sign of a serious problem that needs a doctor straight away. "
            "Please don't wait, and don't book a massage for this."
        )
    if tier == "urgent":
        return (
            "Please contact a doctor today (or an urgent care centre) before having any massage. "
            "What you describe needs a doctor's check first, and we can't book a massage until a doctor "
            f"has said it's safe. If it suddenly gets worse, call {number}."
        )
    if tier == "unclear":
        return SAFETY_CHECK.format(number=number)
    return (
        "That's worth showing a doctor. Pain that lasts more than a few weeks, keeps getting worse, or "
        "comes with numbness or weakness should be checked so the cause is found. Massage can still "
        "help alongside medical care, and you're welcome to book a session."
    )


def faq_answers_beside_the_flag(parse_data: Dict[Text, Any], min_confidence: float = 0.6) -> List[Text]:
    """The FAQ responses the message would have had without the red-flag mark: those the FAQ gate
    let through (it judged the message as an FAQ before the mark), else the selector's choice if
    confident."""
    if parse_data.get("faq_certainty") in ("sure", "tentative"):
        return [f"utter_{key}" for key in faq_answers(parse_data)]
    ranking = [r for r in parse_data.get("intent_ranking") or [] if r.get("name") != "report_red_flag"]
    if not ranking or ranking[0].get("name") != "faq" or ranking[0].get("confidence", 0) < 0.5:
        return []
    selected = ((parse_data.get("response_selector") or {}).get("faq") or {}).get("response") or {}
    if selected.get("confidence", 0) < min_confidence or not selected.get("utter_action"):
        return []
    return [selected["utter_action"]]


def confident_faq_answer(parse_data: Dict[Text, Any]) -> Optional[Text]:
    """The first of those answers, if any."""
    return next(iter(faq_answers_beside_the_flag(parse_data)), None)


def escalation_notice(tier: str, clinic: ClinicSettings) -> Text:
    """What a booking request gets after an emergency or urgent sign."""
    if tier == "emergency":
        return "I can't book a massage after what you told me. " + advice("emergency", clinic)
    return (
        "Before we book a massage, please have a doctor check the symptoms you mentioned; "
        "once a doctor has cleared it, we'd be glad to see you. " + clinic.contact_line()
    )


async def escalate(dispatcher: CollectingDispatcher, tracker: Tracker, tier: str,
             clinic: ClinicSettings) -> List[Dict[Text, Any]]:
    """Says what to do for this tier, tells staff if needed; returns the events.

    Used for a red flag typed anywhere and for a "yes" to the booking form's
    safety questions."""
    buttons = []
    if tier == "unclear":
        buttons = [{"title": SAFETY_CHECK_YES, "payload": SAFETY_CHECK_YES},
                   {"title": SAFETY_CHECK_NO, "payload": SAFETY_CHECK_NO}]
    elif tier == "see_doctor":
        buttons = [
            {"title": "When to see a doctor", "payload": "When should I see a doctor about sciatica?"},
            {"title": "Book a session", "payload": "I'd like to book a massage"},
        ]
    dispatcher.utter_message(text=advice(tier, clinic), buttons=buttons or None,
                             json_message={"red_flag_tier": tier} if tier != "see_doctor" else None)
    if tier in NOTIFY_STAFF:
        # Only the tier, the time, the conversation id and the ids of the booking requests
        # it sent earlier (a massage booked before this sign): never the visitor's words.
        earlier = await asyncio.to_thread(lambda: Outbox().booking_requests_of(tracker.sender_id))
        await notify_staff("red_flag_escalation", {
            "tier": tier, "conversation_id": tracker.sender_id, "clinic": clinic.name,
            "earlier_booking_requests": earlier})
        if not clinic.staff_webhook_url:
            logger.info("No staff webhook configured; the %s escalation waits in the outbox", tier)
    return [SlotSet("red_flag_tier", more_serious(tracker.get_slot("red_flag_tier"), tier))]


class ActionEscalateRedFlag(Action):
    def name(self) -> Text:
        return "action_escalate_red_flag"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        clinic = settings()
        tiers = [e.get("value") for e in tracker.latest_message.get("entities", []) if e.get("entity") == "red_flag_tier"]
        tier = None
        for found in tiers:
            tier = more_serious(tier, found)
        tier = tier or "unclear"

        if tier == "see_doctor":
            # The visitor also asked something we can answer: answer it, then the note.
            for answer in faq_answers_beside_the_flag(tracker.latest_message):
                dispatcher.utter_message(response=answer)
        events = await escalate(dispatcher, tracker, tier, clinic)
        if tier == "unclear":
            # After a "no": the question the message also asked, if we know it, and the tier as it was
            # (a suspicion the visitor ruled out must not block booking).
            events += [SlotSet("safety_check", {"answer": confident_faq_answer(tracker.latest_message),
                                                "tier_before": tracker.get_slot("red_flag_tier")})]
        if tracker.active_loop.get("name"):
            # Any red flag stops the form in progress; what was filled in is kept,
            # so after a see-a-doctor note "book a session" carries on from there.
            events += [ActiveLoop(None), SlotSet("requested_slot", None)]
        return events


def safety_check_was_last_said(tracker: Tracker) -> bool:
    """True when the assistant's last message before this one was the safety check (a "yes" later,
    to something else, must not count as a yes to it)."""
    users = 0
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            users += 1
            if users > 1:
                return False
        elif event.get("event") == "bot" and users == 1:
            return (event.get("text") or "").startswith(SAFETY_CHECK.split(".")[0])
    return False


class ActionAnswerSafetyCheck(Action):
    """A yes or a no: to the safety check just asked, or out of the blue."""

    def name(self) -> Text:
        return "action_answer_safety_check"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        check = tracker.get_slot("safety_check")
        said_yes = (tracker.latest_message.get("intent") or {}).get("name") == "affirm"
        if not isinstance(check, dict) or not safety_check_was_last_said(tracker):
            dispatcher.utter_message(response="utter_yes_no_without_question")
            return []
        events: List[Dict[Text, Any]] = [SlotSet("safety_check", None)]
        if said_yes:
            return events + await escalate(dispatcher, tracker, "emergency", settings())
        events.append(SlotSet("red_flag_tier", check.get("tier_before")))
        dispatcher.utter_message(text="Thank you for checking. If any of those signs appear later, please call "
                                      f"{settings().emergency_number} straight away.")
        if check.get("answer"):
            dispatcher.utter_message(response=check["answer"])
        else:
            dispatcher.utter_message(response="utter_what_next")
        return events
