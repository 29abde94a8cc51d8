"""Real PostgreSQL and Redis servers on loopback for the production profile's tests.

Both come from Debian's packages (`make test` installs them when it runs as root
with apt-get: postgresql, redis-server). Each test run starts its own servers on free
ports with throw-away data folders, with a password, and stops them afterwards; a
server not installed is a reason to skip, which `missing()` words.
"""
from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, Optional

from tests.running_assistant import free_port


def _postgres_bin() -> Optional[Path]:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def missing() -> List[str]:
    """What is not installed, in words (empty when both servers can start)."""
    reasons = []
    if _postgres_bin() is None:
        reasons.append("PostgreSQL (Debian package postgresql: no /usr/lib/postgresql/*/bin/initdb)")
    if shutil.which("redis-server") is None:
        reasons.append("Redis (Debian package redis-server: no redis-server on PATH)")
    return reasons


class PostgresServer:
    """initdb + postgres on 127.0.0.1:<free port>, password login (scram-sha-256).

    PostgreSQL refuses to run as root: as root the server runs as the `postgres`
    user the Debian package creates, in a folder it owns."""

    user = "assistant"
    database = "assistant"

    def __init__(self):
        self.bin = _postgres_bin()
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self.folder = Path(tempfile.mkdtemp(prefix="assistant-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            account = pwd.getpwnam("postgres")
            os.chown(self.folder, account.pw_uid, account.pw_gid)

    def _run(self, *command: str) -> None:
        if self._as_postgres:
            command = ("runuser", "-u", "postgres", "--", *command)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def start(self) -> "PostgresServer":
        password_file = self.folder / "password"
        password_file.write_text(self.password)
        if self._as_postgres:
            shutil.chown(password_file, "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "--auth=scram-sha-256",
                  f"--pwfile={password_file}", "--encoding=UTF8", "--locale=C.UTF-8")
        password_file.unlink()
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off", "start")
        connection = self.connect("postgres")
        connection.autocommit = True  # CREATE DATABASE can't run in a transaction
        try:
            connection.cursor().execute(f"CREATE DATABASE {self.database}")
        finally:
            connection.close()
        return self

    def connect(self, database: Optional[str] = None):
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                                dbname=database or self.database)

    def query(self, sql: str, *args) -> list:
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args)
                return cursor.fetchall()
        finally:
            connection.close()

    def environment(self) -> dict:
        """The variables endpoints.production.yml and the outbox read."""
        return {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(self.port), "POSTGRES_USER": self.user,
                "POSTGRES_PASSWORD": self.password, "POSTGRES_DB": self.database}

    def stop(self) -> None:
        if self.data.exists():
            try:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)


class RedisServer:
    """redis-server on 127.0.0.1:<free port> with a password, nothing saved to disk."""

    def __init__(self):
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> "RedisServer":
        import redis

        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--requirepass", self.password], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while True:
            try:
                self.client().ping()
                return self
            except redis.exceptions.ConnectionError:
                if self.process.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"redis-server did not start (exit status {self.process.poll()})")
                time.sleep(0.2)

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=5)

    def environment(self) -> dict:
        return {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.port), "REDIS_PASSWORD": self.password,
                "REDIS_DB": "1"}

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
