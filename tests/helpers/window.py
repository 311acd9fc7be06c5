"""The editor's main window on a folder, shown offscreen, its file list complete: the start of
most window tests."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow


def folder_window(qtbot: QtBot, folder: Path, *, size: tuple[int, int] = (1000, 700)) -> MainWindow:
    """A shown ``MainWindow`` (default settings) with ``folder`` open and scanned."""
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    win.open_folder(folder)
    qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=5000)
    return win
