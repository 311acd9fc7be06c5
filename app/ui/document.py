"""A document tab: one file (or an untitled buffer) in a ``CodeEditor``, with its file state.

It owns what makes saving safe: the encoding and line endings the file was read with (kept on
save), read-only protection for binary and undecodable files, atomic saves, noticing changes on
disk (an unmodified buffer reloads, a modified one is offered the choice and never overwrites the
disk silently), and hot-exit backups of unsaved text shortly after each change.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.core.atomic import atomic_write
from app.core.hotexit import Backup, BackupStore
from app.core.languages import language_for_path
from app.core.settings import Settings
from app.core.textfile import Decoded, decode_bytes, encode_text

from .editor import CodeEditor

__all__ = ["Banner", "DiskState", "Document"]


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(frozen=True)
class DiskState:
    """What the document last knew of its file on disk."""

    mtime_ns: int
    size: int
    digest: str


class Banner(QFrame):
    """A one-line message above the editor with action buttons (no modal dialogs)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        layout.addWidget(self.label, 1)
        self._buttons: list[QPushButton] = []
        self._layout = layout
        self.kind = ""
        self.hide()

    def show_message(self, text: str, kind: str = "info",
                     actions: tuple[tuple[str, Callable[[], None]], ...] = ()) -> None:
        for button in self._buttons:
            button.deleteLater()
        self._buttons = []
        self.kind = kind
        colour = {"info": "#2f65ca", "warning": "#b58900", "error": "#c0392b"}.get(kind, "#555")
        self.setStyleSheet(f"#banner {{ border-left: 4px solid {colour}; }}")
        self.label.setText(text)
        for title, callback in actions:
            button = QPushButton(title)
            button.clicked.connect(callback)
            self._layout.addWidget(button)
            self._buttons.append(button)
        self.show()

    def buttons(self) -> dict[str, QPushButton]:
        return {b.text(): b for b in self._buttons}

    def clear(self) -> None:
        self.kind = ""
        self.hide()


