"""The production profile with two Rasa servers (README, "Scaling").

Real PostgreSQL (tracker store and outbox) and Redis (lock store) on loopback, one
action server and two Rasa servers sharing them, all started from
endpoints.production.yml as the deploy/ containers are. Checks that a conversation
whose messages go to either server is the conversation one server would have had,
word for word and event for event; that the second server carries on when the first
stops; and that messages of one visitor arriving on both servers at once are handled
one after the other.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import List, Tuple

import pytest

from tests import services
from tests.running_assistant import rest_conversation, text_of

pytestmark = pytest.mark.skipif(bool(services.missing()), reason="needs " + " and ".join(services.missing()) +
                                "; make test installs them when it runs as root with apt-get")

A, B = 0, 1
# One visitor's conversation: the booking form is half filled on server A and finished on B. No small
# talk: "thanks" has two answers, picked at random, which would differ between any two runs.
SCRIPT: List[Tuple[int, str]] = [
    (A, "hi"),
    (B, "what causes sciatica?"),
    (A, "I'd like to book a deep tissue massage"),   # the booking form starts on A
    (A, "an hour"),
    (B, "what should i wear to my massage?"),         # a side question in the form, on B
    (A, "next tuesday afternoon"),
    (A, "Jordan Lee"),
    (B, "jordan.lee@example.com"),                    # ... and is finished on B
    (B, "No, none of these"),
    (B, "no"),
    (B, "None of these"),
    (B, "Yes, send my request"),
    (A, "how should I prepare for a massage for sciatica?"),
    (B, "what stretches can I do at home?"),
    (A, "how many massage sessions will I need?"),
]
# Said on server B alone once A is stopped (the failover test).
AFTER_FAILOVER = [
    "how can I stop sciatica from coming back?",
    "my legs went numb and I can't control my bladder",   # a red flag: escalated to staff
    "thanks, bye",
]

# What differs between two deliveries of the same conversation by its nature: when, which
# request carried it, and (for floats) the last digits of TensorFlow's arithmetic.
PER_DELIVERY = {"timestamp", "message_id", "metadata", "input_channel", "model_id", "assistant_id"}


def comparable(event, sender: str):
    """An event with what is per-delivery left out and the conversation's id replaced."""
    if isinstance(event, dict):
        return {key: comparable(value, sender) for key, value in event.items() if key not in PER_DELIVERY}
    if isinstance(event, list):
        return [comparable(value, sender) for value in event]
    if isinstance(event, float):
        return round(event, 4)
    if isinstance(event, str):
        return event.replace(sender, "<conversation>")
    return event


def conversation(cluster, sender: str) -> list:
    return [comparable(event, sender) for _, event in cluster.events(sender)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, receiver):
    from tests.running_cluster import Cluster

    started = time.monotonic()
    running = Cluster(tmp_path_factory.mktemp("cluster"), receiver)
    print(f"\nPostgreSQL, Redis, action server and two Rasa servers up in {time.monotonic() - started:.0f} s")
    yield running
    running.close()


def test_a_conversation_split_between_two_servers_is_the_one_a_single_server_has(cluster, receiver):
    single, split = "scaling-single-server", "scaling-two-servers"
    senders = {rest_conversation(single): single, rest_conversation(split): split}  # by conversation id
    expected = [text_of(cluster.say(A, single, message)) for _, message in SCRIPT]
    answers = [text_of(cluster.say(server, split, message)) for server, message in SCRIPT]

    assert answers == expected
    assert "How long" in answers[2] and "What name" in answers[5] and "I've sent your request" in answers[11]
    # The booking system got one request from each conversation, with what was said on both servers.
    requests = {senders[r["conversation_id"]]: r for r in receiver.received if r.get("event") == "booking_request"
                and r["conversation_id"] in senders}
    assert set(requests) == {single, split}
    assert requests[split]["visitor"]["email"] == "jordan.lee@example.com"
    assert requests[split]["service"]["length_minutes"] == 60
    assert requests[split]["preferred_time"]["part_of_day"] == "afternoon"
    # ... from the outbox in the same PostgreSQL database, marked delivered there.
    stored = cluster.postgres.query("SELECT payload, delivered_at FROM outbox WHERE kind = 'booking_request'")
    delivered = {senders.get(json.loads(payload)["conversation_id"]) for payload, at in stored if at is not None}
    assert {single, split} <= delivered

    single_events, split_events = conversation(cluster, single), conversation(cluster, split)
    assert len(split_events) > 100 and sum(e["event"] == "user" for e in split_events) == len(SCRIPT)
    assert split_events == single_events
    print(f"\n{len(SCRIPT)} messages ({sum(s == A for s, _ in SCRIPT)} on server A, {sum(s == B for s, _ in SCRIPT)} "
          f"on B): answers identical; {len(split_events)} stored events identical to the single server's")


# Sixteen questions one visitor sends at once, every other one to the other server.
AT_ONCE = [
    "what is sciatica?", "what causes sciatica?", "what are the symptoms of sciatica?",
    "can massage help sciatica?", "what is deep tissue massage?", "what is trigger point therapy?",
    "what should I wear to my massage?", "what should I do before my massage?",
    "what should I do after my massage?", "which exercises help sciatica?",
    "how do I prevent sciatica?", "is heat or ice better for sciatica?", "what does the piriformis do?",
    "how long does a massage session last?", "should I drink water after a massage?",
    "can sitting too long cause sciatica?",
]


