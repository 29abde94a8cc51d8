"""Answers an FAQ with the answer the ResponseSelector picked, and offers the runner-up when close.

When the two best answers are close (a comparison, a question between two topics), a menu of
topics made the visitor pick before getting anything. Now the best answer is given, and the
other one is offered as a single "did you mean" button. When the FaqConfidenceGate marked the
answer tentative (a confidence just under its threshold), the next two answers are offered after
it. The gate still turns a truly unsure best answer into the honest "not sure" menu.

When the gate read a longer message question by question (`faq_answers`), those answers are given
instead: the one the question at the end of a story asked for, or both answers of a two-part
question, and nothing already answered is offered again.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.faq_catalog import titles

# The runner-up is offered when its confidence is within this of the best answer's.
CLOSE = 0.25
# ... and at least this confident itself.
MIN_RUNNER_UP = 0.15
# After a tentative answer, up to this many others are offered (if not next to nothing).
TENTATIVE_ALTERNATIVES = 2
MIN_ALTERNATIVE = 0.05


def ranking_of(parse_data: Dict[Text, Any]) -> List[Dict[Text, Any]]:
    return ((parse_data.get("response_selector") or {}).get("faq") or {}).get("ranking") or []


def runner_up(parse_data: Dict[Text, Any]) -> Optional[Text]:
    """The FAQ key ('faq/...') worth offering beside the chosen answer, if any."""
    ranking = ranking_of(parse_data)
    if len(ranking) < 2:
        return None
    best, second = ranking[0], ranking[1]
    gap = best.get("confidence", 0.0) - second.get("confidence", 0.0)
    if gap < CLOSE and second.get("confidence", 0.0) >= MIN_RUNNER_UP:
        return second.get("intent_response_key")
    return None


def answers(parse_data: Dict[Text, Any]) -> List[Text]:
    """The FAQ keys to answer, in order: the gate's reading question by question, else the
    ResponseSelector's choice ([] when there is none)."""
    chosen = (((parse_data.get("response_selector") or {}).get("faq") or {}).get("response") or {})
    key = chosen.get("intent_response_key") or (chosen.get("utter_action") or "").replace("utter_", "", 1)
    return list(parse_data.get("faq_answers") or ([key] if key else []))


def alternatives(parse_data: Dict[Text, Any]) -> List[Text]:
    """The FAQ keys to offer after the answer: none after two answers, the next two after a
    tentative answer, else the runner-up when it is close; never one already answered."""
    given = answers(parse_data)
    if len(given) > 1:
        return []
    if parse_data.get("faq_certainty") == "tentative":
        ranked = [r.get("intent_response_key") for r in ranking_of(parse_data)
                  if r.get("confidence", 0.0) >= MIN_ALTERNATIVE and r.get("intent_response_key") not in given]
        return ranked[:TENTATIVE_ALTERNATIVES]
    other = runner_up(parse_data)
    return [other] if other and other not in given else []


class ActionAnswerFaq(Action):
    def name(self) -> Text:
        return "action_answer_faq"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        parse_data = tracker.latest_message
        keys = answers(parse_data)
        if not keys:
            dispatcher.utter_message(response="utter_yes_no_without_question")
            return []
        for key in keys:
            dispatcher.utter_message(response=f"utter_{key}")
        catalog = titles()
        offered = [catalog[key] for key in alternatives(parse_data) if key in catalog]
        if offered:
            dispatcher.utter_message(text="Or did you mean:", buttons=[{"title": t, "payload": t} for t in offered])
        return []
