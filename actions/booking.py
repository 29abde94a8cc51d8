"""The booking form: one question at a time, then a request the clinic confirms.

Flow (domain.yml `booking_form`, rules in data/booking.yml):
    technique -> length (if clinic.yml lists lengths) -> preferred day/time ->
    name -> phone or e-mail -> two safety questions (emergency, urgent signs,
    from ../shared/red-flags.md) -> notes for the therapist -> summary and consent.

Every answer goes through `read_answer`, which decides what a message means
for the form: the answer to the question asked, a correction of an earlier
answer ("actually make it Friday"), a cancel ("never mind"), or something else
(an FAQ, a price question, a red flag) that the assistant handles before the
form asks its question again. The form ends early on a cancel or a "yes" to a
safety question; `action_finish_booking` then says what happens next.

The request goes to the outbox (actions/outbox.py) before it is sent, so it
survives the booking system being down. The assistant never says a slot is
booked unless the booking system's answer says so.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from datetime import datetime
from typing import Any, Dict, List, Optional, Text
from zoneinfo import ZoneInfo

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet

from actions import booking_parsers as parse
from actions.clinic_settings import ClinicSettings, settings
from actions.outbox import Outbox, send_soon
from actions.red_flags import escalate, escalation_notice

logger = logging.getLogger(__name__)

FORM = "booking_form"
# The questions, in the order they are asked.
QUESTIONS = ["booking_technique", "booking_length", "booking_time", "booking_name", "booking_contact",
             "screen_emergency", "screen_urgent", "screen_notes", "booking_consent"]
# Filled along the way, not asked.
EXTRA_SLOTS = ["booking_note", "booking_cancelled"]
YES_NO_QUESTIONS = {"screen_emergency", "screen_urgent", "booking_consent"}
# How long action_finish_booking waits for the booking system's answer before telling the visitor
# the request is saved: well inside the Rasa server's 6 s for the whole action
# (components/action_server_down.py), which under load also takes up to ~2.3 s of its own.
OWN_DELIVERY_WAIT_SECONDS = 2.0

# Messages the assistant handles itself before asking the form's question again
# (each has a rule in data/booking.yml that goes back to the form).
INTERRUPTIONS = {"faq", "request_human", "ask_price", "ask_hours", "ask_location", "ask_insurance",
                 "ask_contact", "ask_gift_cards", "ask_help", "ask_medical_advice", "bot_challenge"}
INTERRUPTION_CONFIDENCE = 0.5

_CANCEL = re.compile(
    r"^\W*(never ?mind|nvm|cancel|forget (it|about it|that)|stop|quit|exit|abort|scrap (it|that)|"
    r"(i )?changed my mind|i'?ve changed my mind|don'?t book|leave it|no,? (thanks|thank you),? (not now|i'?ll pass))\b",
    re.I)
# A side question or request reads like one; "my email is sam at gmail" is a
# (bad) answer even when the NLU calls it a contact question.
_ASIDE = re.compile(
    r"\?\s*$|^\W*(what|what's|whats|how|why|when|where|which|who|can|could|do|does|did|is|are|am|will|would|"
    r"should|shall|may|tell me|i want to (know|talk|speak)|i'?d like to (know|talk|speak)|talk|speak|show|"
    r"help|menu|options|topics|human|person|agent|let me (talk|speak)|get me|connect me|call me)\b", re.I)
_CORRECTION = re.compile(
    r"\b(actually|change|changed|instead|correction|wrong|mistake|typo|sorry|oops|make it|rather|switch|"
    r"update|edit|fix|i meant|meant to say|not\b.*\bbut)\b", re.I)
_FIELD_WORDS = {
    "booking_technique": r"\b(technique|type of massage|kind of massage|massage type|service|treatment)\b",
    "booking_length": r"\b(length|duration|how long|minutes?|mins?|hours?)\b",
    "booking_time": r"\b(day|date|time|when|slot)\b",
    "booking_name": r"\bname\b",
    "booking_contact": r"\b(phone|number|e-?mail|contact|mobile|cell)\b",
}
NOTES = {
    "pregnant": (r"\b(pregnan\w*|expecting( a baby)?|prenatal|weeks along|trimester)\b",
                 "Pregnant: book a therapist trained in pregnancy massage; a high-risk pregnancy needs a "
                 "doctor's clearance first."),
    "blood_thinners_or_bleeding_disorder": (
        r"\b(blood[- ]?thinn\w*|anticoagulant\w*|warfarin|coumadin|eliquis|apixaban|xarelto|rivaroxaban|"
        r"heparin|clopidogrel|plavix|bleeding (disorder|problem)|ha?emophilia|bruise easily|thin blood)\b",
        "Blood thinners or a bleeding disorder: avoid deep pressure."),
    "recent_surgery_or_fracture": (
        r"\b(surgery|operation|operated|fractur\w*|broke|broken|cast)\b",
        "Surgery or a fracture mentioned: check it was more than six weeks ago and work around the area."),
    "contagious_illness_or_skin_infection": (
        r"\b(flu|cold|covid|contagious|infection|infected|rash|shingles|cellulitis|sick|virus|cough\w*|"
        r"skin condition)\b",
        "Illness or skin infection mentioned: the session may need to wait until it has cleared."),
}
NOTE_ACK = {
    "pregnant": "I'll note that you're pregnant so the clinic can book a therapist trained in pregnancy "
                "massage. If your pregnancy is high-risk, please get your doctor's OK first.",
    "blood_thinners_or_bleeding_disorder": "I'll note the blood thinners / bleeding disorder: your therapist "
                                           "will avoid deep pressure.",
    "recent_surgery_or_fracture": "I'll pass on the surgery or fracture so your therapist can plan around it "
                                  "(if it was in the last six weeks, staff may suggest waiting).",
    "contagious_illness_or_skin_infection": "Thanks for saying. If you're unwell or have a skin infection, "
                                            "staff may suggest moving the session until it has cleared.",
}


def clinic_now(clinic: ClinicSettings) -> datetime:
    """Now, in the clinic's time zone (tests replace this)."""
    return datetime.now(ZoneInfo(clinic.time_zone))


