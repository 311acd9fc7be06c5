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
  engine notices and runs on one thread for a while (``_Threads``).
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

import array
import bisect
import codecs
import contextlib
import ctypes
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields

import llama_cpp.llama_cpp as C

from local_models.gguf_info import ModelError, ModelInfo, read_model_info
from local_models.llama_runtime import cpu_has_amx, free_llama, init_llama

__all__ = ["Completion", "Engine", "Metrics", "ModelError", "RewriteMetrics"]

_MAIN_SEQS = (0, 1)  # every evaluated token: two owners, so its cell is never recycled
_PARK_SEQS = (2, 3)  # moved runs waiting for the text before them to be evaluated
_N_SEQ_MAX = 4

# With flash attention on and up to ~256 tokens of context, verify batches of up to 7 tokens
# give logits bit-identical to single-token decoding (measured); from 8 tokens on ggml takes
# other kernels whose rounding moves logits by up to ~0.3. So a draft is at most 6 tokens.
# Past ~256 tokens of context on more than one thread, ggml's single-token attention sums in
# another order than a batch's and the two differ by rounding anyway (``rounding_noise``
# measures it): a near-tie may then flip, as it would between two thread counts.
_MAX_DRAFT = 6
_NGRAM_MAX = 4
_NGRAM_MIN = 2
_PREVIOUS = 0  # the draft-source key of "the previous cache's continuation" in _PRIOR_ACCEPT
_LOOKUP_CANDIDATES = 32
_RUN_CANDIDATES = 16  # a g-gram found more often than this in the prompt is not an anchor
# Prior chance that a drafted token is accepted, by the length of the n-gram that found it,
# and how many observations that prior is worth; a request's own record soon dominates.
_PRIOR_ACCEPT = {2: 0.4, 3: 0.5, 4: 0.6, _PREVIOUS: 0.85}
_PRIOR_WEIGHT = 2.0
# Speculative edits (``rewrite``): a rejoin is the last _REJOIN_NGRAM emitted tokens found in
# the draft. A verify batch's length maximises the expected tokens per unit of cost, from the
# acceptance seen so far in the request (per draft source, with priors) and the cost of each
# batch size (``_best_length``). Prompt-lookup drafts (off the known text) are at most
# _LOOKUP_MAX tokens.
_REJOIN_NGRAM = 3
_LOOKUP_MAX = 16
# A rejoin is trusted (the search floor moves past it) once this many draft tokens after it
# were accepted: a rejoin in boilerplate that the model leaves at once is not trusted.
_REJOIN_CONFIRM = 8
# Draft sources of a rewrite: the known text (trusted), the known text just after a rejoin,
# prompt lookup. Prior per-token acceptance and its weight in observations.
_KNOWN, _REJOINED, _LOOKUP, _ALT = 0, 1, 2, 3
_REWRITE_PRIOR = {_KNOWN: (0.97, 8.0), _REJOINED: (0.8, 4.0), _LOOKUP: (0.8, 2.0), _ALT: (0.9, 4.0)}
# The record of each source fades (older batches count less), so it follows the request's
# phases: copying, writing new code, copying again.
_REWRITE_FADE = 0.9
_LOOKUP_MIN_NGRAM = 3
# Cost per row of a decode with logits on every row, relative to a one-token decode, by batch
# size, measured on Gemma 3 270M (Q8_0 output layer, 262k x 640: computed for every row, so
# rows stay expensive) on one thread. ggml's batched kernels work in tiles: sizes that fill them
# (4, 6, 8, 12, ...) cost less per row than their odd neighbours, and two or three rows cost
# more than one. Verify batches use the listed sizes (or what is left of the draft).
_ROW_COST_PRIOR = {
    1: 1.0,
    2: 1.13,
    3: 1.23,
    4: 0.72,
    6: 0.6,
    8: 0.63,
    12: 0.56,
    16: 0.58,
    24: 0.48,
    32: 0.43,
    48: 0.41,
    64: 0.41,
}
_BATCH_SIZES = tuple(sorted(_ROW_COST_PRIOR))

# A cancelled background warm puts the old cache's runs back when at most this many tokens
# separate them (they are evaluated again: the run search leaves a few at line joins).
_PUT_BACK_GAP = 8

# How much of the cache as it was before a request (its end: the last prompt and what the
# engine generated after it) serves as a draft source; see _generate_speculative.
_PREVIOUS_TAIL = 512
# Debugging: when a list, each rewrite batch appends (source, candidates, drafted, accepted, ms).
_TRACE: list[tuple[int, ...]] | None = None


@dataclass
class Metrics:
    """One request's figures (all plain ints/floats: ``dataclasses.asdict`` is JSON-ready)."""

    prompt_tokens: int = 0
    reused_prefix_tokens: int = 0
    reused_shifted_tokens: int = 0  # cached tokens moved to new positions (chunk reuse)
    evaluated_tokens: int = 0  # prompt tokens run through the model
    generated_tokens: int = 0
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    prefill_ms: float = 0.0
    first_token_ms: float = 0.0  # from the start of complete()
    decode_ms: float = 0.0  # from the first token to the end
    total_ms: float = 0.0

    def add(self, other: Metrics) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class RewriteMetrics(Metrics):
    """A ``rewrite``'s figures: ``Metrics`` (``drafted_tokens``/``accepted_tokens`` count draft
    tokens verified and kept, from the known text and from prompt lookup together) plus how the
    speculation went."""

    draft_tokens: int = 0  # length of the known text given as the draft
    batches: int = 0  # generation decodes (each verifies one draft, or emits one token)
    draft_batches: int = 0  # of which verified a draft from the known text
    lookup_batches: int = 0  # of which verified a prompt-lookup draft (off the known text)
    alt_batches: int = 0  # of which verified a draft from ``alt`` (the edit's own code)
    rejoins: int = 0  # times the output rejoined the known text after leaving it
    largest_batch: int = 0  # tokens in the largest verify batch


@dataclass
class Completion:
    text: str
    tokens: list[int]
    metrics: Metrics
    stop_reason: str  # "eos" | "stop" | "length" | "cancelled"


class _Cancelled(Exception):
    pass


