"""The documents: the tab widget and its ``Document`` tabs; open, save, close; changes on disk
(a file watcher); hot exit (a backup store per folder, written on one serial thread, and the
open tabs stored a second after they change)."""

from __future__ import annotations

import contextlib
import functools
import os
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QTabWidget, QWidget

from app.services.saver import saver
from app.services.threads import SerialExecutor
from forecode_core.states import DiskCheck, SaveChoice
from forecode_core.store.hotexit import BackupStore
from forecode_core.store.settings import Settings

from ..document import Document, FileTooLargeError
from ..session import capture as capture_session
from ..session import restore_tabs
from ..tab_close import TabCloseButton, close_side
from ..theme import theme_named
from .commands import Command
from .workspace import Workspace

__all__ = ["Documents"]


class Documents(QObject):
    """``settings``: the settings now; ``workspace`` names the documents' paths; ``dialogs``
    parents the save and open dialogs."""

    added = Signal(object)  # a new Document, before its tab is shown
    closing = Signal(object)  # a Document whose tab is about to close
    current_changed = Signal(object)  # the current Document, or None
    current_shown_changed = Signal()  # the current tab's title or dirty mark changed
    renamed = Signal(object)  # a Document saved under a new path
    saved = Signal(str)  # a file was saved (its path)
    disk_changed = Signal(str)  # a watched file changed on disk (its path)
    message = Signal(str, int)

    def __init__(
        self,
        settings: Callable[[], Settings],
        workspace: Workspace,
        dialogs: QWidget,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._workspace = workspace
        self._dialogs = dialogs
        self.backups: BackupStore | None = None
        self._closing_after_save: weakref.WeakSet[Document] = weakref.WeakSet()  # close when saved
        self._untitled_counter = 0
        self._executor = SerialExecutor("forecode-backup")
        self.tabs = QTabWidget()
        # each tab gets a ``TabCloseButton`` (close, and the modified mark) instead of Qt's
        self.tabs.setTabsClosable(False)
        self.tabs.setMovable(True)
        self.tabs.setDocumentMode(True)
        self.tabs.currentChanged.connect(self._on_current_changed)
        self.tabs.tabBar().tabBarClicked.connect(self._on_tab_clicked)
        self._focus_new_tab = False
        self.watcher = QFileSystemWatcher(self)
        self.watcher.fileChanged.connect(self._on_file_changed)
        # The open tabs are stored a second after they change, so a crash reopens them too.
        self._session_timer = QTimer(self)
        self._session_timer.setSingleShot(True)
        self._session_timer.setInterval(1000)
        self._session_timer.timeout.connect(self.save_session)
        self.tabs.tabBar().tabMoved.connect(lambda _a, _b: self._session_timer.start())

    def commands(self) -> list[Command]:
        return [
            Command("file.new", "File: New Untitled File", "Ctrl+N", self.new_untitled),
            Command("file.open", "File: Open File...", "Ctrl+O", self.open_file_dialog),
            Command("file.save", "File: Save", "Ctrl+S", self.save_current),
            Command("file.saveAs", "File: Save As...", "Ctrl+Shift+S", self.save_current_as),
            Command("file.saveAll", "File: Save All", "Ctrl+K, S", self.save_all),
            Command(
                "file.close",
                "View: Close Editor",
                "Ctrl+W or Ctrl+F4",
                lambda: self.close_tab(self.tabs.currentIndex()),
            ),
            Command("file.revert", "File: Revert File", "", self.revert_current),
            Command(
                "view.nextTab",
                "View: Next Editor",
                "Ctrl+Tab or Ctrl+PgDown",
                lambda: self.cycle(1),
            ),
            Command(
                "view.prevTab",
                "View: Previous Editor",
                "Ctrl+Shift+Tab or Ctrl+PgUp",
                lambda: self.cycle(-1),
            ),
        ]

    # ----- the tabs ----------------------------------------------------------------------------
    def document_at(self, index: int) -> Document:
        widget = self.tabs.widget(index)
        assert isinstance(widget, Document)
        return widget

    def documents(self) -> list[Document]:
        return [self.document_at(i) for i in range(self.tabs.count())]

    def current_document(self) -> Document | None:
        widget = self.tabs.currentWidget()
        return widget if isinstance(widget, Document) else None

    def find(self, path: Path) -> Document | None:
        """The open document of ``path`` (resolved), if any."""
        return next((d for d in self.documents() if d.path == path), None)

    def activate(self, doc: Document) -> None:
        """Make ``doc``'s tab the current one (the focus stays where it is, or moves to its
        editor when it was in the tab that hides)."""
        index = self.tabs.indexOf(doc)
        current = self.tabs.currentWidget()
        focused = QApplication.focusWidget()
        if index < 0 or index == self.tabs.currentIndex():
            return
        if current is not None and focused is not None and current.isAncestorOf(focused):
            self.show_tab(index)
        else:
            self.tabs.setCurrentIndex(index)

    def workspace_path(self, doc: Document) -> str:
        """The document's path relative to the workspace (its name outside it)."""
        return self._workspace.relative(doc.path, doc.title)

    def cycle(self, step: int) -> None:
        if self.tabs.count():
            self.show_tab((self.tabs.currentIndex() + step) % self.tabs.count())

    def show_tab(self, index: int) -> None:
        """Make tab ``index`` current with its editor focused.

        The focus leaves the old tab before it hides. Else Qt hands the focus of a hidden
        widget to the next one in the focus chain, the explorer, whose focus-in and focus-out
        repainted it (~1.2 ms, and its rows' Python delegate) in the new tab's first frame."""
        self._leave_focus(index)
        self.tabs.setCurrentIndex(index)
        self.document_at(index).editor.focus()

    def _leave_focus(self, index: int) -> None:
        current = self.tabs.currentWidget()
        focused = QApplication.focusWidget()
        if (
            index != self.tabs.currentIndex()
            and current is not None
            and focused is not None
            and current.isAncestorOf(focused)
        ):
            focused.clearFocus()

    def _on_tab_clicked(self, index: int) -> None:
        """A click on another tab (before it switches): as ``show_tab``."""
        if index >= 0 and index != self.tabs.currentIndex():
            self._leave_focus(index)
            self._focus_new_tab = True

    def _session_soon(self, *_args: object) -> None:
        """Store the tabs within a second; a timer already running is not pushed back, so
        a steady stream of caret moves still stores once a second."""
        if not self._session_timer.isActive():
            self._session_timer.start()

    def _on_current_changed(self, _index: int) -> None:
        doc = self.current_document()
        if self._focus_new_tab and doc is not None:
            doc.editor.focus()
        self._focus_new_tab = False
        self.current_changed.emit(doc)
        self._session_timer.start()

    # ----- opening -----------------------------------------------------------------------------
    def open_file(self, path: str | os.PathLike[str]) -> Document | None:
        target = Path(path).resolve()
        for index, doc in enumerate(self.documents()):
            if doc.path == target:
                self.show_tab(index)
                return doc
        try:
            doc = Document.open(target, self._settings(), self.backups, self._executor)
        except FileTooLargeError as exc:  # the message names the file, its size and the limit
            self.message.emit(str(exc.strerror), 15000)
            return None
        except OSError as exc:
            self.message.emit(f"Cannot open {target}: {exc.strerror or exc}", 10000)
            return None
        self._add(doc)
        self.watcher.addPath(str(target))
        return doc

    def new_untitled(self) -> Document:
        self._untitled_counter += 1
        doc = Document.untitled(
            self._untitled_counter, self._settings(), self.backups, self._executor
        )
        self._add(doc)
        return doc

    def open_file_dialog(self) -> None:
        start = str(self._workspace.root or Path.home())
        path, _ = QFileDialog.getOpenFileName(self._dialogs, "Open File", start)
        if path:
            self.open_file(path)

    def _add(self, doc: Document) -> None:
        settings = self._settings()
        doc.editor.apply_theme(theme_named(settings.theme))
        doc.editor.auto_close.configure(
            brackets=settings.auto_closing_brackets, quotes=settings.auto_closing_quotes
        )
        doc.titleChanged.connect(lambda d=doc: self._refresh_tab(d))
        doc.saved.connect(self._on_saved)
        doc.closeRequested.connect(lambda d=doc: self.close_tab(self.tabs.indexOf(d)))
        # The caret is stored too (at most once a second), so a killed editor reopens there.
        doc.editor.caretMoved.connect(self._session_soon)
        self.added.emit(doc)
        index = self.tabs.addTab(doc, doc.title)
        bar = self.tabs.tabBar()
        close = TabCloseButton(functools.partial(self._close_document, doc), bar)
        bar.setTabButton(index, close_side(bar), close)
        self._refresh_tab(doc)
        self.show_tab(index)

    def _close_document(self, doc: Document) -> bool:
        return self.close_tab(self.tabs.indexOf(doc))

    def close_button(self, doc: Document) -> TabCloseButton | None:
        """``doc``'s tab's close button, which is also its modified mark."""
        bar = self.tabs.tabBar()
        index = self.tabs.indexOf(doc)
        button = bar.tabButton(index, close_side(bar)) if index >= 0 else None
        return button if isinstance(button, TabCloseButton) else None

    def _refresh_tab(self, doc: Document) -> None:
        """The tab's title, tooltip and modified mark as ``doc`` has them; each set only when
        it changed (a tab's new text re-lays and repaints the whole tab widget:
        ``app.ui.tab_close``)."""
        index = self.tabs.indexOf(doc)
        if index < 0:
            return
        if self.tabs.tabText(index) != doc.title:
            self.tabs.setTabText(index, doc.title)
        tip = str(doc.path) if doc.path else doc.title
        if self.tabs.tabToolTip(index) != tip:
            self.tabs.setTabToolTip(index, tip)
        close = self.close_button(doc)
        if close is not None:
            close.set_modified(doc.is_dirty())
        if doc is self.current_document():
            self.current_shown_changed.emit()

    def apply_settings(self, settings: Settings) -> None:
        theme = theme_named(settings.theme)
        for doc in self.documents():
            doc.apply_settings(settings)
            doc.editor.apply_theme(theme)
            doc.editor.auto_close.configure(
                brackets=settings.auto_closing_brackets, quotes=settings.auto_closing_quotes
            )

    # ----- closing -----------------------------------------------------------------------------
    def close_tab(self, index: int) -> bool:
        """Close a tab; a modified one asks Save / Don't Save / Cancel. True when closed now.

        Save starts the save and returns False: the tab closes when the save's result says the
        bytes are on disk (the UI thread never waits for it); a failed save, or text typed
        while it ran, keeps the tab open with its buffer."""
        if index < 0 or index >= self.tabs.count():
            return False
        doc = self.document_at(index)
        if doc in self._closing_after_save:
            return False  # its save is running; it closes when that ends
        if doc.is_dirty():
            answer = self.ask_save(doc)
            if answer == SaveChoice.CANCEL:
                return False
            if answer == SaveChoice.SAVE:
                if self.save(doc, on_done=functools.partial(self._close_saved, doc)):
                    self._closing_after_save.add(doc)
                return False
        self._remove_tab(index, doc)
        return True

    def _close_saved(self, doc: Document, ok: bool) -> None:
        self._closing_after_save.discard(doc)
        index = self.tabs.indexOf(doc)
        if not ok or index < 0:
            return
        if doc.is_dirty():  # typed while it saved: nothing is lost, the tab stays
            self.message.emit(f"{doc.title} changed while it was saved: not closed.", 5000)
            return
        self._remove_tab(index, doc)

    def _remove_tab(self, index: int, doc: Document) -> None:
        # Only once the tab really goes (a Cancel, or a save that failed, keeps it open and
        # every owner's state with it: its review, its language server's copy, its buffer in
        # the shadow). A review in its pane closes; the buffer stays as it was.
        self.closing.emit(doc)
        doc.discard_backup()
        if doc.path is not None:
            self.watcher.removePath(str(doc.path))
        self.tabs.removeTab(index)
        doc.deleteLater()

    def ask_save(self, doc: Document) -> SaveChoice:
        """Save, discard or cancel, for closing a modified document."""
        box = QMessageBox(self._dialogs)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setText(f"Do you want to save the changes you made to {doc.title}?")
        box.setInformativeText("Your changes will be lost if you don't save them.")
        save = box.addButton("Save", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Don't Save", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        clicked = box.clickedButton()
        if clicked is save:
            return SaveChoice.SAVE
        return SaveChoice.DISCARD if clicked is discard else SaveChoice.CANCEL

    # ----- saving ------------------------------------------------------------------------------
    # A save returns at once (``Document.save``: the writer thread does the disk work); True
    # means it started, and ``on_done(ok)`` comes back on the UI thread with its result.
    def save(self, doc: Document, on_done: Callable[[bool], object] | None = None) -> bool:
        if doc.path is None:
            return self.save_as(doc, on_done)
        return doc.save(on_done=on_done)

    def save_as(self, doc: Document, on_done: Callable[[bool], object] | None = None) -> bool:
        start = str(doc.path or (self._workspace.root or Path.home()) / doc.title)
        path, _ = QFileDialog.getSaveFileName(self._dialogs, "Save As", start)
        if not path:
            return False

        def done(ok: bool) -> None:
            if ok:
                self.watcher.addPath(path)
                self.renamed.emit(doc)
            if on_done is not None:
                on_done(ok)

        return doc.save_as(path, done)

    def save_current(self) -> None:
        doc = self.current_document()
        if doc is not None:
            self.save(doc)

    def save_current_as(self) -> None:
        doc = self.current_document()
        if doc is not None:
            self.save_as(doc)

    def save_all(self) -> None:
        for doc in self.documents():
            if doc.is_dirty() and doc.path is not None:
                doc.save()

    def revert_current(self) -> None:
        doc = self.current_document()
        if doc is not None and doc.path is not None:
            doc.reload_from_disk()

    def _on_saved(self, path: str) -> None:
        self.watcher.addPath(path)  # an atomic rename replaces the watched inode
        self.saved.emit(path)

    # ----- changes on disk ---------------------------------------------------------------------
    def _on_file_changed(self, path: str) -> None:
        # Editors and our own saves replace files by rename; watch the new file again.
        QTimer.singleShot(50, self, lambda: self._recheck(path))

    def _recheck(self, path: str) -> None:
        if os.path.exists(path) and path not in self.watcher.files():
            self.watcher.addPath(path)
        target = Path(path)
        mine = [doc for doc in self.documents() if doc.path == target]
        # Our own save (in flight, or the file still as it wrote it) is not a change on disk:
        # its listeners heard ``saved``.
        if not any(doc.disk_is_own_write() for doc in mine):
            self.disk_changed.emit(path)
        for doc in mine:
            outcome = doc.check_disk()
            if outcome == DiskCheck.RELOADED:
                self.message.emit(f"{doc.title} changed on disk and was reloaded.", 5000)

    def check_disk(self) -> None:
        """Every tab against its file (the window became active)."""
        for doc in self.documents():
            doc.check_disk()

    # ----- hot exit ----------------------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the serial backup thread (file I/O off the UI thread)."""
        self._executor.submit(fn, *args)

    def flush(self) -> None:
        """Wait for the backup thread's queued work."""
        self._executor.submit(lambda: None).result()

    def drop_backup(self, key: str) -> None:
        if self.backups is not None:
            self.submit(self.backups.remove, key)

    def use_folder(self, root: Path) -> None:
        """Back up into ``root``'s store from now on (the open tabs too)."""
        self.backups = BackupStore.for_workspace(root)
        for doc in self.documents():
            doc.use_backups(self.backups)

    def restore_backups(self) -> None:
        """The unsaved texts and the open tabs of last time."""
        assert self.backups is not None
        session, session_problems = self.backups.load_session()
        backups, problems = self.backups.load_all()
        problems += session_problems
        for problem in problems:
            self.message.emit(f"Hot exit: {problem}", 10000)
        for backup in backups:
            if backup.path is not None:
                doc = self.open_file(backup.path) if os.path.exists(backup.path) else None
                if doc is None:
                    doc = self.new_untitled()
                    doc.path = Path(backup.path)
                    doc.banner.show_message(
                        f"{backup.path} no longer exists; your unsaved text was restored.",
                        "warning",
                    )
            else:
                doc = self.new_untitled()
            doc.restore_backup(backup)
            if backup.path is None or doc.path is None or doc.backup_key != backup.key:
                self.submit(self.backups.remove, backup.key)
            doc.backup_now()
        restore_tabs(self, session)  # every tab of last time, in order, caret and scroll

    def save_session(self) -> None:
        if self.backups is not None:
            # closing (the executor is shut down): shutdown stores the tabs itself
            with contextlib.suppress(RuntimeError):
                self._executor.submit(self.backups.write_session, capture_session(self))

    def finish_saves(self, timeout: float = 5.0) -> bool:
        """Quitting: wait (at most ``timeout`` seconds in all) for the saves in flight and
        apply their results (their ``saved`` listeners still hear them), so a save asked just
        before quitting is on disk; one that does not end in time leaves its buffer dirty,
        and hot exit backs it up. True when none is left."""
        deadline = time.monotonic() + timeout
        done = all([d.wait_saves(max(0.0, deadline - time.monotonic())) for d in self.documents()])
        return saver().wait(max(0.0, deadline - time.monotonic())) and done

    def shutdown(self) -> None:
        """Hot exit: the dirty buffers backed up, the open tabs stored; nothing touches the
        backups after this."""
        self.finish_saves()
        for doc in self.documents():
            doc.backup_now()  # writes the dirty ones, drops stale backups of the clean ones
        self._session_timer.stop()
        self._executor.shutdown(wait=True)
        if self.backups is not None:  # every open tab, its caret and scroll, for next time
            try:
                self.backups.write_session(capture_session(self))
            except OSError as exc:
                self.message.emit(f"Hot exit: the open tabs could not be stored: {exc}", 5000)
        for doc in self.documents():
            doc.detach_backups()
