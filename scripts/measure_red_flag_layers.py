"""Each red-flag layer's recall and false alarms, measured apart, on phrasing sets.

    python scripts/measure_red_flag_layers.py tests/red_flags/dev.yml tests/red_flags/final.yml

Parses every phrasing with the trained model (models/sciatica.tar.gz) and reads the detector's
`red_flag_layers` output: the patterns' tier, the learned layer's verdict (safety check or
see-a-doctor) and the intent classifier's own report_red_flag confidence. Prints, per layer and
for the three together, how many of each tier were caught and how many harmless phrasings were
flagged. Used to choose the learned layer's thresholds on dev.yml (then checked on final.yml).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FLAGGED = ("emergency", "urgent", "see_doctor")
# What counts as caught, per expected tier (as tests/test_red_flags.py scores the replies).
ACCEPTED = {"emergency": {"emergency", "unclear"}, "urgent": {"emergency", "urgent", "unclear"},
            "see_doctor": {"emergency", "urgent", "unclear", "see_doctor"}}


def cases(paths: Iterable[Path]) -> List[Tuple[str, str]]:
    """(expected tier, message); the sets' 'harmless' is tier 'none'."""
    rows = []
    for path in paths:
        for tier, categories in (yaml.safe_load(Path(path).read_text()) or {}).items():
            for messages in categories.values():
                rows += [("none" if tier == "harmless" else tier, m) for m in messages]
    return rows


def parse_all(messages: List[str]) -> List[Dict]:
    import logging

    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # Rasa logs every parse at debug level otherwise

    agent = Agent.load(str(ROOT / "models" / "sciatica.tar.gz"))
    return [asyncio.run(agent.parse_message(m)) for m in messages]


def verdicts(parsed: Dict, intent_threshold: float = 0.8) -> Dict[str, object]:
    layers = parsed.get("red_flag_layers") or {}
    tier = None
    if (parsed.get("intent") or {}).get("name") == "report_red_flag":
        tiers = [e["value"] for e in parsed.get("entities") or [] if e["entity"] == "red_flag_tier"]
        tier = tiers[0] if tiers else "unclear"
    return {"patterns": layers.get("patterns"), "learned": layers.get("classifier"),
            "intent": "unclear" if (layers.get("intent") or 0) >= intent_threshold else None, "all": tier}


def table(rows: List[Tuple[str, str]], parsed: List[Dict]) -> str:
    lines = ["| layer | emergency | urgent | see a doctor | harmless flagged (any) | harmless told 911 |",
             "|---|---:|---:|---:|---:|---:|"]
    got = [verdicts(p) for p in parsed]
    for layer in ("patterns", "learned", "intent", "all"):
        cells = []
        for tier in FLAGGED:
            mine = [g[layer] for (t, _), g in zip(rows, got) if t == tier]
            cells.append(f"{sum(v in ACCEPTED[tier] for v in mine)}/{len(mine)}")
        harmless = [g[layer] for (t, _), g in zip(rows, got) if t == "none"]
        cells.append(f"{sum(v is not None for v in harmless)}/{len(harmless)}")
        cells.append(f"{sum(v == 'emergency' for v in harmless)}/{len(harmless)}")
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", type=Path)
    parser.add_argument("--misses", action="store_true", help="also list what the combined layers missed")
    parser.add_argument("--dump", type=Path, help="write each phrasing's layers as JSON lines here")
    args = parser.parse_args()
    for path in args.sets:
        rows = cases([path])
        parsed = parse_all([m for _, m in rows])
        print(f"\n{path} ({len(rows)} phrasings)\n" + table(rows, parsed))
        if args.dump:
            with args.dump.open("a") as out:
                for (tier, message), p in zip(rows, parsed):
                    out.write(json.dumps({"set": path.name, "tier": tier, "message": message,
                                          "layers": p.get("red_flag_layers"), "intent": p.get("intent")}) + "\n")
        if args.misses:
            for (tier, message), p in zip(rows, parsed):
                got = verdicts(p)["all"]
                if (tier == "none" and got) or (tier != "none" and got not in ACCEPTED[tier]):
                    print(f"  {tier} -> {got}: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
