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

Patterns are matched by ``forecode_core.workspace.wildmatch`` (git's wildmatch without backtracking:
linear in pattern x path, whatever a hostile ``.gitignore`` holds), and the precedence between
files, the directory rule above and the limits on a file's size are
``forecode_core.workspace.gitignore``'s
(one implementation, shared with the codebase index; ``local_models`` may not import ``app``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

from forecode_core.workspace.gitignore import IgnoreRules as _GitIgnoreRules
from forecode_core.workspace.gitignore import git_dir, read_lines

__all__ = ["IgnoreRules", "scan_files"]

_read_rules = read_lines  # every ignore file the editor reads goes through here


class IgnoreRules(_GitIgnoreRules):
    """Git-compatible ignore decisions for paths under ``root`` (see the module docstring):
    its ``.gitignore`` files and ``.git/info/exclude`` (following a ``.git`` file, as worktrees
    and submodules have). The rules themselves are ``forecode_core.workspace.gitignore``'s, shared
    with
    the codebase index.

    Paths are POSIX-style and relative to ``root`` (``"src/a.py"``). One instance may serve
    the UI thread and a scanning thread at once (see
    ``forecode_core.workspace.gitignore.IgnoreRules``).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        extra_patterns: Sequence[str] = (),
        *,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.root = os.path.abspath(os.fspath(root))
        super().__init__(
            self._gitignore_lines, extra_patterns, self._exclude_lines, on_warning=on_warning
        )

    def _gitignore_lines(self, rel_dir: str) -> list[str]:
        folder = os.path.join(self.root, rel_dir) if rel_dir else self.root
        return _read_rules(os.path.join(folder, ".gitignore"))

    def _exclude_lines(self) -> list[str]:
        found = git_dir(self.root)
        return _read_rules(os.path.join(found, "info", "exclude")) if found else []


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
                    if not rules.is_dir_ignored(rel):
                        subdirs.append(rel)
                    continue
                if not entry.is_file():  # follows a symlink: skips dangling links and sockets
                    continue
            except OSError:
                continue
            if rules.is_file_ignored(rel):
                continue
            yield rel
            count += 1
            if count >= limit:
                return
        stack.extend(reversed(subdirs))
