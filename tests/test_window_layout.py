"""The window's layout comes back next run as a VS Code user expects: its size, the
explorer's and the chat panel's widths, and the chat panel open if it was. A missing or
broken file is the default layout, never an error. Real windows offscreen."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QDockWidget
from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow
from app.ui.window_layout import WindowLayout


def new_window(qtbot: QtBot, layout: WindowLayout | None = None) -> MainWindow:
    win = MainWindow()
    qtbot.addWidget(win)
    if layout is not None:
        win.layout_store = layout
        layout.restore(win)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_size_panes_and_the_chat_panel_come_back(qtbot: QtBot, tmp_path: Path) -> None:
    layout = WindowLayout(tmp_path / "data" / "window-layout.json")
    first = new_window(qtbot, layout)
    first.resize(720, 520)  # inside the offscreen screen (800 x 600)
    first.chat.show()
    qtbot.waitUntil(lambda: first.chat.panel.isVisible())
    first.splitter.setSizes([150, 330, 240])
    qtbot.wait(10)
    panes = first.splitter.sizes()
    assert panes[2] > 0
    first.close()  # stores the layout
    doc = json.loads(layout.path.read_text())
    assert doc["chat_open"] is True and doc["panes"] == panes

    second = new_window(qtbot, WindowLayout(layout.path))
    assert (second.width(), second.height()) == (720, 520)
    assert second.chat.panel.isVisible()
    assert second.splitter.sizes() == panes


def test_a_closed_chat_stays_closed_and_a_default_window_without_a_file(
    qtbot: QtBot, tmp_path: Path
) -> None:
    path = tmp_path / "window-layout.json"
    plain = new_window(qtbot, WindowLayout(path))  # no file: the defaults
    assert (plain.width(), plain.height()) == (1200, 780)
    assert not plain.chat.panel.isVisible()
    plain.close()
    again = new_window(qtbot, WindowLayout(path))
    assert not again.chat.panel.isVisible() and again.splitter.sizes()[2] == 0


def test_a_broken_or_foreign_file_is_the_default_layout(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "window-layout.json"
    for text in (
        "{not json",
        json.dumps({"format": "something-else", "version": 1}),
        json.dumps(
            {
                "format": "forecode-window-layout",
                "version": 1,
                "geometry": "!!not base64!!",
                "panes": [3, -5, "x"],
                "chat_open": "yes",
            }
        ),
    ):
        path.write_text(text)
        win = new_window(qtbot, WindowLayout(path))
        assert (win.width(), win.height()) == (1200, 780)
        assert not win.chat.panel.isVisible()


def test_a_pane_stored_too_narrow_comes_back_usable(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "window-layout.json"
    path.write_text(
        json.dumps(
            {
                "format": "forecode-window-layout",
                "version": 1,
                "panes": [5, 900, 3],
                "chat_open": True,
            }
        )
    )
    win = new_window(qtbot, WindowLayout(path))
    tree, _editor, chat = win.splitter.sizes()
    assert tree >= 80 and chat >= 80 and win.chat.panel.isVisible()


def test_a_layout_that_cannot_be_stored_is_no_error(qtbot: QtBot, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    layout = WindowLayout(blocker / "sub" / "window-layout.json")
    win = new_window(qtbot, layout)
    assert layout.save(win) is not None  # the problem in words
    win.close()  # and closing still works


def _bottom_open(win: MainWindow) -> list[str]:
    return [
        d.objectName()
        for d in win.findChildren(QDockWidget)
        if d.isVisible()
        and win.dockWidgetArea(d) == Qt.DockWidgetArea.BottomDockWidgetArea
        and not d.isFloating()
    ]


def settled(qtbot: QtBot, win: MainWindow) -> None:
    """The restore's deferred work (a zero timer) has run: a later zero timer fired."""
    fired: list[bool] = []
    QTimer.singleShot(0, win, lambda: fired.append(True))
    qtbot.waitUntil(lambda: bool(fired))


def test_the_problems_panel_comes_back_open_at_its_height(qtbot: QtBot, tmp_path: Path) -> None:
    layout = WindowLayout(tmp_path / "window-layout.json")
    first = new_window(qtbot, layout)
    first.resize(720, 520)
    first.actions_by_id["view.problems"].trigger()
    dock = first.findChild(QDockWidget, "problems")
    assert dock is not None
    first.resizeDocks([dock], [190], Qt.Orientation.Vertical)
    qtbot.waitUntil(lambda: dock.height() == 190)
    first.close()
    assert json.loads(layout.path.read_text())["bottom"] == {"dock": "problems", "height": 190}

    second = new_window(qtbot, WindowLayout(layout.path))
    settled(qtbot, second)  # reopened once the event loop runs (after app.main's open_folder)
    again = second.findChild(QDockWidget, "problems")
    assert again is not None
    qtbot.waitUntil(lambda: again.isVisible() and again.height() == 190)
    assert _bottom_open(second) == ["problems"]
    second.close()  # stored again, the same
    assert json.loads(layout.path.read_text())["bottom"] == {"dock": "problems", "height": 190}


def test_a_closed_panel_or_an_unknown_dock_stays_closed(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "window-layout.json"
    first = new_window(qtbot, WindowLayout(path))
    first.actions_by_id["view.problems"].trigger()
    dock = first.findChild(QDockWidget, "problems")
    assert dock is not None
    dock.close()
    first.close()
    assert json.loads(path.read_text())["bottom"] is None
    second = new_window(qtbot, WindowLayout(path))
    settled(qtbot, second)
    assert _bottom_open(second) == [] and second.findChild(QDockWidget, "problems") is None
    for stored in ({"dock": "gone-dock", "height": 200}, {"dock": 3}, "problems", [1]):
        doc = json.loads(path.read_text())
        doc["bottom"] = stored
        path.write_text(json.dumps(doc))
        win = new_window(qtbot, WindowLayout(path))
        settled(qtbot, win)
        assert _bottom_open(win) == []


def test_a_terminal_panel_comes_back_in_the_folder_opened_after_the_restore(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """As ``app.main`` does: restore, open the folder, show; the reopened terminal's shell
    starts in that folder (the restore waits for the event loop), not in the home folder."""
    path = tmp_path / "window-layout.json"
    root = tmp_path / "project"
    root.mkdir()
    new_window(qtbot, WindowLayout(path)).close()
    doc = json.loads(path.read_text())
    doc["bottom"] = {"dock": "terminal-dock", "height": 200}
    path.write_text(json.dumps(doc))
    win = MainWindow()
    qtbot.addWidget(win)
    WindowLayout(path).restore(win)
    win.open_folder(root)
    win.show()
    settled(qtbot, win)
    assert _bottom_open(win) == ["terminal-dock"]
    (view,) = win.terminal.views
    assert view.cwd == root
    win.close()
