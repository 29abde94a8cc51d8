"""A visitor's conversation belongs to that visitor (issue 17, section 1), through the running assistant.

The attacks from the issue, as a stranger would make them: a socket.io `session_request` naming a
widget visitor's conversation (from an allowed page, with no token, a forged one, another
conversation's or an expired one), messages naming another conversation, REST requests whose
"sender" is a widget visitor's or an SMS visitor's conversation id, REST without its token, and a
fake red flag typed into someone else's conversation. Each must leave the visitor's conversation
as it was, read back through Rasa's HTTP API.
"""
from __future__ import annotations

import json
import queue
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import jwt
import pytest
import socketio

from channels.credentials import channel_key
from tests.running_assistant import API_TOKEN, CHANNEL_SECRET, REST_TOKEN, rest_conversation, say, text_of
from tests.test_web_channel import WidgetClient, texts

# What visitor A told the widget while booking; none of it may reach anyone else.
NAME, EMAIL = "Jordan Lee", "jordan.lee@example.com"
BOOKING = [("I'd like to book a deep tissue massage", "How long"), ("an hour", "What day and time"),
           ("next tuesday afternoon", "What name"), (NAME, None), (EMAIL, "safety check")]
RED_FLAG = "since this morning my groin is numb and i cant pee"


@pytest.fixture
def widget(assistant):
    clients = []

    def open_widget(session_id=None, session_token=None):
        # From the page the widget is allowed on, as a script copying a browser's Origin would.
        client = WidgetClient(assistant.port, session_id, session_token,
                              origin=f"http://127.0.0.1:{assistant.page_ports[0]}")
        clients.append(client)
        return client

    yield open_widget
    for client in clients:
        client.close()


def half_booked(widget) -> WidgetClient:
    """Visitor A, halfway through the booking form: name and e-mail given, safety questions next."""
    visitor = widget()
    for text, expected in BOOKING:
        said = texts(visitor.say(text))
        if expected:
            assert expected in said, said
    return visitor


def events(assistant, conversation_id: str) -> list:
    return assistant.tracker(conversation_id)["events"]


def leaks(said: str) -> bool:
    return "Jordan" in said or "jordan.lee" in said or "Lee" in said.split()


def staff_alerts_for(receiver, conversation_id: str) -> list:
    return [n for n in receiver.received if n.get("conversation_id") == conversation_id
            and n.get("event") == "red_flag_escalation"]


def test_a_stranger_naming_a_visitors_conversation_gets_a_new_one(assistant, widget):
    visitor = half_booked(widget)
    before = events(assistant, visitor.session_id)
    assert assistant.tracker(visitor.session_id)["slots"]["booking_name"] == NAME

    someone_else = widget()  # a real session of the stranger's own: a genuine token, for another conversation
    now = int(time.time())
    widget_key = channel_key(CHANNEL_SECRET, "widget-session")
    tokens = {
        "no token": None,
        "forged token": "forged",
        "another conversation's token": someone_else.session_token,
        "signed with another key": jwt.encode({"sub": visitor.session_id, "exp": now + 3600},
                                              "another-key-0123456789abcdef0123456789", algorithm="HS256"),
        "expired token": jwt.encode({"sub": visitor.session_id, "exp": now - 1}, widget_key, algorithm="HS256"),
    }
    for case, token in tokens.items():
        stranger = widget(visitor.session_id, token)
        assert stranger.session_id not in (visitor.session_id, someone_else.session_id), case
        said = texts(stranger.say("sorry, what did I say?")) if case == "no token" else ""
        said += texts(stranger.say("No, cancel"))
        assert not leaks(said), (case, said)

    assert events(assistant, visitor.session_id) == before  # not a single event added
    # The visitor carries on where they were: the booking was not cancelled.
    assert "And any of these" in texts(visitor.say("No, none of these"))


def test_messages_go_only_to_the_conversation_the_socket_was_given(assistant, widget):
    visitor = half_booked(widget)
    before = events(assistant, visitor.session_id)

    replies, confirmations = [], queue.Queue()
    stranger = socketio.Client(reconnection=False)
    stranger.on("bot_uttered", replies.append)
    stranger.on("session_confirm", confirmations.put)
    stranger.connect(f"http://localhost:{assistant.port}", transports=["polling"], socketio_path="/socket.io",
                     headers={"Origin": f"http://127.0.0.1:{assistant.page_ports[0]}"})
    try:
        # Before any session_request, and after one, naming the visitor's conversation.
        cancel = {"message": "No, cancel", "session_id": visitor.session_id, "message_id": uuid.uuid4().hex}
        assert stranger.call("user_uttered", cancel, timeout=30) == {"status": "no_session"}
        stranger.emit("session_request", {})
        issued = confirmations.get(timeout=30)
        assert issued["session_id"] != visitor.session_id
        cancel["message_id"] = uuid.uuid4().hex
        assert stranger.call("user_uttered", cancel, timeout=30) == {"status": "no_session"}
        deadline = time.time() + 10
        while len(replies) < 2 and time.time() < deadline:
            time.sleep(0.1)
        assert [r["text"] for r in replies] == ["Sorry, I lost track of our conversation. Please reload the page "
                                                "and send your message again."] * 2
    finally:
        stranger.disconnect()
    assert events(assistant, visitor.session_id) == before
    assert "And any of these" in texts(visitor.say("No, none of these"))


