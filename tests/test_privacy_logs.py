"""Visitors' names, phone numbers and e-mail addresses never reach the logs.

Two complete bookings go through the running assistant (Rasa server and action server,
started as make run starts them, at the same log level), one leaving a phone number and
one an e-mail address; the booking system receives them, and neither server's log holds
any of them, in any spelling.
"""
from __future__ import annotations

import re
import uuid

import pytest

from tests.running_assistant import rest_conversation, text_of

NAME = "Quentin Marblewood"
PHONE = "305 555 0177"
EMAIL = "quentin.marblewood@mail.example"


def book(assistant, sender: str, contact: str) -> None:
    steps = [("book me a deep tissue massage", "How long"), ("60 minutes", "What day and time"),
             ("saturday morning", None), (NAME, None), (contact, None), ("No, none of these", None),
             ("no", None), ("None of these", None), ("Yes, send my request", None)]
    for text, expected in steps:
        said = text_of(assistant.say(sender, text))
        if expected:
            assert expected in said, said


@pytest.mark.parametrize("contact", [PHONE, EMAIL])
def test_a_booking_leaves_no_name_phone_or_email_in_the_logs(assistant, receiver, contact):
    sender = f"privacy-{uuid.uuid4().hex[:6]}"
    book(assistant, sender, contact)
    [request] = receiver.wait_for(lambda r: r.get("conversation_id") == rest_conversation(sender)
                                  and r["event"] == "booking_request")
    visitor = request["visitor"]  # the booking system got them
    assert visitor["name"] == NAME
    assert visitor["email"] == EMAIL if "@" in contact else visitor["phone"] == "+13055550177"

    logs = {name: (assistant.workdir / name).read_text(errors="replace") for name in ("rasa.log", "actions.log")}
    digits = re.sub(r"\D", "", PHONE)
    for name, log in logs.items():
        flat = re.sub(r"[\s().-]", "", log)
        assert "Marblewood" not in log and "marblewood" not in log.lower(), name
        assert digits not in flat and digits[-7:] not in flat, name
        assert "mail.example" not in log, name
        assert sender not in log, name  # conversation ids appear only as hashes
