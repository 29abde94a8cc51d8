"""The booking form and the booking request, with real rasa_sdk Trackers.

Each answer goes through the form's own validation action
(validate_booking_form) exactly as the action server runs it; the finished
form goes through action_finish_booking to scripts/webhook_receiver.py on a
local port, which checks the signature. End-to-end conversations through the
running assistant are at the bottom.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any, Dict, Optional
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions import booking
from actions import outbox as outbox_module
from actions.booking import ActionAskBookingConsent, ActionFinishBooking, ValidateBookingForm
from actions.outbox import Outbox
from scripts.webhook_receiver import WebhookReceiver
from tests.conftest import ROOT, load_domain, make_tracker, run_action
from tests.running_assistant import BOOKING_SECRET, STAFF_SECRET, free_port, rest_conversation, text_of

NOW = datetime(2026, 11, 20, 14, 0, tzinfo=ZoneInfo("America/New_York"))  # a Friday afternoon


@pytest.fixture
def clinic(clinic_config, monkeypatch, tmp_path):
    """Clinic settings with webhooks to a local receiver, a fixed 'now', a fresh outbox."""
    monkeypatch.setenv("BOOKING_WEBHOOK_SECRET", BOOKING_SECRET)
    monkeypatch.setenv("STAFF_WEBHOOK_SECRET", STAFF_SECRET)
    monkeypatch.setenv("OUTBOX_DB", str(tmp_path / "outbox.db"))
    monkeypatch.setattr(booking, "clinic_now", lambda clinic: NOW)
    receiver = WebhookReceiver({"/bookings": BOOKING_SECRET, "/staff": STAFF_SECRET}, quiet=True).start()

    def configure(**overrides):
        settings = dict(booking_webhook_url=receiver.url("/bookings"), staff_webhook_url=receiver.url("/staff"))
        settings.update(overrides)
        return clinic_config(**settings)

    configure.receiver = receiver
    configure.outbox = lambda: Outbox(tmp_path / "outbox.db")
    yield configure
    receiver.stop()


def form_tracker(text: str, requested: Optional[str], slots: Dict[str, Any], intent: Optional[str] = None,
                 confidence: float = 0.9, active: bool = True, sender: str = "visitor-1"):
    tracker = make_tracker(text, intent, confidence, slots={**slots, "requested_slot": requested}, sender_id=sender)
    if active:
        tracker.active_loop = {"name": "booking_form"}
        tracker.events.insert(0, {"event": "active_loop", "name": "booking_form", "timestamp": 1763660000.0})
    return tracker


class Visitor:
    """Fills in the form one message at a time, as Rasa would run it."""

    def __init__(self, sender: str = "visitor-1"):
        self.sender = sender
        self.slots: Dict[str, Any] = {}
        self.said = []  # what the assistant said, per message

    def requested(self) -> Optional[str]:
        if booking.booking_is_blocked(make_tracker(slots=self.slots)):
            return None
        from actions.clinic_settings import settings

        return next((q for q in booking.questions_for(settings()) if self.slots.get(q) is None), None)

    def start(self, text: str, intent: str = "request_booking") -> Dict[str, Any]:
        # As Rasa activates a form: the loop is already active, no question asked yet.
        return self._run(form_tracker(text, None, self.slots, intent, active=True, sender=self.sender))

    def says(self, text: str, intent: Optional[str] = None, confidence: float = 0.9) -> Dict[str, Any]:
        return self._run(form_tracker(text, self.requested(), self.slots, intent, confidence, sender=self.sender))

    def _run(self, tracker) -> Dict[str, Any]:
        messages, events = run_action(ValidateBookingForm(), tracker)
        self.said.append(messages)
        changes = {e["name"]: e["value"] for e in events if e["event"] == "slot" and e["name"] != "requested_slot"}
        self.slots.update(changes)
        return changes

    def back_to(self, slot: str) -> None:
        """As if the form were at this question: it and every later answer unset."""
        for later in booking.QUESTIONS[booking.QUESTIONS.index(slot):]:
            self.slots[later] = None

    def last_said(self) -> str:
        return " ".join(m.get("text") or m.get("response") or "" for m in self.said[-1])

    def finished_form(self):
        """The conversation as action_finish_booking sees it once the form is done."""
        tracker = form_tracker("", None, self.slots, active=False, sender=self.sender)
        tracker.events.insert(0, {"event": "active_loop", "name": "booking_form", "timestamp": 1763660000.0})
        return tracker

    def finish(self):
        return run_action(ActionFinishBooking(), self.finished_form())


def fill_everything(visitor: Visitor, notes: str = "None of these") -> None:
    visitor.start("book me a deep tissue massage on saturday morning")
    visitor.says("60 minutes")
    visitor.says("my name is Maria Gonzalez")
    visitor.says("you can reach me on (305) 555-0147")
    visitor.says("No, none of these")
    visitor.says("nope")
    visitor.says(notes)
    visitor.says("Yes, send my request")


def delivered_to_staff(clinic):
    """Staff alerts are sent in the background; the action server's retry loop
    finishes the job. Here: whatever is still waiting is delivered now."""
    asyncio.run(clinic.outbox().deliver_due(booking.settings().webhook_for, now=time.time() + 3600))
    return [r for r in clinic.receiver.received if r["event"] != "booking_request"]


# --- the happy path ---------------------------------------------------------------

def test_a_full_booking_reaches_the_booking_system_signed_and_complete(clinic):
    clinic()
    visitor = Visitor()
    assert visitor.start("book me a deep tissue massage on saturday morning") == {
        "booking_technique": "deep tissue",
        "booking_time": {"text": "book me a deep tissue massage on saturday morning",
                         "understood": "Saturday 21 November, morning", "date": "2026-11-21", "time": None,
                         "part_of_day": "morning", "flexible": False, "time_zone": "America/New_York"}}
    assert visitor.requested() == "booking_length"  # the two answers given up front are not asked again
    fill_everything(Visitor("visitor-2"))
    fill_everything(visitor)
    messages, events = visitor.finish()

    [request] = [r for r in clinic.receiver.received if r["conversation_id"] == "visitor-1"]
    assert clinic.receiver.rejected == []  # the signature checked out
    assert request["event"] == "booking_request"
    assert request["visitor"] == {"name": "Maria Gonzalez", "phone": "+13055550147",
                                  "email": None}
    assert request["service"] == {"technique": "deep tissue", "therapist_to_advise": False, "length_minutes": 60}
    assert request["preferred_time"]["date"] == "2026-11-21"
    assert request["preferred_time"]["time_zone"] == "America/New_York"
    assert request["consent_to_contact"] is True
    assert request["health_screen"]["emergency_signs"] is False and request["health_screen"]["pregnant"] is False
    said = text_of(messages)
    assert "I've sent your request" in said and "isn't booked until" in said
    assert "booking page" in said  # the public booking page as well
    assert all(e["value"] is None for e in events if e["event"] == "slot")  # the form is cleared for next time


def test_the_summary_reads_the_request_back_before_asking_to_send(clinic):
    clinic()
    visitor = Visitor()
    visitor.start("can i book a swedish massage tomorrow at 3pm")
    visitor.says("90")
    visitor.says("Ana")
    visitor.says("ana.perez@Gmail.com")
    tracker = form_tracker("", "booking_consent", visitor.slots)
    messages, _ = run_action(ActionAskBookingConsent(), tracker)
    said = messages[0]["text"]
    assert "swedish massage, 90 minutes" in said and "Saturday 21 November, 3 pm" in said
    assert "ana.perez@gmail.com" in said and "nothing is booked until" in said


# --- bad answers are re-asked with a clear message ----------------------------------

# Everything answered up to the phone-or-e-mail question.
BEFORE_CONTACT = {"booking_technique": "swedish", "booking_length": 60, "booking_time": {"text": "sat"},
                  "booking_name": "Li"}

@pytest.mark.parametrize("slot, prior, bad, reply", [
    ("booking_technique", {}, "a foot rub", "utter_booking_technique_not_understood"),
    ("booking_length", {"booking_technique": "swedish"}, "45 minutes", "Sessions here are 60 minutes or 90 minutes"),
    ("booking_time", {"booking_technique": "swedish", "booking_length": 60}, "purple", "utter_booking_time_not_understood"),
    ("booking_time", {"booking_technique": "swedish", "booking_length": 60}, "yesterday", "already passed"),
    ("booking_name", {"booking_technique": "swedish", "booking_length": 60, "booking_time": {"text": "sat"}},
     "12345", "utter_booking_name_not_understood"),
    ("booking_contact", BEFORE_CONTACT, "john at gmail dot com", "utter_booking_contact_not_understood"),
    ("booking_contact", BEFORE_CONTACT, "555 0123", "utter_booking_contact_not_understood"),
])
def test_a_bad_answer_is_re_asked_and_nothing_else_is_lost(clinic, slot, prior, bad, reply):
    clinic()
    visitor = Visitor()
    visitor.slots.update(prior)
    assert visitor.requested() == slot
    changes = visitor.says(bad)
    assert changes.get(slot) is None
    assert reply in visitor.last_said()
    assert visitor.requested() == slot and all(visitor.slots[k] == v for k, v in prior.items())


@pytest.mark.parametrize("slot", ["screen_emergency", "screen_urgent", "booking_consent"])
def test_a_safety_or_consent_question_needs_a_yes_or_no(clinic, slot):
    clinic()
    visitor = Visitor()
    fill_everything(visitor)
    visitor.back_to(slot)
    assert visitor.requested() == slot
    visitor.says("maybe, not sure")
    assert visitor.slots[slot] is None and f"utter_{slot}_needs_yes_or_no" in visitor.last_said()


# --- side questions, corrections, cancelling -------------------------------------------

def test_an_faq_mid_form_is_left_to_the_faq_rule_and_the_question_stays(clinic):
    clinic()
    visitor = Visitor()
    visitor.start("I'd like to book")
    assert visitor.says("what should I wear to my massage?", intent="faq", confidence=0.92) == {}
    assert visitor.requested() == "booking_technique"
    # ...but an answer that the NLU happens to read as an FAQ is still an answer.
    assert visitor.says("deep tissue", intent="faq", confidence=0.8) == {"booking_technique": "deep tissue"}


def test_a_correction_changes_the_earlier_answer_and_keeps_the_question(clinic):
    clinic()
    visitor = Visitor()
    visitor.start("book me a hot stone massage on saturday")
    visitor.says("60 minutes")
    assert visitor.requested() == "booking_name"
    changes = visitor.says("actually make it next tuesday afternoon instead")
    assert changes["booking_time"]["date"] == "2026-11-24" and changes["booking_time"]["part_of_day"] == "afternoon"
    assert "booking_name" not in changes and visitor.requested() == "booking_name"
    visitor.says("Tom")
    visitor.says("tom@example.com")
    changes = visitor.says("sorry, wrong number, change my email to tom.b@example.org")
    assert changes == {"booking_contact": {"email": "tom.b@example.org"}}


def test_change_buttons_on_the_summary_ask_that_question_again(clinic):
    clinic()
    visitor = Visitor()
    fill_everything(visitor)
    visitor.back_to("booking_consent")
    visitor.says("I want to change the day and time")
    assert visitor.requested() == "booking_time"
    visitor.says("monday at 11am")
    assert visitor.slots["booking_time"]["date"] == "2026-11-23" and visitor.slots["booking_time"]["time"] == "11:00"
    assert visitor.requested() == "booking_consent"  # everything else kept; the summary comes back


@pytest.mark.parametrize("text, intent", [
    ("never mind", None), ("forget it", None), ("Cancel, don't book", None),
    ("ugh i'll sort it out some other time", "cancel_booking"),
])
def test_cancel_ends_the_form_and_sends_nothing(clinic, text, intent):
    clinic()
    visitor = Visitor()
    visitor.start("I'd like to book a massage")
    visitor.says("swedish")
    assert visitor.says(text, intent=intent) == {"booking_cancelled": True}
    assert visitor.requested() is None  # the form ends
    messages, _ = visitor.finish()
    assert messages[0]["response"] == "utter_booking_cancelled"
    assert clinic.outbox().pending() == [] and clinic.receiver.received == []


@pytest.mark.parametrize("text, intent", [
    ("my email is sam at gmail", "ask_contact"),
    ("jordan at example dot com", "ask_help"),
])
def test_a_bad_answer_the_nlu_reads_as_a_side_question_is_still_re_asked(clinic, text, intent):
    clinic()
    visitor = Visitor()
    visitor.slots.update(BEFORE_CONTACT)
    visitor.says(text, intent=intent, confidence=0.9)
    assert "utter_booking_contact_not_understood" in visitor.last_said()


def test_no_to_the_notes_question_is_none_not_a_cancel(clinic):
    clinic()
    visitor = Visitor()
    fill_everything(visitor)
    visitor.back_to("screen_notes")
    assert visitor.says("no", intent="cancel_booking", confidence=0.87) == {"screen_notes": [], "booking_note": None}


def test_a_name_the_nlu_reads_as_cancel_is_still_a_name(clinic):
    clinic()
    visitor = Visitor()
    visitor.start("book me a swedish massage on friday")
    visitor.says("60")
    assert visitor.says("Nevin", intent="cancel_booking", confidence=0.7) == {"booking_name": "Nevin"}


# --- the health screen -----------------------------------------------------------------

def test_yes_to_the_emergency_question_stops_the_booking_and_says_call_911(clinic):
    clinic()
    visitor = Visitor()
    fill_everything(visitor)
    visitor.back_to("screen_emergency")
    visitor.says("yes")
    assert visitor.requested() is None
    messages, events = visitor.finish()
    assert messages[0]["text"].startswith("Please call 911 now")
    staff = delivered_to_staff(clinic)
    assert [r["event"] for r in staff] == ["red_flag_escalation"] and staff[0]["tier"] == "emergency"
    assert any(e["name"] == "red_flag_tier" and e["value"] == "emergency" for e in events)


def test_yes_to_the_urgent_question_sends_the_visitor_to_a_doctor_first(clinic):
    clinic()
    visitor = Visitor()
    fill_everything(visitor)
    visitor.back_to("screen_urgent")
    visitor.says("Yes")
    messages, _ = visitor.finish()
    assert messages[0]["text"].startswith("Please contact a doctor today")
    assert not [r for r in clinic.receiver.received if r["event"] == "booking_request"]


def test_pregnancy_and_blood_thinners_travel_as_notes_for_the_therapist(clinic):
    clinic()
    visitor = Visitor()
    fill_everything(visitor, notes="I'm 24 weeks pregnant and I take warfarin")
    said = " ".join(m.get("text", "") for m in visitor.said[-2])
    assert "trained in pregnancy massage" in said and "avoid deep pressure" in said
    visitor.finish()
    [request] = clinic.receiver.received
    assert request["health_screen"]["pregnant"] and request["health_screen"]["blood_thinners_or_bleeding_disorder"]
    assert len(request["notes_for_therapist"]) == 2
    assert request["note"] == "I'm 24 weeks pregnant and I take warfarin"


def test_no_consent_sends_nothing(clinic):
    clinic()
    visitor = Visitor()
    fill_everything(visitor)
    visitor.back_to("booking_consent")
    visitor.says("no")
    messages, _ = visitor.finish()
    assert "haven't sent anything" in messages[0]["text"]
    assert clinic.receiver.received == [] and clinic.outbox().pending() == []


def test_without_session_lengths_the_length_question_is_skipped(clinic):
    clinic(session_lengths=[])
    visitor = Visitor()
    visitor.start("book me a swedish massage")
    assert visitor.requested() == "booking_time"


# --- the webhook: nothing lost, nothing doubled --------------------------------------------

def test_booking_system_down_the_request_waits_and_is_delivered_once_when_it_is_back(clinic):
    port = free_port()
    clinic(booking_webhook_url=f"http://127.0.0.1:{port}/bookings")
    visitor = Visitor()
    fill_everything(visitor)
    messages, _ = visitor.finish()
    said = text_of(messages)
    assert "saved" in said and "isn't booked until" in said and "I've sent" not in said
    [waiting] = clinic.outbox().pending("booking_request")
    assert waiting["attempts"] == 1 and "Error" in waiting["last_error"]

    receiver = WebhookReceiver({"/bookings": BOOKING_SECRET}, port=port, quiet=True).start()
    try:
        later = time.time() + 3600
        outbox = clinic.outbox()
        assert asyncio.run(outbox.deliver_due(booking.settings().webhook_for, now=later)) == 1
        assert asyncio.run(outbox.deliver_due(booking.settings().webhook_for, now=later)) == 0
        [request] = receiver.received
        assert request["id"] == waiting["id"] and request["visitor"]["name"] == "Maria Gonzalez"
        assert outbox.pending() == []
    finally:
        receiver.stop()


def test_booking_system_answering_500_the_request_waits_is_retried_and_is_delivered_once(clinic, monkeypatch,
                                                                                          capsys):
    monkeypatch.setattr(outbox_module, "FIRST_BACKOFF_SECONDS", 30)  # no background retry during the action
    clinic()
    receiver, outbox, webhook_for = clinic.receiver, clinic.outbox(), booking.settings().webhook_for
    receiver.fail_with_status = 500
    visitor = Visitor()
    fill_everything(visitor)
    messages, _ = visitor.finish()
    said = text_of(messages)
    assert "saved" in said and "isn't booked until" in said and "I've sent" not in said
    [waiting] = outbox.pending("booking_request")
    assert waiting["attempts"] == 1 and waiting["last_error"] == "HTTP 500"
    assert asyncio.run(outbox.deliver_due(webhook_for)) == 0  # not due again before its back-off...
    assert outbox.get(waiting["id"])["attempts"] == 1 and receiver.failures == 1

    later = time.time() + 3600  # ...and retried once it is, as often as it takes
    for attempt in (2, 3):
        assert asyncio.run(outbox.deliver_due(webhook_for, now=later)) == 0
        [still] = outbox.pending("booking_request")
        assert still["id"] == waiting["id"] and still["attempts"] == attempt and still["last_error"] == "HTTP 500"
    assert receiver.failures == 3 and receiver.received == []  # each attempt reached it; nothing stored
    capsys.readouterr()
    assert outbox_module.main(["outbox", "list"]) == 0  # what `make pending` shows staff
    listing = capsys.readouterr().out
    assert "Maria Gonzalez" in listing and f"id={waiting['id']}" in listing and "FAILED 3x (HTTP 500)" in listing

    receiver.fail_with_status = None  # the booking system is fine again
    assert asyncio.run(outbox.deliver_due(webhook_for, now=later)) == 1
    assert asyncio.run(outbox.deliver_due(webhook_for, now=later)) == 0
    [request] = [r for r in receiver.received if r["event"] == "booking_request"]
    assert request == json.loads(waiting["payload"]) and request["visitor"]["name"] == "Maria Gonzalez"
    assert receiver.duplicates == 0 and receiver.rejected == []
    row = outbox.get(waiting["id"])
    assert row["delivered_at"] and row["attempts"] == 4 and row["last_error"] is None
    assert outbox.pending() == []


def test_booking_system_slower_than_the_timeout_keeps_one_booking_the_retry_is_a_duplicate(clinic, monkeypatch):
    monkeypatch.setattr(outbox_module, "SEND_TIMEOUT_SECONDS", 0.3)
    monkeypatch.setattr(outbox_module, "FIRST_BACKOFF_SECONDS", 30)
    clinic()
    receiver, outbox, webhook_for = clinic.receiver, clinic.outbox(), booking.settings().webhook_for
    receiver.delay_seconds = 2.0  # it stores the request, then answers after the sender gave up
    visitor = Visitor()
    fill_everything(visitor)
    started = time.monotonic()
    messages, _ = visitor.finish()
    assert time.monotonic() - started < 1.5  # the visitor did not wait for the slow answer
    said = text_of(messages)
    assert "saved" in said and "I've sent" not in said
    [waiting] = outbox.pending("booking_request")
    assert waiting["attempts"] == 1 and "Timeout" in waiting["last_error"]
    [recorded] = receiver.received  # it did arrive, but the sender cannot know that
    assert recorded["id"] == waiting["id"]

    later = time.time() + 3600
    assert asyncio.run(outbox.deliver_due(webhook_for, now=later)) == 0  # still slow: times out again
    assert outbox.get(waiting["id"])["attempts"] == 2 and receiver.duplicates == 1

    receiver.delay_seconds = 0.0  # answering in time again
    assert asyncio.run(outbox.deliver_due(webhook_for, now=later)) == 1
    assert asyncio.run(outbox.deliver_due(webhook_for, now=later)) == 0
    [request] = [r for r in receiver.received if r["event"] == "booking_request"]
    assert request == json.loads(waiting["payload"])
    assert receiver.duplicates == 2 and receiver.rejected == []  # both retries recognised by their key
    row = outbox.get(waiting["id"])
    assert row["delivered_at"] and row["attempts"] == 3 and json.loads(row["response"])["status"] == "duplicate"
    assert outbox.pending() == []


async def eventually(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("trouble", ["answers 500", "slower than its timeout"])
def test_staff_webhook_in_trouble_the_hand_over_waits_and_the_retry_loop_delivers_it_once(clinic, monkeypatch,
                                                                                           trouble):
    """The action server's own retry loop (start_retry_loop), with its delays shortened."""
    from actions.handover import ActionHandOverToStaff

    monkeypatch.setattr(outbox_module, "SEND_TIMEOUT_SECONDS", 0.2)
    monkeypatch.setattr(outbox_module, "FIRST_BACKOFF_SECONDS", 0.05)  # 0.05 s, 0.1 s, 0.2 s ...
    monkeypatch.setattr(outbox_module, "RETRY_EVERY_SECONDS", 0.05)
    monkeypatch.setattr(outbox_module, "_retry_task", None)
    clinic()
    receiver, outbox = clinic.receiver, clinic.outbox()
    if trouble == "answers 500":
        receiver.fail_with_status = 500
    else:
        receiver.delay_seconds = 0.6
    dispatcher = CollectingDispatcher()
    tracker = make_tracker("call me back", "request_human", sender_id="c-trouble")

    def attempts() -> int:
        return max([row["attempts"] for row in outbox.pending("handover")] or [0])

    async def conversation_and_retry_loop():
        outbox_module.start_retry_loop(lambda: outbox)  # as the action server does when it starts
        await ActionHandOverToStaff().run(dispatcher, tracker, load_domain())
        await eventually(lambda: attempts() >= 3)
        [waiting] = outbox.pending("handover")
        receiver.fail_with_status, receiver.delay_seconds = None, 0.0  # the staff webhook recovers
        await eventually(lambda: not outbox.pending())
        await asyncio.sleep(0.3)  # a few more rounds of the loop: nothing is sent again
        await outbox_module.stop_retry_loop()
        return waiting

    waiting = asyncio.run(conversation_and_retry_loop())
    assert "let the team know" in text_of(dispatcher.messages)
    assert ("HTTP 500" if trouble == "answers 500" else "TimeoutError") in waiting["last_error"]
    [event] = [r for r in receiver.received if r["event"] == "handover"]
    assert event == json.loads(waiting["payload"]) and event["conversation_id"] == "c-trouble"
    row = outbox.get(waiting["id"])
    assert row["delivered_at"] and outbox.pending() == [] and receiver.rejected == []
    if trouble == "answers 500":  # every failed attempt reached it; the last one got through
        assert receiver.duplicates == 0 and row["attempts"] == receiver.failures + 1 >= 4
    else:  # stored at the first attempt; every retry recognised as a repeat
        assert row["attempts"] == receiver.duplicates + 1 >= 4
        assert json.loads(row["response"])["status"] == "duplicate"


