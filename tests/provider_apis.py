"""Fakes of Twilio's and Telegram's APIs on local ports: where the assistant's SMS/WhatsApp and
Telegram replies go in tests (a real deployment uses api.twilio.com and api.telegram.org).

Each records the calls it gets and can be told to answer 500 or to hang (accept the request and
answer nothing), as a provider having an outage does. `make run`-like assistants started by
tests/running_assistant.py are pointed at them (`settings()`).
"""
from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Optional, Tuple

OK, FAIL, HANG = "ok", "fail", "hang"
# How long a hanging request is held before it is answered (far longer than the channels wait).
HANG_SECONDS = 30

TELEGRAM_TOKEN = "123:TEST"
TELEGRAM_BOT_NAME = "clinic_bot"
TELEGRAM_SECRET = "telegram-secret-token-for-tests"
TELEGRAM_WEBHOOK_URL = "https://bot.example/webhooks/telegram/webhook"


class FakeApi:
    """A local HTTP server answering POSTs with `answer(method, fields)`; records (method, fields)."""

    def __init__(self, answer: Callable[[str, dict], Tuple[int, dict]]):
        self.calls: List[Tuple[str, dict]] = []
        self.mode = OK
        self._released = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    fields = json.loads(body or "{}")
                else:
                    fields = {key: values[0] for key, values in urllib.parse.parse_qs(body).items()}
                method = self.path.rsplit("/", 1)[-1]
                fake.calls.append((method, fields))
                if fake.mode == HANG:
                    fake._released.wait(HANG_SECONDS)
                status, payload = (500, {"ok": False, "error_code": 500, "description": "Internal Server Error",
                                         "status": 500, "message": "Internal Server Error"}) \
                    if fake.mode != OK else answer(method, fields)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up waiting (a hanging request)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set_mode(self, mode: str) -> None:
        self._released.set()  # requests still hanging are answered now
        self._released = threading.Event()
        self.mode = mode

    def called(self, method: str) -> List[dict]:
        return [fields for name, fields in list(self.calls) if name == method]

    def wait_for(self, predicate: Callable[[], bool], seconds: float = 30) -> bool:
        deadline = time.time() + seconds
        while time.time() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return False


def _twilio_answer(method: str, fields: dict) -> Tuple[int, dict]:
    # POST /2010-04-01/Accounts/<sid>/Messages.json: the created message, as Twilio answers it
    return 201, {"sid": "SM" + "0" * 32, "status": "queued", "to": fields.get("To"), "from": fields.get("From"),
                 "body": fields.get("Body")}


def _telegram_answer(method: str, fields: dict) -> Tuple[int, dict]:
    if method == "getMe":
        result: object = {"id": 123, "is_bot": True, "first_name": "Clinic", "username": TELEGRAM_BOT_NAME}
    elif method == "sendMessage":
        result = {"message_id": len(fields), "date": 1763700000, "text": fields.get("text", ""),
                  "chat": {"id": int(fields.get("chat_id", 0)), "type": "private"}}
    else:
        result = True
    return 200, {"ok": True, "result": result}


def fake_twilio_api() -> FakeApi:
    return FakeApi(_twilio_answer)


def fake_telegram_api() -> FakeApi:
    return FakeApi(_telegram_answer)


_shared: Optional[Dict[str, FakeApi]] = None


def shared() -> Dict[str, FakeApi]:
    """The fakes the running assistants of this test process reply through (started once)."""
    global _shared
    if _shared is None:
        _shared = {"twilio": fake_twilio_api(), "telegram": fake_telegram_api()}
    return _shared


def settings() -> Dict[str, str]:
    """The channel settings (environment variables) that point an assistant at the shared fakes."""
    apis = shared()
    return {"TWILIO_API_URL": apis["twilio"].url,
            "TELEGRAM_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_BOT_NAME": TELEGRAM_BOT_NAME,
            "TELEGRAM_WEBHOOK_URL": TELEGRAM_WEBHOOK_URL, "TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
            "TELEGRAM_API_SERVER": apis["telegram"].url}
