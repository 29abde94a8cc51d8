"""`make export-unsure`: the visitors' messages the assistant was unsure about, for staff to label.

Reads the conversation store (the tracker store in endpoints.yml: var/tracker.db
by default; any SQL database with --db URL or TRACKER_STORE_URL) and writes a
spreadsheet (CSV) of the messages in a period that the assistant

  - did not understand (it said so and offered topics),
  - treated as off-topic, or
  - answered with low confidence (under --below, 0.7 by default),

each with its three best guesses and an empty `label` column. Staff fill the
label with the topic the message should have been (see docs/staff-guide.md) and
run `make merge-labelled FILE=...`.

Personal data is masked before anything is written: phone numbers, e-mail
addresses and the names visitors gave in the booking form become [phone],
[email] and [name]; conversation ids (a phone number on SMS) are replaced by a
short code. Answers to the booking form's questions (a name, a time, "yes") are
left out unless --include-form-answers.

Usage: python scripts/export_unsure.py [--since 2026-11-01] [--until 2026-11-20 | --days 7]
                                       [--below 0.7] [--db URL] [--out FILE]
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple
from zoneinfo import ZoneInfo

import yaml

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["row", "time", "conversation", "message", "why", "understood_as", "confidence",
           "guess_1", "guess_2", "guess_3", "label"]
NOT_UNDERSTOOD, OFF_TOPIC = "nlu_fallback", "out_of_scope"
NAME_SLOTS = ("booking_name",)
FORMS = ("booking_form",)

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\S*@\S*")
PHONE = re.compile(r"\+?\(?\d[\d\s().-]{5,}\d")
SAID_NAME = re.compile(r"\b(my name is|my name's|name is|call me|this is)\s+([A-Za-z'-]+(?:\s+[A-Z][A-Za-z'-]+)?)",
                       re.IGNORECASE)


class ExportError(Exception):
    """A problem with the command's input, explained for staff."""


# --- where the conversations are ---------------------------------------------------------------

def _expand(value):
    """${VARIABLE} in endpoints.yml, as Rasa reads it."""
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: os.environ.get(m.group(1), ""), value)
    return value


def tracker_store_url(endpoints: Path = ROOT / "endpoints.yml") -> str:
    """The SQL tracker store of endpoints.yml as an SQLAlchemy URL."""
    from sqlalchemy.engine import URL

    config = (yaml.safe_load(endpoints.read_text()) or {}).get("tracker_store") or {}
    config = {k: _expand(v) for k, v in config.items()}
    if str(config.get("type", "")).upper() != "SQL":
        raise ExportError(f"{endpoints.name} does not use an SQL tracker store (type: {config.get('type')}); "
                          "pass the database with --db URL")
    dialect = config.get("dialect", "sqlite")
    db = config.get("db", "rasa.db")
    if dialect == "sqlite":
        path = Path(db) if Path(db).is_absolute() else ROOT / db
        return f"sqlite:///{path}"
    return str(URL.create(dialect, username=config.get("username"), password=config.get("password"),
                          host=config.get("url"), port=int(config["port"]) if config.get("port") else None,
                          database=db))


# --- reading conversations ---------------------------------------------------------------------

@dataclass
class Unsure:
    timestamp: float
    sender: str
    text: str
    why: str
    understood_as: str
    confidence: float
    guesses: List[str]
    names: List[str] = field(default_factory=list)


