"""The status bar with no file open says nothing about next-edit predictions.

Seen by a user: a window with a folder and no file said "Predictions off". Nothing is off:
there is nothing to predict in (VS Code shows no editor items then). When predictions really
are off (the setting), the status bar says so and why. Real window, offscreen.
"""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from tests.helpers.window import folder_window


def test_no_file_no_prediction_status(qtbot: QtBot, tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n", encoding="utf-8")
    win = folder_window(qtbot, tmp_path)
    label = win.next_edit.label
    assert win.current_document() is None
    assert not label.isVisible() and "off" not in label.text()
    win.open_file(tmp_path / "a.py")
    qtbot.waitUntil(label.isVisible, timeout=3000)
    assert label.text().startswith("⇥") and "off" not in label.text()
    assert win.docs.close_tab(0)
    qtbot.waitUntil(lambda: not label.isVisible(), timeout=3000)
