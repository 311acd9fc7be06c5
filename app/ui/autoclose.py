"""The Qt side of auto-closing brackets and quotes: keys typed in a ``CodeEditor`` go through
``forecode_core.text.autoclose`` first.

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

from forecode_core.text.autoclose import on_backspace, on_char, on_enter, rules_for, wrap

if TYPE_CHECKING:
    from .editor import CodeEditor

__all__ = ["AutoClose"]

SC_MOD_INSERTTEXT, SC_MOD_DELETETEXT = 0x1, 0x2
SC_UPDATE_SELECTION = 0x2
MAX_CARETS = 1000  # more carets than this type as Scintilla does
_TYPING_MODS = (
    Qt.KeyboardModifier.NoModifier,
    Qt.KeyboardModifier.ShiftModifier,
    Qt.KeyboardModifier.KeypadModifier,
)


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
            self.pending = [
                p - length if p >= end else p for p in self.pending if not position <= p < end
            ]

    def _on_update_ui(self, updated: int) -> None:
        if self.pending and int(updated) & SC_UPDATE_SELECTION:
            ed = self.editor
            first_caret: dict[int, int] = {}  # line -> its leftmost caret
            for i in range(ed.selections()):
                caret = ed.selectionNCaret(i)
                line = ed.lineFromPosition(caret)
                first_caret[line] = min(caret, first_caret.get(line, caret))
            self.pending = [
                p for p in self.pending if first_caret.get(ed.lineFromPosition(p), p + 1) <= p
            ]

    # ----- keys ------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is not self.editor
            or event.type() != QEvent.Type.KeyPress
            or not isinstance(event, QKeyEvent)
            or not (self.brackets or self.quotes)
        ):
            return False
        ed = self.editor
        if ed.readOnly() or event.modifiers() not in _TYPING_MODS:
            return False
        key = event.key()
        single = ed.selections() == 1
        if key == Qt.Key.Key_Backspace:
            return single and self._backspace()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            return single and self._enter()
        text = event.text()
        if len(text) != 1 or ed.selections() > MAX_CARETS:
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

    def _line_around(self, pos: int) -> tuple[str, str]:
        ed = self.editor
        line = ed.lineFromPosition(pos)
        start, end = ed.positionFromLine(line), ed.lineEndPosition(line)
        return (
            bytes(ed.textRange(start, pos).data()).decode("utf-8", "replace"),
            bytes(ed.textRange(pos, end).data()).decode("utf-8", "replace"),
        )

    def _type(self, ch: str) -> bool:
        """``ch`` typed at every caret (one or many, as VS Code): pairs, step-overs or wraps,
        only when every caret agrees; otherwise Scintilla types it as usual."""
        ed = self.editor
        rules = rules_for(ed.language.id)
        main = ed.mainSelection()
        order = sorted(
            range(ed.selections()), key=lambda i: (ed.selectionNStart(i), ed.selectionNEnd(i))
        )
        ranges = [(ed.selectionNStart(i), ed.selectionNEnd(i)) for i in order]
        width = len(ch.encode())
        # (start, end, replacement, caret offset in it, skip over, a closer to track)
        edits: list[tuple[int, int, str, int, int, bool]] = []
        if all(s < e for s, e in ranges):
            for s, e in ranges:
                selected = bytes(ed.textRange(s, e).data()).decode("utf-8", "replace")
                wrapped = wrap(ch, selected, rules, brackets=self.brackets, quotes=self.quotes)
                if wrapped is None:
                    return False
                edits.append((s, e, wrapped, -1, 0, False))
        elif all(s == e for s, e in ranges):
            for s, _e in ranges:
                before, after = self._line_around(s)
                typed = on_char(
                    ch,
                    before,
                    after,
                    rules,
                    brackets=self.brackets,
                    quotes=self.quotes,
                    over_auto_closer=s in self.pending,
                )
                if typed is None:
                    return False
                skip = len(after[: typed.skip].encode())
                edits.append(
                    (s, s, typed.insert, len(typed.insert[: typed.caret].encode()), skip, not skip)
                )
            if len({skip > 0 for *_x, skip, _t in edits}) != 1:
                return False
        else:
            return False
        ed.beginUndoAction()
        for s, e, text, _c, skip, _t in reversed(edits):
            if not skip:
                ed.setTargetRange(s, e)
                ed.replaceTarget(-1, text)
        ed.endUndoAction()
        selections: list[tuple[int, int]] = []  # (anchor, caret) after the edits
        delta = 0
        for s, e, text, caret, skip, track in edits:
            if skip:
                if s in self.pending:
                    self.pending.remove(s)
                selections.append((s + delta + skip, s + delta + skip))
                continue
            start = s + delta
            if caret < 0:  # a wrap: the wrapped text stays selected
                selections.append((start + width, start + width + (e - s)))
            else:
                selections.append((start + caret, start + caret))
                if track:  # every closer inserted ('"""' has three): each is stepped over
                    self.pending.extend(range(start + caret, start + len(text.encode())))
            delta += len(text.encode()) - (e - s)
        (anchor, caret), *rest = selections
        ed.setSelection(caret, anchor)
        for anchor, caret in rest:
            ed.addSelection(caret, anchor)
        ed.setMainSelection(order.index(main))
        ed.scrollCaret()
        return True

    def _backspace(self) -> bool:
        ed = self.editor
        if not ed.selectionEmpty():
            return False
        pos, before, after = self._around_caret()
        if not on_backspace(
            before, after, rules_for(ed.language.id), over_auto_closer=pos in self.pending
        ):
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