def _default_threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 2
    # Logical CPUs above 4 are usually hyper-threads: llama.cpp decodes best on physical cores.
    return max(1, min(8, n if n <= 4 else n // 2))


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    # Compare in slices first (fast in C), then finish token by token.
    step = 64
    while i + step <= n and a[i : i + step] == b[i : i + step]:
        i += step
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _run_limit(n: int, fresh_from: int | None) -> int:
    """The end of the prompt positions moved runs may fill: never the last token (it is run
    again for its logits), never past ``fresh_from``."""
    return n - 1 if fresh_from is None else max(0, min(n - 1, fresh_from))


def _find_runs(
    cached: Sequence[int], prompt: Sequence[int], start: int, limit: int, min_run: int
) -> list[tuple[int, int, int]]:
    """Runs of ``cached[start:]`` that reappear in ``prompt[start:limit]``.

    Returns ``(cache_pos, prompt_pos, length)`` triples, increasing in both positions, not
    overlapping, each at least ``min_run`` long. Chosen longest first (then the longest in the
    gaps on either side, as ``difflib`` does), so boilerplate repeated across a file cannot
    pull the alignment away from the run that really moved.
    """
    m = len(cached)
    g = min_run
    if g <= 0 or m - start < g or limit - start < g:
        return []
    where: dict[tuple[int, ...], list[int]] = {}
    for p in range(start, limit - g + 1):
        where.setdefault(tuple(prompt[p : p + g]), []).append(p)

    # Maximal runs per diagonal (prompt_pos - cache_pos) from matching g-grams.
    found: list[tuple[int, int, int]] = []
    open_runs: dict[int, list[int]] = {}  # diagonal -> [first c, last c]
    for c in range(start, m - g + 1):
        cands = where.get(tuple(cached[c : c + g]))
        if not cands or len(cands) > _RUN_CANDIDATES:
            continue
        for p in cands:
            run = open_runs.get(p - c)
            if run is not None and run[1] == c - 1:
                run[1] = c
                continue
            if run is not None:
                found.append((run[0], run[0] + p - c, run[1] - run[0] + g))
            open_runs[p - c] = [c, c]
    for d, (c0, c1) in open_runs.items():
        found.append((c0, c0 + d, c1 - c0 + g))
    # Extend over tokens whose g-gram was too common to index; pieces of one diagonal that
    # an extension already covers are dropped.
    found.sort(key=lambda r: (r[1] - r[0], r[0]))
    runs = []
    last_d, last_end = None, -1
    for c0, p0, n in found:
        d = p0 - c0
        if d == last_d and c0 < last_end:
            continue
        while c0 > start and p0 > start and cached[c0 - 1] == prompt[p0 - 1]:
            c0, p0, n = c0 - 1, p0 - 1, n + 1
        while c0 + n < m and p0 + n < limit and cached[c0 + n] == prompt[p0 + n]:
            n += 1
        runs.append((n, c0, p0))
        last_d, last_end = d, c0 + n
    runs.sort(reverse=True)

    chosen: list[tuple[int, int, int]] = []
    windows = [(start, m, start, limit)]
    while windows:
        c_lo, c_hi, p_lo, p_hi = windows.pop()
        best: tuple[int, int, int] | None = None
        best_n = g - 1
        for n, c0, p0 in runs:
            if n <= best_n:
                break  # sorted by length: nothing later can beat it, even unclipped
            lo = max(c_lo - c0, p_lo - p0, 0)
            hi = min(c_hi - c0, p_hi - p0, n)
            if hi - lo > best_n:
                best, best_n = (c0 + lo, p0 + lo, hi - lo), hi - lo
        if best is None:
            continue
        chosen.append(best)
        c0, p0, n = best
        windows.append((c_lo, c0, p_lo, p0))
        windows.append((c0 + n, c_hi, p0 + n, p_hi))
    chosen.sort()
    return chosen


class _Output:
    """Generated tokens -> text, with stop strings and streaming of safe increments."""

    def __init__(
        self, engine: Engine, stop: Sequence[str], on_text: Callable[[str], None] | None
    ) -> None:
        self._engine = engine
        self._stops = [s for s in stop if s]
        self._longest = max((len(s) for s in self._stops), default=0)
        self._on_text = on_text
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.tokens: list[int] = []
        self.text = ""
        self._sent = 0

    def push(self, token: int) -> str | None:
        """Take one generated token; return a stop reason or None to go on."""
        if self._engine._is_eog(token):
            return "eos"
        self.tokens.append(token)
        piece = self._decoder.decode(self._engine._piece(token))
        if not piece:
            return None
        old = len(self.text)
        self.text += piece
        if not self._stops:
            self._send(len(self.text))
            return None
        lo = max(0, old - self._longest + 1)
        cut = -1
        for s in self._stops:
            i = self.text.find(s, lo)
            if i >= 0 and (cut < 0 or i < cut):
                cut = i
        if cut >= 0:
            self.text = self.text[:cut]
            self._send(cut)
            return "stop"
        self._send(len(self.text) - self._held_back())
        return None

    def finish(self) -> None:
        """Flush the text held back for a possible stop string (an incomplete UTF-8 tail is
        dropped)."""
        self._send(len(self.text))

    def _held_back(self) -> int:
        held = 0
        for s in self._stops:
            for k in range(min(len(s) - 1, len(self.text)), held, -1):
                if self.text.endswith(s[:k]):
                    held = k
                    break
        return held

    def _send(self, end: int) -> None:
        if end > self._sent:
            chunk = self.text[self._sent : end]
            self._sent = end
            if self._on_text is not None:
                self._on_text(chunk)


class _Threads:
    """Drops llama.cpp to one thread while the CPU is contended, and comes back later.

    ggml's threads meet at a barrier after every graph node (~700 per token here). When
    another process takes one of the cores, a descheduled thread stalls every barrier: on
    the 2-core development box a busy neighbour took decoding from 46 to 0.8 tokens/s with
    2 threads, while 1 thread kept 28. So each kind of decode is timed; when all threads do
    worse than one thread did (or than 4x their own best, before one thread was timed), the
    engine goes to one thread and retries all of them after a growing back-off. The thread
    count does not change the logits (measured identical).
    """

    VS_ONE = 1.25
    VS_OWN = 4.0

    def __init__(self, ctx: object, n: int) -> None:
        self._ctx = ctx
        self.max = n
        self.now = n
        self._best: dict[int, dict[object, float]] = {1: {}, n: {}}
        self._until = 0.0
        self._backoff = 10.0
        self.tripped = False

    def begin_request(self) -> None:
        if self.now != self.max and time.monotonic() >= self._until:
            self.use(self.max)
        elif self.now == self.max and not self.tripped:
            self._backoff = 10.0
        self.tripped = False

    def note(self, kind: object, seconds: float) -> None:
        """A decode of ``kind`` (same kind = same work) took ``seconds`` per token."""
        mine = self._best[self.now]
        best = mine.get(kind)
        if best is None or seconds < best:
            mine[kind] = seconds
        if self.now == 1:
            return
        one = self._best[1].get(kind)
        if one is not None:
            slow = seconds > self.VS_ONE * one
        else:
            slow = best is not None and seconds > self.VS_OWN * best
        if slow:
            self.use(1)
            self.tripped = True
            self._until = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2.0, 300.0)

    def use(self, n: int) -> None:
        C.llama_set_n_threads(self._ctx, n, n)
        self.now = n


# Batch sizes an apply engine times when it starts (``Engine.row_costs``); the other listed
# sizes scale the prior by the nearest measured one.
_MEASURED_SIZES = (1, 4, 8, 16, 32, 64)
# How far (as a factor) a measured per-row cost may stray from the prior's.
_COST_SPREAD = 1.5


def _row_cost(n: int, table: Mapping[int, float] | None = None) -> float:
    """Relative cost of a decode of ``n`` rows with logits for every row: ``n`` times the
    per-row cost of the nearest listed size in ``table`` (default ``_ROW_COST_PRIOR``)."""
    costs = _ROW_COST_PRIOR if table is None else table
    listed = min(costs, key=lambda k: (abs(k - n), k))
    return n * costs[listed]


def _scaled_costs(measured: Mapping[int, float]) -> dict[int, float]:
    """A per-row cost table for every listed size from decode times measured at some of them
    (``measured``: size -> ms): measured sizes relative to one row; the others the prior's
    figure scaled as the nearest measured size differs from the prior."""
    one = measured.get(1)
    if not one:
        return dict(_ROW_COST_PRIOR)
    # Each size within a factor of the prior: a decode slowed down by another process while
    # it was timed (a shared machine) must not turn speculation off for the engine's life.
    rel = {
        k: min(
            max(ms / k / one, _ROW_COST_PRIOR[k] / _COST_SPREAD), _ROW_COST_PRIOR[k] * _COST_SPREAD
        )
        for k, ms in measured.items()
        if k in _ROW_COST_PRIOR
    }
    out: dict[int, float] = {}
    for size, prior in _ROW_COST_PRIOR.items():
        near = min(rel, key=lambda k: (abs(k - size), k))
        out[size] = rel[size] if size in rel else prior * rel[near] / _ROW_COST_PRIOR[near]
    return out


def _best_length(
    alpha: float, available: int, max_batch: int, costs: Mapping[int, float] | None = None
) -> int:
    """How many of ``available`` draft tokens to verify after the pending token: the count,
    among the efficient batch sizes and all that is available, that maximises the expected
    tokens emitted per unit of decode cost when each draft token is accepted with chance
    ``alpha`` (given the ones before it were). ``costs``: per-row cost by batch size relative
    to one row (the engine's measured table, ``Engine.row_costs``; default the prior). A table
    fixed per engine, not running timings: the same request on the same engine then always
    takes the same batches, so it gets the same answer (batch sizes change rounding, which can
    flip a near-tie)."""
    best, best_rate = 0, 1.0 / _row_cost(1, costs)
    for d in sorted({*(k - 1 for k in _BATCH_SIZES if k <= max_batch), available}):
        if not 0 < d <= min(available, max_batch - 1):
            continue
        expected = (1.0 - alpha ** (d + 1)) / (1.0 - alpha) if alpha < 1.0 else d + 1.0
        rate = expected / _row_cost(d + 1, costs)
        if rate > best_rate:
            best, best_rate = d, rate
    return best


class Engine:
    """One model + one context; see the module docstring."""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        min_reuse_chunk: int = 16,
        max_outputs: int = _MAX_DRAFT + 2,
    ) -> None:
        self._closed = True
        self._model = self._ctx = self._smpl = None
        self._batch: C.llama_batch | None = None
        self.info: ModelInfo = read_model_info(model_path)
        if n_batch < 8:
            raise ValueError("n_batch must be at least 8")
        if not _MAX_DRAFT + 2 <= max_outputs <= n_batch:
            raise ValueError(f"max_outputs must be between {_MAX_DRAFT + 2} and n_batch")
        init_llama()
        path = self.info.path

        mparams = C.llama_model_default_params()
        # The extra (repacked / AMX) weight buffers crash in ggml's AMX kernels on CPUs with
        # AMX tiles when the worker threads lack tile permission; plain buffers are safe.
        mparams.use_extra_bufts = not cpu_has_amx()
        self._model = C.llama_model_load_from_file(os.fsencode(str(path)), mparams)
        if not self._model:
            raise ModelError(
                f"llama.cpp could not load {path} ({self.info.architecture} "
                "model: unsupported architecture or damaged file?)"
            )
        self._closed = False  # from here on close() frees what exists

        if self.info.context_length:
            n_ctx = min(n_ctx, self.info.context_length)
        threads = n_threads or _default_threads()
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
        cparams.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_ENABLED
        ctx = C.llama_init_from_model(self._model, cparams)
        if not ctx:
            cparams.flash_attn_type = C.LLAMA_FLASH_ATTN_TYPE_AUTO
            ctx = C.llama_init_from_model(self._model, cparams)
        if not ctx:
            self.close()
            raise ModelError(
                f"llama.cpp could not create a context for {path} (n_ctx={n_ctx}: out of memory?)"
            )
        self._ctx = ctx
        self._mem = C.llama_get_memory(ctx)
        self._vocab = C.llama_model_get_vocab(self._model)
        self._n_vocab = int(C.llama_vocab_n_tokens(self._vocab))
        self.n_ctx = int(C.llama_n_ctx(ctx))
        self.n_batch = n_batch
        self.max_outputs = max_outputs
        self.n_threads = threads
        self._threads = _Threads(ctx, threads)
        self.min_reuse_chunk = min_reuse_chunk

        self.can_shift = bool(C.llama_memory_can_shift(self._mem))
        self.chunk_reuse = self.can_shift and min_reuse_chunk > 0
        self.chunk_reuse_note: str | None = None
        if not self.can_shift:
            self.chunk_reuse_note = (
                "this model's KV cache cannot be shifted: only common prefixes are re-used"
            )
        elif min_reuse_chunk <= 0:
            self.chunk_reuse_note = "chunk reuse disabled (min_reuse_chunk <= 0)"

        self._batch = C.llama_batch_init(n_batch, 0, len(_MAIN_SEQS))
        b = self._batch
        for i in range(n_batch):
            b.n_seq_id[i] = len(_MAIN_SEQS)
            for j, s in enumerate(_MAIN_SEQS):
                b.seq_id[i][j] = s
        self._tok = b.token
        self._pos = b.pos
        self._out = b.logits
        self._tok_addr = ctypes.cast(b.token, ctypes.c_void_p).value
        self._pos_addr = ctypes.cast(b.pos, ctypes.c_void_p).value
        self._out_addr = ctypes.cast(b.logits, ctypes.c_void_p).value
        self._smpl = C.llama_sampler_init_greedy()

        self._abort_check: list[Callable[[], bool] | None] = [None]
        self._abort_cb = C.ggml_abort_callback(self._make_abort(self._abort_check))
        self._no_abort = C.ggml_abort_callback()

        self._cached: list[int] = []  # tokens whose KV sits in sequence 0, positions 0..n-1
        self._tail: int | None = None  # output row of the last decode = last cached token
        # Cached tokens from _greedy_from on were generated greedily; _successor is the greedy
        # choice after the whole cache (sampled, not yet decoded). See _replay_for.
        self._greedy_from: int | None = None
        self._successor: int | None = None
        self._pieces: dict[int, bytes] = {}
        # Measured decode time (ms, moving average) by batch size, for choosing draft lengths.
        self._batch_ms: list[float | None] = [None] * (_MAX_DRAFT + 2)
        self._eog: dict[int, bool] = {}
        self.totals = Metrics()
        if threads > 1:
            self._calibrate()
        # Per-row cost of a verify batch by size, relative to one row: measured when the
        # engine starts if it is made for long verify batches (apply), else the prior.
        self.row_costs: dict[int, float] = dict(_ROW_COST_PRIOR)
        self.batch_ms: dict[int, float] = {}  # the measured decode times (ms) by size
        if max_outputs > _MAX_DRAFT + 2:
            self._measure_batches()

    def _measure_batches(self) -> None:
        """Time one decode with logits on every row at each of ``_MEASURED_SIZES`` (the
        smaller ones twice, the best kept) after a short context, and derive ``row_costs``
        from them (``_scaled_costs``). Fixed from then on (see ``_best_length``)."""
        n_vocab = self._n_vocab
        base = [self.info.bos_id or 0] + [min(1000 + i, n_vocab - 1) for i in range(15)]
        sink = Metrics()
        self._clear()
        self._prefill(base, 0, len(base), None, sink)
        b = self._batch
        assert b is not None
        at = len(base)
        took: dict[int, float] = {}
        for size in _MEASURED_SIZES:
            if size > self.max_outputs:
                break
            for _ in range(2 if size <= 8 else 1):
                for i in range(size):
                    self._tok[i] = min(2000 + 7 * i, n_vocab - 1)
                    self._pos[i] = at + i
                    self._out[i] = 1
                b.n_tokens = size
                began = time.perf_counter()
                rc = C.llama_decode(self._ctx, b)
                ms = (time.perf_counter() - began) * 1000.0
                C.llama_memory_seq_rm(self._mem, -1, at, -1)
                if rc != 0:
                    break
                took[size] = min(ms, took.get(size, ms))
        self._clear()
        self.batch_ms = {k: round(v, 2) for k, v in took.items()}
        self.row_costs = _scaled_costs(took)

    def _calibrate(self) -> None:
        """Time a one-token and a 32-token decode with one thread and with all of them, so
        that contention is recognised from the first request (see ``_Threads``; the 32-token
        decode notes itself)."""
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
        return tuple(self._cached)

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
        should_stop: Callable[[], bool] | None = None,
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
        if self._replay_for(tokens) is not None:  # already there, with what follows it
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
        tokens = list(prompt)
        n = len(tokens)
        if self._replay_for(tokens) is not None:
            return 0
        k = _common_prefix(self._cached, tokens)
        if k == n:
            return 0 if self._tail is not None else 1
        runs = (
            _find_runs(self._cached, tokens, k, _run_limit(n, fresh_from), self.min_reuse_chunk)
            if self.chunk_reuse
            else []
        )
        return n - k - sum(length for _, _, length in runs)

    def complete(
        self,
        prompt: Sequence[int],
        *,
        max_tokens: int = 64,
        stop: Sequence[str] = (),
        speculative: bool = False,
        should_stop: Callable[[], bool] | None = None,
        on_text: Callable[[str], None] | None = None,
        fresh_from: int | None = None,
    ) -> Completion:
        """Greedy completion of ``prompt``. ``fresh_from``: prompt positions from here on are
        never taken from moved runs of the cache (only from the common prefix): a moved run's
        cells were computed after other text, which is close enough far from where the text
        changed but not right after it (a FIM prompt's suffix, after the cursor: its cells
        still "see" the old text before the cursor, and the model answers for that)."""
        self._check_open()
        start = time.perf_counter()
        tokens = self._checked_prompt(prompt)
        self._threads.begin_request()
        if isinstance(stop, str):
            stop = (stop,)
        m = Metrics(prompt_tokens=len(tokens))
        out = _Output(self, stop, on_text)
        reason = "cancelled"
        previous = self._cached[-_PREVIOUS_TAIL:] if speculative else []
        first = 0.0
        try:
            if should_stop is not None and should_stop():
                raise _Cancelled
            pending = self._replay_for(tokens)
            if pending is not None:
                m.reused_prefix_tokens = len(tokens)
            else:
                self._sync(tokens, should_stop, m, fresh_from=fresh_from)
            m.prefill_ms = (time.perf_counter() - start) * 1000.0
            if max_tokens <= 0:
                reason = "length"
            else:
                if pending is None:
                    assert self._tail is not None
                    pending = [C.llama_sampler_sample(self._smpl, self._ctx, self._tail)]
                    self._greedy_from = len(tokens)
                first = time.perf_counter()
                m.first_token_ms = (first - start) * 1000.0
                if speculative:
                    reason = self._generate_speculative(
                        pending, tokens, max_tokens, out, m, should_stop, previous
                    )
                else:
                    reason = self._generate(pending, max_tokens, out, should_stop)
        except _Cancelled:
            reason = "cancelled"
        finally:
            self._settle_metrics(m, out, start, first)
        if reason != "stop":
            out.finish()
        return Completion(out.text, out.tokens, m, reason)

    def rewrite(
        self,
        prompt: Sequence[int],
        draft: Sequence[int],
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        on_text: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        max_batch: int | None = None,
        alt: Sequence[int] = (),
    ) -> Completion:
        """Greedy decoding after ``prompt`` with speculative edits: ``draft`` is the text the
        answer mostly repeats (the original file, tokenized). Returns the same tokens as plain
        greedy decoding (``complete``) up to batched arithmetic's rounding on near-ties (see
        ``rounding_noise``), much faster where the answer follows the draft.

        Verify batches hold up to ``max_batch`` tokens (default and upper bound: the engine's
        ``max_outputs``), their length chosen per batch from the acceptance so far and the cost
        of each batch size (``_best_length``; deterministic: the same request takes the same
        batches). Stops at an end-of-generation token, a ``stop`` string, ``max_tokens`` or the
        context's end. ``alt``: a second text the answer may follow where it leaves ``draft``
        (the edit's own code: the new lines are drafted from it in long runs, not guessed a
        few tokens at a time);
        ``should_stop`` is checked between batches and inside each decode (ggml's abort
        callback): the result is then "cancelled" with the text so far and the cache holds
        only finished work. ``metrics`` is a ``RewriteMetrics``."""
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
        out = _Output(self, stop, on_text)
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
                assert self._tail is not None
                pending = [C.llama_sampler_sample(self._smpl, self._ctx, self._tail)]
                self._greedy_from = len(tokens)
                first = time.perf_counter()
                m.first_token_ms = (first - start) * 1000.0
                reason = self._generate_rewrite(
                    pending, tokens, known, max_tokens, limit, out, m, should_stop, other
                )
        except _Cancelled:
            reason = "cancelled"
        finally:
            self._settle_metrics(m, out, start, first)
        if reason != "stop":
            out.finish()
        return Completion(out.text, out.tokens, m, reason)

    def _settle_metrics(self, m: Metrics, out: _Output, start: float, first: float) -> None:
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

    def greedy_reference(
        self, prompt: Sequence[int], max_tokens: int
    ) -> tuple[list[int], list[float]]:
        """Plain greedy decoding, one token per decode, from an empty cache; also the gap
        between the two best logits at each step. For tests of lossless speeding-up; leaves
        the cache empty."""
        import numpy as np

        self._check_open()
        tokens = self._checked_prompt(prompt)
        self._clear()
        out: list[int] = []
        gaps: list[float] = []
        try:
            self._prefill(tokens, 0, len(tokens), None, Metrics())
            row = self._tail
            for step in range(max_tokens):
                ptr = C.llama_get_logits_ith(self._ctx, row)
                logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))
                best = int(np.argmax(logits))
                top = float(logits[best])
                second = float(np.partition(logits, self._n_vocab - 2)[self._n_vocab - 2])
                if self._is_eog(best):
                    break
                out.append(best)
                gaps.append(top - second)
                if step + 1 == max_tokens:
                    break
                self._decode_one(best, len(self._cached))
                self._cached.append(best)
                row = 0
        finally:
            self._clear()
        return out, gaps

    def greedy_check(
        self, prompt: Sequence[int], tokens: Sequence[int]
    ) -> list[tuple[int, int, int, float]]:
        """Teacher-forced check of ``tokens`` as a continuation of ``prompt``: at every step,
        plain single-token decoding's greedy choice after ``prompt + tokens[:i]``. Returns the
        steps where it differs as ``(step, greedy_token, got_token, gap)``, ``gap`` being how
        far the greedy token's logit is above the emitted one's. Unlike comparing two free
        runs, this checks every token, not only up to the first difference. For tests and
        benchmarks; leaves the cache empty."""
        import numpy as np

        self._check_open()
        base = self._checked_prompt(prompt)
        want = list(tokens)
        self._clear()
        diffs: list[tuple[int, int, int, float]] = []
        try:
            self._prefill(base, 0, len(base), None, Metrics())
            row = self._tail
            for step, got in enumerate(want):
                ptr = C.llama_get_logits_ith(self._ctx, row)
                logits = np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))
                best = int(np.argmax(logits))
                if best != got:
                    diffs.append((step, best, got, float(logits[best] - logits[got])))
                if step + 1 < len(want):
                    self._decode_one(got, len(self._cached))
                    self._cached.append(got)
                    row = 0
        finally:
            self._clear()
        return diffs

    def rounding_noise(
        self, prompt: Sequence[int], positions: int = 96, batch: int | None = None
    ) -> list[float]:
        """How much batched arithmetic moves the gap between the two best logits: for the last
        ``positions`` positions of ``prompt``, logits from single-token decodes against the
        same positions decoded in batches of ``batch`` tokens with logits for every row
        (default ``_MAX_DRAFT + 1``, the verify size of ``complete(speculative=True)``;
        ``rewrite`` uses longer ones, up to ``max_outputs``); one figure per position,
        |gap_single - gap_batched| over the single decode's top two tokens. Zero where the two
        agree bit for bit (short contexts, short batches); on two threads past ~256 tokens of
        context ggml's single-token attention adds up in another order and the figures reach
        tenths of a logit. For tests and benchmarks; leaves the cache empty."""
        return [n for n, _ in self._rounding(prompt, positions, batch)]

    def rounding_flips(
        self, prompt: Sequence[int], positions: int = 96, batch: int | None = None
    ) -> tuple[list[float], int]:
        """``rounding_noise`` and how many of those positions had a different best token
        batched than single (a near-tie flipped by rounding)."""
        pairs = self._rounding(prompt, positions, batch)
        return [n for n, _ in pairs], sum(1 for _, flip in pairs if flip)

    def _rounding(
        self, prompt: Sequence[int], positions: int, batch: int | None
    ) -> list[tuple[float, bool]]:
        import numpy as np

        self._check_open()
        tokens = self._checked_prompt(prompt)
        size = _MAX_DRAFT + 1 if batch is None else batch
        if not 1 <= size <= self.max_outputs:
            raise ValueError(f"batch must be between 1 and max_outputs ({self.max_outputs})")
        count = min(positions, len(tokens) - 1) // size * size
        if count <= 0:
            return []
        start = len(tokens) - count
        self._clear()
        noise: list[tuple[float, bool]] = []
        b = self._batch
        assert b is not None

        def row(i: int) -> np.ndarray:
            ptr = C.llama_get_logits_ith(self._ctx, i)
            return np.ctypeslib.as_array(ptr, shape=(self._n_vocab,)).copy()

        try:
            self._prefill(tokens, 0, start, None, Metrics(), logits=False)
            for g in range(start, len(tokens), size):
                single = []
                for i in range(size):
                    self._decode_one(tokens[g + i], g + i)
                    single.append(row(0))
                C.llama_memory_seq_rm(self._mem, -1, g, -1)
                for i in range(size):
                    self._tok[i], self._pos[i], self._out[i] = tokens[g + i], g + i, 1
                b.n_tokens = size
                if C.llama_decode(self._ctx, b) != 0:
                    raise RuntimeError("llama_decode failed while measuring rounding noise")
                for i in range(size):
                    a, c = single[i], row(i)
                    i2, i1 = (int(x) for x in np.argsort(a)[-2:])
                    noise.append(
                        (abs(float((a[i1] - a[i2]) - (c[i1] - c[i2]))), int(np.argmax(c)) != i1)
                    )
        finally:
            self._clear()
        return noise

    def reset(self) -> None:
        """Empty the KV cache (the next request starts cold)."""
        self._check_open()
        self._clear()

    def close(self) -> None:
        """Free the sampler, batch, context and model; further calls raise."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        if self._smpl:
            C.llama_sampler_free(self._smpl)
            self._smpl = None
        free_llama(self._batch, self._ctx, self._model)
        self._batch = self._ctx = self._model = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # At interpreter shutdown the C bindings may be gone already.
        with contextlib.suppress(Exception):
            self.close()

    # --- prompt evaluation with cache reuse -----------------------------------------------------

    def _replay_for(self, prompt: list[int]) -> list[int] | None:
        """When ``prompt`` runs into tokens this engine generated greedily (a repeated request,
        or one that accepted part of the last completion), the continuation is already known:
        the cached tokens after the prompt, then the successor of the whole cache. Returns
        them (no decode needed to emit them), or None."""
        start, successor = self._greedy_from, self._successor
        n = len(prompt)
        cached = self._cached
        if start is None or successor is None or not start <= n <= len(cached):
            return None
        if _common_prefix(cached, prompt) != n:
            return None
        return [*cached[n:], successor]

    def _forget(self) -> None:
        """The cache changed other than by greedy generation."""
        self._tail = None
        self._greedy_from = None
        self._successor = None

    def _sync(
        self,
        prompt: list[int],
        should_stop: Callable[[], bool] | None,
        m: Metrics,
        *,
        keep_on_cancel: bool = False,
        fresh_from: int | None = None,
    ) -> None:
        """Make the cache hold ``prompt`` with logits for its last token, re-using what it can.
        Raises ``_Cancelled`` (cache left truthful) when ``should_stop`` fires."""
        n = len(prompt)
        cached = self._cached
        k = _common_prefix(cached, prompt)
        if k == n:
            if len(cached) > n:
                self._truncate(n)
            if self._tail is not None:
                self._greedy_from = self._successor = None
                m.reused_prefix_tokens = n
                return
            k = n - 1  # the last token must be run again for its logits
        m.reused_prefix_tokens = k
        runs = (
            _find_runs(cached, prompt, k, _run_limit(n, fresh_from), self.min_reuse_chunk)
            if self.chunk_reuse
            else []
        )

        mem = self._mem
        end = k
        for c0, _, length in runs:  # drop the cells no run keeps
            if c0 > end:
                C.llama_memory_seq_rm(mem, -1, end, c0)
            end = c0 + length
        if end < len(cached):
            C.llama_memory_seq_rm(mem, -1, end, -1)
        if runs:
            self._park(runs, max(len(cached), n) + 1)
        self._cached = prompt[:k]
        self._forget()

        unparked = False
        try:
            pos = k
            for _, p0, length in runs:
                if p0 > pos:
                    self._prefill(prompt, pos, p0, should_stop, m, logits=False)
                self._unpark(p0, p0 + length)
                unparked = True
                self._cached.extend(prompt[p0 : p0 + length])
                m.reused_shifted_tokens += length
                pos = p0 + length
            self._prefill(prompt, pos, n, should_stop, m)
        except _Cancelled:
            if keep_on_cancel and runs and not unparked:
                self._put_back(k, runs, cached)
            else:
                self._recover()
            raise
        except BaseException:
            self._recover()
            raise

    def _put_back(self, k: int, runs: list[tuple[int, int, int]], old: list[int]) -> None:
        """Undo a ``_sync`` cancelled before its first run was unparked: drop what it
        evaluated after the common prefix and move the parked runs back to their old places,
        keeping those that follow on with at most ``_PUT_BACK_GAP`` tokens between them (the
        tokens of such a gap, where the run search found no match, are evaluated again)."""
        mem = self._mem
        for s in _MAIN_SEQS:
            C.llama_memory_seq_rm(mem, s, k, -1)
        del self._cached[k:]
        self._forget()
        for c0, p0, length in runs:  # increasing: each lands below where the next one sits
            # One call moves the cells of both park sequences (as in _park).
            C.llama_memory_seq_add(mem, _PARK_SEQS[0], p0, p0 + length, c0 - p0)
        end = k
        sink = Metrics()
        try:
            for c0, _, length in runs:
                if c0 - end > _PUT_BACK_GAP:
                    break
                if c0 > end:
                    self._prefill(old, end, c0, None, sink, logits=False)
                self._unpark(c0, c0 + length)
                self._cached.extend(old[c0 : c0 + length])
                end = c0 + length
        finally:
            for s in _PARK_SEQS:
                C.llama_memory_seq_rm(mem, s, -1, -1)
            self._forget()

    def _park(self, runs: list[tuple[int, int, int]], offset: int) -> None:
        """Move each run's cells out of the main sequences, to their new positions."""
        mem = self._mem
        p0_seq = _PARK_SEQS[0]
        for c0, _, length in runs:
            for s in _PARK_SEQS:
                C.llama_memory_seq_cp(mem, _MAIN_SEQS[0], s, c0, c0 + length)
            for s in _MAIN_SEQS:
                C.llama_memory_seq_rm(mem, s, c0, c0 + length)
        # Two steps so that no run lands on cells another run has not left yet.
        C.llama_memory_seq_add(mem, p0_seq, 0, -1, offset)
        for c0, p0, length in runs:
            C.llama_memory_seq_add(mem, p0_seq, c0 + offset, c0 + offset + length, p0 - c0 - offset)

    def _unpark(self, p0: int, p1: int) -> None:
        mem = self._mem
        for s in _MAIN_SEQS:
            C.llama_memory_seq_cp(mem, _PARK_SEQS[0], s, p0, p1)
        for s in _PARK_SEQS:
            C.llama_memory_seq_rm(mem, s, p0, p1)

    def _recover(self) -> None:
        """After an aborted or failed decode: drop whatever that decode left behind.

        ``_cached`` only ever grows after a decode succeeded, so it is the truth. (With a
        token in two sequences, llama.cpp rolls an aborted batch back in one of them only,
        and the cells it keeps were never fully computed.)"""
        mem = self._mem
        for s in _PARK_SEQS:
            C.llama_memory_seq_rm(mem, s, -1, -1)
        have = len(self._cached)
        for s in _MAIN_SEQS:
            have = min(have, int(C.llama_memory_seq_pos_max(mem, s)) + 1)
        C.llama_memory_seq_rm(mem, -1, have, -1)
        del self._cached[have:]
        self._forget()

    def _prefill(
        self,
        prompt: Sequence[int],
        start: int,
        end: int,
        should_stop: Callable[[], bool] | None,
        m: Metrics,
        *,
        logits: bool = True,
    ) -> None:
        """Evaluate ``prompt[start:end]`` at those positions, ``n_batch`` tokens a decode;
        logits only for the last token (if ``logits``)."""
        b = self._batch
        assert b is not None
        step = self.n_batch
        if should_stop is not None:
            self._abort_check[0] = should_stop
            C.llama_set_abort_callback(self._ctx, self._abort_cb, None)
        try:
            for s in range(start, end, step):
                e = min(end, s + step)
                count = e - s
                if should_stop is not None and should_stop():
                    raise _Cancelled
                toks = array.array("i", prompt[s:e])
                ctypes.memmove(self._tok_addr, toks.buffer_info()[0], 4 * count)
                poss = array.array("i", range(s, e))
                ctypes.memmove(self._pos_addr, poss.buffer_info()[0], 4 * count)
                ctypes.memset(self._out_addr, 0, count)
                last = logits and e == end
                if last:
                    self._out[count - 1] = 1
                b.n_tokens = count
                began = time.perf_counter()
                rc = C.llama_decode(self._ctx, b)
                if rc != 0:
                    if rc == 2:
                        raise _Cancelled
                    raise RuntimeError(f"llama_decode failed with code {rc} during prefill")
                if count >= 32:  # per token, by batch size class (small batches cost more)
                    self._threads.note(
                        ("prefill", count.bit_length()), (time.perf_counter() - began) / count
                    )
                self._cached.extend(prompt[s:e])
                m.evaluated_tokens += count
                self._tail = count - 1 if last else None
        finally:
            if should_stop is not None:
                C.llama_set_abort_callback(self._ctx, self._no_abort, None)
                self._abort_check[0] = None

    @staticmethod
    def _make_abort(slot: list[Callable[[], bool] | None]) -> Callable[[object], bool]:
        def abort(_data: object) -> bool:
            check = slot[0]
            if check is None:
                return False
            try:
                return bool(check())
            except Exception:  # a broken predicate must not leave a decode running forever
                return True

        return abort

    # --- generation -------------------------------------------------------------------------------

    def _decode_one(self, token: int, pos: int) -> None:
        self._tok[0] = token
        self._pos[0] = pos
        self._out[0] = 1
        b = self._batch
        assert b is not None
        b.n_tokens = 1
        rc = C.llama_decode(self._ctx, b)
        if rc != 0:
            self._recover()
            raise RuntimeError(f"llama_decode failed with code {rc}")

    def _generate(
        self,
        pending: list[int],
        max_tokens: int,
        out: _Output,
        should_stop: Callable[[], bool] | None,
    ) -> str:
        """Plain greedy loop: the hot path is a few ctypes stores and two C calls a token.

        ``pending``: tokens already in the cache (replayed), then the greedy successor of the
        cache, which is the next token to emit."""
        ctx, smpl, cached = self._ctx, self._smpl, self._cached
        tok_p, pos_p, out_p = self._tok, self._pos, self._out
        b = self._batch
        assert b is not None
        decode, sample = C.llama_decode, C.llama_sampler_sample
        clock, note = time.perf_counter, self._threads.note
        n_ctx = self.n_ctx
        token = pending[-1]
        self._successor = token
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
            b.n_tokens = 1
            began = clock()
            rc = decode(ctx, b)
            note(1, clock() - began)
            if rc != 0:
                if rc == 1:  # no room left in the cache
                    return "length"
                self._recover()
                raise RuntimeError(f"llama_decode failed with code {rc}")
            cached.append(token)
            self._tail = 0
            token = sample(smpl, ctx, 0)
            self._successor = token

    def _generate_speculative(
        self,
        pending: list[int],
        prompt: list[int],
        max_tokens: int,
        out: _Output,
        m: Metrics,
        should_stop: Callable[[], bool] | None,
        previous: Sequence[int] = (),
    ) -> str:
        """Greedy decoding with prompt-lookup drafts; ``pending`` as for ``_generate``.

        ``previous`` is the end of the cache before this request. When the text just emitted
        (or the prompt's end) also occurs there, what followed it is the first draft source:
        after an edit elsewhere in the file, the request at the same cursor continues as the
        last one did, so the last completion is drafted whole (and verified like any draft)."""
        ctx, cached = self._ctx, self._cached
        b = self._batch
        assert b is not None
        history = list(prompt)
        where: dict[int, list[int]] = {}
        for i, t in enumerate(history):
            where.setdefault(t, []).append(i)
        old_tokens = list(previous)
        old_where: dict[int, list[int]] = {}
        for i, t in enumerate(old_tokens):
            old_where.setdefault(t, []).append(i)
        # Per n-gram length: [accepted, tried] draft tokens in this request.
        record = {n: [0.0, 0.0] for n in _PRIOR_ACCEPT}
        batch_ms = self._batch_ms
        self._successor = pending[-1]
        while True:
            for t in pending:  # tokens the model chose: emit them in order
                reason = out.push(t)
                if reason is not None:
                    return reason
                if len(out.tokens) >= max_tokens:
                    return "length"
                where.setdefault(t, []).append(len(history))
                history.append(t)
            token = pending[-1]
            room = max_tokens - len(out.tokens)
            pos = len(cached)
            if pos >= self.n_ctx:
                return "length"
            limit = min(_MAX_DRAFT, room - 1, self.n_ctx - pos - 1)
            ngram, draft = 0, []
            if limit > 0 and old_tokens:
                draft = _lookup_in(old_tokens, old_where, history, limit)
                ngram = _PREVIOUS
            if limit > 0 and not draft:
                ngram, draft = _lookup(history, where, limit)
            if draft:
                acc, tried = record[ngram]
                alpha = (acc + _PRIOR_ACCEPT[ngram] * _PRIOR_WEIGHT) / (tried + _PRIOR_WEIGHT)
                draft = draft[: self._draft_length(alpha, len(draft))]
            if should_stop is not None and should_stop():
                return "cancelled"
            count = 1 + len(draft)
            for i in range(count):
                self._tok[i] = token if i == 0 else draft[i - 1]
                self._pos[i] = pos + i
                self._out[i] = 1
            b.n_tokens = count
            began = time.perf_counter()
            rc = C.llama_decode(ctx, b)
            if rc != 0:
                if rc == 1:
                    return "length"
                self._recover()
                raise RuntimeError(f"llama_decode failed with code {rc}")
            took = (time.perf_counter() - began) * 1000.0
            self._threads.note(count, took / 1000.0)
            old = batch_ms[count]
            batch_ms[count] = took if old is None else 0.8 * old + 0.2 * took
            accepted, nxt = self._keep_agreeing(token, draft, pos)
            if draft:
                m.drafted_tokens += len(draft)
                m.accepted_tokens += accepted
                # Each drafted token up to the first rejection was one trial.
                rec = record[ngram]
                rec[0] += accepted
                rec[1] += accepted + (accepted < len(draft))
            self._successor = nxt
            pending = [*draft[:accepted], nxt]

    def _generate_rewrite(
        self,
        pending: list[int],
        prompt: list[int],
        known: list[int],
        max_tokens: int,
        max_batch: int,
        out: _Output,
        m: RewriteMetrics,
        should_stop: Callable[[], bool] | None,
        alt: Sequence[int] = (),
    ) -> str:
        """The loop of ``rewrite``; ``pending`` as for ``_generate``.

        ``at`` is the draft pointer: while the output follows ``known`` (``synced``), the next
        token expected is ``known[at]``. A disagreement leaves the draft; each emitted token
        then looks up the last ``_REJOIN_NGRAM`` emitted tokens in ``known`` at or after
        ``floor`` (the end of the last trusted agreement) and rejoins at the nearest match.
        Off the draft, prompt-lookup drafts (the edit's new code is in the prompt) are
        verified in short batches. ``alt`` (the edit's code) is a second draft followed the
        same way (``alt_at``): where the output leaves ``known`` and its last tokens occur in
        ``alt``, what follows them there is the draft, in batches as long as the known text's.
        Each batch's rows are sampled with llama.cpp's greedy sampler in C, one row at a time
        up to the first disagreement."""
        ctx, cached = self._ctx, self._cached
        b = self._batch
        assert b is not None
        tok_p, pos_p, out_p = self._tok, self._pos, self._out
        decode = C.llama_decode
        clock, note = time.perf_counter, self._threads.note
        n_known = len(known)
        grams: dict[tuple[int, ...], list[int]] = {}  # n-gram -> draft positions after it
        g = _REJOIN_NGRAM
        for j in range(g, n_known + 1):
            grams.setdefault(tuple(known[j - g : j]), []).append(j)
        history = list(prompt)
        where: dict[int, list[int]] = {}
        for i, t in enumerate(history):
            where.setdefault(t, []).append(i)
        at, floor, synced, since_rejoin = 0, 0, True, _REJOIN_CONFIRM
        n_alt = len(alt)
        alt_grams: dict[tuple[int, ...], list[int]] = {}
        for j in range(g, n_alt + 1):
            alt_grams.setdefault(tuple(alt[j - g : j]), []).append(j)
        alt_at, alt_synced = 0, False
        # Per draft source: [accepted, tried] draft tokens in this request.
        record = {k: [0.0, 0.0] for k in _REWRITE_PRIOR}
        emitted = out.tokens
        if should_stop is not None:
            self._abort_check[0] = should_stop
            C.llama_set_abort_callback(ctx, self._abort_cb, None)
        try:
            while True:
                for t in pending:
                    reason = out.push(t)
                    if reason is not None:
                        return reason
                    if len(emitted) >= max_tokens:
                        return "length"
                    where.setdefault(t, []).append(len(history))
                    history.append(t)
                    if alt_synced and alt_at < n_alt and alt[alt_at] == t:
                        alt_at += 1
                    elif alt_grams and len(emitted) >= g:
                        ends = alt_grams.get(tuple(emitted[-g:]))
                        k = bisect.bisect_left(ends, alt_at) if ends else 0
                        if ends and k < len(ends):
                            alt_at, alt_synced = ends[k], True
                        elif ends:
                            alt_at, alt_synced = ends[0], True
                        else:
                            alt_synced = False
                    else:
                        alt_synced = False
                    if synced and at < n_known and known[at] == t:
                        at += 1
                        since_rejoin += 1
                        if since_rejoin >= _REJOIN_CONFIRM:
                            floor = at
                        continue
                    synced = False  # the model leaves the draft here
                    if len(emitted) >= g:
                        ends = grams.get(tuple(emitted[-g:]))
                        if ends:
                            k = bisect.bisect_left(ends, floor + g)
                            if k < len(ends):
                                at, synced, since_rejoin = ends[k], True, 0
                                m.rejoins += 1
                token = pending[-1]
                pos = len(cached)
                if pos >= self.n_ctx:
                    return "length"
                room = min(max_tokens - len(emitted), self.n_ctx - pos, max_batch) - 1
                if synced and (since_rejoin >= _REJOIN_CONFIRM or not alt_synced):
                    source = _KNOWN if since_rejoin >= _REJOIN_CONFIRM else _REJOINED
                    spec = known[at : at + room] if room > 0 else []
                elif alt_synced and alt_at < n_alt:
                    source = _ALT
                    spec = list(alt[alt_at : alt_at + room]) if room > 0 else []
                else:
                    source = _LOOKUP
                    n, spec = (
                        _lookup(history, where, min(room, _LOOKUP_MAX)) if room > 0 else (0, [])
                    )
                    if n < _LOOKUP_MIN_NGRAM:
                        spec = []
                candidate = spec
                if spec:
                    prior, weight = _REWRITE_PRIOR[source]
                    acc, tried = record[source]
                    alpha = (acc + prior * weight) / (tried + weight)
                    spec = spec[: _best_length(alpha, len(spec), max_batch, self.row_costs)]
                if should_stop is not None and should_stop():
                    return "cancelled"
                count = 1 + len(spec)
                tok_p[0], pos_p[0], out_p[0] = token, pos, 1
                for i in range(1, count):
                    tok_p[i] = spec[i - 1]
                    pos_p[i] = pos + i
                    out_p[i] = 1
                b.n_tokens = count
                began = clock()
                rc = decode(ctx, b)
                if rc != 0:
                    self._recover()
                    if rc == 2:
                        return "cancelled"
                    if rc == 1:
                        return "length"
                    raise RuntimeError(f"llama_decode failed with code {rc}")
                took = clock() - began
                note(("rewrite", count.bit_length()), took / count)
                accepted, nxt = self._keep_agreeing(token, spec, pos)
                if _TRACE is not None:
                    _TRACE.append(
                        (
                            source if candidate else -1,
                            len(candidate),
                            len(spec),
                            accepted,
                            round(took * 1000),
                        )
                    )
                self._successor = nxt
                m.batches += 1
                m.largest_batch = max(m.largest_batch, count)
                if candidate:
                    # Trials: the verified draft tokens up to the first rejection, and, when
                    # all were accepted, the next candidate token against the model's choice
                    # (free: that is how a source that is not drafted from gets tried again).
                    trials = accepted + (accepted < len(spec))
                    hits = accepted
                    if accepted == len(spec) and len(candidate) > accepted:
                        trials += 1
                        hits += candidate[accepted] == nxt
                    rec = record[source]
                    rec[0] = rec[0] * _REWRITE_FADE + hits
                    rec[1] = rec[1] * _REWRITE_FADE + trials
                if spec:
                    m.drafted_tokens += len(spec)
                    m.accepted_tokens += accepted
                    if source == _LOOKUP:
                        m.lookup_batches += 1
                    elif source == _ALT:
                        m.alt_batches += 1
                    else:
                        m.draft_batches += 1
                pending = [*spec[:accepted], nxt]
        finally:
            if should_stop is not None:
                C.llama_set_abort_callback(ctx, self._no_abort, None)
                self._abort_check[0] = None

    def _keep_agreeing(self, token: int, draft: Sequence[int], pos: int) -> tuple[int, int]:
        """After one decode of ``[token, *draft]`` at ``pos`` with logits on every row: how
        many draft tokens are the model's own greedy choices (llama.cpp's greedy sampler, row
        by row in C, up to the first disagreement) and the model's next token after them. The
        rejected cells leave the cache; the last kept row becomes the tail."""
        ctx, smpl, sample = self._ctx, self._smpl, C.llama_sampler_sample
        self._cached.append(token)
        self._cached.extend(draft)
        accepted = 0
        nxt = sample(smpl, ctx, 0)
        while accepted < len(draft) and nxt == draft[accepted]:
            accepted += 1
            nxt = sample(smpl, ctx, accepted)
        if accepted < len(draft):
            C.llama_memory_seq_rm(self._mem, -1, pos + 1 + accepted, -1)
            del self._cached[pos + 1 + accepted :]
        self._tail = accepted
        return accepted, int(nxt)

    def _draft_length(self, alpha: float, available: int) -> int:
        """How many of ``available`` drafted tokens to verify: the count that maximises the
        expected tokens gained per unit of decode time, given a per-token acceptance chance
        ``alpha`` and the measured cost of each batch size (0 = do not draft)."""
        ms = self._batch_ms
        base = ms[1]
        best, best_rate = 0, 1.0
        expected, term = 1.0, 1.0
        for d in range(1, available + 1):
            term *= alpha
            expected += term
            cost = ms[d + 1]
            # Unmeasured sizes get an optimistic guess: trying them once measures them.
            ratio = cost / base if cost is not None and base else 1.0 + 0.15 * d
            if expected / ratio > best_rate:
                best, best_rate = d, expected / ratio
        return best

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
        self._cached = []
        self._forget()

    def _truncate(self, n: int) -> None:
        C.llama_memory_seq_rm(self._mem, -1, n, -1)
        del self._cached[n:]
        self._forget()

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


