"""The shadow workspace's pure planning: what a hidden copy of a workspace holds and which steps
bring it in step with the user's tree (issue 16). The copying itself (clones, copies, links,
SQLite snapshots) is ``app.services.shadow``'s.

What the copy holds, path by path (``source_for`` decides, ``plan_sync`` diffs):

- a file ``IgnoreRules`` keeps: a copy (a copy-on-write clone where the filesystem has one),
  its size and mtime carried over so the copy's own stat says what it was copied from;
- a file a tool may rewrite in place (``rewrites_in_place``: a SQLite database by its header,
  ``*.db`` / ``*.sqlite`` / ``*.sqlite3``, the fixtures a setting lists): never linked or
  cloned; a database is copied as a consistent snapshot (``Step.SNAPSHOT``: SQLite's backup,
  so rows still in its ``-wal`` come along; copying the main file alone loses them);
- a symlink in the workspace: the same link;
- a large ignored tree (a virtual environment, ``node_modules``, ``.git``, any ignored folder):
  referenced (a symlink to the user's folder), never copied; caches a tool rebuilds
  (``__pycache__``, ``.mypy_cache`` ...) are left out;
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
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from forecode_core.workspace.wildmatch import compile_pattern

__all__ = [
    "CACHE_DIRS",
    "DATABASE_SUFFIXES",
    "IGNORED_FILE_MAX",
    "REFERENCED_DIRS",
    "SQLITE_HEADER",
    "Action",
    "Kind",
    "Source",
    "Step",
    "ignored_dir_kind",
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
    text or a reference's absolute path."""

    kind: Kind
    size: int = 0
    mtime_ns: int = 0
    ino: int = 0
    target: str = ""

    def same_as(self, other: Source) -> bool:
        """Whether ``other`` (what the copy holds) is this, stamps compared (inodes only when
        both are known)."""
        if self.kind in (Kind.LINK, Kind.REFERENCE) or other.kind in (Kind.LINK, Kind.REFERENCE):
            return self.kind == other.kind and self.target == other.target
        if self.ino and other.ino and self.ino != other.ino:
            return False
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
