"""`make report`: how well the assistant understands questions it has not seen, after a change.

Reads what `rasa test nlu` wrote in results/nlu (the held-out questions in
tests/nlu/) and writes results/quality/:

  report.md      every topic's score (F1: 1.00 = always right), the weakest
                 topics, the pairs of topics most often mixed up with example
                 questions, and the comparison with the committed baseline
  confusion.png  a picture of which topics are mistaken for which
  scores.json    the figures, in the baseline's format

The baseline (tests/quality_baseline.json) holds the scores of the last
committed model. A drop in the overall score of more than --max-drop is shown as
WORSE, and with --fail-if-worse (as `make test` runs it) fails the command, so
a change that makes the assistant worse is seen before it ships. Training is not
bit-for-bit repeatable: scores move by about 0.02 between identical runs.
`make baseline` saves the current scores as the new baseline (commit it with
the change that earned them).

Usage: python scripts/quality_report.py [RESULTS_DIR] [--baseline FILE] [--out DIR]
                                        [--fail-if-worse] [--max-drop 0.04] [--save-baseline]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "tests" / "quality_baseline.json"
ANY_FAQ = {"faq": "faq (any FAQ)"}  # intent errors name the FAQ family, not the question
TOPIC_DROP = 0.2  # a topic whose F1 falls this much is listed, even if the total holds


def topics_of(report: dict) -> Dict[str, dict]:
    return {name: row for name, row in report.items()
            if isinstance(row, dict) and "support" in row and "avg" not in name and name not in ("accuracy", "faq")}


def load_scores(results: Path) -> dict:
    """Overall and per-topic F1 from Rasa's reports: FAQ topics by their answer."""
    missing = [name for name in ("intent_report.json", "response_selection_report.json")
               if not (results / name).exists()]
    if missing:
        raise FileNotFoundError(f"no {', '.join(missing)} in {results}: run `make report` (it runs the NLU test "
                                "first)")
    intents = json.loads((results / "intent_report.json").read_text())
    answers = json.loads((results / "response_selection_report.json").read_text())
    topics = {**topics_of(intents), **topics_of(answers)}
    return {
        "intent_f1": round(intents["weighted avg"]["f1-score"], 4),
        "answer_f1": round(answers["weighted avg"]["f1-score"], 4),
        "questions": int(intents["weighted avg"]["support"]),
        "topics": {name: {"f1": round(row["f1-score"], 4), "questions": int(row["support"])}
                   for name, row in sorted(topics.items())},
    }


def mix_ups(results: Path) -> Dict[Tuple[str, str], List[str]]:
    """(asked, taken for) -> the held-out questions answered that way, from Rasa's error files."""
    found: Dict[Tuple[str, str], List[str]] = defaultdict(list)
    for name, key_true, key_pred in (("intent_errors.json", "intent", "intent_prediction"),
                                     ("response_selection_errors.json", "intent_response_key_target",
                                      "intent_response_key_prediction")):
        path = results / name
        for error in json.loads(path.read_text()) if path.exists() else []:
            true, predicted = error.get(key_true), (error.get(key_pred) or {}).get("name")
            if predicted:
                found[(ANY_FAQ.get(true, true), ANY_FAQ.get(predicted, predicted))].append(error["text"])
    return found


