"""The guard every public channel puts in front of the assistant (channels/guard.py),
with Rasa's own UserMessage, CollectingOutputChannel and FailSafeTrackerStore."""
from __future__ import annotations

import asyncio

import pytest
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker

from channels.guard import (EMPTY, RATE_PER_ADDRESS, TOO_FAST, RateLimit, VisitorGuard, address_key, clean_text,
                            client_address, limits_from_environment, parse_trusted_proxies, reset_client_address,
                            set_client_address, without_payload_syntax)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def send(guard, handler, text, sender="visitor", channel="rest", address=None):
    """(replies the visitor got, messages the assistant was handed), from this client address if given
    (as the channels record it for each request)."""
    output, handled = CollectingOutputChannel(), []

    async def assistant(message):
        handled.append(message.text)
        await handler(message)

    async def request():
        token = set_client_address(address)
        try:
            await guard.wrap(assistant)(UserMessage(text, output, sender, input_channel=channel))
        finally:
            reset_client_address(token)

    asyncio.run(request())
    return [m["text"] for m in output.messages], handled


async def answers(message):
    await message.output_channel.send_text_message(message.sender_id, f"answer to {message.text}")


@pytest.mark.parametrize("typed, read_as", [
    ('/request_booking{"booking_name": "Mallory", "booking_consent": true}',
     'request_booking{"booking_name": "Mallory", "booking_consent": true}'),
    ("  /affirm", "affirm"),
    ("/ /restart", "restart"),
    ("//booking_form", "booking_form"),
    ("what is 1/2 of a session?", "what is 1/2 of a session?"),
    ("/greet", "/greet"),  # the widget's opening, an intent with no values
    ("/greet{\"booking_name\": \"Mallory\"}", "greet{\"booking_name\": \"Mallory\"}"),
])
def test_payload_syntax_typed_by_a_visitor_reaches_the_assistant_as_plain_words(typed, read_as):
    replies, handled = send(VisitorGuard(), answers, typed)
    assert handled == [read_as] and replies == [f"answer to {read_as}"]


def test_control_characters_are_removed_and_line_breaks_kept():
    assert clean_text("my back\x00 hurts\x1b[31m\r\nsince\tmonday\x7f") == "my back hurts[31m\nsince\tmonday"
    assert clean_text("\ud800lone surrogate") == "?lone surrogate"
    assert clean_text(None) == ""
    assert without_payload_syntax(clean_text("\x00/affirm")) == "affirm"


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "\x00\x01", "/", " / "])
def test_an_empty_message_gets_a_prompt_and_is_not_processed(text):
    replies, handled = send(VisitorGuard(), answers, text)
    assert handled == [] and replies == [EMPTY]


def test_a_too_long_message_is_refused_with_the_limit_and_not_processed():
    replies, handled = send(VisitorGuard(max_chars=2000), answers, "pains" * 1000)
    assert handled == [] and "5,000 characters" in replies[0] and "2,000" in replies[0]
    assert send(VisitorGuard(max_chars=2000), answers, "x" * 2000)[1] == ["x" * 2000]


def test_a_flood_from_one_sender_is_refused_politely_and_others_still_get_through(caplog):
    clock = FakeClock()
    guard = VisitorGuard(RateLimit(messages=20, seconds=60, clock=clock))
    results = [send(guard, answers, f"question {i}", sender="flooder") for i in range(30)]
    assert [bool(handled) for _, handled in results] == [True] * 20 + [False] * 10
    assert all(replies == [TOO_FAST] for replies, _ in results[20:])
    assert caplog.text.count("Rate limit") == 1  # one log line for the flood
    assert send(guard, answers, "hello", sender="someone else")[1] == ["hello"]
    assert send(guard, answers, "hello", sender="flooder", channel="socketio")[1] == ["hello"]  # per channel
    clock.now += 3.1  # 20 per 60 s: one more message after 3 s
    assert send(guard, answers, "again", sender="flooder")[1] == ["again"]
    assert send(guard, answers, "again", sender="flooder")[1] == []


def test_the_rate_limit_forgets_the_least_recent_senders_beyond_its_memory():
    limit = RateLimit(messages=1, seconds=60, clock=FakeClock(), memory=100)
    for i in range(1000):
        assert limit.allow(("rest", f"sender-{i}"))
    assert len(limit._buckets) == 100


