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
to be close to some example (`tentative_similarity`). Near-topic questions (a knee, an acupuncture
session, a foam roller) are close to FAQ examples too; the gate also keeps the embeddings of the
`out_of_scope` examples, and an FAQ-classified message closer to one of those than to any FAQ
example (by `off_topic_margin`) becomes `out_of_scope`: a nearest-neighbour vote DIET's confidence
cannot give, since it is as sure of those as of real questions.

Two classifiers agreeing is evidence neither confidence shows: when the ResponseSelector's
best answer is too unsure to give but the closest FAQ training example belongs to that same
answer, and is close (`agreement_similarity`), the answer is given as tentative instead of a
menu.

A message of several sentences is read question by question too (components/question_parts.py):
each question is matched to its closest FAQ example. A message that would get the menu is answered
by its best-matched question when that is close (`part_similarity`): the question at the end of a
story. A second question closest to another answer (`second_answer_similarity`, and closer to it
than to the first answer) adds that answer: "what should I wear, and can I eat before?". The answers
go to the action server as `faq_answers`. Measured on the held-out questions, the off-topic set and
a development set of long and two-part messages (config.yml has the figures).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.question_parts import questions
from components.sentence_embeddings import encoder
from components.sentence_featurizer import EMBEDDING_MODEL, sentence_embedding

logger = logging.getLogger(__name__)

