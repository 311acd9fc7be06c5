"""The chat's "Edit files" toggle shows when it is on.

In a user run (dark theme, Xvfb) the checked button was drawn a shade darker than the
unchecked one (Fusion: #2b2c2f against #35363a), so the only sign that questions went to the
multi-file Edits RPC was the input's placeholder, hidden as soon as one types. On, the button
now wears the selection colour; off, it looks like the panel's other buttons. Real window
and chat panel offscreen; the buttons are grabbed and their pixels read back."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from tests.helpers.window import folder_window


def _middle(image: QImage) -> QColor:
    return image.pixelColor(image.width() // 2, 3)


def _distance(a: QColor, b: QColor) -> int:
    return abs(a.red() - b.red()) + abs(a.green() - b.green()) + abs(a.blue() - b.blue())


def test_the_edit_files_button_on_is_plainly_not_off(qtbot: QtBot, tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    win = folder_window(qtbot, tmp_path)
    panel = win.chat_panel
    button = panel.edit_files_button
    button.setChecked(False)
    off = _middle(button.grab().toImage())
    button.click()
    assert panel.edit_mode and button.isChecked()
    on = _middle(button.grab().toImage())
    highlight = QApplication.palette().color(QPalette.ColorRole.Highlight)
    assert _distance(on, off) > 90, (on.name(), off.name())
    assert 2 * _distance(on, highlight) < _distance(on, off), (on.name(), highlight.name())
    button.click()  # off again: the theme's button, not a light one (a style sheet kept the
    # palette of when it was polished, and the button stayed light grey in the dark window)
    off = _middle(button.grab().toImage())
    theirs = _middle(panel.mention_button.grab().toImage())
    assert _distance(off, theirs) < 12, (off.name(), theirs.name())
