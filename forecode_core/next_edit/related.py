"""Related files: files that usually change together with this one, mined from commits.

Association rules over commits, as in ROSE (Zimmermann et al., ICSE 2004), file level:

    confidence(A -> B) = weighted co-changes(A, B) / weighted changes(A)

* **Recency.** A commit's weight is ``2 ** (index / half_life)``: the commit ``half_life``
  commits older than another counts half as much. The clock is the commit's position in the
  history, not its date: a project that rests for a year has not forgotten how its files go
  together, and a burst of commits in one afternoon ages the older ones as real work does.
  Because confidence is a ratio of two sums with the same weights, only relative weights
  matter: the model never rescales on a new commit (see ``_REBASE``), so ``add`` is
  incremental: appending commits costs what the new commits cost.
* **Huge commits** (more than ``max_files`` files: bulk renames, reformatting, licence
  headers, vendoring) say nothing about which files belong together and would cost
  ``files**2`` pairs; they are not counted. Their renames and deletions still apply.
* **Minimum support.** A rule needs ``min_support`` commits (raw, unweighted) that changed
  both files (default 1: see ``Params``).
* **Renames** (``Commit.renames``, old -> new) carry a file's history to its new name: its
  counts and every pair with it move to the new path, so history follows the file.
* **Deleted files** are never suggested (until a later commit adds them back).

``replay`` is the offline measure: over the commits in order, each multi-file commit's files
are queried with only the earlier commits known (recall@k, hit@k and MRR).

The defaults (``Params``) were chosen by replaying pallets/jinja's last 2,000 commits and
then measured, unchanged, on psf/requests (last 2,000) and encode/httpx (all 1,481):
recall@3 0.369 / 0.254, hit@3 0.641 / 0.697, MRR 0.569 / 0.612 (rules only); with ``fill``
hit@3 0.678 / 0.725. ROSE's 64 % ("a correct location in the top 3") is hit@3; recall@3 here
is the share of *all* the commit's other files in the top 3, which a 10-file commit caps
at 3/9.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

__all__ = ["CoChange", "Commit", "Params", "Related", "ReplayResult", "replay"]

# Weights grow as 2 ** ((index - base) / half_life); past this exponent everything is scaled
# down once and the base moves, so floats never overflow however long the history.
_REBASE = 512.0


@dataclass(frozen=True)
class Commit:
    index: int  # position in the history, oldest first: the recency clock
    paths: tuple[str, ...]  # every file the commit changed, by its name after the commit
    renames: tuple[tuple[str, str], ...] = ()  # (old, new); new is also in paths
    deleted: tuple[str, ...] = ()  # also in paths
    time: int = 0  # committer time (unix), informational
    sha: str = ""


@dataclass(frozen=True)
class Params:
    # Chosen by replaying pallets/jinja's last 2,000 commits (bench/related_files.py --grid,
    # the same questions for every choice): a half-life of 100 or 200 commits beat 50 and no
    # decay at all (recall@3 0.251 against 0.230 without decay; hit@3 0.636 against 0.618).
    half_life: float = 100.0
    # More files than this: a bulk change, not a co-change. 20 to 50 scored within a point on
    # jinja; 30 had the best hit@3 and MRR (and is the research note's figure).
    max_files: int = 30
    # 1: on jinja a second shared commit as a condition cost 4.6 points of hit@3 (0.636 to
    # 0.590): early in a file's life one shared commit is most of what there is to know.
    # A caller that shows rules to people may ask for 2.
    min_support: int = 1
    min_confidence: float = 0.0

    def __post_init__(self) -> None:
        if self.half_life <= 0 or self.max_files < 2 or self.min_support < 1:
            raise ValueError(f"bad related-files parameters: {self}")


@dataclass(frozen=True)
class Related:
    path: str
    confidence: float  # 0..1
    support: int  # commits that changed both files (unweighted)


class CoChange:
    """The association model. ``add`` commits oldest first (any number of calls: updating with
    new commits is just adding them); ``related(path, k)`` answers from what it has seen.
    Not locked: one thread adds (a worker builds it, then hands it over) while none asks."""

    def __init__(self, params: Params | None = None) -> None:
        self.params = params if params is not None else Params()
        self._count: dict[str, int] = {}
        self._weight: dict[str, float] = {}
        self._pair_count: dict[str, dict[str, int]] = {}
        self._pair_weight: dict[str, dict[str, float]] = {}
        self._gone: set[str] = set()
        self._base: int | None = None
        self.last_index: int | None = None
        self.commits_seen = 0
        self.commits_skipped = 0  # huge commits not counted

    # ----- updating ------------------------------------------------------------------------

    def add_all(self, commits: Iterable[Commit]) -> None:
        for commit in commits:
            self.add(commit)

    def add(self, commit: Commit) -> None:
        if self.last_index is not None and commit.index < self.last_index:
            raise ValueError(
                f"commits must come oldest first: {commit.index} after {self.last_index}"
            )
        self.last_index = commit.index
        self.commits_seen += 1
        if commit.renames:
            self._rename(commit.renames)
        paths = tuple(dict.fromkeys(commit.paths))
        deleted = set(commit.deleted)
        for path in paths:
            if path in deleted:
                self._gone.add(path)
            else:
                self._gone.discard(path)
        if len(paths) > self.params.max_files:
            self.commits_skipped += 1
            return
        if not paths:
            return
        weight = self._commit_weight(commit.index)
        for path in paths:
            self._count[path] = self._count.get(path, 0) + 1
            self._weight[path] = self._weight.get(path, 0.0) + weight
        if len(paths) < 2:
            return
        for path in paths:
            counts = self._pair_count.setdefault(path, {})
            weights = self._pair_weight.setdefault(path, {})
            for other in paths:
                if other != path:
                    counts[other] = counts.get(other, 0) + 1
                    weights[other] = weights.get(other, 0.0) + weight

    def _commit_weight(self, index: int) -> float:
        if self._base is None:
            self._base = index
        exponent = (index - self._base) / self.params.half_life
        if exponent > _REBASE:
            scale = math.pow(2.0, -exponent)
            for path in self._weight:
                self._weight[path] *= scale
            for row in self._pair_weight.values():
                for other in row:
                    row[other] *= scale
            self._base = index
            exponent = 0.0
        return math.pow(2.0, exponent)

    def _rename(self, renames: Sequence[tuple[str, str]]) -> None:
        """Move each old path's counts and pairs to its new path, all renames at once (a swap,
        a -> b and b -> a, stays a swap)."""
        mapping = {old: new for old, new in renames if old != new}
        if not mapping:
            return
        rows: dict[str, tuple[int, float, dict[str, int], dict[str, float]]] = {}
        for old in mapping:
            rows[old] = (
                self._count.pop(old, 0),
                self._weight.pop(old, 0.0),
                self._pair_count.pop(old, {}),
                self._pair_weight.pop(old, {}),
            )
            for other in rows[old][2]:
                other_counts = self._pair_count.get(other)
                if other_counts is not None:
                    other_counts.pop(old, None)
                    self._pair_weight[other].pop(old, None)
            self._gone.discard(old)
        for old, new in mapping.items():
            count, weight, counts, weights = rows[old]
            if count:
                self._count[new] = self._count.get(new, 0) + count
                self._weight[new] = self._weight.get(new, 0.0) + weight
            for other, pair_count in counts.items():
                renamed = mapping.get(other, other)
                if renamed == new:
                    continue
                self._add_pair(new, renamed, pair_count, weights[other])
                if other not in mapping:  # a renamed partner adds its own direction
                    self._add_pair(renamed, new, pair_count, weights[other])
            self._gone.discard(new)

    def _add_pair(self, a: str, b: str, count: int, weight: float) -> None:
        counts = self._pair_count.setdefault(a, {})
        weights = self._pair_weight.setdefault(a, {})
        counts[b] = counts.get(b, 0) + count
        weights[b] = weights.get(b, 0.0) + weight

    # ----- asking --------------------------------------------------------------------------

    def known_paths(self) -> list[str]:
        """Every path the history counted and did not see deleted."""
        return [path for path in self._count if path not in self._gone]

    def changes(self, path: str) -> int:
        """Commits (counted ones, unweighted) that changed ``path``."""
        return self._count.get(path, 0)

    def hot(self, k: int, exclude: Collection[str] = ()) -> list[str]:
        """The ``k`` files changed most, recent changes counting more (the same weights),
        deleted ones and ``exclude`` left out; ties by path."""
        if k <= 0:
            return []
        best = heapq.nsmallest(
            k + len(exclude),
            (
                (-round(weight, 9), path)
                for path, weight in self._weight.items()
                if path not in self._gone
            ),
        )
        return [path for _, path in best if path not in exclude][:k]

    def related(self, path: str, k: int = 3, *, fill: bool = False) -> list[Related]:
        """The ``k`` files most likely to change with ``path``: highest confidence first, then
        more shared commits, then the path (so ties always come out in the same order).
        ``fill``: when fewer than ``k`` rules hold, the rest are the files changed most lately
        (``hot``), with confidence 0 and support 0 so a caller can tell them apart."""
        found = self._rules(path, k)
        if fill and len(found) < k:
            have = {item.path for item in found}
            have.add(path)
            found.extend(Related(other, 0.0, 0) for other in self.hot(k - len(found), have))
        return found

    def _rules(self, path: str, k: int) -> list[Related]:
        counts = self._pair_count.get(path)
        total = self._weight.get(path, 0.0)
        if not counts or total <= 0.0 or k <= 0:
            return []
        weights = self._pair_weight[path]
        params = self.params
        found: list[tuple[float, int, str]] = []
        for other, count in counts.items():
            if count < params.min_support or other in self._gone:
                continue
            confidence = min(1.0, weights[other] / total)
            if confidence < params.min_confidence:
                continue
            # Rounded for ordering: equal histories give equal keys whatever the float noise.
            found.append((round(confidence, 9), count, other))
        found.sort(key=lambda item: (-item[0], -item[1], item[2]))
        return [Related(other, confidence, count) for confidence, count, other in found[:k]]


# ----- replay ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayResult:
    commits: int  # multi-file commits evaluated
    queries: int  # (commit, file) pairs asked
    recall_at_k: float  # mean share of the commit's other files found in the top k
    hit_at_k: float  # mean share of queries with at least one of them in the top k (ROSE's 64%)
    mrr: float  # mean reciprocal rank of the first right file in the top ``mrr_depth``
    answered: float  # share of queries that got a rule (not only ``fill``'s hot files)
    k: int = 3
    # found / min(k, other files): what a top k could at best find (a 10-file commit's
    # 9 other files cannot all be in a top 3).
    recall_at_k_reachable: float = 0.0


def replay(
    commits: Iterable[Commit],
    params: Params | None = None,
    *,
    k: int = 3,
    mrr_depth: int = 10,
    warmup: int = 0,
    ask_max_files: int | None = None,
    fill: bool = False,
) -> ReplayResult:
    """Replay ``commits`` (oldest first): before each commit is learned, every file of a
    multi-file commit (2..``max_files`` files) asks ``related(file, ...)`` of the model built
    from the earlier commits only; the commit's other files are the answers. Names are
    asked as they were before the commit (a file renamed in it is asked by its old name).
    The first ``warmup`` commits are learned but not asked. ``ask_max_files`` (default: the
    model's ``max_files``) bounds the commits asked, so parameter choices can be compared on
    the same questions. ``fill``: ask ``related(..., fill=True)``."""
    model = CoChange(params)
    depth = max(k, mrr_depth)
    ask_limit = model.params.max_files if ask_max_files is None else ask_max_files
    n_commits = queries = answered = 0
    recall = reachable = hit = reciprocal = 0.0
    for position, commit in enumerate(commits):
        before = {new: old for old, new in commit.renames}
        files = list(dict.fromkeys(before.get(path, path) for path in commit.paths))
        if position >= warmup and 2 <= len(files) <= ask_limit:
            n_commits += 1
            for path in files:
                others = set(files)
                others.discard(path)
                ranked = model.related(path, depth, fill=fill)
                queries += 1
                if ranked and ranked[0].support > 0:
                    answered += 1
                found = sum(1 for item in ranked[:k] if item.path in others)
                recall += found / len(others)
                reachable += found / min(k, len(others))
                hit += 1.0 if found else 0.0
                for rank, item in enumerate(ranked[:mrr_depth], start=1):
                    if item.path in others:
                        reciprocal += 1.0 / rank
                        break
        model.add(commit)
    if not queries:
        return ReplayResult(n_commits, 0, 0.0, 0.0, 0.0, 0.0, k)
    return ReplayResult(
        n_commits,
        queries,
        recall / queries,
        hit / queries,
        reciprocal / queries,
        answered / queries,
        k,
        reachable / queries,
    )
