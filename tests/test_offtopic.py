"""Off-topic messages get an honest "can't help" or "not sure", never an answer or an alert.

tests/offtopic/messages.yml: 100 messages outside what the assistant knows, several of them using its
words in another sense ("back up my phone", "nerves before my exam"); written by a helper that did not
look at the training data. Measured through the trained model.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from tests.running_assistant import MODEL

MESSAGES = yaml.safe_load((Path(__file__).parent / "offtopic" / "messages.yml").read_text())["messages"]
HONEST = {"out_of_scope", "nlu_fallback", "ask_medical_advice"}


@pytest.fixture(scope="module")
def agent():
    from rasa.core.agent import Agent

    return Agent.load(str(MODEL))


def test_off_topic_messages_are_answered_honestly(agent):
    dishonest = []
    for message in MESSAGES:
        parsed = asyncio.run(agent.parse_message(message))
        if parsed["intent"]["name"] not in HONEST:
            dishonest.append((parsed["intent"].get("full_retrieval_intent_name") or parsed["intent"]["name"], message))
    print(f"\n  off-topic answered honestly: {len(MESSAGES) - len(dishonest)}/{len(MESSAGES)}")
    for intent, message in dishonest:
        print(f"    {intent}: {message}")
    assert len(dishonest) <= 0.10 * len(MESSAGES), dishonest
