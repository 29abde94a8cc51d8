"""Custom actions, run with real rasa_sdk Tracker and CollectingDispatcher objects."""
import pytest

from actions.booking import ActionFinishBooking
from actions.clinic_questions import ActionAnswerClinicQuestion
from actions.conversation import ActionGreet
from actions.fallback import ActionFallbackWithTopics
from actions.faq_catalog import titles
from actions.handover import ActionHandOverToStaff
from tests.conftest import make_tracker, run_action


def texts(messages):
    return " ".join(m.get("text") or "" for m in messages)


def test_greeting_says_what_it_is_and_the_emergency_number(clinic_config):
    clinic_config(name="Test Spa", emergency_number="112")
    messages, events = run_action(ActionGreet(), make_tracker("hi", "greet"))
    said = texts(messages)
    assert "Test Spa" in said
    assert "not medical advice" in said
    assert "call 112" in said
    assert messages[-1]["response"] == "utter_topics"  # the topics menu follows
    assert events == []


@pytest.mark.parametrize("intent", ["ask_price", "ask_hours", "ask_location", "ask_insurance", "ask_gift_cards"])
def test_unconfigured_clinic_facts_are_not_invented(clinic_config, intent):
    clinic = clinic_config()
    messages, _ = run_action(ActionAnswerClinicQuestion(), make_tracker("?", intent))
    said = texts(messages)
    assert "don't have" in said and "rather not guess" in said
    assert clinic.phone in said and clinic.email in said
    assert "$" not in said


def test_configured_clinic_facts_are_quoted(clinic_config):
    clinic_config(prices="60 minutes: $95", hours="Mon-Sat 9am-7pm")
    price, _ = run_action(ActionAnswerClinicQuestion(), make_tracker("how much", "ask_price"))
    hours, _ = run_action(ActionAnswerClinicQuestion(), make_tracker("open?", "ask_hours"))
    assert "60 minutes: $95" in texts(price)
    assert "Mon-Sat 9am-7pm" in texts(hours)


def test_contact_without_phone_or_email_still_points_to_the_clinic(clinic_config):
    clinic_config(phone="", email="")
    messages, _ = run_action(ActionAnswerClinicQuestion(), make_tracker("phone?", "ask_contact"))
    assert "contact Miami Massage and Head Spa directly" in texts(messages)


def test_hand_over_gives_contacts_and_hours_when_known(clinic_config):
    clinic = clinic_config(hours="Tue-Sun 10am-6pm")
    messages, _ = run_action(ActionHandOverToStaff(), make_tracker("human please", "request_human"))
    said = texts(messages)
    assert clinic.phone in said and clinic.email in said and "Tue-Sun 10am-6pm" in said


def test_fallback_offers_the_closest_topics_and_a_person():
    ranking = [
        {"intent_response_key": "faq/technique_hot_stone", "confidence": 0.41},
        {"intent_response_key": "faq/massage_circulation", "confidence": 0.30},
        {"intent_response_key": "faq/what_is_sciatica", "confidence": 0.02},  # too unlikely to offer
    ]
    tracker = make_tracker("are warm rocks ok", "nlu_fallback", 0.5, response_ranking=ranking)
    messages, _ = run_action(ActionFallbackWithTopics(), tracker)
    buttons = messages[0]["buttons"]
    catalog = titles()
    assert "not sure" in messages[0]["text"]
    assert [b["payload"] for b in buttons] == [
        catalog["faq/technique_hot_stone"],
        catalog["faq/massage_circulation"],
        "I'd like to talk to a person",
    ]


def test_fallback_puts_a_named_technique_first():
    ranking = [{"intent_response_key": "faq/massage_circulation", "confidence": 0.4}]
    entities = [{"entity": "technique", "value": "trigger point", "start": 0, "end": 13}]
    tracker = make_tracker("trigger point??", "nlu_fallback", 0.5, entities=entities, response_ranking=ranking)
    messages, _ = run_action(ActionFallbackWithTopics(), tracker)
    assert messages[0]["buttons"][0]["payload"] == titles()["faq/technique_trigger_point"]


def test_fallback_without_any_idea_says_so_and_offers_topics_and_a_person():
    messages, _ = run_action(ActionFallbackWithTopics(), make_tracker("zzzz", "nlu_fallback", 0.3))
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert "don't know" in messages[0]["text"]
    assert payloads == ["What can I ask you?", "I'd like to talk to a person"]


# --- red-flag escalation -------------------------------------------------------------

from actions.red_flags import ActionEscalateRedFlag  # noqa: E402


def red_flag_tracker(text, tier, slots=None, active_loop=None, ranking=None, selected=None):
    entities = [{"entity": "red_flag_tier", "value": tier}]
    tracker = make_tracker(text, "report_red_flag", 1.0, entities=entities, slots=slots)
    if ranking:
        tracker.latest_message["intent_ranking"] = ranking
    if selected:
        tracker.latest_message["response_selector"] = {"faq": {"response": selected, "ranking": []}}
    if active_loop:
        tracker.active_loop = {"name": active_loop}
    return tracker


@pytest.fixture
def outbox_path(tmp_path, monkeypatch):
    path = tmp_path / "outbox.db"
    monkeypatch.setenv("OUTBOX_DB", str(path))
    return path


