"""What git status says, as the explorer shows it: ``git status --porcelain=v2 -z`` parsed, and
paths looked up the way VS Code colours them. Pure (no process): ``app.services.git_status``
runs git, bounded, on worker threads and hands its output here; ``StatusLookup`` answers the
explorer's per-row questions with dictionary look-ups.

What a path shows (VS Code's git decorations):

* a file with an entry: its kind and letter (``M`` modified, ``A`` added, ``U`` untracked,
  ``D`` deleted, ``R`` renamed, ``!`` conflicted; ignored files are only dimmed);
* anything inside an untracked or ignored folder (git reports the folder, ``dir/``, not each
  file: that keeps a huge ``node_modules`` to one line): the folder's kind;
* a folder with changes below it: tinted with the most important change below
  (conflicted > modified > added > renamed > untracked), no letter. Deleted and ignored files do
  not tint their folders (as in VS Code).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "KINDS",
    "LETTERS",
    "PROPAGATING",
    "Decoration",
    "GitStatus",
    "Kind",
    "RepoInfo",
    "StatusLookup",
    "StatusResult",
    "classify",
    "parse_porcelain_v2",
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

DEFAULT_MAX_ENTRIES = 200_000


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


def _entry(rec: bytes, records: Iterator[bytes]) -> tuple[Kind, bytes] | None:
    """The kind and path of one change record (``1``, ``2``, ``u``, ``?``, ``!``), or None for
    a malformed or unknown one. A rename's original path, the next record, is consumed."""
    tag = rec[:2]
    if tag == b"1 ":
        parts = rec.split(b" ", 8)
        if len(parts) == 9:
            return classify(parts[1].decode("ascii", "replace")), parts[8]
    elif tag == b"2 ":
        parts = rec.split(b" ", 9)
        next(records, None)  # the original path follows as its own NUL-terminated field
        if len(parts) == 10:
            return classify(parts[1].decode("ascii", "replace")), parts[9]
    elif tag == b"u ":
        parts = rec.split(b" ", 10)
        if len(parts) == 11:
            return "conflicted", parts[10]
    elif tag in (b"? ", b"! "):
        return ("untracked" if tag == b"? " else "ignored"), rec[2:]
    return None


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
        if rec.startswith(b"# branch.oid "):
            oid = rec[len(b"# branch.oid ") :].decode("ascii", "replace")
            head = None if oid == "(initial)" else oid
            continue
        found = _entry(rec, records)
        if found is None or not found[1]:
            continue
        kind, path = found[0], os.fsdecode(found[1])
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


# ----- a repository's status -------------------------------------------------------------------


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
