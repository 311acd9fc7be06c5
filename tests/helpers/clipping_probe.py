"""Opens every panel of a real window and reports each visible button whose text is wider
than the button: ``python -m tests.helpers.clipping_probe FOLDER`` prints JSON
``{"checked": [...], "clipped": [...]}``. Run it with ``QT_SCALE_FACTOR=2`` for 200 %.
(A subprocess, since the scale factor is read once, when the QApplication starts.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QPushButton,
    QStyle,
    QStyleOptionButton,
    QWidget,
)

from forecode_core.apply.review_state import ReviewPhase

#: Room a button needs beside its text: the frame and a little padding each side.
MARGIN = 4


def buttons_of(root: QWidget, panel: str) -> list[tuple[str, QAbstractButton]]:
    return [
        (panel, b) for b in root.findChildren(QAbstractButton) if b.isVisible() and b.text().strip()
    ]


def text_room(button: QAbstractButton) -> tuple[int, int]:
    """(width the text needs, width the button gives it). A push button gives its contents
    rectangle (what its style, style sheet padding included, leaves inside); any other button
    its width less ``MARGIN``."""
    fm = button.fontMetrics()
    need = fm.horizontalAdvance(button.text().replace("&&", "&"))
    if not button.icon().isNull():
        need += button.iconSize().width() + 4
    if isinstance(button, QPushButton):
        option = QStyleOptionButton()
        button.initStyleOption(option)
        room = (
            button.style()
            .subElementRect(QStyle.SubElement.SE_PushButtonContents, option, button)
            .width()
        )
        return need, room
    return need, button.width() - MARGIN


def main(folder: str) -> None:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    from app.ui.main_window import MainWindow

    win = MainWindow()
    win.resize(1200, 800)
    win.show()
    QTest.qWait(50)
    results: list[tuple[str, QAbstractButton]] = []
    root = Path(folder)
    # the welcome page (no folder yet), with a recent folder listed
    win.welcome.set_recent([str(root.resolve())])
    QTest.qWait(50)
    results += buttons_of(win.welcome, "welcome")
    win.open_folder(root)
    results += buttons_of(win.statusBar(), "status bar")
    doc = win.open_file(root / "lib.py")
    assert doc is not None
    QTest.qWait(50)
    # find bar with its replace row
    win.editing.open_replace()
    QTest.qWait(50)
    results += buttons_of(win.find_bar, "find bar")
    win.find_bar.close_bar()
    # chat panel
    win.chat.show()
    QTest.qWait(50)
    results += buttons_of(win.chat_panel, "chat panel")
    win.chat_panel.hide()
    # command palette
    win.command_palette()
    QTest.qWait(50)
    results += buttons_of(win.picker, "palette")
    QTest.keyClick(win.picker.focusWidget() or win.picker, Qt.Key.Key_Escape)
    # inline edit (Ctrl+K on a selection)
    doc.editor.setSelection(0, 20)
    win.review.inline_edit()
    QTest.qWait(50)
    overflow: list[dict[str, object]] = []
    if win.review.inline_prompt is not None:
        results += buttons_of(win.review.inline_prompt, "inline edit")
        win.review.inline_prompt.close_prompt()
    # floating boxes stay inside their view, also when the view is narrow (chat open)
    win.resize(760, 700)
    win.chat.show()
    QTest.qWait(50)
    doc.editor.setSelection(0, 20)
    win.review.inline_edit()
    QTest.qWait(50)
    prompt = win.review.inline_prompt
    if prompt is not None:
        view = prompt.parentWidget()
        if prompt.geometry().right() >= view.width():
            overflow.append(
                {"panel": "inline edit", "right": prompt.geometry().right(), "view": view.width()}
            )
        prompt.close_prompt()
    win.chat_panel.hide()
    win.resize(1200, 800)
    # apply review, with its hunk bar at a change
    review = win.start_review(doc, "def beta(y):\n    return y * 20\n")
    assert review is not None
    for _ in range(100):
        QTest.qWait(50)
        if review.state is ReviewPhase.REVIEW:
            break
    QTest.qWait(50)
    results += buttons_of(review, "apply review")
    results += buttons_of(win.statusBar(), "status bar")
    checked, clipped = [], []
    for panel, button in results:
        need, width = text_room(button)
        entry = {"panel": panel, "text": button.text(), "need": need, "room": width}
        checked.append(entry)
        if need > width:
            clipped.append(entry)
    hunk_bar = review.hunk_bar
    if hunk_bar.isVisible() and hunk_bar.geometry().right() >= hunk_bar.parentWidget().width():
        overflow.append({"panel": "apply review hunk bar"})
    print(json.dumps({"checked": checked, "clipped": clipped, "overflow": overflow}))
    win.close()
    app.processEvents()


if __name__ == "__main__":
    main(sys.argv[1])
