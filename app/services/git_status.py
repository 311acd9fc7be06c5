"""Git status for the explorer: run ``git status --porcelain=v2 -z`` bounded, parse it, and look
paths up the way VS Code colours them.

Pure apart from ``run_git`` (a subprocess with a deadline and an output cap). The editor calls
``read_status`` and ``read_head_blob`` on worker threads only; ``StatusLookup`` answers the
explorer's per-row questions with dictionary look-ups.

What a path shows (VS Code's git decorations):

* a file with an entry: its kind and letter (``M`` modified, ``A`` added, ``U`` untracked,
  ``D`` deleted, ``R`` renamed, ``!`` conflicted; ignored files are only dimmed);
* anything inside an untracked or ignored folder (git reports the folder, ``dir/``, not each
  file: that keeps a huge ``node_modules`` to one line): the folder's kind;
* a folder with changes below it: tinted with the most important change below
  (conflicted > modified > added > renamed > untracked), no letter. Deleted and ignored files do
  not tint their folders (as in VS Code).

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "KINDS",
    "LETTERS",
    "PROPAGATING",
    "Decoration",
    "GitOutput",
    "GitStatus",
    "Kind",
    "RepoInfo",
    "StatusLookup",
    "StatusResult",
    "classify",
    "git_executable",
    "parse_porcelain_v2",
    "read_head_blob",
    "read_repo_info",
    "read_status",
    "run_git",
]

Kind = Literal["conflicted", "modified", "added", "renamed", "untracked", "deleted", "ignored"]

# Most important first: a path with two entries (a staged deletion and an untracked copy) and
# a folder tinted by its children take the first kind here.
KINDS: tuple[Kind, ...] = (
    "conflicted",
    "modified",
    "added",
    "renamed",
    "untracked",
    "deleted",
    "ignored",
)
_RANK = {kind: i for i, kind in enumerate(KINDS)}
LETTERS: Mapping[Kind, str] = {
    "conflicted": "!",
    "modified": "M",
    "added": "A",
    "renamed": "R",
    "untracked": "U",
    "deleted": "D",
    "ignored": "",
}
# Kinds that tint the folders above them.
PROPAGATING: frozenset[Kind] = frozenset(
    {"conflicted", "modified", "added", "renamed", "untracked"}
)

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_ENTRIES = 200_000
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


# ----- parsing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitStatus:
    """Porcelain v2 entries: repository-relative POSIX paths (``str`` via ``os.fsdecode``).
    ``folders`` are the untracked/ignored folders git reported whole (without the ``/``)."""

    head_oid: str | None = None  # None before the first commit
    entries: Mapping[str, Kind] = field(default_factory=dict)
    folders: Mapping[str, Kind] = field(default_factory=dict)
    truncated: bool = False  # more entries than the cap; the rest were left out


def classify(xy: str) -> Kind:
    """The kind of an ordinary (``1``) or renamed (``2``) entry from its ``XY`` field."""
    x, y = (xy + "..")[0], (xy + "..")[1]
    if "U" in (x, y) or (x, y) in (("A", "A"), ("D", "D")):
        return "conflicted"
    if "D" in (x, y):
        return "deleted"
    if x == "A":
        return "added"
    if x in ("R", "C"):
        return "renamed" if y == "." else "modified"
    return "modified"


def _better(a: Kind | None, b: Kind) -> Kind:
    return b if a is None or _RANK[b] < _RANK[a] else a


def _records(data: bytes) -> Iterator[bytes]:
    """The NUL-terminated records of ``data``; a last record without its NUL (a cut read) is
    dropped. One record at a time: splitting 16 MB at once would hold the GIL for ~90 ms."""
    pos = 0
    while True:
        end = data.find(b"\0", pos)
        if end < 0:
            return
        yield data[pos:end]
        pos = end + 1


def parse_porcelain_v2(data: bytes, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> GitStatus:
    """Parse ``git status --porcelain=v2 -z [--branch]`` output. Unknown or malformed records
    are skipped; a record cut short at the end (a truncated read) is dropped."""
    records = _records(data)
    head: str | None = None
    entries: dict[str, Kind] = {}
    folders: dict[str, Kind] = {}
    truncated = False
    for rec in records:
        if not rec:
            continue
        if len(entries) + len(folders) >= max_entries:
            truncated = True
            break
        tag = rec[:2]
        path_bytes: bytes | None = None
        kind: Kind | None = None
        if rec.startswith(b"# branch.oid "):
            oid = rec[len(b"# branch.oid ") :].decode("ascii", "replace")
            head = None if oid == "(initial)" else oid
            continue
        if tag == b"1 ":
            parts = rec.split(b" ", 8)
            if len(parts) == 9:
                kind, path_bytes = classify(parts[1].decode("ascii", "replace")), parts[8]
        elif tag == b"2 ":
            parts = rec.split(b" ", 9)
            next(records, None)  # the original path follows as its own NUL-terminated field
            if len(parts) == 10:
                kind, path_bytes = classify(parts[1].decode("ascii", "replace")), parts[9]
        elif tag == b"u ":
            parts = rec.split(b" ", 10)
            if len(parts) == 11:
                kind, path_bytes = "conflicted", parts[10]
        elif tag in (b"? ", b"! "):
            kind, path_bytes = ("untracked" if tag == b"? " else "ignored"), rec[2:]
        if kind is None or not path_bytes:
            continue
        path = os.fsdecode(path_bytes)
        if path.endswith("/"):
            folders[path.rstrip("/")] = _better(folders.get(path.rstrip("/")), kind)
        else:
            entries[path] = _better(entries.get(path), kind)
    return GitStatus(head, entries, folders, truncated)


# ----- looking paths up --------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoration:
    kind: Kind
    letter: str  # "" for folders tinted by their children and for ignored paths
    propagated: bool = False  # a folder tinted by what changed below it


def _parents(path: str) -> Iterable[str]:
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        yield path


class StatusLookup:
    """Decorations for paths relative to a workspace folder, from a ``GitStatus`` of the
    repository whose top is ``prefix`` folders above it (``prefix`` is the workspace's path in
    the repository, ``""`` when the workspace is the repository's top)."""

    def __init__(self, status: GitStatus, prefix: str = "") -> None:
        self.status = status
        prefix = prefix.strip("/")
        cut = len(prefix) + 1 if prefix else 0

        def local(path: str) -> str | None:
            if not prefix:
                return path
            return path[cut:] if path.startswith(prefix + "/") else None

        self._entries: dict[str, Kind] = {}
        self._folders: dict[str, Kind] = {}
        self._tint: dict[str, Kind] = {}
        for path, kind in status.entries.items():
            rel = local(path)
            if rel is not None:
                self._entries[rel] = kind
                self._propagate(rel, kind)
        for path, kind in status.folders.items():
            rel = local(path)
            if rel is None:
                if prefix == path or prefix.startswith(path + "/"):
                    self._folders[""] = kind  # the workspace is inside an untracked folder
                continue
            self._folders[rel] = kind
            self._propagate(rel, kind)

    def _propagate(self, rel: str, kind: Kind) -> None:
        if kind not in PROPAGATING:
            return
        for parent in _parents(rel):
            old = self._tint.get(parent)
            if old is not None and _RANK[old] <= _RANK[kind]:
                break  # this parent and those above it already show something as important
            self._tint[parent] = kind
        else:
            self._tint[""] = _better(self._tint.get(""), kind)

    def __len__(self) -> int:
        return len(self._entries) + len(self._folders)

    def decoration(self, rel: str, is_dir: bool = False) -> Decoration | None:
        """The decoration of workspace-relative POSIX path ``rel``, or None."""
        rel = rel.strip("/")
        kind = self._entries.get(rel)
        if kind is not None:
            return Decoration(kind, LETTERS[kind])
        whole = self._folders.get(rel)
        if whole is None and self._folders:
            for parent in _parents(rel):
                whole = self._folders.get(parent)
                if whole is not None:
                    break
            else:
                whole = self._folders.get("")
        if whole is not None:
            return Decoration(whole, "" if is_dir else LETTERS[whole])
        if is_dir:
            tint = self._tint.get(rel)
            if tint is not None:
                return Decoration(tint, "", propagated=True)
        return None


# ----- reading a repository ----------------------------------------------------------------------


@dataclass(frozen=True)
class RepoInfo:
    toplevel: str  # absolute
    git_dir: str  # absolute
    prefix: str  # the folder's path in the repository, POSIX, "" at the top


@dataclass(frozen=True)
class StatusResult:
    """``status`` is None when there is no git or no repository (not a problem); ``problem``
    says why the colours are missing or partial (a timeout, too many entries)."""

    repo: RepoInfo | None = None
    status: GitStatus | None = None
    problem: str | None = None

    def lookup(self) -> StatusLookup | None:
        if self.status is None or self.repo is None:
            return None
        return StatusLookup(self.status, self.repo.prefix)


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
