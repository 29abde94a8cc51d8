"""`make forget-old` (scripts/forget_old_conversations.py): conversations idle for
longer than clinic.yml's keep_conversations_days leave the tracker store; the rest
stay whole. Written and read back through Rasa's own SQLTrackerStore."""
from __future__ import annotations

import asyncio
import time

import pytest
import yaml
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from scripts import forget_old_conversations as retention
from tests.conftest import ROOT

DAY = 86400
NOW = time.time()


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
