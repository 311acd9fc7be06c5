"""The main window: a shell that builds the owners (``app.ui.owners``), lays out their widgets
(explorer, tabs, find bar, chat panel, status bar), binds every command's keys in one place
and wires the owners' signals to each other.

Commands: each owner's ``commands()`` plus the window's own (layout, find, pickers, settings,
the explorer) are one list, ``commands``; ``bind_commands`` binds their keys and the palette
lists them. The window has no menu bar.

The seams for tests: ``engine`` (a ``CompletionEngine``: else the local engine starts when
``completion.enabled`` is on), ``chat_backend`` (else the cloud controller's connection: a
service on loopback started with the window, or ``cloud.url``) and ``apply_backend`` (else the
deterministic path, then the service's model path).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.services.next_edit_outcomes import OutcomeLog
from forecode_core.store.settings import (
    Settings,
    settings_path,
)
from forecode_core.text.textfile import EOL_NAMES, encoding_label
from forecode_core.workspace.fuzzy import rank_paths

from .apply_backend import ApplyBackend, PipelineApplyBackend, ServiceApply
from .apply_review import ApplyReview
from .cloud import ChatBackend
from .document import Document
from .encoding_picker import ClickableLabel, EncodingCommands
from .explorer_ops import ExplorerOps
from .file_tree import FileTree
from .find_bar import FindBar
from .find_in_files import SearchDock
from .git_decorations import DecoratedFileSystemModel, GitController
from .inline_completion import CompletionEngine
from .next_edit_model import ModelSources
from .not_yet import install_not_yet_keys
from .owners import Command, CommandOwner, bind_commands
from .owners.agent import AgentOwner
from .owners.bug_finder import BugFinder, engine_seams
from .owners.chat import Chat
from .owners.cloud import CloudController
from .owners.db_branch import DbBranchOwner
from .owners.documents import Documents
from .owners.edit_set import EditSetOwner
from .owners.editing import Editing
from .owners.engine import EngineController
from .owners.index import IndexController
from .owners.language import LanguageController
from .owners.lsp_actions import LspActions
from .owners.next_edit import NextEditController
from .owners.preferences import Preferences
from .owners.review import ReviewController
from .owners.terminal import TerminalOwner
from .owners.terminal_ai import TerminalAI, wire_terminal
from .owners.updates import Updates, restart_app
from .owners.workspace import Workspace
from .picker import Picker, PickerItem
from .problems_panel import place_bottom_dock
from .related_files import RelatedFiles
from .startup import after_first_paint
from .theme import apply_app_palette, theme_named
from .welcome import WelcomePage
from .window_layout import WindowLayout

__all__ = ["Command", "MainWindow"]


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings_file: Path | None = None,
        *,
        engine: CompletionEngine | None = None,
        chat_backend: ChatBackend | None = None,
        apply_backend: ApplyBackend | None = None,
    ) -> None:
        super().__init__()
        self._closed = False  # a start queued for after the first paint is then skipped
        # Set by app.main: the window's size, panes and chat panel are stored at close.
        self.layout_store: WindowLayout | None = None
        self.search_dock: SearchDock | None = None  # Find in Files, made on first use
        self.setWindowTitle("Forecode")
        self.resize(1200, 780)
        self.picker = Picker(self)
        self.find_bar = FindBar(self)
        self.find_bar.hide()
        self._build_owners(settings_file or settings_path(), apply_backend)
        self._lay_out()
        self._wire()
        # Every owner's commands and the window's own, keys bound in one place.
        self.commands: list[Command] = [
            *(command for owner in self.owners for command in owner.commands()),
            *self._command_table(),
        ]
        self.actions_by_id: dict[str, QAction] = bind_commands(self, self.commands)
        self.review.inline_edit_allowed.connect(self._allow_inline_edit)
        # Keys of VS Code features not built yet say so; bound after all wiring, only where
        # no command took the key.
        QTimer.singleShot(
            0, self, lambda: install_not_yet_keys(self, lambda text: self.show_message(text, 8000))
        )
        self._start(engine, chat_backend)

    def _build_owners(self, settings_file: Path, apply_backend: ApplyBackend | None) -> None:
        settings = self._current_settings
        self.workspace = Workspace(lambda: self.settings.files_exclude, self.picker, self, self)
        self.docs = Documents(settings, self.workspace, self, self)
        self.prefs = Preferences(settings_file, self.docs, self)
        self.related = RelatedFiles(
            lambda p: d.editor.text() if (d := self.docs.find(p)) else None, self
        )
        self.completions = EngineController(settings, self.docs, self)
        self.cloud = CloudController(settings, self.completions.engine_client, self, self)
        self.index = IndexController(settings, self.workspace, self.cloud.index_access, self, self)
        self.chat = Chat(self.workspace, self.docs, self)
        self.chat_panel = self.chat.panel
        self.review = ReviewController(
            settings,
            self.workspace,
            self.docs,
            apply_backend
            or PipelineApplyBackend(
                ServiceApply(self.cloud.apply_service, starting=self.cloud.service_starting)
            ),
            self.chat_panel.messages,
            self,
        )
        self.editing = Editing(self.docs, self.find_bar, self.picker, self)
        self.language = LanguageController(
            self.docs,
            lambda: self.workspace.root,
            self.statusBar(),
            lambda dock: place_bottom_dock(self, dock),  # a tab beside the other bottom docks
            settings,
            picker=self.picker,
            parent=self,
        )
        outcomes = OutcomeLog()  # next-edit's shown / accepted / rejected, features only
        self.next_edit = NextEditController(  # Tab predicts the next change (issue 15)
            settings,
            self.docs,
            self.workspace,
            lambda: self.completions.inline,
            ModelSources(lambda: self.completions.engine, log=outcomes, parent=self),
            parent=self,
            outcomes=outcomes,
        )
        self.edit_set = EditSetOwner(  # multi-file edits: the chat's "Edit files", the review
            settings,
            self.workspace,
            self.docs,
            self.chat_panel,
            self.chat.show,
            lambda: self.cloud.apply_service() or self.cloud.fixed_backend,
            self,
        )
        self.edit_set.shadow = self.review.workspace_shadow  # the set is checked there too
        self.agent = AgentOwner(  # issue 17: the agent loop (the chat's Agent mode)
            settings, self.workspace, self.chat, self.edit_set, self.review.workspace_shadow, self
        )
        self.bugs = BugFinder(  # the bug finder's tier 2: the local model on changed functions
            self.docs,
            lambda: self.workspace.root,
            settings,
            *engine_seams(self.completions.engine_client),
            self.review.start_review,
            self,
        )
        self.language.tip_sources.append(self.bugs.tip_lines_at)  # one hover tip for both
        # issue 17: Explain / Fix a failed terminal command, next-command prediction
        self.terminal_ai = TerminalAI(
            self.workspace, self.chat, self.edit_set, lambda: self.completions.engine, parent=self
        )
        # issue 18: a newer release checked and staged off the UI thread, applied at a restart
        self.updates = Updates(lambda: self.settings, self.statusBar(), lambda: restart_app(self))
        self.lsp_actions = LspActions(  # F2 rename (reviewed as a set), the References panel
            self.language,
            self.edit_set,
            self.docs,
            lambda: self.workspace.root,
            lambda dock: place_bottom_dock(self, dock),  # a tab beside the other bottom docks
        )
        self.terminal = TerminalOwner(  # issue 17: the shell in a bottom dock (Ctrl+`)
            lambda: self.workspace.root, lambda: theme_named(self.settings.theme),
            lambda dock: place_bottom_dock(self, dock, fraction=1 / 3), self,
        )  # fmt: skip
        self.db_branch = DbBranchOwner(  # issue 17: tests on a database branch, their preview
            settings, lambda: self.workspace.root, self.review.workspace_shadow,
            lambda dock: place_bottom_dock(self, dock, fraction=2 / 5), self.terminal, self,
        )  # fmt: skip
        self.owners: tuple[CommandOwner, ...] = (
            self.docs,
            self.workspace,
            self.prefs,
            self.chat,
            self.editing,
            self.completions,
            self.next_edit,
            self.cloud,
            self.index,
            self.review,
            self.language,
            self.edit_set,
            self.agent,
            self.lsp_actions,
            self.related,
            self.bugs,
            self.updates,
            self.terminal_ai,
            self.terminal,
            self.db_branch,
        )
        self.tabs = self.docs.tabs
        self.watcher = self.docs.watcher
        self.retrieved = self.completions.retrieved

    def _lay_out(self) -> None:
        self.tree = FileTree()
        # Git colours in the explorer and the changed-lines gutter (git runs on its own thread).
        self.git = GitController(
            lambda: m if isinstance(m := self.tree.fs_model, DecoratedFileSystemModel) else None,
            lambda: theme_named(self.settings.theme),
            lambda t: self.show_message(t, 10000),
            self,
        )
        self.explorer_ops = ExplorerOps(self)  # new, rename, delete, reveal, copy path
        # No folder and no file open: the welcome page (recent folders, keys) in their place.
        self.welcome = WelcomePage()
        self.welcome.set_recent(self.workspace.recent.load())
        editor_area = QWidget()
        column = QVBoxLayout(editor_area)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.tabs, 1)
        self.edit_set.place(column, self.tabs)  # a multi-file edit's review covers the tabs
        column.addWidget(self.welcome, 1)
        column.addWidget(self.find_bar)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(editor_area)
        self.chat.place(self.splitter)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([260, 940, 0])
        self.setCentralWidget(self.splitter)
        self.encodings = EncodingCommands(self)
        self._build_status_bar()

    def _wire(self) -> None:
        """The owners' signals to each other and to the widgets."""
        for owner in self.owners:
            owner.message.connect(self.show_message)
        wire_terminal(self.terminal_ai, self.terminal)  # Explain / Fix, next-command ghost
        self.tree.fileActivated.connect(self.open_file)
        self.tree.ignoreWarning.connect(lambda text: self.show_message(text, 15000))
        self.welcome.openFolderRequested.connect(self.workspace.open_folder_dialog)
        self.welcome.openFileRequested.connect(self.docs.open_file_dialog)
        self.welcome.newFileRequested.connect(self.docs.new_untitled)
        self.welcome.recentRequested.connect(self.workspace.open_recent)
        self.workspace.recent_changed.connect(self.welcome.set_recent)
        self.workspace.folder_requested.connect(self.open_folder)
        self.workspace.file_requested.connect(self.open_file)
        self.workspace.rules_changed.connect(self.tree.set_rules)
        # a folder with Python files starts its servers before one opens (VS Code's way)
        self.workspace.scanned.connect(lambda: self.language.warm(self.workspace.languages))
        self.docs.added.connect(self._on_document_added)
        self.docs.current_changed.connect(self._on_current_changed)
        self.docs.current_shown_changed.connect(self._update_status)
        self.docs.saved.connect(self._on_saved)
        self.docs.disk_changed.connect(self._on_disk_changed)
        self.docs.renamed.connect(self.completions.renamed)
        self.prefs.changed.connect(self._on_settings)
        self.prefs.reloaded.connect(self.completions.settings_changed)
        self.prefs.reloaded.connect(self.cloud.settings_changed)
        self.completions.status.connect(self.set_model_state)
        self.completions.engine_changed.connect(self.cloud.local_changed)
        self.completions.engine_changed.connect(self.next_edit.engine_changed)
        self.cloud.status.connect(self.set_chat_state)
        self.cloud.backend_changed.connect(self.chat_panel.set_backend)
        self.cloud.reconnecting.connect(lambda: self.index.stop())
        self.cloud.connection_changed.connect(self.index.update)
        self.index.index_changed.connect(self.chat_panel.set_codebase)
        self.index.index_changed.connect(self.completions.set_codebase)
        self.chat_panel.apply_requested.connect(self.review.apply_requested)
        self.chat_panel.runner.delta.connect(self.review.warm_while_streaming)  # a code block
        self.chat_panel.runner.finished.connect(self.review.warm_for_answer)  # Apply likely
        self.chat_panel.edit_files_button.toggled.connect(self.review.warm_for_edits)
        self.workspace.set_related(self.related.current_related)  # quick open, chat, completions
        self.chat_panel.set_related(self.related.related_if_current)
        self.completions.set_related(  # the servers' problems and definitions, then related files
            self.related.related_paths,
            self.lsp_actions.completion_snippets(self.related.completion_snippets),
        )
        self.next_edit.set_related(self.lsp_actions.related_excerpts(self.related.excerpts_for))
        self.chat.host.extra_sources = self.lsp_actions.chat_sources
        self.related.changed.connect(self.chat_panel.schedule_refresh)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.applicationStateChanged.connect(self._on_app_state)

    def _start(self, engine: CompletionEngine | None, chat_backend: ChatBackend | None) -> None:
        """The first state: settings applied, the engine and the chat service started (their
        processes after the window's first paint when ``app.ui.startup`` holds them)."""
        self._update_welcome()
        self.review.update_inline_edit()
        self.prefs.apply(self.settings)
        if self.prefs.problems:
            self.show_message("Settings: " + "; ".join(self.prefs.problems), 15000)
        if engine is not None:
            self.completions.use_engine(engine)
        elif self.settings.completion_enabled:
            after_first_paint(self._if_open(self.completions.start))
        self.chat_panel.set_workspace(None)
        if chat_backend is not None:
            self.cloud.use_backend(chat_backend)
        else:
            # after the completion model answers (EngineController.after_ready)
            after_first_paint(
                self._if_open(lambda: self.completions.after_ready(self._if_open(self.cloud.start)))
            )

    def _if_open(self, start: Callable[[], None]) -> Callable[[], None]:
        """``start``, skipped when the window closed before it ran (it waited for the first
        paint)."""

        def run() -> None:
            if not self._closed:
                start()

        return run

    @property
    def settings(self) -> Settings:
        return self.prefs.settings

    def _current_settings(self) -> Settings:
        return self.prefs.settings

    # ----- the window's own commands -------------------------------------------------------
    def _command_table(self) -> list[Command]:
        ops = self.explorer_ops
        return [
            Command("file.quit", "File: Quit", "Ctrl+Q", self.close),  # hot exit, as a close
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
                "view.palette", "Show All Commands", "Ctrl+Shift+P or F1", self.command_palette
            ),
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
            Command("explorer.newFile", "Explorer: New File...", "", lambda: ops.new_file()),
            Command("explorer.newFolder", "Explorer: New Folder...", "", lambda: ops.new_folder()),
            Command("explorer.rename", "Explorer: Rename...", "", lambda: ops.rename()),
            Command("explorer.delete", "Explorer: Delete", "", lambda: ops.delete()),
            Command(
                "file.revealInOS",
                "File: Reveal in File Manager",
                "Ctrl+Alt+R",
                lambda: ops.reveal(),
            ),
            Command(
                "file.copyPath",
                "File: Copy Path of Active File",
                "Ctrl+Alt+C",
                lambda: ops.copy_path(),
            ),
            Command(
                "file.copyRelativePath",
                "File: Copy Relative Path of Active File",
                "Ctrl+Shift+Alt+C",
                lambda: ops.copy_path(relative=True),
            ),
            Command("git.refresh", "Git: Refresh Explorer Colours", "", self.git.refresh_now),
        ]

    # ----- the workspace and the documents (the owners' public faces) ---------------------
    @property
    def root(self) -> Path | None:
        return self.workspace.root

    def open_folder(self, folder: str | os.PathLike[str]) -> None:
        root = self.workspace.open(folder)
        assert self.workspace.rules is not None
        self.tree.set_root(root, self.workspace.rules)
        self.git.set_root(root)
        self.setWindowTitle(f"{root.name} — Forecode")
        self.docs.use_folder(root)
        self.workspace.rescan()
        self.docs.restore_backups()
        self.docs.submit(self.workspace.recent.add, root)  # the welcome page's list
        self._update_welcome()
        self.chat_panel.set_workspace(root)
        self.index.update()
        self.related.set_root(root)

    def open_file(self, path: str | os.PathLike[str]) -> Document | None:
        return self.docs.open_file(path)

    def new_untitled(self) -> Document:
        return self.docs.new_untitled()

    def close_tab(self, index: int) -> bool:
        return self.docs.close_tab(index)

    def save_current(self) -> None:
        self.docs.save_current()

    def documents(self) -> list[Document]:
        return self.docs.documents()

    def current_document(self) -> Document | None:
        return self.docs.current_document()

    def workspace_path(self, doc: Document) -> str:
        return self.docs.workspace_path(doc)

    def start_review(self, doc: Document, block: str, instruction: str = "") -> ApplyReview | None:
        return self.review.start_review(doc, block, instruction)

    def _on_document_added(self, doc: Document) -> None:
        doc.encodingRequested.connect(lambda d=doc: self.encodings.reopen(d))
        self.git.attach(doc)
        doc.editor.caretMoved.connect(lambda _l, _c: self._update_status())
        doc.editor.installEventFilter(self)  # Ctrl+K: see _allow_inline_edit

    def _on_current_changed(self, doc: Document | None) -> None:
        self.review.update_inline_edit()
        self.completions.attach(doc)
        self.related.set_current(doc.path if doc is not None else None)
        self.editing.follow(doc.editor if doc is not None else None)
        self._update_welcome()
        self._update_status()

    def _on_saved(self, path: str) -> None:
        self.git.refresh_soon()
        self.index.file_changed(path)
        saved = Path(path)
        self.prefs.file_saved(saved)
        self.workspace.file_saved(saved)
        self.related.file_saved()

    def _on_disk_changed(self, path: str) -> None:
        self.index.file_changed(path)
        self.git.refresh_soon()

    def _on_app_state(self, state: Qt.ApplicationState) -> None:
        if state == Qt.ApplicationState.ApplicationActive:
            self.git.refresh_soon()
            self.docs.check_disk()
            self.related.check_head()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # A key about to be matched against the shortcuts in an editor: decide first whether
        # Ctrl+K is the inline edit (a selection) or the prefix of its chords (none).
        if event.type() == QEvent.Type.ShortcutOverride:
            self.review.update_inline_edit()
        return super().eventFilter(watched, event)

    def _allow_inline_edit(self, allowed: bool) -> None:
        action = self.actions_by_id["edit.inlineEdit"]
        if action.isEnabled() != allowed:
            action.setEnabled(allowed)

    def _update_welcome(self) -> None:
        welcome = self.workspace.root is None and self.tabs.count() == 0
        self.welcome.setVisible(welcome)
        self.tabs.setVisible(not welcome)

    # ----- settings and themes ---------------------------------------------------------------
    def apply_settings(self, settings: Settings) -> None:
        self.prefs.apply(settings)

    def _on_settings(self, settings: Settings) -> None:
        """New settings, to every owner and widget."""
        theme = theme_named(settings.theme)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_app_palette(app, theme)
        self.docs.apply_settings(settings)
        self.review.apply_settings(settings)
        self.edit_set.apply_settings(settings)
        self.chat.apply_settings(settings)
        self.git.theme_changed()
        self.git.set_enabled(settings.git_enabled)
        self.completions.apply_settings(settings)
        self.next_edit.apply_settings(settings)
        self.workspace.reload_rules()  # files.exclude
        self.index.update()  # index.enabled turned on or off

    # ----- the palette, find in files -------------------------------------------------------
    def command_palette(self) -> None:
        shown = [c for c in self.commands if c.available()]  # not one that cannot act now
        titles = [c.title for c in shown]
        by_title = {c.title: c for c in shown}

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

    def find_in_files(self, replace: bool = False) -> None:
        """Ctrl+Shift+F (Ctrl+Shift+H with Replace): the Search panel on the left."""
        if self.search_dock is None:
            self.search_dock = SearchDock(self)
        self.search_dock.open(replace=replace)

    def _focus_tree(self) -> None:
        self.tree.show()
        self.tree.setFocus()

    # ----- status bar ------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_position = QLabel()
        self.status_indent = QLabel()
        self.status_encoding = ClickableLabel("Select Encoding")
        self.status_encoding.clicked.connect(lambda: self.encodings.change_encoding())
        self.status_eol = QLabel()
        self.status_language = QLabel()
        self.status_chat = QLabel("○ Chat offline")
        self.status_index = self.index.button
        bar.addPermanentWidget(self.status_index)
        bar.addPermanentWidget(self.next_edit.label)
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

    def set_chat_state(self, text: str, tooltip: str = "") -> None:
        """The status-bar slot the chat service reports into."""
        self.status_chat.setText(text)
        self.status_chat.setToolTip(tooltip)

    def set_model_state(self, text: str, tooltip: str = "") -> None:
        """The status-bar slot the local engine reports into."""
        self.status_model.setText(text)
        self.status_model.setToolTip(tooltip)

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
        self._closed = True
        if self.layout_store is not None:
            self.layout_store.save(self)  # never raises: a layout not stored is no loss
        self.docs.finish_saves()  # a save in flight lands first (bounded); its listeners hear it
        self.workspace.shutdown()
        self.completions.shutdown()
        self.next_edit.shutdown()
        self.cloud.shutdown()
        self.chat.shutdown()  # a reply in flight is stopped; its text so far is kept
        self.terminal_ai.shutdown()  # a model request for the ghost cancelled
        self.agent.shutdown()  # a loop in flight stops, a command it runs is killed
        if self.search_dock is not None:
            self.search_dock.panel.shutdown()  # a search in flight stops with its process
        self.git.close()
        self.related.shutdown()  # a git log in flight is killed
        self.explorer_ops.close()
        self.review.shutdown()  # an apply in flight stops; buffers stay as they were
        self.bugs.shutdown()  # a review in flight is stopped
        self.language.shutdown()  # the language servers stop (bounded)
        self.edit_set.shutdown()  # a set under review closes; nothing is changed
        self.updates.shutdown()  # a check in flight stops; a staged update stays staged
        self.index.stop(timeout=5.0)  # cancels; its embedding process stops
        self.cloud.close()
        self.completions.close_engine()
        self.docs.shutdown()  # hot exit: backups, the open tabs
        super().closeEvent(event)