def read_events(url: str, since: float, until: float) -> Dict[str, List[Tuple[str, dict]]]:
    """All events of every conversation with a visitor message in [since, until)."""
    from sqlalchemy import create_engine, text

    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        raise ExportError(f"There is no conversation database at {url[len('sqlite:///'):]} yet: "
                          "the assistant writes it when visitors talk to it (make run).")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            senders = [row[0] for row in connection.execute(
                text("SELECT DISTINCT sender_id FROM events WHERE type_name = 'user' "
                     "AND timestamp >= :since AND timestamp < :until"), {"since": since, "until": until})]
            conversations: Dict[str, List[Tuple[str, dict]]] = {}
            for sender in senders:
                rows = connection.execute(
                    text("SELECT type_name, data FROM events WHERE sender_id = :sender ORDER BY id"),
                    {"sender": sender})
                conversations[sender] = [(kind, json.loads(data or "{}")) for kind, data in rows]
            return conversations
    except Exception as error:  # sqlalchemy raises many kinds; all mean "can't read it"
        if isinstance(error, ExportError):
            raise
        raise ExportError(f"Could not read the conversations from the database ({type(error).__name__}: "
                          f"{str(error).splitlines()[0][:200]})") from None
    finally:
        engine.dispose()


def best_guesses(parse: dict, count: int = 3) -> List[str]:
    """The model's top guesses, FAQ topics by name, as 'faq/symptoms (41%)'."""
    guesses: List[Tuple[str, float]] = []
    faq = ((parse.get("response_selector") or {}).get("faq") or {}).get("ranking") or []
    for entry in parse.get("intent_ranking") or []:
        name, confidence = entry.get("name"), entry.get("confidence") or 0.0
        if name in (NOT_UNDERSTOOD, None):
            continue
        if name == "faq" and faq:
            guesses += [(f["intent_response_key"], confidence * (f.get("confidence") or 0.0)) for f in faq[:count]]
        else:
            guesses.append((name, confidence))
    guesses.sort(key=lambda g: -g[1])
    return [f"{name} ({confidence:.0%})" for name, confidence in guesses[:count]]


def why_unsure(parse: dict, below: float) -> Optional[Tuple[str, str, float]]:
    """(why, understood as, confidence) if the assistant was unsure, else None."""
    intent = parse.get("intent") or {}
    name, confidence = intent.get("name"), intent.get("confidence") or 0.0
    if name == NOT_UNDERSTOOD:
        return "not understood", name, confidence
    if name == OFF_TOPIC:
        return "treated as off-topic", name, confidence
    if name == "faq":
        answer = ((parse.get("response_selector") or {}).get("faq") or {}).get("response") or {}
        key, answer_confidence = answer.get("intent_response_key") or "faq", answer.get("confidence") or 0.0
        if min(confidence, answer_confidence) < below:
            return "unsure which answer", key, min(confidence, answer_confidence)
        return None
    if confidence < below:
        return "unsure", name or "?", confidence
    return None


def unsure_messages(conversations: Dict[str, List[Tuple[str, dict]]], since: float, until: float,
                    below: float, include_form_answers: bool) -> Tuple[List[Unsure], int]:
    found: List[Unsure] = []
    skipped_form_answers = 0
    for sender, events in conversations.items():
        names = [str(data.get("value")) for kind, data in events
                 if kind == "slot" and data.get("name") in NAME_SLOTS and data.get("value")]
        in_form = False
        for kind, data in events:
            if kind == "active_loop":
                in_form = data.get("name") in FORMS
                continue
            if kind != "user" or not since <= (data.get("timestamp") or 0) < until:
                continue
            text = (data.get("text") or "").strip()
            if not text or text.startswith("/"):  # buttons send /intent payloads: nothing to learn
                continue
            verdict = why_unsure(data.get("parse_data") or {}, below)
            if verdict is None:
                continue
            if in_form and not include_form_answers:
                skipped_form_answers += 1
                continue
            why, understood_as, confidence = verdict
            found.append(Unsure(data["timestamp"], sender, text, why, understood_as, confidence,
                                best_guesses(data.get("parse_data") or {}), names))
    found.sort(key=lambda u: u.timestamp)
    return found, skipped_form_answers


# --- masking personal data ---------------------------------------------------------------------

