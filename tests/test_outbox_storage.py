"""Where the outbox keeps booking requests and staff notifications: SQLite by default, the
production profile's PostgreSQL (shared by every action server) with ASSISTANT_PROFILE=production."""
from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

from actions import outbox as outbox_module
from actions.outbox import Destination, Outbox, OutboxConfigError, SendResult, database_url
from tests import services
from tests.running_assistant import ROOT

PRODUCTION = {"ASSISTANT_PROFILE": "production", "POSTGRES_HOST": "db.internal", "POSTGRES_PORT": "5432",
              "POSTGRES_USER": "assistant", "POSTGRES_PASSWORD": "p@ss/word", "POSTGRES_DB": "clinic"}


def test_by_default_the_outbox_is_the_sqlite_file_in_var():
    assert database_url({}) == f"sqlite:///{outbox_module.DEFAULT_DB}"


def test_the_production_profile_keeps_it_in_the_tracker_stores_postgresql():
    url = database_url(PRODUCTION)
    assert (url.drivername, url.host, url.port, url.database, url.username) == (
        "postgresql", "db.internal", 5432, "clinic", "assistant")
    assert url.password == "p@ss/word"  # any character, not parsed out of a URL
    assert "p@ss" not in url.render_as_string(hide_password=True)


def test_outbox_db_overrides_the_profile(tmp_path):
    assert database_url({**PRODUCTION, "OUTBOX_DB": str(tmp_path / "o.db")}) == f"sqlite:///{tmp_path / 'o.db'}"
    assert database_url({**PRODUCTION, "OUTBOX_DB": "postgresql://x@y/z"}) == "postgresql://x@y/z"


def test_a_missing_database_setting_is_named():
    settings = {k: v for k, v in PRODUCTION.items() if k not in ("POSTGRES_PASSWORD", "POSTGRES_DB")}
    with pytest.raises(OutboxConfigError, match="POSTGRES_PASSWORD, POSTGRES_DB"):
        database_url(settings)


def test_make_pending_says_what_is_missing_instead_of_a_traceback(monkeypatch, capsys):
    monkeypatch.delenv("OUTBOX_DB", raising=False)
    monkeypatch.setenv("ASSISTANT_PROFILE", "production")
    for name in PRODUCTION:
        if name.startswith("POSTGRES_"):
            monkeypatch.delenv(name, raising=False)
    assert outbox_module.main(["outbox", "list"]) == 1
    assert "set POSTGRES_HOST" in capsys.readouterr().err


@pytest.fixture(scope="module")
def postgres():
    if services.missing():
        pytest.skip("needs " + " and ".join(services.missing()))
    server = services.PostgresServer().start()
    yield server
    server.stop()


def test_two_action_servers_share_one_outbox_in_postgresql_and_send_each_item_once(postgres, monkeypatch):
    monkeypatch.setattr(outbox_module, "_engines", {})  # each "server" its own connection pool
    url = database_url({"ASSISTANT_PROFILE": "production", **postgres.environment()})
    first = Outbox(url)
    monkeypatch.setattr(outbox_module, "_engines", {})
    second = Outbox(url)
    assert first.engine is not second.engine

    # The same booking submitted through both servers is one request.
    stored = first.add("booking_request", {"visitor": {"name": "Ana"}}, key="booking-1")
    assert second.add("booking_request", {"visitor": {"name": "Ana again"}}, key="booking-1") == stored
    second.add("handover", {"reason": "asked for staff"})
    assert [row["kind"] for row in first.pending()] == ["booking_request", "handover"]

    sent = []

    async def slow_send(destination, payload):
        sent.append(payload["id"])
        await asyncio.sleep(0.2)
        return SendResult(ok=True, status=200, body="ok")

    async def both_retry_loops_at_once():
        where = lambda kind: Destination("http://127.0.0.1:9/unused", "secret")  # noqa: E731
        return await asyncio.gather(first.deliver_due(where, send=slow_send),
                                    second.deliver_due(where, send=slow_send))

    assert sum(asyncio.run(both_retry_loops_at_once())) == 2
    assert len(sent) == 2 and len(set(sent)) == 2 and "booking-1" in sent, f"sent: {sent}"
    assert first.pending() == [] and second.pending() == []
    row = postgres.query("SELECT delivered_at, attempts FROM outbox WHERE id = 'booking-1'")[0]
    assert row[0] is not None and row[1] == 1


# --- make run's profile switch (scripts/run.sh), before anything starts -----------------------------

def run_sh(env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "REDIS_", "ASSISTANT_"))}
    return subprocess.run(["bash", str(ROOT / "scripts" / "run.sh")], env={**clean, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_make_run_production_names_every_missing_setting_and_starts_nothing():
    result = run_sh({"ASSISTANT_PROFILE": "production", "POSTGRES_HOST": "127.0.0.1", "REDIS_PASSWORD": ""})
    assert result.returncode == 1
    for name in ("POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "REDIS_HOST", "REDIS_PORT",
                 "REDIS_DB"):
        assert name in result.stderr
    assert "POSTGRES_HOST" not in result.stderr and "REDIS_PASSWORD" not in result.stderr  # given (empty is valid)
    assert "Starting" not in result.stdout


def test_make_run_refuses_an_unknown_profile():
    result = run_sh({"ASSISTANT_PROFILE": "prod"})
    assert result.returncode == 1 and "embedded or production" in result.stderr
