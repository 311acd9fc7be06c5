"""The local completion engine: one llama.cpp model and context, driven through the C API.

Runs inside the worker process (``local_models.worker``); no Qt here. What it adds over a plain
llama.cpp loop:

* **KV-cache reuse across requests.** The engine remembers which tokens sit in the KV cache. A
  new prompt keeps the longest common prefix, then re-uses later runs of cached tokens that
  moved (text inserted or deleted above them) by shifting their cells to the new positions
  (the idea behind llama.cpp server's ``--cache-reuse``, here in both directions). Only what no
  cached run covers is evaluated.
* **Prompt-lookup speculative decoding.** Drafts are the tokens that followed the latest earlier
  occurrence of the current n-gram in prompt + output; one batched decode verifies them and
  every emitted token is still the model's greedy choice.
* **Replay.** A request whose prompt runs into tokens the engine generated greedily (the same
  request again, or one that accepted part of the last completion) gets those tokens back
  without a decode.
* **Speculative edits** (``rewrite``): greedy decoding of a text that mostly repeats a known
  one (a file rewritten with an edit applied). The known text's tokens are the draft: long runs
  of it are verified in one batch with logits for every row, the agreeing prefix kept; after a
  disagreement the engine generates (drafting from the prompt, where the edit is) until its
  output rejoins the known text, found by an n-gram index, and speculates again from there.
* **Cancellation within one decode step**, also in the middle of a long prefill chunk (ggml's
  abort callback), leaving the cache truthful so the next request re-uses the finished work.
* **Thread fallback.** ggml's threads stall badly when another process takes a core; the
  engine notices and runs on one thread for a while (``threads.ThreadPolicy``).
* **Metrics** for every request and cumulative totals.

How the cache is laid out: every evaluated token belongs to sequences 0 and 1 together. A cell
owned by two sequences is never recycled by llama.cpp's slot search, which otherwise may
overwrite cells that fell out of the sliding window of a SWA model (Gemma 3) even with
``swa_full`` -- and those cells are needed again as soon as a later prompt diverges earlier.
Sequences 2 and 3 "park" moved runs while the text before them is evaluated: llama.cpp requires
each new batch to start right after the last position of its sequence, so runs placed after a
gap cannot sit in sequence 0 until the gap is filled.

An ``Engine`` is not thread-safe: one request at a time. ``should_stop`` may be flipped from any
thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import llama_cpp.llama_cpp as C

from forecode_core.completion.healing import may_extend
from forecode_core.completion.model import Completion, Metrics, RewriteMetrics
from local_models.engine.cache import KvLedger, SyncPlan
from local_models.engine.decode import DecodeError, Decoder, DecodeResult
from local_models.engine.drafters import (
    MAX_DRAFT,
    MEASURED_SIZES,
    ROW_COST_PRIOR,
    DraftSource,
    Proposal,
    RewriteDrafter,
    SpeculativeDrafter,
    scaled_costs,
)
from local_models.engine.output import TextOutput
from local_models.engine.threads import ThreadPolicy
from local_models.engine.vocab_index import VocabIndex
from local_models.gguf_info import ModelError, ModelInfo, read_model_info
from local_models.llama_runtime import cpu_has_amx, free_llama, init_llama

__all__ = ["Completion", "Engine", "Metrics", "ModelError", "RewriteMetrics"]

_MAIN_SEQS = (0, 1)  # every evaluated token: two owners, so its cell is never recycled
_PARK_SEQS = (2, 3)  # moved runs waiting for the text before them to be evaluated
_N_SEQ_MAX = 4

# A cancelled background warm puts the old cache's runs back when at most this many tokens
# separate them (they are evaluated again: the run search leaves a few at line joins).
_PUT_BACK_GAP = 8

# How much of the cache as it was before a request (its end: the last prompt and what the
# engine generated after it) serves as a draft source; see _generate_speculative.
_PREVIOUS_TAIL = 512
# Confidence margins (``rewrite(margins=...)``) are read for at most this many rows a request
# (each costs three passes over the vocabulary's logits: ~1-3 ms for 262k).
MAX_MARGIN_ROWS = 64
# Debugging: when a list, each rewrite batch appends (source, candidates, drafted, accepted, ms).
_TRACE: list[tuple[int, ...]] | None = None

StopCheck = Callable[[], bool]


class _Cancelled(Exception):
    pass


_VOCAB_LOCK = threading.Lock()  # one vocabulary index built at a time (``_vocab_index``)


def _may_extend(rest: bytes, piece: bytes) -> bool:
    return may_extend(rest.decode("utf-8", "replace"), piece.decode("utf-8", "replace"))


def _default_threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 2
    # Logical CPUs above 4 are usually hyper-threads: llama.cpp decodes best on physical cores.
    return max(1, min(8, n if n <= 4 else n // 2))


def _reuse_note(can_shift: bool, min_reuse_chunk: int) -> str | None:
    """Why moved runs of the cache are not re-used (None: they are)."""
    if not can_shift:
        return "this model's KV cache cannot be shifted: only common prefixes are re-used"
    if min_reuse_chunk <= 0:
        return "chunk reuse disabled (min_reuse_chunk <= 0)"
    return None


def _load_model(info: ModelInfo) -> Any:
    mparams = C.llama_model_default_params()
    # The extra (repacked / AMX) weight buffers crash in ggml's AMX kernels on CPUs with
    # AMX tiles when the worker threads lack tile permission; plain buffers are safe.
    mparams.use_extra_bufts = not cpu_has_amx()
    model = C.llama_model_load_from_file(os.fsencode(str(info.path)), mparams)
    if not model:
        raise ModelError(
            f"llama.cpp could not load {info.path} ({info.architecture} "
            "model: unsupported architecture or damaged file?)"
        )
    return model


def _model_and_info(
    model_path: str | os.PathLike[str], model_of: Engine | None
) -> tuple[ModelInfo, Any]:
    """The model's header and its llama.cpp model: loaded, or ``model_of``'s (a sibling)."""
    if model_of is not None:
        model_of._check_open()
        return model_of.info, model_of._model
    info = read_model_info(model_path)
    init_llama()
    return info, _load_model(info)


def _new_context(
    model: Any, n_ctx: int, n_batch: int, max_outputs: int, threads: int, flash_attn: bool = True
) -> Any:
    """A llama.cpp context for ``model`` (flash attention if it can and ``flash_attn``), or
    None."""
    cparams = C.llama_context_default_params()
    cparams.n_ctx = n_ctx
    cparams.n_batch = n_batch
    cparams.n_ubatch = n_batch
    cparams.n_seq_max = _N_SEQ_MAX
    cparams.kv_unified = True  # one cell pool: copying cells between sequences is free
    cparams.swa_full = True  # keep the whole context of SWA layers: it stays re-usable
    # At most one verify batch of logits at a time: without this cap ggml reserves a compute
    # buffer for n_batch rows of 262k logits (514 MiB instead of 26 MiB for Gemma 3).
    # ``rewrite`` verifies longer drafts: an engine made for it asks for more rows
    # (``max_outputs``; 1 MiB of logits a row for Gemma 3, twice: buffer and compute).
    cparams.n_outputs_max = max_outputs
    cparams.n_outputs_max_per_seq = 0  # ... all of them for one sequence
    cparams.n_threads = threads
    cparams.n_threads_batch = threads
    cparams.no_perf = True
    if not flash_attn:
        cparams.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_DISABLED
        return C.llama_init_from_model(model, cparams)
    cparams.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_ENABLED
    ctx = C.llama_init_from_model(model, cparams)
    if not ctx:
        cparams.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_AUTO
        ctx = C.llama_init_from_model(model, cparams)
    return ctx


class Engine:
    """One model + one context; see the module docstring. Satisfies
    ``forecode_core.completion.model.RewriteModel``.

    ``measure_batches``: an engine made for long verify batches (``max_outputs`` above the
    completion's) times them when it starts (``row_costs``); False keeps the prior costs
    (the editor's worker: its start must not wait on seconds of timing on a busy CPU).

    ``flash_attn``: llama.cpp's flash attention (default on: verify batches of up to 7 rows
    then give logits bit-identical to one-row decodes, ``drafters.MAX_DRAFT``); off, long
    verify batches cost less per row on a CPU (measured for next-edit's 32-row batches:
    ``local_models.next_edit.NEXT_EDIT_FLASH_ATTN``)."""

    _vocab_by_text: VocabIndex | None = None  # token healing's, built once (``_vocab_index``)

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        min_reuse_chunk: int = 16,
        max_outputs: int = MAX_DRAFT + 2,
        measure_batches: bool = True,
        flash_attn: bool = True,
        _model_of: Engine | None = None,
    ) -> None:
        self._closed = True
        self._model: Any = None
        self._ctx: Any = None
        self._smpl: Any = None
        self._batch: Any = None
        self._model_of = _model_of  # ``sibling``: the engine whose model this one uses
        self._siblings: list[Engine] = []
        if n_batch < 8:
            raise ValueError("n_batch must be at least 8")
        if not MAX_DRAFT + 2 <= max_outputs <= n_batch:
            raise ValueError(f"max_outputs must be between {MAX_DRAFT + 2} and n_batch")
        self.info: ModelInfo
        self.info, self._model = _model_and_info(model_path, _model_of)
        self._closed = False  # from here on close() frees what exists

        if self.info.context_length:
            n_ctx = min(n_ctx, self.info.context_length)
        threads = n_threads or _default_threads()
        ctx = _new_context(self._model, n_ctx, n_batch, max_outputs, threads, flash_attn)
        if not ctx:
            self.close()
            raise ModelError(
                f"llama.cpp could not create a context for {self.info.path} "
                f"(n_ctx={n_ctx}: out of memory?)"
            )
        self._ctx = ctx
        self._mem = C.llama_get_memory(ctx)
        self._vocab = C.llama_model_get_vocab(self._model)
        self._n_vocab = int(C.llama_vocab_n_tokens(self._vocab))
        self.n_ctx = int(C.llama_n_ctx(ctx))
        self.n_batch = n_batch
        self.max_outputs = max_outputs
        self.flash_attn = flash_attn
        self.n_threads = threads
        self._threads = ThreadPolicy(lambda n: C.llama_set_n_threads(ctx, n, n), threads)
        self.min_reuse_chunk = min_reuse_chunk

        self.can_shift = bool(C.llama_memory_can_shift(self._mem))
        self.chunk_reuse = self.can_shift and min_reuse_chunk > 0
        self.chunk_reuse_note = _reuse_note(self.can_shift, min_reuse_chunk)

        self._dec = Decoder(ctx, n_batch, _MAIN_SEQS)
        self._batch = self._dec.batch
        self._smpl = C.llama_sampler_init_greedy()

        self._kv = KvLedger(min_run=min_reuse_chunk, chunk_reuse=self.chunk_reuse)
        self._pieces: dict[int, bytes] = {}
        # Measured decode time (ms, moving average) by batch size, for choosing draft lengths.
        self._batch_ms: list[float | None] = [None] * (MAX_DRAFT + 2)
        self._eog: dict[int, bool] = {}
        self._margin_buf: Any = None  # _margin's scratch row (numpy, allocated on first use)
        self.totals = Metrics()
        if threads > 1:
            self._calibrate()
        # Per-row cost of a verify batch by size, relative to one row: measured when the
        # engine starts if it is made for long verify batches (apply), else the prior.
        self.row_costs: dict[int, float] = dict(ROW_COST_PRIOR)
        self.batch_ms: dict[int, float] = {}  # the measured decode times (ms) by size
        if max_outputs > MAX_DRAFT + 2 and measure_batches:
            self._measure_batches()

    def _measure_batches(self) -> None:
        """Time one decode with logits on every row at each of ``MEASURED_SIZES`` (the
        smaller ones twice, the best kept) after a short context, and derive ``row_costs``
        from them (``scaled_costs``). Fixed from then on (see ``drafters.best_length``)."""
        n_vocab = self._n_vocab
        base = [self.info.bos_id or 0] + [min(1000 + i, n_vocab - 1) for i in range(15)]
        sink = Metrics()
        self._clear()
        self._prefill(base, 0, len(base), None, sink)
        dec = self._dec
        at = len(base)
        took: dict[int, float] = {}
        for size in MEASURED_SIZES:
            if size > self.max_outputs:
                break
            for _ in range(2 if size <= 8 else 1):
                for i in range(size):
                    dec.put(i, min(2000 + 7 * i, n_vocab - 1), at + i)
                began = time.perf_counter()
                try:
                    ok = dec.step(size) is DecodeResult.OK
                except DecodeError:
                    ok = False
                ms = (time.perf_counter() - began) * 1000.0
                C.llama_memory_seq_rm(self._mem, -1, at, -1)
                if not ok:
                    break
                took[size] = min(ms, took.get(size, ms))
        self._clear()
        self.batch_ms = {k: round(v, 2) for k, v in took.items()}
        self.row_costs = scaled_costs(took)

    def _calibrate(self) -> None:
        """Time a one-token and a 32-token decode with one thread and with all of them, so
        that contention is recognised from the first request (see ``ThreadPolicy``; the
        32-token decode notes itself)."""
        probe = [self.info.bos_id or 0] + [min(1000 + i, self._n_vocab - 1) for i in range(31)]
        sink = Metrics()
        self._prefill(probe[:1], 0, 1, None, sink)  # first touch of the weights: not timed
        for n in (1, self._threads.max):
            self._threads.use(n)
            for size in (1, 32):
                self._clear()
                began = time.perf_counter()
                self._prefill(probe[:size], 0, size, None, sink)
                took = time.perf_counter() - began
                if size == 1:
                    self._threads.note(1, took)
        if not self._threads.tripped:
            self._threads.use(self._threads.max)
        self._clear()

    # --- public API ----------------------------------------------------------------------------

    @property
    def cached_tokens(self) -> tuple[int, ...]:
        """The tokens whose KV is in the cache, in position order."""
        return tuple(self._kv.tokens)

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]:
        self._check_open()
        data = text.encode("utf-8")
        cap = len(data) + 8
        while True:
            buf = (C.llama_token * cap)()
            n = C.llama_tokenize(self._vocab, data, len(data), buf, cap, add_bos, True)
            if n >= 0:
                return list(buf[:n])
            cap = -n + 8

    def detokenize(self, tokens: Sequence[int]) -> str:
        self._check_open()
        return b"".join(self._piece(t) for t in tokens).decode("utf-8", errors="replace")

    def warm(
        self,
        prompt: Sequence[int],
        should_stop: StopCheck | None = None,
        *,
        keep_on_cancel: bool = False,
        fresh_from: int | None = None,
    ) -> Metrics:
        """Make the KV cache hold ``prompt`` (with its last logits), generating nothing.

        ``keep_on_cancel``: if ``should_stop`` fires before the first moved run of the old
        cache is in place (the text inserted before it is still being evaluated), put the
        cache back as it was (the moved runs at their old places) instead of keeping the
        partial work: a background warm of a bigger prompt then never costs the small prompt
        it grew from."""
        self._check_open()
        start = time.perf_counter()
        tokens = self._checked_prompt(prompt)
        self._threads.begin_request()
        m = Metrics(prompt_tokens=len(tokens))
        if self._kv.replay_for(tokens) is not None:  # already there, with what follows it
            m.reused_prefix_tokens = len(tokens)
        else:
            with contextlib.suppress(_Cancelled):
                self._sync(
                    tokens, should_stop, m, keep_on_cancel=keep_on_cancel, fresh_from=fresh_from
                )
        m.prefill_ms = m.total_ms = (time.perf_counter() - start) * 1000.0
        self.totals.add(m)
        return m

    def reuse_cost(self, prompt: Sequence[int], fresh_from: int | None = None) -> int:
        """How many of ``prompt``'s tokens a request would evaluate now: those neither in the
        cache's common prefix nor in a run of the cache that can be moved (as ``_sync``)."""
        return self._kv.reuse_cost(list(prompt), fresh_from)

    def complete(
        self,
        prompt: Sequence[int],
        *,
        max_tokens: int = 64,
        stop: Sequence[str] = (),
        speculative: bool = False,
        should_stop: StopCheck | None = None,
        on_text: Callable[[str], None] | None = None,
        fresh_from: int | None = None,
        force_prefix: str = "",
    ) -> Completion:
        """Greedy completion of ``prompt``. ``fresh_from``: prompt positions from here on are
        never taken from moved runs of the cache (only from the common prefix): a moved run's
        cells were computed after other text, which is close enough far from where the text
        changed but not right after it (a FIM prompt's suffix, after the cursor: its cells
        still "see" the old text before the cursor, and the model answers for that).
        ``force_prefix``: token healing (``forecode_core.completion.healing``): the first
        tokens are the model's best among those that spell this text again (the tokens the
        caller took back from the prompt's end); the text is not part of the answer."""
        self._check_open()
        start = time.perf_counter()
        tokens = self._checked_prompt(prompt)
        self._threads.begin_request()
        if isinstance(stop, str):
            stop = (stop,)
        m = Metrics(prompt_tokens=len(tokens))
        out = self._output(stop, on_text, hidden=force_prefix)
        reason = "cancelled"
        previous = self._kv.tokens[-_PREVIOUS_TAIL:] if speculative else []
        first = 0.0
        try:
            if should_stop is not None and should_stop():
                raise _Cancelled
            pending = None if force_prefix else self._kv.replay_for(tokens)
            if pending is not None:
                m.reused_prefix_tokens = len(tokens)
            else:
                self._sync(tokens, should_stop, m, fresh_from=fresh_from)
            m.prefill_ms = (time.perf_counter() - start) * 1000.0
            if max_tokens <= 0:
                reason = "length"
            else:
                if pending is None:
                    pending = (
                        self._healed_start(force_prefix.encode(), should_stop)
                        if force_prefix
                        else [self._first_token(len(tokens))]
                    )
                first = time.perf_counter()
                m.first_token_ms = (first - start) * 1000.0
                if speculative:
                    drafter = SpeculativeDrafter(tokens, previous)
                    reason = self._generate_speculative(
                        pending, drafter, max_tokens, out, m, should_stop
                    )
                else:
                    reason = self._generate(pending, max_tokens, out, should_stop)
        except _Cancelled:
            reason = "cancelled"
        finally:
            self._settle_metrics(m, out, start, first)
        if reason != "stop":
            out.finish()
        return Completion(out.answer, out.tokens, m, reason)

    def rewrite(
        self,
        prompt: Sequence[int],
        draft: Sequence[int],
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        on_text: Callable[[str], None] | None = None,
        should_stop: StopCheck | None = None,
        max_batch: int | None = None,
        alt: Sequence[int] = (),
        margins: list[float] | None = None,
    ) -> Completion:
        """Greedy decoding after ``prompt`` with speculative edits: ``draft`` is the text the
        answer mostly repeats (the original file, tokenized). Returns the same tokens as plain
        greedy decoding (``complete``) up to batched arithmetic's rounding on near-ties (see
        ``diagnostics.rounding_noise``), much faster where the answer follows the draft.

        Verify batches hold up to ``max_batch`` tokens (default and upper bound: the engine's
        ``max_outputs``), their length chosen per batch from the acceptance so far and the cost
        of each batch size (``drafters.best_length``; deterministic: the same request takes the
        same batches). Stops at an end-of-generation token, a ``stop`` string, ``max_tokens`` or
        the context's end. ``alt``: a second text the answer may follow where it leaves
        ``draft`` (the edit's own code: the new lines are drafted from it in long runs, not
        guessed a few tokens at a time); ``should_stop`` is checked between batches and inside
        each decode (ggml's abort callback): the result is then "cancelled" with the text so
        far and the cache holds only finished work. ``metrics`` is a ``RewriteMetrics``.

        ``margins``: a list the engine appends the confidence of each token the answer did not
        take from ``draft`` (the changed text: the token where the answer leaves the draft and
        those it writes off it, at most ``MAX_MARGIN_ROWS``) to: the model's top-1 minus top-2
        probability at that position (next-edit's acceptance estimate reads it)."""
        self._check_open()
        start = time.perf_counter()
        tokens = self._checked_prompt(prompt)
        known = list(draft)
        other = list(alt)
        for seq in (known, other):
            if seq and (min(seq) < 0 or max(seq) >= self._n_vocab):
                raise ValueError("the draft holds token ids outside the vocabulary")
        limit = self.max_outputs if max_batch is None else max_batch
        if not 1 <= limit <= self.max_outputs:
            raise ValueError(f"max_batch must be between 1 and max_outputs ({self.max_outputs})")
        self._threads.begin_request()
        if isinstance(stop, str):
            stop = (stop,)
        m = RewriteMetrics(prompt_tokens=len(tokens), draft_tokens=len(known))
        out = self._output(stop, on_text)
        reason = "cancelled"
        first = 0.0
        try:
            if should_stop is not None and should_stop():
                raise _Cancelled
            self._sync(tokens, should_stop, m)
            m.prefill_ms = (time.perf_counter() - start) * 1000.0
            if max_tokens <= 0:
                reason = "length"
            else:
                pending = [self._first_token(len(tokens))]
                first = time.perf_counter()
                m.first_token_ms = (first - start) * 1000.0
                drafter = RewriteDrafter(
                    tokens, known, other, max_batch=limit, costs=self.row_costs
                )
                with self._dec.abortable(should_stop):
                    reason = self._generate_rewrite(
                        pending, drafter, max_tokens, out, m, should_stop, margins
                    )
        except _Cancelled:
            reason = "cancelled"
        finally:
            self._settle_metrics(m, out, start, first)
        if reason != "stop":
            out.finish()
        return Completion(out.text, out.tokens, m, reason)

    def score(
        self,
        prompt: Sequence[int],
        continuation: Sequence[int],
        should_stop: StopCheck | None = None,
    ) -> list[tuple[float, float]] | None:
        """The model's log-probability of each token of ``continuation`` after ``prompt`` and
        the continuation's tokens before it, beside the best log-probability at that place
        (the model's own top choice): ``[(logp, top_logp), ...]``; None when ``should_stop``
        fired. Generates nothing. The prompt's cells come from the cache as for a completion
        (a second continuation after the same prompt evaluates only its own tokens); the
        continuation is evaluated ``max_outputs`` rows a decode with logits on every row and
        stays in the cache (the ledger says so)."""
        self._check_open()
        cont = list(continuation)
        tokens = self._checked_prompt([*prompt, *cont])
        start = len(tokens) - len(cont)
        if start < 2 or not cont:
            raise ValueError("score needs a prompt of 2 tokens or more and a continuation")
        self._threads.begin_request()
        m = Metrics(prompt_tokens=len(tokens))
        began = time.perf_counter()
        try:
            # the prompt but its last token: that one is the first row with logits
            self._sync(tokens[: start - 1], should_stop, m)
            out = self._score_rows(tokens, start - 1, should_stop, m)
        except _Cancelled:
            out = None
        m.prefill_ms = m.total_ms = (time.perf_counter() - began) * 1000.0
        self.totals.add(m)
        return out

    def _score_rows(
        self, tokens: list[int], first: int, should_stop: StopCheck | None, m: Metrics
    ) -> list[tuple[float, float]]:
        """Evaluate ``tokens[first:-1]`` with logits on every row; each row's log-probability
        of the next token and its best. Raises ``_Cancelled``."""
        kv, dec = self._kv, self._dec
        kv.greedy_from = kv.successor = None
        out: list[tuple[float, float]] = []
        end = len(tokens) - 1
        with dec.abortable(should_stop):
            for s in range(first, end, self.max_outputs):
                e = min(end, s + self.max_outputs)
                if should_stop is not None and should_stop():
                    raise _Cancelled
                for row, pos in enumerate(range(s, e)):
                    dec.put(row, tokens[pos], pos)
                result = self._step(e - s, "while scoring")
                if result is not DecodeResult.OK:
                    self._recover()
                    if result is DecodeResult.CANCELLED:
                        raise _Cancelled
                    raise DecodeError(f"llama_decode failed with code {result.value} (score)")
                kv.tokens.extend(tokens[s:e])
                kv.tail = e - s - 1
                m.evaluated_tokens += e - s
                for row in range(e - s):
                    out.append(self._log_probs(row, tokens[s + row + 1]))
        return out

    def _log_probs(self, row: int, token: int) -> tuple[float, float]:
        """(log p(token), log p(top token)) of output row ``row`` of the last decode."""
        import numpy as np

        logits = self._logits(row)
        buf = self._margin_buf
        if buf is None or buf.shape != logits.shape:
            buf = self._margin_buf = np.empty_like(logits)
        hi = float(logits.max())
        np.subtract(logits, hi, out=buf)
        np.exp(buf, out=buf)
        log_total = math.log(float(buf.sum(dtype=np.float64)))
        return float(logits[token]) - hi - log_total, -log_total

    def sibling(
        self,
        *,
        n_ctx: int | None = None,
        max_outputs: int | None = None,
        flash_attn: bool | None = None,
    ) -> Engine:
        """A second engine on this one's model (the weights loaded once): its own llama.cpp
        context, KV cache and ledger, so that requests of another kind (next-edit's) keep
        their prompt's cache while this one serves completions. Same threads, batch and reuse
        settings (``flash_attn`` None: this engine's), the prior's row costs; closed when this
        engine closes (first). One thread at a time may use either (the worker's one job
        thread)."""
        self._check_open()
        twin = Engine(
            self.info.path,
            n_ctx=min(n_ctx or self.n_ctx, self.n_ctx),
            n_threads=self.n_threads,
            n_batch=self.n_batch,
            min_reuse_chunk=self.min_reuse_chunk,
            max_outputs=max_outputs or self.max_outputs,
            measure_batches=False,
            flash_attn=self.flash_attn if flash_attn is None else flash_attn,
            _model_of=self,
        )
        self._siblings.append(twin)
        return twin

    def reset(self) -> None:
        """Empty the KV cache (the next request starts cold)."""
        self._check_open()
        self._clear()

    def close(self) -> None:
        """Free the sampler, batch, context and model; further calls raise."""
        if getattr(self, "_closed", True):
            return
        for twin in self._siblings:  # their contexts before the model they use
            twin.close()
        self._siblings.clear()
        self._closed = True
        if self._smpl:
            C.llama_sampler_free(self._smpl)
            self._smpl = None
        free_llama(self._batch, self._ctx, None if self._model_of is not None else self._model)
        self._batch = self._ctx = self._model = self._model_of = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # At interpreter shutdown the C bindings may be gone already.
        with contextlib.suppress(Exception):
            self.close()

    # --- a request's frame --------------------------------------------------------------------

    def _output(
        self, stop: Sequence[str], on_text: Callable[[str], None] | None, hidden: str = ""
    ) -> TextOutput:
        return TextOutput(self._is_eog, self._piece, stop, on_text, hidden=hidden)

    def _healed_start(self, force: bytes, should_stop: StopCheck | None) -> list[int]:
        """Token healing's constrained steps after the prompt just synced: the model's best
        token among those that spell ``force`` again (``VocabIndex.compatible``), decoded and
        chosen again while ``force`` is not all spelt. Returns ``pending`` as ``_generate``
        takes it: the chosen tokens now in the cache, then the last one, not yet decoded. The
        cache's tail is not greedy (no replay from it)."""
        import numpy as np

        kv, index = self._kv, self._vocab_index()
        assert kv.tail is not None
        row, rest = kv.tail, force
        chosen: list[int] = []
        kv.greedy_from = kv.successor = None
        while True:
            ids = np.fromiter(index.compatible(rest, _may_extend), dtype=np.int64)
            if not len(ids):  # nothing spells it (cannot happen for text the vocabulary made)
                return [*chosen, int(C.llama_sampler_sample(self._smpl, self._ctx, row))]
            token = int(ids[int(np.argmax(self._logits(row)[ids]))])
            chosen.append(token)
            piece = self._piece(token)
            if len(piece) >= len(rest) or (should_stop is not None and should_stop()):
                return chosen
            rest = rest[len(piece) :]
            self._decode_one(token, len(kv.tokens))
            kv.tokens.append(token)
            kv.tail = row = 0

    def healing_ready(self) -> bool:
        """Whether token healing's vocabulary index is built (``prepare_healing``): the worker
        heals no prompt before, so no request waits for the build."""
        return self._vocab_by_text is not None

    def prepare_healing(self) -> None:
        """Build the vocabulary index token healing needs (seconds for Gemma's 262k tokens on
        a loaded machine: the worker calls it on a thread of its own after loading)."""
        self._vocab_index()

    def _vocab_index(self) -> VocabIndex:
        """The vocabulary by token text (built once, at ``prepare_healing`` or the first
        healed request), control and end-of-generation tokens left out."""
        with _VOCAB_LOCK:
            return self._build_vocab_index()

    def _build_vocab_index(self) -> VocabIndex:
        if self._vocab_by_text is None:
            vocab, size = self._vocab, 256
            buf = ctypes.create_string_buffer(size)
            to_piece, is_control, is_eog = (
                C.llama_token_to_piece,
                C.llama_vocab_is_control,
                C.llama_vocab_is_eog,
            )
            pieces: list[tuple[int, bytes]] = []
            for t in range(self._n_vocab):
                if is_control(vocab, t) or is_eog(vocab, t):
                    continue
                n = to_piece(vocab, t, buf, size, 0, True)
                pieces.append((t, buf.raw[:n] if n >= 0 else self._piece(t)))
            self._vocab_by_text = VocabIndex(pieces)
        return self._vocab_by_text

    def _first_token(self, prompt_len: int) -> int:
        """The greedy choice after the prompt just synced (its logits are the tail row)."""
        kv = self._kv
        assert kv.tail is not None
        token = int(C.llama_sampler_sample(self._smpl, self._ctx, kv.tail))
        kv.greedy_from = prompt_len
        return token

    def _settle_metrics(self, m: Metrics, out: TextOutput, start: float, first: float) -> None:
        """A request's timings and counts at its end (however it ended), added to the totals.
        ``first``: when the first token was chosen (0.0: never)."""
        end = time.perf_counter()
        if not m.prefill_ms:
            m.prefill_ms = (end - start) * 1000.0
        if first:
            m.decode_ms = (end - first) * 1000.0
        m.total_ms = (end - start) * 1000.0
        m.generated_tokens = len(out.tokens)
        self.totals.add(m)

    # --- one decode step ------------------------------------------------------------------------

    def _step(self, n_tokens: int, doing: str = "") -> DecodeResult:
        """Decode the batch's first ``n_tokens`` rows; a failure other than a full context or a
        cancel leaves the cache truthful (``_recover``) and raises ``DecodeError``."""
        try:
            return self._dec.step(n_tokens, doing)
        except DecodeError:
            self._recover()
            raise

    def _decode_one(self, token: int, pos: int) -> None:
        """Decode one token at ``pos`` with logits (row 0); any failure raises."""
        self._dec.put(0, token, pos)
        result = self._step(1)
        if result is not DecodeResult.OK:
            self._recover()
            raise DecodeError(f"llama_decode failed with code {result.value}")

    def _logits(self, row: int) -> Any:
        """The logits of output row ``row`` of the last decode (a numpy view)."""
        import numpy as np

        ptr = C.llama_get_logits_ith(self._ctx, row)
        return np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))

    # --- prompt evaluation with cache reuse -----------------------------------------------------

    def _sync(
        self,
        prompt: list[int],
        should_stop: StopCheck | None,
        m: Metrics,
        *,
        keep_on_cancel: bool = False,
        fresh_from: int | None = None,
    ) -> None:
        """Make the cache hold ``prompt`` with logits for its last token, re-using what it can
        (``KvLedger.plan``). Raises ``_Cancelled`` (cache left truthful) when ``should_stop``
        fires."""
        kv = self._kv
        plan = kv.plan(prompt, fresh_from)
        if plan.ready:
            kv.greedy_from = kv.successor = None
            m.reused_prefix_tokens = plan.prompt_len
            return
        m.reused_prefix_tokens = plan.prefix
        old = kv.tokens
        for a, b in plan.drops:  # the cells no run keeps
            C.llama_memory_seq_rm(self._mem, -1, a, -1 if b is None else b)
        if plan.runs:
            self._park(plan)
        kv.tokens = prompt[: plan.prefix]
        kv.forget()

        unparked = False
        try:
            pos = plan.prefix
            for _, p0, length in plan.runs:
                if p0 > pos:
                    self._prefill(prompt, pos, p0, should_stop, m, logits=False)
                self._unpark(p0, p0 + length)
                unparked = True
                kv.tokens.extend(prompt[p0 : p0 + length])
                m.reused_shifted_tokens += length
                pos = p0 + length
            self._prefill(prompt, pos, plan.prompt_len, should_stop, m)
        except _Cancelled:
            if keep_on_cancel and plan.runs and not unparked:
                self._put_back(plan, old)
            else:
                self._recover()
            raise
        except BaseException:
            self._recover()
            raise

    def _put_back(self, plan: SyncPlan, old: list[int]) -> None:
        """Undo a ``_sync`` cancelled before its first run was unparked: drop what it
        evaluated after the common prefix and move the parked runs back to their old places,
        keeping those that follow on with at most ``_PUT_BACK_GAP`` tokens between them (the
        tokens of such a gap, where the run search found no match, are evaluated again)."""
        mem, kv, k = self._mem, self._kv, plan.prefix
        for s in _MAIN_SEQS:
            C.llama_memory_seq_rm(mem, s, k, -1)
        kv.truncate(k)
        for c0, p0, length in plan.runs:  # increasing: each lands below where the next one sits
            # One call moves the cells of both park sequences (as in _park).
            C.llama_memory_seq_add(mem, _PARK_SEQS[0], p0, p0 + length, c0 - p0)
        end = k
        sink = Metrics()
        try:
            for c0, _, length in plan.runs:
                if c0 - end > _PUT_BACK_GAP:
                    break
                if c0 > end:
                    self._prefill(old, end, c0, None, sink, logits=False)
                self._unpark(c0, c0 + length)
                kv.tokens.extend(old[c0 : c0 + length])
                end = c0 + length
        finally:
            for s in _PARK_SEQS:
                C.llama_memory_seq_rm(mem, s, -1, -1)
            kv.forget()

    def _park(self, plan: SyncPlan) -> None:
        """Move each run's cells out of the main sequences, to their new positions."""
        mem = self._mem
        p0_seq = _PARK_SEQS[0]
        offset = plan.park_offset
        for c0, _, length in plan.runs:
            for s in _PARK_SEQS:
                C.llama_memory_seq_cp(mem, _MAIN_SEQS[0], s, c0, c0 + length)
            for s in _MAIN_SEQS:
                C.llama_memory_seq_rm(mem, s, c0, c0 + length)
        # Two steps so that no run lands on cells another run has not left yet.
        C.llama_memory_seq_add(mem, p0_seq, 0, -1, offset)
        for c0, p0, length in plan.runs:
            C.llama_memory_seq_add(mem, p0_seq, c0 + offset, c0 + offset + length, p0 - c0 - offset)

    def _unpark(self, p0: int, p1: int) -> None:
        mem = self._mem
        for s in _MAIN_SEQS:
            C.llama_memory_seq_cp(mem, _PARK_SEQS[0], s, p0, p1)
        for s in _PARK_SEQS:
            C.llama_memory_seq_rm(mem, s, p0, p1)

    def _recover(self) -> None:
        """After an aborted or failed decode: drop whatever that decode left behind.

        The ledger's ``tokens`` only ever grow after a decode succeeded, so they are the
        truth. (With a token in two sequences, llama.cpp rolls an aborted batch back in one of
        them only, and the cells it keeps were never fully computed.)"""
        mem = self._mem
        for s in _PARK_SEQS:
            C.llama_memory_seq_rm(mem, s, -1, -1)
        have = len(self._kv.tokens)
        for s in _MAIN_SEQS:
            have = min(have, int(C.llama_memory_seq_pos_max(mem, s)) + 1)
        C.llama_memory_seq_rm(mem, -1, have, -1)
        self._kv.truncate(have)

    def _prefill(
        self,
        prompt: Sequence[int],
        start: int,
        end: int,
        should_stop: StopCheck | None,
        m: Metrics,
        *,
        logits: bool = True,
    ) -> None:
        """Evaluate ``prompt[start:end]`` at those positions, ``n_batch`` tokens a decode;
        logits only for the last token (if ``logits``). Raises ``_Cancelled`` when
        ``should_stop`` fires (between decodes or inside one)."""
        dec, kv = self._dec, self._kv
        step = self.n_batch
        with dec.abortable(should_stop):
            for s in range(start, end, step):
                e = min(end, s + step)
                if should_stop is not None and should_stop():
                    raise _Cancelled
                last = logits and e == end
                count = dec.load(prompt, s, e, logits_last=last)
                began = time.perf_counter()
                result = self._step(count, "during prefill")
                if result is DecodeResult.CANCELLED:
                    raise _Cancelled
                if result is DecodeResult.CONTEXT_FULL:
                    raise DecodeError(
                        "llama_decode failed with code 1 during prefill (no room in the KV cache)"
                    )
                if count >= 32:  # per token, by batch size class (small batches cost more)
                    self._threads.note(
                        ("prefill", count.bit_length()), (time.perf_counter() - began) / count
                    )
                kv.tokens.extend(prompt[s:e])
                m.evaluated_tokens += count
                kv.tail = count - 1 if last else None

    # --- generation -------------------------------------------------------------------------------

    def _generate(
        self,
        pending: list[int],
        max_tokens: int,
        out: TextOutput,
        should_stop: StopCheck | None,
    ) -> str:
        """Plain greedy loop: the hot path is a few ctypes stores and two C calls a token.

        ``pending``: tokens already in the cache (replayed), then the greedy successor of the
        cache, which is the next token to emit."""
        kv = self._kv
        ctx, smpl, cached = self._ctx, self._smpl, kv.tokens
        dec = self._dec
        tok_p, pos_p, out_p = dec.tok, dec.pos, dec.out
        step, sample = self._step, C.llama_sampler_sample
        clock, note = time.perf_counter, self._threads.note
        ok = DecodeResult.OK
        n_ctx = self.n_ctx
        token = pending[-1]
        kv.successor = token
        for t in pending[:-1]:
            reason = out.push(t)
            if reason is not None:
                return reason
            if len(out.tokens) >= max_tokens:
                return "length"
        while True:
            reason = out.push(token)
            if reason is not None:
                return reason
            if len(out.tokens) >= max_tokens:
                return "length"
            if should_stop is not None and should_stop():
                return "cancelled"
            pos = len(cached)
            if pos >= n_ctx:
                return "length"
            tok_p[0] = token
            pos_p[0] = pos
            out_p[0] = 1
            began = clock()
            result = step(1)
            note(1, clock() - began)
            if result is not ok:
                return self._stopped_by(result)
            cached.append(token)
            kv.tail = 0
            token = sample(smpl, ctx, 0)
            kv.successor = token

    def _stopped_by(self, result: DecodeResult) -> str:
        """The stop reason of a generation decode that did not go through: the context is
        full ("length"), or it was cancelled inside the decode (the cache keeps only finished
        work)."""
        if result is DecodeResult.CONTEXT_FULL:
            return "length"
        self._recover()
        return "cancelled"

    def _generate_speculative(
        self,
        pending: list[int],
        drafter: SpeculativeDrafter,
        max_tokens: int,
        out: TextOutput,
        m: Metrics,
        should_stop: StopCheck | None,
    ) -> str:
        """Greedy decoding with prompt-lookup drafts (``SpeculativeDrafter``); ``pending`` as
        for ``_generate``. Every emitted token is still the model's greedy choice."""
        kv, dec = self._kv, self._dec
        cached = kv.tokens
        batch_ms = self._batch_ms
        kv.successor = pending[-1]
        while True:
            for t in pending:  # tokens the model chose: emit them in order
                reason = out.push(t)
                if reason is not None:
                    return reason
                if len(out.tokens) >= max_tokens:
                    return "length"
                drafter.push(t)
            token = pending[-1]
            room = max_tokens - len(out.tokens)
            pos = len(cached)
            if pos >= self.n_ctx:
                return "length"
            limit = min(MAX_DRAFT, room - 1, self.n_ctx - pos - 1)
            source, draft = drafter.propose(limit, batch_ms)
            if should_stop is not None and should_stop():
                return "cancelled"
            count = 1 + len(draft)
            for i in range(count):
                dec.put(i, token if i == 0 else draft[i - 1], pos + i)
            began = time.perf_counter()
            result = self._step(count)
            if result is not DecodeResult.OK:
                return self._stopped_by(result)
            took = (time.perf_counter() - began) * 1000.0
            self._threads.note(count, took / 1000.0)
            old = batch_ms[count]
            batch_ms[count] = took if old is None else 0.8 * old + 0.2 * took
            accepted, nxt = self._keep_agreeing(token, draft, pos)
            if draft:
                m.drafted_tokens += len(draft)
                m.accepted_tokens += accepted
                drafter.verified(source, len(draft), accepted)
            kv.successor = nxt
            pending = [*draft[:accepted], nxt]

    def _generate_rewrite(
        self,
        pending: list[int],
        drafter: RewriteDrafter,
        max_tokens: int,
        out: TextOutput,
        m: RewriteMetrics,
        should_stop: StopCheck | None,
        margins: list[float] | None = None,
    ) -> str:
        """The loop of ``rewrite`` (drafts from ``RewriteDrafter``); ``pending`` as for
        ``_generate``. Runs inside the decoder's abortable context. Each batch's rows are
        sampled with llama.cpp's greedy sampler in C, one row at a time up to the first
        disagreement. ``margins``: see ``rewrite``."""
        kv, dec = self._kv, self._dec
        cached = kv.tokens
        clock, note = time.perf_counter, self._threads.note
        emitted = out.tokens
        max_batch = drafter.max_batch
        while True:
            for t in pending:
                reason = out.push(t)
                if reason is not None:
                    return reason
                if len(emitted) >= max_tokens:
                    return "length"
                drafter.push(t)
                m.rejoins = drafter.rejoins
            token = pending[-1]
            pos = len(cached)
            if pos >= self.n_ctx:
                return "length"
            room = min(max_tokens - len(emitted), self.n_ctx - pos, max_batch) - 1
            proposal = drafter.propose(room)
            spec = proposal.tokens
            if should_stop is not None and should_stop():
                return "cancelled"
            count = 1 + len(spec)
            dec.put(0, token, pos)
            for i in range(1, count):
                dec.put(i, spec[i - 1], pos + i)
            began = clock()
            result = self._step(count)
            if result is not DecodeResult.OK:
                self._recover()
                return "length" if result is DecodeResult.CONTEXT_FULL else "cancelled"
            took = clock() - began
            note(("rewrite", count.bit_length()), took / count)
            accepted, nxt = self._keep_agreeing(token, spec, pos)
            if margins is not None and len(margins) < MAX_MARGIN_ROWS:
                self._note_margins(margins, drafter, proposal, accepted, nxt)
            if _TRACE is not None:
                source = int(proposal.source) if proposal.candidate else -1
                _TRACE.append(
                    (source, len(proposal.candidate), len(spec), accepted, round(took * 1000))
                )
            kv.successor = nxt
            drafter.verified(proposal, accepted, nxt)
            _count_batch(m, proposal, accepted)
            pending = [*spec[:accepted], nxt]

    def _note_margins(
        self,
        margins: list[float],
        drafter: RewriteDrafter,
        proposal: Proposal,
        accepted: int,
        nxt: int,
    ) -> None:
        """After a verify batch: the margins (``_margin``) of the rows whose tokens are off
        the known text: every kept row of a draft that did not come from it (prompt lookup,
        ``alt``), and the model's next token unless it is the known text's next one."""
        on_known = proposal.source in (DraftSource.KNOWN, DraftSource.REJOINED)
        if not on_known:
            for row in range(accepted):
                margins.append(self._margin(row))
        at = drafter.at + accepted if on_known and drafter.synced else -1
        known = drafter.known
        if not (0 <= at < len(known) and known[at] == nxt):
            margins.append(self._margin(accepted))

    def _margin(self, row: int) -> float:
        """The top-1 minus the top-2 probability of output row ``row`` of the last decode:
        three passes over the logits (max, the runner-up, the softmax's sum in a reused
        float32 buffer; ~1 ms for 262k, where ``np.partition`` took ~15x that)."""
        import numpy as np

        logits = self._logits(row)
        buf = self._margin_buf
        if buf is None or buf.shape != logits.shape:
            buf = self._margin_buf = np.empty_like(logits)
        top = int(logits.argmax())
        hi = float(logits[top])
        lo = max(
            float(logits[:top].max()) if top > 0 else -math.inf,
            float(logits[top + 1 :].max()) if top + 1 < len(logits) else -math.inf,
        )
        np.subtract(logits, hi, out=buf)
        np.exp(buf, out=buf)
        total = float(buf.sum(dtype=np.float64))
        return (1.0 - math.exp(lo - hi)) / total

    def _keep_agreeing(self, token: int, draft: Sequence[int], pos: int) -> tuple[int, int]:
        """After one decode of ``[token, *draft]`` at ``pos`` with logits on every row: how
        many draft tokens are the model's own greedy choices (llama.cpp's greedy sampler, row
        by row in C, up to the first disagreement) and the model's next token after them. The
        rejected cells leave the cache; the last kept row becomes the tail."""
        ctx, smpl, sample = self._ctx, self._smpl, C.llama_sampler_sample
        kv = self._kv
        kv.tokens.append(token)
        kv.tokens.extend(draft)
        accepted = 0
        nxt = sample(smpl, ctx, 0)
        while accepted < len(draft) and nxt == draft[accepted]:
            accepted += 1
            nxt = sample(smpl, ctx, accepted)
        if accepted < len(draft):
            C.llama_memory_seq_rm(self._mem, -1, pos + 1 + accepted, -1)
            del kv.tokens[pos + 1 + accepted :]
        kv.tail = accepted
        return accepted, int(nxt)

    # --- helpers ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the engine is closed")

    def _checked_prompt(self, prompt: Sequence[int]) -> list[int]:
        tokens = list(prompt)
        if not tokens:
            raise ValueError("the prompt is empty")
        if len(tokens) >= self.n_ctx:
            raise ValueError(
                f"the prompt has {len(tokens)} tokens; the context holds "
                f"{self.n_ctx} (leave room to generate)"
            )
        if min(tokens) < 0 or max(tokens) >= self._n_vocab:
            raise ValueError("the prompt holds token ids outside the vocabulary")
        return tokens

    def _clear(self) -> None:
        C.llama_memory_clear(self._mem, True)
        self._kv.clear()

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            buf = ctypes.create_string_buffer(64)
            n = C.llama_token_to_piece(self._vocab, token, buf, 64, 0, True)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = C.llama_token_to_piece(self._vocab, token, buf, -n, 0, True)
            piece = buf.raw[: max(n, 0)]
            self._pieces[token] = piece
        return piece

    def _is_eog(self, token: int) -> bool:
        eog = self._eog.get(token)
        if eog is None:
            eog = self._eog[token] = bool(C.llama_vocab_is_eog(self._vocab, token))
        return eog


def _count_batch(m: RewriteMetrics, proposal: Proposal, accepted: int) -> None:
    """A rewrite's verify batch of ``proposal`` (after the pending token) in its metrics."""
    spec = proposal.tokens
    m.batches += 1
    m.largest_batch = max(m.largest_batch, 1 + len(spec))
    if spec:
        m.drafted_tokens += len(spec)
        m.accepted_tokens += accepted
        if proposal.source is DraftSource.LOOKUP:
            m.lookup_batches += 1
        elif proposal.source is DraftSource.ALT:
            m.alt_batches += 1
        else:
            m.draft_batches += 1
            m.draft_accepted += accepted


if TYPE_CHECKING:
    from forecode_core.completion.model import RewriteModel

    def _conforms(engine: Engine) -> RewriteModel:
        return engine  # mypy: the engine is a RewriteModel (and so a CompletionModel)
