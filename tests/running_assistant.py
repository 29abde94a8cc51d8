"""The assistant as `make run` starts it (Rasa server with the REST channel,
action server, SQLite tracker store), on free ports with temporary files, plus
scripts/webhook_receiver.py standing in for the clinic's booking system and
staff channel (it checks every signature)."""
from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.parse
import urllib.request
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


# Test-only shared secrets (the real ones come from the deployment's environment).
BOOKING_SECRET = "test-booking-secret-0123456789"
STAFF_SECRET = "test-staff-secret-0123456789"
# The HTTP API, as `make run` enables it for `make reload`; it starts with "-" as a random
# token may, which `--auth-token -x` would take for an option (hence `--auth-token=`).
API_TOKEN = "-test-api-token-0123456789"
# The channels' secret, as make run keeps one in var/channel-secret-key.
CHANNEL_SECRET = "test-channel-secret-0123456789abcdef0123456789"
# The REST channel's token, as make run keeps one in var/rest-token.
REST_TOKEN = "test-rest-channel-token-0123456789abcdef"
TWILIO_TEST_SETTINGS = {"TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
                        "TWILIO_AUTH_TOKEN": "twilio-auth-token-for-tests", "TWILIO_NUMBER": "+13055550100"}


class Receiver:
    """The clinic's booking system and staff channel: scripts/webhook_receiver.py
    on a fixed port, which the tests can switch off and on again."""

    def __init__(self, port: Optional[int] = None):
        self.port = port or free_port()
        self.server = None
        self.received: List[dict] = []
        self.rejected: List[str] = []
        self.duplicates = 0

    def booking_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bookings"

    def staff_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/staff"

    def start(self) -> "Receiver":
        from scripts.webhook_receiver import WebhookReceiver

        self.server = WebhookReceiver({"/bookings": BOOKING_SECRET, "/staff": STAFF_SECRET},
                                      port=self.port, quiet=True)
        # Keep one record across restarts, as a real back end keeps its bookings.
        self.server.received, self.server.rejected = self.received, self.rejected
        self.server._seen = {p["id"] for p in self.received}
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server:
            self.duplicates += self.server.duplicates
            self.server.stop()
            self.server = None

    def wait_for(self, predicate, seconds: float = 15) -> List[dict]:
        deadline = time.time() + seconds
        while time.time() < deadline:
            found = [p for p in self.received if predicate(p)]
            if found:
                return found
            time.sleep(0.1)
        return []


def rest_conversation(sender: str) -> str:
    """The conversation a REST sender's messages go to (the channel keeps its own: channels/web.py)."""
    return "rest:" + sender