def mask(text: str, names: Iterable[str] = ()) -> str:
    text = EMAIL.sub("[email]", text)
    text = PHONE.sub(lambda m: "[phone]" if sum(c.isdigit() for c in m.group()) >= 7 else m.group(), text)
    text = SAID_NAME.sub(lambda m: f"{m.group(1)} [name]", text)
    words = {w for name in names for w in re.findall(r"[^\W\d_][\w'-]*", name) if len(w) >= 2}
    for word in sorted(words, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", "[name]", text, flags=re.IGNORECASE)
    return text


def conversation_code(sender: str) -> str:
    return "c-" + hashlib.sha256(sender.encode()).hexdigest()[:8]


# --- the command -------------------------------------------------------------------------------

def parse_day(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ExportError(f"{what} should be a date such as 2026-11-01, not {value!r}") from None


def period(since: Optional[str], until: Optional[str], days: int, zone: ZoneInfo, today: date):
    """[start, end) as timestamps; `until` is inclusive (the whole day)."""
    end_day = parse_day(until, "--until") if until else today
    start_day = parse_day(since, "--since") if since else end_day - timedelta(days=days - 1)
    if start_day > end_day:
        raise ExportError(f"--since ({start_day}) is after --until ({end_day})")
    start = datetime.combine(start_day, time.min, zone).timestamp()
    end = datetime.combine(end_day + timedelta(days=1), time.min, zone).timestamp()
    return start_day, end_day, start, end


def write_csv(rows: List[Unsure], out: Path, zone: ZoneInfo) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    # utf-8-sig: Excel then shows accents and emoji properly.
    with out.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for number, row in enumerate(rows, 1):
            guesses = (row.guesses + ["", "", ""])[:3]
            writer.writerow([number, datetime.fromtimestamp(row.timestamp, zone).strftime("%Y-%m-%d %H:%M"),
                             conversation_code(row.sender), mask(row.text, row.names), row.why,
                             row.understood_as, f"{row.confidence:.2f}", *guesses, ""])


def clinic_zone() -> ZoneInfo:
    sys.path.insert(0, str(ROOT))
    try:
        from actions.clinic_settings import load_settings

        return ZoneInfo(load_settings().time_zone)
    except Exception:  # the export still works with broken clinic settings, in UTC
        return ZoneInfo("UTC")


def main(argv=None, today: Optional[date] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--since", help="first day, e.g. 2026-11-01 (default: --days before --until)")
    parser.add_argument("--until", help="last day, included (default: today)")
    parser.add_argument("--days", type=int, default=7, help="how many days when --since is not given (7)")
    parser.add_argument("--below", type=float, default=0.7,
                        help="also export answers given with confidence under this (0.7)")
    parser.add_argument("--db", default=os.environ.get("TRACKER_STORE_URL"),
                        help="SQLAlchemy URL of the tracker store (default: endpoints.yml's)")
    parser.add_argument("--out", help="the CSV to write (default: var/review/unsure_<since>_<until>.csv)")
    parser.add_argument("--include-form-answers", action="store_true",
                        help="also export answers to the booking form's questions (masked)")
    args = parser.parse_args(argv)
    zone = clinic_zone()
    try:
        if args.days < 1:
            raise ExportError("--days should be 1 or more")
        if not 0 < args.below <= 1:
            raise ExportError("--below should be a confidence between 0 and 1, such as 0.7")
        start_day, end_day, start, end = period(args.since, args.until, args.days, zone,
                                                today or datetime.now(zone).date())
        url = args.db or tracker_store_url()
        conversations = read_events(url, start, end)
        rows, skipped = unsure_messages(conversations, start, end, args.below, args.include_form_answers)
    except ExportError as error:
        print(f"Nothing exported: {error}", file=sys.stderr)
        return 1
    out = Path(args.out) if args.out else ROOT / "var" / "review" / f"unsure_{start_day}_{end_day}.csv"
    write_csv(rows, out, zone)
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"{len(rows)} message(s) from {len(conversations)} conversation(s) between {start_day} and {end_day} "
          f"the assistant was unsure about, written to {shown}"
          + (f" ({skipped} answer(s) to booking-form questions left out)" if skipped else "") + ".")
    if rows:
        print("Open it in a spreadsheet, fill the 'label' column (docs/staff-guide.md says how), save it as CSV,\n"
              f"then: make merge-labelled FILE={shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
