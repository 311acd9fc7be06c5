"""Ranking for the code index: BM25 weights, reciprocal rank fusion, and the client's rerank.

Pure functions over plain data (numpy for the BM25 arithmetic): the service ranks with the
first two, the client re-scores the service's top results with its own plaintext with the third.

Where each step runs, and why
-----------------------------
* **Vector** (cosine of all-MiniLM-L6-v2 embeddings) and **lexical** (BM25 over the keyed token
  hashes of ``WorkspaceKeys.token_hashes``): on the service, which holds the embeddings and the
  postings but never a word of plaintext. BM25 works unchanged on keyed terms: it only counts
  them.
* **Fusion**: weighted reciprocal rank fusion (``rrf``; Cormack et al. 2009). The two scores live
  on unrelated scales (a cosine in [-1, 1], a BM25 sum without bound); ranks fuse without any
  calibration, and a chunk found by both lists rises above one found by either. The constants
  were chosen on the ``index`` benchmark's docstring-to-function task, checked on two disjoint
  sets of standard-library modules (recall@10, vector / lexical / fused): the textbook k = 60
  with equal weights fused *below* the vector list alone (0.853 against 0.902; 0.793 against
  0.829), k = 10 with the lexical list at half weight above it (0.930; 0.857). The lexical list
  is the weaker one for questions in prose, and a small k lets each list's top ranks decide.
* **Rerank**: on the client, the only place the chunk's text exists. A cross-encoder would be
  the usual choice, but none is available offline here (no PyTorch, no weights in a package), so
  the rerank is lexical and exact: ``identifier_overlap`` rewards chunks that contain the query's
  compound identifiers verbatim (``parse_args``, ``MerkleTree``). That is what the keyed BM25
  cannot do: it sees split, lower-cased words (``parse``, ``args``), so ``parse_args`` and
  ``args_parse`` look alike to it. Rewarding shared *words* as well was measured and dropped:
  it lowered recall on prose queries (0.811 against 0.853) and never raised it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from forecode_core.index.crypto import lexical_tokens

__all__ = [
    "BM25_B",
    "BM25_K1",
    "EXACT_WEIGHT",
    "LEXICAL_WEIGHT",
    "RRF_K",
    "Candidate",
    "SearchMode",
    "bm25_idf",
    "bm25_weights",
    "identifier_overlap",
    "query_identifiers",
    "rerank",
    "rrf",
]

RRF_K = 10
LEXICAL_WEIGHT = 0.5  # the vector list weighs 1
BM25_K1 = 1.2
BM25_B = 0.75
# A verbatim identifier match is worth more than the gap between rank 1 and rank 10 of the
# vector list (1/11 - 1/20 ~ 0.041).
EXACT_WEIGHT = 0.05

K = TypeVar("K", bound=Hashable)


class SearchMode(StrEnum):
    """Which lists a search ranks by: both, fused (``COMBINED``), or one alone. The values are
    the names the client's ``search(mode=...)``, the service's store and their logs use."""

    COMBINED = "combined"
    VECTOR = "vector"
    LEXICAL = "lexical"

    @property
    def uses_vector(self) -> bool:
        """The query's embedding is searched (it is needed unless the search is lexical)."""
        return self is not SearchMode.LEXICAL

    @property
    def uses_terms(self) -> bool:
        """The query's term hashes are searched."""
        return self is not SearchMode.VECTOR


_IDENTIFIER = re.compile(r"[^\W\d]\w*", re.UNICODE)
_MIN_IDENTIFIER = 3


def bm25_idf(df: int, n: int) -> float:
    """The BM25 inverse document frequency of a term found in ``df`` of ``n`` documents (the
    Lucene form, never negative)."""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def bm25_weights(
    tf: npt.NDArray[np.float64],
    dl: npt.NDArray[np.float64],
    avgdl: float,
    idf: float,
    k1: float = BM25_K1,
    b: float = BM25_B,
) -> npt.NDArray[np.float64]:
    """One term's BM25 contribution to each document: ``tf`` its count in each, ``dl`` their
    lengths in terms, ``avgdl`` the mean length over the collection."""
    norm = k1 * (1.0 - b + b * dl / max(avgdl, 1e-9))
    out: npt.NDArray[np.float64] = idf * tf * (k1 + 1.0) / (tf + norm)
    return out


def rrf(
    rankings: Sequence[Sequence[K]], k: int = RRF_K, weights: Sequence[float] | None = None
) -> list[tuple[K, float]]:
    """Weighted reciprocal rank fusion: each key scores the sum of ``weight / (k + rank)`` over
    the lists that hold it (ranks from 1; weights 1 unless given). Best first; ties keep the
    order of first appearance."""
    scores: dict[K, float] = {}
    for i, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[i]
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])


def query_identifiers(query: str) -> list[str]:
    """The identifiers a query names, as written (``parse_args``, ``MerkleTree``), in order,
    without repeats; words shorter than 3 characters are left out."""
    seen: dict[str, None] = {}
    for match in _IDENTIFIER.finditer(query):
        word = match.group(0)
        if len(word) >= _MIN_IDENTIFIER:
            seen.setdefault(word, None)
    return list(seen)


def identifier_overlap(query: str, text: str) -> float:
    """The share of the query's compound identifiers (``parse_args``, ``getValue``: more than
    one lexical word) found verbatim as identifiers in ``text``; 0 for a query without any."""
    compounds = [w for w in query_identifiers(query) if len(lexical_tokens(w)) > 1]
    if not compounds:
        return 0.0
    present = set(_IDENTIFIER.findall(text))
    return sum(1 for w in compounds if w in present) / len(compounds)


@dataclass(frozen=True)
class Candidate:
    """One search result as the client holds it: the service's score, and the chunk's text
    (``None`` when the client could not read it back)."""

    key: Hashable
    score: float
    text: str | None


def rerank(
    query: str, candidates: Sequence[Candidate], *, exact_weight: float = EXACT_WEIGHT
) -> list[Candidate]:
    """The candidates re-scored with their plaintext (see the module docstring): ``score +
    exact_weight * identifier_overlap``. A candidate without text keeps its score. Best
    first; ties keep the service's order."""
    scored = []
    for index, candidate in enumerate(candidates):
        bonus = 0.0
        if candidate.text is not None:
            bonus = exact_weight * identifier_overlap(query, candidate.text)
        scored.append((candidate.score + bonus, index, candidate))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [replace(c, score=s) for s, _i, c in scored]
