"""Closing a modified tab and answering Cancel keeps the tab AND every owner's state: the
window's ``closing`` signal (the review closes, the language server is told didClose, the
shadow drops the unsaved buffer) is sent only when the tab really goes."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from tests.helpers.window import folder_window


def test_cancel_sends_no_closing_and_discard_sends_one(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.py").write_text("x = 1\n")
    window = folder_window(qtbot, ws)
    doc = window.open_file(ws / "notes.py")
    assert doc is not None
    qtbot.keyClicks(doc.editor, "y = 2 ")
    closed: list[object] = []
    window.docs.closing.connect(closed.append)

    monkeypatch.setattr(window.docs, "ask_save", lambda d: "cancel")
    assert window.close_tab(0) is False
    assert closed == [] and window.tabs.count() == 1 and doc.is_dirty()

    # a save that fails keeps the tab and its state too
    monkeypatch.setattr(window.docs, "ask_save", lambda d: "save")
    monkeypatch.setattr(window.docs, "save", lambda d, on_done=None: False)
    assert window.close_tab(0) is False
    assert closed == []

    monkeypatch.setattr(window.docs, "ask_save", lambda d: "discard")
    assert window.close_tab(0) is True
    assert closed == [doc] and window.tabs.count() == 0
    assert (ws / "notes.py").read_text() == "x = 1\n"
