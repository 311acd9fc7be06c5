"""Path confinement: a path the model names is a file of the workspace or nothing.

``relative_path`` is the lexical rule (no absolute path, no drive letter, no ``..``, no
backslash, no NUL, no empty part); ``inside`` adds the filesystem's: the path resolved with
every symlink followed must still lie inside the workspace's own resolved root. A file
outside is never opened: both checks run before any read or write.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["PathRefused", "inside", "relative_path"]

_DRIVE = re.compile(r"^[A-Za-z]:")


class PathRefused(ValueError):
    """The path is not a file of the workspace: ``reason`` says why (shown to the model)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path[:200]!r} {reason}")


def relative_path(raw: str) -> str:
    """``raw`` as a clean workspace-relative path ("./" dropped, quotes and backquotes
    around it stripped), or ``PathRefused``."""
    path = raw.strip().strip("`\"'").strip()
    while path.startswith("./"):
        path = path[2:]
    if not path:
        raise PathRefused(raw, "is empty")
    if "\x00" in path or "\\" in path:
        raise PathRefused(path, "is not a plain path (backslash or NUL)")
    if path.startswith(("/", "~")) or _DRIVE.match(path):
        raise PathRefused(path, "is outside the workspace (paths are relative to it)")
    if any(part in ("", ".", "..") for part in path.rstrip("/").split("/")):
        raise PathRefused(path, "is outside the workspace or not plain ('..', '.', '//')")
    return path.rstrip("/")


def inside(root: str | os.PathLike[str], raw: str) -> Path:
    """The file ``raw`` names in the workspace at ``root``, every link followed, or
    ``PathRefused`` when it (or a link on its way) leads outside."""
    rel = relative_path(raw)
    base = Path(os.path.realpath(root))
    target = Path(os.path.realpath(base / rel))
    if target != base and base not in target.parents:
        raise PathRefused(rel, "leads outside the workspace (a symbolic link)")
    return target
