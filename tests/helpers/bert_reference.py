"""A reference for the embedder: BERT's WordPiece tokenizer and forward pass in plain numpy.

Written from the model's own description (``config.json``, ``vocab.txt``, the tokenizer's
normaliser settings, sentence-transformers' mean pooling + L2 normalisation), independently of
llama.cpp, so that the two can be compared. Exact (erf) GELU as in Hugging Face's BERT; float32
matrix products, like PyTorch on a CPU.
"""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

from local_models.index.embed_model import SourceModel, read_safetensors

# --- WordPiece, as BertTokenizer(do_lower_case=True) does it -----------------------------------


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return any(
        lo <= cp <= hi
        for lo, hi in (
            (0x4E00, 0x9FFF),
            (0x3400, 0x4DBF),
            (0x20000, 0x2A6DF),
            (0x2A700, 0x2B73F),
            (0x2B740, 0x2B81F),
            (0x2B820, 0x2CEAF),
            (0xF900, 0xFAFF),
            (0x2F800, 0x2FA1F),
        )
    )


class WordPiece:
    """Normalise (clean, CJK spacing, lower-case, strip accents), split on whitespace and
    punctuation, then greedy longest-match-first word pieces with the ``##`` prefix."""

    def __init__(self, vocab: list[str], *, max_chars_per_word: int = 100) -> None:
        self.vocab = {piece: i for i, piece in enumerate(vocab)}
        self.max_chars = max_chars_per_word
        self.cls, self.sep, self.unk = (self.vocab[t] for t in ("[CLS]", "[SEP]", "[UNK]"))

    def _normalise(self, text: str) -> str:
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_whitespace(ch):
                out.append(" ")
            elif _is_cjk(cp):
                out.append(f" {ch} ")
            else:
                out.append(ch)
        text = unicodedata.normalize("NFD", "".join(out).lower())
        return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")

    def _words(self, text: str) -> list[str]:
        words: list[str] = []
        for chunk in self._normalise(text).split():
            current = ""
            for ch in chunk:
                if _is_punctuation(ch):
                    if current:
                        words.append(current)
                    words.append(ch)
                    current = ""
                else:
                    current += ch
            if current:
                words.append(current)
        return words

    def _pieces(self, word: str) -> list[int]:
        if len(word) > self.max_chars:
            return [self.unk]
        ids: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk]
            ids.append(found)
            start = end
        return ids

    def encode(self, text: str, max_length: int) -> list[int]:
        """[CLS] pieces [SEP], truncated to ``max_length`` ids in all."""
        ids = [i for w in self._words(text) for i in self._pieces(w)]
        return [self.cls, *ids[: max_length - 2], self.sep]


# --- the forward pass --------------------------------------------------------------------------


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to ~1e-7 (Abramowitz & Stegun 7.1.26); numpy has none and scipy is not installed."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-a * a))


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class ReferenceBert:
    """sentence-transformers' all-MiniLM-L6-v2: BERT, mean pooling, L2 normalisation."""

    def __init__(self, source: SourceModel) -> None:
        cfg = source.config
        self.eps = float(cfg["layer_norm_eps"])
        self.n_heads = int(cfg["num_attention_heads"])
        self.n_layers = int(cfg["num_hidden_layers"])
        self.max_length = source.max_seq_length
        raw = read_safetensors(source.folder / "model.safetensors")
        self.w: dict[str, np.ndarray] = {k: np.asarray(v, dtype=np.float32) for k, v in raw.items()}
        self.tokenizer = WordPiece(source.vocab)

    def _p(self, name: str) -> np.ndarray:
        return self.w[name]

    def hidden(self, ids: list[int]) -> np.ndarray:
        p = self._p
        n = len(ids)
        x = (
            p("embeddings.word_embeddings.weight")[ids]
            + p("embeddings.position_embeddings.weight")[:n]
            + p("embeddings.token_type_embeddings.weight")[0]
        )
        x = _layer_norm(
            x, p("embeddings.LayerNorm.weight"), p("embeddings.LayerNorm.bias"), self.eps
        )
        d = x.shape[1]
        hd = d // self.n_heads
        for i in range(self.n_layers):
            pre = f"encoder.layer.{i}."

            def lin(name: str, h: np.ndarray, pre: str = pre) -> np.ndarray:
                return h @ p(pre + name + ".weight").T + p(pre + name + ".bias")

            q = lin("attention.self.query", x).reshape(n, self.n_heads, hd).transpose(1, 0, 2)
            k = lin("attention.self.key", x).reshape(n, self.n_heads, hd).transpose(1, 0, 2)
            v = lin("attention.self.value", x).reshape(n, self.n_heads, hd).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            scores -= scores.max(-1, keepdims=True)
            att = np.exp(scores)
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(1, 0, 2).reshape(n, d)
            x = _layer_norm(
                lin("attention.output.dense", ctx) + x,
                p(pre + "attention.output.LayerNorm.weight"),
                p(pre + "attention.output.LayerNorm.bias"),
                self.eps,
            )
            h = lin("intermediate.dense", x)
            h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
            x = _layer_norm(
                lin("output.dense", h) + x,
                p(pre + "output.LayerNorm.weight"),
                p(pre + "output.LayerNorm.bias"),
                self.eps,
            )
        return x

    def embed(self, text: str) -> np.ndarray:
        ids = self.tokenizer.encode(text, self.max_length)
        v = self.hidden(ids).mean(0)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def tokens(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, self.max_length)


def load_reference(folder: Path | None = None) -> ReferenceBert:
    from local_models.index.embed_model import source_model

    return ReferenceBert(source_model(folder))


__all__: list[Any] = ["ReferenceBert", "WordPiece", "load_reference"]
