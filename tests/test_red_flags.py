"""Red-flag escalation, measured on our own phrasing sets (tests/red_flags/):
through the trained NLU model and through the running assistant.

Targets (shared red-flags.md): every emergency phrasing escalated, at least 95%
of urgent ones, at most 1 false emergency per 50 harmless messages. The sets:
dev.yml (patterns were tuned on it), final.yml (measured before tuning on it),
and unseen.yml when present (written after tuning; reported, not asserted).
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import yaml

from tests.running_assistant import MODEL, STAFF_SECRET, Receiver, rest_conversation, text_of

SETS = Path(__file__).resolve().parent / "red_flags"
ASSERTED = ["dev.yml", "final.yml"]
ESCALATED = {"emergency", "unclear"}  # "unclear": the safety check (signs named, call 911 if any applies)


def load(name):
    return yaml.safe_load((SETS / name).read_text())


def cases(names):
    for name in names:
        for tier, categories in load(name).items():
            for category, messages in categories.items():
                for message in messages:
                    yield tier, category, message


def figures(results):
    """results: list of (expected tier, category, message, got tier). Prints and returns rates."""
    def rate(tier, accepted):
        rows = [r for r in results if r[0] == tier]
        hits = [r for r in rows if r[3] in accepted]
        return len(hits), len(rows), [r for r in rows if r[3] not in accepted]

    e = rate("emergency", ESCALATED)
    u = rate("urgent", {"urgent"} | ESCALATED)
    s = rate("see_doctor", {"see_doctor", "urgent"} | ESCALATED)
    harmless = [r for r in results if r[0] == "harmless"]
    false_emergency = [r for r in harmless if r[3] == "emergency"]
    other_alerts = [r for r in harmless if r[3] not in (None, "emergency")]
    unclear = sum(1 for r in results if r[3] == "unclear" and r[0] != "harmless")
    print(f"\n  emergency escalated {e[0]}/{e[1]}, urgent {u[0]}/{u[1]}, see-a-doctor {s[0]}/{s[1]}, "
          f"false emergencies {len(false_emergency)}/{len(harmless)} harmless "
          f"(other advice on harmless: {len(other_alerts)}; caught only by DIET: {unclear})")
    for row in e[2] + u[2] + s[2] + false_emergency:
        print(f"    MISS {row[0]}/{row[1]} -> {row[3]}: {row[2]}")
    return e, u, len(false_emergency), len(harmless)


def assert_targets(e, u, false_emergencies, harmless):
    assert e[0] == e[1], f"emergency phrasings not escalated: {[m[2] for m in e[2]]}"
    assert u[0] >= 0.95 * u[1], f"urgent recall {u[0]}/{u[1]} is below 95%"
    assert false_emergencies * 50 <= harmless, f"{false_emergencies} false emergencies in {harmless} harmless"


def test_the_phrasing_sets_are_big_enough_and_distinct():
    for name in ASSERTED:
        data = load(name)
        flagged = sum(len(m) for t in ("emergency", "urgent", "see_doctor") for m in data[t].values())
        harmless = sum(len(m) for m in data["harmless"].values())
        assert flagged >= 150 and harmless >= 60, name
    dev = {m for *_, m in cases(["dev.yml"])}
    final = {m for *_, m in cases(["final.yml"])}
    assert not dev & final


# --- through the trained NLU model -------------------------------------------------

@pytest.fixture(scope="module")
def agent():
    from rasa.core.agent import Agent

    return Agent.load(str(MODEL))


def nlu_tier(agent, text):
    parsed = asyncio.run(agent.parse_message(text))
    if parsed["intent"]["name"] != "report_red_flag":
        return None
    tiers = [e["value"] for e in parsed["entities"] if e["entity"] == "red_flag_tier"]
    return tiers[0] if tiers else "unclear"


def test_nlu_meets_the_targets(agent):
    results = [(t, c, m, nlu_tier(agent, m)) for t, c, m in cases(ASSERTED)]
    assert_targets(*figures(results))


def test_nlu_on_the_unseen_set_is_reported(agent):
    if not (SETS / "unseen.yml").exists():
        pytest.skip("no unseen.yml")
    figures([(t, c, m, nlu_tier(agent, m)) for t, c, m in cases(["unseen.yml"])])


def test_nlu_on_the_indirect_set_keeps_its_floors(agent):
    """tests/red_flags/indirect.yml (2026-11-25: emergencies 223/225 escalated, urgent 96/96, see-a-doctor
    45/50, harmless made emergencies 0/200): a little under those, as floors; the misses are printed."""
    e, u, false_emergencies, harmless = figures(
        [(t, c, m, nlu_tier(agent, m)) for t, c, m in cases(["indirect.yml"])])
    assert e[0] >= 0.98 * e[1] and u[0] >= 0.95 * u[1]
    assert false_emergencies <= 0.01 * harmless


@pytest.mark.parametrize("question", ["what is cauda equina syndrome?", "can sciatica affect both legs?",
                                      "what does saddle numbness mean"])
def test_questions_about_red_flags_are_not_alerts(agent, question):
    assert nlu_tier(agent, question) is None


# --- through the running assistant ---------------------------------------------------

EMERGENCY_START = "Please call {} now"


def reply_tier(replies, number):
    said = text_of(replies)
    if said.startswith(EMERGENCY_START.format(number)):
        return "emergency"
    if said.startswith("Before I answer, a quick safety check") and f"call {number} now" in said:
        return "unclear"  # the safety check counts only with the emergency number and the signs in it
    if said.startswith("Please contact a doctor today"):
        return "urgent"
    if "worth showing a doctor" in said:
        return "see_doctor"
    return None


def test_running_assistant_meets_the_targets(assistant):
    number = assistant.clinic["emergency_number"]
    results = []
    for i, (tier, category, message) in enumerate(cases(ASSERTED)):
        results.append((tier, category, message, reply_tier(assistant.say(f"rf-{tier}-{i}", message), number)))
    assert_targets(*figures(results))


def test_emergency_at_the_first_message_after_an_faq_and_then_no_booking(assistant, staff_receiver):
    number = assistant.clinic["emergency_number"]
    first = text_of(assistant.say("rf-first", "i cant feel anything round my privates since this morning"))
    assert first.startswith(f"Please call {number} now")

    sender = "rf-after-faq"
    assert "sciatic" in text_of(assistant.say(sender, "What causes sciatica?")).lower()
    assert text_of(assistant.say(sender, "also my wee just dribbles out and i cant stop it")).startswith(
        f"Please call {number} now")
    booking = text_of(assistant.say(sender, "I'd like to book a massage for tomorrow"))
    assert "can't book" in booking and f"call {number}" in booking

    conversations = {rest_conversation("rf-first"), rest_conversation(sender)}
    staff_receiver.wait_for(lambda n: n.get("conversation_id") == rest_conversation("rf-first"))
    mine = staff_receiver.wait_for(lambda n: n.get("conversation_id") in conversations)
    assert {n["conversation_id"] for n in mine} == conversations
    for notification in mine:
        assert notification["tier"] == "emergency" and notification["event"] == "red_flag_escalation"
        assert set(notification) == {"id", "event", "time", "tier", "conversation_id", "clinic",
                                     "earlier_booking_requests"}  # no message text
        assert notification["earlier_booking_requests"] == []


def test_an_emergency_after_a_sent_booking_names_that_booking_to_staff(assistant, receiver):
    sender = "rf-after-booking"
    replies = [text_of(assistant.say(sender, message)) for message in (
        "i want to book a swedish massage on saturday morning", "60 minutes", "Maria Gonzalez",
        "maria.gonzalez@example.com", "no", "no", "none", "yes")]
    assert "I've sent your request" in replies[-1]
    conversation = rest_conversation(sender)
    [booking] = receiver.wait_for(lambda r: r["event"] == "booking_request"
                                  and r.get("conversation_id") == conversation)

    said = text_of(assistant.say(sender, "now my groin has gone numb and i cant control my bladder"))
    assert said.startswith(f"Please call {assistant.clinic['emergency_number']} now")
    [alert] = receiver.wait_for(lambda n: n["event"] == "red_flag_escalation"
                                and n.get("conversation_id") == conversation)
    assert alert["earlier_booking_requests"] == [booking["id"]]
    assert "Maria" not in str(alert) and receiver.rejected == []


def test_urgent_sign_blocks_booking_until_a_doctor_clears_it(assistant):
    sender = "rf-urgent-booking"
    said = text_of(assistant.say(sender, "my back really hurts and ive had a fever and chills since yesterday"))
    assert said.startswith("Please contact a doctor today")
    assert "doctor" in text_of(assistant.say(sender, "can I book a deep tissue massage?"))
    assert "booking page" not in text_of(assistant.say(sender, "book me in please"))


def test_see_a_doctor_sign_still_allows_booking(assistant):
    sender = "rf-see-doctor"
    said = text_of(assistant.say(sender, "my sciatica has been going on for about two months now"))
    assert "worth showing a doctor" in said and "alongside medical care" in said
    assert "Which kind of massage" in text_of(assistant.say(sender, "I'd like to book a massage"))


def test_harmless_and_question_messages_do_not_alert_staff(assistant, staff_receiver):
    for i, message in enumerate(["no numbness at all, just a dull ache", "my bladder is totally fine",
                                 "what is cauda equina syndrome?", "my foot fell asleep on the train"]):
        assistant.say(f"rf-calm-{i}", message)
    time.sleep(1)
    assert not [n for n in staff_receiver.received if n["conversation_id"].startswith(rest_conversation("rf-calm-"))]


# --- the outbox: nothing lost when the staff endpoint is down ---------------------------

def test_notification_waits_while_staff_endpoint_is_down_then_is_delivered_once(tmp_path):
    from actions.outbox import Destination, Outbox

    receiver = Receiver()  # not started yet: the endpoint is down
    to_staff = lambda kind: Destination(receiver.staff_url(), STAFF_SECRET)  # noqa: E731
    outbox = Outbox(tmp_path / "outbox.db")
    stored = outbox.add("red_flag_escalation", {"tier": "emergency", "conversation_id": "abc"})

    assert asyncio.run(outbox.deliver_due(to_staff)) == 0
    [waiting] = outbox.pending()
    assert waiting["attempts"] == 1 and waiting["last_error"]
    # Backed off: not retried again straight away.
    assert asyncio.run(outbox.deliver_due(to_staff)) == 0 and outbox.pending()[0]["attempts"] == 1

    receiver.start()
    try:
        later = time.time() + 3600
        assert asyncio.run(outbox.deliver_due(to_staff, now=later)) == 1
        assert asyncio.run(outbox.deliver_due(to_staff, now=later)) == 0
        assert receiver.received == [stored] and receiver.rejected == []
        assert outbox.pending() == []
    finally:
        receiver.stop()


# --- the learned layer's safety check ---------------------------------------------------

# Red flags in words the patterns don't know (checked below): the learned layer suspects them.
UNKNOWN_WORDING_EMERGENCY = "found a horrible mess in my knickers this morning and never felt it happen"
UNKNOWN_WORDING_IN_A_LOGISTICS_QUESTION = "Do you have parking? also since tuesday my knickers are damp and i never felt it happen"


def test_the_patterns_alone_miss_these_wordings():
    from components.red_flags import detector_for

    detector = detector_for("build/spacy_en")
    for message in (UNKNOWN_WORDING_EMERGENCY, UNKNOWN_WORDING_IN_A_LOGISTICS_QUESTION):
        assert detector.detect(message).tier is None, message


def test_a_suspected_red_flag_gets_the_safety_check_and_a_yes_escalates(assistant, staff_receiver):
    number = assistant.clinic["emergency_number"]
    sender = "rf-safety-yes"
    replies = assistant.say(sender, UNKNOWN_WORDING_EMERGENCY)
    check = replies[0]
    assert reply_tier(replies, number) == "unclear", replies
    for sign in ("groin", "bladder", "both legs", "chest pain"):
        assert sign in check["text"]
    assert [b["title"] for b in check["buttons"]] == ["Yes, one of these", "No, none of these"]
    # Nobody is alerted on a suspicion alone ...
    assert not [n for n in staff_receiver.received if n["conversation_id"] == rest_conversation(sender)]

    said = text_of(assistant.say(sender, "yes"))
    assert said.startswith(f"Please call {number} now")
    # ... but a yes is an emergency: staff are told, and booking is refused.
    [alert] = staff_receiver.wait_for(lambda n: n.get("conversation_id") == rest_conversation(sender))
    assert alert["tier"] == "emergency"
    assert "can't book" in text_of(assistant.say(sender, "can I book a massage for friday?"))


def test_no_to_the_safety_check_and_the_question_is_still_answered(assistant):
    number = assistant.clinic["emergency_number"]
    sender = "rf-safety-no"
    assert reply_tier(assistant.say(sender, UNKNOWN_WORDING_IN_A_LOGISTICS_QUESTION), number) == "unclear"
    said = text_of(assistant.say(sender, "No, none of these"))
    assert "Thank you for checking" in said and f"call {number}" in said
    # Nothing was escalated: booking stays open.
    assert "Which kind of massage" in text_of(assistant.say(sender, "I'd like to book a massage"))


# --- each layer measured apart (floors under what was measured on dev + final) ------------------

def test_each_layer_keeps_its_measured_recall_and_false_alarms(agent):
    from scripts.measure_red_flag_layers import ACCEPTED, verdicts

    rows = [("none" if tier == "harmless" else tier, message) for tier, _, message in cases(ASSERTED)]
    got = [verdicts(asyncio.run(agent.parse_message(message))) for _, message in rows]

    def rate(layer, tier):
        mine = [g[layer] for (t, _), g in zip(rows, got) if t == tier]
        caught = sum(v in ACCEPTED[tier] for v in mine) if tier != "none" else sum(v is not None for v in mine)
        return caught / len(mine)

    # Measured 2026-11-24: patterns 235/235 emergency, 141/143 urgent; the learned layer alone
    # 222/235 emergency and 36/228 hard harmless messages given a safety check; all: 60/60 see-a-doctor.
    assert rate("patterns", "emergency") == 1.0
    assert rate("patterns", "urgent") >= 0.95
    assert rate("learned", "emergency") >= 0.90
    assert rate("learned", "none") <= 0.20
    assert rate("all", "see_doctor") >= 0.90
    harmless_told_911 = sum(g["all"] == "emergency" for (t, _), g in zip(rows, got) if t == "none")
    assert harmless_told_911 * 50 <= sum(t == "none" for t, _ in rows)
