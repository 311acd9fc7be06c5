"""app.ui.terminal.keys: key presses as the bytes xterm sends (a table of real QKeyEvents);
app.ui.terminal.palette: the theme's colours."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent

from app.ui.terminal.keys import key_bytes

K = Qt.Key
M = Qt.KeyboardModifier
NONE, CTRL, SHIFT, ALT = M.NoModifier, M.ControlModifier, M.ShiftModifier, M.AltModifier

ROWS = [
    # key, modifiers, text, application cursor keys, bytes
    (K.Key_A, NONE, "a", False, b"a"),
    (K.Key_A, SHIFT, "A", False, b"A"),
    (K.Key_C, CTRL, "\x03", False, b"\x03"),
    (K.Key_C, CTRL, "", False, b"\x03"),  # a platform that gives no text for Ctrl+C
    (K.Key_D, CTRL, "", False, b"\x04"),
    (K.Key_BracketLeft, CTRL, "", False, b"\x1b"),
    (K.Key_Space, CTRL, "", False, b"\x00"),
    (K.Key_B, ALT, "b", False, b"\x1bb"),
    (K.Key_Return, NONE, "\r", False, b"\r"),
    (K.Key_Backspace, NONE, "\x08", False, b"\x7f"),
    (K.Key_Backspace, ALT, "", False, b"\x1b\x7f"),
    (K.Key_Tab, NONE, "\t", False, b"\t"),
    (K.Key_Backtab, SHIFT, "", False, b"\x1b[Z"),
    (K.Key_Escape, NONE, "\x1b", False, b"\x1b"),
    (K.Key_Up, NONE, "", False, b"\x1b[A"),
    (K.Key_Up, NONE, "", True, b"\x1bOA"),  # vim, less: application cursor keys
    (K.Key_Left, CTRL, "", False, b"\x1b[1;5D"),
    (K.Key_Right, SHIFT, "", True, b"\x1b[1;2C"),
    (K.Key_Home, NONE, "", False, b"\x1b[H"),
    (K.Key_End, NONE, "", True, b"\x1bOF"),
    (K.Key_Delete, NONE, "", False, b"\x1b[3~"),
    (K.Key_PageUp, NONE, "", False, b"\x1b[5~"),
    (K.Key_PageDown, CTRL, "", False, b"\x1b[6;5~"),
    (K.Key_F1, NONE, "", False, b"\x1bOP"),
    (K.Key_F5, NONE, "", False, b"\x1b[15~"),
    (K.Key_F12, SHIFT, "", False, b"\x1b[24;2~"),
    (K.Key_Eacute, NONE, "é", False, "é".encode()),
    (K.Key_Shift, SHIFT, "", False, b""),
]


@pytest.mark.parametrize(("key", "mods", "text", "app_cursor", "expected"), ROWS)
def test_keys(key: K, mods: M, text: str, app_cursor: bool, expected: bytes) -> None:
    event = QKeyEvent(QEvent.Type.KeyPress, key, mods, text)
    assert key_bytes(event, app_cursor) == expected


def test_the_palette_is_the_themes() -> None:
    from app.ui.terminal.palette import ANSI_DARK, TerminalPalette
    from app.ui.theme import theme_named

    palette = TerminalPalette(theme_named("dark"))
    default = palette.foreground
    assert palette.color("default", default) is default
    assert palette.color("red", default).name() == ANSI_DARK[1]
    assert palette.color("brightblue", default).name() == ANSI_DARK[12]
    assert palette.color("cd0000", default).name() == ANSI_DARK[1]  # 38;5;1
    assert palette.color("123456", default).name() == "#123456"  # truecolour
    assert palette.color("bogus", default) is default
