"""Rasa NLU component: marks every message that reports a red-flag symptom.

Runs last in the pipeline, on every message, and does not depend on the intent
classifier: a misclassified emergency is the worst failure this assistant can
have. Three layers, the deterministic one in charge:

1. The patterns in spacy_pipeline/red_flags.yml. What they find is escalated:
   the intent becomes `report_red_flag` (confidence 1.0, so no fallback or FAQ
   answer can win) with two entities, `red_flag_tier` (emergency / urgent /
   see_doctor) and `red_flag_sign`. Nothing below can take that away.
2. The learned layer (components/red_flag_classifier.py): when it suspects a
   red flag the patterns did not find, the tier is `unclear`, which the action
   answers with a safety check (the emergency signs named, the emergency
   number, "yes"/"no" quick replies; a yes escalates).
3. The intent classifier's own `report_red_flag` guess, when confident and the
   message mentions one of the patterns' `classifier_hints` (empty: measured,
   it added nothing the first two did not catch).

Otherwise DIET's `report_red_flag` guess is set aside, and a question *about* a
red flag ("what is cauda equina?") is left to the FAQ answers. Each layer's
verdict is in the parse output under `red_flag_layers`, to measure them apart.
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
from components.red_flag_classifier import SUSPICION
from components.red_flags import PATTERNS_FILE, detector_for

INTENT_NAME = "report_red_flag"
SEVERITY = ["emergency", "urgent", "unclear", "see_doctor"]  # most serious first (as actions/red_flags.py)
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
            # The learned layer's probability of an emergency or urgent sign from which the visitor
            # gets the safety check, and of a see-a-doctor sign from which they get that advice
            # (chosen on tests/red_flags/dev.yml; see config.yml).
            "suspicion_threshold": 0.5,
            "see_doctor_threshold": 0.6,
            # When the patterns saw a sign but found it denied, over or someone else's ("no numbness
            # down there"), a suspicion counts only from this probability: word-bag models can't read
            # negation (measured on dev.yml: 14 -> 11 of 87 harmless checked, no red flag lost).
            "cleared_threshold": 0.9,
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
        learned = (message.get(SUSPICION) or {}).get("probabilities") or {}
        serious = learned.get("emergency", 0.0) + learned.get("urgent", 0.0)
        suspected = None
        needed = self.config["cleared_threshold"] if detection.cleared else self.config["suspicion_threshold"]
        if not detection.is_question:
            if serious >= needed:
                suspected = "unclear"
            elif learned.get("see_doctor", 0.0) >= self.config["see_doctor_threshold"]:
                suspected = "see_doctor"
        message.set("red_flag_layers", {
            "patterns": detection.tier, "classifier": suspected, "classifier_probabilities": learned,
            "intent": intent.get(PREDICTED_CONFIDENCE_KEY) if intent.get(INTENT_NAME_KEY) == INTENT_NAME else 0.0,
        }, add_to_output=True)
        if detection.escalates:
            tier, signs = detection.tier, detection.signs
            if suspected and SEVERITY.index(suspected) < SEVERITY.index(tier):
                tier = suspected  # the learned layer may only add caution ("see a doctor" -> safety check)
        elif suspected:
            tier, signs = suspected, []
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
