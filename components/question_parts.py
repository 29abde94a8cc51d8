"""The questions inside a longer message: "Hi! I'm booked Thursday. What should I wear, and can I eat before?"

Classifiers read a message whole. A story of five sentences with the question in the last, or two
questions in one message, reads as none of the topics it asks about. The FAQ gate looks at each
question on its own as well (components/faq_confidence_gate.py).

Written here because no maintained library splits a chat message into its questions: spaCy's
sentencizer splits on punctuation only (the same as the first rule below) and needs a pipeline the
gate does not have; "and can I eat before?" inside one sentence is a second question only by the
question word after the "and".
"""
from __future__ import annotations

import re
from typing import List

# A question word or phrase at the start of a clause.
_QUESTION_WORDS = (
    r"can|could|should|shall|what|what's|whats|how|is|are|do|does|did|will|would|why|when|which|where|"
    r"any|anything|am i|tell me|i'd like to know|i want to know|i'm wondering|i wonder|wondering|curious|please"
)
_SENTENCES = re.compile(r"(?<=[.?!;])\s+|\n+|\s+(?=\d[.)]\s)")
# "..., and can I eat before?", "also what about...", "plus is it ok to..."
_JOINED_QUESTION = re.compile(
    r"\s*(?:,\s*|\s+)(?:and also|also|plus|oh and|and)\s+(?=(?:" + _QUESTION_WORDS + r")\b)", re.IGNORECASE)
_OPENS_A_QUESTION = re.compile(
    r"^(?:(?:so|and|but|also|ok|okay|well|honestly|basically|oh)[,!]?\s+)*(?:" + _QUESTION_WORDS + r")\b",
    re.IGNORECASE)
MIN_WORDS = 3  # "why?" or "and you?" alone says nothing a topic could match


def parts(text: str) -> List[str]:
    """The message's sentences and joined questions, each at least MIN_WORDS long."""
    pieces = []
    for sentence in _SENTENCES.split(text):
        pieces += _JOINED_QUESTION.split(sentence)
    return [p.strip() for p in pieces if p and len(p.split()) >= MIN_WORDS]


def is_question(part: str) -> bool:
    return part.rstrip().endswith("?") or bool(_OPENS_A_QUESTION.match(part.strip()))


def questions(text: str) -> List[str]:
    """The questions of a message of more than one part ([] for a single question or statement)."""
    found = parts(text)
    if len(found) < 2:
        return []
    return [p for p in found if is_question(p)]
