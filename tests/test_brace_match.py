"""Brace matching next to non-ASCII text (issue 13, point 12), on the real widget offscreen.

Scintilla's SCI_GETCHARAT returns a *signed* char, so each byte of a UTF-8 character is
negative; ``-61 in b"()"`` raised ``ValueError: byte must be in range(0, 256)`` in the
update-UI handler (six tracebacks in one sitting). Every caret position of the sample is
visited; pytest-qt fails the test on an exception raised in a slot.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.ui.editor import CodeEditor

SAMPLE = "é(ü)ö [日本] {ß}\nx = ('ä', \"€\"){😀}\n«(»)"
PAIRS = {"(": ")", "[": "]", "{": "}"}


def _expected_pairs(text: str) -> dict[int, int]:
    """Byte offset of each brace → byte offset of its partner (the sample has no strings that
    hide braces from the plain-text lexer)."""
    data = text.encode()
    stack: list[tuple[int, int]] = []
    out: dict[int, int] = {}
    for i, b in enumerate(data):
        ch = chr(b)
        if ch in PAIRS:
            stack.append((i, b))
        elif ch in PAIRS.values():
            j, _opening = stack.pop()
            out[i], out[j] = j, i
    return out


@pytest.fixture
def editor(qtbot: QtBot) -> CodeEditor:
    ed = CodeEditor()
    qtbot.addWidget(ed)
    ed.resize(600, 200)
    ed.show()
    return ed


def test_brace_matching_at_every_caret_position_beside_non_ascii(
    qtbot: QtBot, editor: CodeEditor, monkeypatch: pytest.MonkeyPatch
) -> None:
    lit: list[tuple[int, int]] = []
    real_highlight = editor.braceHighlight
    real_bad = editor.braceBadLight

    def highlight(a: int, b: int) -> None:
        lit.append((a, b))
        real_highlight(a, b)

    def bad(a: int) -> None:
        lit.append((a, -2))
        real_bad(a)

    monkeypatch.setattr(editor, "braceHighlight", highlight)
    monkeypatch.setattr(editor, "braceBadLight", bad)
    editor.set_text(SAMPLE)
    data = SAMPLE.encode()
    pairs = _expected_pairs(SAMPLE)
    positions = [0]
    while positions[-1] < editor.textLength():
        positions.append(editor.positionAfter(positions[-1]))
    assert len(positions) == len(SAMPLE) + 1  # one caret stop per character, never mid-byte
    for pos in positions:
        lit.clear()
        editor.gotoPos(pos)
        editor._on_update_ui(0x1)  # what SCN_UPDATEUI calls; also runs from the event loop
        qtbot.wait(1)
        assert lit, f"no brace update at {pos}"
        before = data[pos - 1 : pos].decode("latin-1") if pos else ""
        after = data[pos : pos + 1].decode("latin-1")
        if before in "()[]{}" and before:
            assert lit[-1] == (pos - 1, pairs[pos - 1]), pos
        elif after in "()[]{}" and after:
            assert lit[-1] == (pos, pairs[pos]), pos
        else:
            assert lit[-1] == (-1, -1), pos


def test_typing_non_ascii_beside_a_brace_raises_nothing(qtbot: QtBot, editor: CodeEditor) -> None:
    editor.set_text("f()")
    editor.gotoPos(2)
    editor.focus()
    for ch in "ñé日":  # QTest.keyClicks aborts on characters without a Qt key code
        for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
            QApplication.sendEvent(editor, QKeyEvent(kind, 0, Qt.KeyboardModifier.NoModifier, ch))
    editor.gotoPos(len("f(ñé日".encode()))
    qtbot.wait(20)
    assert editor.text() == "f(ñé日)"
