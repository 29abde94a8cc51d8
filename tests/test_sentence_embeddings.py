"""The sentence-embedding model: the genuine upstream weights, or the assistant does not start."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from components.sentence_embeddings import MODELS, ModelFileMismatch, SentenceEncoder, encoder, model_folder

NAME = "all-MiniLM-L6-v2"


def test_it_reproduces_the_models_published_similarities():
    # sentence-transformers' quickstart for all-MiniLM-L6-v2 prints 0.6660, 0.1046 and 0.1411 for these.
    vectors = encoder(NAME).encode(["The weather is lovely today.", "It's so sunny outside!",
                                    "He drove to the stadium."])
    similarities = vectors @ vectors.T
    assert np.allclose([similarities[0, 1], similarities[0, 2], similarities[1, 2]],
                       [0.6660, 0.1046, 0.1411], atol=5e-4)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_visitors_wording_lands_nearer_the_question_it_means():
    vectors = encoder(NAME).encode(["can a rub sort out the knots in my bum", "Does massage help piriformis syndrome?",
                                    "What should I wear to my appointment?"])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_batches_give_the_same_vectors_as_single_sentences():
    texts = ["short", "a much longer sentence about sciatica and the massage that might help with it", "hi"]
    together = encoder(NAME).encode(texts)
    alone = np.vstack([encoder(NAME).encode([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)


def test_a_tampered_weight_file_stops_the_model_loading(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_folder(MODELS[NAME]), folder)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileMismatch, match="not the upstream file"):
        SentenceEncoder(NAME, folder)


def test_a_missing_file_is_named(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_folder(MODELS[NAME]), folder)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ModelFileMismatch, match="tokenizer.json is missing"):
        SentenceEncoder(NAME, folder)


def test_the_licence_and_notice_travel_with_the_weights():
    folder = model_folder(MODELS[NAME])
    assert "Apache License" in (folder / "LICENSE").read_text()
    assert "all-MiniLM-L6-v2" in (folder / "NOTICE").read_text()
