"""Switching tabs hands the focus from the old tab's editor to the new one's directly.

Before, Qt moved the focus of the hidden tab to the next widget in the focus chain, the
explorer, and then to the new tab: the explorer's focus-in picked a current row and it was
repainted in the new tab's first frame (with every visible row through the Python delegate).
The guarantee checked here: the explorer never gets the focus while tabs switch (open, Ctrl+Tab,
a click on a tab, ``activate``) and the new tab's editor has it after."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow
from tests.helpers.events import EventCount


def window(qtbot: QtBot, folder: Path) -> MainWindow:
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=2000)
    win.open_folder(folder)
    return win


def test_the_focus_goes_from_tab_to_tab_never_through_the_explorer(
    qtbot: QtBot, tmp_path: Path
) -> None:
    for name in ("a.py", "b.py", "c.py"):
        (tmp_path / name).write_text(f"# {name}\nx = 1\n")
    win = window(qtbot, tmp_path)
    seen = EventCount(QEvent.Type.FocusIn)
    win.tree.installEventFilter(seen)
    win.tree.viewport().installEventFilter(seen)

    docs = [win.open_file(tmp_path / name) for name in ("a.py", "b.py", "c.py")]
    assert all(d is not None for d in docs)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is docs[2].editor, timeout=2000)

    win.docs.cycle(-1)  # Ctrl+Shift+Tab
    qtbot.waitUntil(lambda: QApplication.focusWidget() is docs[1].editor, timeout=2000)

    bar = win.docs.tabs.tabBar()  # a click on the first tab
    QTest.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(0).center())
    assert win.docs.current_document() is docs[0]
    qtbot.waitUntil(lambda: QApplication.focusWidget() is docs[0].editor, timeout=2000)

    win.docs.activate(docs[2])  # the focus was in the tab that hides: it follows
    qtbot.waitUntil(lambda: QApplication.focusWidget() is docs[2].editor, timeout=2000)

    win.open_file(tmp_path / "b.py")  # an open file: its tab again
    qtbot.waitUntil(lambda: QApplication.focusWidget() is docs[1].editor, timeout=2000)
    assert seen.count == 0


def test_activate_leaves_the_focus_where_it_is_outside_the_tabs(
    qtbot: QtBot, tmp_path: Path
) -> None:
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("x = 1\n")
    win = window(qtbot, tmp_path)
    first = win.open_file(tmp_path / "a.py")
    win.open_file(tmp_path / "b.py")
    win.tree.setFocus(Qt.FocusReason.OtherFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is win.tree, timeout=2000)
    assert first is not None
    win.docs.activate(first)
    assert win.docs.current_document() is first
    assert QApplication.focusWidget() is win.tree
