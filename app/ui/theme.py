"""Dark and light themes: editor colours by style category, and the Qt palette around them."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

__all__ = ["THEMES", "Theme", "apply_app_palette", "bgr", "theme_named"]


@dataclass(frozen=True)
class Theme:
    name: str
    dark: bool
    background: str
    foreground: str
    caret: str
    caret_line: str
    selection: str
    margin_back: str
    margin_fore: str
    brace_match: str
    brace_bad: str
    whitespace: str
    indent_guide: str
    find_match: str
    ui_window: str
    ui_base: str
    ui_text: str
    ui_highlight: str
    categories: dict[str, tuple[str, bool, bool]]  # category -> (colour, bold, italic)


def bgr(colour: str) -> int:
    """Scintilla colours are 0xBBGGRR integers; themes are written as "#RRGGBB"."""
    value = colour.lstrip("#")
    r, g, b = int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
    return (b << 16) | (g << 8) | r


DARK = Theme(
    name="dark",
    dark=True,
    background="#1e1f22",
    foreground="#d4d4d4",
    caret="#aeafad",
    caret_line="#2a2c31",
    selection="#264f78",
    margin_back="#1e1f22",
    margin_fore="#6e7681",
    brace_match="#3b514d",
    brace_bad="#f44747",
    whitespace="#3b3d42",
    indent_guide="#33363b",
    find_match="#7a5a1f",
    ui_window="#25262a",
    ui_base="#1e1f22",
    ui_text="#d4d4d4",
    ui_highlight="#2f65ca",
    categories={
        "comment": ("#6a9955", False, True),
        "string": ("#ce9178", False, False),
        "escape": ("#d7ba7d", False, False),
        "number": ("#b5cea8", False, False),
        "keyword": ("#569cd6", False, False),
        "type": ("#4ec9b0", False, False),
        "function": ("#dcdcaa", False, False),
        "operator": ("#d4d4d4", False, False),
        "preprocessor": ("#c586c0", False, False),
        "property": ("#9cdcfe", False, False),
        "attribute": ("#9cdcfe", False, False),
        "tag": ("#569cd6", False, False),
        "heading": ("#569cd6", True, False),
        "strong": ("#d4d4d4", True, False),
        "emphasis": ("#d4d4d4", False, True),
        "link": ("#4fc1ff", False, False),
        "error": ("#f44747", False, False),
        "identifier": ("#d4d4d4", False, False),
        "default": ("#d4d4d4", False, False),
    },
)

LIGHT = Theme(
    name="light",
    dark=False,
    background="#ffffff",
    foreground="#1f1f1f",
    caret="#000000",
    caret_line="#f2f4f8",
    selection="#add6ff",
    margin_back="#ffffff",
    margin_fore="#8a9099",
    brace_match="#c9e8d9",
    brace_bad="#e51400",
    whitespace="#c8c8c8",
    indent_guide="#e3e4e6",
    find_match="#f8d58a",
    ui_window="#f3f3f3",
    ui_base="#ffffff",
    ui_text="#1f1f1f",
    ui_highlight="#0060c0",
    categories={
        "comment": ("#008000", False, True),
        "string": ("#a31515", False, False),
        "escape": ("#ee0000", False, False),
        "number": ("#098658", False, False),
        "keyword": ("#0000ff", False, False),
        "type": ("#267f99", False, False),
        "function": ("#795e26", False, False),
        "operator": ("#1f1f1f", False, False),
        "preprocessor": ("#af00db", False, False),
        "property": ("#0451a5", False, False),
        "attribute": ("#e50000", False, False),
        "tag": ("#800000", False, False),
        "heading": ("#0000ff", True, False),
        "strong": ("#1f1f1f", True, False),
        "emphasis": ("#1f1f1f", False, True),
        "link": ("#0070c1", False, False),
        "error": ("#e51400", False, False),
        "identifier": ("#1f1f1f", False, False),
        "default": ("#1f1f1f", False, False),
    },
)

THEMES = {t.name: t for t in (DARK, LIGHT)}


def theme_named(name: str) -> Theme:
    return THEMES.get(name, DARK)


def apply_app_palette(app: QApplication, theme: Theme) -> None:
    """Give the widgets around the editor (tree, tabs, dialogs) the theme's colours."""
    app.setStyle("Fusion")
    pal = QPalette()
    window, base, text = QColor(theme.ui_window), QColor(theme.ui_base), QColor(theme.ui_text)
    for role, colour in (
        (QPalette.ColorRole.Window, window),
        (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base),
        (QPalette.ColorRole.AlternateBase, window),
        (QPalette.ColorRole.Text, text),
        (QPalette.ColorRole.Button, window),
        (QPalette.ColorRole.ButtonText, text),
        (QPalette.ColorRole.ToolTipBase, base),
        (QPalette.ColorRole.ToolTipText, text),
        (QPalette.ColorRole.Highlight, QColor(theme.ui_highlight)),
        (QPalette.ColorRole.HighlightedText, QColor("#ffffff")),
        (QPalette.ColorRole.PlaceholderText, QColor(theme.margin_fore)),
    ):
        pal.setColor(role, colour)
    # a disabled button or label greyed (the roles above set every group: a disabled button
    # read exactly like an enabled one, e.g. the branch preview's Keep / Discard after a run)
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(theme.margin_fore))
    app.setPalette(pal)
