"""The terminal's command history on disk, one file per workspace (issue 17's next-command
prediction): ``<data>/terminal-history/<workspace folder>.json``, the folder and the file
owner-only (0700 / 0600: commands can name private paths and hosts). What may be stored is
``forecode_core.terminal.predict.CommandHistory``'s rule (no secrets, no hidden lines); this
module only reads and writes, on the caller's thread (the predictor's own worker)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from forecode_core.store.json_store import CorruptDocument, workspace_folder, write_document
from forecode_core.terminal.predict import CommandHistory

__all__ = ["HistoryStore"]


class HistoryStore:
    """``base``: the data folder (``forecode_core.store.settings.data_dir()``)."""

    def __init__(self, base: str | os.PathLike[str]) -> None:
        self.folder = Path(base) / "terminal-history"

    def path(self, workspace: str | os.PathLike[str]) -> Path:
        return self.folder / f"{workspace_folder(workspace)[1]}.json"

    def load(self, workspace: str | os.PathLike[str]) -> CommandHistory:
        """The workspace's history; empty when there is none or it is not readable (a
        corrupt file is moved aside as ``.corrupt``, never deleted)."""
        path = self.path(workspace)
        try:
            data = path.read_bytes()
        except OSError:
            return CommandHistory()
        try:
            return CommandHistory.from_document(data)
        except CorruptDocument:
            with contextlib.suppress(OSError):
                path.replace(path.with_suffix(".corrupt"))
            return CommandHistory()

    def save(self, workspace: str | os.PathLike[str], history: CommandHistory) -> None:
        """Write the history atomically, owner-only (``write_document``: the folder 0700, the
        file 0600, its temporary file made 0600 by ``mkstemp``). Raises OSError."""
        path = self.path(workspace)
        write_document(path, history.to_document())
