"""A local stand-in for the clinic's booking system and staff channel.

    BOOKING_WEBHOOK_SECRET=... STAFF_WEBHOOK_SECRET=... make receiver

listens on http://127.0.0.1:8081 and accepts
    POST /bookings  (booking requests, checked with BOOKING_WEBHOOK_SECRET)
    POST /staff     (escalations and hand-overs, checked with STAFF_WEBHOOK_SECRET)
It refuses a request whose signature is wrong or stale (401), answers a repeat
of an Idempotency-Key it has seen with 200 "duplicate" without storing it
again, and appends every new request to var/received.jsonl, printing a line.

It is also the reference for whoever connects a real booking system: the
check it does is `actions.signing.verify`, a dozen lines.

Tests can make it misbehave like a real system on a bad day (the defaults
change nothing):
    fail_with_status = 500  answers every request with that status and records
                            nothing (counted in `failures`);
    delay_seconds = 2.0     still records the request, then waits that long
                            before answering, so a sender with a shorter
                            timeout gives up and its retry arrives as a
                            duplicate.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actions import signing  # noqa: E402


class WebhookReceiver:
    """Records signed JSON POSTs; one instance per port. Also used by the tests."""

    def __init__(self, secrets: Dict[str, str], port: int = 0, store: Optional[Path] = None,
                 host: str = "127.0.0.1", quiet: bool = False):
        self.secrets = secrets          # path ("/bookings") -> shared secret
        self.store = store
        self.quiet = quiet
        self.received: List[dict] = []  # new requests, in order
        self.rejected: List[str] = []   # why requests were refused
        self.duplicates = 0
        self.fail_with_status: Optional[int] = None  # answer everything with this, record nothing
        self.delay_seconds = 0.0                     # answer this late (after recording)
        self.failures = 0                            # requests answered with fail_with_status
        self._seen = set()
        self._lock = threading.Lock()
        if store and store.exists():
            for line in store.read_text(encoding="utf-8").splitlines():
                self._seen.add(json.loads(line)["payload"]["id"])
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.port = self.server.server_address[1]
        self._thread: Optional[threading.Thread] = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = receiver.handle(self.path, dict(self.headers), body)
                data = json.dumps(answer).encode()
                time.sleep(receiver.delay_seconds)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (delay_seconds); what it sent is recorded

            def log_message(self, *args):
                pass

        return Handler

    def handle(self, path: str, headers: Dict[str, str], body: bytes):
        if self.fail_with_status:
            with self._lock:
                self.failures += 1
            self._say(f"answered {path} with {self.fail_with_status} (fail_with_status; nothing recorded)")
            return self.fail_with_status, {"error": "failing on purpose (fail_with_status)"}
        secret = self.secrets.get(path)
        if secret is None:
            return 404, {"error": f"unknown path {path}"}
        problem = signing.verify(secret, headers, body)
        if problem:
            self.rejected.append(problem)
            self._say(f"REFUSED {path}: {problem}")
            return 401, {"error": problem}
        payload = json.loads(body)
        key = {k.lower(): v for k, v in headers.items()}.get(signing.IDEMPOTENCY_HEADER.lower(), payload.get("id"))
        with self._lock:
            if key in self._seen:
                self.duplicates += 1
                self._say(f"duplicate {path} {key} (already received; ignored)")
                return 200, {"status": "duplicate", "id": key}
            self._seen.add(key)
            self.received.append(payload)
            if self.store:
                self.store.parent.mkdir(parents=True, exist_ok=True)
                with self.store.open("a", encoding="utf-8") as out:
                    out.write(json.dumps({"path": path, "payload": payload}, ensure_ascii=False) + "\n")
        self._say(f"received {path}: {summary(payload)}")
        return 200, {"status": "received", "id": key}

    def _say(self, line: str) -> None:
        if not self.quiet:
            print(line, flush=True)

    def start(self) -> "WebhookReceiver":
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def summary(payload: dict) -> str:
    if payload.get("event") == "booking_request":
        visitor, when = payload.get("visitor") or {}, payload.get("preferred_time") or {}
        service = payload.get("service") or {}
        return (f"booking for {visitor.get('name')} ({visitor.get('phone') or visitor.get('email')}), "
                f"{service.get('technique') or 'technique to advise'}, {when.get('understood')} "
                f"[{when.get('time_zone')}], notes: {payload.get('notes_for_therapist')}")
    return f"{payload.get('event')} {payload.get('tier') or payload.get('reason') or ''} " \
           f"conversation {payload.get('conversation_id')}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("RECEIVER_PORT", 8081)))
    parser.add_argument("--store", type=Path, default=ROOT / "var" / "received.jsonl")
    args = parser.parse_args()
    secrets = {path: os.environ.get(variable, "") for path, variable in
               (("/bookings", "BOOKING_WEBHOOK_SECRET"), ("/staff", "STAFF_WEBHOOK_SECRET"))}
    missing = [path for path, secret in secrets.items() if not secret]
    if len(missing) == 2:
        print("Set BOOKING_WEBHOOK_SECRET and/or STAFF_WEBHOOK_SECRET (the same values the assistant uses).")
        return 2
    secrets = {path: secret for path, secret in secrets.items() if secret}
    receiver = WebhookReceiver(secrets, port=args.port, store=args.store)
    print(f"Receiving on {', '.join(receiver.url(p) for p in secrets)}; storing in {args.store}. Ctrl-C stops.")
    try:
        receiver.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
