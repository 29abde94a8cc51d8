"""What the benchmark sends: the held-out test questions and the test conversations,
as visitors would send them (one conversation = one sender, its messages in order)."""
from __future__ import annotations

import random
from pathlib import Path
from typing import List

import yaml

ROOT = Path(__file__).resolve().parent.parent
HELD_OUT = ROOT / "tests" / "nlu"
CONVERSATIONS = ROOT / "tests" / "conversations"
# A visitor on the website asks a few questions in one conversation.
QUESTIONS_PER_VISIT = 3
SEED = 7


def held_out_messages() -> List[str]:
    messages = []
    for path in sorted(HELD_OUT.glob("*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu") or []:
            for line in (block.get("examples") or "").splitlines():
                if line.strip().startswith("- "):
                    messages.append(line.strip()[2:].strip())
    return messages


def test_conversations() -> List[List[str]]:
    """The user turns of every test conversation (FAQ, fallback, booking, red flags)."""
    conversations = []
    for path in sorted(CONVERSATIONS.glob("*.yml")):
        for story in yaml.safe_load(path.read_text(encoding="utf-8")).get("stories") or []:
            turns = [step["user"].strip() for step in story["steps"] if "user" in step]
            if turns:
                conversations.append(turns)
    return conversations


def sessions() -> List[List[str]]:
    """The fixed mix, in a fixed (seeded) order: every test conversation, and the
    held-out questions in visits of a few questions each."""
    questions = held_out_messages()
    visits = [questions[i:i + QUESTIONS_PER_VISIT] for i in range(0, len(questions), QUESTIONS_PER_VISIT)]
    mix = test_conversations() + visits
    random.Random(SEED).shuffle(mix)
    return mix


def describe() -> dict:
    conversations = test_conversations()
    return {"held_out_questions": len(held_out_messages()), "questions_per_visit": QUESTIONS_PER_VISIT,
            "test_conversations": len(conversations),
            "messages_in_test_conversations": sum(len(c) for c in conversations)}
