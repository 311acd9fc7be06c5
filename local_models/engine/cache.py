"""The KV cache's bookkeeping, apart from llama.cpp: which tokens the cache holds, what a new
prompt can re-use (the longest common prefix, then moved runs of cached tokens) and what a
request may replay without a decode. Pure: ``Engine`` applies the plans to llama.cpp's memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["KvLedger", "Run", "SyncPlan", "common_prefix", "find_runs", "run_limit"]

# A g-gram found more often than this in the prompt is not an anchor for a moved run.
RUN_CANDIDATES = 16

Run = tuple[int, int, int]  # (cache_pos, prompt_pos, length)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """The length of the longest common prefix of ``a`` and ``b``."""
    n = min(len(a), len(b))
    i = 0
    # Compare in slices first (fast in C), then finish token by token.
    step = 64
    while i + step <= n and a[i : i + step] == b[i : i + step]:
        i += step
    while i < n and a[i] == b[i]:
        i += 1
    return i


def run_limit(n: int, fresh_from: int | None) -> int:
    """The end of the prompt positions moved runs may fill: never the last token (it is run
    again for its logits), never past ``fresh_from``."""
    return n - 1 if fresh_from is None else max(0, min(n - 1, fresh_from))


def find_runs(
    cached: Sequence[int], prompt: Sequence[int], start: int, limit: int, min_run: int
) -> list[Run]:
    """Runs of ``cached[start:]`` that reappear in ``prompt[start:limit]``.

    Returns ``(cache_pos, prompt_pos, length)`` triples, increasing in both positions, not
    overlapping, each at least ``min_run`` long. Chosen longest first (then the longest in the
    gaps on either side, as ``difflib`` does), so boilerplate repeated across a file cannot
    pull the alignment away from the run that really moved.
    """
    g = min_run
    if g <= 0 or len(cached) - start < g or limit - start < g:
        return []
    found = _diagonal_runs(cached, prompt, start, limit, g)
    runs = _extended(cached, prompt, start, limit, found)
    return _choose(runs, start, len(cached), limit, g)


def _diagonal_runs(
    cached: Sequence[int], prompt: Sequence[int], start: int, limit: int, g: int
) -> list[Run]:
    """Maximal runs per diagonal (prompt_pos - cache_pos) from matching g-grams (a g-gram
    found more than ``RUN_CANDIDATES`` times in the prompt is no anchor)."""
    where: dict[tuple[int, ...], list[int]] = {}
    for p in range(start, limit - g + 1):
        where.setdefault(tuple(prompt[p : p + g]), []).append(p)
    found: list[Run] = []
    open_runs: dict[int, list[int]] = {}  # diagonal -> [first c, last c]
    for c in range(start, len(cached) - g + 1):
        cands = where.get(tuple(cached[c : c + g]))
        if not cands or len(cands) > RUN_CANDIDATES:
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
    return found


def _extended(
    cached: Sequence[int], prompt: Sequence[int], start: int, limit: int, found: list[Run]
) -> list[tuple[int, int, int]]:
    """The runs extended over tokens whose g-gram was too common to index, as ``(length,
    cache_pos, prompt_pos)``, longest first; pieces of one diagonal that an extension already
    covers are dropped."""
    m = len(cached)
    found = sorted(found, key=lambda r: (r[1] - r[0], r[0]))
    runs: list[tuple[int, int, int]] = []
    last_d: int | None = None
    last_end = -1
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
    return runs


def _choose(runs: list[tuple[int, int, int]], start: int, m: int, limit: int, g: int) -> list[Run]:
    """The longest run (clipped to the window) in the whole range, then recursively in the
    windows on either side of it; increasing."""
    chosen: list[Run] = []
    windows = [(start, m, start, limit)]
    while windows:
        c_lo, c_hi, p_lo, p_hi = windows.pop()
        best: Run | None = None
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


@dataclass(frozen=True)
class SyncPlan:
    """How to make the cache hold a prompt with logits for its last token.

    ``ready``: it already does (nothing to do). Otherwise keep ``prefix`` tokens, drop the
    cache ranges ``drops`` (``(start, end)``, ``end`` None: to the end), move each of ``runs``
    to its prompt position (parked at ``park_offset`` while the text before it is evaluated)
    and evaluate the rest of the prompt: ``gaps`` without logits, then ``final`` with logits
    for its last token."""

    ready: bool
    prefix: int
    runs: tuple[Run, ...] = ()
    drops: tuple[tuple[int, int | None], ...] = ()
    park_offset: int = 0
    prompt_len: int = 0

    @property
    def gaps(self) -> tuple[tuple[int, int], ...]:
        """The prompt ranges evaluated before each run (empty ones left out)."""
        out: list[tuple[int, int]] = []
        pos = self.prefix
        for _, p0, length in self.runs:
            if p0 > pos:
                out.append((pos, p0))
            pos = p0 + length
        return tuple(out)

    @property
    def final(self) -> tuple[int, int]:
        """The last range evaluated: after the last run to the prompt's end."""
        pos = self.prefix
        if self.runs:
            _, p0, length = self.runs[-1]
            pos = p0 + length
        return pos, self.prompt_len

    @property
    def cost(self) -> int:
        """Prompt tokens this plan evaluates."""
        if self.ready:
            return 0
        return self.prompt_len - self.prefix - sum(length for _, _, length in self.runs)


