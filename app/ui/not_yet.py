"""Binds the keys of ``forecode_core.not_yet.NOT_YET`` that no window command owns to a status
message, so a VS Code key without a feature says so instead of doing nothing."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow

from forecode_core.not_yet import NOT_YET, message

__all__ = ["install_not_yet_keys"]


def install_not_yet_keys(window: QMainWindow, show: object) -> list[QAction]:
    """Add an action to ``window`` for each not-yet key that none of its actions has;
    ``show(text)`` puts the words in the status bar. Returns the actions added."""
    assert callable(show)
    taken = {seq.toString() for action in window.actions() for seq in action.shortcuts()}
    added: list[QAction] = []
    for entry in NOT_YET:
        for keys in entry.keys.split(" or "):
            seq = QKeySequence(keys)
            text = seq.toString(QKeySequence.SequenceFormat.NativeText)
            if seq.isEmpty() or seq.toString() in taken:
                continue
            action = QAction(f"{entry.title} (not yet)", window)
            action.setShortcut(seq)
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.setObjectName(f"notYet:{keys}")
            words = message(entry, text)
            action.triggered.connect(lambda _checked=False, w=words: show(w))
            window.addAction(action)
            taken.add(seq.toString())
            added.append(action)
    return added
