"""The small flat buttons of the find bar and the Search view (toggles such as Aa, ab, .*)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolButton, QWidget


def tool_button(parent: QWidget, text: str, tip: str, *, checkable: bool = False) -> QToolButton:
    """A flat button that never takes the focus from the field being typed in."""
    button = QToolButton(parent)
    button.setText(text)
    button.setToolTip(tip)
    button.setCheckable(checkable)
    button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    button.setAutoRaise(True)
    return button
