"""An apply review opens where the user was in the file, not at line 1 (app.ui.apply_review
``ApplyReview._keep_place``). Seen in a user run: an apply from chat that failed showed the
file's top until Close. Real window offscreen, no model path (the block does not match)."""

from __future__ import annotations

import json
from pathlib import Path

from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow

LINES = 400
TEXT = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(LINES // 3))


def test_a_failed_apply_keeps_the_users_place(qtbot: QtBot, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "many.py").write_text(TEXT, encoding="utf-8")
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"completion.enabled": False, "cloud.autostart": False}))
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    win.open_folder(ws)
    qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=5000)
    doc = win.open_file(ws / "many.py")
    assert doc is not None
    ed = doc.editor
    ed.gotoPos(ed.positionFromLine(305))
    ed.setFirstVisibleLine(300)
    block = "# ... existing code ...\n    return nothing_like_this\n# ... existing code ...\n"
    review = win.start_review(doc, block)
    assert review is not None
    qtbot.waitUntil(lambda: review.state == "failed", timeout=5000)
    assert review.view.firstVisibleLine() == 300
    assert review.view.lineFromPosition(review.view.currentPos()) == 305
    assert ed.text() == TEXT
