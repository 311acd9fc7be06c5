"""Ctrl+Right / Ctrl+Shift+Right move and select to the end of the word, as in VS Code on
Windows and Linux (Scintilla's default goes to the next word's start: selecting a name with
Ctrl+Shift+Right then typing a new one ate the space after it). Real widget, offscreen."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.ui.editor import CodeEditor

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier


def editor(qtbot: QtBot, text: str) -> CodeEditor:
    ed = CodeEditor()
    qtbot.addWidget(ed)
    ed.show()
    ed.setText(text)
    ed.gotoPos(0)
    ed.focus()
    return ed


def test_ctrl_right_goes_to_the_end_of_the_word(qtbot: QtBot) -> None:
    ed = editor(qtbot, "words = text.split()")
    qtbot.keyClick(ed, Qt.Key.Key_Right, CTRL)
    assert ed.currentPos() == len("words")
    qtbot.keyClick(ed, Qt.Key.Key_Right, CTRL)
    assert ed.currentPos() == len("words =")


def test_ctrl_shift_right_selects_the_word_and_typing_keeps_the_space(qtbot: QtBot) -> None:
    ed = editor(qtbot, "words = text.split()")
    qtbot.keyClick(ed, Qt.Key.Key_Right, CTRL | SHIFT)
    assert (ed.selectionStart(), ed.selectionEnd()) == (0, len("words"))
    qtbot.keyClicks(ed, "tokens")
    assert ed.text() == "tokens = text.split()"
