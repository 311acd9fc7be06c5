"""Counting an indicator's colour in a grab of a real editor's viewport (offscreen): the pixel
tests of squiggles and of Ctrl+click's link underline."""

from __future__ import annotations

from PySide6.QtGui import QColor, QImage

from app.ui.editor import CodeEditor


def near(colour: QColor, bgr: int) -> bool:
    """``colour`` within 40 of Scintilla's ``bgr`` (0xBBGGRR) in each channel."""
    red, green, blue = bgr & 0xFF, (bgr >> 8) & 0xFF, (bgr >> 16) & 0xFF
    return (
        abs(colour.red() - red) < 40
        and abs(colour.green() - green) < 40
        and abs(colour.blue() - blue) < 40
    )


def pixels_on_line(editor: CodeEditor, image: QImage, line: int, bgr: int) -> int:
    """How many pixels of ``line``'s band in ``image`` (a grab of the viewport) are ``bgr``."""
    top = editor.pointYFromPosition(editor.positionFromLine(line))
    count = 0
    for y in range(max(0, top), min(image.height(), top + editor.textHeight(line))):
        for x in range(image.width()):
            if near(QColor(image.pixel(x, y)), bgr):
                count += 1
    return count
