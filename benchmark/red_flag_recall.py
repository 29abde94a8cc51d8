"""Red-flag recall of one trained model: the share of red-flag reports in the
phrasing sets it was not tuned on (tests/red_flags/final.yml and unseen.yml) that
it understands as a red flag (intent report_red_flag), and how many harmless
messages it mistakes for one. Prints JSON. Usage: python -m benchmark.red_flag_recall MODEL"""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SETS = [ROOT / "tests" / "red_flags" / name for name in ("final.yml", "unseen.yml")]


def main(model: str) -> dict:
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    found = {}
    for path in SETS:
        for tier, categories in yaml.safe_load(path.read_text(encoding="utf-8")).items():
            for messages in categories.values():
                for message in messages:
                    parsed = asyncio.run(agent.parse_message(message))
                    hit = parsed["intent"]["name"] == "report_red_flag"
                    counted = found.setdefault(tier, [0, 0])
                    counted[0] += hit
                    counted[1] += 1
    flagged = [found[t] for t in ("emergency", "urgent", "see_doctor") if t in found]
    caught, total = sum(c for c, _ in flagged), sum(n for _, n in flagged)
    harmless = found.get("harmless", [0, 0])
    return {"red_flag_recall": round(caught / total, 4), "red_flags_caught": caught, "red_flags": total,
            "by_tier": {t: {"caught": c, "of": n} for t, (c, n) in found.items() if t != "harmless"},
            "false_alarm_rate": round(harmless[0] / harmless[1], 4) if harmless[1] else 0.0,
            "false_alarms": harmless[0], "harmless": harmless[1]}


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(sys.argv[1])))
