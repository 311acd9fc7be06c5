"""Git-compatible ignore decisions: the one implementation behind the editor's explorer and
quick open (``app.core.workspace.IgnoreRules``) and the codebase index
(``local_models.index.ignore.IgnoreRules``). Pure: pathspec and the file system only, no Qt;
it lives in ``local_models`` because ``local_models`` may not import ``app``.

``IgnoreRules`` answers "is this path ignored?" the way git does, from these sources, highest
precedence first:

1. ``extra_patterns`` (gitignore syntax: the user's ``files.exclude``, the caller's patterns).
   Like patterns given to git on the command line they win over every file, so ``!pattern``
   there can also show something an ignore file hides.
2. The ignore files of the path's folder (``loader(rel_dir)`` gives their lines, in order), the
   deepest folder's first; a file's patterns are relative to its folder. Folders are read
   lazily, on the first question about a path below them, and cached; call ``invalidate`` when
   one changes.
3. The exclude lines (``.git/info/exclude``; ``exclude()`` gives them, read again on a full
   ``invalidate``).

Within one source the last matching pattern wins, and ``!`` re-includes. As in git, a path
inside an ignored directory is ignored whatever the patterns say about the path itself (a file
cannot be re-included if a parent directory is excluded), because git never looks inside an
ignored directory. That is how this works too: a path is checked by checking each of its
ancestor directories first, and a pattern only counts when it matches the path itself, not one
of its ancestors. ``.git`` is always ignored.

Patterns are compiled by pathspec's gitignore implementation (``pathspec.GitIgnoreSpec``);
only the precedence between sources and the directory rule above are done here.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Callable, Sequence

import pathspec

__all__ = ["IgnoreRules", "git_dir", "normalize", "read_lines"]

_DIR_MARK_GROUP = "ps_d"  # pathspec's regex group for "matched as a directory"

# One compiled pattern: (regex, include, test_with_slash). ``include`` is True for an ignoring
# pattern and False for a "!" one. Stored last pattern first, so the first hit decides.
_Rule = tuple["re.Pattern[str]", bool, bool]
_Rules = tuple[_Rule, ...]


def _fix_line(line: str) -> str:
    """Work around a difference from git: pathspec lets ``dir/**/`` match ``dir`` itself,
    git only the directories inside it, which is what ``dir/**/*/`` means to both."""
    stripped = line.rstrip(" ")
    if stripped.endswith("/**/"):
        return stripped + "*/"
    return line


def _compile(lines: Sequence[str]) -> _Rules:
    """Compile gitignore lines into rules that match a path *itself*.

    pathspec's regexes also match every path below a matched directory (``build/`` matches
    ``build/a/b.c``), which is right for a single file but not when ancestors are checked
    separately and a deeper ignore file may override a shallower one. A pattern whose regex
    marks a directory match must therefore match up to the end of the tested path (tested as
    ``path/`` for a directory); the others (``**``, ``dir/**``) match everything below by
    design and are used as they are, on the path without a trailing slash, so ``dir/**``
    matches what is inside ``dir`` but not ``dir`` itself.
    """
    lines = [_fix_line(line) for line in lines]
    try:
        patterns = list(pathspec.GitIgnoreSpec.from_lines(lines).patterns)
    except ValueError:
        # git skips a malformed pattern and keeps the others.
        patterns = []
        for line in lines:
            try:
                patterns.extend(pathspec.GitIgnoreSpec.from_lines([line]).patterns)
            except ValueError:
                continue
    rules: list[_Rule] = []
    for pattern in patterns:
        regex = getattr(pattern, "regex", None)
        include = getattr(pattern, "include", None)
        if regex is None or include is None:
            continue
        if _DIR_MARK_GROUP in regex.groupindex:
            rules.append((re.compile(f"(?:{regex.pattern})\\Z"), bool(include), True))
        else:
            rules.append((regex, bool(include), False))
    rules.reverse()
    return tuple(rules)


def _decide(rules: _Rules, path: str, is_dir: bool) -> bool | None:
    """True (ignored) / False (re-included) by the last matching rule, or None if none
    matches."""
    with_slash = path + "/" if is_dir else path
    for regex, include, slash in rules:
        if regex.search(with_slash if slash else path) is not None:
            return include
    return None


def read_lines(file: str) -> list[str]:
    """The lines of a gitignore-style file; none if it is missing, unreadable or not a regular
    file (git does not follow a symlinked ``.gitignore`` either)."""
    try:
        if not stat.S_ISREG(os.lstat(file).st_mode):
            return []
        with open(file, encoding="utf-8-sig", errors="surrogateescape") as fh:
            return fh.read().splitlines()
    except (OSError, ValueError):
        return []


def git_dir(root: str) -> str | None:
    """The repository's common git directory (where ``info/exclude`` lives), following a
    ``.git`` file (``gitdir: ...``) as worktrees and submodules have."""
    dot_git = os.path.join(root, ".git")
    if os.path.isdir(dot_git):
        return dot_git
    try:
        with open(dot_git, encoding="utf-8", errors="surrogateescape") as fh:
            first = fh.readline().strip()
    except OSError:
        return None
    if not first.startswith("gitdir:"):
        return None
    found = os.path.join(root, first[len("gitdir:") :].strip())
    try:
        with open(os.path.join(found, "commondir"), encoding="utf-8") as fh:
            return os.path.normpath(os.path.join(found, fh.read().strip()))
    except OSError:
        return found


def normalize(rel_path: str) -> str:
    """A relative POSIX path without leading/trailing slashes or ``./`` ("" for the root)."""
    path = rel_path.strip("/")
    while path.startswith("./"):
        path = path[2:].lstrip("/")
    return "" if path == "." else path


class IgnoreRules:
    """Git-compatible ignore decisions for workspace-relative POSIX paths (``"src/a.py"``);
    see the module docstring. ``loader(rel_dir)`` gives the ignore-file lines of a folder
    ("" is the root), ``exclude()`` the lines of ``.git/info/exclude``.

    One instance may serve the UI thread and a scanning thread at once: cache fills are single
    dict stores, and ``invalidate`` builds new caches from snapshots and swaps them in (a
    decision computed while ``invalidate`` runs may still use the old rules).
    """

    def __init__(self, loader: Callable[[str], Sequence[str]],
                 extra_patterns: Sequence[str] = (),
                 exclude: Callable[[], Sequence[str]] = tuple) -> None:
        self._loader = loader
        self._exclude_source = exclude
        self._extra = _compile(list(extra_patterns))
        self._lock = threading.Lock()
        self._exclude: _Rules = _compile(list(exclude()))
        # rel_dir -> rules of that folder's ignore files ("" is the root folder).
        self._folders: dict[str, _Rules] = {}
        # rel_dir -> whether that directory itself is ignored (its ancestors not considered).
        self._dirs: dict[str, bool] = {}

    def invalidate(self, rel_dir: str | None = None) -> None:
        """Forget cached rules. ``None`` forgets everything (and reads the exclude lines
        again); ``rel_dir`` forgets that folder's ignore files and every decision below it.
        Pass the folder of an ignore file that was created, changed or deleted; a path inside
        ``.git`` reads the exclude lines again."""
        with self._lock:
            norm = normalize(rel_dir) if rel_dir is not None else None
            if norm is None or norm == ".git" or norm.startswith(".git/"):
                self._folders = {}
                self._dirs = {}
                self._exclude = _compile(list(self._exclude_source()))
                return
            prefix = norm + "/" if norm else ""
            # tuple(dict.items()) is one C call, safe against a concurrent store.
            self._folders = {
                d: r
                for d, r in tuple(self._folders.items())
                if d != norm and not d.startswith(prefix)
            }
            self._dirs = {
                d: r for d, r in tuple(self._dirs.items()) if d != norm and not d.startswith(prefix)
            }

    def _folder(self, rel_dir: str) -> _Rules:
        rules = self._folders.get(rel_dir)
        if rules is None:
            rules = _compile(list(self._loader(rel_dir)))
            self._folders[rel_dir] = rules
        return rules

    def _matches(self, path: str, is_dir: bool) -> bool:
        """Whether ``path`` itself is ignored, assuming none of its ancestors is."""
        if path == ".git" or path.endswith("/.git"):
            return True
        if self._extra:
            decision = _decide(self._extra, path, is_dir)
            if decision is not None:
                return decision
        end = len(path)
        while True:
            slash = path.rfind("/", 0, end)
            rules = self._folder(path[:slash] if slash > 0 else "")
            if rules:
                decision = _decide(rules, path[slash + 1 :], is_dir)
                if decision is not None:
                    return decision
            if slash < 0:
                break
            end = slash
        if self._exclude:
            decision = _decide(self._exclude, path, is_dir)
            if decision is not None:
                return decision
        return False

    def is_dir_ignored(self, rel_dir: str) -> bool:
        """Whether a folder is ignored, assuming its ancestors are not (for a walk that does
        not enter ignored folders)."""
        ignored = self._dirs.get(rel_dir)
        if ignored is None:
            ignored = self._matches(rel_dir, True)
            self._dirs[rel_dir] = ignored
        return ignored

    def is_file_ignored(self, rel_path: str) -> bool:
        """Whether a file is ignored, assuming its ancestors are not (for a walk)."""
        return self._matches(rel_path, False)

    def is_ignored(self, rel_path: str, is_dir: bool = False) -> bool:
        """Whether ``rel_path`` is ignored, itself or because a parent directory is."""
        path = normalize(rel_path)
        if not path:
            return False
        slash = path.find("/")
        while slash >= 0:
            if self.is_dir_ignored(path[:slash]):
                return True
            slash = path.find("/", slash + 1)
        return self.is_dir_ignored(path) if is_dir else self._matches(path, False)
