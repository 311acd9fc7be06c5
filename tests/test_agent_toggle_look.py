"""What a user run under Xvfb showed of the agent in the chat: the "Agent" toggle on looked
like off (only "Edit files" wore the selection colour), and the agent's step lines began with
emoji that drew as empty boxes where no emoji font is installed. Real window and chat panel
offscreen; the button's pixels read back; each step line's mark is in its own font."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QFontMetrics, QPalette
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.ui.agent_view import StepLine
from tests.helpers.window import folder_window
from tests.test_edit_files_toggle import _distance, _middle


def test_the_agent_button_on_wears_the_selection_colour(qtbot: QtBot, tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    win = folder_window(qtbot, tmp_path)
    panel = win.chat_panel
    button = panel.agent_button
    off = _middle(button.grab().toImage())
    win.actions_by_id["agent.start"].trigger()  # "Agent: Start Task" turns the mode on
    assert panel.agent_mode and button.isChecked()
    on = _middle(button.grab().toImage())
    highlight = QApplication.palette().color(QPalette.ColorRole.Highlight)
    assert _distance(on, off) > 90, (on.name(), off.name())
    assert 2 * _distance(on, highlight) < _distance(on, off), (on.name(), highlight.name())
    panel.edit_files_button.click()  # Edit files on: Agent goes off and looks it
    assert not button.isChecked()
    assert _distance(_middle(button.grab().toImage()), off) < 12


def test_each_step_lines_mark_is_in_its_font(qtbot: QtBot) -> None:
    for kind in ("model", "read", "edit", "refused", "other"):
        line = StepLine(kind, "RUN: pytest -q")
        qtbot.addWidget(line)
        mark = line.text()[0]
        assert QFontMetrics(line.font()).inFontUcs4(ord(mark)), (kind, mark)