def questions_for(clinic: ClinicSettings) -> List[str]:
    return [q for q in QUESTIONS if q != "booking_length" or clinic.session_lengths]


def _has_value(slot: str, text: str, clinic: ClinicSettings, strict: bool = False) -> bool:
    """Does the text hold a clear answer to this question?

    strict: only a concrete value (a named technique, a number of minutes, a day
    or time), not "not sure" or "any time", which say little outside the question."""
    if slot == "booking_technique":
        technique = parse.parse_technique(text)
        return technique is not None and not (strict and technique == parse.NOT_SURE)
    if slot == "booking_length":
        minutes = parse.parse_length(text, clinic.session_lengths)
        return minutes is not None and not (strict and minutes == 0)
    if slot == "booking_time":
        when = parse.parse_preferred_time(text, clinic_now(clinic))
        return when is not None and not (strict and not (when.date or when.time or when.part_of_day))
    if slot == "booking_contact":
        return parse.parse_contact(text) is not None
    if slot in YES_NO_QUESTIONS:
        return parse.parse_yes_no(text) is not None
    if slot == "screen_notes":
        return parse.parse_yes_no(text) is False or any(re.search(p, text, re.I) for p, _ in NOTES.values())
    return False  # a name has no shape to recognise


def _correction(text: str, requested: Optional[str], filled: Dict[str, Any],
                clinic: ClinicSettings) -> Dict[str, Any]:
    """'actually make it Friday', 'change my number to ...': the earlier answer to redo."""
    if not _CORRECTION.search(text):
        return {}
    for slot, words in _FIELD_WORDS.items():
        if slot == requested or filled.get(slot) is None or slot not in questions_for(clinic):
            continue
        named = re.search(words, text, re.I)
        if slot == "booking_name":
            after = re.split(r"\bname\b(?:\s+(?:is|to|should be|was))?\s*:?\s*", text, maxsplit=1, flags=re.I)
            value = parse.parse_name(after[1]) if named and len(after) > 1 and after[1] else None
            if named:
                return {slot: value}
            continue
        has_value = _has_value(slot, text, clinic, strict=True)
        if named or has_value:
            # With a new value it is taken now; without one the question is asked again.
            return {slot: text if has_value else None}
    return {}


