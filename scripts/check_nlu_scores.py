"""Prints the held-out NLU scores and fails below the minimums.

Reads the reports `rasa test nlu` wrote: intent classification (every intent)
and response selection (which FAQ answer was chosen).
Usage: check_nlu_scores.py RESULTS_DIR --min-intent-f1 X --min-response-f1 Y
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def weighted_f1(report_file: Path) -> float:
    report = json.loads(report_file.read_text())
    return float(report["weighted avg"]["f1-score"])


def worst(report_file: Path, count: int = 5):
    report = json.loads(report_file.read_text())
    rows = [(k, v) for k, v in report.items() if isinstance(v, dict) and "support" in v and "avg" not in k and k != "accuracy"]
    rows.sort(key=lambda kv: kv[1].get("f1-score", 0.0))
    return [(k, v.get("f1-score", 0.0), v.get("confused_with", {})) for k, v in rows[:count]]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("--min-intent-f1", type=float, required=True)
    parser.add_argument("--min-response-f1", type=float, required=True)
    args = parser.parse_args()

    ok = True
    for name, file, minimum in (
        ("Intent", args.results / "intent_report.json", args.min_intent_f1),
        ("Response selection", args.results / "response_selection_report.json", args.min_response_f1),
    ):
        if not file.exists():
            print(f"{name}: no report at {file}", file=sys.stderr)
            ok = False
            continue
        score = weighted_f1(file)
        verdict = "ok" if score >= minimum else "TOO LOW"
        print(f"{name} F1 on held-out examples: {score:.3f} (minimum {minimum:.2f}) {verdict}")
        for label, f1, confused in worst(file):
            print(f"    weakest: {label:45s} F1 {f1:.2f}  confused with {confused}")
        ok = ok and score >= minimum
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
