"""A document tab's close button that is also its "modified" mark, as VS Code draws it: ``●``
while the document has unsaved changes, ``×`` when it is saved, and ``×`` under the pointer
either way (a click closes; a modified document asks to save first).

Why a button and not a mark in the tab's text (``"● name"``, until 2026-12-06): changing a tab's
text re-lays the tab bar, the tab widget answers the layout request by repainting itself and
every child, and the editor under it repainted whole: 5-7 ms of the UI thread's time at each
save and at the first key after it, measured in ``bench lsp --ui`` (the frame that handles the
save: the tab widget, its stack, the editor's viewport, 936x772 px). The button's size is fixed,
so its ``●``/``×`` repaints 20x20 px and nothing else."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QEnterEvent
from PySide6.QtWidgets import QStyle, QTabBar, QToolButton, QWidget

__all__ = ["CLOSE", "MODIFIED", "TabCloseButton", "close_side"]

CLOSE = "×"
MODIFIED = "●"


def close_side(bar: QTabBar) -> QTabBar.ButtonPosition:
    """The side of a tab where this style puts its close button."""
    hint = bar.style().styleHint(QStyle.StyleHint.SH_TabBar_CloseButtonPosition, None, bar)
    return QTabBar.ButtonPosition(hint)


class TabCloseButton(QToolButton):
    """See the module docstring. ``on_close`` runs on a click."""

    def __init__(self, on_close: Callable[[], object], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.modified = False
        self._hovered = False
        self.setAutoRaise(True)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setCursor(Qt.CursorShape.ArrowCursor)
        self.setFixedSize(20, 20)
        self.clicked.connect(lambda: on_close())
        self._show()

    def set_modified(self, modified: bool) -> None:
        """Mark the tab modified (``●``) or saved (``×``); nothing happens when it already is."""
        if modified != self.modified:
            self.modified = modified
            self._show()

    def enterEvent(self, event: QEnterEvent) -> None:
        self._hovered = True
        self._show()
        super().enterEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        self._hovered = False
        self._show()
        super().leaveEvent(event)

    def _show(self) -> None:
        mark = MODIFIED if self.modified and not self._hovered else CLOSE
        if self.text() != mark:
            self.setText(mark)
        tip = "Close (unsaved changes)" if self.modified else "Close"
        if self.toolTip() != tip:
            self.setToolTip(tip)
            self.setAccessibleName(tip)
