"""Find All References (Shift+F12) with a real basedpyright in a real window: the answer
fills the References panel, grouped by file (this file first) with each line's text, and a
click on a row goes there (Alt+Left comes back)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow
from app.ui.references_panel import ReferenceRow, ReferencesDock
from tests.helpers.window import folder_window

pytestmark = pytest.mark.slow

SERVER_WAIT_MS = 120_000  # a cold basedpyright took 20-40 s at load 25 on two cores


@pytest.fixture
def lsp_window(
    qtbot: QtBot, tmp_path: Path, isolated_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> tuple[MainWindow, Path]:
    monkeypatch.delenv("FORECODE_LSP", raising=False)
    values = {"completion.enabled": False, "cloud.autostart": False, "lsp.enabled": True}
    (isolated_dirs["config"] / "settings.json").write_text(json.dumps(values))
    ws = tmp_path / "ws"
    ws.mkdir()
    return folder_window(qtbot, ws), ws


def test_references_across_two_files_fill_the_panel_and_a_click_goes_there(
    qtbot: QtBot, lsp_window: tuple[MainWindow, Path]
) -> None:
    win, ws = lsp_window
    (ws / "helpers.py").write_text("def helper(x: int) -> int:\n    return x\n")
    main = ws / "main.py"
    main.write_text('from helpers import helper\n\nprint(helper(1), helper(2))\nlabel: int = "x"\n')
    doc = win.open_file(main)
    assert doc is not None
    qtbot.waitUntil(
        lambda: any(d.source == "basedpyright" for d in win.language.store.all_for(main.as_uri())),
        timeout=SERVER_WAIT_MS,
    )
    caret = doc.editor.text().rindex("helper(2)") + 1
    doc.editor.gotoPos(caret)
    win.actions_by_id["editor.references"].trigger()
    qtbot.waitUntil(lambda: win.lsp_actions.dock is not None, timeout=SERVER_WAIT_MS)
    dock = win.lsp_actions.dock
    assert isinstance(dock, ReferencesDock) and dock.isVisible()
    expected = [
        "main.py  (3)",
        "1:  from helpers import helper",
        "3:  print(helper(1), helper(2))",
        "3:  print(helper(1), helper(2))",
        "helpers.py  (1)",
        "1:  def helper(x: int) -> int:",  # helpers.py is not open: read on a thread
    ]
    qtbot.waitUntil(lambda: dock.visible_texts() == expected, timeout=10_000)
    assert dock.windowTitle() == "References: helper — 4 results in 2 files"
    win.picker.hide()
    item = dock.items()[-1]  # the definition in helpers.py
    row = item.data(0, Qt.ItemDataRole.UserRole + 1)
    assert isinstance(row, ReferenceRow) and row.shown == "helpers.py"
    rect = dock.tree.visualItemRect(item)
    qtbot.mouseClick(  # type: ignore[no-untyped-call]
        dock.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center()
    )
    current = win.current_document()
    assert current is not None and current.path == (ws / "helpers.py").resolve()
    assert current.editor.caret_line_col() == (1, 5)
    win.actions_by_id["nav.back"].trigger()
    assert win.current_document() is doc and doc.editor.currentPos() == caret