def read_answer(latest_message: Dict[str, Any], requested: str, filled: Dict[str, Any],
                clinic: ClinicSettings) -> Dict[str, Any]:
    """What this message means for the form, as slot updates; {} means "not for the form".

    The value is the visitor's text: each validate_<slot> parses and checks it."""
    text = (latest_message.get("text") or "").strip()
    intent = latest_message.get("intent") or {}
    name, confidence = intent.get("name"), intent.get("confidence") or 0.0
    if name == "report_red_flag" or not text:
        return {}  # the escalation rule handles it, and stops the form
    if _CANCEL.search(text):
        return {"booking_cancelled": True}
    correction = _correction(text, requested, filled, clinic)
    if correction:
        return correction
    if _has_value(requested, text, clinic):
        return {requested: text}
    if name in INTERRUPTIONS and confidence >= INTERRUPTION_CONFIDENCE and _ASIDE.search(text):
        return {}
    if name == "cancel_booking" and confidence >= INTERRUPTION_CONFIDENCE:
        # A name the NLU happens to read as "cancel" is still a name; a note only
        # cancels when the NLU is sure (the "never mind" words above always do).
        if requested == "booking_name" and parse.parse_name(text):
            return {requested: text}
        if requested != "screen_notes" or confidence >= 0.8:
            return {"booking_cancelled": True}
    return {requested: text}


def booking_is_blocked(tracker: Tracker) -> bool:
    """No booking after an emergency/urgent sign (earlier, or in the safety questions) or a cancel."""
    return bool(
        tracker.get_slot("booking_cancelled")
        or tracker.get_slot("screen_emergency") is True
        or tracker.get_slot("screen_urgent") is True
        or tracker.get_slot("red_flag_tier") in ("emergency", "urgent", "unclear")
    )


class ValidateBookingForm(FormValidationAction):
    """Extracts (via read_answer) and checks every answer of the booking form."""

    def name(self) -> Text:
        return "validate_booking_form"

    async def required_slots(self, domain_slots, dispatcher, tracker, domain) -> List[Text]:
        if booking_is_blocked(tracker):
            return []  # the form ends; action_finish_booking says why
        return questions_for(settings())

    async def get_extraction_events(self, dispatcher, tracker, domain) -> List[Dict[Text, Any]]:
        requested = tracker.get_slot("requested_slot")
        clinic = settings()
        if requested:
            updates = read_answer(tracker.latest_message, requested, tracker.slots, clinic)
        else:
            # Activation ("book me a deep tissue massage on Saturday"): take what the
            # message clearly holds, without asking anything of it.
            text = tracker.latest_message.get("text") or ""
            updates = {slot: text for slot in ("booking_technique", "booking_time")
                       if tracker.get_slot(slot) is None and _has_value(slot, text, clinic, strict=True)}
        tracker.slots.update(updates)
        return [SlotSet(slot, value) for slot, value in updates.items()]

    async def get_validation_events(self, dispatcher, tracker, domain) -> List[Dict[Text, Any]]:
        events = await super().get_validation_events(dispatcher, tracker, domain)
        # The SDK only returns slots it validated; a cancel must reach the form too.
        changed = tracker.slots_to_validate()
        returned = {event.get("name") for event in events}
        return events + [SlotSet(slot, changed[slot]) for slot in EXTRA_SLOTS
                         if slot in changed and slot not in returned]

    # -- one validate_<slot> per question: parse the text, or say what's wrong and re-ask --

    def validate_booking_technique(self, value, dispatcher, tracker, domain):
        if value is None:
            return {"booking_technique": None}
        technique = parse.parse_technique(str(value))
        if technique is None:
            dispatcher.utter_message(response="utter_booking_technique_not_understood")
        return {"booking_technique": technique}

    def validate_booking_length(self, value, dispatcher, tracker, domain):
        if value is None:
            return {"booking_length": None}
        if isinstance(value, int):
            return {"booking_length": value}
        lengths = settings().session_lengths
        minutes = parse.parse_length(str(value), lengths)
        if minutes is None:
            offered = " or ".join(f"{m} minutes" for m in lengths)
            dispatcher.utter_message(text=f"Sorry, I didn't catch that. Sessions here are {offered}; "
                                          "or say \"not sure\" and the therapist can advise.")
        return {"booking_length": minutes}

    def validate_booking_time(self, value, dispatcher, tracker, domain):
        if value is None or isinstance(value, dict):
            return {"booking_time": value}
        clinic = settings()
        when = parse.parse_preferred_time(str(value), clinic_now(clinic))
        if when is None:
            dispatcher.utter_message(response="utter_booking_time_not_understood")
            return {"booking_time": None}
        if when.past:
            dispatcher.utter_message(text="That time has already passed. What day and time from now on would suit you?")
            return {"booking_time": None}
        return {"booking_time": {
            "text": when.text, "understood": when.describe(),
            "date": when.date.isoformat() if when.date else None,
            "time": when.time.strftime("%H:%M") if when.time else None,
            "part_of_day": when.part_of_day, "flexible": when.flexible, "time_zone": clinic.time_zone,
        }}

    def validate_booking_name(self, value, dispatcher, tracker, domain):
        if value is None:
            return {"booking_name": None}
        name = parse.parse_name(str(value))
        if name is None:
            dispatcher.utter_message(response="utter_booking_name_not_understood")
        return {"booking_name": name}

    def validate_booking_contact(self, value, dispatcher, tracker, domain):
        if value is None or isinstance(value, dict):
            return {"booking_contact": value}
        contact = parse.parse_contact(str(value))
        if contact is None:
            dispatcher.utter_message(response="utter_booking_contact_not_understood")
        return {"booking_contact": contact}

    def _yes_no(self, slot, value, dispatcher):
        if value is None or isinstance(value, bool):
            return {slot: value}
        answer = parse.parse_yes_no(str(value))
        if answer is None:
            dispatcher.utter_message(response=f"utter_{slot}_needs_yes_or_no")
        return {slot: answer}

    def validate_screen_emergency(self, value, dispatcher, tracker, domain):
        return self._yes_no("screen_emergency", value, dispatcher)

    def validate_screen_urgent(self, value, dispatcher, tracker, domain):
        return self._yes_no("screen_urgent", value, dispatcher)

    def validate_booking_consent(self, value, dispatcher, tracker, domain):
        return self._yes_no("booking_consent", value, dispatcher)

    def validate_screen_notes(self, value, dispatcher, tracker, domain):
        if value is None or isinstance(value, list):
            return {"screen_notes": value}
        text = str(value).strip()
        found = [code for code, (pattern, _) in NOTES.items() if re.search(pattern, text, re.I)]
        for code in found:
            dispatcher.utter_message(text=NOTE_ACK[code])
        said_no = parse.parse_yes_no(text) is False or re.fullmatch(r"\W*(none( of (these|them|those))?|nothing( else)?)\W*", text, re.I)
        note = None if (said_no and not found) else text
        return {"screen_notes": found, "booking_note": note}


