"""Related files, the process side: read a repository's recent history with ``git log``,
bounded, and build the co-change model (``forecode_core.next_edit.related``) from it. No Qt:
the window's owners call ``read_history`` / ``build_related`` on a worker thread and hand the
result to the UI thread.

Bounded whatever the repository: at most ``max_commits`` commits (the newest), killed at a
deadline, output capped at ``max_bytes`` (``app.services.git_status.run_git``, which also
kills on ``abort``). What was read before a deadline or the cap is used (the newest commits,
the cut one dropped) and the result says so (``HistoryResult.state``). Names with newlines,
tabs or bytes that are not UTF-8 come through ``-z`` untouched (``forecode_core.next_edit
.git_log``). Rename detection is bounded too (``-l``: git gives up pairing renames in a commit
with more candidates than that and reports adds and deletes).
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from dataclasses import dataclass
from typing import Literal

from app.services.git_status import git_executable, run_git
from forecode_core.next_edit.git_log import LOG_FORMAT, parse_log
from forecode_core.next_edit.related import CoChange, Commit, Params

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_COMMITS",
    "DEFAULT_TIMEOUT_S",
    "HistoryResult",
    "HistoryState",
    "build_related",
    "log_args",
    "read_history",
    "update_related",
]

DEFAULT_MAX_COMMITS = 2000
DEFAULT_TIMEOUT_S = 15.0
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
RENAME_LIMIT = 400  # -l: rename candidates git pairs per commit before it gives up

# ok: every commit asked for (or the whole history) was read;
# partial: the deadline or the byte cap came first, the newest commits read are kept;
# empty: a repository without commits; not_repo: no repository here (or git refused);
# no_git: git is not installed; aborted: the caller stopped it; rewritten (update_related
# only): the commit the model ended at is no longer in HEAD's history: build again.
_SHA = re.compile(r"[0-9a-f]{4,64}")

HistoryState = Literal["ok", "partial", "empty", "not_repo", "no_git", "aborted", "rewritten"]


@dataclass(frozen=True)
class HistoryResult:
    state: HistoryState
    commits: tuple[Commit, ...] = ()  # oldest first
    message: str = ""  # a sentence for the status bar or a log when state is not "ok"
    malformed: int = 0  # parse tokens skipped (see git_log.parse_log)

    @property
    def usable(self) -> bool:
        return self.state in ("ok", "partial") and bool(self.commits)


def log_args(max_commits: int, since: str | None = None) -> list[str]:
    """The ``git log`` command line (after ``git``). ``since``: only commits after that one
    (an incremental update; the caller checks it is still an ancestor)."""
    args = [
        "log",
        "-z",
        "--no-merges",
        "--name-status",
        "-M",
        f"-l{RENAME_LIMIT}",
        "--no-color",
        "--no-ext-diff",
        "--no-show-signature",
        f"--format={LOG_FORMAT}",
        f"--max-count={max(1, max_commits)}",
    ]
    if since is not None and not _SHA.fullmatch(since):
        raise ValueError(f"not a commit id: {since!r}")  # never an option or a range
    args.append(f"{since}..HEAD" if since else "HEAD")
    args.append("--")
    return args


def read_history(
    folder: str | os.PathLike[str],
    *,
    max_commits: int = DEFAULT_MAX_COMMITS,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    since: str | None = None,
    abort: threading.Event | None = None,
) -> HistoryResult:
    """The newest ``max_commits`` non-merge commits of the repository at ``folder`` with the
    files each changed, oldest first (blocking: worker threads only). Paths are relative to
    the repository's top level."""
    if git_executable() is None:
        return HistoryResult("no_git", message="git is not installed")
    try:
        out = run_git(
            log_args(max_commits, since),
            folder,
            timeout=timeout,
            max_bytes=max_bytes,
            abort=abort,
        )
    except OSError as exc:  # folder gone, not a directory
        return HistoryResult("not_repo", message=f"cannot run git here: {exc.strerror or exc}")
    if abort is not None and abort.is_set():
        return HistoryResult("aborted", message="stopped")
    if out.returncode is not None and out.returncode != 0 and not out.stdout:
        # 128 with nothing printed: not a repository, or one whose HEAD has no commit.
        if _has_no_commits(folder, timeout):
            return HistoryResult("empty", message="the repository has no commits yet")
        return HistoryResult("not_repo", message="not a git repository (or git failed)")
    complete = not (out.timed_out or out.truncated) and out.returncode == 0
    parsed = parse_log(out.stdout, complete=complete)
    if complete:
        return HistoryResult("ok", parsed.commits, malformed=parsed.malformed)
    if out.timed_out:
        why = "took too long"
    elif out.truncated:
        why = "printed too much"
    else:
        why = f"failed (exit status {out.returncode})"
    return HistoryResult(
        "partial",
        parsed.commits,
        message=f"git log {why}: related files use the newest {len(parsed.commits)} commits",
        malformed=parsed.malformed,
    )


def _has_no_commits(folder: str | os.PathLike[str], timeout: float) -> bool:
    try:
        out = run_git(["rev-parse", "--git-dir"], folder, timeout=timeout, max_bytes=1 << 16)
    except OSError:
        return False
    return out.returncode == 0


def build_related(
    folder: str | os.PathLike[str],
    params: Params | None = None,
    *,
    max_commits: int = DEFAULT_MAX_COMMITS,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    abort: threading.Event | None = None,
) -> tuple[CoChange, HistoryResult]:
    """Read the history and learn it: the model (empty when the history is not usable) and
    what reading said (blocking: worker threads only)."""
    history = read_history(
        folder, max_commits=max_commits, timeout=timeout, max_bytes=max_bytes, abort=abort
    )
    model = CoChange(params)
    model.add_all(history.commits)
    return model, history


def update_related(
    model: CoChange,
    folder: str | os.PathLike[str],
    since: str,
    *,
    max_commits: int = DEFAULT_MAX_COMMITS,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    abort: threading.Event | None = None,
) -> HistoryResult:
    """Add the commits made after ``since`` (the newest commit ``model`` has learned) to
    ``model``, without reading the rest again (blocking: worker threads only). When ``since``
    is no longer in HEAD's history (a rebase, an amend, a reset) nothing is added and the
    state is ``rewritten``: the caller builds the model again (``build_related``)."""
    log_args(1, since)  # a commit id, never an option: ValueError otherwise
    if git_executable() is None:
        return HistoryResult("no_git", message="git is not installed")
    try:
        check = run_git(
            ["merge-base", "--is-ancestor", since, "HEAD"],
            folder,
            timeout=timeout,
            max_bytes=1 << 16,
            abort=abort,
        )
    except OSError as exc:
        return HistoryResult("not_repo", message=f"cannot run git here: {exc.strerror or exc}")
    if check.returncode != 0:
        return HistoryResult("rewritten", message="the history was rewritten: read it again")
    history = read_history(
        folder,
        max_commits=max_commits,
        timeout=timeout,
        max_bytes=max_bytes,
        since=since,
        abort=abort,
    )
    start = 0 if model.last_index is None else model.last_index + 1
    model.add_all(dataclasses.replace(c, index=c.index + start) for c in history.commits)
    return history
