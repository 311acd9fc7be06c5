"""Shift+F12's quick picker shows each reference's line text, not only ``file:line:col``
(VS Code's list shows the line; a user run saw "json/encoder.py:21:1" rows and nothing else).
The texts are the References panel's: an open buffer's line at once, another file's read on
the panel's worker thread (never the UI thread) and put into the picker's rows when it
arrives, keeping the row the user is on. A real window offscreen (servers off: the answer is
handed to the language owner as its server call would)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.ui.picker import PickerItem
from forecode_core.lsp.navigation import Place
from forecode_core.lsp.positions import Position
from tests.helpers.window import folder_window
from tests.test_references_panel_thread import _Reads


def _details(items: list[PickerItem]) -> list[tuple[str, str]]:
    return [(item.label, item.detail) for item in items]


def test_the_picker_rows_show_their_lines_text_read_off_the_ui_thread(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    win = folder_window(qtbot, ws)
    main = ws / "main.py"
    main.write_text("from lib import helper\n\nhelper(   1)\n")
    (ws / "lib.py").write_text("import os\n\ndef helper(x: int) -> None:\n    pass\n")
    doc = win.open_file(main)
    assert doc is not None
    reads = _Reads(monkeypatch)
    reads.held = "lib.py"
    reads.gate.clear()
    found = [
        (main.as_uri(), Position(0, 16)),
        (main.as_uri(), Position(2, 0)),
        ((ws / "lib.py").as_uri(), Position(2, 4)),
    ]
    win.language.show_references(Place(str(main), doc.editor.currentPos()), found)
    picker = win.picker
    assert picker.is_open()
    # At once: the open buffer's lines (whitespace runs collapsed); lib.py is being read.
    assert _details(picker.items()) == [
        ("main.py:1:17", "from lib import helper"),
        ("main.py:3:1", "helper( 1)"),
        ("lib.py:3:5", ""),
    ]
    picker.list_view.setCurrentIndex(picker.model.index(1))  # the user moved down a row
    reads.gate.set()
    qtbot.waitUntil(
        lambda: picker.items()[-1].detail == "def helper(x: int) -> None:", timeout=10_000
    )
    assert picker.current_item() == picker.items()[1]  # the row stays where the user put it
    assert reads.of("lib.py") == [False]  # read on the worker thread
    # The query narrows by file, the texts kept.
    picker.query_edit.setText("lib.py")
    assert _details(picker.items()) == [("lib.py:3:5", "def helper(x: int) -> None:")]
