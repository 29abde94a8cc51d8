"""The production profile on one machine: real PostgreSQL and Redis on loopback, one
action server, and several Rasa servers sharing them, each started as deploy/'s bot
container starts it (endpoints.production.yml itself, its ${VARIABLES} from the
environment; ASSISTANT_PROFILE=production for the action server's outbox)."""
from __future__ import annotations

import json
from pathlib import Path
from subprocess import STDOUT, Popen
from typing import Dict, List, Tuple

from tests.running_assistant import (API_TOKEN, MODEL, RASA, ROOT, free_port, prepare, rest_conversation, say, stop,
                                     wait_until_up)
from tests.services import PostgresServer, RedisServer

PRODUCTION_ENDPOINTS = ROOT / "endpoints.production.yml"


class Cluster:
    def __init__(self, workdir: Path, receiver, servers: int = 2, endpoints: Path = PRODUCTION_ENDPOINTS):
        if not MODEL.exists():
            raise RuntimeError(f"No trained model at {MODEL}; `make test` trains it first.")
        self.workdir, self.endpoints = workdir, endpoints
        self.postgres = PostgresServer()
        self.redis = RedisServer()
        self.processes: Dict[str, Popen] = {}
        try:
            self.postgres.start()
            self.redis.start()
            self.actions_port = free_port()
            self.ports = [free_port() for _ in range(servers)]
            production = {"ASSISTANT_PROFILE": "production",
                          "ACTION_SERVER_URL": f"http://127.0.0.1:{self.actions_port}/webhook",
                          **self.postgres.environment(), **self.redis.environment()}
            self.clinic, self.env, self.credentials, self.origins = prepare(
                workdir, (free_port(), free_port()), receiver.staff_url(), receiver.booking_url(), production)
            self.env.pop("OUTBOX_DB", None)  # the outbox follows the profile: PostgreSQL
            self._start("actions", [str(RASA.parent / "python"), "-m", "actions.server",
                                    "--port", str(self.actions_port)], f"http://127.0.0.1:{self.actions_port}/health")
            # Both Rasa servers load at once, as replicas would.
            for index, port in enumerate(self.ports):
                self._start(f"rasa-{index}", self._rasa_command(port), None)
            for index, port in enumerate(self.ports):
                self._wait(f"rasa-{index}", f"http://localhost:{port}/")
        except BaseException:
            self.close()
            raise

    def _rasa_command(self, port: int) -> List[str]:
        return [str(RASA), "run", "--model", str(MODEL), "--endpoints", str(self.endpoints),
                "--credentials", str(self.credentials), "--port", str(port),
                "--enable-api", f"--auth-token={API_TOKEN}"]

    def _start(self, name: str, command: List[str], health_url) -> None:
        log = self.workdir / f"{name}.log"
        self.processes[name] = Popen(command, cwd=ROOT, env=self.env, stdout=log.open("ab"), stderr=STDOUT)
        if health_url:
            self._wait(name, health_url)

    def _wait(self, name: str, url: str) -> None:
        wait_until_up(url, self.processes[name], self.workdir / f"{name}.log")

    def say(self, server: int, sender: str, message: str) -> List[dict]:
        return say(self.ports[server], sender, message)

    def stop_server(self, server: int) -> None:
        stop(self.processes[f"rasa-{server}"])

    def is_running(self, server: int) -> bool:
        return self.processes[f"rasa-{server}"].poll() is None

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def events(self, sender: str) -> List[Tuple[str, dict]]:
        """The REST sender's conversation as stored in PostgreSQL: (event type, event) in order."""
        rows = self.postgres.query("SELECT type_name, data FROM events WHERE sender_id = %s ORDER BY id",
                                   rest_conversation(sender))
        return [(kind, json.loads(data)) for kind, data in rows]

    def close(self) -> None:
        for process in reversed(list(self.processes.values())):
            stop(process)
        self.redis.stop()
        self.postgres.stop()
