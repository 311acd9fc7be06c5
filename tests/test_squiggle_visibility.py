"""Squiggles stay visible where the user looks: on the caret's line and inside a selection.

A user who types a type error sees the caret line; Scintilla paints the caret line's and the
selection's backgrounds over indicators drawn *under* the text, so the language servers'
squiggles (and the bug finder's dashed underline) vanished from exactly the line just typed
(seen in a real session on a copy of the stdlib's json/encoder.py: the error in the Problems
panel, no squiggle on its line until the caret left it). Each test grabs the real editor's
pixels offscreen and counts the indicator's colour on the caret line."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from app.ui.document import Document
from app.ui.editor import CodeEditor
from app.ui.owners.bug_finder import BUG_BGR, BUG_INDICATOR
from app.ui.owners.language import INDICATORS, LanguageController
from forecode_core.lsp.diagnostics import Severity
from tests.helpers.pixels import pixels_on_line
from tests.helpers.window import folder_window

TEXT = "value = count + 'x'\n\nother = count + 'x'\n"


def _open(qtbot: QtBot, tmp_path: Path) -> Document:
    (tmp_path / "mod.py").write_text(TEXT)
    win = folder_window(qtbot, tmp_path)
    doc = win.open_file(tmp_path / "mod.py")
    assert doc is not None
    return doc


def _underline(editor: CodeEditor, indicator: int) -> None:
    """Lines 1 and 3 from their first character to their end, as the owners paint them."""
    editor.setIndicatorCurrent(indicator)
    for line in (0, 2):
        start = editor.positionFromLine(line)
        editor.indicatorFillRange(start, editor.lineEndPosition(line) - start)


def _caret_and_other(qtbot: QtBot, editor: CodeEditor, bgr: int) -> tuple[int, int]:
    qtbot.wait(50)
    image = editor.viewport().grab().toImage()
    return pixels_on_line(editor, image, 0, bgr), pixels_on_line(editor, image, 2, bgr)


def test_an_error_squiggle_shows_on_the_caret_line_and_in_a_selection(
    qtbot: QtBot, tmp_path: Path
) -> None:
    doc = _open(qtbot, tmp_path)
    editor = doc.editor
    LanguageController._style(editor)  # the language owner's squiggle styles
    indicator, _style, bgr = INDICATORS[Severity.ERROR]
    _underline(editor, indicator)
    editor.gotoPos(3)  # the caret on line 1
    on_caret, elsewhere = _caret_and_other(qtbot, editor, bgr)
    assert elsewhere > 20  # the squiggle is drawn where the caret is not
    assert on_caret > elsewhere // 2, (on_caret, elsewhere)
    editor.setSelection(editor.lineEndPosition(0), 0)  # line 1 selected
    on_selection, elsewhere = _caret_and_other(qtbot, editor, bgr)
    assert on_selection > elsewhere // 2, (on_selection, elsewhere)


def test_the_likely_bug_underline_shows_on_the_caret_line(qtbot: QtBot, tmp_path: Path) -> None:
    doc = _open(qtbot, tmp_path)
    editor = doc.editor  # styled by the bug finder when the document was added
    _underline(editor, BUG_INDICATOR)
    editor.gotoPos(3)
    on_caret, elsewhere = _caret_and_other(qtbot, editor, BUG_BGR)
    assert elsewhere > 10
    assert on_caret > elsewhere // 2, (on_caret, elsewhere)