@pytest.mark.parametrize("alerts", ["sent as they are raised", "retried by the retry loop"])
def test_a_booking_never_waits_for_alerts_stuck_on_a_staff_webhook_that_does_not_answer(clinic, monkeypatch,
                                                                                        alerts):
    """Measured before: 5 alerts waiting on a staff webhook that did not answer made a booking
    confirmation wait 4.9 s at a 1 s timeout (one lock for every delivery). The visitor waits for
    their own request only; every alert is still sent, once."""
    from actions.staff_notifications import notify_staff

    monkeypatch.setattr(outbox_module, "SEND_TIMEOUT_SECONDS", 1)
    monkeypatch.setattr(outbox_module, "FIRST_BACKOFF_SECONDS", 60)  # one attempt each in this test
    monkeypatch.setattr(outbox_module, "_retry_task", None)
    staff = WebhookReceiver({"/staff": STAFF_SECRET}, quiet=True).start()
    staff.delay_seconds = 30  # takes each alert, never answers in time
    clinic(staff_webhook_url=staff.url("/staff"))
    outbox, bookings = clinic.outbox(), clinic.receiver
    visitor = Visitor()
    fill_everything(visitor)
    dispatcher = CollectingDispatcher()

    async def alerts_then_a_booking():
        if alerts == "sent as they are raised":
            for n in range(5):
                await notify_staff("handover", {"conversation_id": f"earlier-{n}", "reason": "asked for staff"})
        else:
            for n in range(5):
                outbox.add("handover", {"conversation_id": f"earlier-{n}", "reason": "asked for staff"})
            outbox_module.start_retry_loop(lambda: outbox)
        await eventually(lambda: staff.received)  # the staff webhook holds the first one
        started = time.monotonic()
        await ActionFinishBooking().run(dispatcher, visitor.finished_form(), load_domain())
        took = time.monotonic() - started
        # Every alert tried and timed out (by the retry loop: one after the other).
        await eventually(lambda: all(row["attempts"] >= 1 for row in outbox.pending("handover")), seconds=15)
        await outbox_module.stop_retry_loop()
        return took

    try:
        took = asyncio.run(alerts_then_a_booking())
    finally:
        staff.stop()
    print(f"booking confirmed in {took:.2f} s with 5 alerts stuck on the staff webhook ({alerts})")
    assert took < 1.0  # its own send (tens of ms), not even one alert's 1 s timeout
    assert "I've sent your request" in text_of(dispatcher.messages)
    assert [r["visitor"]["name"] for r in bookings.received] == ["Maria Gonzalez"]
    assert sorted(r["conversation_id"] for r in staff.received) == [f"earlier-{n}" for n in range(5)]
    assert staff.duplicates == 0  # each alert sent once
    waiting = outbox.pending("handover")
    assert len(waiting) == 5 and all(row["attempts"] == 1 and "Timeout" in row["last_error"] for row in waiting)


