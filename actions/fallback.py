"""What the assistant says when it isn't sure what was asked.

Instead of a confident wrong answer, it says so, offers the FAQ topics the
model ranked closest (read from the message's ResponseSelector ranking) as
buttons, and offers a person. The second misunderstanding in a row hands the
visitor over to staff instead of offering the same menu again.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.clinic_settings import settings
from actions.faq_catalog import titles
from actions.handover import hand_over

MAX_SUGGESTIONS = 3
# A topic ranked below this is not worth suggesting.
MIN_SUGGESTION_CONFIDENCE = 0.05


# Messages the assistant could not help with: unclear, or outside what it knows.
NOT_UNDERSTOOD = {"nlu_fallback", "out_of_scope"}


def misunderstood_in_a_row(tracker: Tracker) -> int:
    """How many of the latest user messages, counting back, were not understood."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") == "restart" or event.get("event") == "session_started":
            break
        if event.get("event") != "user":
            continue
        if ((event.get("parse_data") or {}).get("intent") or {}).get("name") not in NOT_UNDERSTOOD:
            break
        count += 1
    return count


def closest_topics(parse_data: Dict[Text, Any], catalog: Dict[Text, Text]) -> List[Text]:
    """FAQ keys to suggest, best first: a named technique's own FAQ, then the ranking."""
    keys: List[Text] = []
    for entity in parse_data.get("entities") or []:
        if entity.get("entity") == "technique" and entity.get("value"):
            key = "faq/technique_" + str(entity["value"]).lower().replace(" ", "_")
            if key in catalog:
                keys.append(key)
    ranking = ((parse_data.get("response_selector") or {}).get("faq") or {}).get("ranking") or []
    for candidate in ranking:
        key = candidate.get("intent_response_key")
        if key in catalog and candidate.get("confidence", 0.0) >= MIN_SUGGESTION_CONFIDENCE:
            keys.append(key)
    unique = list(dict.fromkeys(keys))
    return unique[:MAX_SUGGESTIONS]


async def handed_over_after_second_miss(dispatcher: CollectingDispatcher, tracker: Tracker) -> bool:
    """The second message in a row the assistant can't help with goes to a person (True if it did)."""
    if misunderstood_in_a_row(tracker) < 2:
        return False
    await hand_over(dispatcher, tracker, settings(), "not_understood_twice",
                    "Sorry, I'm still not getting it. A person will understand better.")
    return True


class ActionOutOfScope(Action):
    """Off-topic: says so honestly; the second message in a row it can't help with goes to a person,
    as after two "not sure" menus (gibberish is as often taken for off-topic as for unclear)."""

    def name(self) -> Text:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        if not await handed_over_after_second_miss(dispatcher, tracker):
            dispatcher.utter_message(response="utter_out_of_scope")
        return []


class ActionFallbackWithTopics(Action):
    def name(self) -> Text:
        return "action_fallback_with_topics"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        if await handed_over_after_second_miss(dispatcher, tracker):
            return []
        catalog = titles()
        suggestions = closest_topics(tracker.latest_message, catalog)
        buttons = [{"title": catalog[key], "payload": catalog[key]} for key in suggestions]
        buttons.append({"title": "Talk to a person", "payload": "I'd like to talk to a person"})
        if suggestions:
            text = "Sorry, I'm not sure I understood. Is it about one of these?"
        else:
            text = "Sorry, I don't know the answer to that."
            buttons.insert(0, {"title": "Show topics", "payload": "What can I ask you?"})
        dispatcher.utter_message(text=text, buttons=buttons)
        return []
