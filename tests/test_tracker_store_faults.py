"""The tracker store failing under a running assistant: the disk full, the file unwritable.

Rasa 3.6 logs such an error and carries on with an in-memory copy that a restart loses;
the visitor is not told. Here the visitor is told (with the clinic's contacts), the log
says plainly what failed, and once the disk has room again the conversation carries on.

The assistant's tracker store sits on its own small tmpfs, filled on purpose; the file
is made immutable with chattr. Both need root (make test runs as root in CI here);
elsewhere the tests are skipped with the reason.
"""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import uuid

import pytest
import yaml

from tests.running_assistant import ROOT, Assistant, text_of

CANT_SAVE = "couldn't save our conversation"


def run(*command) -> bool:
    return subprocess.run(command, capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs for the tracker store")
    disk = tmp_path_factory.mktemp("small-disk")
    if not run("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)):
        pytest.skip("could not mount a tmpfs (no permission in this container)")
    yield disk
    run("umount", "-l", str(disk))


@pytest.fixture(scope="module")
def assistant_on_small_disk(small_disk, tmp_path_factory):
    running = Assistant(tmp_path_factory.mktemp("assistant-small-disk"), db=small_disk / "tracker.db")
    yield running
    running.close()


def fill(disk) -> None:
    with open(disk / "filler", "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC


def log_of(assistant) -> str:
    return (assistant.workdir / "rasa.log").read_text(errors="replace")


def test_disk_full_the_visitor_is_told_the_log_says_why_and_it_recovers(assistant_on_small_disk, small_disk):
    assistant = assistant_on_small_disk
    sender = f"disk-{uuid.uuid4().hex[:6]}"
    assert "virtual assistant" in text_of(assistant.say(sender, "hello"))
    fill(small_disk)
    try:
        said = text_of(assistant.say(sender, "I'm Wanda Quillfeather, what causes sciatica?"))
        assert "sciatic nerve" in said  # answered all the same
        assert CANT_SAVE in said and assistant.clinic["phone"] in said and "911" in said
        log = log_of(assistant)
        assert "TRACKER STORE FAILED" in log and "database or disk is full" in log
        assert "Quillfeather" not in log  # the error names the database's reason, not the visitor's words
    finally:
        (small_disk / "filler").unlink()
    said = text_of(assistant.say(sender, "and what are the symptoms?"))
    assert CANT_SAVE not in said and "Sorry, something went wrong" not in said


def test_an_unwritable_tracker_store_is_told_to_the_visitor_and_refused_at_start(assistant_on_small_disk, tmp_path):
    assistant = assistant_on_small_disk
    if not run("chattr", "+i", str(assistant.db)):
        pytest.skip("chattr +i is not supported on this file system")
    try:
        said = text_of(assistant.say(f"readonly-{uuid.uuid4().hex[:6]}", "What causes sciatica?"))
        assert CANT_SAVE in said and assistant.clinic["phone"] in said
        assert "attempt to write a readonly database" in log_of(assistant)
        # make run's check before Rasa starts says the same, and stops the start.
        endpoints = tmp_path / "endpoints.yml"
        endpoints.write_text(yaml.safe_dump({"tracker_store": {"type": "SQL", "dialect": "sqlite",
                                                               "db": str(assistant.db)}}))
        check = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_tracker_store.py"), str(endpoints)],
                               capture_output=True, text=True)
        assert check.returncode == 1
        assert f"The tracker store {assistant.db} can't be written" in check.stderr
        assert "readonly database" in check.stderr and "Traceback" not in check.stderr
    finally:
        run("chattr", "-i", str(assistant.db))
    said = text_of(assistant.say(f"readonly-after-{uuid.uuid4().hex[:6]}", "What causes sciatica?"))
    assert CANT_SAVE not in said and "sciatic nerve" in said
