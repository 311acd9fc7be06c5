"""The chat's room in the window: the panel (right of the editor, in the window's splitter),
showing and hiding it (Ctrl+L), a new conversation; its host (what the editor shows, as
context) over the workspace and the documents. The backend, the codebase search and the
Apply button's target are wired by the window (the cloud, index and review owners')."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QSplitter

from forecode_core.store.settings import Settings

from ..chat_host import WindowChatHost
from ..chat_panel import ChatPanel
from ..theme import theme_named
from .commands import Command
from .documents import Documents
from .workspace import Workspace

__all__ = ["Chat"]


class Chat(QObject):
    message = Signal(str, int)

    def __init__(
        self, workspace: Workspace, documents: Documents, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.host = WindowChatHost(workspace, documents)
        self.panel = ChatPanel(self.host)
        self.panel.hide()
        self.panel.message.connect(lambda text: self.message.emit(text, 10000))
        # The chips follow the tab shown (Cursor's do): in a user run they still named the
        # previous tab's file after a switch, until the question box took the focus.
        documents.current_changed.connect(lambda _doc: self.panel.schedule_refresh())
        self._splitter: QSplitter | None = None

    def commands(self) -> list[Command]:
        return [
            Command("chat.toggle", "Chat: Toggle Chat Panel", "Ctrl+L", self.toggle),
            Command("chat.new", "Chat: New Conversation", "", self.new_conversation),
        ]

    def place(self, splitter: QSplitter) -> None:
        """The panel becomes ``splitter``'s last pane (never collapsed to nothing)."""
        self._splitter = splitter
        splitter.addWidget(self.panel)
        splitter.setCollapsible(splitter.indexOf(self.panel), False)

    def apply_settings(self, settings: Settings) -> None:
        self.panel.apply_theme(theme_named(settings.theme))
        self.panel.budget_tokens = settings.chat_context_budget_tokens
        self.panel.max_tokens = settings.chat_max_tokens

    def toggle(self) -> None:
        """Ctrl+L: open the chat panel and put the focus in its question box; with the focus
        already in the panel, close it and go back to the editor."""
        panel = self.panel
        focus = panel.window().focusWidget()
        if (
            panel.isVisible()
            and focus is not None
            and (focus is panel or panel.isAncestorOf(focus))
        ):
            panel.hide()
            self.host.chat_focus_editor()
            return
        self.show()

    def show(self) -> None:
        panel = self.panel
        splitter = self._splitter
        if not panel.isVisible():
            panel.show()
            if splitter is not None:
                sizes = splitter.sizes()
                if sizes[2] < panel.minimumWidth():
                    width = max(panel.minimumWidth(), min(420, sizes[1] // 2))
                    splitter.setSizes([sizes[0], max(0, sizes[1] - width), width])
        panel.focus_input()

    def new_conversation(self) -> None:
        self.show()
        self.panel.new_conversation()

    def shutdown(self) -> None:
        self.panel.shutdown()  # a reply in flight is stopped; its text so far is kept
