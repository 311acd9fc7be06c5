"""Hot exit: backups of unsaved buffers, restored after a crash or kill.

Each workspace has its own folder (``BackupStore.for_workspace``); each buffer is one JSON file in
it, named by a hash of the buffer's key so any path gives a safe file name, and written with
``atomic_write`` so a kill mid-write leaves the previous complete backup. ``load_all`` never
raises: a file that cannot be read back is reported and moved to ``corrupt/``, never deleted.

Beside the backups, ``session.tabs`` keeps the window's open tabs (``Session``): every file tab
in order, with its selection and scroll, and which one was active, so hot exit reopens all of
them, not only the unsaved ones (VS Code's ``hotExit`` with ``restoreWindows``).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecode_core.store.atomic import TEMP_SUFFIX
from forecode_core.store.json_store import (
    CorruptDocument,
    read_document,
    sha256_hex,
    workspace_folder,
    write_document,
)
from forecode_core.store.private import private_folder
from forecode_core.store.settings import data_dir

__all__ = ["FORMAT_VERSION", "Backup", "BackupStore", "Session", "TabState"]

FORMAT_NAME = "forecode-backup"
FORMAT_VERSION = 1
CORRUPT_DIR = "corrupt"
SESSION_FILE = "session.tabs"
SESSION_FORMAT = "forecode-session"
SESSION_VERSION = 1
_EOLS = ("\n", "\r\n", "\r")
# atomic_write's temporary files older than this are leftovers of a killed write.
_STALE_TEMP_SECONDS = 600.0


@dataclass(frozen=True)
class Backup:
    key: str  # stable buffer id: key_for_path(path) for a file, "untitled-N" for an untitled one
    path: str | None  # absolute path of the file, None for untitled
    text: str
    encoding: str  # codec name as used by the editor (opaque here)
    eol: str  # "\n" | "\r\n" | "\r"
    disk_mtime_ns: int | None  # the file's mtime when it was loaded/saved
    disk_size: int | None
    saved_at: float  # time.time() of the backup


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _document(backup: Backup) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "key": backup.key,
        "path": backup.path,
        "encoding": backup.encoding,
        "eol": backup.eol,
        "disk_mtime_ns": backup.disk_mtime_ns,
        "disk_size": backup.disk_size,
        "saved_at": backup.saved_at,
        "text": backup.text,  # last, so the header is readable with `head`
    }


def _decode(data: bytes) -> Backup:
    d = read_document(data, FORMAT_NAME, FORMAT_VERSION, "backup")

    def need(name: str, ok: bool) -> None:
        if not ok:
            raise CorruptDocument(f"bad or missing field {name!r}")

    need("key", isinstance(d.get("key"), str) and bool(d["key"]))
    need("path", d.get("path", 0) is None or isinstance(d.get("path"), str))
    need("text", isinstance(d.get("text"), str))
    need("encoding", isinstance(d.get("encoding"), str))
    need("eol", d.get("eol") in _EOLS)
    need("disk_mtime_ns", d.get("disk_mtime_ns", 0.5) is None or _is_int(d.get("disk_mtime_ns")))
    need("disk_size", d.get("disk_size", 0.5) is None or _is_int(d.get("disk_size")))
    saved_at = d.get("saved_at")
    need("saved_at", isinstance(saved_at, int | float) and not isinstance(saved_at, bool))
    return Backup(
        key=d["key"],
        path=d["path"],
        text=d["text"],
        encoding=d["encoding"],
        eol=d["eol"],
        disk_mtime_ns=d["disk_mtime_ns"],
        disk_size=d["disk_size"],
        saved_at=float(d["saved_at"]),
    )


@dataclass(frozen=True)
class TabState:
    """One open tab: its buffer key (as a backup's), file, selection and scroll. Positions are
    the editor's byte offsets; ``first_line`` is a document line, ``x_offset`` pixels."""

    key: str
    path: str | None
    anchor: int = 0
    caret: int = 0
    first_line: int = 0
    x_offset: int = 0


@dataclass(frozen=True)
class Session:
    tabs: tuple[TabState, ...]
    active: int = 0  # index into tabs; -1 for none


def _session_document(session: Session) -> dict[str, Any]:
    return {
        "format": SESSION_FORMAT,
        "version": SESSION_VERSION,
        "active": session.active,
        "tabs": [
            {
                "key": t.key,
                "path": t.path,
                "anchor": t.anchor,
                "caret": t.caret,
                "first_line": t.first_line,
                "x_offset": t.x_offset,
            }
            for t in session.tabs
        ],
    }


def _decode_session(data: bytes) -> Session:
    d = read_document(data, SESSION_FORMAT, SESSION_VERSION, "session")
    tabs_raw = d.get("tabs")
    active = d.get("active", 0)
    if not isinstance(tabs_raw, list) or not _is_int(active):
        raise CorruptDocument("bad or missing field 'tabs' or 'active'")
    tabs: list[TabState] = []
    for raw in tabs_raw:
        if (
            not isinstance(raw, dict)
            or not isinstance(raw.get("key"), str)
            or not (raw.get("path") is None or isinstance(raw.get("path"), str))
        ):
            raise CorruptDocument("a tab without a key or path")
        numbers = [raw.get(name, 0) for name in ("anchor", "caret", "first_line", "x_offset")]
        if not all(_is_int(n) and n >= 0 for n in numbers):
            raise CorruptDocument("a tab with a bad position")
        tabs.append(TabState(raw["key"], raw["path"], *numbers))
    return Session(tuple(tabs), active if -1 <= active < len(tabs) else 0)


class BackupStore:
    """The backups of one workspace, one JSON file per buffer key under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def for_workspace(
        cls, workspace: str | os.PathLike[str], base: Path | None = None
    ) -> BackupStore:
        """The store for ``workspace``: ``base/<first 16 hex of sha256(resolved path)>``, with
        ``base`` defaulting to ``data_dir()/"backups"``."""
        if base is None:
            base = data_dir() / "backups"
        return cls(Path(base) / workspace_folder(workspace)[1])

    @staticmethod
    def key_for_path(path: str | os.PathLike[str]) -> str:
        """The key of a file's buffer: ``"file:"`` + its absolute, case-normalised path."""
        return "file:" + os.path.normcase(os.path.abspath(os.fspath(path)))

    def file_for_key(self, key: str) -> Path:
        """Where the backup for ``key`` is stored (a hash, so any key is a safe file name)."""
        return self.root / (sha256_hex(key) + ".json")

    def write(self, backup: Backup) -> None:
        """Store ``backup`` atomically, replacing the previous one for its key. Raises
        ``OSError`` if the folder cannot be written."""
        write_document(self.file_for_key(backup.key), _document(backup))

    def remove(self, key: str) -> None:
        """Drop the backup for ``key`` (after a save or close-without-saving); missing is fine."""
        with contextlib.suppress(FileNotFoundError):
            self.file_for_key(key).unlink()

    def write_session(self, session: Session) -> None:
        """Store the open tabs atomically (raises ``OSError`` if the folder cannot be written)."""
        write_document(self.root / SESSION_FILE, _session_document(session))

    def load_session(self) -> tuple[Session | None, list[str]]:
        """The stored tabs (None when there are none) and a problem message if the file was
        unusable (it is then moved to ``corrupt/``). Never raises."""
        path = self.root / SESSION_FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None, []
        except OSError as e:
            return None, [f"the open tabs could not be read ({e.strerror or e})"]
        try:
            return _decode_session(data), []
        except CorruptDocument as e:
            return None, [f"the list of open tabs is unusable ({e}); {self._aside(path)}"]

    def load_all(self) -> tuple[list[Backup], list[str]]:
        """Every readable backup (oldest first) and a problem message for each file that was not.

        Never raises. A corrupt, partial or unknown-version file is moved to ``root/corrupt/``.
        """
        backups: list[Backup] = []
        problems: list[str] = []
        try:
            entries = sorted(self.root.iterdir())
        except FileNotFoundError:
            return [], []
        except OSError as e:
            return [], [f"backup folder {self.root} could not be read ({e.strerror or e})"]
        now = time.time()
        for entry in entries:
            try:
                if entry.name.endswith(TEMP_SUFFIX):
                    self._drop_stale_temp(entry, now)
                    continue
                if entry.suffix != ".json" or not entry.is_file():
                    continue
                try:
                    data = entry.read_bytes()
                except OSError as e:
                    problems.append(f"backup {entry.name} could not be read ({e.strerror or e})")
                    continue
                try:
                    backup = _decode(data)
                    if self.file_for_key(backup.key).name != entry.name:
                        raise CorruptDocument("its name does not match its key")
                except CorruptDocument as e:
                    problems.append(f"backup {entry.name} is unusable ({e}); {self._aside(entry)}")
                    continue
                backups.append(backup)
            except Exception as e:  # never let one odd file stop the restore of the others
                problems.append(f"backup {entry.name} could not be loaded ({type(e).__name__})")
        backups.sort(key=lambda b: (b.saved_at, b.key))
        return backups, problems

    def clear(self) -> None:
        """Remove every backup of this workspace (files in ``corrupt/`` are kept)."""
        try:
            entries = list(self.root.iterdir())
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.is_file() and (entry.suffix == ".json" or entry.name.endswith(TEMP_SUFFIX)):
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()

    def _aside(self, entry: Path) -> str:
        folder = self.root / CORRUPT_DIR
        try:
            private_folder(folder)
            dest = folder / entry.name
            n = 1
            while dest.exists():
                dest = folder / f"{entry.stem}.{n}{entry.suffix}"
                n += 1
            os.replace(entry, dest)
        except OSError as e:
            return f"could not move it aside ({e.strerror or e}); left in place"
        return f"moved to {dest}"

    @staticmethod
    def _drop_stale_temp(entry: Path, now: float) -> None:
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > _STALE_TEMP_SECONDS:
                entry.unlink()
