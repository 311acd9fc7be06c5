"""A disabled button looks disabled in both themes: its text is drawn greyed. In a user run
under Xvfb (dark theme) the branch preview's Keep / Discard / Open in terminal / Stop read
exactly like enabled buttons after Discard, because the app palette set every colour group
alike. Real buttons offscreen, their pixels read back."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication, QPushButton, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from app.ui.theme import apply_app_palette, theme_named


def _ink(image: QImage) -> int:
    """How far the text's strongest pixel is from the button's face (sum of channel gaps)."""
    face = image.pixelColor(4, image.height() // 2)
    far = 0
    for y in range(image.height()):
        for x in range(image.width()):
            c: QColor = image.pixelColor(x, y)
            gap = abs(c.red() - face.red()) + abs(c.green() - face.green())
            far = max(far, gap + abs(c.blue() - face.blue()))
    return far


@pytest.mark.parametrize("name", ["dark", "light"])
def test_a_disabled_button_is_greyed(qtbot: QtBot, name: str) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    apply_app_palette(app, theme_named(name))
    host = QWidget()
    qtbot.addWidget(host)
    column = QVBoxLayout(host)
    on, off = QPushButton("Keep branch"), QPushButton("Keep branch")
    off.setEnabled(False)
    column.addWidget(on)
    column.addWidget(off)
    host.show()
    qtbot.waitExposed(host)
    enabled, disabled = _ink(on.grab().toImage()), _ink(off.grab().toImage())
    assert disabled < 0.7 * enabled, (enabled, disabled)
