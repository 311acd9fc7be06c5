"""The terminal's colours from the editor's theme: its background and foreground, 16 ANSI
colours chosen for the dark or the light theme, xterm's 256-colour cube and grey ramp (pyte
gives those and truecolour as ``rrggbb``)."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtGui import QColor
from pyte.graphics import FG_BG_256

from ..theme import Theme

__all__ = ["ANSI_DARK", "ANSI_LIGHT", "TerminalPalette"]

_NAMES = ("black", "red", "green", "brown", "blue", "magenta", "cyan", "white")
ANSI_DARK = (
    *("#1e1f22", "#e06c75", "#98c379", "#d7ba7d", "#569cd6", "#c586c0", "#4ec9b0", "#cccccc"),
    *("#6e7681", "#f48771", "#b5e890", "#f0d58a", "#7ab8f5", "#e0a7db", "#7fe0cc", "#ffffff"),
)
ANSI_LIGHT = (
    *("#000000", "#c72e2e", "#1f7a1f", "#8a6d00", "#0451a5", "#a0289f", "#0f7b8a", "#6e6e6e"),
    *("#5a5a5a", "#e03e3e", "#2d9d2d", "#b08a00", "#2b6fd6", "#bc05bc", "#0598bc", "#a5a5a5"),
)


class TerminalPalette:
    def __init__(self, theme: Theme) -> None:
        self.background = QColor(theme.background)
        self.foreground = QColor(theme.foreground)
        self.selection = QColor(theme.selection)
        self.ghost = QColor(theme.margin_fore)
        self.cursor = QColor(theme.caret)
        ansi = ANSI_DARK if theme.dark else ANSI_LIGHT
        self._named: dict[str, QColor] = {}
        for i, name in enumerate(_NAMES):
            self._named[name] = QColor(ansi[i])
            self._named["bright" + name] = QColor(ansi[i + 8])
        self._named["yellow"] = self._named["brown"]
        # pyte gives 256-colour indexes 0-15 as xterm's hex values: the theme's colours instead
        # (a truecolour of exactly those values is drawn the same way)
        for i, value in enumerate(FG_BG_256[:16]):
            self._named[value] = QColor(ansi[i])

    def color(self, name: str, default: QColor) -> QColor:
        if name == "default":
            return default
        named = self._named.get(name)
        if named is not None:
            return named
        return _hex(name) if len(name) == 6 else default


@lru_cache(maxsize=4096)
def _hex(value: str) -> QColor:
    color = QColor("#" + value)
    return color if color.isValid() else QColor("#ff00ff")
