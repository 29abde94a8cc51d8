"""scripts/run.sh, what `make run` runs, started for real: in a working copy of the project (its
var/ and logs/ are the copy's own; the virtual environment, model and spaCy pipeline are shared)
on free ports. How it stops, what it says, and the logs it keeps."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Dict, List

import pytest

from tests.running_assistant import MODEL, ROOT, free_port

# Built or large, and shared read-only with the copy.
SHARED = (".venv", "models", "build")
LEFT_OUT = shutil.ignore_patterns(".git", ".rasa", "var", "logs", "results", "node_modules", "__pycache__",
                                  ".pytest_cache", *SHARED)
# Loading TensorFlow and the model: 20-30 s alone, minutes on a busy machine.
START_SECONDS = 400
STOP_SECONDS = 60


@pytest.fixture
def working_copy(tmp_path) -> Path:
    if not MODEL.exists():
        pytest.skip(f"No trained model at {MODEL}; `make test` trains it first.")
    if not (ROOT / "web" / "static" / "chat-widget.js").exists():
        pytest.skip("web/static/chat-widget.js is not built (make widget)")
    copy = tmp_path / "project"
    shutil.copytree(ROOT, copy, ignore=LEFT_OUT, symlinks=True)
    for name in SHARED:
        (copy / name).symlink_to(ROOT / name)
    return copy


class RunScript:
    """scripts/run.sh in its own process group, as a terminal runs `make run` (Ctrl-C signals the group)."""

    def __init__(self, copy: Path):
        self.copy = copy
        self.ports = {"RASA_PORT": free_port(), "ACTIONS_PORT": free_port(), "WEB_PORT": free_port()}
        environment = {name: value for name, value in os.environ.items()
                       if name not in ("CHANNEL_SECRET_KEY", "RASA_API_TOKEN", "REST_CHANNEL_TOKEN",
                                       "ASSISTANT_PROFILE", "WIDGET_ORIGINS", "OUTBOX_DB", "CLINIC_CONFIG")}
        self.process = subprocess.Popen([str(copy / "scripts" / "run.sh")], cwd=copy, start_new_session=True,
                                        env={**environment, "TF_CPP_MIN_LOG_LEVEL": "2",
                                             **{name: str(port) for name, port in self.ports.items()}},
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stdout: List[str] = []
        self.stderr: List[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: List[str]) -> None:
        for line in stream:
            lines.append(line)

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)

    def wait_for_output(self, text: str, seconds: float = START_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        while text not in "".join(self.stdout):
            if self.process.poll() is not None:
                raise AssertionError(f"run.sh exited ({self.process.returncode}) before {text!r}:\n{self.output()}"
                                     f"{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} after {seconds} s:\n{self.output()}{self.logs()}")
            time.sleep(0.5)

    def logs(self) -> str:
        return "".join(f"\n--- {log.name} ---\n{log.read_text(errors='replace')[-2000:]}"
                       for log in sorted((self.copy / "logs").glob("*.log")))

    def finish(self, seconds: float = STOP_SECONDS) -> int:
        try:
            status = self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"run.sh still running {seconds} s later:\n{self.output()}")
        for reader in self._readers:
            reader.join(timeout=5)
        return status

    def servers(self) -> Dict[str, int]:
        """The servers run.sh started, by what they are: {"rasa": pid, "actions": pid, "web": pid}."""
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, IndexError, ValueError):
                continue
            if parent == self.process.pid:
                for kind, marker in (("rasa", " run --model"), ("actions", "-m actions.server"), ("web", "serve_web.py")):
                    if marker in command:
                        found[kind] = int(entry.name)
        return found

    def group_is_gone(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return True
        return False

    def close(self) -> None:
        if not self.group_is_gone():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def poll(condition, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.fixture
def run_script(working_copy):
    started: List[RunScript] = []

    def start() -> RunScript:
        started.append(RunScript(working_copy))
        return started[-1]

    yield start
    for script in started:
        script.close()


def say(script: "RunScript", message: str) -> str:
    """A message over REST, with the token run.sh keeps in var/rest-token; the replies' text."""
    token = (script.copy / "var" / "rest-token").read_text().strip()
    request = urllib.request.Request(
        f"http://127.0.0.1:{script.ports['RASA_PORT']}/webhooks/rest/webhook", method="POST",
        data=json.dumps({"sender": "run-script", "message": message}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return " ".join(reply.get("text", "") for reply in json.loads(answer.read()))


def test_ctrl_c_stops_every_server_says_stopped_and_exits_0(run_script):
    script = run_script()
    script.wait_for_output("Press Ctrl-C to stop.")
    assert set(script.servers()) == {"rasa", "actions", "web"}
    assert all(listening(port) for port in script.ports.values())
    # The action server is on the port asked for (ACTIONS_PORT), not 5055, and Rasa calls it there:
    # the greeting is a custom action, the apology says it could not be reached.
    greeting = say(script, "hi")
    assert "virtual assistant" in greeting and "something went wrong" not in greeting, greeting

    os.killpg(script.process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does

    assert script.finish() == 0, script.output()
    assert "Stopped." in script.stdout[-1], script.output()
    assert "unexpectedly" not in script.output()
    assert poll(script.group_is_gone), "a server is still running after run.sh exited"
    assert not any(listening(port) for port in script.ports.values())


def test_sigterm_is_a_clean_stop_too(run_script):
    script = run_script()
    script.wait_for_output("Starting the Rasa server")  # stopped while Rasa is still loading
    script.process.send_signal(signal.SIGTERM)  # to run.sh alone, as a service manager would
    assert script.finish() == 0, script.output()
    assert "Stopped." in script.stdout[-1] and "unexpectedly" not in script.output()
    assert poll(script.group_is_gone), "a server is still running after run.sh exited"


def test_a_server_that_dies_is_reported_with_its_log_and_the_others_are_stopped(run_script):
    script = run_script()
    script.wait_for_output("Press Ctrl-C to stop.")
    os.kill(script.servers()["rasa"], signal.SIGKILL)

    assert script.finish() == 1, script.output()
    errors = "".join(script.stderr)
    assert "A server stopped unexpectedly: rasa-server" in errors and "logs/rasa-server.log" in errors, errors
    assert "Stopped." not in script.output()
    assert poll(script.group_is_gone), "the other servers are still running after run.sh exited"
    assert not any(listening(port) for port in script.ports.values())


def test_each_start_keeps_the_previous_runs_logs(run_script, working_copy):
    logs = working_copy / "logs"
    logs.mkdir()
    # Five earlier runs' logs, and one more: a start keeps five.
    (logs / "action-server.log").write_text("run 0\n")
    for age in range(1, 6):
        (logs / f"action-server.log.{age}").write_text(f"run -{age}\n")

    first = run_script()
    first.wait_for_output("Starting the Rasa server")
    assert poll(lambda: (logs / "rasa-server.log").exists())
    os.killpg(first.process.pid, signal.SIGINT)
    assert first.finish() == 0, first.output()
    first_logs = {name: (logs / f"{name}.log").read_text() for name in ("action-server", "rasa-server")}
    assert "run 0" not in first_logs["action-server"] and first_logs["action-server"].strip()

    second = run_script()
    second.wait_for_output("Starting the Rasa server")
    for name, text in first_logs.items():
        assert (logs / f"{name}.log.1").read_text() == text, name
    assert [(logs / f"action-server.log.{age}").read_text() for age in range(2, 6)] == \
        ["run 0\n", "run -1\n", "run -2\n", "run -3\n"]
    assert not (logs / "action-server.log.6").exists()
    os.killpg(second.process.pid, signal.SIGINT)
    assert second.finish() == 0, second.output()
