"""The sentence-embedding models: the genuine files, or the assistant does not start.

The fp32 upstream weights are the reference; the int8 ONNX file, which is not an upstream file,
is trusted because it gives the same vectors as that reference.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from components.sentence_embeddings import (MODELS, ModelFileMismatch, OnnxSentenceEncoder, SentenceEncoder,
                                            encoder, model_folder)

NAME = "all-MiniLM-L6-v2"
INT8 = "all-MiniLM-L6-v2-int8"
PUBLISHED = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]

# Visitors' registers, lengths and oddities: keywords, stories, typos, text-speak, emoji, slang,
# red flags told indirectly, other languages, a single word and a message longer than 256 tokens.
VARIED = [
    "sciatica", "hi", "massage price?", "piriformis stretch", "deep tissue thing for my bum",
    "wat shud i wear 2 my appt", "is it ok if i eat b4 the massage", "my wife has shooting pain down her leg",
    "Does massage help with a herniated disc?", "how many sessions will I need before it gets better",
    "can i go to the gym after a rub or should i rest", "knots in my lower back that wont go away lol",
    "Dear Sir or Madam, I am writing to enquire whether your therapists treat sciatica in the elderly.",
    "my grandson booked this for me, I am 84 and my hip and leg are sore, is that alright?",
    "bruh my leg is on fire since leg day 💀", "I can't feel my private area properly since this morning",
    "I had a little accident in my pants and didn't notice until later", "crushing weight on my chest and my left arm is numb",
    "my foot slaps the floor when I walk and my shoes catch on the stairs",
    "lost 8 kilos without trying, my jeans are falling off", "been on prednisone for two years and now my back hurts",
    "no numbness in my groin, just a sore back", "my friend had cauda equina once, what are the signs?",
    "I'm dead tired after the marathon, my legs are killing me", "Is heat or ice better during a flare up?",
    "should I sit on a cushion in the car on a long drive", "what's the difference between sciatica and a pulled hamstring",
    "is yoga pigeon pose safe when my sciatica is flaring", "trigger point therapy vs myofascial release",
    "can a rub sort out the knots in my bum", "hello! quick question about parking first. also my leg went numb",
    "do you take walk-ins on saturday", "thanks, that helped a lot", "bye!", "asdfgh qwerty",
    "¿Pueden ayudarme con la ciática?", "Kann Massage bei Ischias helfen?", "   ", "!!!???",
    "I sit at a desk 10 hours a day and my right buttock throbs by the afternoon, any tips for my chair?",
    "Since the car crash on the highway last Tuesday my back has been stiff and my toes tingle on the left",
    "my husband says I walk funny now and I keep tripping over my own foot",
    "it has been six weeks since Christmas and the pain in my leg has not changed at all",
    "how long does sciatica usually last if you do nothing about it",
    "I have had twelve massages and nothing is any better, should I keep going?",
    "what should I drink after the session, water or something else?",
    "back pain + fever + I had surgery last month, is massage ok??",
    "teh pian goes form my lowr bak to my ankel when i bend ovr",
    "I am pregnant and have sciatica, can I still have a massage?",
    "I started with a bit of stiffness in my lower back after helping my brother move house, carrying boxes up "
    "three flights of stairs all weekend, and at first I thought nothing of it, but over the following weeks it "
    "turned into a burning ache that runs from the buttock down the back of my thigh into the calf. " * 4,
]


def test_it_reproduces_the_models_published_similarities():
    # sentence-transformers' quickstart for all-MiniLM-L6-v2 prints 0.6660, 0.1046 and 0.1411 for these.
    vectors = encoder(NAME).encode(PUBLISHED)
    similarities = vectors @ vectors.T
    assert np.allclose([similarities[0, 1], similarities[0, 2], similarities[1, 2]],
                       [0.6660, 0.1046, 0.1411], atol=5e-4)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_the_int8_model_gives_the_fp32_references_vectors():
    reference, int8 = encoder(NAME).encode(VARIED), encoder(INT8).encode(VARIED)
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    # Measured: minimum 0.9963 (the blank message), mean 0.9994 on these.
    assert (reference * int8).sum(1).min() >= 0.98


def test_the_int8_model_keeps_the_published_similarities():
    vectors = encoder(INT8).encode(PUBLISHED)
    similarities = vectors @ vectors.T
    # Measured: 0.6684, 0.1055, 0.1404 (at most 0.0024 from the published values).
    assert np.allclose([similarities[0, 1], similarities[0, 2], similarities[1, 2]],
                       [0.6660, 0.1046, 0.1411], atol=5e-3)


@pytest.mark.parametrize("name", [NAME, INT8])
def test_a_visitors_wording_lands_nearer_the_question_it_means(name):
    vectors = encoder(name).encode(["can a rub sort out the knots in my bum", "Does massage help piriformis syndrome?",
                                    "What should I wear to my appointment?"])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


@pytest.mark.parametrize("name", [NAME, INT8])
def test_batches_give_the_same_vectors_as_single_sentences(name):
    texts = ["short", "a much longer sentence about sciatica and the massage that might help with it", "hi"]
    together = encoder(name).encode(texts)
    alone = np.vstack([encoder(name).encode([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)


def _tampered_copy(name, file, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_folder(MODELS[name]), folder)
    data = bytearray((folder / file).read_bytes())
    data[-1] ^= 0x01  # one bit
    (folder / file).write_bytes(bytes(data))
    return folder


def test_a_tampered_weight_file_stops_the_model_loading(tmp_path):
    with pytest.raises(ModelFileMismatch, match="model.safetensors has sha256 .* not the pinned file"):
        SentenceEncoder(NAME, _tampered_copy(NAME, "model.safetensors", tmp_path))


def test_a_tampered_onnx_file_stops_the_int8_model_loading(tmp_path):
    with pytest.raises(ModelFileMismatch, match="model.onnx has sha256 .* not the pinned file"):
        OnnxSentenceEncoder(INT8, _tampered_copy(INT8, "model.onnx", tmp_path))


def test_a_missing_file_is_named(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_folder(MODELS[NAME]), folder)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ModelFileMismatch, match="tokenizer.json is missing"):
        SentenceEncoder(NAME, folder)


def test_the_licence_and_notice_travel_with_the_weights():
    # The int8 package has no licence file; it is only usable with this package's tokenizer.
    folder = model_folder(MODELS[NAME])
    assert "Apache License" in (folder / "LICENSE").read_text()
    assert "all-MiniLM-L6-v2" in (folder / "NOTICE").read_text()