def say(port: int, sender: str, message: str) -> List[dict]:
    """One message through the REST channel of the Rasa server on this port; its replies."""
    request = urllib.request.Request(
        f"http://localhost:{port}/webhooks/rest/webhook",
        data=json.dumps({"sender": sender, "message": message}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {REST_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def prepare(workdir: Path, page_ports, staff_webhook_url: str, booking_webhook_url: str, extra_env: dict):
    """What make run prepares before starting the servers: clinic.yml (with these webhooks), the
    environment, and credentials (rest, socketio for pages on page_ports, the secured Twilio and Telegram channels)."""
    from channels.credentials import build

    clinic = yaml.safe_load((ROOT / "clinic.yml").read_text())
    clinic["staff_webhook_url"] = staff_webhook_url
    clinic["booking_webhook_url"] = booking_webhook_url
    (workdir / "clinic.yml").write_text(yaml.safe_dump(clinic))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CLINIC_CONFIG": str(workdir / "clinic.yml"),
           "SANIC_BACKLOG": "2048",  # as make run sets it
           "RATE_LIMIT_PER_ADDRESS": "1000000",  # every test conversation comes from 127.0.0.1
           "BOOKING_WEBHOOK_SECRET": BOOKING_SECRET, "STAFF_WEBHOOK_SECRET": STAFF_SECRET,
           # Retry the outbox every second (production: 15 s, back-off from 30 s).
           "OUTBOX_RETRY_EVERY_SECONDS": "1", "OUTBOX_FIRST_BACKOFF_SECONDS": "1", **extra_env}
    credentials = workdir / "credentials.yml"
    origins = " ".join(f"http://{host}:{port}" for port in page_ports for host in ("127.0.0.1", "localhost"))
    # SMS and Telegram replies go to local fakes of Twilio's and Telegram's APIs (tests/provider_apis.py).
    from tests import provider_apis

    credentials.write_text(yaml.safe_dump(build({**TWILIO_TEST_SETTINGS, **provider_apis.settings(),
                                                    "WIDGET_ORIGINS": origins,
                                                    "CHANNEL_SECRET_KEY": CHANNEL_SECRET,
                                                    "REST_CHANNEL_TOKEN": REST_TOKEN})[0]))
    return clinic, env, credentials, origins


class Assistant:
    def __init__(self, workdir: Path, staff_webhook_url: str = "", booking_webhook_url: str = "",
                 db: Optional[Path] = None):
        if not MODEL.exists():
            raise RuntimeError(f"No trained model at {MODEL}; `make test` trains it first.")
        self.workdir = workdir
        self.port, self.actions_port = free_port(), free_port()
        # The ports the widget's demo page is served on: the only origins the widget may be used from.
        self.page_ports = (free_port(), free_port())
        self.db = db or workdir / "tracker.db"
        self.outbox = workdir / "outbox.db"
        self.endpoints = workdir / "endpoints.yml"
        self.endpoints.write_text(yaml.safe_dump({
            "action_endpoint": {"url": f"http://127.0.0.1:{self.actions_port}/webhook"},
            "tracker_store": {"type": "SQL", "dialect": "sqlite", "db": str(self.db)},
        }))
        self.clinic, self.env, self.credentials, self.origins = prepare(
            workdir, self.page_ports, staff_webhook_url, booking_webhook_url, {"OUTBOX_DB": str(self.outbox)})
        self.actions = None
        self.rasa = None
        self.start_actions()
        self.start_rasa()

    def _start(self, command, log_name, health_url, env=None) -> Popen:
        log = self.workdir / log_name
        process = Popen(command, cwd=ROOT, env={**self.env, **(env or {})}, stdout=log.open("ab"), stderr=STDOUT)
        wait_until_up(health_url, process, log)
        return process

    def start_actions(self):
        # As make run does: actions/server.py, on this machine only.
        self.actions = self._start([str(RASA.parent / "python"), "-m", "actions.server", "--port",
                                    str(self.actions_port)], "actions.log", f"http://127.0.0.1:{self.actions_port}/health")

    def start_rasa(self):
        self.rasa = self._start(
            [str(RASA), "run", "--model", str(MODEL), "--endpoints", str(self.endpoints),
             "--credentials", str(self.credentials), "--cors", *self.origins.split(), "--port", str(self.port),
             "--enable-api", f"--auth-token={API_TOKEN}"],
            "rasa.log", f"http://localhost:{self.port}/")

    def restart_rasa(self):
        stop(self.rasa)
        self.start_rasa()

    def say(self, sender: str, message: str) -> List[dict]:
        return say(self.port, sender, message)

    def slots(self, sender: str) -> dict:
        """The slots of this REST sender's conversation, as the server reads them from the tracker store."""
        return self.tracker(rest_conversation(sender))["slots"]

    def tracker(self, conversation_id: str) -> dict:
        """A conversation (any channel's), as the server reads it from the tracker store (HTTP API)."""
        # Rasa's routes take the id as it is in the path (no unquoting): ":" and "+" stay as they are.
        url = (f"http://127.0.0.1:{self.port}/conversations/{urllib.parse.quote(conversation_id, safe=':+')}/"
               "tracker?" + urllib.parse.urlencode({"token": API_TOKEN}))
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())

    def close(self):
        stop(self.rasa)
        stop(self.actions)


def text_of(replies) -> str:
    return "\n".join(r.get("text", "") for r in replies)
