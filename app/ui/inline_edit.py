"""Inline edit: Ctrl+K on a selection opens a one-line prompt at the selection; the instruction
typed there (Enter) asks the model to rewrite the selected code, and the result is reviewed like
any apply (``ApplyReview``): the request is the whole file as ``original``, the selected lines
as ``block`` (``selection_block``: whole lines, widened only as far as needed to occur once in
the file) and the instruction. The model path rewrites exactly those lines
(``forecode_core.apply.windows``: an instruction's window is its selection), never the file.

The prompt floats in the editor's viewport just below the selection (above it when the
selection ends at the bottom of the view), over the code, without touching the buffer. Esc (or
an empty Enter) closes it and gives the focus back to the editor.
"""

from __future__ import annotations

import contextlib

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QLineEdit

from forecode_core.apply.windows import unique_selection

from .editor import CodeEditor
from .theme import Theme

__all__ = ["InlineEditPrompt"]


class InlineEditPrompt(QFrame):
    """The instruction box of one inline edit, at ``editor``'s selection."""

    submitted = Signal(str)  # the instruction
    closed = Signal()

    def __init__(self, editor: CodeEditor, theme: Theme) -> None:
        super().__init__(editor.viewport())
        self.setObjectName("InlineEditPrompt")
        self.editor = editor
        self._closed = False
        self.first_line = editor.lineFromPosition(editor.selectionStart())
        end = editor.selectionEnd()
        last = editor.lineFromPosition(end)
        if last > self.first_line and end == editor.positionFromLine(last):
            last -= 1  # a selection ending at column 0 does not include that line
        self.last_line = last
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.setSpacing(6)
        self.label = QLabel("Edit")
        self.input = QLineEdit()
        lines = last - self.first_line + 1
        self.input.setPlaceholderText(
            f"Describe the change to the {lines} selected line{'s' if lines != 1 else ''}"
            " — Enter to review, Esc to cancel"
        )
        self.input.setClearButtonEnabled(True)
        self.input.installEventFilter(self)
        self.input.returnPressed.connect(self._submit)
        layout.addWidget(self.label)
        layout.addWidget(self.input, 1)
        border = "#3794ff" if theme.dark else "#0969da"
        back = "#25262a" if theme.dark else "#f3f3f3"
        self.setStyleSheet(
            f"#InlineEditPrompt {{ background: {back}; border: 1px solid "
            f"{border}; border-radius: 5px; }}"
        )
        editor.updateUi.connect(self._follow)
        editor.resized.connect(self._follow)

    def selection_block(self) -> str:
        """The block an inline edit sends: the selected lines, whole, found once in the file
        (widened by a line at a time where the same lines occur elsewhere)."""
        return unique_selection(self.editor.text(), self.first_line, self.last_line)

    def open(self) -> None:
        self.show()
        self.raise_()
        self._follow()
        self.input.setFocus()

    def _follow(self, *_args: object) -> None:
        ed = self.editor
        viewport = ed.viewport()
        margin = sum(ed.marginWidthN(i) for i in range(5))
        # Inside the view's right edge even when the view is narrow (a big scale, the chat
        # open): wider than the view, the box and its text were cut off.
        avail = viewport.width()
        width = min(720, max(160, avail - margin - 24), avail - 4)
        x = min(margin + 8, max(0, avail - width - 4))
        self.resize(max(0, width), self.sizeHint().height())
        below = ed.pointYFromPosition(ed.positionFromLine(self.last_line)) + ed.textHeight(
            self.last_line
        )
        y = below + 2
        if y + self.height() > viewport.height():
            above = ed.pointYFromPosition(ed.positionFromLine(self.first_line))
            y = max(0, above - self.height() - 2)
        self.move(x, y)

    def _submit(self) -> None:
        text = self.input.text().strip()
        if not text:
            self.close_prompt()
            return
        self.submitted.emit(text)
        self.close_prompt(focus_editor=False)

    def close_prompt(self, *, focus_editor: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        self.hide()
        with contextlib.suppress(RuntimeError, TypeError):
            self.editor.updateUi.disconnect(self._follow)
            self.editor.resized.disconnect(self._follow)
        if focus_editor:
            self.editor.focus()
        self.closed.emit()
        self.deleteLater()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        # Keys the line edit leaves (Enter after returnPressed, Up, Page Down...) must not
        # fall through to the editor under the prompt: it would type into the buffer.
        event.accept()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.input
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Escape
        ):
            self.close_prompt()
            return True
        return super().eventFilter(watched, event)
