"""Rasa NLU component: the learned red-flag layer (it suspects, never clears).

The hand-written patterns (components/red_flags.py) stay in charge: what they
find is escalated, whatever this layer says. This layer catches what they miss
by wording ("found a mess in my pants", "an elephant sitting on my chest"): a
logistic regression over the message's sentence embedding and its word and
character n-grams, trained on data/red_flag_corpus/ (hand-written red-flag and
hard harmless phrasings, per tier and sign) plus every NLU training example of
another intent as harmless. Its output, `red_flag_suspicion`, is read by the
RedFlagDetectorComponent, which turns a suspicion into a safety check that
names the emergency signs: a visitor is asked, never told they have an
emergency, on a guess.

Rasa's training cache cannot see the corpus files, so scripts/train_if_changed.py
retrains from scratch (--force) when they change.
"""
from __future__ import annotations

import logging
import pickle
import random
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple

import numpy as np
import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from scipy import sparse
from scipy.special import softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from components.sentence_embeddings import encoder
from components.sentence_featurizer import EMBEDDING_MODEL, sentence_embedding

logger = logging.getLogger(__name__)

CORPUS_DIR = Path(__file__).resolve().parent.parent / "data" / "red_flag_corpus"
SUSPICION = "red_flag_suspicion"
HARMLESS = "none"
RED_FLAG_INTENT = "report_red_flag"
# Openings a red flag is often tucked behind ("the red flag in the second sentence of a booking
# question"): each red-flag phrasing is also learned behind one of them, so the harmless opening
# does not outweigh it. Taken from nothing the tests use.
LEAD_INS = [
    "hi, do you have anything free on saturday?", "hello! quick question about parking first.",
    "I booked a deep tissue massage for friday.", "how much is a 60 minute session?",
    "good morning, I have a question.", "my sciatica has been bad all week.",
    "can I book for tomorrow afternoon?", "thanks for the info earlier.",
]


