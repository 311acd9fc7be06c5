"""Which workspace files the editor shows: ``.gitignore`` semantics, and a pruning file walk.

``IgnoreRules`` answers "is this path ignored?" the way git does, from these sources, highest
precedence first:

1. ``extra_patterns`` (gitignore syntax; the user's ``files.exclude`` setting). Like patterns
   given to git on the command line they win over every file, so ``!pattern`` there can also
   show something a ``.gitignore`` hides.
2. ``.gitignore`` files, the deepest folder's first; a file's patterns are relative to its
   folder. Nested files are read lazily, on the first question about a path below them, and
   cached; call ``invalidate`` when one changes.
3. ``.git/info/exclude``.

Within one source the last matching pattern wins, and ``!`` re-includes. As in git, a path
inside an ignored directory is ignored whatever the patterns say about the path itself (a file
cannot be re-included if a parent directory is excluded), because git never looks inside an
ignored directory. That is how this module works too: a path is checked by checking each of
its ancestor directories first, and a pattern only counts when it matches the path itself,
not one of its ancestors. ``.git`` is always ignored.

Patterns are compiled by pathspec's gitignore implementation (``pathspec.GitIgnoreSpec``);
only the precedence between files and the directory rule above are done here.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Callable, Iterator, Sequence

import pathspec

__all__ = ["IgnoreRules", "scan_files"]

_DIR_MARK_GROUP = "ps_d"  # pathspec's regex group for "matched as a directory"

# One compiled pattern: (regex, include, test_with_slash). ``include`` is True for an ignoring
# pattern and False for a "!" one. Stored last pattern first, so the first hit decides.
_Rule = tuple["re.Pattern[str]", bool, bool]


def _fix_line(line: str) -> str:
    """Work around a difference from git: pathspec lets ``dir/**/`` match ``dir`` itself,
    git only the directories inside it, which is what ``dir/**/*/`` means to both."""
    stripped = line.rstrip(" ")
    if stripped.endswith("/**/"):
        return stripped + "*/"
    return line


def _compile(lines: Sequence[str]) -> tuple[_Rule, ...]:
    """Compile gitignore lines into rules that match a path *itself*.

    pathspec's regexes also match every path below a matched directory (``build/`` matches
    ``build/a/b.c``), which is right for a single file but not when ancestors are checked
    separately and a deeper ``.gitignore`` may override a shallower one. A pattern whose regex
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


def _decide(rules: tuple[_Rule, ...], path: str, is_dir: bool) -> bool | None:
    """True (ignored) / False (re-included) by the last matching rule, or None if none
    matches."""
    with_slash = path + "/" if is_dir else path
    for regex, include, slash in rules:
        if regex.search(with_slash if slash else path) is not None:
            return include
    return None


def _read_rules(file: str) -> tuple[_Rule, ...]:
    """Rules from a gitignore-style file; none if it is missing, unreadable or not a regular
    file (git does not follow a symlinked ``.gitignore`` either)."""
    try:
        if not stat.S_ISREG(os.lstat(file).st_mode):
            return ()
        with open(file, encoding="utf-8-sig", errors="surrogateescape") as fh:
            text = fh.read()
    except (OSError, ValueError):
        return ()
    return _compile(text.splitlines())


def _git_dir(root: str) -> str | None:
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
    git_dir = os.path.join(root, first[len("gitdir:") :].strip())
    try:
        with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as fh:
            return os.path.normpath(os.path.join(git_dir, fh.read().strip()))
    except OSError:
        return git_dir


