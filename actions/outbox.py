"""The outbox: everything the assistant sends to the clinic, stored before it is sent.

A booking request or a staff notification must never be lost because a
webhook is down or slow. So each one is first written to a database, then POSTed as signed JSON
(actions/signing.py) to the webhook its kind belongs to. It is marked
delivered only on a 2xx answer; otherwise it is retried with growing back-off
(30 s, 1 min, 2 min ... at most 1 h) by a loop in the action server and by
`python -m actions.outbox deliver`. Its id travels as the Idempotency-Key, the
same on every retry, so a receiver that saw it already can ignore the repeat.

Where it is stored (database_url):
- by default SQLite, var/outbox.db (beside the SQLite tracker store);
- with ASSISTANT_PROFILE=production, the PostgreSQL database of the tracker store
  (the same POSTGRES_* variables endpoints.production.yml reads), so every action
  server of a multi-server set-up shares one outbox;
- OUTBOX_DB overrides both: a file path (SQLite) or an SQLAlchemy URL.

Staff: `make pending` (python -m actions.outbox list) shows what has not been
delivered yet and why.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Union

import aiohttp
import sqlalchemy
from sqlalchemy.engine import URL, Engine, RowMapping

from actions import signing

logger = logging.getLogger(__name__)

DEFAULT_DB = Path(__file__).resolve().parent.parent / "var" / "outbox.db"
SEND_TIMEOUT_SECONDS = 5
# How often the retry loop looks, and the first back-off (doubling up to an hour).
# Tests shorten both through the environment.
RETRY_EVERY_SECONDS = float(os.environ.get("OUTBOX_RETRY_EVERY_SECONDS", 15))
FIRST_BACKOFF_SECONDS = float(os.environ.get("OUTBOX_FIRST_BACKOFF_SECONDS", 30))
MAX_BACKOFF_SECONDS = 3600
# While one process sends an item, others leave it alone for this long.
CLAIM_SECONDS = 30
MAX_STORED_RESPONSE = 2000


@dataclass(frozen=True)
class Destination:
    url: str
    secret: str


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status: Optional[int] = None
    body: str = ""
    error: str = ""


# (url, secret, payload) -> result
Sender = Callable[[Destination, Dict[str, Any]], Awaitable[SendResult]]
# kind -> where it goes (None: no webhook configured, it waits in the store)
Destinations = Callable[[str], Optional[Destination]]


def backoff(attempts: int) -> float:
    return min(FIRST_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)


def now_iso(now: Optional[float] = None) -> str:
    return datetime.fromtimestamp(time.time() if now is None else now, timezone.utc).isoformat(timespec="seconds")


class OutboxConfigError(ValueError):
    pass


POSTGRES_SETTINGS = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")


def _as_url(where: Union[str, Path, URL]) -> Union[str, URL]:
    """An SQLAlchemy URL as it is; a file path as the SQLite database there."""
    if isinstance(where, Path) or (isinstance(where, str) and "://" not in where):
        return f"sqlite:///{Path(where).resolve()}"
    return where


def database_url(environ: Mapping[str, str] = os.environ) -> Union[str, URL]:
    """Where the outbox is stored (see the module's docstring)."""
    explicit = environ.get("OUTBOX_DB", "").strip()
    if explicit:
        return _as_url(explicit)
    if environ.get("ASSISTANT_PROFILE", "").strip() == "production":
        missing = [name for name in POSTGRES_SETTINGS if not environ.get(name)]
        if missing:
            raise OutboxConfigError("ASSISTANT_PROFILE=production keeps the outbox in PostgreSQL; "
                                    f"set {', '.join(missing)}")
        return URL.create("postgresql", username=environ["POSTGRES_USER"], password=environ["POSTGRES_PASSWORD"],
                          host=environ["POSTGRES_HOST"], port=int(environ["POSTGRES_PORT"]),
                          database=environ["POSTGRES_DB"])
    return f"sqlite:///{DEFAULT_DB}"


# One engine (and connection pool) per database for the whole process; the table is
# created once per database.
_engines: Dict[str, Engine] = {}


def _engine(url: Union[str, URL]) -> Engine:
    engine_url = sqlalchemy.engine.make_url(url)
    key = engine_url.render_as_string(hide_password=False)
    if key not in _engines:
        if engine_url.get_backend_name() == "sqlite":
            Path(engine_url.database).parent.mkdir(parents=True, exist_ok=True)
            engine = sqlalchemy.create_engine(engine_url, connect_args={"timeout": 10})
        else:
            engine = sqlalchemy.create_engine(engine_url, pool_pre_ping=True)
        _create_table(engine)
        _engines[key] = engine
    return _engines[key]


def _create_table(engine: Engine) -> None:
    # DOUBLE PRECISION: PostgreSQL's REAL is 4 bytes, too few for a Unix time.
    statement = sqlalchemy.text(
        """CREATE TABLE IF NOT EXISTS outbox (
               id TEXT PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL,
               created_at DOUBLE PRECISION NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
               next_attempt_at DOUBLE PRECISION NOT NULL, claimed_until DOUBLE PRECISION,
               delivered_at DOUBLE PRECISION, last_error TEXT, response TEXT)""")
    try:
        with engine.begin() as db:
            db.execute(statement)
    except sqlalchemy.exc.IntegrityError:
        # Two processes creating it at the same moment in PostgreSQL: the other one won.
        with engine.begin() as db:
            db.execute(statement)


class Outbox:
    def __init__(self, where: Union[None, str, Path, URL] = None):
        """`where`: a file path (SQLite) or an SQLAlchemy URL; by default database_url()."""
        self.engine = _engine(_as_url(where) if where else database_url())

    @property
    def where(self) -> str:
        """The database, without its password (for messages to staff)."""
        return self.engine.url.render_as_string(hide_password=True)

    def _rows(self, query: str, **values: Any) -> List[RowMapping]:
        with self.engine.connect() as db:
            return list(db.execute(sqlalchemy.text(query), values).mappings())

    def _change(self, query: str, **values: Any) -> int:
        with self.engine.begin() as db:
            return db.execute(sqlalchemy.text(query), values).rowcount

    def add(self, kind: str, fields: Dict[str, Any], key: Optional[str] = None) -> Dict[str, Any]:
        """Stores an item durably and returns its payload.

        `key` makes adding idempotent: adding the same key again returns the
        stored payload and stores nothing new (a form submitted twice is one
        request)."""
        now = time.time()
        payload = {"id": key or str(uuid.uuid4()), "event": kind, "time": now_iso(now), **fields}
        self._change(
            "INSERT INTO outbox (id, kind, payload, created_at, next_attempt_at) "
            "VALUES (:id, :kind, :payload, :now, :now) ON CONFLICT (id) DO NOTHING",
            id=payload["id"], kind=kind, payload=json.dumps(payload, ensure_ascii=False), now=now)
        return self.payload(payload["id"])  # type: ignore[return-value]

    def get(self, item_id: str) -> Optional[RowMapping]:
        rows = self._rows("SELECT * FROM outbox WHERE id = :id", id=item_id)
        return rows[0] if rows else None

    def payload(self, item_id: str) -> Optional[Dict[str, Any]]:
        row = self.get(item_id)
        return json.loads(row["payload"]) if row else None

    def pending(self, kind: Optional[str] = None) -> List[RowMapping]:
        if kind:
            return self._rows("SELECT * FROM outbox WHERE delivered_at IS NULL AND kind = :kind "
                              "ORDER BY created_at", kind=kind)
        return self._rows("SELECT * FROM outbox WHERE delivered_at IS NULL ORDER BY created_at")

    def _claim(self, item_id: str, now: float) -> bool:
        """Takes an item for sending; False if another sender has it or it was delivered."""
        return self._change(
            "UPDATE outbox SET claimed_until = :until WHERE id = :id AND delivered_at IS NULL "
            "AND (claimed_until IS NULL OR claimed_until < :now)",
            until=now + CLAIM_SECONDS, id=item_id, now=now) == 1

    async def deliver_due(
        self,
        destinations: Destinations,
        send: Optional[Sender] = None,
        now: Optional[float] = None,
        only: Optional[str] = None,
    ) -> int:
        """Sends every item that is due (or just `only`); returns how many were delivered."""
        send = send or post_signed
        clock = time.time() if now is None else now
        columns = "SELECT id, kind, payload, attempts FROM outbox WHERE delivered_at IS NULL"
        if only:
            due = self._rows(columns + " AND id = :id", id=only)
        else:
            due = self._rows(columns + " AND next_attempt_at <= :clock ORDER BY created_at", clock=clock)
        delivered = 0
        for row in due:
            destination = destinations(row["kind"])
            if destination is None or not self._claim(row["id"], time.time()):
                continue
            try:
                result = await send(destination, json.loads(row["payload"]))
            except asyncio.CancelledError:
                # Shutting down mid-send: let the next sender have it straight away.
                self._release(row["id"])
                raise
            except Exception as exc:  # network errors, timeouts: try again later
                result = SendResult(ok=False, error=f"{type(exc).__name__}: {exc}")
            self._record(row, result)
            delivered += result.ok
        return delivered

    def _release(self, item_id: str) -> None:
        self._change("UPDATE outbox SET claimed_until = NULL WHERE id = :id", id=item_id)

    def _record(self, row: RowMapping, result: SendResult) -> None:
        if result.ok:
            self._change(
                "UPDATE outbox SET delivered_at = :now, attempts = attempts + 1, claimed_until = NULL, "
                "response = :response, last_error = NULL WHERE id = :id",
                now=time.time(), response=result.body[:MAX_STORED_RESPONSE], id=row["id"])
            return
        attempts = row["attempts"] + 1
        error = result.error or f"HTTP {result.status}"
        self._change(
            "UPDATE outbox SET attempts = :attempts, next_attempt_at = :next, last_error = :error, "
            "claimed_until = NULL WHERE id = :id",
            attempts=attempts, next=time.time() + backoff(attempts), error=error, id=row["id"])
        logger.warning("%s %s not delivered (attempt %s): %s", row["kind"], row["id"], attempts, error)


async def post_signed(destination: Destination, payload: Dict[str, Any]) -> SendResult:
    body = signing.body_of(payload)
    headers = signing.signed_headers(destination.secret, body, payload["id"])
    timeout = aiohttp.ClientTimeout(total=SEND_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.post(destination.url, data=body, headers=headers) as response:
            text = await response.text(errors="replace")
            return SendResult(ok=200 <= response.status < 300, status=response.status, body=text)


def clinic_destinations(kind: str) -> Optional[Destination]:
    """Where each kind of item goes, from the clinic settings (read each time)."""
    from actions.clinic_settings import settings

    return settings().webhook_for(kind)


_retry_task: Optional[asyncio.Task] = None
_lock: Optional[asyncio.Lock] = None
_lock_loop: Optional[asyncio.AbstractEventLoop] = None


def _delivery_lock() -> asyncio.Lock:
    global _lock, _lock_loop
    loop = asyncio.get_running_loop()
    if _lock is None or _lock_loop is not loop:
        _lock, _lock_loop = asyncio.Lock(), loop
    return _lock


async def deliver_now(outbox: Outbox, item_id: str, destinations: Destinations = clinic_destinations) -> None:
    """One attempt at one item, now (the retry loop takes over if it fails)."""
    async with _delivery_lock():
        await outbox.deliver_due(destinations, only=item_id)


def send_soon(outbox: Outbox, item_id: str) -> None:
    """Tries to deliver right away, without making the visitor wait for it."""
    asyncio.get_running_loop().create_task(deliver_now(outbox, item_id))


def ensure_retry_loop(make_outbox: Callable[[], Outbox] = Outbox,
                      destinations: Destinations = clinic_destinations) -> None:
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
                async with _delivery_lock():
                    await outbox.deliver_due(destinations)
            except Exception:  # never let the loop die
                logger.exception("Retrying the outbox failed")
            await asyncio.sleep(RETRY_EVERY_SECONDS)

    _retry_task = asyncio.get_running_loop().create_task(loop())


def describe(row: RowMapping, destination: Optional[Destination]) -> str:
    payload = json.loads(row["payload"])
    if destination is None:
        state = "waiting: no webhook configured for it"
    elif row["attempts"] == 0:
        state = "waiting: not tried yet"
    else:
        retry = datetime.fromtimestamp(row["next_attempt_at"], timezone.utc).isoformat(timespec="seconds")
        state = f"FAILED {row['attempts']}x ({row['last_error']}), next try {retry}"
    what = {
        "booking_request": lambda p: f"{(p.get('visitor') or {}).get('name', '?')}, "
                                     f"{(p.get('preferred_time') or {}).get('text', '?')}",
        "red_flag_escalation": lambda p: f"tier {p.get('tier')}",
        "handover": lambda p: f"reason {p.get('reason')}",
    }.get(row["kind"], lambda p: "")(payload)
    return (f"{payload['time']}  {row['kind']:20s} {what:32s} conversation={payload.get('conversation_id')}  "
            f"id={row['id']}  {state}")


def main(argv: List[str]) -> int:
    command = argv[1] if len(argv) > 1 else "list"
    try:
        outbox = Outbox()
    except (OutboxConfigError, sqlalchemy.exc.SQLAlchemyError) as error:
        print(f"Can't open the outbox: {error}", file=sys.stderr)
        return 1
    if command == "list":
        rows = outbox.pending()
        if not rows:
            print(f"Nothing waiting: every booking request and staff notification was delivered ({outbox.where}).")
        for row in rows:
            print(describe(row, clinic_destinations(row["kind"])))
        return 0
    if command == "deliver":
        count = asyncio.run(outbox.deliver_due(clinic_destinations, now=float("inf")))
        print(f"Delivered {count}; {len(outbox.pending())} still waiting.")
        return 0
    if command == "show" and len(argv) > 2:
        row = outbox.get(argv[2])
        if row is None:
            print(f"No item with id {argv[2]}")
            return 1
        print(json.dumps(json.loads(row["payload"]), indent=2, ensure_ascii=False))
        return 0
    print("usage: python -m actions.outbox [list | deliver | show <id>]")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
