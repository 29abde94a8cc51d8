"""Questions of the kinds the blind sets found hardest get the answer they need (through the trained model).

tests/hard_questions/dev.yml (320, tuned on) and final.yml (200, checked once at the end of the round),
each written by a different helper that read only the articles and the topic list: comparisons
(massage against physio, stretching, exercise; one technique against another), "why/how does it
work", "is massage alone enough", which body areas a massage covers, short follow-ups, non-native
English, long stories, practical questions. Each is labelled with the answer that has what the visitor
needs (and sometimes a second that helps). What is counted is what the visitor would be shown
(tests/test_multipart.shown): the needed answer among those given. The sets were labelled before the
answer about which body areas a massage covers (faq/massage_areas) existed, so for body-area questions
that answer counts too.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_multipart import agent, kinds_below_their_floors  # noqa: F401  (agent: the trained-model fixture)

SETS = Path(__file__).parent / "hard_questions"
# Share of each kind given the answer it needs, at least: a little under the lower of the two sets'
# figures (dev / final, 2026-11-25: alone-enough 68% / 56%, body area 82% / 92%, comparison 78% / 64%,
# long story 85% / 76%, mechanism 78% / 84%, non-native 95% / 88%, practical 80% / 92%, short follow-up
# 78% / 96%; docs/decisions/hard-questions.md).
FLOORS = {"alone_enough": 0.45, "body_area": 0.8, "comparison": 0.5, "long_chatty": 0.7, "mechanism": 0.75,
          "non_native": 0.85, "practical": 0.7, "short_followup": 0.7}


def needed_answer_shown(item, given) -> bool:
    needed = {item["topics"][0]} | ({"faq/massage_areas"} if item["kind"] == "body_area" else set())
    return bool(needed & set(given))


@pytest.mark.parametrize("name", ["dev", "final"])
def test_each_kind_of_hard_question_gets_the_answer_it_needs(agent, name):  # noqa: F811
    short, missed = kinds_below_their_floors(agent, SETS / f"{name}.yml", FLOORS, needed_answer_shown)
    assert not short, (short, missed)