class ActionAskBookingLength(Action):
    """The session lengths come from clinic.yml, so the question is built here."""

    def name(self) -> Text:
        return "action_ask_booking_length"

    async def run(self, dispatcher, tracker, domain):
        lengths = settings().session_lengths
        buttons = [{"title": f"{m} minutes", "payload": f"{m} minutes"} for m in lengths]
        buttons.append({"title": "Not sure, the therapist can advise", "payload": "Not sure, the therapist can advise"})
        dispatcher.utter_message(text="How long would you like the session to be?", buttons=buttons)
        return []


def summary(tracker: Tracker) -> Text:
    technique = tracker.get_slot("booking_technique")
    length = tracker.get_slot("booking_length")
    when = tracker.get_slot("booking_time") or {}
    contact = tracker.get_slot("booking_contact") or {}
    what = "a massage (the therapist can advise on the technique)" if technique in (None, parse.NOT_SURE) \
        else f"a {technique} massage"
    if length:
        what += f", {length} minutes"
    reach = " or ".join(v for v in (contact.get("phone"), contact.get("email")) if v)
    return (f"Here's your request: {what}; preferred time: {when.get('understood') or when.get('text')}; "
            f"name: {tracker.get_slot('booking_name')}; contact: {reach}.")


class ActionAskBookingConsent(Action):
    """Reads the request back and asks to send it (and to be contacted)."""

    def name(self) -> Text:
        return "action_ask_booking_consent"

    async def run(self, dispatcher, tracker, domain):
        clinic = settings()
        dispatcher.utter_message(
            text=f"{summary(tracker)}\nMay {clinic.name} contact you about it? Staff will confirm the "
                 "time with you; nothing is booked until they do.",
            buttons=[
                {"title": "Yes, send my request", "payload": "Yes, send my request"},
                {"title": "Change the day or time", "payload": "I want to change the day and time"},
                {"title": "Change my contact details", "payload": "I want to change my phone number or email"},
                {"title": "No, cancel", "payload": "Cancel, don't book"},
            ],
        )
        return []


def reset_form() -> List[Dict[Text, Any]]:
    return [SlotSet(slot, None) for slot in QUESTIONS + EXTRA_SLOTS]


def idempotency_key(tracker: Tracker) -> str:
    """The same for every submission of one filled-in form (so a repeat is one request)."""
    started = next((e.get("timestamp") for e in reversed(tracker.events)
                    if e.get("event") == "active_loop" and e.get("name") == FORM), None)
    return hashlib.sha256(f"{tracker.sender_id}|{started}".encode()).hexdigest()[:32]