def draw_confusion(pairs: Counter, out: Path, most: int = 16) -> Optional[Path]:
    """A matrix of the topics involved in the most mix-ups (Rasa's own pictures show all of them)."""
    if not pairs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weight: Counter = Counter()
    for (asked, taken), n in pairs.items():
        weight[asked] += n
        weight[taken] += n
    labels = [name for name, _ in weight.most_common(most)]
    index = {name: i for i, name in enumerate(labels)}
    grid = [[0] * len(labels) for _ in labels]
    for (asked, taken), n in pairs.items():
        if asked in index and taken in index:
            grid[index[asked]][index[taken]] += n
    size = max(6, 0.45 * len(labels) + 3)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(grid, cmap="Reds")
    axes.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_xlabel("taken for")
    axes.set_ylabel("asked about")
    axes.set_title("Held-out questions answered with the wrong topic")
    for i, row in enumerate(grid):
        for j, n in enumerate(row):
            if n:
                axes.text(j, i, str(n), ha="center", va="center", fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def compare(scores: dict, baseline: Optional[dict], max_drop: float) -> Tuple[List[str], bool]:
    if not baseline:
        return ["No baseline yet (tests/quality_baseline.json): `make baseline` saves one."], False
    lines, worse = [], False
    for key, label in (("intent_f1", "Understanding what was asked (intent F1)"),
                       ("answer_f1", "Choosing the right FAQ answer (answer F1)")):
        now, before = scores[key], baseline.get(key)
        if before is None:
            continue
        change = now - before
        verdict = "WORSE" if change < -max_drop else "better" if change > max_drop else "about the same"
        worse = worse or verdict == "WORSE"
        lines.append(f"{label}: {now:.3f}, baseline {before:.3f} ({change:+.3f}): {verdict}")
    dropped = []
    for name, row in scores["topics"].items():
        old = (baseline.get("topics") or {}).get(name)
        if old and row["f1"] < old["f1"] - TOPIC_DROP:
            dropped.append(f"  {name}: {row['f1']:.2f} (was {old['f1']:.2f})")
    new = sorted(set(scores["topics"]) - set(baseline.get("topics") or {}))
    if dropped:
        lines.append("Topics that got clearly worse (look at their examples):")
        lines += dropped
    if new:
        lines.append(f"New topics since the baseline: {', '.join(new)}")
    return lines, worse


def write_report(scores: dict, pairs: Counter, questions: Dict[Tuple[str, str], List[str]], out: Path,
                 comparison: List[str], picture: Optional[Path]) -> Path:
    lines = ["# How well the assistant understands new questions", "",
             f"Measured on {scores['questions']} held-out questions (tests/nlu/), which the assistant never "
             "learned from. F1 runs from 0 (always wrong) to 1 (always right).", "",
             f"- Understanding what was asked (intent F1): **{scores['intent_f1']:.3f}**",
             f"- Choosing the right FAQ answer (answer F1): **{scores['answer_f1']:.3f}**", "",
             "## Compared with the baseline", ""]
    lines += [f"- {line}" if not line.startswith("  ") else f"  - {line.strip()}" for line in comparison]
    lines += ["", "## Most often mixed up", "",
              "| asked about | taken for | times | for example |", "|---|---|---|---|"]
    for (asked, taken), n in pairs.most_common(10):
        sample = "; ".join(f"\"{t}\"" for t in questions[(asked, taken)][:2])
        lines.append(f"| {asked} | {taken} | {n} | {sample} |")
    if picture:
        lines += ["", f"![Topics mixed up]({picture.name})", "",
                  "Rasa's full matrices: results/nlu/intent_confusion_matrix.png and "
                  "results/nlu/response_selection_confusion_matrix.png."]
    lines += ["", "## Every topic, weakest first", "", "| topic | F1 | held-out questions |", "|---|---|---|"]
    for name, row in sorted(scores["topics"].items(), key=lambda kv: (kv[1]["f1"], kv[0])):
        lines.append(f"| {name} | {row['f1']:.2f} | {row['questions']} |")
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="?", type=Path, default=ROOT / "results" / "nlu")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "quality")
    parser.add_argument("--max-drop", type=float, default=0.04)
    parser.add_argument("--fail-if-worse", action="store_true")
    parser.add_argument("--save-baseline", action="store_true", help="store these scores as the new baseline")
    args = parser.parse_args(argv)
    try:
        scores = load_scores(args.results)
    except FileNotFoundError as error:
        print(f"No report: {error}", file=sys.stderr)
        return 1
    if args.save_baseline:
        args.baseline.write_text(json.dumps({"measured": date.today().isoformat(), **scores}, indent=1) + "\n")
        print(f"Saved the scores as the baseline in {args.baseline}: intent F1 {scores['intent_f1']:.3f}, "
              f"answer F1 {scores['answer_f1']:.3f}. Commit it with your change.")
        return 0
    baseline = json.loads(args.baseline.read_text()) if args.baseline.exists() else None
    args.out.mkdir(parents=True, exist_ok=True)
    questions = mix_ups(args.results)
    pairs = Counter({pair: len(texts) for pair, texts in questions.items()})
    picture = draw_confusion(pairs, args.out / "confusion.png")
    comparison, worse = compare(scores, baseline, args.max_drop)
    report = write_report(scores, pairs, questions, args.out, comparison, picture)
    (args.out / "scores.json").write_text(json.dumps(scores, indent=1) + "\n")

    print("\n".join(comparison))
    weakest = sorted(scores["topics"].items(), key=lambda kv: kv[1]["f1"])[:5]
    print("Weakest topics: " + ", ".join(f"{name} {row['f1']:.2f}" for name, row in weakest))
    if pairs:
        print("Most often mixed up: " + "; ".join(f"{a} taken for {b} ({n}x)" for (a, b), n in pairs.most_common(5)))
    shown = report.relative_to(ROOT) if report.is_relative_to(ROOT) else report
    print(f"Full report: {shown}" + (f" (picture: {picture.name})" if picture else ""))
    if worse and args.fail_if_worse:
        print(f"The assistant scores worse than the baseline by more than {args.max_drop}: see the report "
              "before shipping this change.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
