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
delivered yet and why; `python -m actions.outbox count` how many of each kind (what
`make clean` checks). Items hold names, phones and health notes: the SQLite file is
its owner's only, and `make forget-old` removes items older than the retention
period (Outbox.expire).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Tuple, Union

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
            owner_only(Path(engine_url.database))
            engine = sqlalchemy.create_engine(engine_url, connect_args={"timeout": 10})
        else:
            engine = sqlalchemy.create_engine(engine_url, pool_pre_ping=True)
        _create_table(engine)
        _engines[key] = engine
    return _engines[key]


def owner_only(database: Path) -> None:
    """Creates an SQLite file readable and writable by its owner only, or takes other users'
    access away from an existing one and its journals (they hold names, phones, health notes).
    SQLite gives the journal files it creates the database file's mode."""
    try:
        os.close(os.open(database, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    for path in [database] + [database.with_name(database.name + end) for end in ("-journal", "-wal", "-shm")]:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                path.chmod(mode & 0o700)
        except FileNotFoundError:
            continue
        except PermissionError as error:  # another user's file: say so, it still works
            logger.warning("%s is readable by other users and can't be changed: %s", path, error)


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


INSERT_ITEM = ("INSERT INTO outbox (id, kind, payload, created_at, next_attempt_at) "
               "VALUES (:id, :kind, :payload, :now, :now) ON CONFLICT (id) DO NOTHING")


def new_item(kind: str, fields: Dict[str, Any], key: Optional[str] = None) -> Dict[str, Any]:
    """The values INSERT_ITEM stores for a new item (its payload: id, event, time and the fields)."""
    now = time.time()
    payload = {"id": key or str(uuid.uuid4()), "event": kind, "time": now_iso(now), **fields}
    return {"id": payload["id"], "kind": kind, "payload": json.dumps(payload, ensure_ascii=False), "now": now}


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
        item = new_item(kind, fields, key)
        self._change(INSERT_ITEM, **item)
        return self.payload(item["id"])  # type: ignore[return-value]

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

    def waiting_by_kind(self) -> Dict[str, int]:
        """How many items of each kind are not delivered yet."""
        rows = self._rows("SELECT kind, COUNT(*) AS waiting FROM outbox WHERE delivered_at IS NULL "
                          "GROUP BY kind ORDER BY kind")
        return {row["kind"]: row["waiting"] for row in rows}

    def booking_requests_of(self, conversation_id: str) -> List[str]:
        """The ids of the booking requests stored for this conversation (delivered or not), oldest first."""
        # The LIKE narrows the search to payloads that mention the id; the JSON decides.
        needle = json.dumps(conversation_id, ensure_ascii=False)
        needle = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._rows("SELECT id, payload FROM outbox WHERE kind = 'booking_request' "
                          "AND payload LIKE :pattern ESCAPE '\\' ORDER BY created_at", pattern=f"%{needle}%")
        return [row["id"] for row in rows if json.loads(row["payload"]).get("conversation_id") == conversation_id]

    def expire(self, cutoff: float, days: int, dry_run: bool = False
               ) -> Tuple[int, List[RowMapping], Optional[Dict[str, Any]]]:
        """Removes the items stored before `cutoff` (`days` ago): delivered ones, and ones never
        delivered after storing a staff notification ("outbox_expired") that names them by id,
        kind and time, never their contents; it is sent and retried like any other item.
        An item being sent right now is left for the next run. One transaction: all or nothing.
        Returns (delivered items removed, undelivered items removed, the notification)."""
        old = "created_at < :cutoff AND (claimed_until IS NULL OR claimed_until < :now)"
        values = {"cutoff": cutoff, "now": time.time()}
        with self.engine.begin() as db:
            if dry_run:
                delivered = db.execute(sqlalchemy.text(
                    f"SELECT COUNT(*) FROM outbox WHERE delivered_at IS NOT NULL AND {old}"), values).scalar()
            else:
                # Deleting first makes this transaction the writer (SQLite), so what is read next stays so.
                delivered = db.execute(sqlalchemy.text(
                    f"DELETE FROM outbox WHERE delivered_at IS NOT NULL AND {old}"), values).rowcount
            undelivered = list(db.execute(sqlalchemy.text(
                "SELECT id, kind, created_at, attempts, last_error FROM outbox "
                f"WHERE delivered_at IS NULL AND {old} ORDER BY created_at"), values).mappings())
            if dry_run or not undelivered:
                return delivered, undelivered, None
            notice = new_item("outbox_expired", {
                "older_than_days": days,
                "items": [{"id": row["id"], "kind": row["kind"], "stored": now_iso(row["created_at"]),
                           "attempts": row["attempts"], "last_error": row["last_error"]} for row in undelivered]})
            db.execute(sqlalchemy.text(INSERT_ITEM), notice)
            remove = sqlalchemy.text("DELETE FROM outbox WHERE id IN :ids AND delivered_at IS NULL").bindparams(
                sqlalchemy.bindparam("ids", expanding=True))
            for start in range(0, len(undelivered), 500):
                db.execute(remove, {"ids": [row["id"] for row in undelivered[start:start + 500]]})
        return delivered, undelivered, json.loads(notice["payload"])

    def _claim(self, item_id: str, now: float) -> bool:
        """Takes an item for sending; False if another sender has it or it was delivered."""
        return self._change(
            "UPDATE outbox SET claimed_until = :until WHERE id = :id AND delivered_at IS NULL "
            "AND (claimed_until IS NULL OR claimed_until < :now)",
            until=now + CLAIM_SECONDS, id=item_id, now=now) == 1

    def _due(self, clock: float, only: Optional[str] = None) -> List[RowMapping]:
        """The undelivered items due by `clock`, oldest first (or just `only`, due or not)."""
        columns = "SELECT id, kind, payload, attempts FROM outbox WHERE delivered_at IS NULL"
        if only:
            return self._rows(columns + " AND id = :id", id=only)
        return self._rows(columns + " AND next_attempt_at <= :clock ORDER BY created_at", clock=clock)

    async def deliver_due(
        self,
        destinations: Destinations,
        send: Optional[Sender] = None,
        now: Optional[float] = None,
        only: Optional[str] = None,
    ) -> int:
        """Sends every item that is due (or just `only`), one after the other; returns how many
        were delivered. The database is used from a worker thread, never blocking the event loop."""
        send = send or post_signed
        clock = time.time() if now is None else now
        delivered = 0
        for row in await asyncio.to_thread(self._due, clock, only):
            destination = destinations(row["kind"])
            if destination is None or not await asyncio.to_thread(self._claim, row["id"], time.time()):
                continue
            try:
                result = await send(destination, json.loads(row["payload"]))
            except asyncio.CancelledError:
                # Shutting down mid-send: let the next sender have it straight away (the loop has
                # nothing else left to do, so this one short write may block it).
                self._release(row["id"])
                raise
            except Exception as exc:  # network errors, timeouts: try again later
                result = SendResult(ok=False, error=f"{type(exc).__name__}: {exc}")
            await asyncio.to_thread(self._record, row, result)
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


# Deliveries under way in this process, by item id: the reference keeps a task from being
# garbage-collected mid-send, and lets the retry loop wait for an item a visitor's action is
# sending instead of racing it for the claim. Removed when done.
_deliveries: Dict[str, "asyncio.Task[int]"] = {}
_retry_task: Optional[asyncio.Task] = None


def send_soon(outbox: Outbox, item_id: str, destinations: Destinations = clinic_destinations) -> "asyncio.Task[int]":
    """Starts one attempt at one item in the background (the retry loop takes over if it fails)
    and returns its task: a caller may wait for it, shielded, but nobody has to. An attempt at the
    same item already under way in this process is returned instead of starting another."""
    task = _deliveries.get(item_id)
    if task is None or task.done():
        task = asyncio.get_running_loop().create_task(outbox.deliver_due(destinations, only=item_id))
        _deliveries[item_id] = task

        def finished(done: "asyncio.Task[int]") -> None:
            if _deliveries.get(item_id) is done:
                del _deliveries[item_id]
            if not done.cancelled() and done.exception() is not None:
                logger.error("Sending %s failed: %r (the retry loop will try again)", item_id, done.exception())

        task.add_done_callback(finished)
    return task


async def _retry_forever(make_outbox: Callable[[], Outbox], destinations: Destinations) -> None:
    outbox: Optional[Outbox] = None
    while True:
        try:
            outbox = outbox or await asyncio.to_thread(make_outbox)
            for row in await asyncio.to_thread(outbox._due, time.time()):
                # One at a time: the clinic's webhooks get one retry at a time from here. A failure
                # is logged by send_soon's task.
                await asyncio.wait([send_soon(outbox, row["id"], destinations)])
        except Exception:  # never let the loop die (a database that is down is tried again next round)
            logger.exception("Retrying the outbox failed")
        await asyncio.sleep(RETRY_EVERY_SECONDS)


def start_retry_loop(make_outbox: Callable[[], Outbox] = Outbox,
                     destinations: Destinations = clinic_destinations) -> asyncio.Task:
    """Starts the loop that retries whatever is due, once per process: the action server
    starts it with itself (actions/server.py), so items left from before a restart go out
    without waiting for a visitor."""
    global _retry_task
    if _retry_task is None or _retry_task.done():
        _retry_task = asyncio.get_running_loop().create_task(_retry_forever(make_outbox, destinations))
    return _retry_task


async def stop_retry_loop() -> None:
    """Stops the loop and the sends under way; an interrupted send releases its item to the next sender."""
    global _retry_task
    tasks = [task for task in [_retry_task, *_deliveries.values()] if task is not None and not task.done()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    _retry_task = None


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
    if command == "count":  # what `make clean` checks: "3 waiting: 2 booking_request, 1 handover"
        waiting = outbox.waiting_by_kind()
        kinds = ", ".join(f"{count} {kind}" for kind, count in waiting.items())
        print(f"{sum(waiting.values())} waiting" + (f": {kinds}" if kinds else ""))
        return 0
    if command == "show" and len(argv) > 2:
        row = outbox.get(argv[2])
        if row is None:
            print(f"No item with id {argv[2]}")
            return 1
        print(json.dumps(json.loads(row["payload"]), indent=2, ensure_ascii=False))
        return 0
    print("usage: python -m actions.outbox [list | deliver | count | show <id>]")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