RESPONSE_SELECTOR = "response_selector"
CERTAINTY = "faq_certainty"  # in the parse data: "sure" or "tentative" (FAQ answers only)
SIMILARITY = "faq_similarity"  # in the parse data: cosine to the closest FAQ training example
OFF_TOPIC = "out_of_scope"
EXAMPLES_FILE = "faq_examples.npy"
EXAMPLE_KEYS_FILE = "faq_example_keys.json"  # the answer ("faq/...") of each stored example, in order
OFF_TOPIC_EXAMPLES_FILE = "off_topic_examples.npy"
ANSWERS = "faq_answers"  # in the parse data: the answers to give when not only the selector's choice
MAX_ANSWERS = 2  # a third topic makes a wall of text; the visitor can ask again


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
            # An FAQ-classified message whose closest `out_of_scope` example is more similar than its
            # closest FAQ example plus this margin is off-topic (None: never).
            "off_topic_margin": None,
            "tentative_similarity": 0.0,
            # An unsure best answer whose own training example is the closest one, at least this
            # similar, is given as tentative (None: never).
            "agreement_similarity": None,
            # In a message of several sentences: the best-matched question answers a message that would
            # get the menu from this similarity up, and another question closest to another answer adds
            # it from `second_answer_similarity` up (None: messages are read whole only).
            "part_similarity": None,
            "second_answer_similarity": None,
            # Retrieval intents whose answers are checked.
            "retrieval_intents": ["faq"],
        }

    def __init__(self, config: Dict[Text, Any], model_storage: Optional[ModelStorage] = None,
                 resource: Optional[Resource] = None, examples: Optional[np.ndarray] = None,
                 example_keys: Optional[List[Text]] = None,
                 off_topic_examples: Optional[np.ndarray] = None) -> None:
        self.threshold = float(config["threshold"])
        tentative = config.get("tentative_threshold")
        self.tentative_threshold = self.threshold if tentative is None else min(float(tentative), self.threshold)
        self.ambiguity_threshold = float(config["ambiguity_threshold"])
        self.off_topic_similarity = _optional_float(config.get("off_topic_similarity"))
        self.off_topic_margin = _optional_float(config.get("off_topic_margin"))
        self.tentative_similarity = float(config.get("tentative_similarity") or 0.0)
        self.agreement_similarity = _optional_float(config.get("agreement_similarity"))
        self.part_similarity = _optional_float(config.get("part_similarity"))
        self.second_answer_similarity = _optional_float(config.get("second_answer_similarity"))
        self.retrieval_intents = set(config["retrieval_intents"])
        self._model_storage = model_storage
        self._resource = resource
        self.examples = examples  # unit-length embeddings of the FAQ training examples, once trained
        self.example_keys = example_keys  # and the answer each belongs to
        self.off_topic_examples = off_topic_examples  # unit-length embeddings of the out_of_scope examples
        self._answer_index: Optional[Tuple[List[Text], np.ndarray]] = None  # by _answers_by_example

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
                keys_file = Path(folder) / EXAMPLE_KEYS_FILE
                keys = json.loads(keys_file.read_text()) if keys_file.exists() else None
                off_topic_file = Path(folder) / OFF_TOPIC_EXAMPLES_FILE
                off_topic = np.load(off_topic_file) if off_topic_file.exists() else None
        except (ValueError, FileNotFoundError):
            examples, keys, off_topic = None, None, None
        return cls(config, model_storage, resource, examples, keys, off_topic)

    def train(self, training_data: TrainingData) -> Resource:
        embedded = [(sentence_embedding(m), m.get_full_intent()) for m in training_data.intent_examples
                    if m.get(INTENT) in self.retrieval_intents]
        embedded = [(v, key) for v, key in embedded if v is not None]
        off_topic = [v for v in (sentence_embedding(m) for m in training_data.intent_examples
                                 if m.get(INTENT) == OFF_TOPIC) if v is not None]
        if embedded:
            self.examples = np.vstack([v for v, _ in embedded]).astype(np.float32)
            self.example_keys = [key for _, key in embedded]
            self._answer_index = None
            self.off_topic_examples = np.vstack(off_topic).astype(np.float32) if off_topic else None
            with self._model_storage.write_to(self._resource) as folder:
                np.save(Path(folder) / EXAMPLES_FILE, self.examples)
                (Path(folder) / EXAMPLE_KEYS_FILE).write_text(json.dumps(self.example_keys))
                if self.off_topic_examples is not None:
                    np.save(Path(folder) / OFF_TOPIC_EXAMPLES_FILE, self.off_topic_examples)
        elif self.off_topic_similarity is not None:
            logger.warning("FaqConfidenceGate: no sentence embeddings in the training data, "
                           "so off-topic messages are judged by confidence alone.")
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            similarity, nearest_key = self.nearest(message)
            if similarity is not None:
                message.set(SIMILARITY, round(similarity, 4), add_to_output=True)
            intent = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
            if (intent in self.retrieval_intents and similarity is not None
                    and self.off_topic_similarity is not None and similarity < self.off_topic_similarity):
                self._replace_intent(message, OFF_TOPIC)
                continue
            certainty = self.certainty(message, similarity=similarity, nearest_key=nearest_key)
            # Only an answer about to be given is checked against the out_of_scope examples: what the
            # selector is unsure of already gets "not sure" (gibberish stays "not understood").
            if certainty and certainty != "unsure" and similarity is not None and self._near_topic(message, similarity):
                self._replace_intent(message, OFF_TOPIC)
                continue
            if certainty:
                certainty = self._read_question_by_question(message, certainty)
            if certainty == "unsure":
                self._replace_intent(message, DEFAULT_NLU_FALLBACK_INTENT_NAME)
            elif certainty:
                message.set(CERTAINTY, certainty, add_to_output=True)
        return messages

    def _near_topic(self, message: Message, similarity: float) -> bool:
        """True when a message classified as an FAQ is closer to an out_of_scope example than to any
        FAQ example (by `off_topic_margin`): a question next to the topic, not on it."""
        if self.off_topic_margin is None or self.off_topic_examples is None:
            return False
        vector = sentence_embedding(message)
        nearest_off_topic = float(np.max(self.off_topic_examples @ vector.astype(np.float32)))
        return nearest_off_topic > similarity + self.off_topic_margin

    def _read_question_by_question(self, message: Message, certainty: Text) -> Text:
        """Sets `faq_answers` when the message's questions, read one by one, call for other answers
        than the selector's choice; returns the certainty of what will be answered."""
        if self.part_similarity is None and self.second_answer_similarity is None:
            return certainty
        asked = self._questions_by_topic(message)
        if not asked:
            return certainty
        chosen = self._chosen_key(message)
        answers = [chosen] if certainty != "unsure" and chosen else []
        if not answers:
            best = max(asked, key=lambda question: question[1])
            if self.part_similarity is None or best[1] < self.part_similarity:
                return certainty
            answers, certainty = [best[0]], "tentative"
        if self.second_answer_similarity is not None:
            for key, similarity, by_key in asked:
                if (len(answers) < MAX_ANSWERS and key not in answers and similarity >= self.second_answer_similarity
                        and all(by_key.get(answered, -1.0) < similarity for answered in answers)):
                    answers.append(key)
        if answers != [chosen]:
            message.set(ANSWERS, answers, add_to_output=True)
        return certainty

    def _questions_by_topic(self, message: Message) -> List[Tuple[Text, float, Dict[Text, float]]]:
        """For each question of a message of several parts: its closest answer, that similarity, and its
        similarity to every answer (by each answer's closest example)."""
        model = message.get(EMBEDDING_MODEL)
        if self.examples is None or not self.example_keys or not model:
            return []
        asked = questions(message.get(TEXT) or "")
        if not asked:
            return []
        names, rows = self._answers_by_example()
        found = []
        for similarities in encoder(model).encode(asked) @ self.examples.T:
            best = np.full(len(names), -1.0, dtype=np.float32)
            np.maximum.at(best, rows, similarities)  # each answer's closest example
            top = int(np.argmax(best))
            found.append((names[top], float(best[top]), dict(zip(names, best.tolist()))))
        return found

    def _answers_by_example(self) -> Tuple[List[Text], np.ndarray]:
        """The distinct answer keys, and for each stored example the index of its answer (computed once)."""
        if self._answer_index is None:
            names = sorted(set(self.example_keys))
            position = {name: i for i, name in enumerate(names)}
            self._answer_index = (names, np.array([position[k] for k in self.example_keys]))
        return self._answer_index

    @staticmethod
    def _chosen_key(message: Message) -> Optional[Text]:
        intent = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
        ranking = ((message.get(RESPONSE_SELECTOR) or {}).get(intent) or {}).get("ranking") or []
        return ranking[0].get("intent_response_key") if ranking else None

    def _replace_intent(self, message: Message, name: Text) -> None:
        replaced = {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: self.threshold}
        message.data[INTENT] = replaced
        message.data.setdefault(INTENT_RANKING_KEY, [])
        message.data[INTENT_RANKING_KEY].insert(0, dict(replaced))

    def nearest(self, message: Message) -> Tuple[Optional[float], Optional[Text]]:
        """Cosine between the message and its closest FAQ training example, and that example's
        answer key (None, None if unknown; the key is None for models trained without keys)."""
        if self.examples is None:
            return None, None
        vector = sentence_embedding(message)
        if vector is None:
            return None, None
        similarities = self.examples @ vector.astype(np.float32)
        closest = int(np.argmax(similarities))
        key = self.example_keys[closest] if self.example_keys else None
        return float(similarities[closest]), key

    def answer_is_unsure(self, message: Message, intent: Optional[Text] = None) -> bool:
        """True when `intent` (by default the message's) is an FAQ whose chosen answer is too
        unsure to give (also used by the red-flag detector for the intent it falls back to)."""
        return self.certainty(message, intent) == "unsure"

    def certainty(self, message: Message, intent: Optional[Text] = None,
                  similarity: Optional[float] = None, nearest_key: Optional[Text] = None) -> Optional[Text]:
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
        if best >= self.tentative_threshold and close_enough:
            return "tentative"
        agrees = (self.agreement_similarity is not None and similarity is not None
                  and similarity >= self.agreement_similarity
                  and nearest_key == ranking[0].get("intent_response_key"))
        return "tentative" if agrees else "unsure"


def _optional_float(value: Any) -> Optional[float]:
    return None if value is None else float(value)