def test_rotating_sender_ids_from_one_address_is_refused_beyond_the_address_limit(caplog):
    clock = FakeClock()
    guard = VisitorGuard(RateLimit(messages=20, seconds=60, clock=clock),
                         address_limit=RateLimit(messages=120, seconds=60, clock=clock))
    results = [send(guard, answers, "hi", sender=f"rotating-{i}", address="203.0.113.7") for i in range(300)]
    assert [bool(handled) for _, handled in results] == [True] * 120 + [False] * 180
    assert all(replies == [TOO_FAST] for replies, _ in results[120:])
    assert caplog.text.count("from client address 203.0.113.7") == 1  # one log line for the flood
    # Another address, and a channel that knows no address (SMS: the provider's servers call), are answered.
    assert send(guard, answers, "hello", sender="neighbour", address="203.0.113.8")[1] == ["hello"]
    assert send(guard, answers, "hello", sender="sms-visitor", channel="twilio")[1] == ["hello"]
    clock.now += 0.5  # 120 a minute: one more every half second
    assert send(guard, answers, "again", sender="rotating-new", address="203.0.113.7")[1] == ["again"]
    assert send(guard, answers, "again", sender="rotating-newer", address="203.0.113.7")[1] == []


def test_one_senders_flood_does_not_use_up_the_allowance_of_others_at_the_same_address():
    clock = FakeClock()
    guard = VisitorGuard(RateLimit(messages=20, seconds=60, clock=clock),
                         address_limit=RateLimit(messages=120, seconds=60, clock=clock))
    for _ in range(300):
        send(guard, answers, "flood", sender="flooder", address="198.51.100.1")
    handled = [send(guard, answers, "hi", sender=f"colleague-{i}", address="198.51.100.1")[1] for i in range(100)]
    assert handled == [["hi"]] * 100


def test_ipv6_addresses_count_by_their_64_block():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.4") == "192.0.2.4" and address_key("192.0.2.4") == "192.0.2.4"


def test_x_forwarded_for_counts_only_from_a_trusted_proxy():
    proxies = parse_trusted_proxies("10.0.0.5, 172.16.0.0/12")
    # A client that is not a proxy can write anything in the header: its own address counts.
    assert client_address("203.0.113.7", "198.51.100.1", proxies) == "203.0.113.7"
    assert client_address("203.0.113.7", "198.51.100.1", []) == "203.0.113.7"
    # Through nginx: the address nginx appended; what the client wrote before it is ignored.
    assert client_address("10.0.0.5", "1.2.3.4, 203.0.113.7", proxies) == "203.0.113.7"
    # Through two trusted proxies.
    assert client_address("10.0.0.5", "203.0.113.7, 172.18.0.3", proxies) == "203.0.113.7"
    assert client_address("10.0.0.5", None, proxies) == "10.0.0.5"
    assert client_address("10.0.0.5", "not-an-address", proxies) == "not-an-address"


def test_the_address_limit_and_proxies_come_from_the_environment():
    limit, proxies = limits_from_environment({})
    assert limit.messages == RATE_PER_ADDRESS == 120 and proxies == []
    limit, proxies = limits_from_environment({"RATE_LIMIT_PER_ADDRESS": "30", "TRUSTED_PROXIES": "10.0.0.5 fd00::/8"})
    assert limit.messages == 30 and [str(p) for p in proxies] == ["10.0.0.5/32", "fd00::/8"]
    assert limits_from_environment({"RATE_LIMIT_PER_ADDRESS": "0"})[0] is None
    with pytest.raises(ValueError, match="RATE_LIMIT_PER_ADDRESS"):
        limits_from_environment({"RATE_LIMIT_PER_ADDRESS": "lots"})
    with pytest.raises(ValueError, match="TRUSTED_PROXIES: 'nginx'"):
        limits_from_environment({"TRUSTED_PROXIES": "nginx"})


def test_a_failure_while_handling_gets_the_clinic_contacts_not_silence(clinic_config):
    clinic = clinic_config()

    async def broken(message):
        raise RuntimeError("boom")

    replies, _ = send(VisitorGuard(), broken, "hello")
    assert len(replies) == 1 and clinic.phone in replies[0] and "911" in replies[0]


class FullDiskStore(InMemoryTrackerStore):
    async def save(self, tracker):
        raise OSError(28, "No space left on device")


def test_a_tracker_store_that_cannot_save_is_told_to_the_visitor_and_logged(clinic_config, caplog):
    """Rasa's FailSafeTrackerStore would carry on in memory with a log line; the visitor hears it too,
    and the log line has the database's reason but not the visitor's words."""
    clinic = clinic_config()
    store = FailSafeTrackerStore(FullDiskStore(Domain.empty()))

    async def assistant_saving(message):
        await message.output_channel.send_text_message(message.sender_id, "Sciatica is ...")
        tracker = DialogueStateTracker(message.sender_id, [])
        await store.save(tracker)

    replies, _ = send(VisitorGuard(), assistant_saving, "my name is Zed Quill, call 305 555 0123",
                      sender="whatsapp:+13055550199")
    assert replies[0] == "Sciatica is ..."
    assert "couldn't save our conversation" in replies[1] and clinic.phone in replies[1]
    assert "TRACKER STORE FAILED" in caplog.text and "No space left on device" in caplog.text
    assert "Zed Quill" not in caplog.text and "0123" not in caplog.text and "5550199" not in caplog.text
