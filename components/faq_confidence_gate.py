"""Turns an unsure FAQ answer into an honest fallback, and an off-topic message into an honest "can't help".

Rasa 3.6's ResponseSelector always picks *some* answer, and has no confidence
threshold of its own. The FallbackClassifier only looks at the intent: a
question classified as `faq` with high confidence still gets whatever answer
ranked first, even when that answer's confidence is low ("is it raining?" ->
an answer about hot stones). This component runs after both and, when the
chosen FAQ answer is not confident enough, or its top two answers are too
close to call, replaces the intent with `nlu_fallback`. The fallback action
then reads the ranking to offer the closest topics as buttons.

Between `tentative_threshold` and `threshold` the answer is given but marked
`faq_certainty: tentative`, and action_answer_faq offers the next answers as
"did you mean" buttons: a menu made the visitor pick before getting anything,
although the best answer was the right one for most such questions.

DIET is as sure of "what's the difference between a Roth IRA and a traditional
IRA?" being an FAQ as of any real question (intent confidence 1.0), so
confidences can't tell an off-topic message from an unusual question. The
sentence embedding can: the gate keeps the embedding of every FAQ training
example, and a message classified as an FAQ that is far from all of them
(`off_topic_similarity`) becomes `out_of_scope`; a tentative answer also needs
to be close to some example (`tentative_similarity`). Measured on the held-out
questions and the off-topic set (config.yml has the figures).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.sentence_featurizer import sentence_embedding

logger = logging.getLogger(__name__)

RESPONSE_SELECTOR = "response_selector"
CERTAINTY = "faq_certainty"  # in the parse data: "sure" or "tentative" (FAQ answers only)
SIMILARITY = "faq_similarity"  # in the parse data: cosine to the closest FAQ training example
OFF_TOPIC = "out_of_scope"
EXAMPLES_FILE = "faq_examples.npy"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class FaqConfidenceGate(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # Below this confidence in the chosen answer we'd rather say "not sure".
            "threshold": 0.6,
            # From this confidence up to `threshold` the answer is given with alternatives
            # (the default, equal to `threshold`, never does so).
            "tentative_threshold": None,
            # If the best two answers are closer than this, the question is ambiguous.
            "ambiguity_threshold": 0.1,
            # An FAQ-classified message less similar than this to every FAQ example is off-topic
            # (None: never); a tentative answer needs at least `tentative_similarity`.
            "off_topic_similarity": None,
            "tentative_similarity": 0.0,
            # Retrieval intents whose answers are checked.
            "retrieval_intents": ["faq"],
        }

    def __init__(self, config: Dict[Text, Any], model_storage: Optional[ModelStorage] = None,
                 resource: Optional[Resource] = None, examples: Optional[np.ndarray] = None) -> None:
        self.threshold = float(config["threshold"])
        tentative = config.get("tentative_threshold")
        self.tentative_threshold = self.threshold if tentative is None else min(float(tentative), self.threshold)
        self.ambiguity_threshold = float(config["ambiguity_threshold"])
        off_topic = config.get("off_topic_similarity")
        self.off_topic_similarity = None if off_topic is None else float(off_topic)
        self.tentative_similarity = float(config.get("tentative_similarity") or 0.0)
        self.retrieval_intents = set(config["retrieval_intents"])
        self._model_storage = model_storage
        self._resource = resource
        self.examples = examples  # unit-length embeddings of the FAQ training examples, once trained

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "FaqConfidenceGate":
        return cls(config, model_storage, resource)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "FaqConfidenceGate":
        try:
            with model_storage.read_from(resource) as folder:
                examples = np.load(Path(folder) / EXAMPLES_FILE)
        except (ValueError, FileNotFoundError):
            examples = None
        return cls(config, model_storage, resource, examples)

    def train(self, training_data: TrainingData) -> Resource:
        vectors = [sentence_embedding(m) for m in training_data.intent_examples
                   if m.get(INTENT) in self.retrieval_intents]
        vectors = [v for v in vectors if v is not None]
        if vectors:
            self.examples = np.vstack(vectors).astype(np.float32)
            with self._model_storage.write_to(self._resource) as folder:
                np.save(Path(folder) / EXAMPLES_FILE, self.examples)
        elif self.off_topic_similarity is not None:
            logger.warning("FaqConfidenceGate: no sentence embeddings in the training data, "
                           "so off-topic messages are judged by confidence alone.")
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            similarity = self.similarity(message)
            if similarity is not None:
                message.set(SIMILARITY, round(similarity, 4), add_to_output=True)
            intent = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
            if (intent in self.retrieval_intents and similarity is not None
                    and self.off_topic_similarity is not None and similarity < self.off_topic_similarity):
                self._replace_intent(message, OFF_TOPIC)
                continue
            certainty = self.certainty(message, similarity=similarity)
            if certainty == "unsure":
                self._replace_intent(message, DEFAULT_NLU_FALLBACK_INTENT_NAME)
            elif certainty:
                message.set(CERTAINTY, certainty, add_to_output=True)
        return messages

    def _replace_intent(self, message: Message, name: Text) -> None:
        replaced = {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: self.threshold}
        message.data[INTENT] = replaced
        message.data.setdefault(INTENT_RANKING_KEY, [])
        message.data[INTENT_RANKING_KEY].insert(0, dict(replaced))

    def similarity(self, message: Message) -> Optional[float]:
        """Cosine between the message and its closest FAQ training example (None if unknown)."""
        if self.examples is None:
            return None
        vector = sentence_embedding(message)
        if vector is None:
            return None
        return float(np.max(self.examples @ vector.astype(np.float32)))

    def answer_is_unsure(self, message: Message, intent: Optional[Text] = None) -> bool:
        """True when `intent` (by default the message's) is an FAQ whose chosen answer is too
        unsure to give (also used by the red-flag detector for the intent it falls back to)."""
        return self.certainty(message, intent) == "unsure"

    def certainty(self, message: Message, intent: Optional[Text] = None,
                  similarity: Optional[float] = None) -> Optional[Text]:
        """"sure", "tentative" or "unsure" for an FAQ answer; None when `intent` is not an FAQ."""
        intent = intent or (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
        if intent not in self.retrieval_intents:
            return None  # not an FAQ, or already a fallback
        selection = (message.get(RESPONSE_SELECTOR) or {}).get(intent) or {}
        ranking = selection.get("ranking") or []
        if not ranking:
            return "unsure"  # no answer to give at all
        best = ranking[0].get(PREDICTED_CONFIDENCE_KEY, 0.0)
        runner_up = ranking[1].get(PREDICTED_CONFIDENCE_KEY, 0.0) if len(ranking) > 1 else 0.0
        if best - runner_up < self.ambiguity_threshold:
            return "unsure"
        if best >= self.threshold:
            return "sure"
        close_enough = similarity is None or similarity >= self.tentative_similarity
        return "tentative" if best >= self.tentative_threshold and close_enough else "unsure"
