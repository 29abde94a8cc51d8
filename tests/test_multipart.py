"""Long and two-part questions get the answers they ask for (through the trained model).

tests/multipart/dev.yml (240, tuned on) and final.yml (160, checked once): long stories with the
question inside, two questions in one message, comparisons, a question after a greeting or booking
remark, worried wording, one-detail questions; written by a helper that read only the articles and
the topic list, each labelled with the answer(s) it needs. What is counted is what the visitor
would be shown: the answers action_answer_faq gives (or the see-a-doctor path gives beside its note).
"""
from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
import yaml

from actions.faq_answer import answers
from actions.red_flags import faq_answers_beside_the_flag
from tests.running_assistant import MODEL

SETS = Path(__file__).parent / "multipart"
# Share of each kind answered with every answer it asks for, at least: a little under the lower of the
# two sets' figures (dev / final, 2026-11-25: two-part 72% / 60%, comparison 62% / 50%, long 85% / 94%,
# after a greeting or booking remark 94% / 100%, worried 100% / 88%, one detail 97% / 96%).
# One detail on final fell to 22/25 in round 6 of issue 18 ("water after a massage?" answered by aftercare,
# which says to drink water, instead of eating_and_drinking; the knee-to-opposite-shoulder stretch by
# technique_stretching instead of stretches; one "not sure" menu): 0.85.
FLOORS = {"two_part": 0.45, "long_chatty": 0.75, "preamble": 0.9, "comparison": 0.45,
          "worried_personal": 0.8, "detail": 0.85}


@pytest.fixture(scope="module")
def agent():
    from rasa.core.agent import Agent

    return Agent.load(str(MODEL))


def shown(parsed: dict) -> list:
    intent = parsed["intent"]["name"]
    if intent == "faq":
        return answers(parsed)
    tiers = {e.get("value") for e in parsed.get("entities") or [] if e.get("entity") == "red_flag_tier"}
    if intent == "report_red_flag" and tiers == {"see_doctor"}:
        return [name.replace("utter_", "", 1) for name in faq_answers_beside_the_flag(parsed)]
    return []


def kinds_below_their_floors(agent, path: Path, floors: dict, answered) -> tuple:
    """Parses each labelled message of `path`; `answered(item, given)` says whether what the visitor is
    shown will do. Prints each kind's count; returns the kinds under their floor, and the misses."""
    right, total, missed = Counter(), Counter(), []
    for item in yaml.safe_load(path.read_text()):
        given = shown(asyncio.run(agent.parse_message(item["message"])))
        total[item["kind"]] += 1
        if answered(item, given):
            right[item["kind"]] += 1
        else:
            missed.append((item["kind"], item["topics"], given, item["message"][:80]))
    print(f"\n  {path.stem}: " + ", ".join(f"{k} {right[k]}/{total[k]}" for k in sorted(total))
          + f"; all {sum(right.values())}/{sum(total.values())}")
    return {k: round(right[k] / total[k], 2) for k in total if right[k] / total[k] < floors[k]}, missed


@pytest.mark.parametrize("name", ["dev", "final"])
def test_each_kind_of_longer_message_gets_all_its_answers(agent, name):
    short, missed = kinds_below_their_floors(agent, SETS / f"{name}.yml", FLOORS,
                                             lambda item, given: all(t in given for t in item["topics"]))
    assert not short, (short, missed)
