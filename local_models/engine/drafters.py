"""Where speculative drafts come from, and how long a verify batch should be: pure policy,
table-tested without a model (``Engine`` verifies what these propose).

* ``PromptLookup``: the tokens that followed the latest earlier occurrence of the current
  n-gram in prompt + output.
* ``SpeculativeDrafter`` (``complete(speculative=True)``): the previous cache's continuation
  first, then prompt lookup, each draft cut to the length that pays (``draft_length``).
* ``RewriteDrafter`` (``rewrite``, speculative edits): the known text is the draft; after the
  output leaves it, the alternative text (the edit's own code) or prompt lookup, until the
  output rejoins the known text; batch lengths from ``best_length``.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "BATCH_SIZES",
    "MAX_DRAFT",
    "ROW_COST_PRIOR",
    "DraftSource",
    "PromptLookup",
    "Proposal",
    "RewriteDrafter",
    "SpeculativeDrafter",
    "best_length",
    "draft_length",
    "lookup_in",
    "row_cost",
    "scaled_costs",
]

# With flash attention on and up to ~256 tokens of context, verify batches of up to 7 tokens
# give logits bit-identical to single-token decoding (measured); from 8 tokens on ggml takes
# other kernels whose rounding moves logits by up to ~0.3. So a draft is at most 6 tokens.
# Past ~256 tokens of context on more than one thread, ggml's single-token attention sums in
# another order than a batch's and the two differ by rounding anyway (``diagnostics.rounding_noise``
# measures it): a near-tie may then flip, as it would between two thread counts.
MAX_DRAFT = 6
NGRAM_MAX = 4
NGRAM_MIN = 2
PREVIOUS = 0  # the draft-source key of "the previous cache's continuation" in PRIOR_ACCEPT
LOOKUP_CANDIDATES = 32
# Prior chance that a drafted token is accepted, by the length of the n-gram that found it,
# and how many observations that prior is worth; a request's own record soon dominates.
PRIOR_ACCEPT = {2: 0.4, 3: 0.5, 4: 0.6, PREVIOUS: 0.85}
PRIOR_WEIGHT = 2.0
# Speculative edits (``rewrite``): a rejoin is the last REJOIN_NGRAM emitted tokens found in
# the draft. A verify batch's length maximises the expected tokens per unit of cost, from the
# acceptance seen so far in the request (per draft source, with priors) and the cost of each
# batch size (``best_length``). Prompt-lookup drafts (off the known text) are at most
# LOOKUP_MAX tokens.
REJOIN_NGRAM = 3
LOOKUP_MAX = 16
# A rejoin is trusted (the search floor moves past it) once this many draft tokens after it
# were accepted: a rejoin in boilerplate that the model leaves at once is not trusted.
REJOIN_CONFIRM = 8
LOOKUP_MIN_NGRAM = 3
# The record of each source fades (older batches count less), so it follows the request's
# phases: copying, writing new code, copying again.
REWRITE_FADE = 0.9
# Cost per row of a decode with logits on every row, relative to a one-token decode, by batch
# size, measured on Gemma 3 270M (Q8_0 output layer, 262k x 640: computed for every row, so
# rows stay expensive) on one thread. ggml's batched kernels work in tiles: sizes that fill them
# (4, 6, 8, 12, ...) cost less per row than their odd neighbours, and two or three rows cost
# more than one. Verify batches use the listed sizes (or what is left of the draft).
ROW_COST_PRIOR = {
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
BATCH_SIZES = tuple(sorted(ROW_COST_PRIOR))
# Batch sizes an apply engine times when it starts (``Engine.row_costs``); the other listed
# sizes scale the prior by the nearest measured one.
MEASURED_SIZES = (1, 4, 8, 16, 32, 64)
# How far (as a factor) a measured per-row cost may stray from the prior's.
COST_SPREAD = 1.5


class DraftSource(enum.IntEnum):
    """Where a rewrite's draft came from: the known text (trusted), the known text just after
    a rejoin, prompt lookup, the alternative text."""

    KNOWN = 0
    REJOINED = 1
    LOOKUP = 2
    ALT = 3


# Prior per-token acceptance of each rewrite draft source and its weight in observations.
REWRITE_PRIOR = {
    DraftSource.KNOWN: (0.97, 8.0),
    DraftSource.REJOINED: (0.8, 4.0),
    DraftSource.LOOKUP: (0.8, 2.0),
    DraftSource.ALT: (0.9, 4.0),
}


# --- batch lengths --------------------------------------------------------------------------------


def row_cost(n: int, table: Mapping[int, float] | None = None) -> float:
    """Relative cost of a decode of ``n`` rows with logits for every row: ``n`` times the
    per-row cost of the nearest listed size in ``table`` (default ``ROW_COST_PRIOR``)."""
    costs = ROW_COST_PRIOR if table is None else table
    listed = min(costs, key=lambda k: (abs(k - n), k))
    return n * costs[listed]


def scaled_costs(measured: Mapping[int, float]) -> dict[int, float]:
    """A per-row cost table for every listed size from decode times measured at some of them
    (``measured``: size -> ms): measured sizes relative to one row; the others the prior's
    figure scaled as the nearest measured size differs from the prior."""
    one = measured.get(1)
    if not one:
        return dict(ROW_COST_PRIOR)
    # Each size within a factor of the prior: a decode slowed down by another process while
    # it was timed (a shared machine) must not turn speculation off for the engine's life.
    rel = {
        k: min(max(ms / k / one, ROW_COST_PRIOR[k] / COST_SPREAD), ROW_COST_PRIOR[k] * COST_SPREAD)
        for k, ms in measured.items()
        if k in ROW_COST_PRIOR
    }
    out: dict[int, float] = {}
    for size, prior in ROW_COST_PRIOR.items():
        near = min(rel, key=lambda k: (abs(k - size), k))
        out[size] = rel[size] if size in rel else prior * rel[near] / ROW_COST_PRIOR[near]
    return out


def best_length(
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
    best, best_rate = 0, 1.0 / row_cost(1, costs)
    for d in sorted({*(k - 1 for k in BATCH_SIZES if k <= max_batch), available}):
        if not 0 < d <= min(available, max_batch - 1):
            continue
        expected = (1.0 - alpha ** (d + 1)) / (1.0 - alpha) if alpha < 1.0 else d + 1.0
        rate = expected / row_cost(d + 1, costs)
        if rate > best_rate:
            best, best_rate = d, rate
    return best


def draft_length(alpha: float, available: int, batch_ms: Sequence[float | None]) -> int:
    """How many of ``available`` drafted tokens to verify: the count that maximises the
    expected tokens gained per unit of decode time, given a per-token acceptance chance
    ``alpha`` and the measured cost of each batch size (``batch_ms[size]``, None: not measured
    yet) (0 = do not draft)."""
    base = batch_ms[1]
    best, best_rate = 0, 1.0
    expected, term = 1.0, 1.0
    for d in range(1, available + 1):
        term *= alpha
        expected += term
        cost = batch_ms[d + 1]
        # Unmeasured sizes get an optimistic guess: trying them once measures them.
        ratio = cost / base if cost is not None and base else 1.0 + 0.15 * d
        if expected / ratio > best_rate:
            best, best_rate = d, expected / ratio
    return best


# --- prompt lookup --------------------------------------------------------------------------------


def lookup_in(
    source: Sequence[int], where: Mapping[int, list[int]], history: Sequence[int], limit: int
) -> list[int]:
    """The tokens that followed, in ``source`` (indexed by ``where``: token -> positions), the
    latest occurrence of ``history``'s last ``NGRAM_MAX`` tokens (nothing unless all of them
    match and something follows)."""
    if len(history) < NGRAM_MAX:
        return []
    tail = list(history[-NGRAM_MAX:])
    for j in reversed(where.get(tail[-1], ())):
        if (
            j + 1 < len(source)
            and j >= NGRAM_MAX - 1
            and list(source[j - NGRAM_MAX + 1 : j + 1]) == tail
        ):
            return list(source[j + 1 : j + 1 + limit])
    return []


def _index(tokens: Sequence[int]) -> dict[int, list[int]]:
    where: dict[int, list[int]] = {}
    for i, t in enumerate(tokens):
        where.setdefault(t, []).append(i)
    return where


class PromptLookup:
    """Prompt + output so far (``history``), indexed by token, for prompt-lookup drafts."""

    def __init__(self, prompt: Sequence[int]) -> None:
        self.history = list(prompt)
        self._where = _index(self.history)

    def push(self, token: int) -> None:
        self._where.setdefault(token, []).append(len(self.history))
        self.history.append(token)

    def draft(self, limit: int) -> tuple[int, list[int]]:
        """The tokens that followed the latest earlier occurrence of the longest recent n-gram
        (``NGRAM_MAX`` down to ``NGRAM_MIN`` tokens): ``(n-gram length, up to limit tokens)``,
        or ``(0, [])``."""
        history = self.history
        last = len(history) - 1
        cands = self._where.get(history[last])
        if not cands:
            return 0, []
        best_n, best_j, seen = 0, -1, 0
        for j in reversed(cands):
            if j >= last:
                continue
            n = 1
            while n < NGRAM_MAX and j - n >= 0 and history[j - n] == history[last - n]:
                n += 1
            if n > best_n:
                best_n, best_j = n, j
                if n == NGRAM_MAX:
                    break
            seen += 1
            if seen >= LOOKUP_CANDIDATES:
                break
        if best_n < NGRAM_MIN:
            return 0, []
        return best_n, history[best_j + 1 : best_j + 1 + limit]


# --- complete(speculative=True) -------------------------------------------------------------------


class SpeculativeDrafter:
    """Drafts for ``complete(speculative=True)``. ``previous`` is the end of the cache before
    the request: when the text just emitted (or the prompt's end) also occurs there, what
    followed it is the first draft source (after an edit elsewhere in the file, the request at
    the same cursor continues as the last one did); else prompt lookup. Each source's record
    of acceptance in this request (with priors) sets its draft length (``draft_length``)."""

    def __init__(self, prompt: Sequence[int], previous: Sequence[int] = ()) -> None:
        self.lookup = PromptLookup(prompt)
        self._previous = list(previous)
        self._previous_where = _index(self._previous)
        # Per n-gram length (or PREVIOUS): [accepted, tried] draft tokens in this request.
        self._record = {n: [0.0, 0.0] for n in PRIOR_ACCEPT}

    def push(self, token: int) -> None:
        self.lookup.push(token)

    def propose(self, limit: int, batch_ms: Sequence[float | None]) -> tuple[int, list[int]]:
        """``(source, draft)``: up to ``limit`` tokens worth verifying after the last one."""
        ngram, draft = 0, []
        if limit > 0 and self._previous:
            draft = lookup_in(self._previous, self._previous_where, self.lookup.history, limit)
            ngram = PREVIOUS
        if limit > 0 and not draft:
            ngram, draft = self.lookup.draft(limit)
        if draft:
            acc, tried = self._record[ngram]
            alpha = (acc + PRIOR_ACCEPT[ngram] * PRIOR_WEIGHT) / (tried + PRIOR_WEIGHT)
            draft = draft[: draft_length(alpha, len(draft), batch_ms)]
        return ngram, draft

    def verified(self, source: int, drafted: int, accepted: int) -> None:
        """``accepted`` of ``drafted`` tokens from ``source`` were the model's own choices."""
        if drafted:
            # Each drafted token up to the first rejection was one trial.
            rec = self._record[source]
            rec[0] += accepted
            rec[1] += accepted + (accepted < drafted)


# --- rewrite (speculative edits) ------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """A rewrite's next verify batch: ``tokens`` (cut from ``candidate`` to the length that
    pays) from ``source``."""

    source: DraftSource
    candidate: list[int]
    tokens: list[int]


def _gram_ends(tokens: Sequence[int], g: int) -> dict[tuple[int, ...], list[int]]:
    """n-gram -> the positions just after each of its occurrences, increasing."""
    grams: dict[tuple[int, ...], list[int]] = {}
    for j in range(g, len(tokens) + 1):
        grams.setdefault(tuple(tokens[j - g : j]), []).append(j)
    return grams


class RewriteDrafter:
    """Drafts for ``rewrite`` (speculative edits).

    ``at`` is the draft pointer: while the output follows ``known`` (``synced``), the next
    token expected is ``known[at]``. A disagreement leaves the draft; each emitted token then
    looks up the last ``REJOIN_NGRAM`` emitted tokens in ``known`` at or after ``floor`` (the
    end of the last trusted agreement) and rejoins at the nearest match. Off the draft,
    prompt-lookup drafts (the edit's new code is in the prompt) are verified in short
    batches. ``alt`` (the edit's code) is a second draft followed the same way (``alt_at``):
    where the output leaves ``known`` and its last tokens occur in ``alt``, what follows them
    there is the draft, in batches as long as the known text's. Each source keeps a fading
    record of acceptance (with priors) that sets the batch length (``best_length`` over the
    engine's per-row ``costs``)."""

    def __init__(
        self,
        prompt: Sequence[int],
        known: Sequence[int],
        alt: Sequence[int] = (),
        *,
        max_batch: int,
        costs: Mapping[int, float] | None = None,
    ) -> None:
        self.lookup = PromptLookup(prompt)
        self.known = list(known)
        self.alt = list(alt)
        self.max_batch = max_batch
        self.costs = costs
        self._grams = _gram_ends(self.known, REJOIN_NGRAM)
        self._alt_grams = _gram_ends(self.alt, REJOIN_NGRAM)
        self.at, self.floor, self.synced, self.since_rejoin = 0, 0, True, REJOIN_CONFIRM
        self.alt_at, self.alt_synced = 0, False
        self.emitted = 0
        self.rejoins = 0
        # Per draft source: [accepted, tried] draft tokens in this request (fading).
        self._record = {k: [0.0, 0.0] for k in REWRITE_PRIOR}

    def push(self, token: int) -> None:
        """One emitted token: follow it in ``alt`` and ``known``, rejoining ``known`` when the
        output's last tokens occur there again."""
        g = REJOIN_NGRAM
        self.emitted += 1
        self.lookup.push(token)
        history = self.lookup.history
        alt = self.alt
        if self.alt_synced and self.alt_at < len(alt) and alt[self.alt_at] == token:
            self.alt_at += 1
        elif self._alt_grams and self.emitted >= g:
            ends = self._alt_grams.get(tuple(history[-g:]))
            k = bisect.bisect_left(ends, self.alt_at) if ends else 0
            if ends and k < len(ends):
                self.alt_at, self.alt_synced = ends[k], True
            elif ends:
                self.alt_at, self.alt_synced = ends[0], True
            else:
                self.alt_synced = False
        else:
            self.alt_synced = False
        if self.synced and self.at < len(self.known) and self.known[self.at] == token:
            self.at += 1
            self.since_rejoin += 1
            if self.since_rejoin >= REJOIN_CONFIRM:
                self.floor = self.at
            return
        self.synced = False  # the model leaves the draft here
        if self.emitted >= g:
            ends = self._grams.get(tuple(history[-g:]))
            if ends:
                k = bisect.bisect_left(ends, self.floor + g)
                if k < len(ends):
                    self.at, self.synced, self.since_rejoin = ends[k], True, 0
                    self.rejoins += 1

    def propose(self, room: int) -> Proposal:
        """The next verify batch's draft: up to ``room`` tokens after the pending one."""
        spec: list[int]
        if self.synced and (self.since_rejoin >= REJOIN_CONFIRM or not self.alt_synced):
            trusted = self.since_rejoin >= REJOIN_CONFIRM
            source = DraftSource.KNOWN if trusted else DraftSource.REJOINED
            spec = self.known[self.at : self.at + room] if room > 0 else []
        elif self.alt_synced and self.alt_at < len(self.alt):
            source = DraftSource.ALT
            spec = self.alt[self.alt_at : self.alt_at + room] if room > 0 else []
        else:
            source = DraftSource.LOOKUP
            n, spec = self.lookup.draft(min(room, LOOKUP_MAX)) if room > 0 else (0, [])
            if n < LOOKUP_MIN_NGRAM:
                spec = []
        candidate = spec
        if spec:
            prior, weight = REWRITE_PRIOR[source]
            acc, tried = self._record[source]
            alpha = (acc + prior * weight) / (tried + weight)
            spec = spec[: best_length(alpha, len(spec), self.max_batch, self.costs)]
        return Proposal(source, candidate, spec)

    def verified(self, proposal: Proposal, accepted: int, nxt: int) -> None:
        """The batch kept ``accepted`` of the proposal's tokens; ``nxt`` is the model's token
        after them."""
        candidate, spec = proposal.candidate, proposal.tokens
        if not candidate:
            return
        # Trials: the verified draft tokens up to the first rejection, and, when all were
        # accepted, the next candidate token against the model's choice (free: that is how a
        # source that is not drafted from gets tried again).
        trials = accepted + (accepted < len(spec))
        hits = accepted
        if accepted == len(spec) and len(candidate) > accepted:
            trials += 1
            hits += candidate[accepted] == nxt
        rec = self._record[proposal.source]
        rec[0] = rec[0] * REWRITE_FADE + hits
        rec[1] = rec[1] * REWRITE_FADE + trials
