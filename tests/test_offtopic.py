"""Off-topic messages get an honest "can't help" or "not sure", never an answer or an alert.

tests/offtopic/messages.yml: 100 messages outside what the assistant knows, several of them using its
words in another sense ("back up my phone", "nerves before my exam"); written by a helper that did not
look at the training data. Measured through the trained model.

tests/offtopic/near_topic.yml: 160 messages next to the assistant's topics that none of its answers
covers (other joints and conditions asked in sciatica's words, other therapies, products, local
recommendations, etiquette, wellness), by a helper that read only the articles, clinic.md and the topic
list, written after blind set 6 found near-topic questions answered as FAQ (docs/decisions/blind-set-6.md).
Its floor keeps the fix (round 6) from coming undone.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from tests.running_assistant import MODEL

SETS = Path(__file__).parent / "offtopic"
# Share answered honestly, at least (near_topic: 117/160 in round 5 of issue 18; 147/160 in round 6, with
# near-topic out_of_scope examples and the gate's nearest-example vote; messages 97/100).
FLOORS = {"messages.yml": 0.90, "near_topic.yml": 0.85}
HONEST = {"out_of_scope", "nlu_fallback", "ask_medical_advice"}


@pytest.fixture(scope="module")
def agent():
    from rasa.core.agent import Agent

    return Agent.load(str(MODEL))


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_off_topic_messages_are_answered_honestly(agent, name):
    messages = yaml.safe_load((SETS / name).read_text())["messages"]
    dishonest = []
    for message in messages:
        parsed = asyncio.run(agent.parse_message(message))
        if parsed["intent"]["name"] not in HONEST:
            dishonest.append((parsed["intent"].get("full_retrieval_intent_name") or parsed["intent"]["name"], message))
    print(f"\n  {name}: off-topic answered honestly: {len(messages) - len(dishonest)}/{len(messages)}")
    for intent, message in dishonest:
        print(f"    {intent}: {message}")
    assert len(messages) - len(dishonest) >= FLOORS[name] * len(messages), dishonest
