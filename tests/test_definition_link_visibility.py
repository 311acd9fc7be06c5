"""Ctrl+click's link underline (indicator 24) stays visible on the caret line and in a selection.

The link underline was drawn *under* the text, where Scintilla paints the caret line's and the
selection's opaque backgrounds over it: Ctrl+hover over a name on the line being edited showed
no underline (the squiggles' bug, fixed in bafc1cd). Each test moves the pointer with Ctrl held
over a name on the caret line and over one elsewhere on the real editor offscreen, grabs the
viewport's pixels and counts the link colour on the line."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.ui.definition_link import LINK_COLOUR, DefinitionLink
from app.ui.editor import CodeEditor
from tests.helpers.pixels import pixels_on_line
from tests.helpers.window import folder_window

TEXT = "alpha_value = 1\n\nbeta_value = 2\n"


def _ctrl_hover(qtbot: QtBot, editor: CodeEditor, line: int) -> int:
    """Ctrl held, the pointer over the line's first name: the link colour's pixels on it."""
    position = editor.positionFromLine(line) + 2
    point = QPoint(
        editor.pointXFromPosition(position) + 2,
        editor.pointYFromPosition(position) + editor.textHeight(line) // 2,
    )
    move = QMouseEvent(
        QEvent.Type.MouseMove,
        QPointF(point),
        QPointF(point),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.ControlModifier,
    )
    QApplication.sendEvent(editor.viewport(), move)
    qtbot.wait(50)
    return pixels_on_line(editor, editor.viewport().grab().toImage(), line, LINK_COLOUR)


def test_the_link_underline_shows_on_the_caret_line_and_in_a_selection(
    qtbot: QtBot, tmp_path: Path
) -> None:
    (tmp_path / "mod.py").write_text(TEXT)
    win = folder_window(qtbot, tmp_path)
    doc = win.open_file(tmp_path / "mod.py")
    assert doc is not None
    editor = doc.editor
    link = DefinitionLink(editor, lambda _position: None)
    editor.gotoPos(3)  # the caret on line 1
    elsewhere = _ctrl_hover(qtbot, editor, 2)
    assert link.span is not None and elsewhere > 10  # drawn where the caret is not
    on_caret = _ctrl_hover(qtbot, editor, 0)
    assert link.span == (0, len("alpha_value"))
    assert on_caret > elsewhere // 2, (on_caret, elsewhere)
    editor.setSelection(editor.lineEndPosition(0), 0)  # line 1 selected
    _ctrl_hover(qtbot, editor, 2)
    on_selection = _ctrl_hover(qtbot, editor, 0)
    assert on_selection > elsewhere // 2, (on_selection, elsewhere)
