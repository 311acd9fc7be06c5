"""The shadow workspace's pure planning: what a hidden copy of a workspace holds and which steps
bring it in step with the user's tree (issue 16). The copying itself (clones, copies, links,
SQLite snapshots) is ``app.services.shadow``'s.

What the copy holds, path by path (``source_for`` decides, ``plan_sync`` diffs):

- a file ``IgnoreRules`` keeps: a copy (a copy-on-write clone where the filesystem has one),
  its size and mtime carried over so the copy's own stat says what it was copied from, and
  its owner's mode bits (``copy_mode``: ``./scripts/test`` stays executable) without any
  group or other bit (the copy is private);
- a file a tool may rewrite in place (``rewrites_in_place``: a SQLite database by its header,
  ``*.db`` / ``*.sqlite`` / ``*.sqlite3``, the fixtures a setting lists): never linked or
  cloned; a database is copied as a consistent snapshot (``Step.SNAPSHOT``: SQLite's backup,
  so rows still in its ``-wal`` come along; copying the main file alone loses them);
- a symlink in the workspace: the same link;
- a large ignored tree (a virtual environment, ``node_modules``, ``.git``, any ignored folder):
  referenced (a symlink to the user's folder), never copied; caches a tool rebuilds
  (``__pycache__``, ``.mypy_cache`` ...) are left out;
- an ignored folder that holds a file rewritten in place (Flask's ``instance/app.db``, an
  ignored ``data/`` of fixtures): a reference would let a tool run in the copy write the
  user's file through it, so ``guarded_entries`` makes it a real folder of the copy whose
  entries are references, except those files (snapshotted as above) and the folders on the
  way to them (made the same way, recursively). The search is bounded: breadth first, at most
  ``SEARCH_ENTRIES`` entries an ignored folder, and never into a virtual environment,
  ``node_modules``, ``.git`` (``REFERENCED_DIRS``) or a cache, so a huge tree is not walked on
  every scan; a file past the bound stays reachable through its folder's reference;
- an ignored file: copied when it is small (``IGNORED_FILE_MAX``: a ``.env`` or a local
  settings file a tool reads), else left out.

``plan_sync(wanted, have)`` lists the steps from what the copy has (the stamps recorded when it
was last synced, or, cold, the copy's own stats) to what the workspace has: removals first,
deepest first, then creations. Paths the editor overlays (an unsaved buffer pushed in) are
left alone.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from forecode_core.workspace.wildmatch import compile_pattern

__all__ = [
    "CACHE_DIRS",
    "DATABASE_SIDE_FILES",
    "DATABASE_SUFFIXES",
    "IGNORED_FILE_MAX",
    "REFERENCED_DIRS",
    "SEARCH_ENTRIES",
    "SQLITE_HEADER",
    "Action",
    "Kind",
    "Source",
    "Step",
    "copy_mode",
    "guarded_entries",
    "ignored_dir_kind",
    "is_big_tree",
    "plan_sync",
    "rewrites_in_place",
    "shadow_key",
]

SQLITE_HEADER = b"SQLite format 3\x00"
DATABASE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
# Trees that are referenced even when no ignore file names them.
REFERENCED_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", ".venv", ".tox", ".nox"})
# Ignored trees a tool rebuilds: never copied, never referenced.
CACHE_DIRS = frozenset(
    {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}
)
IGNORED_FILE_MAX = 1 << 20
# A database's own files beside it: never linked (SQLite would write the user's WAL through
# the link), never copied (the snapshot holds their rows).
DATABASE_SIDE_FILES = ("-wal", "-shm", "-journal")
# How many entries of one ignored folder are searched for files rewritten in place.
SEARCH_ENTRIES = 5000


class Kind(StrEnum):
    """What a path is in the copy."""

    FILE = "file"  # copied (or cloned)
    DATABASE = "database"  # a file rewritten in place: copied, never linked or cloned
    LINK = "link"  # a symlink of the workspace, reproduced
    REFERENCE = "reference"  # a symlink to the user's own folder or file


class Step(StrEnum):
    COPY = "copy"
    SNAPSHOT = "snapshot"  # a database: a consistent copy (SQLite's backup), never a link
    LINK = "link"
    REFERENCE = "reference"
    REMOVE = "remove"


@dataclass(frozen=True)
class Source:
    """One path of the workspace as the copy should hold it. ``size``/``mtime_ns`` are the
    user's file's (``ino`` too, when known: an atomic save changes it); ``target`` a link's
    text or a reference's absolute path; ``mode`` the copy's permission bits (``copy_mode``
    of the user's; 0 when unknown)."""

    kind: Kind
    size: int = 0
    mtime_ns: int = 0
    ino: int = 0
    target: str = ""
    mode: int = 0

    def same_as(self, other: Source) -> bool:
        """Whether ``other`` (what the copy holds) is this, stamps compared (inodes only when
        both are known)."""
        if self.kind in (Kind.LINK, Kind.REFERENCE) or other.kind in (Kind.LINK, Kind.REFERENCE):
            return self.kind == other.kind and self.target == other.target
        if self.ino and other.ino and self.ino != other.ino:
            return False
        if self.mode and other.mode and self.mode != other.mode:
            return False  # a chmod (+x) changes no stamp
        return self.size == other.size and self.mtime_ns == other.mtime_ns


@dataclass(frozen=True)
class Action:
    step: Step
    rel: str
    source: Source | None = None


_STEP_OF = {
    Kind.FILE: Step.COPY,
    Kind.DATABASE: Step.SNAPSHOT,
    Kind.LINK: Step.LINK,
    Kind.REFERENCE: Step.REFERENCE,
}


def copy_mode(st_mode: int) -> int:
    """The permission bits of the copy of a file whose mode is ``st_mode``: the owner's bits
    (read and write always, so the copy can be refreshed; execute as the user's file has it),
    never a group or other bit."""
    return 0o600 | (st_mode & 0o700)


def shadow_key(root: str) -> str:
    """The copy's folder name for the workspace at ``root`` (absolute): readable and unique."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in os.path.basename(root))
    digest = hashlib.sha256(os.fsencode(root)).hexdigest()[:16]
    return f"{name[:40] or 'root'}-{digest}"


def rewrites_in_place(rel: str, head: bytes, fixtures: Iterable[str] = ()) -> bool:
    """Whether a tool may rewrite ``rel`` in place (so the copy must never share its bytes):
    a SQLite database (``head``: its first bytes), a database by its suffix, or a path one of
    ``fixtures`` (gitignore-style globs, e.g. ``tests/fixtures/**``) matches."""
    if head.startswith(SQLITE_HEADER) or rel.lower().endswith(DATABASE_SUFFIXES):
        return True
    data = rel.encode("utf-8", "surrogateescape")
    base = data.rsplit(b"/", 1)[-1]
    for glob in fixtures:
        text = glob.strip().strip("/")
        if not text:
            continue
        # as in .gitignore: a pattern without a slash matches the base name at any depth
        if compile_pattern(text).match(data if "/" in text else base):
            return True
    return False


def ignored_dir_kind(name: str) -> Kind | None:
    """An ignored folder in the copy: a reference to the user's (virtual environments,
    ``node_modules``, ``.git``, build trees), or None for a cache a tool rebuilds."""
    return None if name in CACHE_DIRS else Kind.REFERENCE


def is_big_tree(full: str) -> bool:
    """A tree that is referenced whole and never searched: ``REFERENCED_DIRS`` (a venv,
    ``node_modules``, ``.git``) or a virtual environment by its ``pyvenv.cfg``."""
    name = os.path.basename(full)
    return name in REFERENCED_DIRS or os.path.isfile(os.path.join(full, "pyvenv.cfg"))


def _head(path: str) -> bytes:
    """The first bytes of a file named without a suffix (a database found only by its
    header); others are judged by their names, without opening them."""
    if "." in os.path.basename(path):
        return b""
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_HEADER))
    except OSError:
        return b""


def _search(
    top: str, rel_dir: str, fixtures: Sequence[str], budget: int
) -> tuple[dict[str, list[os.DirEntry[str]]], dict[str, os.stat_result]]:
    """The listings of ``rel_dir`` and its folders (breadth first, up to ``budget`` entries;
    big trees, caches and links not entered) and the files rewritten in place found there."""
    listings: dict[str, list[os.DirEntry[str]]] = {}
    found: dict[str, os.stat_result] = {}
    queue = deque([rel_dir])
    seen = 0
    while queue and seen < budget:
        folder = queue.popleft()
        try:
            with os.scandir(os.path.join(top, folder)) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        listings[folder] = entries
        seen += len(entries)
        for entry in entries:
            rel = f"{folder}/{entry.name}"
            try:
                if entry.is_symlink():
                    continue
                if entry.is_dir():
                    if entry.name not in CACHE_DIRS and not is_big_tree(entry.path):
                        queue.append(rel)
                elif entry.is_file() and rewrites_in_place(rel, _head(entry.path), fixtures):
                    found[rel] = entry.stat(follow_symlinks=False)
            except OSError:
                continue
    return listings, found


def guarded_entries(
    top: str, rel_dir: str, fixtures: Sequence[str] = (), budget: int = SEARCH_ENTRIES
) -> dict[str, Source]:
    """The ignored folder ``rel_dir`` of the workspace at ``top`` as the copy holds it when
    files in it may be rewritten in place (``rewrites_in_place``): each such file a
    ``Kind.DATABASE`` (its side files left out), each folder on the way to one expanded the
    same way, every other entry a reference to the user's (caches left out). Empty when none
    is found within ``budget`` entries: the folder is then referenced whole."""
    listings, found = _search(top, rel_dir, fixtures, budget)
    if not found:
        return {}
    expanded = {rel_dir}
    for rel in found:
        parent = rel.rsplit("/", 1)[0]
        while parent not in expanded:
            expanded.add(parent)
            parent = parent.rsplit("/", 1)[0]
    out: dict[str, Source] = {}
    for folder in sorted(expanded):
        for entry in listings.get(folder, ()):
            rel = f"{folder}/{entry.name}"
            st = found.get(rel)
            if st is not None:
                out[rel] = Source(
                    Kind.DATABASE, st.st_size, st.st_mtime_ns, st.st_ino, mode=copy_mode(st.st_mode)
                )
            elif not (rel in expanded or entry.name in CACHE_DIRS or _side_of(rel, found)):
                out[rel] = Source(Kind.REFERENCE, target=os.path.join(top, rel))
    return out


def _side_of(rel: str, found: Mapping[str, object]) -> bool:
    return any(rel.endswith(s) and rel[: -len(s)] in found for s in DATABASE_SIDE_FILES)


def _depth(rel: str) -> int:
    return rel.count("/")


def plan_sync(
    wanted: Mapping[str, Source],
    have: Mapping[str, Source],
    overlaid: Collection[str] = (),
) -> list[Action]:
    """The steps that turn ``have`` into ``wanted``: removals (deepest first), then copies
    and links (in path order). A path in ``overlaid`` (the editor's unsaved buffer is there)
    is neither copied nor removed. A path that changes kind is removed first."""
    removals: list[Action] = []
    creations: list[Action] = []
    for rel, old in have.items():
        if rel in overlaid:
            continue
        new = wanted.get(rel)
        if new is None or new.kind != old.kind:
            removals.append(Action(Step.REMOVE, rel))
    for rel in sorted(wanted):
        if rel in overlaid:
            continue
        want = wanted[rel]
        held = have.get(rel)
        if held is None or not want.same_as(held):
            creations.append(Action(_STEP_OF[want.kind], rel, want))
    removals.sort(key=lambda a: (-_depth(a.rel), a.rel))
    return removals + creations
