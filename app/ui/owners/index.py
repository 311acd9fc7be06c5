"""The index controller: the open folder's codebase index (``CodebaseIndex``), started when it
can run (a folder, ``index.enabled``, a connected service) and stopped when it cannot; its
status-bar button (progress; a click cancels or syncs); the folders it watches for added,
removed or renamed files; its palette commands."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, Signal
from PySide6.QtWidgets import QApplication, QInputDialog, QLineEdit, QToolButton, QWidget

from forecode_core.states import IndexState
from forecode_core.store.settings import Settings

from ..codebase_index import CodebaseIndex, IndexStatus
from .commands import Command
from .workspace import Workspace

__all__ = ["MAX_WATCHED_FOLDERS", "IndexController"]

MAX_WATCHED_FOLDERS = 2000  # very large trees rely on saves and Sync Now


class IndexController(QObject):
    """``access``: the connected service's ``(target, token)`` or None (the cloud
    controller's ``index_access``); ``dialogs`` parents the key dialog."""

    index_changed = Signal(object)  # the CodebaseIndex now (a CodebaseSearch), or None
    message = Signal(str, int)

    def __init__(
        self,
        settings: Callable[[], Settings],
        workspace: Workspace,
        access: Callable[[], tuple[str, str] | None],
        dialogs: QWidget,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._workspace = workspace
        self._access = access
        self._dialogs = dialogs
        self.index: CodebaseIndex | None = None
        self.watcher = QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(self._on_dir_changed)
        self.button = QToolButton()  # the status bar's slot
        self.button.setAutoRaise(True)
        self.button.clicked.connect(self._on_clicked)
        self.button.hide()
        workspace.scanned.connect(self._watch_folders)

    def commands(self) -> list[Command]:
        return [
            Command("index.syncNow", "Codebase Index: Sync Now", "", self.sync_now),
            Command("index.cancel", "Codebase Index: Cancel", "", self.cancel),
            Command("index.copyKey", "Codebase Index: Copy Workspace Key", "", self.copy_key),
            Command(
                "index.importKey", "Codebase Index: Import Workspace Key...", "", self.import_key
            ),
        ]

    # ----- life cycle --------------------------------------------------------------------------
    def update(self) -> None:
        """Start the folder's index when it can run, stop it when it cannot or the folder
        changed; returns at once."""
        root = self._workspace.root
        access = self._access()
        settings = self._settings()
        wanted = root is not None and settings.index_enabled and access is not None
        index = self.index
        if index is not None and (not wanted or index.folder != root):
            self.stop()
            index = None
        if not wanted or index is not None:
            return
        assert root is not None and access is not None
        target, token = access
        index = CodebaseIndex(
            root, target, token, debounce_ms=settings.index_debounce_ms, parent=self
        )
        # an index being replaced may still report while it winds down: only the current one
        # speaks in the status bar
        index.status_changed.connect(
            lambda status: self._on_status(status) if index is self.index else None
        )
        index.message.connect(lambda text: self.message.emit(text, 10000))
        index.key_copied.connect(self._on_key_copied)
        self.index = index
        self.index_changed.emit(index)
        self._on_status(index.status)
        self._watch_folders()
        index.start()

    def stop(self, timeout: float = 0.0) -> None:
        """Stop the index: cancel, close its channel; its thread ends by itself, or is joined
        for up to ``timeout`` seconds (the window's close waits, so that the embedding process
        is gone when the editor exits)."""
        index, self.index = self.index, None
        self.index_changed.emit(None)
        if index is not None:
            index.close(timeout)
        folders = self.watcher.directories()
        if folders:
            self.watcher.removePaths(folders)
        self.button.hide()

    # ----- changes -----------------------------------------------------------------------------
    def _watch_folders(self) -> None:
        """Watch the folders that hold the scanned files (new, deleted or renamed files;
        saves by rename)."""
        root = self._workspace.root
        if self.index is None or root is None:
            return
        folders = {str(root)}
        for rel in self._workspace.files:
            parent = os.path.dirname(rel)
            while parent and len(folders) < MAX_WATCHED_FOLDERS:
                folders.add(str(root / parent))
                parent = os.path.dirname(parent)
        new = sorted(folders - set(self.watcher.directories()))
        if new:
            self.watcher.addPaths(new)

    def _on_dir_changed(self, _path: str) -> None:
        if self.index is not None:
            self.index.notify_changed()

    def file_changed(self, path: str) -> None:
        """A file was saved or changed on disk."""
        index = self.index
        if index is not None and Path(path).resolve().is_relative_to(index.folder):
            index.notify_changed(path)

    # ----- the status bar and the commands -----------------------------------------------------
    def _on_status(self, status: object) -> None:
        assert isinstance(status, IndexStatus)
        self.button.setText(status.text)
        self.button.setToolTip(status.detail)
        self.button.setVisible(status.state != IndexState.STOPPED)

    def _on_clicked(self) -> None:
        index = self.index
        if index is None:
            return
        if index.status.state == IndexState.INDEXING:
            index.cancel()
        else:
            index.sync_now()

    def sync_now(self) -> None:
        if self.index is None:
            self.message.emit(self.why_not(), 8000)
            return
        self.index.sync_now()

    def cancel(self) -> None:
        if self.index is not None:
            self.index.cancel()

    def copy_key(self) -> None:
        if self.index is None:
            self.message.emit(self.why_not(), 8000)
            return
        self.index.copy_key()

    def _on_key_copied(self, text: str) -> None:
        QApplication.clipboard().setText(text)
        self.message.emit(
            "The workspace index key is on the clipboard: give it only to "
            "teammates who may read this code.",
            10000,
        )

    def import_key(self) -> None:
        """Ask for a teammate's workspace key (a password field); the index starts over with
        it."""
        if self.index is None:
            self.message.emit(self.why_not(), 8000)
            return
        index = self.index
        dialog = QInputDialog(self._dialogs)
        dialog.setWindowTitle("Codebase Index: Import Workspace Key")
        dialog.setLabelText(
            f"Workspace key for {index.folder.name} (from a teammate's “Copy Workspace Key”):"
        )
        dialog.setInputMode(QInputDialog.InputMode.TextInput)
        dialog.setTextEchoMode(QLineEdit.EchoMode.Password)
        dialog.textValueSelected.connect(index.import_key)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    def why_not(self) -> str:
        if self._workspace.root is None:
            return "Open a folder first: the codebase index covers the open folder."
        if not self._settings().index_enabled:
            return "The codebase index is off (setting index.enabled)."
        return "The codebase index waits for the service (see the chat status)."