def turns_of(events) -> List[List[Tuple[str, dict]]]:
    """The stored conversation cut at each visitor message."""
    turns: List[List[Tuple[str, dict]]] = []
    for kind, event in events:
        if kind == "user":
            turns.append([])
        if turns:
            turns[-1].append((kind, event))
    return turns


BURSTS = 5


def test_messages_sent_to_both_servers_at_once_are_handled_one_after_the_other(cluster):
    # Rasa's own Redis lock store broke 6 of 10 such bursts (components/lock_store.py): 5 bursts
    # would all pass with it about 1 time in 100.
    locks = cluster.redis.client()
    sets_before = locks.info("commandstats").get("cmdstat_set", {}).get("calls", 0)
    for burst in range(BURSTS):
        sender = f"scaling-at-once-{burst}"
        with ThreadPoolExecutor(len(AT_ONCE)) as pool:
            replies = list(pool.map(lambda sent: cluster.say(sent[0] % 2, sender, sent[1]), enumerate(AT_ONCE)))
        assert all(replies), "a message went unanswered"
        answer_to = {question: text_of(reply) for question, reply in zip(AT_ONCE, replies)}

        # Stored: each message, then everything done in answer to it, then listening, before the next
        # message; and the answers stored for a message are the ones its sender got back.
        turns = turns_of(cluster.events(sender))
        assert sorted(turn[0][1]["text"] for turn in turns) == sorted(AT_ONCE), "messages lost or stored twice"
        for turn in turns:
            question = turn[0][1]["text"]
            assert turn[-1][1].get("name") == "action_listen", f"turn of {question!r} interleaved: {turn}"
            said = "\n".join(e.get("text") or "" for kind, e in turn if kind == "bot")
            assert said == answer_to[question], question
    # Redis held the conversations' locks: each message took a ticket there.
    sets = locks.info("commandstats")["cmdstat_set"]["calls"] - sets_before
    assert sets >= BURSTS * len(AT_ONCE)
    print(f"\n{BURSTS} bursts of {len(AT_ONCE)} messages of one visitor at once over both servers: every turn "
          f"stored whole and in order; {sets} lock writes in Redis")


def test_the_lock_store_lets_one_server_at_a_time_into_a_conversation(cluster):
    """The lock store alone, as two servers use it at once: two stores (one per server), four
    threads each, every thread entering the same conversation ten times. With Rasa's own
    RedisLockStore this never finished (tickets lost: waiting for locks to expire); here 80
    entries, never two at once, in about 2 s."""
    from rasa.utils.endpoints import EndpointConfig

    from components.lock_store import AtomicRedisLockStore

    redis = cluster.redis
    config = EndpointConfig(url="127.0.0.1", port=redis.port, password=redis.password, db=2, key_prefix="mutex")
    servers = [AtomicRedisLockStore(config) for _ in range(2)]
    state = {"inside": 0, "most": 0, "entered": 0}
    guard = threading.Lock()
    deadline = time.monotonic() + 60

    async def enter_ten_times(server):
        for _ in range(10):
            if time.monotonic() > deadline:
                return
            async with server.lock("scaling-mutex", wait_time_in_seconds=0.005):
                with guard:
                    state["inside"] += 1
                    state["most"] = max(state["most"], state["inside"])
                await asyncio.sleep(0.002)
                with guard:
                    state["inside"] -= 1
                    state["entered"] += 1

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda server: asyncio.run(enter_ten_times(server)), servers * 4))
    assert state["entered"] == 80, f"only {state['entered']} of 80 got the lock within 60 s"
    assert state["most"] == 1, "two holders of one conversation's lock at once"


def test_when_one_server_stops_the_other_carries_on_the_conversation(cluster, receiver):
    sender = "scaling-failover"
    for server, message in SCRIPT[:6]:  # the booking form half filled ...
        cluster.say(server, sender, message)
    stored_before = len(cluster.events(sender))

    cluster.stop_server(A)
    assert not cluster.is_running(A)
    # ... finished on B alone, which knows everything said so far.
    answers = [text_of(cluster.say(B, sender, message)) for _, message in SCRIPT[6:]]
    assert "I've sent your request" in answers[5]
    assert receiver.wait_for(lambda r: r.get("conversation_id") == rest_conversation(sender)
                             and r["event"] == "booking_request")
    answers += [text_of(cluster.say(B, sender, message)) for message in AFTER_FAILOVER]
    assert "911" in answers[-2]
    assert receiver.wait_for(lambda r: r.get("conversation_id") == rest_conversation(sender)
                             and r["event"] == "red_flag_escalation")

    events = cluster.events(sender)
    users = [e["text"] for kind, e in events if kind == "user"]
    assert users == [message for _, message in SCRIPT] + AFTER_FAILOVER  # one conversation, nothing lost
    print(f"\nServer A stopped after 6 messages ({stored_before} events stored); server B answered the "
          f"{len(answers)} that followed, {len(events) - stored_before} more events in the same conversation")
