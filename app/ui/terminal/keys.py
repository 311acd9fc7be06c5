"""Qt key presses as the bytes a terminal sends (xterm's encoding)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent

__all__ = ["key_bytes"]

K = Qt.Key
_CURSOR = {K.Key_Up: "A", K.Key_Down: "B", K.Key_Right: "C", K.Key_Left: "D"}
_TILDE = {
    K.Key_Insert: "2",
    K.Key_Delete: "3",
    K.Key_PageUp: "5",
    K.Key_PageDown: "6",
    K.Key_F5: "15",
    K.Key_F6: "17",
    K.Key_F7: "18",
    K.Key_F8: "19",
    K.Key_F9: "20",
    K.Key_F10: "21",
    K.Key_F11: "23",
    K.Key_F12: "24",
}
_SS3 = {K.Key_F1: "P", K.Key_F2: "Q", K.Key_F3: "R", K.Key_F4: "S"}
_PLAIN = {
    K.Key_Return: b"\r",
    K.Key_Enter: b"\r",
    K.Key_Backspace: b"\x7f",
    K.Key_Tab: b"\t",
    K.Key_Backtab: b"\x1b[Z",
    K.Key_Escape: b"\x1b",
}


def _modifier_code(mods: Qt.KeyboardModifier) -> int:
    code = 1
    if mods & Qt.KeyboardModifier.ShiftModifier:
        code += 1
    if mods & Qt.KeyboardModifier.AltModifier:
        code += 2
    if mods & Qt.KeyboardModifier.ControlModifier:
        code += 4
    return code


def _special(key: int, mods: Qt.KeyboardModifier, app_cursor: bool) -> bytes | None:
    code = _modifier_code(mods)
    if key in _CURSOR or key in (K.Key_Home, K.Key_End):
        final = _CURSOR.get(K(key)) or ("H" if key == K.Key_Home else "F")
        if code > 1:
            return f"\x1b[1;{code}{final}".encode()
        return f"\x1bO{final}".encode() if app_cursor else f"\x1b[{final}".encode()
    if key in _TILDE:
        number = _TILDE[K(key)]
        return (f"\x1b[{number};{code}~" if code > 1 else f"\x1b[{number}~").encode()
    if key in _SS3:
        final = _SS3[K(key)]
        return (f"\x1b[1;{code}{final}" if code > 1 else f"\x1bO{final}").encode()
    if key in _PLAIN:
        plain = _PLAIN[K(key)]
        return b"\x1b" + plain if mods & Qt.KeyboardModifier.AltModifier else plain
    return None


def key_bytes(event: QKeyEvent, app_cursor: bool = False) -> bytes:
    """What the shell reads for ``event``; b"" for a key that sends nothing (a lone Shift)."""
    key, mods = event.key(), event.modifiers()
    special = _special(key, mods, app_cursor)
    if special is not None:
        return special
    ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
    alt = bool(mods & Qt.KeyboardModifier.AltModifier)
    if ctrl and K.Key_A <= key <= K.Key_Z:
        out = bytes([key - K.Key_A + 1])
    elif ctrl and key in (K.Key_BracketLeft, K.Key_Backslash, K.Key_BracketRight):
        out = bytes([0x1B + (key - K.Key_BracketLeft)])
    elif ctrl and key in (K.Key_Space, K.Key_At, K.Key_2):
        out = b"\x00"
    else:
        out = event.text().encode("utf-8")
    return b"\x1b" + out if alt and out else out
