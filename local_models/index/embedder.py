"""Sentence embeddings for the code index: a BERT GGUF (``embed_model``) through llama.cpp.

``Embedder(path).embed(texts)`` returns one L2-normalised float32 vector per text (384 numbers
for all-MiniLM-L6-v2), as sentence-transformers would: each text is WordPiece-tokenised by
llama.cpp, cut to ``max_tokens`` word pieces including ``[CLS]`` and ``[SEP]`` (256, the model's
``max_seq_length``; ``[SEP]`` stays last), run through BERT, mean-pooled over its tokens and
normalised.

Batches. ``embed`` works through the texts ``batch_size`` at a time: after each batch it reports
``progress(done, total)``, and before each it asks ``cancelled()``; a yes raises
``EmbedCancelled`` carrying the vectors already computed, so a caller keeps them. Inside a batch,
consecutive texts share one llama.cpp call up to ``max_batch_tokens`` tokens (each its own
sequence id, positions from 0, pooled separately). The budget matters: llama.cpp encodes a
non-causal batch as one attention block over all its tokens (other sequences masked), so the
cost grows with the square of the call's size. Measured on 30-line chunks (~250 pieces): one
call for 8 such chunks (2048 tokens) ran at half the speed of one call per chunk, while short
texts (~20 pieces) gain ~40 % from sharing a call; 512 tokens is near the best for both.

Where it runs: llama.cpp is heavy and blocking, so never in the editor's process.
``embed_worker`` hosts one ``Embedder`` in a process of its own at a lower CPU priority, and
``embed_client.EmbedWorker`` is the editor's side of it; the engine worker could host one too
(an ``embed`` request). An ``Embedder`` imports no Qt and holds no global state beyond
llama.cpp's backend. It is not thread-safe (one ``embed`` at a time), but ``cancelled`` may read
a flag that another thread sets.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Sequence

import llama_cpp.llama_cpp as C
import numpy as np
import numpy.typing as npt

from local_models.gguf_info import ModelError, read_model_info
from local_models.index.embed_client import EmbedCancelled
from local_models.llama_runtime import cpu_has_amx, free_llama, init_llama

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_BATCH_TOKENS",
    "DEFAULT_THREADS",
    "EmbedCancelled",
    "Embedder",
    "ModelError",
]

# Chosen by measurement on the 2-core machine (figures in the H5 report). One thread: the editor,
# the completion worker and other processes share the two cores, and ggml's second thread stalls
# whenever another process holds a core (2 threads ran at a third of 1 thread's speed under
# load). 8 texts per batch: progress and cancel every ~1-2 s on 30-line chunks; larger batches
# are no faster, since a llama.cpp call holds at most DEFAULT_BATCH_TOKENS anyway.
DEFAULT_BATCH_SIZE = 8
DEFAULT_THREADS = 1
DEFAULT_BATCH_TOKENS = 512
_MAX_BATCH = 64  # sequences per llama.cpp batch (n_seq_max); more gains nothing


class Embedder:
    """One BERT embedding model and one llama.cpp context; see the module docstring."""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_threads: int = DEFAULT_THREADS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_tokens: int | None = None,
        max_batch_tokens: int = DEFAULT_BATCH_TOKENS,
    ) -> None:
        self._model = self._ctx = None
        self._batch: C.llama_batch | None = None
        if not 1 <= batch_size <= _MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{_MAX_BATCH}, not {batch_size}")
        info = read_model_info(model_path)  # ModelError for a missing / foreign / damaged file
        if info.architecture != "bert":
            raise ModelError(
                f"{info.path} is a {info.architecture!r} model, not a BERT embedding model"
            )
        init_llama()
        mparams = C.llama_model_default_params()
        mparams.use_extra_bufts = not cpu_has_amx()  # as the engine does (AMX tile crash)
        self._model = C.llama_model_load_from_file(os.fsencode(str(info.path)), mparams)
        if not self._model:
            raise ModelError(f"llama.cpp could not load {info.path} (damaged file?)")
        try:
            self._vocab = C.llama_model_get_vocab(self._model)
            self.dim = int(C.llama_model_n_embd(self._model))
            trained = int(C.llama_model_n_ctx_train(self._model))
            declared = self._meta_int("forecode.max_seq_length")
            limit = max_tokens or declared or trained
            self.max_tokens = max(3, min(limit, trained))
            self.batch_size = batch_size
            self.n_threads = n_threads
            self.normalize = self._meta_str("forecode.normalize") != "false"
            self.path = info.path
            capacity = max(self.max_tokens, min(max_batch_tokens, self.max_tokens * batch_size))
            self.max_batch_tokens = capacity
            cparams = C.llama_context_default_params()
            cparams.embeddings = True
            cparams.pooling_type = C.LLAMA_POOLING_TYPE_UNSPECIFIED  # the model's (mean)
            cparams.n_ctx = capacity
            cparams.n_batch = capacity
            cparams.n_ubatch = capacity  # a non-causal batch is encoded in one piece
            cparams.n_seq_max = batch_size
            cparams.n_threads = n_threads
            cparams.n_threads_batch = n_threads
            cparams.no_perf = True
            cparams.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_ENABLED
            ctx = C.llama_init_from_model(self._model, cparams)
            if not ctx:
                cparams.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_AUTO
                ctx = C.llama_init_from_model(self._model, cparams)
            if not ctx:
                raise ModelError(
                    f"llama.cpp could not create an embedding context for "
                    f"{info.path} ({capacity} tokens: out of memory?)"
                )
            self._ctx = ctx
            if C.llama_pooling_type(ctx) == C.LLAMA_POOLING_TYPE_NONE:
                raise ModelError(f"{info.path} declares no pooling: not a sentence embedder")
            self._batch = C.llama_batch_init(capacity, 0, 1)
            self._sep = int(C.llama_vocab_sep(self._vocab))
        except BaseException:
            self.close()
            raise

    # --- public API ----------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """The ids the model sees for ``text``: ``[CLS] pieces [SEP]``, at most ``max_tokens``."""
        self._check_open()
        data = text.encode("utf-8", errors="replace")
        cap = len(data) + 8
        while True:
            buf = (C.llama_token * cap)()
            n = C.llama_tokenize(self._vocab, data, len(data), buf, cap, True, False)
            if n >= 0:
                ids = list(buf[:n])
                break
            cap = -n + 8
        if len(ids) > self.max_tokens:  # keep [SEP] last, as sentence-transformers truncates
            ids = [*ids[: self.max_tokens - 1], ids[-1]]
        return ids

    def embed(
        self,
        texts: Sequence[str],
        *,
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> npt.NDArray[np.float32]:
        """An ``(len(texts), dim)`` float32 array, one (normalised) embedding per text.

        ``progress(done, total)`` after each batch; ``cancelled()`` before each batch (a true
        answer raises ``EmbedCancelled`` with the vectors done so far).
        """
        self._check_open()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        total = len(texts)
        for start in range(0, total, self.batch_size):
            if cancelled is not None and cancelled():
                raise EmbedCancelled(out[:start].copy())
            chunk = texts[start : start + self.batch_size]
            seqs = [self.tokenize(t) for t in chunk]
            row = start
            for group in self._groups(seqs):
                out[row : row + len(group)] = self._encode(group)
                row += len(group)
            if progress is not None:
                progress(start + len(chunk), total)
        return out

    def close(self) -> None:
        free_llama(self._batch, self._ctx, self._model)
        self._batch = self._ctx = self._model = None

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # --- internals -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if not self._ctx:
            raise RuntimeError("the embedder is closed")

    def _meta_str(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(64)
        n = C.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode() if n >= 0 else None

    def _meta_int(self, key: str) -> int | None:
        value = self._meta_str(key)
        return int(value) if value is not None and value.isdigit() else None

    def _groups(self, seqs: list[list[int]]) -> list[list[list[int]]]:
        """Consecutive runs of sequences that fit one llama.cpp call (``max_batch_tokens``)."""
        groups: list[list[list[int]]] = []
        size = self.max_batch_tokens + 1
        for ids in seqs:
            if size + len(ids) > self.max_batch_tokens:
                groups.append([])
                size = 0
            groups[-1].append(ids)
            size += len(ids)
        return groups

    def _encode(self, seqs: list[list[int]]) -> npt.NDArray[np.float32]:
        """One llama.cpp call for up to ``batch_size`` token sequences; their pooled vectors."""
        b = self._batch
        assert b is not None
        i = 0
        for s, ids in enumerate(seqs):
            for pos, tok in enumerate(ids):
                b.token[i] = tok
                b.pos[i] = pos
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = s
                b.logits[i] = 1
                i += 1
        b.n_tokens = i
        mem = C.llama_get_memory(self._ctx)
        if mem:
            C.llama_memory_clear(mem, True)
        rc = C.llama_decode(self._ctx, b)
        if rc != 0:
            raise RuntimeError(
                f"llama.cpp failed to encode a batch of {len(seqs)} texts ({i} tokens; code {rc})"
            )
        vecs = np.empty((len(seqs), self.dim), dtype=np.float32)
        for s in range(len(seqs)):
            ptr = C.llama_get_embeddings_seq(self._ctx, s)
            if not ptr:
                raise RuntimeError("llama.cpp returned no pooled embedding")
            vecs[s] = np.ctypeslib.as_array(ptr, shape=(self.dim,))
        if self.normalize:
            norms = np.linalg.norm(vecs, axis=1, keepdims=True)
            vecs /= np.maximum(norms, 1e-12)
        return vecs
