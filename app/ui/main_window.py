"""The main window: explorer, tabs of documents, find bar, pickers, the chat panel and the
status bar.

Every command is one row in ``_command_table`` (id, title, shortcut, handler): the menu-less
window binds the shortcuts from it and the command palette lists it.

The chat panel (Ctrl+L) sits right of the editor; its backend is the window's
``CloudConnection`` (a service on loopback started with the window, or ``cloud.url``), or the
``chat_backend`` given to the constructor (the seam for tests and the screenshot).

Apply: a chat code block's Apply button and inline edit (Ctrl+K on a selection) start an
``ApplyReview`` in the target document's pane (the buffer hidden under it, untouched until
accepted). Applies go to ``apply_backend`` (the seam); by default a ``PipelineApplyBackend``:
the deterministic path, then the model path through the window's service (``ServiceApply``).

The codebase index: when a folder is open, ``index.enabled`` is on and the window's
``CloudConnection`` has a service, a ``CodebaseIndex`` syncs the folder in the background
(``window.codebase_index``, a ``CodebaseSearch`` or None). It re-syncs after saves in the
editor, disk changes of open files, and changes the directory watcher sees (files added,
removed or replaced by rename in the folders the scan found); its status bar slot shows the
progress and cancels on click.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from PySide6.QtCore import QEvent, QFileSystemWatcher, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from forecode_core.apply.block import ApplyInput
from forecode_core.completion.prompt import Snippet
from forecode_core.store.hotexit import BackupStore
from forecode_core.store.settings import (
    Settings,
    default_settings_text,
    load_settings,
    settings_path,
)
from forecode_core.text.textfile import EOL_NAMES, encoding_label
from forecode_core.workspace.fuzzy import rank_paths
from forecode_core.workspace.recent import RecentFolders
from forecode_core.workspace.gitignore import IgnoreRules
from forecode_core.workspace.walk import scan_files
from local_models.calibrate import Choice as ModelChoice

from .apply_backend import ApplyBackend, PipelineApplyBackend, ServiceApply
from .apply_review import ApplyReview
from .chat_host import WindowChatHost
from .chat_panel import ChatPanel
from .cloud import ChatBackend, CloudConnection
from .codebase_index import CodebaseIndex, IndexStatus
from .document import Document, FileTooLargeError
from .encoding_picker import ClickableLabel, EncodingCommands
from .explorer_ops import ExplorerOps
from .file_tree import FileTree
from .find_bar import FindBar
from .find_in_files import SearchDock
from .git_decorations import DecoratedFileSystemModel, GitController
from .inline_completion import CompletionEngine, InlineCompletion
from .inline_edit import InlineEditPrompt
from .not_yet import install_not_yet_keys
from .picker import Picker, PickerItem
from .retrieved_context import RetrievedContext
from .session import capture as capture_session
from .session import restore_tabs
from .tasks import BackgroundTask
from .theme import apply_app_palette, theme_named
from .welcome import WelcomePage

__all__ = ["CHAT_STATES", "Command", "MainWindow", "token_name"]

# The chat slot of the status bar for each CloudConnection state.
CHAT_STATES = {
    "starting": "◌ Chat starting…",
    "cloud": "● Chat",
    "local": "◐ Chat: local model",
    "offline": "○ Chat offline",
}


def token_name(url: str) -> str:
    """The ``TokenStore`` name of the token for the service at ``url`` (one per address, so a
    token is never sent to another service)."""
    return f"cloud:{url.strip()}"


@dataclass(frozen=True)
class Command:
    id: str
    title: str
    shortcut: str
    handler: Callable[[], object]


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings_file: Path | None = None,
        *,
        engine: CompletionEngine | None = None,
        chat_backend: ChatBackend | None = None,
        apply_backend: ApplyBackend | None = None,
    ) -> None:
        """``engine``, ``chat_backend`` and ``apply_backend`` are the seams for tests; by
        default the local engine starts when the ``completion.enabled`` setting is on, the chat
        goes to the window's ``CloudConnection``, and applies run the deterministic path, then
        the service's model path."""
        super().__init__()
        self.apply_backend: ApplyBackend = apply_backend or PipelineApplyBackend(
            ServiceApply(self._apply_service)
        )
        self.reviews: dict[Document, ApplyReview] = {}
        self.inline_prompt: InlineEditPrompt | None = None
        self.search_dock: SearchDock | None = None  # Find in Files, made on first use
        self.engine: CompletionEngine | None = None
        self.cloud: CloudConnection | None = None
        self.codebase_index: CodebaseIndex | None = None
        # Code the index finds near the caret, for the completion context (never waited on).
        self.retrieved = RetrievedContext(parent=self)
        self.index_watcher = QFileSystemWatcher(self)
        self.index_watcher.directoryChanged.connect(self._on_index_dir_changed)
        self.token_dialog: QInputDialog | None = None
        self.inline: InlineCompletion | None = None
        self.settings_file = settings_file or settings_path()
        self.settings, self.settings_problems = load_settings(self.settings_file)
        self.root: Path | None = None
        self.rules: IgnoreRules | None = None
        self.backups: BackupStore | None = None
        self.files: list[str] = []
        self.files_complete = False
        self._untitled_counter = 0
        self._backup_executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="forecode-backup"
        )
        self._scan = BackgroundTask(self)
        self._scan.done.connect(self._on_scan_done)
        self._scan.failed.connect(lambda m: self.show_message(f"File scan failed: {m}"))

        self.setWindowTitle("Forecode")
        self.resize(1200, 780)
        self.tree = FileTree()
        # Git colours in the explorer and the changed-lines gutter (git runs on its own thread).
        self.git = GitController(
            lambda: m if isinstance(m := self.tree.fs_model, DecoratedFileSystemModel) else None,
            lambda: theme_named(self.settings.theme),
            lambda t: self.show_message(t, 10000),
            self,
        )
        self.explorer_ops = ExplorerOps(self)  # new, rename, delete, reveal, copy path
        self.tree.fileActivated.connect(self.open_file)
        self.tree.ignoreWarning.connect(lambda text: self.show_message(text, 15000))
        self.tabs = QTabWidget()
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.setDocumentMode(True)
        self.tabs.tabCloseRequested.connect(self.close_tab)
        self.tabs.currentChanged.connect(self._on_current_changed)
        self.find_bar = FindBar(self)
        self.find_bar.hide()
        editor_area = QWidget()
        column = QVBoxLayout(editor_area)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.tabs, 1)
        # No folder and no file open: the welcome page (recent folders, keys) in their place.
        self.recent = RecentFolders()
        self.welcome = WelcomePage()
        self.welcome.openFolderRequested.connect(self.open_folder_dialog)
        self.welcome.openFileRequested.connect(self.open_file_dialog)
        self.welcome.newFileRequested.connect(self.new_untitled)
        self.welcome.recentRequested.connect(self.open_recent_folder)
        self.welcome.set_recent(self.recent.load())
        column.addWidget(self.welcome, 1)
        # The open tabs are stored a second after they change, so a crash reopens them too.
        self._session_timer = QTimer(self)
        self._session_timer.setSingleShot(True)
        self._session_timer.setInterval(1000)
        self._session_timer.timeout.connect(self._save_session)
        self.tabs.tabBar().tabMoved.connect(lambda _a, _b: self._session_timer.start())
        column.addWidget(self.find_bar)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(editor_area)
        self.chat_host = WindowChatHost(self)
        self.chat_panel = ChatPanel(self.chat_host)
        self.chat_panel.hide()
        self.chat_panel.apply_requested.connect(self._on_apply_requested)
        self.chat_panel.message.connect(lambda text: self.show_message(text, 10000))
        self.splitter.addWidget(self.chat_panel)
        self.splitter.setCollapsible(2, False)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([260, 940, 0])
        self.setCentralWidget(self.splitter)
        self.picker = Picker(self)
        self.encodings = EncodingCommands(self)

        self.watcher = QFileSystemWatcher(self)
        self.watcher.fileChanged.connect(self._on_file_changed)

        self._build_status_bar()
        self.commands = self._command_table()
        self.actions_by_id: dict[str, QAction] = {}
        for command in self.commands:
            action = QAction(command.title, self)
            if command.shortcut:
                action.setShortcuts([QKeySequence(s) for s in command.shortcut.split(" or ")])
                action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(command.handler)
            self.addAction(action)
            self.actions_by_id[command.id] = action
        # Keys of VS Code features not built yet say so; bound after all wiring, only where
        # no command took the key.
        QTimer.singleShot(
            0, self, lambda: install_not_yet_keys(self, lambda text: self.show_message(text, 8000))
        )
        self._update_welcome()
        self._update_inline_edit_action()
        self.apply_settings(self.settings)
        if self.settings_problems:
            self.show_message("Settings: " + "; ".join(self.settings_problems), 15000)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.applicationStateChanged.connect(self._on_app_state)
        self._model_task = BackgroundTask(self)
        self._model_task.done.connect(self._start_local_engine)
        self._model_task.failed.connect(
            lambda m: self.set_model_state("✕ No model", f"The model could not be prepared: {m}")
        )
        # The completion model, chosen by measurement (local_models.calibrate) off the UI thread.
        from .local_engine import ModelTierTask

        self.model_choice: ModelChoice | None = None  # the last measured pick
        self._engine_state = ("stopped", "")
        self._tier_task = ModelTierTask(self)
        self._tier_task.measuring.connect(
            lambda why: self.set_model_state(
                "◌ Measuring models…",
                f"Measuring each installed model's speed on this machine ({why}): each "
                "is loaded and timed for a second or two, in a separate low-priority process. "
                "Completions start when it is done.",
            )
        )
        self._tier_task.chosen.connect(self._on_model_chosen)
        self._tier_task.failed.connect(
            lambda m: self.set_model_state("✕ No model", f"No completion model: {m}")
        )
        self._token_task = BackgroundTask(self)
        self._token_task.done.connect(self._on_token_stored)
        self._token_task.failed.connect(
            lambda m: self.show_message(f"The token could not be stored: {m}", 15000)
        )
        if engine is not None:
            self.use_engine(engine)
        elif self.settings.completion_enabled:
            self.start_engine()
        self.chat_panel.set_workspace(None)
        if chat_backend is not None:
            self.chat_panel.set_backend(chat_backend)
            self.set_chat_state("● Chat", "A chat backend given to the window")
        else:
            self.start_cloud()

    # ----- commands ------------------------------------------------------------------------
    def _command_table(self) -> list[Command]:
        ed = self.current_editor_call
        return [
            Command("file.new", "File: New Untitled File", "Ctrl+N", self.new_untitled),
            Command("file.open", "File: Open File...", "Ctrl+O", self.open_file_dialog),
            Command(
                "file.openFolder", "File: Open Folder...", "Ctrl+K, Ctrl+O", self.open_folder_dialog
            ),
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
            Command("file.quit", "File: Quit", "Ctrl+Q", self.close),  # hot exit, as a close
            Command(
                "file.openRecent", "File: Open Recent Folder...", "Ctrl+R", self.open_recent_picker
            ),
            Command(
                "file.changeEncoding",
                "File: Change File Encoding",
                "",
                lambda: self.encodings.change_encoding(),
            ),
            Command(
                "file.reopenWithEncoding",
                "File: Reopen with Encoding",
                "",
                lambda: self.encodings.reopen(),
            ),
            Command(
                "file.saveWithEncoding",
                "File: Save with Encoding",
                "",
                lambda: self.encodings.save(),
            ),
            Command(
                "view.nextTab",
                "View: Next Editor",
                "Ctrl+Tab or Ctrl+PgDown",
                lambda: self._cycle_tab(1),
            ),
            Command(
                "view.prevTab",
                "View: Previous Editor",
                "Ctrl+Shift+Tab or Ctrl+PgUp",
                lambda: self._cycle_tab(-1),
            ),
            Command("view.quickOpen", "Go to File...", "Ctrl+P", self.quick_open),
            Command(
                "view.palette", "Show All Commands", "Ctrl+Shift+P or F1", self.command_palette
            ),
            Command("view.gotoLine", "Go to Line...", "Ctrl+G", self.go_to_line),
            Command(
                "view.toggleSidebar",
                "View: Toggle Explorer",
                "Ctrl+B",
                lambda: self.tree.setVisible(not self.tree.isVisible()),
            ),
            Command("view.explorer", "View: Show Explorer", "Ctrl+Shift+E", self._focus_tree),
            Command(
                "search.findInFiles", "Search: Find in Files", "Ctrl+Shift+F", self.find_in_files
            ),
            Command(
                "search.replaceInFiles",
                "Search: Replace in Files",
                "Ctrl+Shift+H",
                lambda: self.find_in_files(replace=True),
            ),
            Command(
                "view.toggleTheme", "Preferences: Toggle Dark/Light Theme", "", self.toggle_theme
            ),
            Command("view.zoomIn", "View: Zoom In", "Ctrl+= or Ctrl++", lambda: self.zoom(1)),
            Command("view.zoomOut", "View: Zoom Out", "Ctrl+-", lambda: self.zoom(-1)),
            Command("view.zoomReset", "View: Reset Zoom", "Ctrl+0", lambda: self.zoom(0)),
            Command(
                "prefs.settings", "Preferences: Open Settings (JSON)", "Ctrl+,", self.open_settings
            ),
            Command("edit.find", "Find", "Ctrl+F", self._open_find),
            Command("edit.replace", "Replace", "Ctrl+H", self._open_replace),
            Command("edit.findNext", "Find Next", "F3", lambda: self._find_step(True)),
            Command("edit.findPrev", "Find Previous", "Shift+F3", lambda: self._find_step(False)),
            Command(
                "edit.comment", "Toggle Line Comment", "Ctrl+/", ed(lambda e: e.toggle_comment())
            ),
            Command(
                "edit.addNext",
                "Add Selection to Next Find Match",
                "Ctrl+D",
                ed(lambda e: e.add_next_occurrence()),
            ),
            Command(
                "edit.selectAll",
                "Select All Occurrences of Find Match",
                "Ctrl+Shift+L",
                ed(
                    lambda e: (
                        e.select_all_occurrences() <= e.SELECT_ALL_LIMIT
                        or self.show_message(
                            f"Selected the first {e.SELECT_ALL_LIMIT:,} "
                            "occurrences (the most at once).",
                            8000,
                        )
                    )
                ),
            ),
            Command("edit.undo", "Undo", "", ed(lambda e: e.undo())),
            Command("edit.redo", "Redo", "Ctrl+Y", ed(lambda e: e.redo())),
            Command("edit.deleteLine", "Delete Line", "", ed(lambda e: e.lineDelete())),
            Command("edit.moveUp", "Move Line Up", "", ed(lambda e: e.moveSelectedLinesUp())),
            Command("edit.moveDown", "Move Line Down", "", ed(lambda e: e.moveSelectedLinesDown())),
            Command("chat.toggle", "Chat: Toggle Chat Panel", "Ctrl+L", self.toggle_chat),
            Command("chat.new", "Chat: New Conversation", "", self.new_chat),
            # Ctrl+K is enabled only while the editor has a selection: without one it stays
            # the prefix of the Ctrl+K chords (Ctrl+K Ctrl+O, Ctrl+K S).
            Command(
                "edit.inlineEdit", "Edit: Inline Edit of the Selection", "Ctrl+K", self.inline_edit
            ),
            Command(
                "chat.applyLast", "Chat: Apply the Last Code Block", "", self.apply_last_code_block
            ),
            Command(
                "apply.acceptAll",
                "Apply: Accept All Changes",
                "",
                lambda: self._review_action("accept_all"),
            ),
            Command(
                "apply.rejectAll",
                "Apply: Reject All Changes",
                "",
                lambda: self._review_action("reject_all"),
            ),
            Command("apply.next", "Apply: Next Change", "", lambda: self._review_action("next")),
            Command(
                "apply.previous",
                "Apply: Previous Change",
                "",
                lambda: self._review_action("previous"),
            ),
            Command("cloud.setToken", "Cloud: Set Service Token", "", self.set_service_token),
            Command("index.syncNow", "Codebase Index: Sync Now", "", self.index_sync_now),
            Command("index.cancel", "Codebase Index: Cancel", "", self.index_cancel),
            Command("index.copyKey", "Codebase Index: Copy Workspace Key", "", self.index_copy_key),
            Command(
                "index.importKey",
                "Codebase Index: Import Workspace Key...",
                "",
                self.index_import_key,
            ),
            Command(
                "completion.recalibrate",
                "Completions: Recalibrate Models",
                "",
                self.recalibrate_models,
            ),
            Command(
                "explorer.newFile",
                "Explorer: New File...",
                "",
                lambda: self.explorer_ops.new_file(),
            ),
            Command(
                "explorer.newFolder",
                "Explorer: New Folder...",
                "",
                lambda: self.explorer_ops.new_folder(),
            ),
            Command(
                "explorer.rename", "Explorer: Rename...", "", lambda: self.explorer_ops.rename()
            ),
            Command("explorer.delete", "Explorer: Delete", "", lambda: self.explorer_ops.delete()),
            Command(
                "file.revealInOS",
                "File: Reveal in File Manager",
                "Ctrl+Alt+R",
                lambda: self.explorer_ops.reveal(),
            ),
            Command(
                "file.copyPath",
                "File: Copy Path of Active File",
                "Ctrl+Alt+C",
                lambda: self.explorer_ops.copy_path(),
            ),
            Command(
                "file.copyRelativePath",
                "File: Copy Relative Path of Active File",
                "Ctrl+Shift+Alt+C",
                lambda: self.explorer_ops.copy_path(relative=True),
            ),
            Command("git.refresh", "Git: Refresh Explorer Colours", "", self.git.refresh_now),
        ]

    def current_editor_call(self, fn: Callable[..., object]) -> Callable[[], None]:
        def run() -> None:
            doc = self.current_document()
            if doc is not None:
                fn(doc.editor)

        return run

    # ----- workspace -----------------------------------------------------------------------
    def open_folder(self, folder: str | os.PathLike[str]) -> None:
        root = Path(folder).resolve()
        self.root = root
        self.rules = IgnoreRules.for_folder(root, self.settings.files_exclude)
        self.tree.set_root(root, self.rules)
        self.git.set_root(root)
        self.setWindowTitle(f"{root.name} — Forecode")
        self.backups = BackupStore.for_workspace(root)
        for index in range(self.tabs.count()):
            doc = self.document_at(index)
            doc._backups = self.backups
        self.rescan_files()
        self._restore_backups()
        self._backup_executor.submit(self.recent.add, root)  # the welcome page's list
        self._update_welcome()
        self.chat_panel.set_workspace(root)
        self.update_codebase_index()

    def rescan_files(self) -> None:
        if self.root is None or self.rules is None:
            return
        root, rules = self.root, self.rules
        self.files_complete = False

        def scan(cancel: threading.Event) -> list[str]:
            return list(scan_files(root, rules, should_stop=cancel.is_set))

        self._scan.start(scan)

    def _on_scan_done(self, files: object) -> None:
        assert isinstance(files, list)
        self.files = files
        self.files_complete = True
        self._watch_index_folders()

    def _restore_backups(self) -> None:
        assert self.backups is not None
        session, session_problems = self.backups.load_session()
        backups, problems = self.backups.load_all()
        problems += session_problems
        for problem in problems:
            self.show_message(f"Hot exit: {problem}", 10000)
        for backup in backups:
            if backup.path is not None:
                doc = self.open_file(backup.path) if os.path.exists(backup.path) else None
                if doc is None:
                    doc = self._add_untitled_document()
                    doc.path = Path(backup.path)
                    doc.banner.show_message(
                        f"{backup.path} no longer exists; your unsaved text was restored.",
                        "warning",
                    )
            else:
                doc = self._add_untitled_document()
            doc.restore_backup(backup)
            if backup.path is None or doc.path is None or doc.backup_key != backup.key:
                self._backup_executor.submit(self.backups.remove, backup.key)
            doc.backup_now()
        restore_tabs(self, session)  # every tab of last time, in order, caret and scroll

    # ----- documents -----------------------------------------------------------------------
    def document_at(self, index: int) -> Document:
        widget = self.tabs.widget(index)
        assert isinstance(widget, Document)
        return widget

    def documents(self) -> list[Document]:
        return [self.document_at(i) for i in range(self.tabs.count())]

    def current_document(self) -> Document | None:
        widget = self.tabs.currentWidget()
        return widget if isinstance(widget, Document) else None

    def open_file(self, path: str | os.PathLike[str]) -> Document | None:
        target = Path(path).resolve()
        for index, doc in enumerate(self.documents()):
            if doc.path == target:
                self.tabs.setCurrentIndex(index)
                doc.editor.focus()
                return doc
        try:
            doc = Document.open(target, self.settings, self.backups, self._backup_executor)
        except FileTooLargeError as exc:  # the message names the file, its size and the limit
            self.show_message(str(exc.strerror), 15000)
            return None
        except OSError as exc:
            self.show_message(f"Cannot open {target}: {exc.strerror or exc}", 10000)
            return None
        self._add_document(doc)
        self.watcher.addPath(str(target))
        return doc

    def _add_untitled_document(self) -> Document:
        self._untitled_counter += 1
        doc = Document.untitled(
            self._untitled_counter, self.settings, self.backups, self._backup_executor
        )
        self._add_document(doc)
        return doc

    def new_untitled(self) -> Document:
        return self._add_untitled_document()

    def _add_document(self, doc: Document) -> None:
        doc.editor.apply_theme(theme_named(self.settings.theme))
        doc.editor.auto_close.configure(
            brackets=self.settings.auto_closing_brackets, quotes=self.settings.auto_closing_quotes
        )
        doc.titleChanged.connect(lambda d=doc: self._refresh_tab(d))
        doc.saved.connect(self._on_saved)
        doc.closeRequested.connect(lambda d=doc: self.close_tab(self.tabs.indexOf(d)))
        doc.encodingRequested.connect(lambda d=doc: self.encodings.reopen(d))
        self.git.attach(doc)
        doc.editor.caretMoved.connect(lambda _l, _c: self._update_status())
        doc.editor.installEventFilter(self)  # Ctrl+K: see _update_inline_edit_action
        index = self.tabs.addTab(doc, doc.title)
        self._refresh_tab(doc)
        self.tabs.setCurrentIndex(index)
        doc.editor.focus()

    def _refresh_tab(self, doc: Document) -> None:
        index = self.tabs.indexOf(doc)
        if index < 0:
            return
        self.tabs.setTabText(index, ("● " if doc.is_dirty() else "") + doc.title)
        self.tabs.setTabToolTip(index, str(doc.path) if doc.path else doc.title)
        if doc is self.current_document():
            self._update_status()

    def close_tab(self, index: int) -> bool:
        """Close a tab; a modified one asks Save / Don't Save / Cancel. True when closed."""
        if index < 0 or index >= self.tabs.count():
            return False
        doc = self.document_at(index)
        review = self.reviews.get(doc)
        if review is not None:
            review.close_review()  # the buffer stays as it was
        if doc.is_dirty():
            answer = self.ask_save(doc)
            if answer == "cancel":
                return False
            if answer == "save" and not self._save(doc):
                return False
        doc.discard_backup()
        if doc.path is not None:
            self.watcher.removePath(str(doc.path))
        self.tabs.removeTab(index)
        doc.deleteLater()
        return True

    def ask_save(self, doc: Document) -> str:
        """ "save", "discard" or "cancel" for closing a modified document."""
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setText(f"Do you want to save the changes you made to {doc.title}?")
        box.setInformativeText("Your changes will be lost if you don't save them.")
        save = box.addButton("Save", QMessageBox.ButtonRole.AcceptRole)
        discard = box.addButton("Don't Save", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
        box.exec()
        clicked = box.clickedButton()
        return "save" if clicked is save else "discard" if clicked is discard else "cancel"

    def _cycle_tab(self, step: int) -> None:
        if self.tabs.count():
            self.tabs.setCurrentIndex((self.tabs.currentIndex() + step) % self.tabs.count())

    # ----- saving --------------------------------------------------------------------------
    def _save(self, doc: Document) -> bool:
        if doc.path is None:
            return self._save_as(doc)
        return doc.save()

    def _save_as(self, doc: Document) -> bool:
        start = str(doc.path or (self.root or Path.home()) / doc.title)
        path, _ = QFileDialog.getSaveFileName(self, "Save As", start)
        if not path:
            return False
        ok = doc.save_as(path)
        if ok:
            self.watcher.addPath(path)
            if doc is self.current_document():
                self.retrieved.attach(doc.editor, self.workspace_path(doc))
        return ok

    def save_current(self) -> None:
        doc = self.current_document()
        if doc is not None:
            self._save(doc)

    def save_current_as(self) -> None:
        doc = self.current_document()
        if doc is not None:
            self._save_as(doc)

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
        self.git.refresh_soon()
        self._index_file_changed(path)
        saved = Path(path)
        if saved == self.settings_file.resolve():
            self.reload_settings()
        if saved.name == ".gitignore" and self.rules is not None and self.root is not None:
            self.rules = IgnoreRules.for_folder(self.root, self.settings.files_exclude)
            self.tree.set_rules(self.rules)
            self.rescan_files()

    # ----- changes on disk -------------------------------------------------------------------
    def _on_file_changed(self, path: str) -> None:
        # Editors and our own saves replace files by rename; watch the new file again.
        QTimer.singleShot(50, self, lambda: self._recheck(path))

    def _recheck(self, path: str) -> None:
        if os.path.exists(path) and path not in self.watcher.files():
            self.watcher.addPath(path)
        self._index_file_changed(path)
        self.git.refresh_soon()
        target = Path(path)
        for doc in self.documents():
            if doc.path == target:
                outcome = doc.check_disk()
                if outcome == "reloaded":
                    self.show_message(f"{doc.title} changed on disk and was reloaded.")

    def _on_app_state(self, state: Qt.ApplicationState) -> None:
        if state == Qt.ApplicationState.ApplicationActive:
            self.git.refresh_soon()
            for doc in self.documents():
                doc.check_disk()

    # ----- settings and themes ---------------------------------------------------------------
    def open_settings(self) -> None:
        path = self.settings_file
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(default_settings_text(), encoding="utf-8")
            except OSError as exc:
                self.show_message(f"Cannot create {path}: {exc}", 10000)
                return
        doc = self.open_file(path)
        if doc is not None and self.settings_problems:
            doc.banner.show_message("\n".join(self.settings_problems), "warning")

    def reload_settings(self) -> None:
        old = self.settings
        self.settings, self.settings_problems = load_settings(self.settings_file)
        self.apply_settings(self.settings)
        engine_changed = (old.completion_enabled, old.completion_model_path) != (
            self.settings.completion_enabled,
            self.settings.completion_model_path,
        )
        tier_changed = (old.completion_model, old.completion_latency_budget_ms) != (
            self.settings.completion_model,
            self.settings.completion_latency_budget_ms,
        )
        if engine_changed:
            self.stop_engine()
            if self.settings.completion_enabled:
                self.start_engine()
        elif (
            tier_changed
            and self.settings.completion_enabled
            and not self.settings.completion_model_path
        ):
            self._tier_task.start(
                self.settings.completion_model, self.settings.completion_latency_budget_ms
            )
        if self.cloud is not None and (old.cloud_url, old.cloud_autostart, old.chat_model_path) != (
            self.settings.cloud_url,
            self.settings.cloud_autostart,
            self.settings.chat_model_path,
        ):
            self.start_cloud()
        for doc in self.documents():
            if doc.path == self.settings_file.resolve():
                if self.settings_problems:
                    doc.banner.show_message("\n".join(self.settings_problems), "warning")
                else:
                    doc.banner.clear()
        if self.settings_problems:
            self.show_message("Settings: " + "; ".join(self.settings_problems), 15000)
        else:
            self.show_message("Settings applied.")

    def apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        theme = theme_named(settings.theme)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_app_palette(app, theme)
        for doc in self.documents():
            doc.apply_settings(settings)
            doc.editor.apply_theme(theme)
            doc.editor.auto_close.configure(
                brackets=settings.auto_closing_brackets, quotes=settings.auto_closing_quotes
            )
        for review in self.reviews.values():
            review.set_font(settings.font_family, settings.font_size)
            review.apply_theme(theme)
        self.chat_panel.apply_theme(theme)
        self.git.theme_changed()
        self.git.set_enabled(settings.git_enabled)
        self.chat_panel.budget_tokens = settings.chat_context_budget_tokens
        self.chat_panel.max_tokens = settings.chat_max_tokens
        if self.inline is not None:
            self.inline.set_debounce(settings.completion_debounce_ms)
            self.inline.max_tokens = settings.completion_max_tokens
            self.inline.enabled = settings.completion_enabled
        if self.root is not None and self.rules is not None:
            rules = IgnoreRules.for_folder(self.root, settings.files_exclude)
            self.rules = rules
            self.tree.set_rules(rules)
        self.update_codebase_index()  # index.enabled turned on or off

    def toggle_theme(self) -> None:
        new = "light" if self.settings.theme == "dark" else "dark"
        self.apply_settings(replace(self.settings, theme=new))

    def zoom(self, step: int) -> None:
        size = (
            self.settings.font_size + step
            if step
            else load_settings(self.settings_file)[0].font_size
        )
        self.apply_settings(replace(self.settings, font_size=max(6, min(72, size))))

    # ----- pickers -----------------------------------------------------------------------
    def quick_open(self) -> None:
        if self.root is None:
            self.show_message("Open a folder first (File: Open Folder...).")
            return
        if self.files_complete:
            self.rescan_files()  # refresh in the background; the current list serves now

        def provider(query: str) -> list[PickerItem]:
            out = []
            for match in rank_paths(query, self.files, limit=50):
                name_start = match.path.rfind("/") + 1
                positions = tuple(p - name_start for p in match.positions if p >= name_start)
                out.append(
                    PickerItem(
                        match.path[name_start:], match.path[:name_start], positions, match.path
                    )
                )
            return out

        def accept(item: PickerItem | None, _query: str) -> None:
            if item is not None and self.root is not None:
                self.open_file(self.root / str(item.data))

        self.picker.open("Search files by name", provider, on_accept=accept)

    def command_palette(self) -> None:
        titles = [c.title for c in self.commands]
        by_title = {c.title: c for c in self.commands}

        def provider(query: str) -> list[PickerItem]:
            return [
                PickerItem(m.path, by_title[m.path].shortcut, m.positions, by_title[m.path])
                for m in rank_paths(query, titles, limit=len(titles))
            ]

        def accept(item: PickerItem | None, _query: str) -> None:
            if item is not None:
                command = item.data
                assert isinstance(command, Command)
                QTimer.singleShot(0, self, command.handler)

        self.picker.open("Type a command", provider, on_accept=accept)

    def go_to_line(self) -> None:
        doc = self.current_document()
        if doc is None:
            return
        editor = doc.editor
        total = editor.lineCount()

        def parse(query: str) -> tuple[int, int] | None:
            parts = query.strip().lstrip(":").split(":")
            try:
                line = int(parts[0])
                col = int(parts[1]) if len(parts) > 1 and parts[1] else 1
            except ValueError:
                return None
            return line, col

        def provider(query: str) -> list[PickerItem]:
            target = parse(query)
            line, col = editor.caret_line_col()
            if target is None:
                return [
                    PickerItem(
                        f"Current line: {line}, character: {col}. "
                        f"Type a line number between 1 and {total}."
                    )
                ]
            return [PickerItem(f"Go to line {target[0]}, character {target[1]}", data=target)]

        def accept(_item: PickerItem | None, query: str) -> None:
            target = parse(query)
            if target is not None:
                editor.go_to_line(*target)

        self.picker.open("Type a line number to go to", provider, on_accept=accept)

    def _open_find(self) -> None:
        doc = self.current_document()
        if doc is not None:
            self.find_bar.set_editor(doc.editor)
            self.find_bar.open_find()

    def _find_step(self, forward: bool) -> None:
        """F3 / Shift+F3 in the current tab (also after the bar was closed on another tab);
        with nothing searched yet, the find bar opens, as VS Code's."""
        doc = self.current_document()
        if doc is None:
            return
        self.find_bar.set_editor(doc.editor)
        if not self.find_bar.query_edit.text():
            self._open_find()
        elif forward:
            self.find_bar.find_next()
        else:
            self.find_bar.find_previous()

    def _open_replace(self) -> None:
        doc = self.current_document()
        if doc is not None:
            self.find_bar.set_editor(doc.editor)
            self.find_bar.open_replace()

    def find_in_files(self, replace: bool = False) -> None:
        """Ctrl+Shift+F (Ctrl+Shift+H with Replace): the Search panel on the left."""
        if self.search_dock is None:
            self.search_dock = SearchDock(self)
        self.search_dock.open(replace=replace)

    def _focus_tree(self) -> None:
        self.tree.show()
        self.tree.setFocus()

    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open File", str(self.root or Path.home()))
        if path:
            self.open_file(path)

    def _save_session(self) -> None:
        if self.backups is not None:
            # closing (the executor is shut down): closeEvent stores the tabs itself
            with contextlib.suppress(RuntimeError):
                self._backup_executor.submit(self.backups.write_session, capture_session(self))

    def _update_welcome(self) -> None:
        welcome = self.root is None and self.tabs.count() == 0
        self.welcome.setVisible(welcome)
        self.tabs.setVisible(not welcome)

    def open_recent_folder(self, folder: str) -> None:
        if os.path.isdir(folder):
            self.open_folder(folder)
            return
        self.show_message(f"{folder} no longer exists; it is removed from the recent list.", 10000)
        try:
            self.welcome.set_recent(self.recent.remove(folder))
        except OSError as exc:
            self.show_message(f"The recent folders list could not be written: {exc}", 10000)

    def open_recent_picker(self) -> None:
        """Ctrl+R: the recent folders in the picker."""
        folders = self.recent.load()

        def provider(query: str) -> list[PickerItem]:
            return [
                PickerItem(Path(m.path).name, str(Path(m.path).parent), (), m.path)
                for m in rank_paths(query, folders, limit=len(folders))
            ]

        def accept(item: PickerItem | None, _query: str) -> None:
            if item is not None:
                self.open_recent_folder(str(item.data))

        self.picker.open("Open a recent folder", provider, on_accept=accept)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open Folder", str(self.root or Path.home()))
        if path:
            self.open_folder(path)

    # ----- status bar --------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_position = QLabel()
        self.status_indent = QLabel()
        self.status_encoding = ClickableLabel("Select Encoding")
        self.status_encoding.clicked.connect(lambda: self.encodings.change_encoding())
        self.status_eol = QLabel()
        self.status_language = QLabel()
        self.status_chat = QLabel("○ Chat offline")
        self.status_index = QToolButton()
        self.status_index.setAutoRaise(True)
        self.status_index.clicked.connect(self._on_index_clicked)
        self.status_index.hide()
        bar.addPermanentWidget(self.status_index)
        self.status_model = QLabel("○ No model")
        self.status_model.setToolTip("Local completion model: not configured yet")
        for label in (
            self.status_position,
            self.status_indent,
            self.status_encoding,
            self.status_eol,
            self.status_language,
            self.status_chat,
            self.status_model,
        ):
            label.setContentsMargins(6, 0, 6, 0)
            bar.addPermanentWidget(label)

    # ----- chat -----------------------------------------------------------------------------
    def toggle_chat(self) -> None:
        """Ctrl+L: open the chat panel and put the focus in its question box; with the focus
        already in the panel, close it and go back to the editor."""
        panel = self.chat_panel
        focus = self.focusWidget()
        if (
            panel.isVisible()
            and focus is not None
            and (focus is panel or panel.isAncestorOf(focus))
        ):
            panel.hide()
            self.chat_host.chat_focus_editor()
            return
        self.show_chat()

    def show_chat(self) -> None:
        panel = self.chat_panel
        if not panel.isVisible():
            panel.show()
            sizes = self.splitter.sizes()
            if sizes[2] < panel.minimumWidth():
                width = max(panel.minimumWidth(), min(420, sizes[1] // 2))
                self.splitter.setSizes([sizes[0], max(0, sizes[1] - width), width])
        panel.focus_input()

    def new_chat(self) -> None:
        self.show_chat()
        self.chat_panel.new_conversation()

    def start_cloud(self) -> None:
        """(Re)start the chat service per the settings; returns at once."""
        if self.cloud is not None:
            self.cloud.close(timeout=0)  # stops in the background
        self.stop_codebase_index()  # it follows the new connection
        url = self.settings.cloud_url.strip()

        def token() -> str | None:  # on the connection's worker thread
            from cloud_client.tokens import TokenStore

            return TokenStore().get(token_name(url))

        cloud = CloudConnection(
            url,
            autostart=self.settings.cloud_autostart,
            token_provider=token,
            local_engine=self._engine_client,
            service_model=self.settings.chat_model_path,
            parent=self,
        )
        cloud.state_changed.connect(self._on_cloud_state)
        self.cloud = cloud
        self.chat_panel.set_backend(cloud.backend)
        cloud.start()

    def _engine_client(self) -> object | None:
        """The local engine's worker client (the router's fallback); called on worker
        threads."""
        return getattr(self.engine, "client", None)

    def _on_cloud_state(self, state: str, detail: str) -> None:
        self.set_chat_state(CHAT_STATES.get(state, state), detail)
        self.update_codebase_index()

    # ----- codebase index ----------------------------------------------------------------------
    def update_codebase_index(self) -> None:
        """Start the folder's index when it can run (a folder, ``index.enabled``, a connected
        service), stop it when it cannot or the folder changed; returns at once."""
        access = self.cloud.index_access() if self.cloud is not None else None
        wanted = self.root is not None and self.settings.index_enabled and access is not None
        index = self.codebase_index
        if index is not None and (not wanted or index.folder != self.root):
            self.stop_codebase_index()
            index = None
        if not wanted or index is not None:
            return
        assert self.root is not None and access is not None
        target, token = access
        index = CodebaseIndex(
            self.root, target, token, debounce_ms=self.settings.index_debounce_ms, parent=self
        )
        # an index being replaced may still report while it winds down: only the current one
        # speaks in the status bar
        index.status_changed.connect(
            lambda status: self._on_index_status(status) if index is self.codebase_index else None
        )
        index.message.connect(lambda text: self.show_message(text, 10000))
        index.key_copied.connect(self._on_index_key_copied)
        self.codebase_index = index
        self.chat_panel.set_codebase(index)
        self.retrieved.set_codebase(index)
        self._on_index_status(index.status)
        self._watch_index_folders()
        index.start()

    def stop_codebase_index(self, timeout: float = 0.0) -> None:
        """Stop the index: cancel, close its channel; its thread ends by itself, or is joined
        for up to ``timeout`` seconds (the window's close waits, so that the embedding process
        is gone when the editor exits)."""
        index, self.codebase_index = self.codebase_index, None
        self.chat_panel.set_codebase(None)
        self.retrieved.set_codebase(None)
        if index is not None:
            index.close(timeout)
        folders = self.index_watcher.directories()
        if folders:
            self.index_watcher.removePaths(folders)
        self.status_index.hide()

    def _watch_index_folders(self) -> None:
        """Watch the folders that hold the scanned files (new, deleted or renamed files;
        saves by rename). Bounded: very large trees rely on saves and Sync Now."""
        if self.codebase_index is None or self.root is None:
            return
        folders = {str(self.root)}
        for rel in self.files:
            parent = os.path.dirname(rel)
            while parent and len(folders) < 2000:
                folders.add(str(self.root / parent))
                parent = os.path.dirname(parent)
        new = sorted(folders - set(self.index_watcher.directories()))
        if new:
            self.index_watcher.addPaths(new)

    def _on_index_dir_changed(self, _path: str) -> None:
        if self.codebase_index is not None:
            self.codebase_index.notify_changed()

    def _index_file_changed(self, path: str) -> None:
        index = self.codebase_index
        if index is not None and Path(path).resolve().is_relative_to(index.folder):
            index.notify_changed(path)

    def _on_index_status(self, status: object) -> None:
        assert isinstance(status, IndexStatus)
        self.status_index.setText(status.text)
        self.status_index.setToolTip(status.detail)
        self.status_index.setVisible(status.state != "stopped")

    def _on_index_clicked(self) -> None:
        index = self.codebase_index
        if index is None:
            return
        if index.status.state == "indexing":
            index.cancel()
        else:
            index.sync_now()

    def index_sync_now(self) -> None:
        if self.codebase_index is None:
            self.show_message(self._index_why_not(), 8000)
            return
        self.codebase_index.sync_now()

    def index_cancel(self) -> None:
        if self.codebase_index is not None:
            self.codebase_index.cancel()

    def index_copy_key(self) -> None:
        if self.codebase_index is None:
            self.show_message(self._index_why_not(), 8000)
            return
        self.codebase_index.copy_key()

    def _on_index_key_copied(self, text: str) -> None:
        QApplication.clipboard().setText(text)
        self.show_message(
            "The workspace index key is on the clipboard: give it only to "
            "teammates who may read this code.",
            10000,
        )

    def index_import_key(self) -> None:
        """Ask for a teammate's workspace key (a password field); the index starts over with
        it."""
        if self.codebase_index is None:
            self.show_message(self._index_why_not(), 8000)
            return
        index = self.codebase_index
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Codebase Index: Import Workspace Key")
        dialog.setLabelText(
            f"Workspace key for {index.folder.name} (from a teammate's “Copy Workspace Key”):"
        )
        dialog.setInputMode(QInputDialog.InputMode.TextInput)
        dialog.setTextEchoMode(QLineEdit.EchoMode.Password)
        dialog.textValueSelected.connect(index.import_key)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    def _index_why_not(self) -> str:
        if self.root is None:
            return "Open a folder first: the codebase index covers the open folder."
        if not self.settings.index_enabled:
            return "The codebase index is off (setting index.enabled)."
        return "The codebase index waits for the service (see the chat status)."

    def set_chat_state(self, text: str, tooltip: str = "") -> None:
        """The status-bar slot the chat service reports into."""
        self.status_chat.setText(text)
        self.status_chat.setToolTip(tooltip)

    def set_service_token(self) -> None:
        """Ask for the token of the service at ``cloud.url`` (a password field) and store it
        in the keyring (``TokenStore``); it is never shown or logged."""
        url = self.settings.cloud_url.strip()
        if not url:
            self.show_message(
                "Set cloud.url first (Preferences: Open Settings (JSON)); the "
                "service on this machine needs no token.",
                10000,
            )
            return
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Cloud: Set Service Token")
        dialog.setLabelText(f"Access token for the Forecode service at {url}:")
        dialog.setInputMode(QInputDialog.InputMode.TextInput)
        dialog.setTextEchoMode(QLineEdit.EchoMode.Password)
        dialog.textValueSelected.connect(lambda value: self._store_token(url, value))
        dialog.finished.connect(dialog.deleteLater)
        dialog.finished.connect(lambda _r: setattr(self, "token_dialog", None))
        self.token_dialog = dialog
        dialog.open()

    def _store_token(self, url: str, value: str) -> None:
        token = value.strip()
        if not token:
            self.show_message("No token was entered; nothing changed.")
            return

        def store(_cancel: threading.Event) -> str:
            from cloud_client.tokens import TokenStore

            TokenStore().set(token_name(url), token)
            return url

        self._token_task.start(store)

    def _on_token_stored(self, url: object) -> None:
        self.show_message(f"Token saved for {url}; reconnecting.", 8000)
        if url == self.settings.cloud_url.strip():
            self.start_cloud()

    # ----- apply and inline edit -------------------------------------------------------------
    def _on_apply_requested(self, code: str, language: str, path: str) -> None:
        """A chat code block's Apply: review it against the file its path hint names (when it
        is a workspace file), else the current document."""
        doc = self._apply_target(path)
        if doc is None:
            self.show_message("Open the file to apply this code to first.", 8000)
            return
        self.start_review(doc, code)

    def _apply_target(self, hint: str) -> Document | None:
        hint = hint.strip()
        if hint and self.root is not None:
            rel = hint[2:] if hint.startswith("./") else hint
            candidate = Path(rel) if Path(rel).is_absolute() else self.root / rel
            for doc in self.documents():
                if doc.path is not None and doc.path == candidate.resolve():
                    self.tabs.setCurrentWidget(doc)
                    return doc
            try:
                inside = candidate.resolve().relative_to(self.root).as_posix()
            except ValueError:
                inside = ""
            if inside and (inside in self.files or candidate.is_file()):
                return self.open_file(candidate)
            if "/" not in rel:  # a bare file name: the one workspace file of that name
                named = [f for f in self.files if f.rsplit("/", 1)[-1] == rel]
                if len(named) == 1:
                    return self.open_file(self.root / named[0])
        return self.current_document()

    def start_review(self, doc: Document, block: str, instruction: str = "") -> ApplyReview | None:
        """Review ``block`` (with ``instruction``: an inline edit) against ``doc``'s buffer, in
        its pane. Returns the review (None when the document cannot be changed)."""
        if doc.read_only_reason or doc.editor.readOnly():
            self.show_message(f"{doc.title} is read-only; nothing can be applied to it.", 8000)
            return None
        old = self.reviews.get(doc)
        if old is not None:
            old.close_review()
        request = ApplyInput(
            path=self.workspace_path(doc),
            language=doc.editor.language.id,
            original=doc.editor.text(),
            block=block,
            instruction=instruction,
        )
        review = ApplyReview(
            doc.editor,
            request,
            self.apply_backend,
            title=doc.title,
            theme=theme_named(self.settings.theme),
            parent=doc,
        )
        layout = doc.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(layout.indexOf(doc.editor) + 1, review, 1)
        doc.editor.hide()
        review.show()
        self.reviews[doc] = review
        review.finished.connect(lambda outcome, d=doc, r=review: self._end_review(d, r, outcome))
        self.tabs.setCurrentWidget(doc)
        review.start()
        if review.outcome == "":
            review.focus()
        self._update_inline_edit_action()
        return review

    def _end_review(self, doc: Document, review: ApplyReview, outcome: str) -> None:
        if self.reviews.get(doc) is review:
            del self.reviews[doc]
        review.hide()
        review.deleteLater()
        doc.editor.show()
        if doc is self.current_document():
            doc.editor.focus()
        accepted = review.accepted()
        if outcome == "applied" and accepted:
            doc.editor.go_to_line(accepted[0].old_start + 1)
        text = {
            "applied": f"Applied {len(accepted)} of {len(review.hunks)} change"
            f"{'s' if len(review.hunks) != 1 else ''} to {doc.title} "
            "(Ctrl+Z undoes the whole apply).",
            "rejected": f"Rejected the changes to {doc.title}; nothing was changed.",
            "cancelled": f"Apply to {doc.title} stopped; nothing was changed.",
            "unchanged": f"The code block changes nothing in {doc.title}.",
        }.get(outcome)
        if text:
            self.show_message(text, 8000)
        self._update_inline_edit_action()

    def _review_action(self, name: str) -> None:
        doc = self.current_document()
        review = self.reviews.get(doc) if doc is not None else None
        if review is None:
            self.show_message("No apply is being reviewed in this editor.")
            return
        review.run_action(name)

    def apply_last_code_block(self) -> None:
        """Apply the last code block of the chat's last answer that has one."""
        for view in reversed(self.chat_panel.messages()):
            blocks = view.code_blocks() if view.role == "assistant" else []
            if blocks:
                block = blocks[-1]
                self._on_apply_requested(block.code, block.language.id, block.path_hint)
                return
        self.show_message("The chat has no code block to apply.")

    def _apply_service(self) -> object | None:
        """The object whose ``apply`` is the model path (the router, else the client); None
        while the service is not connected. Called on the apply's worker thread."""
        cloud = self.cloud
        if cloud is None:
            return None
        router = cloud.backend.current
        if router is not None and hasattr(router, "apply"):
            return router
        return getattr(cloud, "_client", None)

    def inline_edit(self) -> None:
        """Ctrl+K on a selection: a prompt at the selection; its instruction and the selected
        code go to the apply (model path) and the result is reviewed."""
        doc = self.current_document()
        if doc is None or doc in self.reviews:
            return
        editor = doc.editor
        if editor.selectionEmpty():
            self.show_message("Select the code to edit first (Ctrl+K edits the selection).")
            return
        if doc.read_only_reason or editor.readOnly():
            self.show_message(f"{doc.title} is read-only.")
            return
        if self.inline_prompt is not None:
            self.inline_prompt.close_prompt(focus_editor=False)
        prompt = InlineEditPrompt(editor, theme_named(self.settings.theme))
        self.inline_prompt = prompt

        def submitted(instruction: str) -> None:
            # The selected lines, once in the file: the model rewrites only them.
            self.start_review(doc, prompt.selection_block(), instruction)

        def closed() -> None:
            if self.inline_prompt is prompt:
                self.inline_prompt = None

        prompt.submitted.connect(submitted)
        prompt.closed.connect(closed)
        prompt.open()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # A key about to be matched against the shortcuts in an editor: decide first whether
        # Ctrl+K is the inline edit (a selection) or the prefix of its chords (none).
        if event.type() == QEvent.Type.ShortcutOverride:
            self._update_inline_edit_action()
        return super().eventFilter(watched, event)

    def _update_inline_edit_action(self) -> None:
        """Ctrl+K is enabled only while the current editor has a selection (and no review):
        Qt fires a one-key shortcut at once, so an enabled Ctrl+K would shadow the chords."""
        action = getattr(self, "actions_by_id", {}).get("edit.inlineEdit")
        if action is None:
            return
        doc = self.current_document()
        enabled = doc is not None and doc not in self.reviews and not doc.editor.selectionEmpty()
        if action.isEnabled() != enabled:
            action.setEnabled(enabled)

    # ----- local engine ---------------------------------------------------------------------
    def start_engine(self) -> None:
        """Start completions off the UI thread: ``completion.modelPath`` when set (any GGUF),
        else the model ``local_models.calibrate`` picks (the best measured quality that fits
        ``completion.latencyBudgetMs`` here, or ``completion.model``); measuring happens on
        first run and after a model change, with "◌ Measuring models…" in the status bar."""
        configured = self.settings.completion_model_path
        if configured:
            self._tier_task.cancel()

            def prepare(_cancel: threading.Event) -> str:
                return str(Path(configured).expanduser())

            self.set_model_state("◌ Preparing model…", f"completion.modelPath: {configured}")
            self._model_task.start(prepare)
            return
        self.set_model_state(
            "◌ Choosing model…", "Preparing the installed models and reading their measured speeds"
        )
        self._tier_task.start(
            self.settings.completion_model, self.settings.completion_latency_budget_ms
        )

    def recalibrate_models(self) -> None:
        """Measure every installed model again, off the UI thread, and switch completions to
        the new pick (the current model answers meanwhile)."""
        if not self.settings.completion_enabled:
            self.show_message("Completions are off (completion.enabled)", 5000)
            return
        self._tier_task.start(
            self.settings.completion_model, self.settings.completion_latency_budget_ms, force=True
        )

    def _on_model_chosen(self, choice: ModelChoice) -> None:
        from .local_engine import LocalEngine

        self.model_choice = choice
        if not self.settings.completion_enabled:
            return
        if self.settings.completion_model_path:  # a recalibration while a path overrides it
            self.show_message(
                f"Measured: {choice.title} would answer completions; "
                "completion.modelPath overrides it",
                10000,
            )
            self._show_engine_state()
            return
        engine = self.engine
        if isinstance(engine, LocalEngine) and engine.model_path == Path(choice.path):
            self._show_engine_state()  # the same model: only the figures changed
            return
        self._start_local_engine(choice.path, title=choice.title)

    def _start_local_engine(self, model_path: object, title: str = "") -> None:
        from .local_engine import LocalEngine

        engine = LocalEngine(str(model_path), self, title=title)
        self.use_engine(engine)
        engine.start()

    def use_engine(self, engine: CompletionEngine) -> None:
        if self.engine is not None:
            self.engine.close()
        self.engine = engine
        engine.state.connect(self._on_engine_state)
        self.inline = InlineCompletion(
            engine,
            debounce_ms=self.settings.completion_debounce_ms,
            max_tokens=self.settings.completion_max_tokens,
            context=self._completion_context,
            parent=self,
        )
        doc = self.current_document()
        self.inline.attach(doc.editor if doc is not None else None)

    def stop_engine(self) -> None:
        self._tier_task.cancel()
        if self.inline is not None:
            self.inline.attach(None)
            self.inline = None
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self.set_model_state("○ No model", "Inline completions are off")
        if self.cloud is not None:
            self.cloud.local_changed()

    def _on_engine_state(self, state: str, detail: str) -> None:
        self._engine_state = (state, detail)
        self._show_engine_state()
        if self.cloud is not None:
            self.cloud.local_changed()
        if state == "crashed":
            self.show_message(f"The completion engine stopped and is restarting: {detail}", 8000)
        elif state == "failed":
            self.show_message(f"Completions are off: {detail}", 15000)

    def _show_engine_state(self) -> None:
        """The status bar's model slot: the model that answers, by its title, and why it was
        chosen with the measured rates in the tooltip."""
        state, detail = self._engine_state
        engine = self.engine
        name = getattr(engine, "title", "") or Path(getattr(engine, "model_path", "model")).name
        text = {
            "starting": f"◌ Loading {name}…",
            "ready": f"● {name}",
            "crashed": "⟳ Engine restarting",
            "failed": "✕ Model error",
            "stopped": "○ No model",
        }.get(state, state)
        tip = detail or state
        if state == "ready":
            tip = f"Completions: {name}"
        choice = self.model_choice
        path = getattr(engine, "model_path", None)
        if self.settings.completion_model_path:
            tip += "\nThe model of completion.modelPath (it overrides the measured choice)"
        elif choice is not None and path is not None and Path(choice.path) == Path(path):
            tip += "\n" + choice.describe()
        self.set_model_state(text, tip)

    def workspace_path(self, doc: Document) -> str:
        """The document's path relative to the workspace (its name outside it)."""
        if doc.path is None:
            return doc.title
        if self.root is not None:
            try:
                return doc.path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return doc.path.name

    def _completion_context(self) -> tuple[str, str, tuple[Snippet, ...]]:
        doc = self.current_document()
        if doc is None:
            return "untitled", "plaintext", ()
        snippets: list[Snippet] = []
        for other in self.documents():
            if other is doc or other.read_only_reason or len(snippets) >= 3:
                continue
            ed = other.editor
            line = ed.lineFromPosition(ed.currentPos())
            first = max(0, line - 20)
            last = min(ed.lineCount() - 1, line + 20)
            text = bytes(
                ed.textRange(ed.positionFromLine(first), ed.lineEndPosition(last)).data()
            ).decode("utf-8", "replace")
            snippets.append(
                Snippet(
                    self.workspace_path(other),
                    text,
                    first + 1,
                    "recent_edit" if other.is_dirty() else "open_file",
                )
            )
        snippets.sort(key=lambda s: s.kind != "recent_edit")
        path = self.workspace_path(doc)
        line = doc.editor.lineFromPosition(doc.editor.currentPos()) + 1
        snippets += self.retrieved.snippets(path, line, snippets)  # only what is cached
        return path, doc.editor.language.id, tuple(snippets)

    def set_model_state(self, text: str, tooltip: str = "") -> None:
        """The status-bar slot the local engine reports into."""
        self.status_model.setText(text)
        self.status_model.setToolTip(tooltip)

    def _on_current_changed(self, _index: int) -> None:
        doc = self.current_document()
        self._update_inline_edit_action()
        if self.inline is not None:
            self.inline.attach(doc.editor if doc is not None else None)
        self.retrieved.attach(
            doc.editor if doc is not None else None,
            self.workspace_path(doc) if doc is not None else "",
        )
        if doc is not None and self.find_bar.isVisible():
            self.find_bar.set_editor(doc.editor)
        self._update_welcome()
        self._session_timer.start()
        self._update_status()

    def _update_status(self) -> None:
        doc = self.current_document()
        labels = (
            self.status_position,
            self.status_indent,
            self.status_encoding,
            self.status_eol,
            self.status_language,
        )
        if doc is None:
            for label in labels:
                label.setText("")
            return
        line, col = doc.editor.caret_line_col()
        selections = doc.editor.selections()
        extra = f" ({selections} selections)" if selections > 1 else ""
        self.status_position.setText(f"Ln {line}, Col {col}{extra}")
        indent = "Spaces" if self.settings.insert_spaces else "Tab Size"
        self.status_indent.setText(f"{indent}: {self.settings.tab_size}")
        encoding = encoding_label(doc.encoding)
        self.status_encoding.setText(encoding + (" (read-only)" if doc.read_only_reason else ""))
        self.status_eol.setText(EOL_NAMES[doc.eol] + (" (mixed)" if doc.mixed_eol else ""))
        self.status_language.setText(doc.editor.language.name)

    def show_message(self, text: str, timeout_ms: int = 5000) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    # ----- closing -----------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        """Hot exit: unsaved buffers are backed up and restored next time; no prompt. The chat
        service we started stops (bounded: the close never hangs on it)."""
        self._scan.cancel()
        self._model_task.cancel()
        self._tier_task.cancel()
        self._token_task.cancel()
        self.chat_panel.shutdown()  # a reply in flight is stopped; its text so far is kept
        self.retrieved.shutdown()
        if self.search_dock is not None:
            self.search_dock.panel.shutdown()  # a search in flight stops with its process
        self.git.close()
        self.explorer_ops.close()
        for review in list(self.reviews.values()):
            review.close_review()  # an apply in flight stops; buffers stay as they were
        self.stop_codebase_index(timeout=5.0)  # cancels; its embedding process stops
        if self.cloud is not None:
            self.cloud.close(timeout=3.0)
        if self.engine is not None:
            self.engine.close()
        for doc in self.documents():
            doc.backup_now()  # writes the dirty ones, drops stale backups of the clean ones
        self._session_timer.stop()
        self._backup_executor.shutdown(wait=True)
        if self.backups is not None:  # every open tab, its caret and scroll, for next time
            try:
                self.backups.write_session(capture_session(self))
            except OSError as exc:
                self.show_message(f"Hot exit: the open tabs could not be stored: {exc}")
        for doc in self.documents():
            doc.detach_backups()  # nothing may touch the backups after this point
        super().closeEvent(event)
