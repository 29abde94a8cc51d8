"""Conversations through the running assistant: the real Rasa server (REST
channel), the real action server and an SQLite tracker store, as `make run`
starts them (here on free ports, with a temporary database)."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import yaml

from tests.running_assistant import rest_conversation, text_of

ROOT = Path(__file__).resolve().parent.parent


def faq_answer(name: str) -> str:
    data = yaml.safe_load((ROOT / "data" / "faq" / f"{name}.yml").read_text())
    return data["responses"][f"utter_faq/{name}"][0]["text"]


def all_faq_answers():
    return [faq_answer(p.stem) for p in (ROOT / "data" / "faq").glob("*.yml")]


def test_greeting_explains_itself_with_the_emergency_number_and_topic_buttons(assistant):
    replies = assistant.say("greeter", "hello!")
    said = text_of(replies)
    assert "virtual assistant" in said and "not medical advice" in said and "911" in said
    assert any(r.get("buttons") for r in replies)


@pytest.mark.parametrize(
    "question, faq",
    [
        ("What causes sciatica?", "what_causes_sciatica"),
        ("do hot rocks help a tight lower back", "technique_hot_stone"),
        ("what is best to wear to my first massage", "what_to_wear"),
        ("is it bad to be achy the day after a massage", "soreness_after_massage"),
    ],
)
def test_faq_questions_get_their_answer(assistant, question, faq):
    assert text_of(assistant.say(f"faq-{faq}", question)) == faq_answer(faq)


@pytest.mark.parametrize(
    "question",
    ["what's the best sushi in town", "can you recommend a good mortgage broker", "how do I change a tyre"],
)
def test_off_topic_questions_get_no_article_answer(assistant, question):
    said = text_of(assistant.say("off-topic", question))
    assert said.startswith("Sorry")
    assert said not in all_faq_answers()


def test_medical_advice_is_referred_to_a_doctor(assistant):
    said = text_of(assistant.say("medical", "how many ibuprofen should I take for sciatica"))
    assert "doctor" in said and "medicines" in said


def test_price_is_never_invented(assistant):
    clinic = yaml.safe_load((ROOT / "clinic.yml").read_text())
    said = text_of(assistant.say("price", "how much does a deep tissue massage cost?"))
    assert "$" not in said and "rather not guess" in said and clinic["phone"] in said


def test_conversation_survives_a_server_restart(assistant):
    sender = "restart-visitor"
    first = text_of(assistant.say(sender, "can I book a hot stone massage"))
    assert "How long" in first  # the technique was taken from the message
    assistant.restart_rasa()
    # The booking in progress comes back from the SQLite tracker store, slots and all ...
    slots = assistant.slots(sender)
    assert slots["booking_technique"] and "hot stone" in slots["booking_technique"].lower()
    assert slots["requested_slot"] == "booking_length"
    # ... and goes on to the next question.
    again = text_of(assistant.say(sender, "90 minutes"))
    assert "What day and time" in again
    with sqlite3.connect(assistant.db) as db:
        (user_turns,) = db.execute(
            "SELECT COUNT(*) FROM events WHERE sender_id = ? AND type_name = 'user'", (rest_conversation(sender),)
        ).fetchone()
    assert user_turns == 2


def test_action_server_down_gets_a_short_apology_and_the_conversation_carries_on(assistant):
    """The action server dies mid-booking: the visitor is told within 5 s how to reach the
    clinic, not left without a reply; once it is back, the booking goes on where it was."""
    from tests.running_assistant import stop

    sender = "actions-down-visitor"
    assert "How long" in text_of(assistant.say(sender, "can I book a hot stone massage"))
    stop(assistant.actions)
    try:
        started = time.monotonic()
        said = text_of(assistant.say(sender, "90 minutes"))
        assert time.monotonic() - started < 5
        assert said.startswith("Sorry, something went wrong on my side")
        assert said.count("Sorry, something went wrong") == 1  # once per message, however many actions failed
        assert assistant.clinic["phone"] in said and "911" in said
        greeting = text_of(assistant.say("actions-down-newcomer", "hello"))
        assert greeting.startswith("Sorry, something went wrong on my side")
    finally:
        assistant.start_actions()
    # Back: the form asks its next question, the length having been kept or asked again.
    again = text_of(assistant.say(sender, "90 minutes"))
    assert "What day and time" in again
    assert "virtual assistant" in text_of(assistant.say("actions-down-newcomer", "hello"))


def this_machines_address() -> str:
    """An address of this machine other than loopback (the one it reaches the network from)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        return probe.getsockname()[0]


def test_the_action_server_is_reachable_from_this_machine_only(assistant):
    import socket

    address = this_machines_address()
    if address.startswith("127."):
        pytest.skip("this machine has no address besides loopback")
    with socket.create_connection(("127.0.0.1", assistant.actions_port), timeout=5):
        pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, assistant.actions_port), timeout=5).close()


@pytest.mark.parametrize("path", ["/status", "/conversations/someone/tracker", "/domain", "/version"])
def test_the_http_api_answers_only_with_the_token(assistant, path):
    import urllib.error
    import urllib.parse
    import urllib.request

    from tests.running_assistant import API_TOKEN

    url = f"http://127.0.0.1:{assistant.port}{path}"
    if path == "/version":  # Rasa's version is public; everything about the assistant is not
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert answer.status == 200
        return
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    with urllib.request.urlopen(f"{url}?token={urllib.parse.quote(API_TOKEN)}", timeout=10) as answer:
        assert answer.status == 200
