"""A document tab's close button, which is also its modified mark (``app.ui.tab_close``): real
window offscreen, real saves."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QEnterEvent
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow
from app.ui.tab_close import CLOSE, MODIFIED, TabCloseButton
from forecode_core.states import SaveChoice
from tests.helpers.events import EventCount
from tests.helpers.window import folder_window


def _window(qtbot: QtBot, tmp_path: Path) -> tuple[MainWindow, Path]:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 2\n")
    return folder_window(qtbot, tmp_path), tmp_path


def test_the_mark_follows_typing_and_saving_and_the_title_stays(
    qtbot: QtBot, tmp_path: Path
) -> None:
    win, root = _window(qtbot, tmp_path)
    doc = win.open_file(root / "a.py")
    assert doc is not None
    close = win.docs.close_button(doc)
    assert isinstance(close, TabCloseButton) and close.text() == CLOSE
    assert close.isVisible() and close.toolTip() == "Close"
    qtbot.keyClicks(doc.editor, "# note ")
    assert close.text() == MODIFIED and close.toolTip() == "Close (unsaved changes)"
    assert win.tabs.tabText(win.tabs.indexOf(doc)) == "a.py"
    qtbot.keyClick(doc.editor, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: close.text() == CLOSE, timeout=10000)
    assert (root / "a.py").read_text().startswith("# note ")
    assert win.tabs.tabText(win.tabs.indexOf(doc)) == "a.py"


def test_saving_repaints_the_button_not_the_editor(qtbot: QtBot, tmp_path: Path) -> None:
    """The point of the button: a tab's new text re-laid the tab widget, which repainted the
    editor whole at every save and at the first key after it."""
    win, root = _window(qtbot, tmp_path)
    doc = win.open_file(root / "a.py")
    assert doc is not None
    qtbot.keyClicks(doc.editor, "z")
    qtbot.wait(200)  # the key's own repaints are done
    paints = EventCount(QEvent.Type.Paint)
    viewport = doc.editor.viewport()
    viewport.installEventFilter(paints)
    close = win.docs.close_button(doc)
    assert close is not None
    button_paints = EventCount(QEvent.Type.Paint)
    close.installEventFilter(button_paints)
    saved: list[bool] = []
    doc.saveFinished.connect(saved.append)
    win.docs.save(doc)
    qtbot.waitUntil(lambda: saved == [True], timeout=10000)
    qtbot.waitUntil(lambda: button_paints.count > 0, timeout=5000)  # the mark was redrawn
    qtbot.wait(200)
    viewport.removeEventFilter(paints)
    assert close.text() == CLOSE
    assert paints.count == 0, "saving repainted the editor"


def test_a_click_closes_and_a_modified_tab_asks_first(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    win, root = _window(qtbot, tmp_path)
    a = win.open_file(root / "a.py")
    b = win.open_file(root / "b.py")
    assert a is not None and b is not None
    close_a = win.docs.close_button(a)
    assert close_a is not None
    QTest.mouseClick(close_a, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.tabs.indexOf(a) < 0, timeout=5000)
    assert win.tabs.count() == 1
    asked: list[str] = []
    monkeypatch.setattr(win.docs, "ask_save", lambda d: asked.append(d.title) or SaveChoice.CANCEL)
    qtbot.keyClicks(b.editor, "w")
    close_b = win.docs.close_button(b)
    assert close_b is not None and close_b.text() == MODIFIED
    # under the pointer a modified tab's mark turns into the close cross
    at = QPointF(close_b.rect().center())
    close_b.enterEvent(QEnterEvent(at, at, at))
    assert close_b.text() == CLOSE
    close_b.leaveEvent(QEvent(QEvent.Type.Leave))
    assert close_b.text() == MODIFIED
    QTest.mouseClick(close_b, Qt.MouseButton.LeftButton)
    assert asked == ["b.py"] and win.tabs.indexOf(b) == 0  # cancelled: the tab stays
    assert b.editor.text() == "wy = 2\n"
