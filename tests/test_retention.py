"""`make forget-old` (scripts/forget_old_conversations.py): conversations idle for
longer than clinic.yml's keep_conversations_days leave the tracker store; the rest
stay whole. Written and read back through Rasa's own SQLTrackerStore. The outbox's
booking requests and staff notifications older than that go too: delivered ones
silently, undelivered ones after staff are told (a real outbox file and receiver)."""
from __future__ import annotations

import asyncio
import json
import sqlite3
import time

import pytest
import yaml
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from actions.outbox import Outbox, clinic_destinations
from scripts import forget_old_conversations as retention
from tests.conftest import ROOT
from tests.running_assistant import BOOKING_SECRET, STAFF_SECRET, Receiver

DAY = 86400
NOW = time.time()


@pytest.fixture(autouse=True)
def outbox_path(tmp_path, monkeypatch):
    """Every test's own outbox (never the working tree's var/outbox.db)."""
    path = tmp_path / "outbox.db"
    monkeypatch.setenv("OUTBOX_DB", str(path))
    return path


def store_for(path):
    return SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))


def conversation(sender, *ages_in_days):
    events = []
    for age in ages_in_days:
        events += [UserUttered("my phone is 305 555 0147", timestamp=NOW - age * DAY),
                   BotUttered("Thanks", timestamp=NOW - age * DAY + 1)]
    return DialogueStateTracker.from_events(sender, events)


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "tracker.db"
    store = store_for(path)
    for tracker in [conversation("old", 200, 120), conversation("recent", 3),
                    conversation("long-running", 150, 1), conversation("just-old", 31)]:
        asyncio.run(store.save(tracker))
    return path


def senders(path):
    store = store_for(path)
    return {s for s in ["old", "recent", "long-running", "just-old"] if asyncio.run(store.retrieve(s))}


def test_conversations_idle_longer_than_the_setting_are_deleted_and_others_kept_whole(database, capsys):
    assert retention.main(["--days", "30", "--db", f"sqlite:///{database}"], now=NOW) == 0
    assert senders(database) == {"recent", "long-running"}
    long_running = asyncio.run(store_for(database).retrieve("long-running"))
    assert sum(isinstance(e, UserUttered) for e in long_running.events) == 2  # its old message stays
    out = capsys.readouterr().out
    assert "Deleted 2 conversation(s) (6 stored event(s))" in out and "2 kept" in out


def test_a_dry_run_deletes_nothing_and_says_what_it_would(database, capsys):
    assert retention.main(["--days", "30", "--db", f"sqlite:///{database}", "--dry-run"], now=NOW) == 0
    assert senders(database) == {"old", "recent", "long-running", "just-old"}
    assert "Would delete 2 conversation(s)" in capsys.readouterr().out


def test_the_default_period_comes_from_clinic_settings(database, clinic_config):
    clinic_config(keep_conversations_days=100)
    assert retention.main(["--db", f"sqlite:///{database}"], now=NOW) == 0
    assert senders(database) == {"recent", "long-running", "just-old"}


@pytest.mark.parametrize("value", ["ninety", 0, -5, True])
def test_a_bad_setting_is_refused_and_nothing_deleted(database, tmp_path, monkeypatch, capsys, value):
    settings = yaml.safe_load((ROOT / "clinic.yml").read_text())
    (tmp_path / "clinic.yml").write_text(yaml.safe_dump({**settings, "keep_conversations_days": value}))
    monkeypatch.setenv("CLINIC_CONFIG", str(tmp_path / "clinic.yml"))
    assert retention.main(["--db", f"sqlite:///{database}"], now=NOW) == 1
    assert "keep_conversations_days" in capsys.readouterr().err
    assert len(senders(database)) == 4


def test_no_database_yet_is_not_an_error(tmp_path, capsys):
    assert retention.main(["--days", "30", "--db", f"sqlite:///{tmp_path / 'none.db'}"], now=NOW) == 0
    assert "Deleted 0 conversation(s)" in capsys.readouterr().out


def test_an_unreadable_database_gives_a_reason(tmp_path, capsys):
    broken = tmp_path / "broken.db"
    broken.write_text("not a database")
    assert retention.main(["--days", "30", "--db", f"sqlite:///{broken}"], now=NOW) == 1
    assert "Nothing deleted:" in capsys.readouterr().err


