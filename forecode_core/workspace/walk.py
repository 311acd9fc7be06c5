"""The one ignore-aware walk of a workspace: the editor's file list (quick open), the codebase
index's scan and find in files all go through ``walk_files``.

What every walk does the same way
    ``os.scandir``, depth first, in a fixed order: a folder's files (sorted by name) come before
    its subfolders' (also sorted), so two walks of the same tree list the same paths in the same
    order. Folders that ``IgnoreRules`` ignores are never entered, and a file is asked about
    only after its folders (``is_dir_ignored`` / ``is_file_ignored``, git's rule that nothing
    inside an ignored folder counts). Unreadable folders and entries that vanish or fail to stat
    are skipped.

Symlinks and loops
    A symlinked folder is never entered (nor a Windows junction), so the walk stays inside the
    workspace and cannot loop, whatever the links point at. A link to a file is the caller's
    choice (``links``): ``"follow"`` treats it as the file it points at (the editor opens and
    searches it; dangling links are skipped), ``"report"`` yields the link itself, unread (the
    index leaves links out, since they could point out of the workspace, and says so).

Limits and stopping
    ``limit`` caps the files yielded; ``should_stop()`` is checked before each folder and every
    ``STOP_CHECK_EVERY`` entries, and the walk ends soon after it returns True. What differs
    between callers stays with them: ``skip(rel)`` is a filter of their own (find in
    files' exclude globs, which prune folders too); file sizes and binary checks are theirs,
    on what the walk yields.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Literal

from forecode_core.workspace.gitignore import IgnoreRules

__all__ = ["DEFAULT_SCAN_LIMIT", "STOP_CHECK_EVERY", "scan_files", "walk_files"]

STOP_CHECK_EVERY = 64
DEFAULT_SCAN_LIMIT = 200_000


def _is_junction(entry: os.DirEntry[str]) -> bool:
    probe = getattr(entry, "is_junction", None)  # Python 3.12+, True only on Windows
    return bool(probe()) if probe is not None else False


def _link_or_file(entry: os.DirEntry[str]) -> bool:
    """``links="report"``: a symlink (whatever it points at) or a regular file."""
    return entry.is_symlink() or entry.is_file(follow_symlinks=False)


def _sorted_entries(folder: str) -> list[os.DirEntry[str]] | None:
    """A folder's entries by name; None when it cannot be read."""
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:
        return None


def walk_files(
    root: str | os.PathLike[str],
    rules: IgnoreRules,
    *,
    start: str = "",
    links: Literal["follow", "report"] = "follow",
    skip: Callable[[str], bool] | None = None,
    should_stop: Callable[[], bool] | None = None,
    limit: int | None = None,
) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """``(relative POSIX path, entry)`` of the files under ``root`` (from its folder ``start``,
    whose own ancestors the caller has checked) that ``rules`` keeps; see the module docstring.

    With ``links="report"`` a symlink is yielded as itself (``entry.is_symlink()``), whatever
    it points at; with ``"follow"`` only a link to a regular file is, as that file. ``skip(rel)``
    True leaves a file out or a folder unentered (asked only of what ``rules`` keeps).
    ``entry`` caches its stat (``entry.stat(follow_symlinks=False)``) for callers that need
    one.
    """
    top = os.path.abspath(os.fspath(root))
    if limit is not None and limit <= 0:
        return
    # os.DirEntry.is_file follows a link (dangling links, sockets and folders say False).
    is_wanted_file = os.DirEntry.is_file if links == "follow" else _link_or_file
    count = 0
    stack: list[str] = [start]  # relative folders still to visit, the next one last
    while stack:
        if should_stop is not None and should_stop():
            return
        rel_dir = stack.pop()
        entries = _sorted_entries(os.path.join(top, rel_dir) if rel_dir else top)
        if entries is None:
            continue
        prefix = rel_dir + "/" if rel_dir else ""
        subdirs: list[str] = []
        for n, entry in enumerate(entries, 1):
            if n % STOP_CHECK_EVERY == 0 and should_stop is not None and should_stop():
                return
            rel = prefix + entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False) and not _is_junction(entry)
                if not is_dir and not is_wanted_file(entry):
                    continue
            except OSError:
                continue
            ignored = rules.is_dir_ignored(rel) if is_dir else rules.is_file_ignored(rel)
            if ignored or (skip is not None and skip(rel)):
                continue
            if is_dir:
                subdirs.append(rel)
                continue
            yield rel, entry
            count += 1
            if limit is not None and count >= limit:
                return
        stack.extend(reversed(subdirs))


def scan_files(
    root: str | os.PathLike[str],
    rules: IgnoreRules,
    *,
    should_stop: Callable[[], bool] | None = None,
    limit: int = DEFAULT_SCAN_LIMIT,
) -> Iterator[str]:
    """The editor's file list (quick open): the POSIX paths, relative to ``root``, of the files
    ``rules`` does not ignore, in ``walk_files``' order; links to files count as files. Stops
    after ``limit`` files, or soon after ``should_stop()`` returns True. ``root`` should be
    ``rules.root`` or the same folder."""
    for rel, _entry in walk_files(root, rules, should_stop=should_stop, limit=limit):
        yield rel
