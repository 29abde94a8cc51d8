"""Checks, before Rasa starts, that the tracker store can be written.

    python scripts/check_tracker_store.py endpoints.yml

Rasa 3.6 stops with a long traceback when it can't open an SQL tracker store, and
once running it keeps conversations in memory (lost on a restart) when a write
fails. This check says plainly what is wrong (the database's directory missing or
not writable, the disk full, the server refusing the login) before anything starts:
it writes an event inside a transaction and rolls it back, and for SQLite warns when
less than LOW_DISK_MB is free. Exit status 1 with the reason; 0 when writable.
An SQLite store is created readable by its owner only (it holds visitors' names, phones
and health details), and an existing one readable by others is made so.
"""
from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOW_DISK_MB = 200


def check(endpoints: Path) -> str:
    """What was checked; raises RuntimeError with the reason when the store can't be written."""
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    # Rasa's and SQLAlchemy's deprecation notices are not for staff (Rasa resets the warning
    # filters while it imports, so they are silenced where they are shown).
    warnings.simplefilter("ignore")
    warnings.showwarning = lambda *args, **kwargs: None
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.exceptions import RasaException
    from rasa.utils.endpoints import read_endpoint_config

    from actions.outbox import owner_only
    from channels.guard import describe_error

    try:
        config = read_endpoint_config(str(endpoints), "tracker_store")
    except RasaException as error:  # a ${VARIABLE} the endpoints file needs is not set
        raise RuntimeError(f"{endpoints}: {error}") from None
    if config is None or (config.type or "").lower() != "sql":
        return f"tracker store: {getattr(config, 'type', None) or 'in memory'} (not checked here)"
    kwargs = dict(config.kwargs)
    where = kwargs.get("db", "rasa.db")
    sqlite = kwargs.get("dialect", "sqlite") == "sqlite"
    if sqlite:
        folder = (ROOT / where).parent  # an absolute path stays as it is
        folder.mkdir(parents=True, exist_ok=True)
        free_mb = shutil.disk_usage(folder).free / 2**20
        if free_mb < LOW_DISK_MB:
            print(f"WARNING: only {free_mb:.0f} MB free for the tracker store {where}", file=sys.stderr)
    try:
        if sqlite:
            owner_only(ROOT / where)  # before Rasa or SQLite creates it with the umask's mode
        store = SQLTrackerStore(host=config.url, **kwargs)
        with store.engine.connect() as connection:
            transaction = connection.begin()
            connection.execute(store.SQLEvent.__table__.insert().values(
                sender_id="__write_check__", type_name="write_check", timestamp=0, data="{}"))
            transaction.rollback()
    except Exception as error:
        raise RuntimeError(f"The tracker store {where} can't be written ({describe_error(error)}). "
                           "Check the disk space, the file's and its folder's permissions, or the database "
                           "server's address and login in the endpoints file.") from None
    return f"tracker store: {kwargs.get('dialect', 'sqlite')} {where}, writable"


def main(argv) -> int:
    endpoints = Path(argv[1]) if len(argv) > 1 else ROOT / "endpoints.yml"
    try:
        print(check(endpoints))
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
