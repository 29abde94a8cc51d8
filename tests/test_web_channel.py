"""The website widget's socket.io channel, through the running assistant.

A real socket.io client (python-socketio, long-polling) talks to Rasa as the
widget does: session_request, then user_uttered; replies arrive as bot_uttered.
"""
from __future__ import annotations

import time
import uuid

import pytest
import socketio


class WidgetClient:
    def __init__(self, port: int, session_id: str):
        self.session_id = session_id
        self.replies = []
        self.client = socketio.Client(reconnection=False)
        self.client.on("bot_uttered", self.replies.append)
        self.client.on("session_confirm", lambda *_: None)
        self.client.connect(f"http://localhost:{port}", transports=["polling"], socketio_path="/socket.io")
        self.client.emit("session_request", {"session_id": session_id})

    def say(self, text: str, quiet: float = 2.0, timeout: float = 30.0) -> list:
        """Sends a message; returns the replies that arrive until `quiet` seconds pass without one."""
        start = len(self.replies)
        self.client.emit("user_uttered", {"message": text, "session_id": self.session_id})
        deadline, last = time.time() + timeout, (len(self.replies), time.time())
        while time.time() < deadline:
            time.sleep(0.2)
            if len(self.replies) != last[0]:
                last = (len(self.replies), time.time())
            elif len(self.replies) > start and time.time() - last[1] > quiet:
                break
        return self.replies[start:]

    def close(self):
        self.client.disconnect()


@pytest.fixture
def widget(assistant):
    clients = []

    def open_widget(session_id=None):
        client = WidgetClient(assistant.port, session_id or uuid.uuid4().hex)
        clients.append(client)
        return client

    yield open_widget
    for client in clients:
        client.close()


def test_emergency_advice_arrives_first_and_marked_for_the_widget(widget):
    replies = widget().say("since this morning my groin is numb and i cant pee")
    assert replies[0]["text"].startswith("Please call 911 now")
    # The marker the widget styles the emergency message with (Rasa 3.6 dropped it: channels/web.py).
    assert {"custom": {"red_flag_tier": "emergency"}} in replies


def test_buttons_arrive_as_quick_replies(widget):
    replies = widget().say("Which massage techniques help sciatica?")
    quick = [r for r in replies if r.get("quick_replies")]
    assert quick and "Book a session" in [b["title"] for b in quick[0]["quick_replies"]]


def test_the_same_session_id_carries_the_conversation_across_a_reconnect(widget):
    session = uuid.uuid4().hex
    first = widget(session)
    assert "Which kind of massage" in " ".join(r.get("text", "") for r in first.say("I'd like to book a massage"))
    first.close()
    again = widget(session)  # a page reload in the same tab sends the stored session id
    assert "How long" in " ".join(r.get("text", "") for r in again.say("swedish"))