# --- the outbox ---------------------------------------------------------------------------

MARIA = {"conversation_id": "+13055550147", "visitor": {"name": "Maria Gonzalez", "phone": "+13055550147"},
         "note": "I take warfarin"}


@pytest.fixture
def clinic_receiver(clinic_config, monkeypatch):
    """The clinic's booking system and staff channel (not started: the tests switch it on)."""
    monkeypatch.setenv("BOOKING_WEBHOOK_SECRET", BOOKING_SECRET)
    monkeypatch.setenv("STAFF_WEBHOOK_SECRET", STAFF_SECRET)
    receiver = Receiver()
    clinic_config(booking_webhook_url=receiver.booking_url(), staff_webhook_url=receiver.staff_url())
    yield receiver
    receiver.stop()


def age(path, item_id, days):
    """As if the item had been stored `days` ago."""
    with sqlite3.connect(path) as db:
        db.execute("UPDATE outbox SET created_at = ? WHERE id = ?", (NOW - days * DAY, item_id))


@pytest.fixture
def outbox_items(outbox_path, clinic_receiver):
    """Delivered and undelivered items, old (120 days) and recent."""
    outbox = Outbox(outbox_path)
    clinic_receiver.start()
    old_sent = outbox.add("booking_request", MARIA)
    recent_sent = outbox.add("booking_request", {**MARIA, "note": "recent"})
    assert asyncio.run(outbox.deliver_due(clinic_destinations)) == 2
    clinic_receiver.stop()
    old_failed = outbox.add("red_flag_escalation", {"tier": "emergency", "conversation_id": "+13055550147"})
    assert asyncio.run(outbox.deliver_due(clinic_destinations, only=old_failed["id"])) == 0  # staff channel down
    old_never_tried = outbox.add("handover", {"reason": "asked for staff", "conversation_id": "+13055550147"})
    recent_waiting = outbox.add("booking_request", {**MARIA, "note": "waiting"})
    for item in (old_sent, old_failed, old_never_tried):
        age(outbox_path, item["id"], 120)
    return {"old_sent": old_sent["id"], "recent_sent": recent_sent["id"], "old_failed": old_failed["id"],
            "old_never_tried": old_never_tried["id"], "recent_waiting": recent_waiting["id"]}


def stored_ids(path):
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT id FROM outbox")}


def test_old_outbox_items_go_and_undelivered_ones_are_reported_to_staff_first(
        database, outbox_path, outbox_items, clinic_receiver, capsys):
    assert retention.main(["--days", "90", "--db", f"sqlite:///{database}"], now=NOW) == 0
    out = capsys.readouterr().out

    kept = stored_ids(outbox_path)
    assert {outbox_items["recent_sent"], outbox_items["recent_waiting"]} < kept
    assert not {outbox_items["old_sent"], outbox_items["old_failed"], outbox_items["old_never_tried"]} & kept
    [notice] = Outbox(outbox_path).pending("outbox_expired")
    payload = json.loads(notice["payload"])
    assert [(i["id"], i["kind"]) for i in payload["items"]] == [
        (outbox_items["old_failed"], "red_flag_escalation"), (outbox_items["old_never_tried"], "handover")]
    assert payload["items"][0]["attempts"] == 1 and "Connect" in payload["items"][0]["last_error"]
    assert payload["items"][0]["stored"].startswith(time.strftime("%Y-%m-%d", time.gmtime(NOW - 120 * DAY)))

    assert "deleted 1 delivered item(s)" in out
    [failed] = [line for line in out.splitlines() if f"id={outbox_items['old_failed']}" in line]
    assert "red_flag_escalation" in failed and "1 attempt(s), last error: ClientConnectorError" in failed
    [never_tried] = [line for line in out.splitlines() if f"id={outbox_items['old_never_tried']}" in line]
    assert "handover" in never_tried and "never tried" in never_tried
    assert payload["items"][0]["stored"][:10] in failed  # when it was stored
    assert f"outbox_expired, id={payload['id']}" in out
    for personal in ("Maria", "3055550147", "warfarin"):  # neither printed nor sent
        assert personal not in out and personal not in notice["payload"]

    # It reaches the staff channel like any other notification, signed, once it is up.
    clinic_receiver.start()
    assert asyncio.run(Outbox(outbox_path).deliver_due(clinic_destinations)) == 2  # with the recent booking
    [received] = [r for r in clinic_receiver.received if r["event"] == "outbox_expired"]
    assert received == payload and clinic_receiver.rejected == []


