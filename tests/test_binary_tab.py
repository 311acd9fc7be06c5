"""A binary or plain-text tab does no work while idle (issue 13, point 10).

Without a lexer Scintilla waits for its container to style the text (SCN_STYLENEEDED); with
idle styling on it re-armed its idle timer on every pass of the event loop, so a binary (or
any plain-text) tab kept the UI thread at 100 % CPU, even in the background, and starved
everything else. The proof counts the timer events the UI thread handles in one second with
such a tab open, against the same window with a Python tab only: work done, not a CPU figure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow
from tests.helpers.events import EventCount
from tests.helpers.window import folder_window


def _timer_events_in_one_second(qtbot: QtBot) -> int:
    app = QApplication.instance()
    assert app is not None
    qtbot.wait(300)  # let opening settle (first paint, styling of the visible part)
    counter = EventCount(QEvent.Type.Timer)
    app.installEventFilter(counter)
    try:
        qtbot.wait(1000)
    finally:
        app.removeEventFilter(counter)
    return counter.count


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "main.py").write_text("".join(f"x{i} = {i}\n" for i in range(2000)))
    (ws / "blob.bin").write_bytes(os.urandom(200_000) + b"\x00" * 10)
    (ws / "notes.txt").write_text("plain text\n" * 2000)
    return ws


@pytest.fixture
def window(qtbot: QtBot, workspace: Path) -> MainWindow:
    return folder_window(qtbot, workspace)


def test_binary_and_plain_text_tabs_do_no_idle_work(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    window.open_file(workspace / "main.py")
    baseline = _timer_events_in_one_second(qtbot)

    binary = window.open_file(workspace / "blob.bin")
    assert binary is not None and binary.read_only_reason
    in_front = _timer_events_in_one_second(qtbot)

    window.open_file(workspace / "notes.txt")
    window.open_file(workspace / "main.py")  # the binary and text tabs in the background
    in_background = _timer_events_in_one_second(qtbot)

    # Before the fix each count was in the tens of thousands (one idle-timer tick per pass of
    # the event loop); an idle window handles a few (caret blink, status timers).
    assert in_front <= baseline + 50, (baseline, in_front)
    assert in_background <= baseline + 50, (baseline, in_background)