def test_the_action_server_retries_the_outbox_from_its_start_without_any_conversation(clinic, tmp_path):
    """A request left waiting (e.g. from before a restart) goes out when the action server
    starts, without waiting for a visitor's greeting; the server then stops cleanly."""
    import os
    import signal
    from subprocess import STDOUT, Popen

    from tests.running_assistant import wait_until_up

    clinic()
    waiting = clinic.outbox().add("handover", {"conversation_id": "before-the-restart", "reason": "asked for staff"})
    port, log = free_port(), tmp_path / "actions.log"
    server = Popen([str(ROOT / ".venv" / "bin" / "python"), "-m", "actions.server", "--port", str(port)], cwd=ROOT,
                   env={**os.environ, "OUTBOX_RETRY_EVERY_SECONDS": "1"}, stdout=log.open("wb"), stderr=STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", server, log, seconds=120)
        deadline = time.monotonic() + 15
        while not clinic.receiver.received and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [r["id"] for r in clinic.receiver.received] == [waiting["id"]], log.read_text()[-2000:]
        assert clinic.outbox().pending() == []
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    assert "Traceback" not in log.read_text() and "Task was destroyed" not in log.read_text(), log.read_text()


def test_the_same_form_sent_twice_is_one_booking(clinic):
    clinic()
    visitor = Visitor()
    fill_everything(visitor)
    visitor.finish()
    visitor.finish()  # e.g. the action re-run for the same form
    assert len(clinic.outbox().pending()) == 0
    assert len([r for r in clinic.receiver.received if r["event"] == "booking_request"]) == 1


def test_a_repeat_delivery_is_ignored_by_the_receiver_thanks_to_the_idempotency_key(clinic):
    from actions.outbox import post_signed

    clinic()
    destination = booking.settings().webhook_for("booking_request")
    payload = {"id": "req-1", "event": "booking_request", "visitor": {"name": "A"}}
    first = asyncio.run(post_signed(destination, payload))
    again = asyncio.run(post_signed(destination, payload))  # e.g. the first answer was lost on the way back
    assert first.ok and again.ok and json.loads(again.body)["status"] == "duplicate"
    assert len(clinic.receiver.received) == 1 and clinic.receiver.duplicates == 1


def test_a_wrong_or_stale_signature_is_refused():
    from actions import signing

    body = signing.body_of({"id": "x"})
    headers = signing.signed_headers(BOOKING_SECRET, body, "x")
    assert signing.verify(BOOKING_SECRET, headers, body) is None
    assert signing.verify("another-secret-0123456789", headers, body) == "signature does not match"
    assert signing.verify(BOOKING_SECRET, headers, body.replace(b"x", b"y")) == "signature does not match"
    old = signing.signed_headers(BOOKING_SECRET, body, "x", now=time.time() - 3600)
    assert signing.verify(BOOKING_SECRET, old, body) == "timestamp too old or in the future"


def test_only_the_booking_system_saying_so_makes_it_booked(clinic):
    class Confirming(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            answer = json.dumps({"status": "confirmed", "start": "Saturday 21 November at 10:00"}).encode()
            self.send_response(201)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Confirming)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        clinic(booking_webhook_url=f"http://127.0.0.1:{server.server_address[1]}/bookings")
        visitor = Visitor()
        fill_everything(visitor)
        messages, _ = visitor.finish()
        assert "You're booked" in messages[0]["text"] and "Saturday 21 November at 10:00" in messages[0]["text"]
    finally:
        server.shutdown()
        server.server_close()


def test_staff_see_pending_and_failed_requests(clinic, tmp_path):
    port = free_port()
    clinic(booking_webhook_url=f"http://127.0.0.1:{port}/bookings")
    visitor = Visitor()
    fill_everything(visitor)
    visitor.finish()
    listing = subprocess.run([sys.executable, "-m", "actions.outbox", "list"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout
    assert "booking_request" in listing and "Maria Gonzalez" in listing and "FAILED 1x" in listing


# --- hand-over to staff -------------------------------------------------------------------

def test_hand_over_tells_staff_with_the_conversation_id(clinic):
    from actions.handover import ActionHandOverToStaff

    clinic()
    messages, _ = run_action(ActionHandOverToStaff(), make_tracker("call me back", "request_human", sender_id="c-42"))
    assert "+1 305-555-0100" in messages[0]["text"] and "let the team know" in messages[0]["text"]
    [event] = delivered_to_staff(clinic)
    assert event["event"] == "handover" and event["conversation_id"] == "c-42"
    assert event["reason"] == "asked_for_a_person"


def test_two_misunderstood_messages_in_a_row_hand_over(clinic):
    from actions.fallback import ActionFallbackWithTopics

    clinic(staff_webhook_url="")
    first = make_tracker("blorp", "nlu_fallback", 0.3)
    messages, _ = run_action(ActionFallbackWithTopics(), first)
    assert "don't know" in messages[0]["text"]
    second = make_tracker("zzzt wibble", "nlu_fallback", 0.2)
    second.events.insert(0, {"event": "bot", "text": "Sorry, I don't know the answer to that."})
    second.events.insert(0, first.events[0])
    messages, _ = run_action(ActionFallbackWithTopics(), second)
    assert "A person will understand better" in messages[0]["text"] and "+1 305-555-0100" in messages[0]["text"]
    # ...but one understood message in between starts the count again.
    third = make_tracker("qqq", "nlu_fallback", 0.2)
    third.events[:0] = [first.events[0], {"event": "user", "text": "thanks", "parse_data": {"intent": {"name": "thank"}}}]
    messages, _ = run_action(ActionFallbackWithTopics(), third)
    assert "A person will understand better" not in messages[0]["text"]


def test_every_answer_button_of_the_form_is_understood(clinic):
    """Tapping a button must never get "sorry, I didn't understand"."""
    from tests.conftest import load_domain

    clinic()
    domain = load_domain()
    tracker = form_tracker("", "booking_consent", {})
    consent, _ = run_action(ActionAskBookingConsent(), tracker)
    buttons = {slot: [b["payload"] for b in domain["responses"][f"utter_ask_{slot}"][0].get("buttons", [])]
               for slot in domain["forms"]["booking_form"]["required_slots"] if f"utter_ask_{slot}" in domain["responses"]}
    buttons["booking_consent"] = [b["payload"] for b in consent[0]["buttons"]]
    assert set(buttons) >= {"booking_technique", "screen_emergency", "screen_urgent", "screen_notes"}
    for slot, payloads in buttons.items():
        for payload in payloads:
            visitor = Visitor()
            fill_everything(visitor)
            visitor.slots[slot] = None
            changes = visitor.says(payload)
            understood = changes.get(slot) is not None or changes.get("booking_cancelled") or (
                slot == "booking_consent" and any(v is None for v in changes.values()) and changes)
            assert understood, (slot, payload, changes, visitor.last_said())


# --- end to end: conversations through the running assistant (make run's servers) ---------

def converse(assistant, sender, *messages):
    return [text_of(assistant.say(sender, m)) for m in messages]


def bookings_for(receiver, sender):
    return [r for r in receiver.received
            if r.get("event") == "booking_request" and r["conversation_id"] == rest_conversation(sender)]


def test_e2e_a_booking_with_a_side_question_and_a_bad_value_reaches_the_receiver(assistant, receiver):
    sender = "e2e-booking"
    replies = converse(assistant, sender,
                       "I'd like to book a deep tissue massage",   # 0 -> length
                       "an hour",                                  # 1 -> day/time
                       "what should i wear to my massage?",        # 2 -> FAQ, then day/time again
                       "next tuesday afternoon",                   # 3 -> name
                       "Jordan Lee",                               # 4 -> contact
                       "jordan at example dot com",                # 5 -> re-asked
                       "jordan.lee@example.com",                   # 6 -> safety question 1
                       "No, none of these",                        # 7 -> safety question 2
                       "no",                                       # 8 -> notes
                       "None of these",                            # 9 -> summary
                       "Yes, send my request")                     # 10 -> sent
    assert "How long" in replies[0]
    assert "What day and time" in replies[1]
    assert "What day and time" in replies[2] and replies[2].index("What day and time") > 0  # answer first
    assert "What name" in replies[3]
    assert "couldn't read a phone number or e-mail" in replies[5]
    assert "safety check" in replies[6] and "And any of these" in replies[7]
    assert "deep tissue massage, 60 minutes" in replies[9]
    assert "I've sent your request" in replies[10] and "isn't booked until" in replies[10]
    [request] = bookings_for(receiver, sender)
    assert request["visitor"]["email"] == "jordan.lee@example.com" and request["service"]["length_minutes"] == 60
    assert request["preferred_time"]["part_of_day"] == "afternoon"
    assert receiver.rejected == []


def test_e2e_an_emergency_typed_mid_booking_stops_it(assistant, receiver):
    sender = "e2e-emergency-mid-form"
    replies = converse(assistant, sender, "can I come in Saturday?", "swedish",
                       "hold on, my groin and inner thighs have gone numb and i cant pee", "60 minutes")
    assert "Which kind of massage" in replies[0] and "How long" in replies[1]
    assert replies[2].startswith("Please call 911 now")
    assert "What day and time" not in replies[3] and "What name" not in replies[3]  # the form is over
    assert receiver.wait_for(lambda n: n.get("conversation_id") == rest_conversation(sender)
                             and n["event"] == "red_flag_escalation")
    assert bookings_for(receiver, sender) == []


def test_e2e_never_mind_stops_the_booking(assistant, receiver):
    sender = "e2e-cancel"
    replies = converse(assistant, sender, "book me in please", "hot stone", "never mind")
    assert "nothing was sent" in replies[2]
    assert "How long" not in text_of(assistant.say(sender, "90 minutes"))
    assert bookings_for(receiver, sender) == []


def test_e2e_booking_system_down_then_back_delivers_exactly_once(assistant, receiver):
    sender = "e2e-backend-down"
    receiver.stop()
    try:
        replies = converse(assistant, sender, "i want to book a trigger point massage tomorrow at 4pm", "90",
                           "Sam Ortiz", "+44 20 7946 0958", "no", "No", "none", "yes")
    finally:
        receiver.start()
    assert "saved" in replies[-1] and "I've sent" not in replies[-1]
    assert receiver.wait_for(lambda r: r.get("conversation_id") == rest_conversation(sender)
                             and r["event"] == "booking_request", seconds=30)
    time.sleep(3)  # a few more retry rounds: nothing is sent twice
    [request] = bookings_for(receiver, sender)
    assert request["visitor"] == {"name": "Sam Ortiz", "phone": "+442079460958", "email": None}


def test_e2e_two_misunderstood_messages_hand_over_to_staff(assistant, receiver):
    sender = "e2e-two-fallbacks"
    replies = converse(assistant, sender, "qwzx plorf vrrmp", "blarg fnord wibble zonk")
    assert "A person will understand better" in replies[1] and "+1 305-555-0100" in replies[1]
    [event] = receiver.wait_for(lambda n: n.get("conversation_id") == rest_conversation(sender)
                                and n["event"] == "handover")
    assert event["reason"] == "not_understood_twice"