class IgnoreRules:
    """Git-compatible ignore decisions for paths under ``root`` (see the module docstring).

    Paths are POSIX-style and relative to ``root`` (``"src/a.py"``). One instance may serve
    the UI thread and a scanning thread at once: cache fills are single dict stores, and
    ``invalidate`` builds new caches from snapshots and swaps them in (a decision computed
    while ``invalidate`` runs may still use the old rules).
    """

    def __init__(self, root: str | os.PathLike[str], extra_patterns: Sequence[str] = ()) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self._extra = _compile(list(extra_patterns))
        self._lock = threading.Lock()
        self._exclude: tuple[_Rule, ...] = ()
        # rel_dir -> rules of that folder's .gitignore ("" is the root folder).
        self._gitignores: dict[str, tuple[_Rule, ...]] = {}
        # rel_dir -> whether that directory itself is ignored (its ancestors not considered).
        self._dirs: dict[str, bool] = {}
        self._load_exclude()

    def _load_exclude(self) -> None:
        git_dir = _git_dir(self.root)
        self._exclude = _read_rules(os.path.join(git_dir, "info", "exclude")) if git_dir else ()

    def invalidate(self, rel_dir: str | None = None) -> None:
        """Forget cached rules. ``None`` forgets everything (and re-reads
        ``.git/info/exclude``); ``rel_dir`` forgets that folder's ``.gitignore`` and every
        decision below it. Pass the folder of a ``.gitignore`` that was created, changed or
        deleted; a path inside ``.git`` re-reads ``info/exclude``."""
        with self._lock:
            norm = _normalize(rel_dir) if rel_dir is not None else None
            if norm is None or norm == ".git" or norm.startswith(".git/"):
                self._gitignores = {}
                self._dirs = {}
                self._load_exclude()
                return
            prefix = norm + "/" if norm else ""
            # tuple(dict.items()) is one C call, safe against a concurrent store.
            self._gitignores = {
                d: r
                for d, r in tuple(self._gitignores.items())
                if d != norm and not d.startswith(prefix)
            }
            self._dirs = {
                d: r for d, r in tuple(self._dirs.items()) if d != norm and not d.startswith(prefix)
            }

    def _gitignore(self, rel_dir: str) -> tuple[_Rule, ...]:
        rules = self._gitignores.get(rel_dir)
        if rules is None:
            folder = os.path.join(self.root, rel_dir) if rel_dir else self.root
            rules = _read_rules(os.path.join(folder, ".gitignore"))
            self._gitignores[rel_dir] = rules
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
            rules = self._gitignore(path[:slash] if slash > 0 else "")
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

    def _dir_matches(self, rel_dir: str) -> bool:
        ignored = self._dirs.get(rel_dir)
        if ignored is None:
            ignored = self._matches(rel_dir, True)
            self._dirs[rel_dir] = ignored
        return ignored

    def is_ignored(self, rel_path: str, is_dir: bool) -> bool:
        """Whether ``rel_path`` is ignored, itself or because a parent directory is."""
        path = _normalize(rel_path)
        if not path:
            return False
        slash = path.find("/")
        while slash >= 0:
            if self._dir_matches(path[:slash]):
                return True
            slash = path.find("/", slash + 1)
        return self._dir_matches(path) if is_dir else self._matches(path, False)


def _normalize(rel_path: str) -> str:
    path = rel_path.strip("/")
    while path.startswith("./"):
        path = path[2:].lstrip("/")
    return "" if path == "." else path


def scan_files(
    root: str | os.PathLike[str],
    rules: IgnoreRules,
    *,
    should_stop: Callable[[], bool] | None = None,
    limit: int = 200_000,
) -> Iterator[str]:
    """Yield the POSIX paths, relative to ``root``, of the files ``rules`` does not ignore.

    Walks with ``os.scandir``, depth first: a folder's files (sorted by name) come before its
    subfolders' (also sorted). Ignored directories are never entered; symlinked directories
    are not followed (a symlink to a file is yielded); unreadable folders are skipped. Stops
    after ``limit`` files, or soon after ``should_stop()`` returns True (checked before each
    folder and every 64 entries). ``root`` should be ``rules.root`` or the same folder.
    """
    top = os.path.abspath(os.fspath(root))
    if limit <= 0:
        return
    count = 0
    stack: list[str] = [""]  # relative folders still to visit, the next one last
    while stack:
        if should_stop is not None and should_stop():
            return
        rel_dir = stack.pop()
        try:
            with os.scandir(os.path.join(top, rel_dir) if rel_dir else top) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue
        prefix = rel_dir + "/" if rel_dir else ""
        subdirs: list[str] = []
        for n, entry in enumerate(entries, 1):
            if n % 64 == 0 and should_stop is not None and should_stop():
                return
            rel = prefix + entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not rules._dir_matches(rel):
                        subdirs.append(rel)
                    continue
                if not entry.is_file():  # follows a symlink: skips dangling links and sockets
                    continue
            except OSError:
                continue
            if rules._matches(rel, False):
                continue
            yield rel
            count += 1
            if count >= limit:
                return
        stack.extend(reversed(subdirs))
