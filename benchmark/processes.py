"""Starting the servers and reading what they cost (time to first answer, memory)."""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from pathlib import Path
from subprocess import STDOUT, Popen
from typing import List, Optional

# Shared with the tests' running assistant.
from tests.running_assistant import free_port, stop, wait_until_up  # noqa: F401


def _children() -> dict:
    """parent pid -> child pids, for every process on the machine."""
    tree: dict = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    tree, total, todo = _children(), 0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
        todo.extend(tree.get(current, []))
    return round(total / 1024, 1)


class PeakMemory:
    """Samples a process tree's resident memory every half second while it runs."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._done = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._done.wait(0.5):
            self.peak = max(self.peak, rss_mib(self.pid))

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return self.peak


def start(command: List[str], log: Path, env: Optional[dict] = None, cwd: Optional[Path] = None) -> Popen:
    return Popen(command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=log.open("ab"), stderr=STDOUT)


def post(url: str, payload: dict, timeout: float = 30):
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def wait_for_first_answer(url: str, process: Popen, log: Path, started: float, limit: float = 300) -> float:
    """Seconds from `started` until the server gives its first non-empty answer."""
    while time.monotonic() - started < limit:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early, see {log}:\n{log.read_text()[-2000:]}")
        try:
            if post(url, {"sender": "benchmark-first-answer", "message": "hello"}, timeout=30):
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no answer after {limit:.0f}s, see {log}")
