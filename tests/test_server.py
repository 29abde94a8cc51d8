"""Conversations through the running assistant: the real Rasa server (REST
channel), the real action server and an SQLite tracker store, as `make run`
starts them (here on free ports, with a temporary database)."""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "sciatica.tar.gz"
RASA = ROOT / ".venv" / "bin" / "rasa"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, log: Path, seconds: int = 300) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"server not up after {seconds}s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Assistant:
    def __init__(self, workdir: Path):
        if not MODEL.exists():
            pytest.fail(f"No trained model at {MODEL}; `make test` trains it first.")
        self.workdir = workdir
        self.port, self.actions_port = free_port(), free_port()
        self.db = workdir / "tracker.db"
        self.endpoints = workdir / "endpoints.yml"
        self.endpoints.write_text(
            yaml.safe_dump(
                {
                    "action_endpoint": {"url": f"http://localhost:{self.actions_port}/webhook"},
                    "tracker_store": {"type": "SQL", "dialect": "sqlite", "db": str(self.db)},
                }
            )
        )
        self.env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.actions = self._start(
            [str(RASA), "run", "actions", "--port", str(self.actions_port)],
            "actions.log",
            f"http://localhost:{self.actions_port}/health",
        )
        self.rasa = None
        self.start_rasa()

    def _start(self, command, log_name, health_url):
        log = self.workdir / log_name
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        wait_until_up(health_url, process, log)
        return process

    def start_rasa(self):
        self.rasa = self._start(
            [str(RASA), "run", "--model", str(MODEL), "--endpoints", str(self.endpoints),
             "--credentials", str(ROOT / "credentials.yml"), "--port", str(self.port)],
            "rasa.log",
            f"http://localhost:{self.port}/",
        )

    def restart_rasa(self):
        stop(self.rasa)
        self.start_rasa()

    def say(self, sender: str, message: str):
        request = urllib.request.Request(
            f"http://localhost:{self.port}/webhooks/rest/webhook",
            data=json.dumps({"sender": sender, "message": message}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            return json.loads(response.read())

    def close(self):
        for process in (self.rasa, self.actions):
            if process is not None:
                stop(process)


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    running = Assistant(tmp_path_factory.mktemp("assistant"))
    yield running
    running.close()


def text_of(replies):
    return "\n".join(r.get("text", "") for r in replies)


def faq_answer(name: str) -> str:
    data = yaml.safe_load((ROOT / "data" / "faq" / f"{name}.yml").read_text())
    return data["responses"][f"utter_faq/{name}"][0]["text"]


def all_faq_answers():
    return [faq_answer(p.stem) for p in (ROOT / "data" / "faq").glob("*.yml")]


def test_greeting_explains_itself_with_the_emergency_number_and_topic_buttons(assistant):
    replies = assistant.say("greeter", "hello!")
    said = text_of(replies)
    assert "virtual assistant" in said and "not medical advice" in said and "911" in said
    assert any(r.get("buttons") for r in replies)


@pytest.mark.parametrize(
    "question, faq",
    [
        ("What causes sciatica?", "what_causes_sciatica"),
        ("do hot rocks help a tight lower back", "technique_hot_stone"),
        ("what should I bring or wear to my first massage", "preparing_for_massage"),
        ("is it bad to be achy the day after a massage", "soreness_after_massage"),
    ],
)
def test_faq_questions_get_their_answer(assistant, question, faq):
    assert text_of(assistant.say(f"faq-{faq}", question)) == faq_answer(faq)


@pytest.mark.parametrize(
    "question",
    ["what's the best sushi in town", "can you recommend a good mortgage broker", "how do I change a tyre"],
)
def test_off_topic_questions_get_no_article_answer(assistant, question):
    said = text_of(assistant.say("off-topic", question))
    assert said.startswith("Sorry")
    assert said not in all_faq_answers()


def test_medical_advice_is_referred_to_a_doctor(assistant):
    said = text_of(assistant.say("medical", "how many ibuprofen should I take for sciatica"))
    assert "doctor" in said and "medicines" in said


def test_price_is_never_invented(assistant):
    clinic = yaml.safe_load((ROOT / "clinic.yml").read_text())
    said = text_of(assistant.say("price", "how much does a deep tissue massage cost?"))
    assert "$" not in said and "rather not guess" in said and clinic["phone"] in said


def test_conversation_survives_a_server_restart(assistant):
    sender = "restart-visitor"
    first = text_of(assistant.say(sender, "can I book a hot stone massage"))
    assert "hot stone massage" in first
    assistant.restart_rasa()
    # The remembered technique comes back from the SQLite tracker store.
    again = text_of(assistant.say(sender, "how do I book?"))
    assert "hot stone massage" in again
    with sqlite3.connect(assistant.db) as db:
        (user_turns,) = db.execute(
            "SELECT COUNT(*) FROM events WHERE sender_id = ? AND type_name = 'user'", (sender,)
        ).fetchone()
    assert user_turns == 2
