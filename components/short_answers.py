"""Rasa NLU component: a short "yes" or "no" is an answer, not a message to fall back on.

"No, none of these" is the safety check's own quick reply, but "no" also opens many other messages
("no thanks, not now" cancels a booking, "no bladder trouble but ..." reports a symptom), so the
intent classifier splits its confidence and the FallbackClassifier turns the answer into
`nlu_fallback` (measured: deny 0.40 for the button's text). A message of a few words whose best
real intent is affirm or deny is taken as that answer; action_answer_safety_check decides what it
answers (a yes counts only right after the safety check).
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

ANSWERS = {"affirm", "deny"}


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class ShortAnswerClassifier(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"max_words": 6}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.max_words = int(config["max_words"])

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "ShortAnswerClassifier":
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
            if intent != DEFAULT_NLU_FALLBACK_INTENT_NAME or len((message.get(TEXT) or "").split()) > self.max_words:
                continue
            ranking = [r for r in message.get(INTENT_RANKING_KEY) or []
                       if r.get(INTENT_NAME_KEY) != DEFAULT_NLU_FALLBACK_INTENT_NAME]
            if ranking and ranking[0].get(INTENT_NAME_KEY) in ANSWERS:
                message.set(INTENT, dict(ranking[0]), add_to_output=True)
                message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
