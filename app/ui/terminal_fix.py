""" "Explain" and "Fix" for a failed terminal command (issue 17).

- ``FailureBar``: the small bar over the terminal after a command fails ("✕ pytest -q exited
  with 1", Explain, Fix, close): laid over the top right of the terminal's tabs (``host``),
  following its size; hidden by the next command that succeeds.
- ``TerminalFix``: the last failure and the two flows. The context (``build_fix_context``:
  the output's tail, the named files' windows, confined to the workspace) is built on a
  worker (it reads files), then:
  - Explain asks the chat (``Chat``'s panel, "Edit files" off) the question with that
    context quoted as data;
  - Fix sends it through the multi-file edit flow (``EditSetOwner.start``: the chat's "Edit
    files" mode, the service's Edits RPC with the named files mentioned, so sent editable):
    the answer is checked in the shadow and opens in the review; nothing is applied before
    the user accepts it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, QRect, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabWidget,
    QToolButton,
    QWidget,
)

from forecode_core.terminal.fix_context import (
    FixContext,
    build_fix_context,
    explain_question,
    fix_question,
)
from forecode_core.terminal.records import CommandRecord

from .tasks import BackgroundTask

__all__ = ["FailureBar", "TerminalFix"]


class FailureBar(QWidget):
    """The bar a failed command shows over the terminal."""

    explain = Signal()
    fix = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("terminalFailureBar")
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 2, 6, 2)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.explain_button = QPushButton("Explain")
        self.fix_button = QPushButton("Fix")
        self.explain_button.setToolTip("Ask the chat why the command failed")
        self.fix_button.setToolTip("Propose a fix as a multi-file edit, reviewed before it applies")
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Hide")
        row.addWidget(self.label, 1)
        row.addWidget(self.explain_button)
        row.addWidget(self.fix_button)
        row.addWidget(close)
        self.explain_button.clicked.connect(self.explain)
        self.fix_button.clicked.connect(self.fix)
        close.clicked.connect(self.hide)
        self.hide()

    def show_failure(self, record: CommandRecord, host: QWidget | None = None) -> None:
        """Say ``record``'s failure; over ``host`` (the terminal's tabs) when given."""
        command = record.command if len(record.command) <= 40 else record.command[:39] + "…"
        self.label.setText(f"✕ {command} exited with {record.exit_code}")
        self.label.setToolTip(record.command)
        if host is None and self.parentWidget() is None:
            return  # no terminal to lay it over (the palette's commands still work)
        old = self.parentWidget()
        if host is not None and old is not host:
            if old is not None:
                old.removeEventFilter(self)
            self.setParent(host)
            self.setAutoFillBackground(True)
            host.installEventFilter(self)
        self.show()
        self._place()

    def _place(self) -> None:
        """Over the tabs' row, right of the tabs and left of the corner's buttons (it covers
        no output there); over a plain widget, its top right."""
        host = self.parentWidget()
        if host is None:
            return
        self.adjustSize()
        hint = self.sizeHint()
        right, top, height = host.width() - 16, 4, hint.height()
        if isinstance(host, QTabWidget):
            corner = host.cornerWidget(Qt.Corner.TopRightCorner)
            right = host.width() - (corner.width() if corner is not None else 0) - 8
            top, height = 0, max(hint.height(), host.tabBar().height())
            bar = host.tabBar()
            last = bar.tabRect(bar.count() - 1) if bar.count() else bar.rect().topLeft()
            edge = last.topRight() if isinstance(last, QRect) else last
            left = bar.mapTo(host, edge).x() + 8
            if right - left < hint.width():  # no room beside the tabs: over the output
                top, height = host.tabBar().height() + 4, hint.height()
        width = min(hint.width(), host.width())
        self.setGeometry(right - width, top, width, height)
        self.raise_()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parentWidget() and event.type() == QEvent.Type.Resize:
            self._place()
        return False


class TerminalFix(QObject):
    """``root()``: the workspace folder or None; ``ask_chat(question)`` / ``ask_edits(question)``
    send a question to the chat / the "Edit files" flow and say whether it was sent."""

    message = Signal(str, int)
    sent = Signal(str, str)  # (kind: "explain" | "fix", the question), once it is on its way

    def __init__(
        self,
        root: Callable[[], str | os.PathLike[str] | None],
        ask_chat: Callable[[str], bool],
        ask_edits: Callable[[str], bool],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._root = root
        self._ask = {"explain": ask_chat, "fix": ask_edits}
        self.last_failure: CommandRecord | None = None
        # where the bar shows: the terminal's tabs (``wire_terminal`` sets it), else alone
        self.host: Callable[[], QWidget | None] = lambda: None
        self.bar = FailureBar()
        self.bar.explain.connect(self.explain)
        self.bar.fix.connect(self.fix)
        self._task = BackgroundTask(self)
        self._task.done.connect(self._on_context)
        self._task.failed.connect(
            lambda m: self.message.emit(f"The failure's context could not be read: {m}", 10000)
        )

    def command_finished(self, record: CommandRecord) -> None:
        if record.failed:
            self.last_failure = record
            self.bar.show_failure(record, self.host())
        elif record.exit_code == 0:
            self.bar.hide()

    def explain(self) -> None:
        self._start("explain")

    def fix(self) -> None:
        self._start("fix")

    def _start(self, kind: str) -> None:
        record, root = self.last_failure, self._root()
        if record is None:
            self.message.emit("No command has failed in the terminal.", 5000)
            return
        if root is None:
            self.message.emit("Explain and Fix need a folder open.", 5000)
            return

        def build(_cancel: threading.Event) -> tuple[str, FixContext]:
            return kind, build_fix_context(record, root)

        self._task.start(build)

    def _on_context(self, result: Any) -> None:
        kind, ctx = result
        question = explain_question(ctx) if kind == "explain" else fix_question(ctx)
        if not self._ask[kind](question):
            self.message.emit("The chat is busy: try again when its answer ends.", 8000)
            return
        self.bar.hide()
        self.sent.emit(kind, question)
