"""The assistant as `make run` starts it (Rasa server with the REST channel,
action server, SQLite tracker store), on free ports with temporary files, plus
a local HTTP server standing in for the clinic's staff webhook."""
from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from subprocess import STDOUT, Popen, TimeoutExpired
from typing import List, Optional

import yaml

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "sciatica.tar.gz"
RASA = ROOT / ".venv" / "bin" / "rasa"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: Popen, log: Path, seconds: int = 300) -> None:
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


def stop(process: Optional[Popen]) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except TimeoutExpired:
        process.kill()
        process.wait()


class StaffReceiver:
    """A local staff webhook: records every JSON POST; can be switched off."""

    def __init__(self, port: Optional[int] = None):
        self.port = port or free_port()
        self.received: List[dict] = []
        self.server: Optional[ThreadingHTTPServer] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/staff"

    def start(self) -> "StaffReceiver":
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def wait_for(self, count: int, seconds: float = 10) -> List[dict]:
        deadline = time.time() + seconds
        while len(self.received) < count and time.time() < deadline:
            time.sleep(0.1)
        return self.received


class Assistant:
    def __init__(self, workdir: Path, staff_webhook_url: str = ""):
        if not MODEL.exists():
            raise RuntimeError(f"No trained model at {MODEL}; `make test` trains it first.")
        self.workdir = workdir
        self.port, self.actions_port = free_port(), free_port()
        self.db = workdir / "tracker.db"
        self.outbox = workdir / "outbox.db"
        self.endpoints = workdir / "endpoints.yml"
        self.endpoints.write_text(yaml.safe_dump({
            "action_endpoint": {"url": f"http://localhost:{self.actions_port}/webhook"},
            "tracker_store": {"type": "SQL", "dialect": "sqlite", "db": str(self.db)},
        }))
        clinic = yaml.safe_load((ROOT / "clinic.yml").read_text())
        clinic["staff_webhook_url"] = staff_webhook_url
        self.clinic = clinic
        (workdir / "clinic.yml").write_text(yaml.safe_dump(clinic))
        self.env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CLINIC_CONFIG": str(workdir / "clinic.yml"),
                    "STAFF_OUTBOX_DB": str(self.outbox)}
        self.actions = None
        self.rasa = None
        self.start_actions()
        self.start_rasa()

    def _start(self, command, log_name, health_url) -> Popen:
        log = self.workdir / log_name
        process = Popen(command, cwd=ROOT, env=self.env, stdout=log.open("ab"), stderr=STDOUT)
        wait_until_up(health_url, process, log)
        return process

    def start_actions(self):
        self.actions = self._start([str(RASA), "run", "actions", "--port", str(self.actions_port)],
                                   "actions.log", f"http://localhost:{self.actions_port}/health")

    def start_rasa(self):
        self.rasa = self._start(
            [str(RASA), "run", "--model", str(MODEL), "--endpoints", str(self.endpoints),
             "--credentials", str(ROOT / "credentials.yml"), "--port", str(self.port)],
            "rasa.log", f"http://localhost:{self.port}/")

    def restart_rasa(self):
        stop(self.rasa)
        self.start_rasa()

    def say(self, sender: str, message: str) -> List[dict]:
        request = urllib.request.Request(
            f"http://localhost:{self.port}/webhooks/rest/webhook",
            data=json.dumps({"sender": sender, "message": message}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            return json.loads(response.read())

    def close(self):
        stop(self.rasa)
        stop(self.actions)


def text_of(replies) -> str:
    return "\n".join(r.get("text", "") for r in replies)
