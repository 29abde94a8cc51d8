"""Turns an unsure FAQ answer into an honest fallback.

Rasa 3.6's ResponseSelector always picks *some* answer, and has no confidence
threshold of its own. The FallbackClassifier only looks at the intent: a
question classified as `faq` with high confidence still gets whatever answer
ranked first, even when that answer's confidence is low ("is it raining?" ->
an answer about hot stones). This component runs after both and, when the
chosen FAQ answer is not confident enough, or its top two answers are too
close to call, replaces the intent with `nlu_fallback`. The fallback action
then reads the ranking to offer the closest topics as buttons.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message

RESPONSE_SELECTOR = "response_selector"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class FaqConfidenceGate(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # Below this confidence in the chosen answer we'd rather say "not sure".
            "threshold": 0.6,
            # If the best two answers are closer than this, the question is ambiguous.
            "ambiguity_threshold": 0.1,
            # Retrieval intents whose answers are checked.
            "retrieval_intents": ["faq"],
        }

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.threshold = float(config["threshold"])
        self.ambiguity_threshold = float(config["ambiguity_threshold"])
        self.retrieval_intents = set(config["retrieval_intents"])

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "FaqConfidenceGate":
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            if self.answer_is_unsure(message):
                fallback = {INTENT_NAME_KEY: DEFAULT_NLU_FALLBACK_INTENT_NAME, PREDICTED_CONFIDENCE_KEY: self.threshold}
                message.data[INTENT] = fallback
                message.data.setdefault(INTENT_RANKING_KEY, [])
                message.data[INTENT_RANKING_KEY].insert(0, dict(fallback))
        return messages

    def answer_is_unsure(self, message: Message, intent: Optional[Text] = None) -> bool:
        """True when `intent` (by default the message's) is an FAQ whose chosen answer is unsure
        (also used by the red-flag detector for the intent it falls back to)."""
        intent = intent or (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
        if intent not in self.retrieval_intents:
            return False  # not an FAQ, or already a fallback
        selection = (message.get(RESPONSE_SELECTOR) or {}).get(intent) or {}
        ranking = selection.get("ranking") or []
        if not ranking:
            return True  # no answer to give at all
        best = ranking[0].get(PREDICTED_CONFIDENCE_KEY, 0.0)
        runner_up = ranking[1].get(PREDICTED_CONFIDENCE_KEY, 0.0) if len(ranking) > 1 else 0.0
        return best < self.threshold or best - runner_up < self.ambiguity_threshold
