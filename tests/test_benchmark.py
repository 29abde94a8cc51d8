"""The benchmark's own parts (`make benchmark` itself takes about 20 minutes and is not
part of the test command): the fixed workload, the load replayer against a real
HTTP server, and the report that decides whether a target was met."""
from __future__ import annotations

import asyncio
import copy
import json
import sys
import threading
from collections import defaultdict

import pytest
from aiohttp import web

from benchmark import report, workload
from benchmark.load import replay
from benchmark.processes import free_port, start, stop, wait_until_up


def test_the_mix_holds_every_test_conversation_and_held_out_question_in_a_fixed_order():
    mix = workload.sessions()
    assert mix == workload.sessions()
    sent = [message for conversation in mix for message in conversation]
    expected = workload.held_out_messages() + [m for c in workload.test_conversations() for m in c]
    assert sorted(sent) == sorted(expected)
    kinds = " ".join(sent).lower()
    for sign in ("book", "numb", "sciatica", "massage"):  # booking, red flags and FAQ are all in it
        assert sign in kinds


class RecordingServer:
    """A REST webhook in a thread that records what arrives, answers after a short
    delay, and fails the messages it is told to fail."""

    def __init__(self, fail_on: str = ""):
        self.port, self.fail_on = free_port(), fail_on
        self.arrived = defaultdict(list)
        self.in_flight = defaultdict(int)
        self.overlaps = 0
        self.ready = threading.Event()

    async def webhook(self, request):
        body = await request.json()
        sender = body["sender"]
        self.in_flight[sender] += 1
        self.overlaps += self.in_flight[sender] > 1
        self.arrived[sender].append(body["message"])
        await asyncio.sleep(0.01)
        self.in_flight[sender] -= 1
        if self.fail_on and self.fail_on in body["message"]:
            return web.json_response({"error": "boom"}, status=500)
        return web.json_response([{"recipient_id": sender, "text": "ok"}])

    def _serve(self):
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", self.webhook)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self.ready.set()
        loop.run_forever()

    def __enter__(self):
        threading.Thread(target=self._serve, daemon=True).start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        return False

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/webhooks/rest/webhook"


def test_visitors_send_their_messages_in_order_and_wait_for_each_answer():
    conversations = [[f"c{i} m{j}" for j in range(4)] for i in range(10)]
    with RecordingServer() as server:
        result = replay(server.url, conversations, concurrency=8, messages=37, sender_prefix="t")
    summary = result.summary()
    assert summary["answered"] == 37 and summary["errors"] == 0
    assert sum(len(m) for m in server.arrived.values()) == 37
    assert server.overlaps == 0
    for messages in server.arrived.values():  # each visitor: one conversation, in its order
        conversation = messages[0].split()[0]
        assert messages == [f"{conversation} m{j}" for j in range(len(messages))]
    assert summary["p50_ms"] >= 10  # the server's 10 ms are in every latency
    assert summary["throughput_per_s"] > 0


def test_failed_answers_are_counted_as_errors_not_latencies():
    conversations = [["fine", "please fail", "fine again"]] * 5
    with RecordingServer(fail_on="fail") as server:
        summary = replay(server.url, conversations, concurrency=2, messages=15, sender_prefix="e").summary()
    assert summary["errors"] == 5 and summary["answered"] == 10
    assert "HTTP 500" in summary["error_examples"][0]


def test_an_unreachable_server_is_all_errors_not_a_crash():
    summary = replay(f"http://127.0.0.1:{free_port()}/webhooks/rest/webhook", [["hi"]], 1, 3, "x").summary()
    assert summary["errors"] == 3 and summary["answered"] == 0


def level(p50, p95, throughput, errors=0):
    return {"p50_ms": p50, "p95_ms": p95, "p99_ms": p95 * 1.2, "throughput_per_s": throughput, "errors": errors,
            "latencies_ms": None}