def append_events(assistant, conversation_id: str, new_events: list) -> None:
    url = (f"http://127.0.0.1:{assistant.port}/conversations/{urllib.parse.quote(conversation_id, safe=':+')}"
           f"/tracker/events?" + urllib.parse.urlencode({"token": API_TOKEN}))
    request = urllib.request.Request(url, data=json.dumps(new_events).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 200


def test_a_rest_caller_cannot_reach_a_widget_or_sms_conversation(assistant, widget):
    # An SMS visitor's conversation as the SMS channel named it, by the phone number (put in
    # through the HTTP API: this machine cannot reach Twilio to answer a real one).
    sms = "+13055550188"
    append_events(assistant, sms, [
        {"event": "user", "text": "I'd like to book a swedish massage", "timestamp": time.time(),
         "parse_data": {"intent": {"name": "request_booking", "confidence": 1.0}, "entities": []}},
        {"event": "slot", "name": "booking_name", "value": "Casey Rivers", "timestamp": time.time()},
        {"event": "slot", "name": "booking_contact", "value": "casey.rivers@example.com", "timestamp": time.time()}])
    visitor = half_booked(widget)
    before = {sms: events(assistant, sms), visitor.session_id: events(assistant, visitor.session_id)}

    for conversation_id in (sms, visitor.session_id):
        replies = say(assistant.port, conversation_id, "sorry, what did I say?")
        replies += say(assistant.port, conversation_id, "No, cancel")
        said = text_of(replies)
        assert not leaks(said) and "Casey" not in said and "casey.rivers" not in said, said
        # It went to the REST channel's own conversation of that name.
        assert {r["recipient_id"] for r in replies} == {rest_conversation(conversation_id)}
        users = [e["text"] for e in events(assistant, rest_conversation(conversation_id)) if e["event"] == "user"]
        assert users == ["sorry, what did I say?", "No, cancel"]

    assert {c: events(assistant, c) for c in before} == before
    assert "And any of these" in texts(visitor.say("No, none of these"))


def post_rest(port: int, body: dict, authorization):
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    request = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                                     data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer wrong-token-0123456789abcdef0123456789",
                                           f"Bearer {REST_TOKEN}x", f"Basic {REST_TOKEN}", REST_TOKEN])
def test_rest_without_its_token_is_refused_and_nothing_is_stored(assistant, authorization):
    sender = f"no-token-{uuid.uuid4().hex[:8]}"
    status, answer = post_rest(assistant.port, {"sender": sender, "message": "I'd like to book a massage"},
                               authorization)
    assert status == 401 and "Authorization: Bearer" in answer["error"], (status, answer)
    with sqlite3.connect(assistant.db) as db:
        (stored,) = db.execute("SELECT COUNT(*) FROM events WHERE sender_id IN (?, ?)",
                               (sender, rest_conversation(sender))).fetchone()
    assert stored == 0
    # The same request with the token is answered.
    status, answer = post_rest(assistant.port, {"sender": sender, "message": "I'd like to book a massage"},
                               f"Bearer {REST_TOKEN}")
    assert status == 200 and "Which kind of massage" in text_of(answer)


def test_a_fake_red_flag_typed_by_a_stranger_never_reaches_the_visitors_conversation(assistant, widget, receiver):
    visitor = half_booked(widget)
    before = events(assistant, visitor.session_id)

    # Over socket.io, naming the visitor's conversation without its token, and over REST with the
    # visitor's conversation id as the sender: each answered in the stranger's own conversation.
    stranger = widget(visitor.session_id)
    assert texts(stranger.say(RED_FLAG)).startswith("Please call 911 now")
    assert text_of(say(assistant.port, visitor.session_id, RED_FLAG)).startswith("Please call 911 now")

    assert events(assistant, visitor.session_id) == before
    assert assistant.tracker(visitor.session_id)["slots"]["red_flag_tier"] is None
    # Staff hear of the conversations the stranger typed in, never of the visitor's.
    for typed_in in (stranger.session_id, rest_conversation(visitor.session_id)):
        assert receiver.wait_for(lambda n: n.get("conversation_id") == typed_in
                                 and n["event"] == "red_flag_escalation"), typed_in
    assert staff_alerts_for(receiver, visitor.session_id) == []
    # The visitor's booking is not refused.
    assert "And any of these" in texts(visitor.say("No, none of these"))
