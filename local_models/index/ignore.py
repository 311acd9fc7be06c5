"""Which workspace files the index leaves out: ``.gitignore`` and ``.forecodeignore`` (same
syntax), nested in any folder, plus ``.git/info/exclude`` and patterns given by the caller.

Precedence, highest first: ``extra_patterns``; then the ignore files of the path's deepest folder,
then its parent's, up to the root (in one folder ``.forecodeignore`` is read after ``.gitignore``,
so it wins a tie: it can also re-include with ``!``); then ``.git/info/exclude``. Within one
source the last matching pattern wins. As in git, a path inside an ignored folder is ignored
whatever the patterns say about it, and ``.git`` always is. Patterns are compiled by pathspec's
gitignore implementation.

The same decisions for a folder on disk (``IgnoreRules.for_folder``) or for an in-memory list of
files (``IgnoreRules.for_files``: the ignore files among them are used).

Note: ``app.core.workspace.IgnoreRules`` makes the editor's explorer decisions with more care
for corner cases of directory patterns; ``local_models`` must not import ``app``, so this is a
smaller second implementation of the same rules. Both should move to one shared pure module.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping, Sequence

import pathspec

__all__ = ["IGNORE_FILES", "IgnoreRules"]

IGNORE_FILES: tuple[str, ...] = (".gitignore", ".forecodeignore")

_Loader = Callable[[str], Sequence[str]]  # rel_dir ("" = root) -> pattern lines


def _spec(lines: Sequence[str]) -> pathspec.GitIgnoreSpec | None:
    lines = [line for line in lines if line.strip() and not line.startswith("#")]
    if not lines:
        return None
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except ValueError:  # git skips a malformed pattern and keeps the others
        good = []
        for line in lines:
            try:
                pathspec.GitIgnoreSpec.from_lines([line])
            except ValueError:
                continue
            good.append(line)
        return pathspec.GitIgnoreSpec.from_lines(good) if good else None


def _decide(spec: pathspec.GitIgnoreSpec | None, rel: str, is_dir: bool) -> bool | None:
    if spec is None:
        return None
    result = spec.check_file(rel + "/" if is_dir else rel)
    include = result.include
    return None if include is None else bool(include)


class IgnoreRules:
    """Ignore decisions for workspace-relative POSIX paths (see the module docstring).

    Ignore files are read lazily, once per folder, and cached; call ``invalidate`` when one
    changes. Not thread-safe: give each scanning thread its own instance.
    """

    def __init__(self, loader: _Loader, extra_patterns: Sequence[str] = (),
                 exclude_lines: Sequence[str] = ()) -> None:
        self._loader = loader
        self._extra = _spec(list(extra_patterns))
        self._exclude = _spec(list(exclude_lines))
        self._folders: dict[str, pathspec.GitIgnoreSpec | None] = {}
        # rel_dir -> (folder prefix length, spec) of it and its ancestors that have rules,
        # deepest first
        self._chains: dict[str, tuple[tuple[int, pathspec.GitIgnoreSpec], ...]] = {}
        self._dirs: dict[str, bool] = {}

    @classmethod
    def for_folder(cls, root: str | os.PathLike[str],
                   extra_patterns: Sequence[str] = ()) -> IgnoreRules:
        """Rules read from the ignore files under the folder ``root``."""
        top = os.path.abspath(os.fspath(root))

        def load(rel_dir: str) -> list[str]:
            folder = os.path.join(top, rel_dir) if rel_dir else top
            lines: list[str] = []
            for name in IGNORE_FILES:
                lines.extend(_read_lines(os.path.join(folder, name)))
            return lines

        return cls(load, extra_patterns, _read_lines(os.path.join(top, ".git", "info", "exclude")))

    @classmethod
    def for_files(cls, files: Mapping[str, bytes],
                  extra_patterns: Sequence[str] = ()) -> IgnoreRules:
        """Rules from the ignore files found in ``files`` (relative path -> bytes)."""

        def load(rel_dir: str) -> list[str]:
            prefix = rel_dir + "/" if rel_dir else ""
            lines: list[str] = []
            for name in IGNORE_FILES:
                data = files.get(prefix + name)
                if data is not None:
                    lines.extend(data.decode("utf-8", "surrogateescape").splitlines())
            return lines

        exclude = files.get(".git/info/exclude", b"").decode("utf-8", "surrogateescape")
        return cls(load, extra_patterns, exclude.splitlines())

    def invalidate(self, rel_dir: str | None = None) -> None:
        """Forget cached rules: all of them, or those of one folder and below (pass the folder
        of an ignore file that was created, changed or deleted)."""
        self._chains.clear()
        if rel_dir is None or rel_dir in ("", "."):
            self._folders.clear()
            self._dirs.clear()
            return
        norm = rel_dir.strip("/")
        prefix = norm + "/"
        for cache in (self._folders, self._dirs):
            for key in [k for k in cache if k == norm or k.startswith(prefix)]:
                del cache[key]

    def _folder(self, rel_dir: str) -> pathspec.GitIgnoreSpec | None:
        if rel_dir not in self._folders:
            self._folders[rel_dir] = _spec(self._loader(rel_dir))
        return self._folders[rel_dir]

    def _matches(self, path: str, is_dir: bool) -> bool:
        """Whether ``path`` itself is ignored, its ancestors not considered."""
        if path == ".git" or path.endswith("/.git"):
            return True
        decision = _decide(self._extra, path, is_dir)
        if decision is not None:
            return decision
        slash = path.rfind("/")
        for start, spec in self._chain(path[:slash] if slash > 0 else ""):
            decision = _decide(spec, path[start:], is_dir)
            if decision is not None:
                return decision
        return bool(_decide(self._exclude, path, is_dir))

    def _chain(self, rel_dir: str) -> tuple[tuple[int, pathspec.GitIgnoreSpec], ...]:
        chain = self._chains.get(rel_dir)
        if chain is None:
            spec = self._folder(rel_dir)
            own = ((len(rel_dir) + 1 if rel_dir else 0, spec),) if spec is not None else ()
            slash = rel_dir.rfind("/")
            parent = self._chain(rel_dir[:slash] if slash > 0 else "") if rel_dir else ()
            chain = self._chains[rel_dir] = own + parent
        return chain

    def is_dir_ignored(self, rel_dir: str) -> bool:
        """Whether a folder is ignored, assuming its ancestors are not (for a walk that does not
        enter ignored folders)."""
        ignored = self._dirs.get(rel_dir)
        if ignored is None:
            ignored = self._dirs[rel_dir] = self._matches(rel_dir, True)
        return ignored

    def is_ignored(self, rel_path: str, is_dir: bool = False) -> bool:
        """Whether ``rel_path`` is ignored, itself or because a folder above it is."""
        path = rel_path.strip("/")
        if not path:
            return False
        slash = path.find("/")
        while slash >= 0:
            if self.is_dir_ignored(path[:slash]):
                return True
            slash = path.find("/", slash + 1)
        return self.is_dir_ignored(path) if is_dir else self._matches(path, False)


def _read_lines(file: str) -> list[str]:
    """Lines of a regular file; none if it is missing, unreadable or a symlink."""
    try:
        if not stat.S_ISREG(os.lstat(file).st_mode):
            return []
        with open(file, encoding="utf-8-sig", errors="surrogateescape") as fh:
            return fh.read().splitlines()
    except (OSError, ValueError):
        return []
