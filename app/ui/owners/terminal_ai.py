"""The terminal's AI parts in the window (issue 17): "Explain" / "Fix" for a failed command
(``app.ui.terminal_fix``) and next-command prediction in the prompt line
(``app.ui.terminal_predict``). The terminal panel (``owners.terminal``) is wired to it by
``wire_terminal``: its ``command_finished(CommandRecord)``, its current tab's
``input_line_changed(str)`` and ``set_suggestion(text)``, and the failure bar shown over the
terminal's tabs.

Commands: "Terminal: Explain Last Failure", "Terminal: Fix Last Failure"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.services.command_history import HistoryStore
from forecode_core.store.settings import data_dir
from forecode_core.terminal.records import CommandRecord

from ..terminal_fix import TerminalFix
from ..terminal_predict import TerminalPredictor
from .chat import Chat
from .commands import Command
from .edit_set import EditSetOwner
from .workspace import Workspace

__all__ = ["TerminalAI", "wire_terminal"]


class TerminalAI(QObject):
    """``engine()``: the local completion engine now, or None; ``store``: the histories'
    store (default: the data folder's)."""

    message = Signal(str, int)

    def __init__(
        self,
        workspace: Workspace,
        chat: Chat,
        edit_set: EditSetOwner,
        engine: Callable[[], Any | None],
        store: HistoryStore | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._chat = chat
        self._edit_set = edit_set
        self.fix = TerminalFix(lambda: workspace.root, self._ask_chat, self._ask_edits, self)
        self.fix.message.connect(self.message)
        self.predictor = TerminalPredictor(
            lambda: workspace.root, engine, store or HistoryStore(data_dir()), self
        )

    def commands(self) -> list[Command]:
        return [
            Command(
                "terminal.explainFailure", "Terminal: Explain Last Failure", "", self.fix.explain
            ),
            Command("terminal.fixFailure", "Terminal: Fix Last Failure", "", self.fix.fix),
        ]

    def command_finished(self, record: CommandRecord) -> None:
        """A command ended in the terminal: the history learns it; a failure offers the bar."""
        self.predictor.command_ran(record)
        self.fix.command_finished(record)

    def _ask_chat(self, question: str) -> bool:
        panel = self._chat.panel
        if panel.is_streaming() or panel.is_searching():
            return False
        panel.set_edit_mode(False)
        self._chat.show()
        return bool(panel.send(question))

    def _ask_edits(self, question: str) -> bool:
        panel = self._chat.panel
        if panel.is_streaming() or panel.is_searching():
            return False
        self._edit_set.start()  # the chat in "Edit files" mode: the answer is a reviewed set
        return bool(panel.send(question))

    def shutdown(self) -> None:
        self.predictor.shutdown()


def wire_terminal(ai: TerminalAI, terminal: Any) -> None:
    """Connect the terminal panel's owner (``owners.terminal.TerminalOwner``) to ``ai``: each
    finished command from any tab, the current tab's prompt line (suggestions go back through
    the owner's ``set_suggestion``), and the failure bar shown over the terminal's tabs."""
    terminal.command_finished.connect(ai.command_finished)
    terminal.input_line_changed.connect(lambda text: ai.predictor.line_changed(terminal, text))
    ai.fix.host = lambda: terminal.tabs
