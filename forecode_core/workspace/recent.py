"""Recently opened folders, for the welcome page and File: Open Recent: one small JSON file in
the data dir (``<data>/recent-folders.json``), newest first, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

from forecode_core.store.json_store import CorruptDocument, read_document, write_document
from forecode_core.store.settings import data_dir

__all__ = ["RecentFolders"]

FORMAT_NAME = "forecode-recent-folders"
FORMAT_VERSION = 1
LIMIT = 10


class RecentFolders:
    def __init__(self, path: Path | None = None, limit: int = LIMIT) -> None:
        self.path = path or data_dir() / "recent-folders.json"
        self.limit = limit

    def load(self) -> list[str]:
        """The folders, newest first. Never raises: a missing or unreadable file is no list."""
        try:
            data = self.path.read_bytes()
        except OSError:
            return []
        try:
            doc = read_document(data, FORMAT_NAME, FORMAT_VERSION, "recent folders list")
        except CorruptDocument:
            return []
        folders = doc.get("folders")
        if not isinstance(folders, list):
            return []
        return [f for f in folders if isinstance(f, str) and f][: self.limit]

    def add(self, folder: str | os.PathLike[str]) -> list[str]:
        """Put ``folder`` first and store the list (raises OSError when it cannot)."""
        name = str(Path(folder).resolve())
        folders = [name] + [f for f in self.load() if f != name]
        return self._store(folders[: self.limit])

    def remove(self, folder: str) -> list[str]:
        return self._store([f for f in self.load() if f != folder])

    def _store(self, folders: list[str]) -> list[str]:
        write_document(
            self.path,
            {"format": FORMAT_NAME, "version": FORMAT_VERSION, "folders": folders},
            indent=1,
        )
        return folders
