"""Measures the assistant once on a blind set (tests/blind/<set>/), through the running assistant.

    .venv/bin/python scripts/measure_blind_set.py tests/blind/set-1 [--out results/blind/set-1]

Starts the assistant as the end-to-end tests do (tests/running_assistant.py: Rasa server, action
server, SQLite tracker store, a local staff/booking receiver), sends every message of the set as the
first message of its own conversation over the REST channel, and writes:

- replies.jsonl: each message with what it expected and what the assistant said, the tier its
  answer shows (as tests/test_red_flags.py reads it) and the intent the tracker recorded;
- summary.md: the red-flag and off-topic figures (computed here) and the FAQ replies' count;
- faq_to_judge.jsonl: each FAQ question with its expected fact and the reply, for a judge to mark
  (whether the reply gives the fact is a reading, not a string match), then `--judged FILE` adds
  the FAQ figure to summary.md.

A blind set is measured once, never tuned on (tests/blind/README.md).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.running_assistant import Assistant, Receiver, rest_conversation, text_of  # noqa: E402
from tests.test_red_flags import reply_tier  # noqa: E402

# What counts as handled for each expected tier (as tests/test_red_flags.py counts it).
ACCEPTED = {"emergency": {"emergency", "unclear"}, "urgent": {"urgent", "emergency", "unclear"},
            "see_doctor": {"see_doctor", "urgent", "emergency", "unclear"}}
HONEST_INTENTS = {"out_of_scope", "nlu_fallback"}


def ask(assistant: Assistant, sender: str, message: str) -> dict:
    replies = assistant.say(sender, message)
    latest = assistant.tracker(rest_conversation(sender)).get("latest_message") or {}
    return {"reply": text_of(replies), "buttons": [b.get("title") for r in replies for b in r.get("buttons") or []],
            "tier": reply_tier(replies, assistant.clinic["emergency_number"]),
            "intent": (latest.get("intent") or {}).get("name")}


def red_flag_figures(rows) -> list:
    lines = []
    for tier, accepted in ACCEPTED.items():
        mine = [r for r in rows if r["expected"] == tier]
        hits = sum(r["tier"] in accepted for r in mine)
        lines.append(f"| {tier} handled | {hits}/{len(mine)} | {100 * hits / max(len(mine), 1):.1f}% |")
    harmless = [r for r in rows if r["expected"] == "none"]
    for got in ("emergency", "unclear", "urgent", "see_doctor"):
        n = sum(r["tier"] == got for r in harmless)
        lines.append(f"| harmless given {got} advice | {n}/{len(harmless)} | {100 * n / max(len(harmless), 1):.1f}% |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--judged", type=Path, help="faq judgements: JSON lines with index and verdict")
    args = parser.parse_args()
    out = args.out or ROOT / "results" / "blind" / args.set.name
    out.mkdir(parents=True, exist_ok=True)
    if args.judged:
        return summarise_judged(out, args.judged)

    faq = yaml.safe_load((args.set / "faq.yml").read_text())
    flags = yaml.safe_load((args.set / "red_flags.yml").read_text())
    offtopic = yaml.safe_load((args.set / "offtopic.yml").read_text())
    receiver = Receiver().start()
    assistant = Assistant(Path(tempfile.mkdtemp(prefix="blind-")), staff_webhook_url=receiver.staff_url(),
                          booking_webhook_url=receiver.booking_url())
    rows = []
    try:
        for i, item in enumerate(faq):
            rows.append({"kind": "faq", "index": i, "message": item["question"], "fact": item["fact"],
                         **ask(assistant, f"blind-faq-{i}", item["question"])})
        for i, item in enumerate(flags):
            rows.append({"kind": "red_flag", "index": i, "message": item["message"], "expected": item["tier"],
                         **ask(assistant, f"blind-rf-{i}", item["message"])})
        for i, item in enumerate(offtopic):
            rows.append({"kind": "offtopic", "index": i, "message": item["message"],
                         **ask(assistant, f"blind-off-{i}", item["message"])})
    finally:
        assistant.close()
        receiver.stop()

    with (out / "replies.jsonl").open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (out / "faq_to_judge.jsonl").open("w") as f:
        for row in rows:
            if row["kind"] == "faq":
                f.write(json.dumps({k: row[k] for k in ("index", "message", "fact", "reply", "buttons")},
                                   ensure_ascii=False) + "\n")
    off = [r for r in rows if r["kind"] == "offtopic"]
    honest = sum(r["intent"] in HONEST_INTENTS and r["tier"] is None for r in off)
    flagged = [r for r in rows if r["kind"] == "red_flag"]
    lines = [f"# Blind set {args.set.name}: measured through the running assistant", "",
             "| figure | count | share |", "|---|---:|---:|", *red_flag_figures(flagged),
             f"| off-topic answered honestly (out_of_scope or fallback, no alert) | {honest}/{len(off)} | "
             f"{100 * honest / max(len(off), 1):.1f}% |",
             "", f"FAQ: {sum(r['kind'] == 'faq' for r in rows)} replies in faq_to_judge.jsonl, to be judged.",
             f"Intents of the FAQ replies: {dict(Counter(r['intent'] for r in rows if r['kind'] == 'faq'))}"]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def summarise_judged(out: Path, judged: Path) -> int:
    verdicts = Counter(json.loads(line)["verdict"] for line in judged.read_text().splitlines() if line.strip())
    total = sum(verdicts.values())
    line = (f"\nFAQ answered with the right facts: {verdicts['right']}/{total} "
            f"({100 * verdicts['right'] / max(total, 1):.1f}%); verdicts: {dict(verdicts)}")
    with (out / "summary.md").open("a") as f:
        f.write(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
