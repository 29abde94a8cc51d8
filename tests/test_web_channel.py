"""The website widget's socket.io channel, through the running assistant.

A real socket.io client (python-socketio, long-polling) talks to Rasa as the
widget does: session_request, then user_uttered; replies arrive as bot_uttered.
"""
from __future__ import annotations

import queue
import time
import uuid
from typing import Any, Optional

import pytest
import socketio


class WidgetClient:
    """The widget's side of the channel: asks for a session (with the id and token it kept, if
    any) and takes the conversation the server confirms; sends messages with an id and their ack."""

    def __init__(self, port: int, session_id: Optional[str] = None, session_token: Optional[str] = None,
                 origin: Optional[str] = None):
        self.replies = []
        confirmations: "queue.Queue" = queue.Queue()
        self.client = socketio.Client(reconnection=False)
        self.client.on("bot_uttered", self.replies.append)
        self.client.on("session_confirm", confirmations.put)
        self.client.connect(f"http://localhost:{port}", headers={"Origin": origin} if origin else {},
                            transports=["polling"], socketio_path="/socket.io")
        self.client.emit("session_request", {"session_id": session_id, "session_token": session_token})
        confirmed = confirmations.get(timeout=30)
        if isinstance(confirmed, str):  # Rasa's own channel confirms with the bare id
            confirmed = {"session_id": confirmed}
        self.session_id, self.session_token = confirmed["session_id"], confirmed.get("session_token")

    def send(self, text: str, message_id: Optional[str] = None, **fields) -> Any:
        """Sends a message; returns the server's acknowledgement."""
        message = {"message": text, "session_id": self.session_id, "message_id": message_id or uuid.uuid4().hex,
                   **fields}
        return self.client.call("user_uttered", message, timeout=30)

    def say(self, text: str, quiet: float = 2.0, timeout: float = 30.0, **fields) -> list:
        """Sends a message; returns the replies that arrive until `quiet` seconds pass without one."""
        start = len(self.replies)
        self.send(text, **fields)
        return self.replies_since(start, quiet, timeout)

    def replies_since(self, start: int, quiet: float = 2.0, timeout: float = 30.0) -> list:
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


def texts(replies) -> str:
    return " ".join(r.get("text", "") for r in replies)


@pytest.fixture
def widget(assistant):
    clients = []

    def open_widget(session_id=None, session_token=None, origin=None):
        client = WidgetClient(assistant.port, session_id, session_token, origin)
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


def test_the_conversation_carries_on_after_a_reconnect_with_its_session_token(widget):
    first = widget()
    assert "Which kind of massage" in texts(first.say("I'd like to book a massage"))
    first.close()
    # A page reload in the same tab sends the stored session id and token: the same conversation.
    again = widget(first.session_id, first.session_token)
    assert again.session_id == first.session_id and again.session_token
    assert "How long" in texts(again.say("swedish"))


def test_a_message_is_acknowledged_and_a_resent_one_is_not_processed_twice(widget, assistant):
    """The widget resends a message whose ack it did not get; the server answers it once."""
    visitor = widget()
    message_id = uuid.uuid4().hex
    assert visitor.send("What causes sciatica?", message_id) == {"status": "received"}
    assert "sciatic nerve" in texts(visitor.replies_since(0))
    answered = len(visitor.replies)
    assert visitor.send("What causes sciatica?", message_id) == {"status": "duplicate"}
    assert "virtual assistant" in texts(visitor.say("hello"))  # the next message is answered ...
    users = [e["text"] for e in assistant.tracker(visitor.session_id)["events"] if e["event"] == "user"]
    assert users.count("What causes sciatica?") == 1  # ... and the resent one was not processed again
    assert "sciatic nerve" not in texts(visitor.replies[answered:])