def _lookup_in(
    source: list[int], where: dict[int, list[int]], history: list[int], limit: int
) -> list[int]:
    """The tokens that followed, in ``source``, the latest occurrence of ``history``'s last
    ``_NGRAM_MAX`` tokens (nothing unless all of them match and something follows)."""
    if len(history) < _NGRAM_MAX:
        return []
    tail = history[-_NGRAM_MAX:]
    for j in reversed(where.get(tail[-1], ())):
        if (
            j + 1 < len(source)
            and j >= _NGRAM_MAX - 1
            and source[j - _NGRAM_MAX + 1 : j + 1] == tail
        ):
            return source[j + 1 : j + 1 + limit]
    return []


def _lookup(history: list[int], where: dict[int, list[int]], limit: int) -> tuple[int, list[int]]:
    """Prompt-lookup draft: the tokens that followed the latest earlier occurrence of the
    longest recent n-gram (``_NGRAM_MAX`` down to ``_NGRAM_MIN`` tokens). Returns the n-gram
    length and up to ``limit`` tokens."""
    last = len(history) - 1
    cands = where.get(history[last])
    if not cands:
        return 0, []
    best_n, best_j, seen = 0, -1, 0
    for j in reversed(cands):
        if j >= last:
            continue
        n = 1
        while n < _NGRAM_MAX and j - n >= 0 and history[j - n] == history[last - n]:
            n += 1
        if n > best_n:
            best_n, best_j = n, j
            if n == _NGRAM_MAX:
                break
        seen += 1
        if seen >= _LOOKUP_CANDIDATES:
            break
    if best_n < _NGRAM_MIN:
        return 0, []
    return best_n, history[best_j + 1 : best_j + 1 + limit]
