"""The benchmark, in one run on one machine: this project's config.yml against Rasa's
stock configuration (the one `rasa init` writes) on the project's own data.

1. trains both (training time, peak memory, model size);
2. starts each behind the REST channel with the same action server and the same kind
   of tracker store (SQLite, a fresh file each): time from start to first answer,
   resident memory after warm-up and after the load;
3. replays the fixed mix (benchmark/workload.py) at each concurrency: latency
   p50/p95/p99, messages per second, errors;
4. scores both on the held-out questions (`rasa test nlu`: intent and answer F1) and
   on red-flag reports they were not tuned on (benchmark/red_flag_recall.py);
5. measures the floor: Sanic (Rasa's HTTP stack) answering a fixed reply;
6. writes results.md, results.json and latency.png and prints project/stock ratios.

Usage: make benchmark   (or: .venv/bin/python -m benchmark.run --help)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import yaml

from benchmark import report, workload
from benchmark.load import replay
from benchmark.processes import PeakMemory, free_port, rss_mib, start, stop, wait_for_first_answer, wait_until_up

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RASA = BIN / "rasa"
# Exactly the config.yml `rasa init` writes (read from the installed package's template).
STOCK_CONFIG = Path(metadata.distribution("rasa").locate_file("rasa/cli/initial_project/config.yml"))
WARM_UP_MESSAGES = 40
ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0"}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                          if line.startswith("MemTotal")))
    # Versions from the installed packages' metadata: importing TensorFlow here would
    # load the machine while it is being measured.
    version = {name: metadata.version(name) for name in ("rasa", "rasa-sdk", "tensorflow", "spacy", "sanic")}
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gib": round(memory_kib / 1024 ** 2, 1),
            "os": platform.platform(), "python": platform.python_version(), "rasa": version["rasa"],
            "rasa_sdk": version["rasa-sdk"], "tensorflow": version["tensorflow"], "spacy": version["spacy"],
            "sanic": version["sanic"], "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def train(name: str, config: Path, work: Path) -> dict:
    """Trains from scratch (--force, an empty cache) and returns time, memory and size."""
    log(f"training the {name} model with {config.relative_to(ROOT) if config.is_relative_to(ROOT) else config}")
    cache = work / f"cache-{name}"
    shutil.rmtree(cache, ignore_errors=True)
    output = work / "models"
    command = [str(RASA), "train", "--config", str(config), "--domain", "domain.yml", "--data", "data",
               "--out", str(output), "--fixed-model-name", name, "--force"]
    started = time.monotonic()
    process = start(command, work / f"train-{name}.log", {**ENV, "RASA_CACHE_DIRECTORY": str(cache)}, ROOT)
    memory = PeakMemory(process.pid)
    code = process.wait()
    seconds = time.monotonic() - started
    peak = memory.stop()
    shutil.rmtree(cache, ignore_errors=True)
    if code != 0:
        raise SystemExit(f"training {name} failed; see {work / f'train-{name}.log'}")
    model = output / f"{name}.tar.gz"
    log(f"  {seconds:.0f} s, model {model.stat().st_size / 2 ** 20:.1f} MiB")
    return {"model": str(model), "training_s": round(seconds, 1), "training_peak_rss_mib": peak,
            "model_size_mib": round(model.stat().st_size / 2 ** 20, 1)}


def measure_server(name: str, command, url: str, work: Path, sessions, levels, messages) -> dict:
    log(f"starting {name}")
    logfile = work / f"serve-{name}.log"
    started = time.monotonic()
    process = start(command, logfile, ENV, ROOT)
    try:
        first_answer = wait_for_first_answer(url, process, logfile, started)
        log(f"  first answer after {first_answer:.1f} s; warming up with {WARM_UP_MESSAGES} messages")
        replay(url, sessions, 1, WARM_UP_MESSAGES, f"{name}-warmup")
        result = {"start_to_first_answer_s": round(first_answer, 1),
                  "rss_after_warm_up_mib": rss_mib(process.pid), "levels": {}, "latencies_ms": {}}
        for concurrency in levels:
            outcome = replay(url, sessions, concurrency, messages, f"{name}-c{concurrency}")
            summary = outcome.summary()
            result["levels"][str(concurrency)] = summary
            result["latencies_ms"][str(concurrency)] = [round(x, 2) for x in outcome.latencies_ms]
            log(f"  c={concurrency}: p50 {summary['p50_ms']} ms, p95 {summary['p95_ms']} ms, "
                f"p99 {summary['p99_ms']} ms, {summary['throughput_per_s']} msg/s, {summary['errors']} errors")
        result["rss_after_load_mib"] = rss_mib(process.pid)
        return result
    finally:
        stop(process)


def serve_models(models: dict, work: Path, sessions, levels, messages) -> dict:
    """Each model behind the REST channel with the same action server and tracker store kind."""
    actions_port = free_port()
    actions = start([str(RASA.parent / "python"), "-m", "actions.server", "--port", str(actions_port)],
                    work / "actions.log",
                    {"OUTBOX_DB": str(work / "outbox.db")}, ROOT)
    served = {}
    try:
        wait_until_up(f"http://127.0.0.1:{actions_port}/health", actions, work / "actions.log")
        credentials = work / "credentials.yml"
        credentials.write_text(yaml.safe_dump({"rest": None}))
        for name, model in models.items():
            database = work / f"tracker-{name}.db"
            database.unlink(missing_ok=True)
            endpoints = work / f"endpoints-{name}.yml"
            endpoints.write_text(yaml.safe_dump({
                "action_endpoint": {"url": f"http://127.0.0.1:{actions_port}/webhook"},
                "tracker_store": {"type": "SQL", "dialect": "sqlite", "db": str(database)}}))
            port = free_port()
            command = [str(RASA), "run", "--model", model, "--endpoints", str(endpoints),
                       "--credentials", str(credentials), "--port", str(port)]
            served[name] = measure_server(name, command, f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                                          work, sessions, levels, messages)
        served["action_server_rss_mib"] = rss_mib(actions.pid)
    finally:
        stop(actions)
    return served


def serve_floor(work: Path, sessions, levels, messages) -> dict:
    port = free_port()
    return measure_server("floor", [sys.executable, "-m", "benchmark.floor_server", str(port)],
                          f"http://127.0.0.1:{port}/webhooks/rest/webhook", work, sessions, levels, messages)


def score(name: str, model: str, work: Path) -> dict:
    log(f"scoring the {name} model on the held-out questions and red-flag reports")
    out = work / f"nlu-{name}"
    shutil.rmtree(out, ignore_errors=True)
    with (work / f"score-{name}.log").open("ab") as logfile:
        subprocess.run([str(RASA), "test", "nlu", "--model", model, "--nlu", "tests/nlu", "--out", str(out)],
                       cwd=ROOT, env={**os.environ, **ENV}, stdout=logfile, stderr=subprocess.STDOUT, check=True)
        recall = subprocess.run([sys.executable, "-m", "benchmark.red_flag_recall", model], cwd=ROOT,
                                env={**os.environ, **ENV}, stdout=subprocess.PIPE, stderr=logfile, check=True)
    intents = json.loads((out / "intent_report.json").read_text())
    answers = json.loads((out / "response_selection_report.json").read_text())
    line = next(x for x in recall.stdout.decode().splitlines() if x.startswith("RESULT "))
    result = {"intent_f1": round(intents["weighted avg"]["f1-score"], 4),
              "answer_f1": round(answers["weighted avg"]["f1-score"], 4),
              "held_out_questions": int(intents["weighted avg"]["support"]),
              **json.loads(line[len("RESULT "):])}
    log(f"  intent F1 {result['intent_f1']}, answer F1 {result['answer_f1']}, "
        f"red-flag recall {result['red_flag_recall']}")
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=600, help="messages sent at each concurrency (600)")
    parser.add_argument("--levels", default="1,8,32", help="concurrency levels (1,8,32)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmark",
                        help="where results.md, results.json and latency.png go (docs/benchmark)")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "benchmark",
                        help="models, logs and databases of the run (var/benchmark, not committed)")
    parser.add_argument("--reuse", default="", metavar="NAMES",
                        help="project,stock: skip training these and use the previous run's models "
                             "(for trying a change; the results say so)")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)

    results = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(),
               "workload": {**workload.describe(), "messages_per_level": args.messages, "levels": levels,
                            "warm_up_messages": WARM_UP_MESSAGES}}
    log(f"machine: {results['machine']['cores']} cores, {results['machine']['memory_gib']} GiB, "
        f"{results['machine']['cpu']}")
    stock_config = args.work / "stock-config.yml"
    shutil.copyfile(STOCK_CONFIG, stock_config)  # exactly the file `rasa init` writes
    configs = {"project": ROOT / "config.yml", "stock": stock_config}
    trained = {}
    for name, config in configs.items():
        model = args.work / "models" / f"{name}.tar.gz"
        if name in args.reuse.split(",") and model.exists():
            previous = json.loads((args.out / "results.json").read_text())["training"][name]
            trained[name] = {**previous, "reused": True}
        else:
            trained[name] = train(name, config, args.work)
    results["training"] = trained

    sessions = workload.sessions()
    models = {name: info["model"] for name, info in trained.items()}
    results["serving"] = serve_models(models, args.work, sessions, levels, args.messages)
    results["serving"]["floor"] = serve_floor(args.work, sessions, levels, args.messages)
    results["scores"] = {name: score(name, model, args.work) for name, model in models.items()}

    report.write(results, args.out)
    print()
    print(report.ratio_lines(results))
    print()
    print(report.target_lines(results))
    log(f"results in {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
