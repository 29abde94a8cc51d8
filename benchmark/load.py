"""Replays the workload against a REST endpoint at a given concurrency.

`concurrency` visitors talk at once; each takes the next conversation from the
fixed mix and sends its messages one after another, waiting for every answer
(as a visitor does), until the fixed number of messages has been sent.
"""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import List

import aiohttp

TIMEOUT_SECONDS = 30


@dataclass
class LoadResult:
    concurrency: int
    latencies_ms: List[float] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)
    empty_replies: int = 0
    seconds: float = 0.0

    def summary(self) -> dict:
        ordered = sorted(self.latencies_ms)

        def percentile(p: float) -> float:
            if not ordered:
                return float("nan")
            rank = max(1, math.ceil(p / 100 * len(ordered)))  # nearest rank
            return round(ordered[rank - 1], 1)

        answered = len(ordered)
        return {"concurrency": self.concurrency, "messages": answered + len(self.errors),
                "answered": answered, "errors": len(self.errors), "empty_replies": self.empty_replies,
                "p50_ms": percentile(50), "p95_ms": percentile(95), "p99_ms": percentile(99),
                "max_ms": round(ordered[-1], 1) if ordered else float("nan"),
                "throughput_per_s": round(answered / self.seconds, 1) if self.seconds else 0.0,
                "seconds": round(self.seconds, 1), "error_examples": self.errors[:5]}


async def _visitor(session: aiohttp.ClientSession, url: str, queue: "asyncio.Queue", budget: List[int],
                   result: LoadResult, sender_prefix: str) -> None:
    while True:
        try:
            number, messages = queue.get_nowait()
        except asyncio.QueueEmpty:
            return
        sender = f"{sender_prefix}-{number}"
        for message in messages:
            if budget[0] <= 0:
                return
            budget[0] -= 1
            started = time.perf_counter()
            try:
                async with session.post(url, json={"sender": sender, "message": message}) as response:
                    body = await response.json(content_type=None)
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status != 200:
                        result.errors.append(f"HTTP {response.status}: {str(body)[:200]}")
                        continue
                    result.latencies_ms.append(elapsed)
                    if not body:
                        result.empty_replies += 1
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
                result.errors.append(f"{type(error).__name__}: {error}"[:200])


async def _replay(url: str, sessions: List[List[str]], concurrency: int, messages: int,
                  sender_prefix: str) -> LoadResult:
    queue: asyncio.Queue = asyncio.Queue()
    total, number = 0, 0
    while total < messages:  # the fixed mix, repeated as often as needed
        for conversation in sessions:
            queue.put_nowait((number, conversation))
            number += 1
            total += len(conversation)
    result = LoadResult(concurrency)
    budget = [messages]
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(_visitor(session, url, queue, budget, result, sender_prefix)
                               for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    return result


def replay(url: str, sessions: List[List[str]], concurrency: int, messages: int, sender_prefix: str) -> LoadResult:
    return asyncio.run(_replay(url, sessions, concurrency, messages, sender_prefix))