RESULTS = {
    "date": "today", "machine": {"cores": 2, "cpu": "x", "memory_gib": 24, "os": "linux", "python": "3.10",
                                 "rasa": "3.6.21", "rasa_sdk": "3.6.2", "tensorflow": "2.12", "spacy": "3.4",
                                 "sanic": "21.12", "load_average_at_start": [0, 0, 0]},
    "workload": {"levels": [1, 8], "messages_per_level": 10, "warm_up_messages": 2, "test_conversations": 1,
                 "messages_in_test_conversations": 2, "held_out_questions": 3, "questions_per_visit": 3},
    "training": {"project": {"training_s": 150, "training_peak_rss_mib": 1000, "model_size_mib": 40},
                 "stock": {"training_s": 600, "training_peak_rss_mib": 2000, "model_size_mib": 80}},
    "serving": {name: {"start_to_first_answer_s": first, "rss_after_warm_up_mib": 900,
                       "rss_after_load_mib": 950,
                       "levels": {"1": level(*c1), "8": level(*c8)},
                       "latencies_ms": {"1": [5.0, 6.0, 40.0], "8": [20.0, 30.0, 90.0]}}
                for name, first, c1, c8 in [("project", 20, (30, 50, 40), (100, 200, 60)),
                                            ("stock", 50, (70, 100, 15), (300, 500, 30)),
                                            ("floor", 2, (1, 2, 900), (5, 9, 3000))]},
    "scores": {name: {"intent_f1": f1, "answer_f1": f1, "red_flag_recall": recall, "false_alarm_rate": 0.0,
                      "held_out_questions": 3, "red_flags": 10, "red_flags_caught": int(recall * 10),
                      "false_alarms": 0, "harmless": 5}
               for name, f1, recall in [("project", 0.9, 1.0), ("stock", 0.88, 0.5)]},
}


def test_the_report_says_met_only_when_every_figure_meets_its_target():
    assert all(ok for ok, _ in report.targets(RESULTS))

    slower = copy.deepcopy(RESULTS)
    slower["serving"]["project"]["levels"]["1"]["p95_ms"] = 61  # 0.61× stock
    less_accurate = copy.deepcopy(RESULTS)
    less_accurate["scores"]["project"]["answer_f1"] = 0.87
    errors = copy.deepcopy(RESULTS)
    errors["serving"]["project"]["levels"]["8"]["errors"] = 1
    for changed, missed in [(slower, "p95 at concurrency 1"), (less_accurate, "answer F1"),
                            (errors, "throughput at concurrency 8")]:
        failing = [text for ok, text in report.targets(changed) if not ok]
        assert len(failing) == 1 and failing[0].startswith(missed), failing


def test_the_report_files_hold_the_ratios_and_a_picture(tmp_path):
    report.write(RESULTS, tmp_path)
    text = (tmp_path / "results.md").read_text()
    assert "| concurrency 1: p95 (ms) | 50 | 100 | 0.50× | 2 |" in text
    assert "| concurrency 8: throughput (msg/s) | 60 | 30 | 2.00× | 3000 |" in text
    assert json.loads((tmp_path / "results.json").read_text())["scores"]["stock"]["red_flag_recall"] == 0.5
    assert (tmp_path / "latency.png").read_bytes()[:4] == b"\x89PNG"
    assert "0.25×" in report.ratio_lines(RESULTS)  # training time 150 / 600


@pytest.mark.parametrize("concurrency", [1, 4])
def test_the_floor_server_answers_every_message(concurrency, tmp_path):
    port, log = free_port(), tmp_path / "floor.log"
    process = start([sys.executable, "-m", "benchmark.floor_server", str(port)], log)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/", process, log, 60)
        summary = replay(f"http://127.0.0.1:{port}/webhooks/rest/webhook", [["a", "b"]], concurrency, 20,
                         "f").summary()
        assert summary["answered"] == 20 and summary["errors"] == 0 and summary["empty_replies"] == 0
    finally:
        stop(process)
