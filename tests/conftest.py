"""Shared helpers: real rasa_sdk Trackers and dispatchers for the actions."""
from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actions import clinic_settings  # noqa: E402


def make_tracker(
    text: str = "",
    intent: Optional[str] = None,
    confidence: float = 0.95,
    entities: Optional[List[Dict[str, Any]]] = None,
    slots: Optional[Dict[str, Any]] = None,
    response_ranking: Optional[List[Dict[str, Any]]] = None,
    sender_id: str = "test-visitor",
) -> Tracker:
    """A Tracker as the action server receives it after one user message."""
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence} if intent else {},
        "entities": entities or [],
    }
    if response_ranking is not None:
        latest["response_selector"] = {"faq": {"ranking": response_ranking, "response": {}}}
    events = [{"event": "user", "text": text, "parse_data": latest}]
    return Tracker(sender_id, slots or {}, latest, events, False, None, {}, "action_listen")


def run_action(action, tracker: Tracker, domain: Optional[Dict[str, Any]] = None):
    """Runs an action like the SDK does; returns (messages, events)."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, domain or load_domain()))
    return dispatcher.messages, events


def load_domain() -> Dict[str, Any]:
    return yaml.safe_load((ROOT / "domain.yml").read_text())


@pytest.fixture
def clinic_config(tmp_path, monkeypatch):
    """Points the actions at a temporary clinic.yml built from the shipped one."""
    shipped = yaml.safe_load((ROOT / "clinic.yml").read_text())

    def write(**overrides):
        values = {**shipped, **overrides}
        path = tmp_path / "clinic.yml"
        path.write_text(yaml.safe_dump(values))
        monkeypatch.setenv("CLINIC_CONFIG", str(path))
        clinic_settings.settings.cache_clear()
        return clinic_settings.settings()

    yield write
    clinic_settings.settings.cache_clear()


@pytest.fixture(scope="session")
def receiver():
    """The clinic's booking system and staff channel (scripts/webhook_receiver.py)."""
    from tests.running_assistant import Receiver

    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def staff_receiver(receiver):
    """What the staff channel received (escalations, hand-overs)."""
    return receiver


@pytest.fixture(scope="session")
def assistant(tmp_path_factory, receiver):
    """One running assistant for every end-to-end test (it takes ~1 min to start)."""
    from tests.running_assistant import Assistant

    running = Assistant(tmp_path_factory.mktemp("assistant"), staff_webhook_url=receiver.staff_url(),
                        booking_webhook_url=receiver.booking_url())
    yield running
    running.close()


@pytest.fixture
def project(tmp_path):
    """A copy of the data, domain, config and tests to edit (staff tools, the staff guide's example)."""
    import shutil

    for name in ("data", "tests/nlu", "tests/conversations"):
        shutil.copytree(ROOT / name, tmp_path / name)
    for name in ("domain.yml", "config.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path