def load_corpus(folder: Path = CORPUS_DIR) -> List[Tuple[str, str]]:
    """(text, tier) pairs from every corpus file; tier 'none' for harmless phrasings."""
    pairs: List[Tuple[str, str]] = []
    for path in sorted(folder.glob("*.yml")):
        content = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("red_flag_corpus") or {}
        tier = content.get("tier")
        groups = content.get("signs") or content.get("kinds") or {}
        if tier not in ("emergency", "urgent", "see_doctor", HARMLESS) or not groups:
            raise ValueError(f"{path}: expected red_flag_corpus with a tier and signs/kinds")
        for phrasings in groups.values():
            pairs += [(str(text).strip(), tier) for text in phrasings or [] if str(text).strip()]
    return pairs


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class RedFlagClassifier(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "corpus": str(CORPUS_DIR),
            # Inverse regularisation strength of the logistic regression.
            "C": 4.0,
            # Weight of the embedding beside the tf-idf n-grams (both unit length).
            "embedding_weight": 1.0,
            "random_seed": 42,
        }

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 classifier: Optional[Dict[str, Any]] = None) -> None:
        self.config = config
        self._model_storage = model_storage
        self._resource = resource
        self.classifier = classifier  # {"words", "chars", "model", "embedding_model"} once trained
        self._weights = None  # the model's weights split by feature block, on first use

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "RedFlagClassifier":
        return cls(config, model_storage, resource)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "RedFlagClassifier":
        try:
            with model_storage.read_from(resource) as folder:
                classifier = pickle.loads((Path(folder) / "classifier.pkl").read_bytes())
        except (ValueError, FileNotFoundError):
            logger.warning("No trained red-flag classifier in the model: the patterns work alone.")
            classifier = None
        return cls(config, model_storage, resource, classifier)

    # --- training -------------------------------------------------------------------------
    def train(self, training_data: TrainingData) -> Resource:
        texts, labels = self.training_set(training_data, Path(self.config["corpus"]))
        # The featurizer's model, so the vectors it adds to live messages are the ones trained on.
        models = {m.get(EMBEDDING_MODEL) for m in training_data.intent_examples} - {None}
        if len(models) != 1:
            raise ValueError("RedFlagClassifier needs one SentenceEmbeddingFeaturizer before it in the pipeline")
        embedding_model = models.pop()
        vectors = encoder(embedding_model).encode(texts)
        words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                token_pattern=r"(?u)\b\w[\w']*\b")
        chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=3, sublinear_tf=True)
        features = self._stack(words.fit_transform(texts), chars.fit_transform(texts), vectors)
        model = LogisticRegression(C=self.config["C"], class_weight="balanced", max_iter=3000,
                                   random_state=self.config["random_seed"])
        model.fit(features, labels)
        self.classifier = {"words": words, "chars": chars, "model": model, "embedding_model": embedding_model}
        self._weights = None
        with self._model_storage.write_to(self._resource) as folder:
            (Path(folder) / "classifier.pkl").write_bytes(pickle.dumps(self.classifier))
        logger.info("Red-flag classifier trained on %d phrasings", len(texts))
        return self._resource

    def training_set(self, training_data: TrainingData, corpus: Path) -> Tuple[List[str], List[str]]:
        rng = random.Random(self.config["random_seed"])
        pairs = load_corpus(corpus)
        flagged = [(t, tier) for t, tier in pairs if tier != HARMLESS]
        pairs += [(f"{rng.choice(LEAD_INS)} {t}", tier) for t, tier in flagged]
        # Everything visitors ask that is not a red flag report: FAQ, booking, chit-chat.
        pairs += [(m.get(TEXT), HARMLESS) for m in training_data.intent_examples
                  if m.get(TEXT) and m.get(INTENT) != RED_FLAG_INTENT]
        seen, texts, labels = set(), [], []
        for text, tier in pairs:
            key = re.sub(r"\s+", " ", text.lower())
            if key not in seen:
                seen.add(key)
                texts.append(text)
                labels.append(tier)
        return texts, labels

    def _stack(self, words, chars, vectors: np.ndarray):
        return sparse.hstack([words, chars, sparse.csr_matrix(vectors * self.config["embedding_weight"])]).tocsr()

    # --- inference ------------------------------------------------------------------------
    def probabilities(self, texts: List[str], vectors: np.ndarray) -> List[Dict[str, float]]:
        c = self.classifier
        words, chars = c["words"].transform(texts), c["chars"].transform(texts)
        if self._weights is None:
            self._weights = self._split_weights(words.shape[1], chars.shape[1])
        w_words, w_chars, w_vectors, bias = self._weights
        # The model's own softmax, one block of features at a time: stacking the three blocks into
        # one sparse matrix for predict_proba cost 0.35 ms of the 0.4 ms this takes per message.
        scores = np.asarray(words @ w_words + chars @ w_chars) + (vectors * self.config["embedding_weight"]) @ w_vectors + bias
        rows = softmax(scores, axis=1)
        return [dict(zip(c["model"].classes_, map(float, row))) for row in rows]

    def _split_weights(self, n_words: int, n_chars: int):
        model = self.classifier["model"]
        if model.coef_.shape[0] != len(model.classes_):
            raise ValueError("RedFlagClassifier expects a multinomial model (one row of weights per tier)")
        coef = model.coef_.T
        return (coef[:n_words].copy(), coef[n_words:n_words + n_chars].copy(),
                coef[n_words + n_chars:].copy(), model.intercept_)

    def process(self, messages: List[Message]) -> List[Message]:
        if self.classifier is None:
            return messages
        todo = [m for m in messages if (m.get(TEXT) or "").strip() and not m.get(TEXT).startswith("/")]
        if not todo:
            return messages
        vectors = []
        for message in todo:
            vector = sentence_embedding(message)
            vectors.append(vector if vector is not None
                           else encoder(self.classifier["embedding_model"]).encode([message.get(TEXT)])[0])
        for message, probabilities in zip(todo, self.probabilities([m.get(TEXT) for m in todo], np.vstack(vectors))):
            flagged = {t: p for t, p in probabilities.items() if t != HARMLESS}
            tier = max(flagged, key=flagged.get)
            message.set(SUSPICION, {"tier": tier, "probability": round(sum(flagged.values()), 4),
                                    "probabilities": {t: round(p, 4) for t, p in probabilities.items()}},
                        add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
