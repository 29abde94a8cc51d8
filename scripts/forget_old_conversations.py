"""Deletes old conversations from the tracker store: every conversation whose last
message is older than clinic.yml's keep_conversations_days (or --days). A
conversation still going on is kept whole, its older messages included.

The outbox (actions/outbox.py: booking requests, staff notifications) gets the same
period: items stored before it are deleted once delivered; one never delivered is
listed here (kind, id, time, last error; never its contents) and named in a staff
notification ("outbox_expired", stored in the outbox and sent like any other) before
it is deleted. The outbox is where the assistant keeps it (OUTBOX_DB, or the profile's).

Visitors' messages hold health details and booking contacts: keep them no longer
than needed. Run it daily (cron, or a scheduled task). It is safe while the
assistant runs: it only touches conversations idle for days.

Usage: make forget-old [DAYS=90] [DB=postgresql://...] [DRY_RUN=1]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.export_unsure import ExportError, tracker_store_url  # noqa: E402

BATCH = 500  # conversations deleted per statement


class RetentionError(Exception):
    pass


def keep_days_from_settings() -> int:
    from actions.clinic_settings import load_settings

    return load_settings().keep_conversations_days


def forget(url: str, days: int, now: Optional[float] = None, dry_run: bool = False):
    """Deletes (or, dry_run, counts) conversations idle for more than `days`.
    Returns (conversations deleted, events deleted, conversations kept)."""
    from sqlalchemy import bindparam, create_engine, text

    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        return 0, 0, 0  # nothing stored yet
    cutoff = (now if now is not None else time.time()) - days * 86400
    engine = create_engine(url)
    try:
        with engine.begin() as connection:  # one transaction: all or nothing
            old = [row[0] for row in connection.execute(
                text("SELECT sender_id FROM events GROUP BY sender_id HAVING MAX(timestamp) < :cutoff"),
                {"cutoff": cutoff})]
            total = connection.execute(text("SELECT COUNT(DISTINCT sender_id) FROM events")).scalar() or 0
            events = 0
            delete = text("DELETE FROM events WHERE sender_id IN :senders").bindparams(
                bindparam("senders", expanding=True))
            count = text("SELECT COUNT(*) FROM events WHERE sender_id IN :senders").bindparams(
                bindparam("senders", expanding=True))
            for start in range(0, len(old), BATCH):
                senders = old[start:start + BATCH]
                if dry_run:
                    events += connection.execute(count, {"senders": senders}).scalar() or 0
                else:
                    events += connection.execute(delete, {"senders": senders}).rowcount or 0
            return len(old), events, total - len(old)
    except Exception as error:  # sqlalchemy raises many kinds; all mean "can't do it"
        raise RetentionError(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}") from None
    finally:
        engine.dispose()


def forget_outbox(days: int, now: Optional[float] = None, dry_run: bool = False) -> List[str]:
    """Deletes (or, dry_run, lists) outbox items stored more than `days` ago; returns what to print."""
    import sqlalchemy

    from actions.outbox import Outbox, OutboxConfigError, database_url, now_iso

    try:
        url = sqlalchemy.engine.make_url(database_url())
        if url.get_backend_name() == "sqlite" and not Path(url.database).exists():
            return [f"Outbox ({url.database}): nothing stored yet."]
        outbox = Outbox(url)
        delivered, undelivered, notice = outbox.expire(
            (now if now is not None else time.time()) - days * 86400, days, dry_run)
    except (OutboxConfigError, sqlalchemy.exc.SQLAlchemyError) as error:
        raise RetentionError(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}") from None
    verb = "would delete" if dry_run else "deleted"
    lines = [f"Outbox ({outbox.where}): {verb} {delivered} delivered item(s) (booking requests, "
             f"staff notifications) older than {days} days."]
    if undelivered:
        told = ("would be reported to staff and deleted" if dry_run else
                f"deleted after storing a staff notification (outbox_expired, id={notice['id']}) naming them")
        lines.append(f"{len(undelivered)} outbox item(s) older than {days} days were never delivered; {told}:")
        for row in undelivered:
            why = (f"{row['attempts']} attempt(s), last error: {row['last_error']}" if row["attempts"]
                   else "never tried (is a webhook set for it?)")
            lines.append(f"  {now_iso(row['created_at'])}  {row['kind']:20s} id={row['id']}  {why}")
    return lines


def main(argv=None, now: Optional[float] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, help="keep conversations with a message in this many days "
                                                 "(default: clinic.yml's keep_conversations_days)")
    parser.add_argument("--db", default=os.environ.get("TRACKER_STORE_URL"),
                        help="SQLAlchemy URL of the tracker store (default: endpoints.yml's)")
    parser.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    args = parser.parse_args(argv)
    try:
        days = args.days if args.days is not None else keep_days_from_settings()
        if days < 1:
            raise RetentionError("--days should be 1 or more")
        url = args.db or tracker_store_url()
        deleted, events, kept = forget(url, days, now, args.dry_run)
    except (RetentionError, ExportError, ValueError) as error:
        print(f"Nothing deleted: {error}", file=sys.stderr)
        return 1
    since = datetime.fromtimestamp((now or time.time()) - days * 86400, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    verb = "Would delete" if args.dry_run else "Deleted"
    print(f"{verb} {deleted} conversation(s) ({events} stored event(s)) with no message since {since} "
          f"(older than {days} days); {kept} kept.")
    try:
        print("\n".join(forget_outbox(days, now, args.dry_run)))
    except RetentionError as error:
        print(f"Nothing deleted from the outbox: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
