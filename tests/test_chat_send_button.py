"""The chat's Send button sends what is in the box. In a user run under Xvfb a click on Send
did nothing: ``clicked`` handed its ``checked`` (False) to ``send(text)``, which raised on
``False.strip()`` in the event loop (the task stayed in the box; Enter still worked). Real
window and chat panel offscreen, a real mouse click."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from tests.helpers.window import folder_window


def test_a_click_on_send_sends_the_agent_task(qtbot: QtBot, tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    win = folder_window(qtbot, tmp_path)
    panel = win.chat_panel
    win.actions_by_id["agent.start"].trigger()
    asked: list[str] = []
    panel.agent_requested.disconnect()  # what the click sends, not the agent's run
    panel.agent_requested.connect(asked.append)
    panel.input.setPlainText("make the failing test pass")
    qtbot.mouseClick(panel.send_button, Qt.MouseButton.LeftButton)
    assert asked == ["make the failing test pass"]
    assert panel.input.toPlainText() == ""