class KvLedger:
    """What the KV cache holds, kept true by ``Engine``: ``tokens`` sit in the main sequences at
    positions ``0..len-1``; ``tail`` is the output row of the last decode when it holds the
    logits of the last cached token (else None). Tokens from ``greedy_from`` on were generated
    greedily and ``successor`` is the greedy choice after the whole cache (sampled, not yet
    decoded): a prompt that runs into them gets them back without a decode."""

    def __init__(self, *, min_run: int, chunk_reuse: bool) -> None:
        self.min_run = min_run
        self.chunk_reuse = chunk_reuse
        self.tokens: list[int] = []
        self.tail: int | None = None
        self.greedy_from: int | None = None
        self.successor: int | None = None

    def forget(self) -> None:
        """The cache changed other than by greedy generation."""
        self.tail = None
        self.greedy_from = None
        self.successor = None

    def clear(self) -> None:
        self.tokens = []
        self.forget()

    def truncate(self, n: int) -> None:
        del self.tokens[n:]
        self.forget()

    def replay_for(self, prompt: Sequence[int]) -> list[int] | None:
        """When ``prompt`` runs into tokens generated greedily (a repeated request, or one that
        accepted part of the last completion), the continuation is already known: the cached
        tokens after the prompt, then the successor of the whole cache. Returns them (no decode
        needed to emit them), or None."""
        start, successor = self.greedy_from, self.successor
        n = len(prompt)
        cached = self.tokens
        if start is None or successor is None or not start <= n <= len(cached):
            return None
        if common_prefix(cached, prompt) != n:
            return None
        return [*cached[n:], successor]

    def runs(self, prompt: Sequence[int], start: int, fresh_from: int | None) -> list[Run]:
        """The moved runs a prompt re-uses after its common prefix ``start``."""
        if not self.chunk_reuse:
            return []
        return find_runs(
            self.tokens, prompt, start, run_limit(len(prompt), fresh_from), self.min_run
        )

    def reuse_cost(self, prompt: Sequence[int], fresh_from: int | None = None) -> int:
        """How many of ``prompt``'s tokens a request would evaluate now: those neither replayed,
        nor in the common prefix, nor in a moved run (``plan``'s cost)."""
        if self.replay_for(prompt) is not None:
            return 0
        return self.plan(prompt, fresh_from).cost

    def plan(self, prompt: Sequence[int], fresh_from: int | None = None) -> SyncPlan:
        """How to make the cache hold ``prompt`` with logits for its last token (see
        ``SyncPlan``). When the prompt is all cached but the cache is longer or has no logits
        for it, its last token is evaluated again."""
        n = len(prompt)
        cached = self.tokens
        k = common_prefix(cached, prompt)
        if k == n:
            if len(cached) == n and self.tail is not None:
                return SyncPlan(ready=True, prefix=n, prompt_len=n)
            k = n - 1  # the last token must be run again for its logits
        runs = self.runs(prompt, k, fresh_from)
        drops: list[tuple[int, int | None]] = []
        end = k
        for c0, _, length in runs:  # the cells no run keeps
            if c0 > end:
                drops.append((end, c0))
            end = c0 + length
        if end < len(cached):
            drops.append((end, None))
        return SyncPlan(
            ready=False,
            prefix=k,
            runs=tuple(runs),
            drops=tuple(drops),
            park_offset=max(len(cached), n) + 1,
            prompt_len=n,
        )
