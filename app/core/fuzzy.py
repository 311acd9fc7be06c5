"""Fuzzy ranking of workspace paths for quick open (Ctrl+P).

Matching rules, as a user of VS Code or Zed expects them:

* Case-insensitive. ``\\`` in the query is read as ``/``, and ``/`` matches path separators.
* Whitespace splits the query into *terms*. Every term must occur in the path as a subsequence
  (its characters in order, gaps allowed); the terms may match in any order and anywhere, so
  ``"editor tests"`` finds ``tests/test_editor.py``. A path's score is the sum of its terms'
  scores, and ``Match.positions`` is the union of the terms' matched indices.
* A term's score rewards matched characters at word starts (the path start, after ``/``,
  ``_``, ``-``, ``.`` or a space, a camelCase hump, the first digit of a number), contiguous
  runs (a run keeps the bonus of the word start it began at), and matches inside the file's
  basename; it penalises gaps between matched characters and, slightly, long paths. A term that
  equals the basename, or the basename without its extension, gets a large bonus, so an exact
  file name wins.

Speed: the subsequence filter runs in C (rapidfuzz's LCS: a term is a subsequence of a path
exactly when their longest common subsequence is the whole term). The exact scorer is Python,
so when more than ``_EXACT_BUDGET`` paths pass the filter (a one- or two-letter query on a big
workspace), a cheap pre-score picks which of them get the exact score.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import LCSseq

__all__ = ["Match", "rank_paths"]

# Scores, in the spirit of fzf's: a matched character is worth _MATCH, plus the bonus of the
# position it lands on; gaps cost _GAP_START for the first skipped character and _GAP_EXTEND
# for each further one.
_MATCH = 16.0
_BONUS_SEGMENT = 10.0  # first character of the path or of a path segment (after "/")
_BONUS_WORD = 8.0  # after "_", "-", "." or " "
_BONUS_DELIMITER = 8.0  # the typed character is itself a separator ("/", "_", ...)
_BONUS_CAMEL = 7.0  # camelCase hump, or first digit of a number
_BONUS_CONSECUTIVE = 5.0  # least bonus for a character that continues a run
_FIRST_CHAR_MULTIPLIER = 2.0  # where a term starts matters most
_BONUS_BASENAME = 4.0  # per matched character in the file name
_GAP_START = 3.0
_GAP_EXTEND = 1.0
_EXACT_STEM = 60.0  # the term equals the basename without its extension
_EXACT_BASENAME = 70.0  # the term equals the basename
_LENGTH_PENALTY = 0.1  # per character of the path: the shorter path wins a tie

_DELIMITERS = frozenset("/_-. ")
_WORD_DELIMITERS = frozenset("_-. ")

# How many filtered paths get the exact (Python) score at most; beyond that a pre-score picks.
_EXACT_BUDGET = 2500


@dataclass(frozen=True)
class Match:
    """One ranked path. ``positions`` are indices into ``path`` of the matched query
    characters, ascending, for highlighting."""

    path: str
    score: float
    positions: tuple[int, ...]


def _lower_aligned(path: str) -> str:
    """``path.lower()`` with one character per character of ``path``, so indices line up
    (``"İ".lower()`` is two characters)."""
    lowered = path.lower()
    if len(lowered) == len(path):
        return lowered
    return "".join((ch.lower()[:1] or ch) for ch in path)


def _bonus(path: str, j: int) -> float:
    if j == 0:
        return _BONUS_SEGMENT
    prev = path[j - 1]
    if prev == "/":
        return _BONUS_SEGMENT
    if prev in _WORD_DELIMITERS:
        return _BONUS_WORD
    ch = path[j]
    if ch in _DELIMITERS:
        return _BONUS_DELIMITER
    if ch.isupper() and prev.islower():
        return _BONUS_CAMEL
    if ch.isdigit() and not prev.isdigit():
        return _BONUS_CAMEL
    return 0.0


def _score_term(term: str, path: str, lowered: str, base_start: int) -> tuple[float, list[int]] | None:
    """Best alignment of ``term`` (lower case) in ``path``: (score, positions), or None when
    ``term`` is not a subsequence of ``lowered``.

    Dynamic programming over the occurrences of each term character only (not over every
    path position); each character can only land between its earliest (greedy forward) and
    latest (greedy backward) feasible position.
    """
    m = len(term)
    earliest: list[int] = []
    j = -1
    for ch in term:
        j = lowered.find(ch, j + 1)
        if j < 0:
            return None
        earliest.append(j)
    latest = [0] * m
    j = len(lowered)
    for i in range(m - 1, -1, -1):
        j = lowered.rfind(term[i], 0, j)
        latest[i] = j

    # Per level (term character): positions, scores, run bonuses, back-pointers into the
    # previous level.
    levels_pos: list[list[int]] = []
    levels_back: list[list[int]] = []
    prev_pos: list[int] = []
    prev_score: list[float] = []
    prev_run: list[float] = []
    for i in range(m):
        ch = term[i]
        hi = latest[i]
        cur_pos: list[int] = []
        cur_score: list[float] = []
        cur_run: list[float] = []
        cur_back: list[int] = []
        j = earliest[i]
        # Prefix maximum over previous positions j' <= j - 2 of score + _GAP_EXTEND * j'.
        k = 0
        n_prev = len(prev_pos)
        best_gap = float("-inf")
        best_gap_idx = -1
        while 0 <= j <= hi:
            b = _bonus(path, j)
            in_base = _BONUS_BASENAME if j >= base_start else 0.0
            if i == 0:
                cur_pos.append(j)
                cur_score.append(_MATCH + b * _FIRST_CHAR_MULTIPLIER + in_base)
                cur_run.append(b)
                cur_back.append(-1)
            else:
                while k < n_prev and prev_pos[k] <= j - 2:
                    v = prev_score[k] + _GAP_EXTEND * prev_pos[k]
                    if v > best_gap:
                        best_gap = v
                        best_gap_idx = k
                    k += 1
                score = float("-inf")
                run = b
                back = -1
                if best_gap_idx >= 0:
                    score = best_gap - _GAP_START - _GAP_EXTEND * (j - 2) + _MATCH + b + in_base
                    back = best_gap_idx
                if k < n_prev and prev_pos[k] == j - 1:
                    r = prev_run[k]
                    s = prev_score[k] + _MATCH + max(b, r, _BONUS_CONSECUTIVE) + in_base
                    if s >= score:
                        score = s
                        run = max(b, r)
                        back = k
                if back >= 0:
                    cur_pos.append(j)
                    cur_score.append(score)
                    cur_run.append(run)
                    cur_back.append(back)
            j = lowered.find(ch, j + 1)
        if not cur_pos:  # cannot happen for a subsequence, but keep the invariant explicit
            return None
        levels_pos.append(cur_pos)
        levels_back.append(cur_back)
        prev_pos, prev_score, prev_run = cur_pos, cur_score, cur_run

    best_idx = max(range(len(prev_score)), key=prev_score.__getitem__)
    best = prev_score[best_idx]
    positions = [0] * m
    idx = best_idx
    for i in range(m - 1, -1, -1):
        positions[i] = levels_pos[i][idx]
        idx = levels_back[i][idx]
    base = lowered[base_start:]
    if term == base:
        best += _EXACT_BASENAME
    else:
        dot = base.rfind(".")
        if dot > 0 and term == base[:dot]:
            best += _EXACT_STEM
    return best, positions


def _score_path(terms: Sequence[str], path: str) -> Match | None:
    lowered = _lower_aligned(path)
    base_start = lowered.rfind("/") + 1
    total = -_LENGTH_PENALTY * len(path)
    positions: set[int] = set()
    for term in terms:
        result = _score_term(term, path, lowered, base_start)
        if result is None:
            return None
        total += result[0]
        positions.update(result[1])
    return Match(path, total, tuple(sorted(positions)))


def _prescore(terms: Sequence[str], lowered: str) -> float:
    """Cheap stand-in for the exact score, to choose which paths get it. Rewards what the
    exact score rewards most: a term at the start of the basename or of a segment, a term
    contiguous in the basename, a term starting a basename word; then shortness."""
    base = lowered[lowered.rfind("/") + 1 :]
    score = 0.0
    for term in terms:
        if base.startswith(term):
            score += 8.0
        elif term in base:
            score += 4.0 + (2.0 if base.find(term) in _word_starts_cheap(base, term) else 0.0)
        elif ("/" + term) in lowered or lowered.startswith(term):
            score += 3.0
        elif base.startswith(term[0]):
            score += 2.0
        elif term in lowered:
            score += 1.0
    return score - len(lowered) * 0.01


def _word_starts_cheap(base: str, term: str) -> tuple[int, ...]:
    i = base.find(term)
    return (i,) if i > 0 and base[i - 1] in _WORD_DELIMITERS else ()


def _parse_query(query: str) -> list[str]:
    return query.replace("\\", "/").lower().split()


def rank_paths(query: str, paths: Sequence[str], limit: int = 50) -> list[Match]:
    """Rank ``paths`` for ``query``, best first, at most ``limit`` results.

    An empty (or all-whitespace) query returns the first ``limit`` paths in the given order,
    with score 0 and no positions. See the module docstring for the matching rules.
    """
    if limit <= 0:
        return []
    terms = _parse_query(query)
    if not terms:
        return [Match(p, 0.0, ()) for p in paths[:limit]]

    lowered = [p.lower() for p in paths]
    # Filter in C: the longest terms first, they discard the most.
    candidates: list[int] | None = None
    for term in sorted(terms, key=len, reverse=True):
        if candidates is None:
            hits = process.extract(
                term, lowered, scorer=LCSseq.similarity, score_cutoff=len(term), limit=None
            )
            candidates = [hit[2] for hit in hits]
        else:
            subset = {i: lowered[i] for i in candidates}
            hits = process.extract(
                term, subset, scorer=LCSseq.similarity, score_cutoff=len(term), limit=None
            )
            candidates = [hit[2] for hit in hits]
        if not candidates:
            return []
    assert candidates is not None

    if len(candidates) > _EXACT_BUDGET:
        candidates = heapq.nlargest(
            _EXACT_BUDGET, candidates, key=lambda i: _prescore(terms, lowered[i])
        )

    matches: list[Match] = []
    for i in candidates:
        match = _score_path(terms, paths[i])
        if match is not None:
            matches.append(match)
    # Best score first; equal scores keep the given order (sort is stable on the index).
    order = sorted(range(len(matches)), key=lambda n: -matches[n].score)
    return [matches[n] for n in order[:limit]]