def test_emergency_says_call_first_stops_a_form_and_is_stored_for_staff(clinic_config, outbox_path):
    from actions.outbox import Outbox

    clinic_config(staff_webhook_url="")
    tracker = red_flag_tracker("numb groin", "emergency", active_loop="booking_form")
    messages, events = run_action(ActionEscalateRedFlag(), tracker)
    assert messages[0]["text"].startswith("Please call 911 now")
    assert any(e["event"] == "active_loop" and e.get("name") is None for e in events)  # the form stops
    assert any(e["event"] == "slot" and e["name"] == "red_flag_tier" and e["value"] == "emergency" for e in events)
    [stored] = Outbox(outbox_path).pending()
    assert '"tier": "emergency"' in stored["payload"] and "numb groin" not in stored["payload"]


def test_a_later_milder_sign_does_not_lower_the_tier(clinic_config, outbox_path):
    clinic_config()
    tracker = red_flag_tracker("pain for 2 months", "see_doctor", slots={"red_flag_tier": "emergency"})
    _, events = run_action(ActionEscalateRedFlag(), tracker)
    assert [e["value"] for e in events if e.get("name") == "red_flag_tier"] == ["emergency"]


def test_see_a_doctor_sign_answers_the_question_too_and_is_not_sent_to_staff(clinic_config, outbox_path):
    from actions.outbox import Outbox

    clinic_config()
    tracker = red_flag_tracker(
        "my sciatica has lasted 2 months, can massage help?", "see_doctor",
        ranking=[{"name": "report_red_flag", "confidence": 1.0}, {"name": "faq", "confidence": 0.9}],
        selected={"confidence": 0.8, "utter_action": "utter_faq/how_massage_helps"},
    )
    messages, _ = run_action(ActionEscalateRedFlag(), tracker)
    assert messages[0]["response"] == "utter_faq/how_massage_helps"
    assert "worth showing a doctor" in messages[1]["text"]
    assert Outbox(outbox_path).pending() == []


def test_booking_after_an_emergency_repeats_the_advice(clinic_config):
    clinic = clinic_config()
    tracker = make_tracker("book me in", "request_booking", slots={"red_flag_tier": "emergency"})
    messages, _ = run_action(ActionFinishBooking(), tracker)
    said = texts(messages)
    assert "can't book" in said and "call 911 now" in said and clinic.booking_page not in said


BOOKED = {"booking_technique": "swedish", "booking_length": 60, "booking_name": "Maria Gonzalez",
          "booking_time": {"text": "saturday morning", "date": "2026-11-21", "part_of_day": "morning"},
          "booking_contact": {"phone": "+13055550147", "email": None}, "screen_emergency": False,
          "screen_urgent": False, "screen_notes": [], "booking_consent": True}


def test_a_red_flag_after_a_booking_names_the_earlier_request_so_staff_can_hold_it(clinic_config, outbox_path):
    import json

    from actions.outbox import Outbox

    clinic_config(booking_webhook_url="", staff_webhook_url="")  # stored, waiting for staff
    for visitor in ("visitor-booked", "someone-else"):
        tracker = make_tracker("Yes, send my request", "affirm", slots=BOOKED, sender_id=visitor)
        messages, _ = run_action(ActionFinishBooking(), tracker)
        assert "saved your request" in messages[0]["text"]
    outbox = Outbox(outbox_path)
    [booked] = [row["id"] for row in outbox.pending("booking_request")
                if json.loads(row["payload"])["conversation_id"] == "visitor-booked"]

    for visitor, tier in (("visitor-booked", "urgent"), ("never-booked", "emergency")):
        tracker = red_flag_tracker("fever and my back is killing me", tier)
        tracker.sender_id = visitor
        run_action(ActionEscalateRedFlag(), tracker)
    alerts = {alert["conversation_id"]: alert for alert in
              (json.loads(row["payload"]) for row in outbox.pending("red_flag_escalation"))}
    assert alerts["visitor-booked"]["earlier_booking_requests"] == [booked]
    assert alerts["never-booked"]["earlier_booking_requests"] == []
    assert "Maria" not in json.dumps(alerts)  # the alert names the request, it doesn't copy it


def test_an_escalation_waiting_for_a_locked_outbox_does_not_hold_up_other_visitors(clinic_config, outbox_path):
    """The action server answers every visitor on one event loop. Storing a staff alert while the
    outbox database is locked (another process writing; SQLite waits up to 10 s) used to block that
    loop, so every other visitor waited too; now only this visitor's action waits."""
    import asyncio
    import sqlite3
    import threading
    import time

    from actions.outbox import Outbox
    from rasa_sdk.executor import CollectingDispatcher

    clinic_config(staff_webhook_url="")
    Outbox(outbox_path)  # the table exists
    locked, release = threading.Event(), threading.Event()

    def hold_the_database_for_a_while():
        db = sqlite3.connect(outbox_path)
        db.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(1.5)
        db.rollback()
        db.close()

    holder = threading.Thread(target=hold_the_database_for_a_while)
    holder.start()
    locked.wait(5)

    async def escalation_and_another_visitor():
        gaps, last = [], time.monotonic()

        async def other_visitor():  # the loop's liveness: how long it goes without a turn
            nonlocal last
            while not done.is_set():
                await asyncio.sleep(0.02)
                gaps.append(time.monotonic() - last)
                last = time.monotonic()

        done = asyncio.Event()
        ticker = asyncio.create_task(other_visitor())
        tracker = red_flag_tracker("numb groin", "emergency")
        await ActionEscalateRedFlag().run(CollectingDispatcher(), tracker, {})
        gaps.append(time.monotonic() - last)  # the loop's last turn came before the action returned
        done.set()
        await ticker
        return max(gaps)

    longest = asyncio.run(escalation_and_another_visitor())
    release.set()
    holder.join()
    assert longest < 0.5, f"the event loop was held {longest:.2f} s while the outbox was locked"
    assert len(Outbox(outbox_path).pending("red_flag_escalation")) == 1  # stored once the lock went
