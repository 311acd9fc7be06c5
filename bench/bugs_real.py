"""Tier 2's false flags on real edits: how often the bug finder flags a change that a
project's own developers committed (``python -m bench bugs --real-edits N``).

``bench bugs`` measures false flags on the fixed version of an injected bug, where HEAD's
line is the bug: the score prefers the fix by construction. A user's ordinary edits are the
other case the product meets every day: a changed constant, a renamed argument, a new
condition. Here each case is one function changed by a real commit of httpx, jinja or
requests, reviewed as the editor would review it (HEAD = the commit's parent, the buffer =
the commit), by the same ``review`` and ``Scoring``. A flag is counted as false: a bug fixed
by a later commit is rare among committed changes, so the rate is an upper bound on the
product's false flags on real edits."""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from forecode_core.bugs.contrast import replaced_lines
from forecode_core.bugs.functions import (
    Function,
    changed_functions,
    changed_lines_between,
    functions_in,
    head_version,
)
from forecode_core.bugs.runner import Scoring, Target, context_for, review

from ._common import percentile

MAX_COMMIT_FILES = 6  # a large commit is a refactor, not an edit the user makes by hand


@dataclass(frozen=True)
class RealEdit:
    repo: str
    commit: str
    path: str
    before: str  # the parent's file
    after: str  # the commit's file
    function: Function


def _git(root: str, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", root, *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def real_edits(count: int, seed: int, repos: Sequence[str], mirrors: str) -> list[RealEdit]:
    """``count`` functions changed by small replacements in real commits, one a commit."""
    pool: list[tuple[str, str]] = []
    for repo in repos:
        root = f"{mirrors}/{repo}/repo"
        for line in _git(root, "log", "--no-merges", "--format=%H", "-n", "1500").splitlines():
            pool.append((repo, line.strip()))
    rng = random.Random(seed)
    rng.shuffle(pool)
    out: list[RealEdit] = []
    for repo, commit in pool:
        if len(out) >= count:
            break
        edit = _one(repo, commit, f"{mirrors}/{repo}/repo", rng)
        if edit is not None:
            out.append(edit)
    return out


def _one(repo: str, commit: str, root: str, rng: random.Random) -> RealEdit | None:
    try:
        names = _git(root, "diff", "--name-only", f"{commit}^", commit).split()
    except subprocess.CalledProcessError:
        return None  # the first commit
    py = [n for n in names if n.endswith(".py")]
    if not py or len(names) > MAX_COMMIT_FILES:
        return None
    path = rng.choice(py)
    try:
        before = _git(root, "show", f"{commit}^:{path}")
        after = _git(root, "show", f"{commit}:{path}")
    except subprocess.CalledProcessError:
        return None  # added or deleted
    changed = changed_functions(path, after, changed_lines_between(before, after))
    usable = []
    for function in changed:
        head = head_version(path, before, function)
        if head is not None and replaced_lines(head, function.text(after), function.start_line):
            usable.append(function)
    if not usable:
        return None
    return RealEdit(repo, commit[:12], path, before, after, rng.choice(usable))


def evaluate_real(edits: Sequence[RealEdit], scoring: Scoring) -> dict[str, Any]:
    """The flag rate over ``edits`` with tier 2's score, and the rows."""
    rows: list[dict[str, Any]] = []
    flagged = 0
    seconds: list[float] = []
    for edit in edits:
        functions = functions_in(edit.path, edit.after)
        before = head_version(edit.path, edit.before, edit.function)
        start = time.perf_counter()
        found = review(
            Target(
                edit.after,
                edit.function,
                context_for(edit.after, edit.function, functions),
                edit.path,
                before,
            ),
            None,
            scoring,
        )
        seconds.append(time.perf_counter() - start)
        flag = found.finding is not None
        flagged += flag
        rows.append(
            {
                "repo": edit.repo,
                "commit": edit.commit,
                "path": edit.path,
                "function": edit.function.name,
                "flagged_line": found.finding.line if found.finding is not None else None,
                "margins": [[line, [round(m, 2) for m in ms]] for line, ms in found.margins],
            }
        )
    return {
        "real_edits": len(edits),
        "real_edit_flag_rate": round(flagged / len(edits), 3) if edits else None,
        "real_edit_s_p50": round(percentile(seconds, 50), 2) if seconds else None,
        "real_edit_rows": rows,
    }
