"""The Qt side of auto-closing brackets and quotes: keys typed in a ``CodeEditor`` go through
``app.core.autoclose`` first.

``AutoClose`` is an event filter on the editor. It keeps the byte positions of the closers it
inserted (shifted on every insert and delete, dropped when the caret leaves them behind or goes
to another line): only those are stepped over by typing the closer, or deleted with their
opener by Backspace, as VS Code's "auto" overtype/delete. Typing with several carets, in a
read-only buffer or with Ctrl/Alt held is left to Scintilla.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent

from app.core.autoclose import on_backspace, on_char, on_enter, rules_for, wrap

if TYPE_CHECKING:
    from .editor import CodeEditor

__all__ = ["AutoClose"]

SC_MOD_INSERTTEXT, SC_MOD_DELETETEXT = 0x1, 0x2
SC_UPDATE_SELECTION = 0x2
_TYPING_MODS = (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ShiftModifier,
                Qt.KeyboardModifier.KeypadModifier)


class AutoClose(QObject):
    def __init__(self, editor: CodeEditor) -> None:
        super().__init__(editor)
        self.editor = editor
        self.brackets = True  # editor.autoClosingBrackets
        self.quotes = True  # editor.autoClosingQuotes
        self.pending: list[int] = []  # positions of the closers inserted here, still tracked
        editor.installEventFilter(self)
        editor.modified.connect(self._on_modified)
        editor.updateUi.connect(self._on_update_ui)

    def configure(self, *, brackets: bool, quotes: bool) -> None:
        self.brackets, self.quotes = brackets, quotes

    # ----- tracking the auto-inserted closers -----------------------------------------------
    def _on_modified(self, flags: int, position: int, length: int, *_rest: object) -> None:
        if not self.pending:
            return
        flags, position, length = int(flags), int(position), int(length)
        if flags & SC_MOD_INSERTTEXT:
            self.pending = [p + length if p >= position else p for p in self.pending]
        elif flags & SC_MOD_DELETETEXT:
            end = position + length
            self.pending = [p - length if p >= end else p for p in self.pending
                            if not position <= p < end]

    def _on_update_ui(self, updated: int) -> None:
        if self.pending and int(updated) & SC_UPDATE_SELECTION:
            ed = self.editor
            caret = ed.currentPos()
            line = ed.lineFromPosition(caret)
            self.pending = [p for p in self.pending
                            if p >= caret and ed.lineFromPosition(p) == line]

    # ----- keys ------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (watched is not self.editor or event.type() != QEvent.Type.KeyPress
                or not isinstance(event, QKeyEvent) or not (self.brackets or self.quotes)):
            return False
        ed = self.editor
        if ed.readOnly() or ed.selections() != 1 or event.modifiers() not in _TYPING_MODS:
            return False
        key = event.key()
        if key == Qt.Key.Key_Backspace:
            return self._backspace()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            return self._enter()
        text = event.text()
        if len(text) != 1:
            return False
        return self._type(text)

    def _around_caret(self) -> tuple[int, str, str]:
        ed = self.editor
        pos = ed.currentPos()
        line = ed.lineFromPosition(pos)
        start, end = ed.positionFromLine(line), ed.lineEndPosition(line)
        before = bytes(ed.textRange(start, pos).data()).decode("utf-8", "replace")
        after = bytes(ed.textRange(pos, end).data()).decode("utf-8", "replace")
        return pos, before, after

    def _type(self, ch: str) -> bool:
        ed = self.editor
        rules = rules_for(ed.language.id)
        if not ed.selectionEmpty():
            start, end = ed.selectionStart(), ed.selectionEnd()
            selected = bytes(ed.textRange(start, end).data()).decode("utf-8", "replace")
            wrapped = wrap(ch, selected, rules, brackets=self.brackets, quotes=self.quotes)
            if wrapped is None:
                return False
            ed.beginUndoAction()
            ed.replaceSel(wrapped)
            ed.endUndoAction()
            inner = start + len(ch.encode())
            ed.setSelection(inner + (end - start), inner)  # the wrapped text stays selected
            return True
        pos, before, after = self._around_caret()
        typed = on_char(ch, before, after, rules, brackets=self.brackets, quotes=self.quotes,
                        over_auto_closer=pos in self.pending)
        if typed is None:
            return False
        if typed.skip:
            self.pending.remove(pos)
            ed.gotoPos(pos + len(after[:typed.skip].encode()))
            return True
        ed.beginUndoAction()
        ed.insertText(pos, typed.insert)
        ed.endUndoAction()
        closer = pos + len(typed.insert[:typed.caret].encode())
        ed.gotoPos(closer)
        self.pending.append(closer)
        return True

    def _backspace(self) -> bool:
        ed = self.editor
        if not ed.selectionEmpty():
            return False
        pos, before, after = self._around_caret()
        if not on_backspace(before, after, rules_for(ed.language.id),
                            over_auto_closer=pos in self.pending):
            return False
        opener = len(before[-1].encode())
        ed.beginUndoAction()
        ed.deleteRange(pos - opener, opener + len(after[0].encode()))
        ed.endUndoAction()
        return True

    def _enter(self) -> bool:
        ed = self.editor
        if not ed.selectionEmpty() or not self.brackets:
            return False
        pos, before, after = self._around_caret()
        if not on_enter(before, after):
            return False
        line = ed.lineFromPosition(pos)
        base = ed.lineIndentation(line)
        eol = {0: "\r\n", 1: "\r", 2: "\n"}[ed.eOLMode()]

        def indent(columns: int) -> str:
            if ed.insert_spaces:
                return " " * columns
            return "\t" * (columns // ed.tab_size) + " " * (columns % ed.tab_size)

        gap = len(after) - len(after.lstrip(" \t"))  # blanks before the closer go
        first = eol + indent(base + ed.tab_size)
        ed.beginUndoAction()
        ed.deleteRange(pos, gap)
        ed.insertText(pos, first + eol + indent(base))
        ed.endUndoAction()
        ed.gotoPos(pos + len(first.encode()))
        return True
