"""The benchmark's results: results.json (every figure and every latency), results.md
(the tables, the ratios project/stock and the targets) and latency.png."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Tuple

# (label, where in the results, lower is better?)
FIGURES: List[Tuple[str, Tuple[str, ...], bool]] = [
    ("training time (s)", ("training", "{m}", "training_s"), True),
    ("training peak memory (MiB)", ("training", "{m}", "training_peak_rss_mib"), True),
    ("model size (MiB)", ("training", "{m}", "model_size_mib"), True),
    ("start to first answer (s)", ("serving", "{m}", "start_to_first_answer_s"), True),
    ("resident memory after warm-up (MiB)", ("serving", "{m}", "rss_after_warm_up_mib"), True),
    ("resident memory after the load (MiB)", ("serving", "{m}", "rss_after_load_mib"), True),
]
LEVEL_FIGURES = [("p50 (ms)", "p50_ms", True), ("p95 (ms)", "p95_ms", True), ("p99 (ms)", "p99_ms", True),
                 ("throughput (msg/s)", "throughput_per_s", False), ("errors", "errors", True)]
SCORES = [("intent F1, held-out", "intent_f1", False), ("answer F1, held-out", "answer_f1", False),
          ("red-flag recall, unseen phrasings", "red_flag_recall", False),
          ("harmless messages taken for a red flag", "false_alarm_rate", True)]


def _get(results: dict, path, model: str):
    value = results
    for key in path:
        value = value.get(key.format(m=model), {}) if isinstance(value, dict) else {}
    return value if value != {} else None


def rows(results: dict) -> List[Tuple[str, object, object, object]]:
    """(figure, project, stock, floor) for every figure, floor None where it has none."""
    table = []
    for label, path, _ in FIGURES:
        floor = _get(results, path, "floor") if path[0] == "serving" else None
        table.append((label, _get(results, path, "project"), _get(results, path, "stock"), floor))
    for level in results["workload"]["levels"]:
        for label, key, _ in LEVEL_FIGURES:
            values = [results["serving"][m]["levels"][str(level)][key] for m in ("project", "stock", "floor")]
            table.append((f"concurrency {level}: {label}", *values))
    for label, key, _ in SCORES:
        table.append((label, results["scores"]["project"][key], results["scores"]["stock"][key], None))
    return table


def ratio(project, stock) -> str:
    if project is None or stock is None:
        return "-"
    if stock == 0:
        return "=" if project == 0 else "stock 0"
    return f"{project / stock:.2f}×"


def ratio_lines(results: dict) -> str:
    width = max(len(r[0]) for r in rows(results))
    lines = [f"{'figure'.ljust(width)}  {'project':>9}  {'stock':>9}  project/stock"]
    for label, project, stock, _ in rows(results):
        lines.append(f"{label.ljust(width)}  {project!s:>9}  {stock!s:>9}  {ratio(project, stock)}")
    return "\n".join(lines)


def targets(results: dict) -> List[Tuple[bool, str]]:
    project, stock = results["scores"]["project"], results["scores"]["stock"]
    serve_p, serve_s = results["serving"]["project"], results["serving"]["stock"]
    c1p, c1s = serve_p["levels"].get("1", {}), serve_s["levels"].get("1", {})
    c8p, c8s = serve_p["levels"].get("8", {}), serve_s["levels"].get("8", {})
    checks = []
    for label, key, _ in SCORES[:3]:
        checks.append((project[key] >= stock[key], f"{label}: {project[key]} vs stock {stock[key]} (at least stock's)"))
    if c1p and c1s:
        checks.append((c1p["p95_ms"] <= 0.6 * c1s["p95_ms"] and c1p["p95_ms"] < 60,
                       f"p95 at concurrency 1: {c1p['p95_ms']} ms = {ratio(c1p['p95_ms'], c1s['p95_ms'])} "
                       f"stock (at most 0.6×, and under 60 ms)"))
    if c8p and c8s:
        checks.append((c8p["throughput_per_s"] >= 1.5 * c8s["throughput_per_s"] and c8p["errors"] == 0,
                       f"throughput at concurrency 8: {c8p['throughput_per_s']} msg/s = "
                       f"{ratio(c8p['throughput_per_s'], c8s['throughput_per_s'])} stock, {c8p['errors']} errors "
                       f"(at least 1.5×, no errors)"))
    first = serve_p["start_to_first_answer_s"]
    checks.append((first < 30, f"start to first answer: {first} s (under 30 s)"))
    training = results["training"]["project"]["training_s"]
    checks.append((training < 180, f"training: {training} s on {results['machine']['cores']} cores (under 180 s)"))
    return checks


def target_lines(results: dict) -> str:
    return "\n".join(f"{'MET   ' if ok else 'MISSED'} {text}" for ok, text in targets(results))


def markdown(results: dict) -> str:
    m, w = results["machine"], results["workload"]
    out = [
        "# Benchmark: this project's configuration against Rasa's stock one",
        "",
        f"One run of `make benchmark` on {results['date']}. Both models are trained on the same data "
        "(`data/`, `domain.yml`); *stock* is the `config.yml` that `rasa init` writes (`recipe: default.v1`, "
        "pipeline and policies left to Rasa's defaults). Each is served by `rasa run` behind the REST channel "
        "with the same action server and an SQLite tracker store (a fresh file each). *Floor* is Sanic, "
        "Rasa's HTTP stack, answering every message with a fixed reply: no server can do better on this machine.",
        "",
        f"**Machine:** {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB memory, {m['os']}; "
        f"Python {m['python']}, Rasa {m['rasa']}, rasa-sdk {m['rasa_sdk']}, TensorFlow {m['tensorflow']}, "
        f"spaCy {m['spacy']}, Sanic {m['sanic']}. Load average at the start: {m['load_average_at_start']}. "
        "The machine is shared, so single figures are noisy; the ratios are what count.",
        "",
        f"**Workload:** {w['messages_per_level']} messages at each concurrency ({', '.join(map(str, w['levels']))}) "
        f"after {w['warm_up_messages']} warm-up messages, from a fixed, seeded mix of the "
        f"{w['test_conversations']} test conversations ({w['messages_in_test_conversations']} messages: FAQ, "
        f"fallback, booking form, red flags) and the {w['held_out_questions']} held-out questions in visits of "
        f"{w['questions_per_visit']}. Each simulated visitor sends a conversation's messages in order and waits "
        "for each answer. Latency is measured at the client, from request to full reply.",
        "",
        "| figure | project | stock | project / stock | floor |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, project, stock, floor in rows(results):
        out.append(f"| {label} | {project} | {stock} | {ratio(project, stock)} | "
                   f"{'' if floor is None else floor} |")
    if any(results["training"][n].get("reused") for n in ("project", "stock")):
        out += ["", "*Training figures are from an earlier run (`--reuse-models`).*"]
    sp, ss = results["scores"]["project"], results["scores"]["stock"]
    out += [
        "",
        f"Scores: `rasa test nlu` on the {sp['held_out_questions']} held-out questions (`tests/nlu/`, weighted F1; "
        "the answer F1 is the response selector's, over the FAQ questions); red-flag recall on the "
        f"{sp['red_flags']} red-flag reports of `tests/red_flags/final.yml` and `unseen.yml` "
        f"(project {sp['red_flags_caught']}, stock {ss['red_flags_caught']} understood as a red flag) and false "
        f"alarms on their {sp['harmless']} harmless messages "
        f"(project {sp['false_alarms']}, stock {ss['false_alarms']}).",
        "",
        f"Action server resident memory (shared by both): {results['serving'].get('action_server_rss_mib')} MiB.",
        "",
        "## Targets",
        "",
    ]
    out += [f"- {'met' if ok else '**missed**'}: {text}" for ok, text in targets(results)]
    out += ["", "![latency distribution](latency.png)", ""]
    return "\n".join(out)


def picture(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = results["workload"]["levels"]
    figure, grid = plt.subplots(1, len(levels), figsize=(5 * len(levels), 4), sharey=True, squeeze=False)
    axes = grid[0]
    colours = {"project": "tab:blue", "stock": "tab:orange", "floor": "tab:grey"}
    for axis, level in zip(axes, levels):
        for name, colour in colours.items():
            values = sorted(results["serving"][name]["latencies_ms"][str(level)])
            if values:
                share = [(i + 1) / len(values) for i in range(len(values))]
                axis.step(values, share, where="post", color=colour, label=name)
        axis.set_xscale("log")
        axis.set_title(f"concurrency {level}")
        axis.set_xlabel("latency per message (ms, log scale)")
        axis.axhline(0.95, color="black", linewidth=0.5, linestyle=":")
        axis.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("share of messages answered within")
    axes[0].legend(loc="lower right")
    figure.suptitle("Latency distribution (dotted line: p95)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(results: dict, out: Path) -> None:
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.md").write_text(markdown(results))
    picture(results, out / "latency.png")
