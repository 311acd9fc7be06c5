"""A message with a long unbreakable run (pytest's "=====" lines, sent with every terminal
failure's Explain / Fix question) no longer widens the chat's transcript past the panel: in a
user run under Xvfb every later line, the agent's command cards, its Stop and Review buttons
were cut at the panel's right edge. Real window and chat panel offscreen."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.ui.agent_view import StepLine
from forecode_core.chat.conversations import MessageRole, StoredMessage
from tests.helpers.window import folder_window

WIDE = [
    "pytest said\n" + "=" * 150 + " FAILURES " + "=" * 150,
    "```\n" + "=" * 300 + "\n```",
]


@pytest.mark.parametrize("text", WIDE, ids=["words", "code"])
def test_a_wide_message_leaves_the_transcript_as_wide_as_the_panel(
    qtbot: QtBot, tmp_path: Path, text: str
) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    win = folder_window(qtbot, tmp_path)
    win.actions_by_id["agent.start"].trigger()  # the chat shown
    panel = win.chat_panel
    panel._add_message(StoredMessage(MessageRole.USER, text))
    later = StepLine("model", "RUN: git status WHY: see what changed " * 4)
    panel.add_view(later)
    viewport = panel.scroll_area.viewport()
    qtbot.waitUntil(lambda: later.isVisible() and later.height() > 0, timeout=5000)
    qtbot.waitUntil(lambda: panel.transcript.width() <= viewport.width(), timeout=5000)
    assert later.geometry().right() < viewport.width()
    assert later.height() >= later.heightForWidth(later.width())  # wrapped, not cut
    assert panel.transcript.height() > later.geometry().bottom()