def test_an_expiry_notice_that_cannot_be_delivered_waits_and_is_retried(
        database, outbox_path, outbox_items, clinic_receiver):
    assert retention.main(["--days", "90", "--db", f"sqlite:///{database}"], now=NOW) == 0
    outbox = Outbox(outbox_path)
    [notice] = outbox.pending("outbox_expired")
    assert asyncio.run(outbox.deliver_due(clinic_destinations, only=notice["id"])) == 0  # staff channel down
    [waiting] = outbox.pending("outbox_expired")
    assert waiting["attempts"] == 1 and waiting["next_attempt_at"] > time.time()
    clinic_receiver.start()
    assert asyncio.run(outbox.deliver_due(clinic_destinations, now=time.time() + 3600)) == 2
    assert outbox.pending() == []


def test_a_dry_run_changes_nothing_in_the_outbox_and_says_what_it_would_do(
        database, outbox_path, outbox_items, capsys):
    before = stored_ids(outbox_path)
    assert retention.main(["--days", "90", "--db", f"sqlite:///{database}", "--dry-run"], now=NOW) == 0
    out = capsys.readouterr().out
    assert stored_ids(outbox_path) == before == set(outbox_items.values())
    assert "would delete 1 delivered item(s)" in out and "would be reported to staff and deleted" in out
    assert f"id={outbox_items['old_failed']}" in out


def test_an_outbox_that_cannot_be_read_is_reported_and_the_run_fails(database, outbox_path, capsys):
    outbox_path.write_text("not a database")
    assert retention.main(["--days", "90", "--db", f"sqlite:///{database}"], now=NOW) == 1
    assert "Nothing deleted from the outbox" in capsys.readouterr().err


def test_with_the_production_profile_both_stores_are_in_postgresql(monkeypatch, capsys):
    from tests import services

    if services.missing():
        pytest.skip("needs " + " and ".join(services.missing()))
    postgres = services.PostgresServer().start()
    try:
        monkeypatch.delenv("OUTBOX_DB")
        monkeypatch.setenv("ASSISTANT_PROFILE", "production")
        for name, value in postgres.environment().items():
            monkeypatch.setenv(name, value)
        settings = postgres.environment()
        store = SQLTrackerStore(Domain.empty(), dialect="postgresql", host="127.0.0.1", port=settings["POSTGRES_PORT"],
                                db=settings["POSTGRES_DB"], username=settings["POSTGRES_USER"],
                                password=settings["POSTGRES_PASSWORD"])
        for tracker in [conversation("old", 200), conversation("recent", 3)]:
            asyncio.run(store.save(tracker))
        outbox = Outbox()
        old_waiting = outbox.add("booking_request", {**MARIA, "conversation_id": "sms_100%"})
        recent_waiting = outbox.add("booking_request", {**MARIA, "conversation_id": "sms_1000"})
        with postgres.connect() as db, db.cursor() as cursor:  # commits on leaving
            cursor.execute("UPDATE outbox SET created_at = %s WHERE id = %s", (NOW - 120 * DAY, old_waiting["id"]))
        assert outbox.booking_requests_of("sms_100%") == [old_waiting["id"]]  # its LIKE and escapes, in PostgreSQL

        url = (f"postgresql://{settings['POSTGRES_USER']}:{settings['POSTGRES_PASSWORD']}@127.0.0.1:"
               f"{settings['POSTGRES_PORT']}/{settings['POSTGRES_DB']}")
        assert retention.main(["--days", "90", "--db", url], now=NOW) == 0
        out = capsys.readouterr().out
        assert "Deleted 1 conversation(s)" in out and f"id={old_waiting['id']}" in out
        assert asyncio.run(store.retrieve("old")) is None and asyncio.run(store.retrieve("recent"))
        assert [row["kind"] for row in outbox.pending()] == ["booking_request", "outbox_expired"]
        assert outbox.pending()[0]["id"] == recent_waiting["id"]
    finally:
        postgres.stop()
