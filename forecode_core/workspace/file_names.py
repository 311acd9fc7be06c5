"""Names for new, renamed files and folders in the explorer: what makes one unusable, said
clearly (VS Code's messages where it has them).

Pure: ``exists`` is the caller's question to the file system, asked last.
"""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["MAX_NAME_BYTES", "name_problem"]

MAX_NAME_BYTES = 255
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"}
    | {f"COM{i}" for i in range(1, 10)}
    | {f"LPT{i}" for i in range(1, 10)}
)
_WINDOWS_BAD_CHARS = set('<>:"|?*')


def name_problem(
    name: str,
    exists: Callable[[str], bool],
    *,
    current: str | None = None,
    windows: bool = os.name == "nt",
) -> str | None:
    """Why ``name`` cannot be used for a new entry in a folder (or to rename ``current``
    there), or None when it can. ``exists(name)`` says whether the folder has an entry of
    exactly that name (a case-only rename on a case-insensitive file system is not taken)."""
    if not name or not name.strip():
        return "A file or folder name must be provided."
    if name != name.strip():
        return "A name cannot start or end with whitespace."
    if "/" in name or "\\" in name or (os.sep in name) or (os.altsep and os.altsep in name):
        return "A name cannot contain a path separator (/ or \\)."
    if name in (".", ".."):
        return f"'{name}' is not a valid file or folder name."
    if "\0" in name or any(ord(ch) < 32 for ch in name):
        return "A name cannot contain control characters."
    if len(os.fsencode(name)) > MAX_NAME_BYTES:
        return f"The name is too long (more than {MAX_NAME_BYTES} bytes)."
    if windows:
        bad = sorted(set(name) & _WINDOWS_BAD_CHARS)
        if bad:
            return f"A name cannot contain {' '.join(bad)} on Windows."
        if name.split(".")[0].upper() in _WINDOWS_RESERVED:
            return f"'{name}' is a reserved name on Windows."
        if name.endswith("."):
            return "A name cannot end with a period on Windows."
    if name == current:
        return None
    if exists(name):
        return (
            f"A file or folder '{name}' already exists at this location. Choose a different name."
        )
    return None
