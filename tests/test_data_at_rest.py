"""Visitors' data on this machine's disk: the tracker store and the outbox (names, phones,
health notes) are readable by their owner only, and `make clean` never deletes booking
requests or alerts that have not reached the clinic."""
from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from actions.outbox import Outbox
from tests.conftest import ROOT


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@contextmanager
def umask(value: int):
    """The usual umask, under which a new file is readable by everyone."""
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


def journal_mode_while_writing(database: Path) -> int:
    """The mode of the rollback journal SQLite creates for a write (it lives only until the commit)."""
    db = sqlite3.connect(database, isolation_level=None)
    try:
        db.execute("CREATE TABLE IF NOT EXISTS probe (x)")
        db.execute("BEGIN")
        db.execute("INSERT INTO probe VALUES (1)")
        return mode(database.with_name(database.name + "-journal"))
    finally:
        db.execute("ROLLBACK")
        db.close()


def world_readable_sqlite(path: Path) -> None:
    with umask(0o022):
        sqlite3.connect(path).execute("CREATE TABLE kept (visitor TEXT)").connection.commit()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO kept VALUES ('Maria Gonzalez, 305 555 0147')")
    assert mode(path) == 0o644


# --- the tracker store: created (or tightened) by make run's start-up check ---------------

def check_tracker_store(tmp_path: Path, database: Path) -> subprocess.CompletedProcess:
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(yaml.safe_dump({"tracker_store": {"type": "SQL", "dialect": "sqlite", "db": str(database)}}))
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "check_tracker_store.py"), str(endpoints)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: os.umask(0o022))


def test_make_runs_check_creates_the_tracker_store_owner_only_and_its_journal_too(tmp_path):
    database = tmp_path / "var" / "tracker.db"
    check = check_tracker_store(tmp_path, database)
    assert check.returncode == 0, check.stderr
    assert mode(database) == 0o600
    with umask(0o022):
        assert journal_mode_while_writing(database) == 0o600


def test_an_existing_tracker_store_readable_by_everyone_is_made_owner_only(tmp_path):
    database = tmp_path / "tracker.db"
    world_readable_sqlite(database)
    check = check_tracker_store(tmp_path, database)
    assert check.returncode == 0, check.stderr
    assert mode(database) == 0o600
    with sqlite3.connect(database) as db:  # nothing in it lost
        assert db.execute("SELECT visitor FROM kept").fetchall() == [("Maria Gonzalez, 305 555 0147",)]


# --- the outbox: created (or tightened) when the action server opens it ------------------

def test_a_new_outbox_is_owner_only_and_so_is_its_journal(tmp_path):
    database = tmp_path / "var" / "outbox.db"
    with umask(0o022):
        Outbox(database).add("booking_request", {"visitor": {"name": "Maria Gonzalez"}})
        assert mode(database) == 0o600
        assert journal_mode_while_writing(database) == 0o600


def test_an_existing_outbox_and_its_wal_files_readable_by_everyone_are_made_owner_only(tmp_path):
    database = tmp_path / "outbox.db"
    world_readable_sqlite(database)
    with umask(0o022):
        other = sqlite3.connect(database)  # another process with the database open in WAL mode
        other.execute("PRAGMA journal_mode=WAL")
        other.execute("INSERT INTO kept VALUES ('Jordan Lee')")
        other.commit()
    wal, shm = (database.with_name(database.name + end) for end in ("-wal", "-shm"))
    assert mode(wal) == mode(shm) == 0o644
    try:
        Outbox(database).add("handover", {"reason": "asked for staff"})
        assert (mode(database), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
    finally:
        other.close()


# --- make clean --------------------------------------------------------------------------

@pytest.fixture
def checkout(tmp_path):
    """A copy of what `make clean` uses (never the working tree's var/, which a running assistant may use)."""
    for name in ("Makefile", "requirements.txt", "constraints.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "actions", tmp_path / "actions", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    for built in ("var", "logs", "models", "results"):
        (tmp_path / built).mkdir()
    (tmp_path / "models" / "sciatica.tar.gz").write_text("model")
    return tmp_path


def make_clean(checkout: Path, *variables: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("OUTBOX_DB", "ASSISTANT_PROFILE", "MAKEFLAGS")}
    return subprocess.run(["make", "--no-print-directory", "-C", str(checkout), "clean", *variables],
                          env=environment, capture_output=True, text=True, timeout=120)


def test_make_clean_refuses_while_a_booking_request_or_alert_waits_and_says_how_to_see_them(checkout):
    outbox = Outbox(checkout / "var" / "outbox.db")
    outbox.add("booking_request", {"visitor": {"name": "Maria Gonzalez"}, "conversation_id": "v1"})
    outbox.add("red_flag_escalation", {"tier": "emergency", "conversation_id": "v2"})
    delivered = outbox.add("handover", {"reason": "asked for staff"})
    outbox._change("UPDATE outbox SET delivered_at = 1 WHERE id = :id", id=delivered["id"])

    refused = make_clean(checkout)
    assert refused.returncode != 0
    assert "2 waiting: 1 booking_request, 1 red_flag_escalation" in refused.stderr
    assert "make pending" in refused.stderr and "make clean FORCE=1" in refused.stderr
    assert (checkout / "var" / "outbox.db").exists() and (checkout / "models" / "sciatica.tar.gz").exists()

    forced = make_clean(checkout, "FORCE=1")
    assert forced.returncode == 0, forced.stderr
    assert not (checkout / "var").exists() and not (checkout / "models").exists()


def test_make_clean_with_everything_delivered_cleans_as_before(checkout):
    outbox = Outbox(checkout / "var" / "outbox.db")
    sent = outbox.add("booking_request", {"visitor": {"name": "Maria Gonzalez"}})
    outbox._change("UPDATE outbox SET delivered_at = 1 WHERE id = :id", id=sent["id"])
    cleaned = make_clean(checkout)
    assert cleaned.returncode == 0, cleaned.stderr
    for built in ("var", "logs", "models", "results"):
        assert not (checkout / built).exists()
    assert (checkout / "Makefile").exists() and (ROOT / ".venv" / "bin" / "python").exists()


def test_make_clean_that_cannot_read_the_outbox_deletes_nothing(checkout):
    (checkout / "var" / "outbox.db").write_text("not a database")
    refused = make_clean(checkout)
    assert refused.returncode != 0 and "FORCE=1" in refused.stderr
    assert (checkout / "var" / "outbox.db").exists()