class Document(QWidget):
    """One editor tab. Create with ``Document.open(path)`` or ``Document.untitled(n)``."""

    dirtyChanged = Signal(bool)
    titleChanged = Signal()
    saved = Signal(str)  # path

    def __init__(self, settings: Settings, backups: BackupStore | None,
                 executor: Executor | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self._backups = backups
        self._executor = executor
        self.path: Path | None = None
        self.untitled_index = 0
        self.encoding = "utf-8"
        self.eol = settings.default_eol
        self.mixed_eol = False
        self.read_only_reason: str | None = None
        self.disk: DiskState | None = None
        self.conflict = False  # the file changed on disk while the buffer had unsaved edits
        self.deleted_on_disk = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.banner = Banner(self)
        self.editor = CodeEditor(self)
        layout.addWidget(self.banner)
        layout.addWidget(self.editor, 1)
        self._backup_timer = QTimer(self)
        self._backup_timer.setSingleShot(True)
        self._backup_timer.timeout.connect(self.backup_now)
        self.editor.savePointChanged.connect(self._on_save_point)
        self.editor.modified.connect(self._on_modified)
        self.apply_settings(settings)

    # ----- construction -------------------------------------------------------------------
    @classmethod
    def untitled(cls, index: int, settings: Settings, backups: BackupStore | None = None,
                 executor: Executor | None = None) -> Document:
        doc = cls(settings, backups, executor)
        doc.untitled_index = index
        doc.editor.set_eol(doc.eol)
        return doc

    @classmethod
    def open(cls, path: str | os.PathLike[str], settings: Settings,
             backups: BackupStore | None = None, executor: Executor | None = None) -> Document:
        """Open ``path``. Raises ``OSError`` when it cannot be read."""
        doc = cls(settings, backups, executor)
        doc.path = Path(path).resolve()
        doc._load_from_disk()
        return doc

    def _read_raw(self) -> tuple[bytes, os.stat_result]:
        assert self.path is not None
        with open(self.path, "rb") as f:
            st = os.fstat(f.fileno())  # before reading: a change during the read is seen later
            return f.read(), st

    def _read_disk(self) -> tuple[Decoded, bytes, os.stat_result]:
        data, st = self._read_raw()
        return decode_bytes(data, self.settings.default_eol), data, st

    def _load_from_disk(self) -> None:
        decoded, data, st = self._read_disk()
        self._apply_decoded(decoded, data, st)

    def _apply_decoded(self, decoded: Decoded, data: bytes, st: os.stat_result,
                       keep_position: bool = False) -> None:
        assert self.path is not None
        first_line = decoded.text[:200].split("\n", 1)[0]
        language = language_for_path(self.path, first_line)
        if language is not self.editor.language:
            self.editor.set_language(language)
        line = self.editor.firstVisibleLine()
        pos = self.editor.currentPos()
        self.encoding, self.eol, self.mixed_eol = decoded.encoding, decoded.eol, decoded.mixed_eol
        self.read_only_reason = decoded.read_only_reason
        self.editor.setReadOnly(False)
        self.editor.set_text(decoded.text, keep_undo=keep_position)
        self.editor.setSavePoint()
        self.editor.set_eol(decoded.eol)
        self.editor.setReadOnly(self.read_only_reason is not None)
        if keep_position:
            self.editor.gotoPos(min(pos, self.editor.textLength()))
            self.editor.setFirstVisibleLine(line)
        self.disk = DiskState(st.st_mtime_ns, st.st_size, _digest(data))
        self.conflict = self.deleted_on_disk = False
        if self.read_only_reason:
            self.banner.show_message(self.read_only_reason, "warning")
        else:
            self.banner.clear()
        self.titleChanged.emit()

    # ----- state ---------------------------------------------------------------------------
    @property
    def title(self) -> str:
        return self.path.name if self.path else f"Untitled-{self.untitled_index}"

    @property
    def backup_key(self) -> str:
        if self.path is None:
            return f"untitled-{self.untitled_index}"
        return BackupStore.key_for_path(self.path)

    def is_dirty(self) -> bool:
        return bool(self.editor.modify())

    def apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        self.editor.font_family = settings.font_family
        self.editor.font_size = settings.font_size
        self.editor.apply_settings(tab_size=settings.tab_size,
                                   insert_spaces=settings.insert_spaces,
                                   word_wrap=settings.word_wrap,
                                   render_whitespace=settings.render_whitespace,
                                   rulers=settings.rulers)

    def _on_save_point(self, dirty: bool) -> None:
        self.dirtyChanged.emit(bool(dirty))
        self.titleChanged.emit()
        if not dirty:
            self._backup_timer.stop()
            self._remove_backup()

    def _on_modified(self, flags: int, *_args: object) -> None:
        if int(flags) & 0x3 and self._backups is not None:  # SC_MOD_INSERTTEXT | DELETETEXT
            self._backup_timer.start(self.settings.hot_exit_delay_ms)

    # ----- hot exit --------------------------------------------------------------------------
    def make_backup(self) -> Backup:
        return Backup(
            key=self.backup_key,
            path=str(self.path) if self.path else None,
            text=self.editor.text(),
            encoding=self.encoding,
            eol=self.eol,
            disk_mtime_ns=self.disk.mtime_ns if self.disk else None,
            disk_size=self.disk.size if self.disk else None,
            saved_at=time.time(),
        )

    def backup_now(self, wait: bool = False) -> None:
        """Write the unsaved text to the backup store, on the backup thread."""
        if self._backups is None or self._executor is None:
            return
        if not self.is_dirty():
            self._remove_backup()
            return
        future = self._executor.submit(self._backups.write, self.make_backup())
        if wait:
            future.result()

    def detach_backups(self) -> None:
        """Stop backing up (the window is closing and has flushed the backups)."""
        self._backup_timer.stop()
        self._backups = None
        self._executor = None

    def _remove_backup(self) -> None:
        if self._backups is not None and self._executor is not None:
            self._executor.submit(self._backups.remove, self.backup_key)

    def discard_backup(self) -> None:
        self._backup_timer.stop()
        self._remove_backup()

    def restore_backup(self, backup: Backup) -> None:
        """Put a backed-up unsaved text into this document; undo returns to the disk text."""
        self.editor.set_text(backup.text, keep_undo=self.path is not None)
        if self.path is None:
            self.encoding, self.eol = backup.encoding, backup.eol
            self.editor.set_eol(backup.eol)
        changed = self.disk is not None and backup.disk_mtime_ns is not None and (
            (backup.disk_mtime_ns, backup.disk_size) != (self.disk.mtime_ns, self.disk.size))
        if changed:
            self.conflict = True
            self.banner.show_message(
                "Restored your unsaved changes. The file also changed on disk since then: "
                "saving will ask before overwriting it.", "warning",
                (("Compare: reload from disk", self.reload_from_disk),
                 ("Keep my changes", self.keep_mine)))
        else:
            self.banner.show_message("Restored unsaved changes from the last session.", "info")
        self.titleChanged.emit()

    # ----- saving ----------------------------------------------------------------------------
    def _prepare_text(self) -> str:
        text = self.editor.text()
        eol = self.eol
        if self.settings.trim_trailing_whitespace:
            lines = text.split(eol)
            trimmed = [ln.rstrip(" \t") for ln in lines]
            if trimmed != lines:
                text = eol.join(trimmed)
        if self.settings.insert_final_newline and text and not text.endswith(("\n", "\r")):
            text += eol
        if text != self.editor.text():
            line, col = self.editor.caret_line_col()
            self.editor.set_text(text, keep_undo=True)
            self.editor.go_to_line(line, col)
        return text

    def save(self, *, overwrite: bool = False) -> bool:
        """Save to ``self.path``. Returns False (with a banner) when it could not or should not.

        Without ``overwrite``, a file changed on disk since it was read is not overwritten: the
        banner offers to overwrite or reload instead.
        """
        if self.path is None:
            raise ValueError("an untitled document needs save_as")
        if self.read_only_reason:
            self.banner.show_message(self.read_only_reason, "warning")
            return False
        if not overwrite and self._disk_changed_since_read():
            self.conflict = True
            self.banner.show_message(
                f"{self.path.name} changed on disk since it was opened. Saving would "
                "overwrite those changes.", "warning",
                (("Overwrite", lambda: self.save(overwrite=True)),
                 ("Reload from disk (lose my changes)", self.reload_from_disk)))
            return False
        try:
            data = encode_text(self._prepare_text(), self.encoding)
            atomic_write(self.path, data)
            st = os.stat(self.path)
        except (OSError, ValueError) as exc:
            self.banner.show_message(f"Could not save {self.path}: {exc}", "error")
            return False
        self.disk = DiskState(st.st_mtime_ns, st.st_size, _digest(data))
        self.conflict = self.deleted_on_disk = False
        self.editor.setSavePoint()
        self.banner.clear()
        self.saved.emit(str(self.path))
        return True

    def save_as(self, path: str | os.PathLike[str]) -> bool:
        old_key = self.backup_key
        self.path = Path(path).resolve()
        self.disk = None
        self.read_only_reason = None
        language = language_for_path(self.path, self.editor.line_text(0))
        if language is not self.editor.language:
            self.editor.set_language(language)
        ok = self.save(overwrite=True)
        if ok and self._backups is not None and self._executor is not None:
            self._executor.submit(self._backups.remove, old_key)
        self.titleChanged.emit()
        return ok

    def _disk_changed_since_read(self) -> bool:
        if self.disk is None or self.path is None:
            return False
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False  # deleted: saving recreates it
        if (st.st_mtime_ns, st.st_size) == (self.disk.mtime_ns, self.disk.size):
            return False
        return _digest(self._read_raw()[0]) != self.disk.digest

    # ----- changes on disk ---------------------------------------------------------------
    def check_disk(self) -> str:
        """Look at the file on disk; returns what happened: "same", "reloaded", "conflict",
        "deleted" or "error"."""
        if self.path is None or self.disk is None:
            return "same"
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if not self.deleted_on_disk:
                self.deleted_on_disk = True
                self.banner.show_message(
                    f"{self.path.name} was deleted on disk. Your text is kept; save to "
                    "write it again.", "warning")
            return "deleted"
        except OSError:
            return "error"
        if (st.st_mtime_ns, st.st_size) == (self.disk.mtime_ns, self.disk.size) and not (
                self.deleted_on_disk):
            return "same"
        try:
            decoded, data, st = self._read_disk()
        except OSError:
            return "error"
        if _digest(data) == self.disk.digest:
            self.disk = DiskState(st.st_mtime_ns, st.st_size, self.disk.digest)
            if self.deleted_on_disk:
                self.deleted_on_disk = False
                self.banner.clear()
            return "same"
        if not self.is_dirty():
            self._apply_decoded(decoded, data, st, keep_position=True)
            return "reloaded"
        self.conflict = True
        self.banner.show_message(
            f"{self.path.name} changed on disk and you have unsaved changes.", "warning",
            (("Reload from disk (lose my changes)", self.reload_from_disk),
             ("Keep my changes", self.keep_mine)))
        return "conflict"

    def reload_from_disk(self) -> None:
        try:
            decoded, data, st = self._read_disk()
        except OSError as exc:
            self.banner.show_message(f"Could not reload: {exc}", "error")
            return
        self._apply_decoded(decoded, data, st, keep_position=True)
        self.discard_backup()

    def keep_mine(self) -> None:
        """Keep the buffer; the next save overwrites the file on disk (the user chose so)."""
        if self.path is None:
            return
        try:
            data, st = self._read_raw()
        except OSError:
            self.banner.clear()
            return
        self.disk = DiskState(st.st_mtime_ns, st.st_size, _digest(data))
        self.conflict = False
        self.banner.clear()