def booking_request(tracker: Tracker, clinic: ClinicSettings) -> Dict[str, Any]:
    """What the booking system receives (see the README for each field)."""
    technique = tracker.get_slot("booking_technique")
    contact = tracker.get_slot("booking_contact") or {}
    codes = tracker.get_slot("screen_notes") or []
    return {
        "clinic": clinic.name,
        "conversation_id": tracker.sender_id,
        "channel": tracker.get_latest_input_channel(),
        "visitor": {"name": tracker.get_slot("booking_name"), "phone": contact.get("phone"),
                    "email": contact.get("email")},
        "service": {"technique": None if technique == parse.NOT_SURE else technique,
                    "therapist_to_advise": technique in (None, parse.NOT_SURE),
                    "length_minutes": tracker.get_slot("booking_length") or None},
        "preferred_time": tracker.get_slot("booking_time"),
        "health_screen": {"emergency_signs": False, "urgent_signs": False,
                          **{code: code in codes for code in NOTES}},
        "notes_for_therapist": [NOTES[code][1] for code in codes],
        "note": tracker.get_slot("booking_note"),
        "consent_to_contact": True,
        "status": "requested: staff confirm the time",
    }


def confirmed_by_back_end(response_body: Optional[str]) -> Optional[str]:
    """The start time if the booking system's answer says the slot is booked."""
    try:
        answer = json.loads(response_body or "")
    except ValueError:
        return None
    if isinstance(answer, dict) and answer.get("status") == "confirmed" and answer.get("start"):
        return str(answer["start"])
    return None


class ActionFinishBooking(Action):
    """After the form: send the request, or say why nothing was sent."""

    def name(self) -> Text:
        return "action_finish_booking"

    async def run(self, dispatcher, tracker, domain):
        clinic = settings()
        if tracker.get_slot("booking_cancelled"):
            dispatcher.utter_message(response="utter_booking_cancelled")
            return reset_form()
        if tracker.get_slot("screen_emergency") is True:
            return await escalate(dispatcher, tracker, "emergency", clinic) + reset_form()
        if tracker.get_slot("screen_urgent") is True:
            return await escalate(dispatcher, tracker, "urgent", clinic) + reset_form()
        flagged = tracker.get_slot("red_flag_tier")
        if flagged in ("emergency", "urgent", "unclear"):
            dispatcher.utter_message(text=escalation_notice("urgent" if flagged == "unclear" else flagged, clinic))
            return reset_form()
        if tracker.get_slot("booking_consent") is not True:
            page = f" You can also request a time on our booking page: {clinic.booking_page}." if clinic.booking_page else ""
            dispatcher.utter_message(text=f"No problem, I haven't sent anything.{page} {clinic.contact_line()}")
            return reset_form()

        outbox = await asyncio.to_thread(Outbox)
        stored = await asyncio.to_thread(outbox.add, "booking_request", booking_request(tracker, clinic),
                                         key=idempotency_key(tracker))
        # One try now, in the background (the retry loop does the rest). The visitor waits for this
        # request only, and briefly, so a booking system that confirms the slot at once can be quoted.
        delivery = send_soon(outbox, stored["id"])
        try:
            await asyncio.wait_for(asyncio.shield(delivery), OWN_DELIVERY_WAIT_SECONDS)
        except Exception:  # still under way (it carries on), or failed (logged; it is retried)
            pass
        row = await asyncio.to_thread(outbox.get, stored["id"])
        dispatcher.utter_message(text=self.outcome(row, tracker, clinic))
        return reset_form()

    @staticmethod
    def outcome(row, tracker: Tracker, clinic: ClinicSettings) -> Text:
        name = tracker.get_slot("booking_name")
        contact = tracker.get_slot("booking_contact") or {}
        reach = contact.get("phone") or contact.get("email")
        page = f" You can also pick a time yourself on our booking page: {clinic.booking_page}." if clinic.booking_page else ""
        start = confirmed_by_back_end(row["response"]) if row["delivered_at"] else None
        if start:
            return f"You're booked, {name}: the clinic's booking system confirmed {start}. See you then!"
        if row["delivered_at"]:
            sent = f"Thanks, {name}! I've sent your request to {clinic.name}."
        elif not clinic.booking_webhook_url:
            sent = f"Thanks, {name}! I've saved your request for the staff of {clinic.name}."
        else:
            sent = (f"Thanks, {name}! Your request is saved and will reach {clinic.name} as soon as its "
                    "booking system answers.")
        return (f"{sent} A member of staff will contact you at {reach} to confirm the time; it isn't booked "
                f"until they do.{page}")
