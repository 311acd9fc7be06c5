"""Git status for the explorer, the process side: run ``git`` bounded (``run_git``: a subprocess
with a deadline and an output cap) and read a repository's status and a file's blob at HEAD.
What the output means and how a path is decorated is ``forecode_core.workspace.git_status``
(pure). The editor calls ``read_status`` and ``read_head_blob`` on worker threads only.

A hostile or huge repository cannot hang or exhaust the caller: ``run_git`` kills git (and
anything it started) at a deadline and stops reading past ``max_bytes``; the environment turns
off optional locks (status never rewrites the index, so the index watcher does not loop),
terminal prompts and fsmonitor hooks.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from forecode_core.windowless import no_window
from forecode_core.workspace.git_status import (
    DEFAULT_MAX_ENTRIES,
    GitStatus,
    RepoInfo,
    StatusResult,
    parse_porcelain_v2,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT_S",
    "MAX_BLOB_BYTES",
    "GitOutput",
    "git_executable",
    "read_head_blob",
    "read_repo_info",
    "read_status",
    "run_git",
]

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
MAX_BLOB_BYTES = 8 * 1024 * 1024


# ----- running git -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitOutput:
    returncode: int | None  # None when killed (deadline or output cap)
    stdout: bytes
    timed_out: bool = False
    truncated: bool = False  # stopped reading at max_bytes


def git_executable() -> str | None:
    return shutil.which("git")


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    # A hook or a parent git process may have set these; they would point git elsewhere.
    for name in (
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
    ):
        env.pop(name, None)
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", GIT_PAGER="cat", LC_ALL="C")
    return env


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)  # git and whatever it started (hooks, filters)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError, OSError):
        pass


def run_git(
    args: Sequence[str],
    cwd: str | os.PathLike[str],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    abort: threading.Event | None = None,
) -> GitOutput:
    """Run ``git <args>`` in ``cwd``; never longer than ``timeout`` seconds, never more than
    ``max_bytes`` of output kept, and killed at once when ``abort`` is set (the editor
    closing). Raises ``FileNotFoundError`` when git is not installed."""
    exe = git_executable()
    if exe is None:
        raise FileNotFoundError("git is not installed")
    cmd = [exe, "--no-pager", "-c", "core.fsmonitor=false", "-c", "core.quotePath=false", *args]
    proc = subprocess.Popen(
        cmd,
        cwd=os.fspath(cwd),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_git_env(),
        start_new_session=os.name == "posix",
        **no_window(),
    )
    timed_out = threading.Event()
    finished = threading.Event()
    deadline = time.monotonic() + timeout

    def watchdog() -> None:
        while not finished.wait(0.05):
            if abort is not None and abort.is_set():
                _kill(proc)
                return
            if time.monotonic() >= deadline:
                timed_out.set()
                _kill(proc)
                return

    threading.Thread(target=watchdog, name="forecode-git-watchdog", daemon=True).start()
    chunks: list[bytes] = []
    total = 0
    truncated = False
    try:
        stdout = proc.stdout
        assert isinstance(stdout, io.BufferedReader)
        while True:
            chunk = stdout.read1(65536)
            if not chunk:
                break
            if total + len(chunk) > max_bytes:
                chunks.append(chunk[: max_bytes - total])
                truncated = True
                _kill(proc)
                break
            chunks.append(chunk)
            total += len(chunk)
        stdout.close()
        proc.wait()
    finally:
        finished.set()
    killed = truncated or timed_out.is_set() or (abort is not None and abort.is_set())
    return GitOutput(
        None if killed else proc.returncode,
        b"".join(chunks),
        timed_out=timed_out.is_set(),
        truncated=truncated,
    )


# ----- reading a repository ----------------------------------------------------------------------


def read_repo_info(
    folder: str | os.PathLike[str],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    abort: threading.Event | None = None,
) -> RepoInfo | None:
    """The repository ``folder`` is in, or None (no git, not a repository, git too slow)."""
    try:
        out = run_git(
            ["rev-parse", "--show-toplevel", "--absolute-git-dir", "--show-prefix"],
            folder,
            timeout=timeout,
            max_bytes=1 << 16,
            abort=abort,
        )
    except OSError:
        return None
    if out.returncode != 0:
        return None
    lines = os.fsdecode(out.stdout).split("\n")
    if len(lines) < 3 or not lines[0] or not lines[1]:
        return None
    return RepoInfo(lines[0], lines[1], lines[2].strip().strip("/"))


def read_status(
    folder: str | os.PathLike[str],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    abort: threading.Event | None = None,
) -> StatusResult:
    """Git status of the part of the repository under ``folder`` (blocking: worker threads
    only)."""
    repo = read_repo_info(folder, timeout=timeout, abort=abort)
    if repo is None:
        return StatusResult()
    args = [
        "status",
        "--porcelain=v2",
        "-z",
        "--branch",
        "--ignored=traditional",
        "--untracked-files=normal",
        "--",
        ".",
    ]
    try:
        out = run_git(args, folder, timeout=timeout, max_bytes=max_bytes, abort=abort)
    except OSError:
        return StatusResult()
    if out.timed_out:
        return StatusResult(
            repo,
            None,
            f"git status took longer than {timeout:g} s; the explorer shows no git colours for now",
        )
    status = parse_porcelain_v2(out.stdout, max_entries=max_entries)
    if out.returncode not in (0, None):
        return StatusResult(repo, None, None)
    if out.truncated or status.truncated:
        return StatusResult(
            repo,
            GitStatus(status.head_oid, status.entries, status.folders, True),
            "git status listed too many changes; the explorer colours only the first of them",
        )
    return StatusResult(repo, status, None)


def read_head_blob(
    path: str | os.PathLike[str],
    *,
    rev: str = "HEAD",
    timeout: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = MAX_BLOB_BYTES,
    abort: threading.Event | None = None,
) -> bytes | None:
    """The content of ``path`` at ``rev`` (raw: no filters, no textconv), or None when git,
    the repository, the commit or the file there is missing, or it is too big or too slow.
    Blocking: worker threads only."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    try:
        out = run_git(
            ["cat-file", "blob", f"{rev}:./{name}"],
            folder,
            timeout=timeout,
            max_bytes=max_bytes,
            abort=abort,
        )
    except OSError:
        return None
    if out.returncode != 0:
        return None
    return out.stdout
