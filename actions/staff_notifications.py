"""Notifications to clinic staff, written to a local store before sending.

An escalation must not be lost because the staff endpoint is down: every
notification is first stored in SQLite (var/outbox.db by default,
STAFF_OUTBOX_DB to change it), then POSTed as JSON to the staff webhook from
clinic.yml. It is marked delivered only on a 2xx answer; otherwise it is
retried with growing back-off (30 s, 1 min, 2 min ... up to 1 h) by a loop in
the action server, and by `python -m actions.staff_notifications deliver`.
Each notification has an id the receiver can use to ignore a repeat.

Staff: `python -m actions.staff_notifications list` shows what is waiting.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional

import aiohttp

logger = logging.getLogger(__name__)

DEFAULT_DB = Path(__file__).resolve().parent.parent / "var" / "outbox.db"
SEND_TIMEOUT_SECONDS = 5
RETRY_EVERY_SECONDS = 15
MAX_BACKOFF_SECONDS = 3600

Sender = Callable[[str, Dict[str, Any]], Awaitable[bool]]


def backoff(attempts: int) -> float:
    return min(30 * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)


class Outbox:
    def __init__(self, path: Optional[Path] = None):
        self.path = Path(path or os.environ.get("STAFF_OUTBOX_DB") or DEFAULT_DB)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(
                """CREATE TABLE IF NOT EXISTS notifications (
                       id TEXT PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL,
                       created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                       next_attempt_at REAL NOT NULL, delivered_at REAL, last_error TEXT)"""
            )

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        return db

    def add(self, kind: str, fields: Dict[str, Any]) -> Dict[str, Any]:
        """Stores a notification (durably) and returns its payload."""
        now = time.time()
        payload = {
            "id": str(uuid.uuid4()),
            "event": kind,
            "time": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
            **fields,
        }
        with self._db() as db:
            db.execute(
                "INSERT INTO notifications (id, kind, payload, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)",
                (payload["id"], kind, json.dumps(payload), now, now),
            )
        return payload

    def pending(self) -> List[sqlite3.Row]:
        with self._db() as db:
            return db.execute(
                "SELECT * FROM notifications WHERE delivered_at IS NULL ORDER BY created_at"
            ).fetchall()

    async def deliver_due(self, url: str, send: Optional[Sender] = None, now: Optional[float] = None) -> int:
        """Sends every notification that is due; returns how many were delivered.

        One delivery at a time per process, so the retry loop and an immediate
        send never post the same notification twice."""
        if not url:
            return 0
        async with _delivery_lock():
            return await self._deliver_due(url, send, now)

    async def _deliver_due(self, url: str, send: Optional[Sender], now: Optional[float]) -> int:
        send = send or post_json
        now = time.time() if now is None else now
        with self._db() as db:
            due = db.execute(
                "SELECT id, payload, attempts FROM notifications WHERE delivered_at IS NULL AND next_attempt_at <= ?",
                (now,),
            ).fetchall()
        delivered = 0
        for row in due:
            error = None
            try:
                ok = await send(url, json.loads(row["payload"]))
            except Exception as exc:  # network errors, timeouts: try again later
                ok, error = False, f"{type(exc).__name__}: {exc}"
            with self._db() as db:
                if ok:
                    db.execute("UPDATE notifications SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?",
                               (time.time(), row["id"]))
                    delivered += 1
                else:
                    attempts = row["attempts"] + 1
                    db.execute(
                        "UPDATE notifications SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
                        (attempts, time.time() + backoff(attempts), error or "non-2xx answer", row["id"]),
                    )
                    logger.warning("Staff notification %s not delivered (attempt %s): %s", row["id"], attempts,
                                   error or "non-2xx answer")
        return delivered


async def post_json(url: str, payload: Dict[str, Any]) -> bool:
    timeout = aiohttp.ClientTimeout(total=SEND_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.post(url, json=payload) as response:
            return 200 <= response.status < 300


_retry_task: Optional[asyncio.Task] = None
_lock: Optional[asyncio.Lock] = None
_lock_loop: Optional[asyncio.AbstractEventLoop] = None


def _delivery_lock() -> asyncio.Lock:
    global _lock, _lock_loop
    loop = asyncio.get_running_loop()
    if _lock is None or _lock_loop is not loop:
        _lock, _lock_loop = asyncio.Lock(), loop
    return _lock


def send_soon(outbox: "Outbox", url: str) -> None:
    """Tries to deliver right away, without making the visitor wait for it."""
    if url:
        asyncio.get_running_loop().create_task(outbox.deliver_due(url))


def ensure_retry_loop(make_outbox: Callable[[], "Outbox"], url_of: Callable[[], str]) -> None:
    """Starts (once per action server) the loop that retries what is due.

    Takes a factory so callers on the per-message path open no database
    when the loop is already running."""
    global _retry_task
    if _retry_task is not None and not _retry_task.done():
        return
    outbox = make_outbox()

    async def loop() -> None:
        while True:
            try:
                await outbox.deliver_due(url_of())
            except Exception:  # never let the loop die
                logger.exception("Retrying staff notifications failed")
            await asyncio.sleep(RETRY_EVERY_SECONDS)

    _retry_task = asyncio.get_running_loop().create_task(loop())


def main(argv: List[str]) -> int:
    from actions.clinic_settings import settings

    command = argv[1] if len(argv) > 1 else "list"
    outbox = Outbox()
    if command == "list":
        rows = outbox.pending()
        if not rows:
            print("No staff notifications waiting.")
        for row in rows:
            payload = json.loads(row["payload"])
            print(f"{payload['time']}  {payload['event']:22s} tier={payload.get('tier', '-'):10s} "
                  f"conversation={payload.get('conversation_id')}  attempts={row['attempts']}  "
                  f"last error={row['last_error'] or '-'}")
        return 0
    if command == "deliver":
        url = settings().staff_webhook_url
        if not url:
            print("No staff_webhook_url in clinic.yml (or STAFF_WEBHOOK_URL); nothing sent.")
            return 1
        count = asyncio.run(outbox.deliver_due(url, now=float("inf")))
        print(f"Delivered {count}; {len(outbox.pending())} still waiting.")
        return 0
    print("usage: python -m actions.staff_notifications [list|deliver]")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
