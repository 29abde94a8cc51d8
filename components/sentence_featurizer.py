"""Rasa featurizer: a pretrained sentence embedding beside the word counts.

Word and character counts only know the words of the training examples; the
embedding knows that "my bum" and "buttock", or "a rub" and "a massage", mean
much the same, so questions worded like none of the examples still land near
the right ones. One sentence-level feature (1 x 384) per message text; DIET and
the ResponseSelector combine it with the count features.

The vectors are unit length; DIET collapsed on them (measured: train accuracy
.75), because the count features are in the tens. Scaled by `scale` (about the
square root of 384) they sit in the same range and DIET trains normally.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.sentence_embeddings import encoder

# The MODELS name that made a message's embedding: the red-flag layer trains on the same model.
EMBEDDING_MODEL = "sentence_embedding_model"


def sentence_embedding(message: Message) -> Optional[np.ndarray]:
    """The message's unit-length embedding, read back from its features (no second forward pass)."""
    for feature in message.features:
        if feature.attribute == TEXT and feature.type == FEATURE_TYPE_SENTENCE and \
                SentenceEmbeddingFeaturizer.__name__ in str(feature.origin):
            vector = np.asarray(feature.features).reshape(-1)
            return vector / max(float(np.linalg.norm(vector)), 1e-12)
    return None


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class SentenceEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            # A name from components.sentence_embeddings.MODELS.
            "model": "all-MiniLM-L6-v2",
            "scale": 20.0,
        }

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        if float(config["scale"]) <= 0:
            raise ValueError("SentenceEmbeddingFeaturizer: scale must be positive")

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        super().__init__(name, config)
        # Loads and verifies the weights now, so a bad model stops the server at start.
        self.encoder = encoder(config["model"])
        self.scale = float(config["scale"])

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SentenceEmbeddingFeaturizer":
        return cls(config, execution_context.node_name)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self._featurize([m for m in training_data.training_examples if m.get(TEXT)])
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        self._featurize([m for m in messages if m.get(TEXT)])
        return messages

    def _featurize(self, messages: List[Message]) -> None:
        if not messages:
            return
        vectors = self.encoder.encode([m.get(TEXT) for m in messages])
        for message, vector in zip(messages, vectors):
            self.add_features_to_message(
                sequence=None, sentence=(vector * self.scale)[np.newaxis, :], attribute=TEXT, message=message)
            message.set(EMBEDDING_MODEL, self.encoder.name)
