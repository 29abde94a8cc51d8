"""The learned red-flag layer gives the trained model's own probabilities, computed block by block."""
import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from components.red_flag_classifier import RedFlagClassifier, load_corpus
from tests.test_faq_data import normalise
from tests.test_red_flags import cases

TEXTS = ["I wet myself and can't feel down there", "numb groin since this morning",
         "lost thirty pounds without trying", "my foot slaps when I walk now",
         "pain for six weeks and getting worse", "it has lasted two months",
         "what should I wear to my massage", "can I book for friday"]
TIERS = ["emergency", "emergency", "urgent", "urgent", "see_doctor", "see_doctor", "none", "none"]


@pytest.fixture()
def layer():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(TEXTS), 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    config = {**RedFlagClassifier.get_default_config(), "embedding_weight": 0.7}
    layer = RedFlagClassifier(config, model_storage=None, resource=None)
    words = TfidfVectorizer(analyzer="word").fit(TEXTS)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)).fit(TEXTS)
    features = layer._stack(words.transform(TEXTS), chars.transform(TEXTS), vectors)
    model = LogisticRegression(C=4.0, max_iter=1000).fit(features, TIERS)
    layer.classifier = {"words": words, "chars": chars, "model": model, "embedding_model": "test"}
    return layer, vectors, features


def test_probabilities_are_the_models_own(layer):
    layer, vectors, features = layer
    messages = TEXTS + ["my bum is numb and I can't pee"]
    vectors = np.vstack([vectors, vectors[0]])
    expected = layer.classifier["model"].predict_proba(
        layer._stack(layer.classifier["words"].transform(messages), layer.classifier["chars"].transform(messages),
                     vectors))
    got = layer.probabilities(messages, vectors)
    classes = list(layer.classifier["model"].classes_)
    assert np.allclose([[row[c] for c in classes] for row in got], expected, atol=1e-9)
    # and the emergency phrasing it was trained on is the most likely emergency
    assert max(got[0], key=got[0].get) == "emergency"


def test_no_test_phrasing_is_in_the_training_corpus():
    """The sets measure how the layer does on wordings it never saw: a corpus line that repeats a
    test phrasing would make its figures say more than they know."""
    corpus = {normalise(text) for text, _ in load_corpus()}
    sets = ["dev.yml", "final.yml", "unseen.yml", "indirect.yml"]
    leaked = [message for _, _, message in cases(sets) if normalise(message) in corpus]
    assert not leaked, f"test phrasings copied into data/red_flag_corpus: {leaked[:5]}"
