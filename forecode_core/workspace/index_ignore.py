"""Which workspace files the index leaves out: ``.gitignore`` and ``.forecodeignore`` (same
syntax), nested in any folder, plus ``.git/info/exclude`` and patterns given by the caller.

Precedence, highest first: ``extra_patterns``; then the ignore files of the path's deepest folder,
then its parent's, up to the root (in one folder ``.forecodeignore`` is read after ``.gitignore``,
so it wins a tie: it can also re-include with ``!``); then ``.git/info/exclude``. Within one
source the last matching pattern wins. As in git, a path inside an ignored folder is ignored
whatever the patterns say about it, and ``.git`` always is.

The rules are ``forecode_core.workspace.gitignore``'s, the same implementation as the editor's
explorer
(``forecode_core.workspace.scan``): git's wildmatch without backtracking, with limits on an ignore
file's size that degrade with a logged warning (``on_warning`` also hears of it, from
whichever thread read the file). This module only says which files hold them: on disk
(``IgnoreRules.for_folder``) or in an in-memory list of files (``IgnoreRules.for_files``: the
ignore files among them are used).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from forecode_core.workspace.gitignore import IgnoreRules as _GitIgnoreRules
from forecode_core.workspace.gitignore import git_dir, read_lines

__all__ = ["IGNORE_FILES", "IgnoreRules"]

IGNORE_FILES: tuple[str, ...] = (".gitignore", ".forecodeignore")

_Loader = Callable[[str], Sequence[str]]  # rel_dir ("" = root) -> pattern lines


class IgnoreRules(_GitIgnoreRules):
    """Ignore decisions for workspace-relative POSIX paths (see the module docstring).

    ``loader(rel_dir)`` gives the pattern lines of a folder's ignore files; they are read
    lazily, once per folder, and cached: call ``invalidate`` when one changes.
    """

    def __init__(
        self,
        loader: _Loader,
        extra_patterns: Sequence[str] = (),
        exclude_lines: Sequence[str] | Callable[[], Sequence[str]] = (),
        *,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        exclude = exclude_lines if callable(exclude_lines) else (lambda: exclude_lines)
        super().__init__(loader, extra_patterns, exclude, on_warning=on_warning)

    @classmethod
    def for_folder(
        cls, root: str | os.PathLike[str], extra_patterns: Sequence[str] = ()
    ) -> IgnoreRules:
        """Rules read from the ignore files under the folder ``root``."""
        top = os.path.abspath(os.fspath(root))

        def load(rel_dir: str) -> list[str]:
            folder = os.path.join(top, rel_dir) if rel_dir else top
            lines: list[str] = []
            for name in IGNORE_FILES:
                lines.extend(read_lines(os.path.join(folder, name)))
            return lines

        def exclude() -> list[str]:
            found = git_dir(top)
            return read_lines(os.path.join(found, "info", "exclude")) if found else []

        return cls(load, extra_patterns, exclude)

    @classmethod
    def for_files(
        cls, files: Mapping[str, bytes], extra_patterns: Sequence[str] = ()
    ) -> IgnoreRules:
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
