"""The hover's call tip (the language servers' hover text, a squiggle's message, a likely bug's
explanation) takes the editor's theme: in the dark theme it was Scintilla's default white box
with gray text over the dark code (seen in a user run). Real editor offscreen; the tip is
Scintilla's own popup, found among the top-level widgets and grabbed."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from app.ui.editor import CodeEditor
from app.ui.theme import DARK, LIGHT, Theme


def _tip(qtbot: QtBot, editor: CodeEditor) -> QWidget:
    before = set(QApplication.topLevelWidgets())
    editor.callTipShow(2, "(constant) ESCAPE_DCT: dict[str, str]")
    qtbot.waitUntil(
        lambda: any(w.isVisible() for w in QApplication.topLevelWidgets() if w not in before),
        timeout=3000,
    )
    return next(w for w in QApplication.topLevelWidgets() if w not in before and w.isVisible())


@pytest.mark.parametrize("theme", [DARK, LIGHT], ids=lambda t: t.name)
def test_the_call_tip_has_the_theme_colours(qtbot: QtBot, theme: Theme) -> None:
    editor = CodeEditor()
    qtbot.addWidget(editor)
    editor.resize(600, 300)
    editor.setText("value = 1\n")
    editor.apply_theme(theme)
    editor.show()
    image = _tip(qtbot, editor).grab().toImage()
    inside = QColor(image.pixel(image.width() - 4, image.height() // 2))  # past the text
    assert inside.name() == QColor(theme.ui_window).name()
    # the text is drawn in the theme's text colour (its brightest / darkest pixels)
    pixels = [QColor(image.pixel(x, image.height() // 2)) for x in range(image.width() // 2)]
    ink = (
        max(pixels, key=lambda c: c.lightness())
        if theme.dark
        else min(pixels, key=lambda c: c.lightness())
    )
    assert abs(ink.lightness() - QColor(theme.ui_text).lightness()) < 40
