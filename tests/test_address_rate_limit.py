"""The per-client-address rate limit (channels/guard.py), through the running assistant's REST channel:
a flood that names a new conversation in every message is still one address. Requests go out from
several loopback addresses (the whole of 127/8 is this machine) by binding the client's socket."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection
from typing import List, Optional

import pytest

from channels.guard import RATE_PER_ADDRESS, TOO_FAST
from tests.running_assistant import REST_TOKEN, Assistant, Receiver

QUESTION = "What causes sciatica?"
TRUSTED_PROXY = "127.0.0.3"


class AssistantWithShippedLimits(Assistant):
    """The test assistant with the per-address limit `make run` gives (the harness raises it: all its
    conversations come from 127.0.0.1), and one trusted proxy, as nginx is in deploy/."""

    def start_rasa(self):
        self.env.pop("RATE_LIMIT_PER_ADDRESS", None)
        self.env["TRUSTED_PROXIES"] = TRUSTED_PROXY
        super().start_rasa()


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    receiver = Receiver().start()
    running = AssistantWithShippedLimits(tmp_path_factory.mktemp("address-limit"), receiver.staff_url(),
                                         receiver.booking_url())
    yield running
    running.close()
    receiver.stop()


def say_from(port: int, source: str, sender: str, forwarded_for: Optional[str] = None) -> List[str]:
    """The reply texts to one REST message sent from this local address (and X-Forwarded-For)."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {REST_TOKEN}"}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    connection = HTTPConnection("127.0.0.1", port, timeout=180, source_address=(source, 0))
    try:
        connection.request("POST", "/webhooks/rest/webhook", headers=headers,
                           body=json.dumps({"sender": sender, "message": QUESTION}))
        answer = connection.getresponse()
        body = answer.read()
        assert answer.status == 200, (answer.status, body[:300])
        return [reply.get("text", "") for reply in json.loads(body)]
    finally:
        connection.close()


def refused(replies: List[str]) -> bool:
    return replies == [TOO_FAST]


def answered(replies: List[str]) -> bool:
    return bool(replies) and TOO_FAST not in replies


def most_allowed(seconds: float) -> int:
    """The limit, plus what it refills (RATE_PER_ADDRESS a minute) while a flood lasts."""
    return RATE_PER_ADDRESS + int(seconds * RATE_PER_ADDRESS / 60) + 1


def test_rotating_sender_ids_from_one_address_is_refused_politely_and_others_are_answered(assistant):
    flood_size = 300
    with ThreadPoolExecutor(max_workers=flood_size + 1) as pool:
        started = time.monotonic()
        flood = [pool.submit(say_from, assistant.port, "127.0.0.1", f"rotating-{i}") for i in range(flood_size)]
        neighbour = pool.submit(say_from, assistant.port, "127.0.0.2", "neighbour")  # meanwhile
        replies = [future.result() for future in flood]
        seconds = time.monotonic() - started
        neighbour_replies = neighbour.result()

    served = sum(answered(r) for r in replies)
    refusals = sum(refused(r) for r in replies)
    print(f"{flood_size} senders from one address at once: {served} answered, {refusals} refused "
          f"in {seconds:.1f} s; the other address: {neighbour_replies[:1]}")
    assert served + refusals == flood_size, [r for r in replies if not answered(r) and not refused(r)][:3]
    assert RATE_PER_ADDRESS <= served <= most_allowed(seconds), (served, seconds)
    assert answered(neighbour_replies), neighbour_replies


def test_x_forwarded_for_names_the_visitor_only_when_a_trusted_proxy_sends_it(assistant):
    count = RATE_PER_ADDRESS + 60
    with ThreadPoolExecutor(max_workers=2 * count) as pool:
        started = time.monotonic()
        # Not a proxy: its own address counts, whatever it writes in the header.
        forged = [pool.submit(say_from, assistant.port, "127.0.0.5", f"forger-{i}", f"198.51.100.{i}")
                  for i in range(count)]
        # The trusted proxy relays as many visitors, each from their own address.
        relayed = [pool.submit(say_from, assistant.port, TRUSTED_PROXY, f"relayed-{i}",
                               f"192.0.2.77, 203.0.113.{i}") for i in range(count)]
        forged_replies = [future.result() for future in forged]
        seconds = time.monotonic() - started
        relayed_replies = [future.result() for future in relayed]

    forged_served = sum(answered(r) for r in forged_replies)
    print(f"forged X-Forwarded-For: {forged_served} of {count} answered; "
          f"through the trusted proxy: {sum(answered(r) for r in relayed_replies)} of {count}")
    assert forged_served <= most_allowed(seconds) and forged_served < count
    assert all(refused(r) for r in forged_replies if not answered(r))
    assert all(answered(r) for r in relayed_replies), [r for r in relayed_replies if not answered(r)][:3]


def test_the_widget_channel_counts_by_address_too(assistant):
    """A script opening many widget conversations from one address (each a new socket.io session, so the
    per-conversation limit never applies) is refused beyond the address's allowance, in the widget's own way."""
    from tests.test_web_channel import WidgetClient, texts

    sockets = RATE_PER_ADDRESS + 30
    clients = [WidgetClient(assistant.port) for _ in range(sockets)]
    try:
        started = time.monotonic()
        acks = [client.send(QUESTION) for client in clients]
        seconds = time.monotonic() - started
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not all(client.replies for client in clients):
            time.sleep(0.5)
        replies = [texts(client.replies) for client in clients]
    finally:
        for client in clients:
            client.close()
    refusals = sum(reply == TOO_FAST for reply in replies)
    print(f"{sockets} widget conversations from one address: {sockets - refusals} answered, {refusals} refused")
    assert all(ack == {"status": "received"} for ack in acks), acks[:3]
    assert all(replies), "every conversation got a reply"
    assert sockets - refusals <= most_allowed(seconds) and refusals >= sockets - most_allowed(seconds)
