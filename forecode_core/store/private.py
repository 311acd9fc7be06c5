"""Owner-only folders and files for the editor's own data (settings, chats, backups, the
session, the window layout, histories, index state): nobody else on the machine may read a
conversation or a backup of an unsaved buffer.

- ``private_folder(folder)``: ``folder`` made with every missing level ``0700`` (``mkdir``'s
  ``parents`` would give them the umask's mode) and ``folder`` itself set to ``0700`` (one made
  by an older version is put right at its next write);
- ``PRIVATE_FILE``: the mode a store's file is written with (``atomic_write(..., mode=)``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "private_at_start", "private_folder"]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_folder(folder: Path) -> None:
    """Create ``folder`` (each missing level owner-only) and make it owner-only. Raises
    OSError when it cannot be created."""
    missing: list[Path] = []
    level = folder
    while not level.is_dir():
        missing.append(level)
        if level.parent == level:
            break
        level = level.parent
    for made in reversed(missing):
        with contextlib.suppress(FileExistsError):
            made.mkdir(PRIVATE_DIR)
    if os.name == "posix":
        with contextlib.suppress(OSError):  # a folder of another owner: left as it is
            os.chmod(folder, PRIVATE_DIR)


def private_at_start(*folders: Path) -> None:
    """The app's own top folders (``folders``, by default the data and settings folders)
    made owner-only when they exist: what an older version left readable by others is
    closed at the next start (a ``chmod`` each, no walk)."""
    if os.name != "posix":
        return
    if not folders:
        from forecode_core.store.settings import config_dir, data_dir

        folders = (data_dir(), config_dir())
    for folder in folders:
        if folder.is_dir() and not folder.is_symlink():
            with contextlib.suppress(OSError):
                os.chmod(folder, PRIVATE_DIR)
