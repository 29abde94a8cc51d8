"""Rasa NLU component: marks every message that reports a red-flag symptom.

Runs last in the pipeline, on every message, and does not depend on the intent
classifier: a misclassified emergency is the worst failure this assistant can
have. When the patterns in spacy_pipeline/red_flags.yml find a red flag, the
message's intent becomes `report_red_flag` (confidence 1.0, so no fallback or
FAQ answer can win) and it gets two entities the dialogue acts on:
`red_flag_tier` (emergency / urgent / see_doctor) and `red_flag_sign`.

When DIET alone predicts `report_red_flag` (a phrasing the patterns don't
know) with high confidence and the message mentions one of the patterns'
`classifier_hints`, the tier is `unclear` and the action gives cautious advice.
The shipped hints list is empty (measured: the classifier added no recall and
some false cautions), so DIET's guess without a pattern match falls back to
its next-best intent. A question *about* a red flag ("what is cauda equina?")
is left to the FAQ answers.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    ENTITIES,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from components.faq_confidence_gate import FaqConfidenceGate
from components.red_flags import PATTERNS_FILE, detector_for

INTENT_NAME = "report_red_flag"
SPACY_DOC = "text_spacy_doc"  # where Rasa's SpacyNLP leaves the parsed message


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class RedFlagDetectorComponent(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            # The project's spaCy pipeline (the same one SpacyNLP loads).
            "spacy_model": "build/spacy_en",
            "patterns": str(PATTERNS_FILE),
            # DIET's own `report_red_flag` guess counts from this confidence, and
            # only with one of the pattern file's classifier_hints in the message.
            "classifier_threshold": 0.8,
            # When DIET's red-flag guess is set aside, the next-best intent must be
            # at least this sure (FallbackClassifier's threshold), else nlu_fallback.
            "fallback_threshold": 0.5,
        }

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.config = config
        self.detector = detector_for(config["spacy_model"], config["patterns"])
        # Judges the FAQ answer an untrusted red-flag guess would fall back to.
        self.faq_gate = FaqConfidenceGate({**FaqConfidenceGate.get_default_config(),
                                           "threshold": config["fallback_threshold"]})

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "RedFlagDetectorComponent":
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self._mark(message)
        return messages

    def process_training_data(self, training_data):  # nothing to learn
        return training_data

    def _mark(self, message: Message) -> None:
        text = message.get(TEXT) or ""
        if not text.strip() or text.startswith("/"):
            return
        detection = self.detector.detect(text, message.get(SPACY_DOC))
        intent = message.get(INTENT) or {}
        if detection.escalates:
            tier, signs = detection.tier, detection.signs
        elif (
            not detection.is_question
            and detection.hinted
            and intent.get(INTENT_NAME_KEY) == INTENT_NAME
            and intent.get(PREDICTED_CONFIDENCE_KEY, 0.0) >= self.config["classifier_threshold"]
        ):
            tier, signs = "unclear", []
        else:
            if intent.get(INTENT_NAME_KEY) == INTENT_NAME:
                self._demote(message)  # a question, or an unsure guess
            return
        marked = {INTENT_NAME_KEY: INTENT_NAME, PREDICTED_CONFIDENCE_KEY: 1.0}
        message.set(INTENT, marked, add_to_output=True)
        ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != INTENT_NAME]
        message.set(INTENT_RANKING_KEY, [dict(marked)] + ranking, add_to_output=True)
        entities = list(message.get(ENTITIES) or [])
        entities.append(self._entity("red_flag_tier", tier, text))
        entities += [self._entity("red_flag_sign", sign, text) for sign in signs]
        message.set(ENTITIES, entities, add_to_output=True)

    def _demote(self, message: Message) -> None:
        """Sets DIET's untrusted red-flag guess aside.

        FallbackClassifier ran before this component and saw the guess, not the
        runner-up, which is always under its threshold (the confidences add up to
        one). So the runner-up is only taken when it is an FAQ whose answer the
        FaqConfidenceGate would let through (questions about red flags land there);
        anything else becomes nlu_fallback, never a low-confidence intent."""
        ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != INTENT_NAME]
        best = dict(ranking[0]) if ranking else {}
        name = best.get(INTENT_NAME_KEY)
        if name not in self.faq_gate.retrieval_intents or self.faq_gate.answer_is_unsure(message, name):
            best = {INTENT_NAME_KEY: "nlu_fallback", PREDICTED_CONFIDENCE_KEY: self.config["fallback_threshold"]}
            ranking = [dict(best)] + ranking
        message.set(INTENT, best, add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)

    @staticmethod
    def _entity(name: str, value: str, text: str) -> Dict[str, Any]:
        return {"entity": name, "value": value, "start": 0, "end": len(text), "extractor": "RedFlagDetectorComponent"}
