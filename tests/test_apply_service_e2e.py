"""Apply end to end: the window starts the real service on loopback (the real default model),
a block the deterministic path refuses goes to the service's Apply, the new file streams into
the review, and the product's guarantee holds whichever way the model goes (which depends on
how a CPU's rounding tips it): either a complete, safe file to review (no placeholder left in
it, every removal it makes flagged) that accepting applies in one undo step, or a clear
refusal with the buffer unchanged. The review's source is "model": the service reports which
path wrote the file, and here only the model path can.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.apply_samples import ENCODING_BLOCK, LOAD_SAVE
from PySide6.QtCore import Qt, QTimer
from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow
from forecode_core.apply.block import Refused, apply_deterministic, find_rewrite_defect

pytestmark = pytest.mark.slow

CTRL = Qt.KeyboardModifier.ControlModifier

ORIGINAL, BLOCK = LOAD_SAVE, ENCODING_BLOCK  # the deterministic path refuses it


def test_a_refused_block_is_rewritten_by_the_service_and_reviewed(
    qtbot: QtBot, tmp_path: Path
) -> None:
    assert isinstance(apply_deterministic(ORIGINAL, BLOCK), Refused)
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "files.py").write_text(ORIGINAL)
    settings = tmp_path / "settings.json"
    settings.write_text(
        json.dumps({"completion.enabled": False, "cloud.autostart": True, "index.enabled": False})
    )
    window = MainWindow(settings)
    qtbot.addWidget(window)
    window.resize(1200, 760)
    window.show()
    window.open_folder(ws)
    qtbot.waitUntil(lambda: window.workspace.files_complete, timeout=5000)
    doc = window.open_file(ws / "files.py")
    assert doc is not None
    qtbot.waitUntil(lambda: window.status_chat.text() == "● Chat", timeout=180_000)

    review = window.start_review(doc, BLOCK)
    assert review is not None
    seen: list[tuple[str, int]] = []  # (state, characters received) while it runs
    probe = QTimer()
    probe.timeout.connect(lambda: seen.append((review.state, len(review.received))))
    probe.start(10)
    qtbot.waitUntil(lambda: review.state != "streaming", timeout=180_000)
    probe.stop()

    # the new file streamed in from the service before the apply ended
    assert any(state == "streaming" and n > 0 for state, n in seen)
    message = review.message_label.text()
    if review.state == "failed":
        # A clear refusal: the model did not finish the file, or what it wrote is not the whole
        # file (a placeholder left in it, most of it dropped). Nothing changes.
        assert message.rstrip(".").lower().endswith("nothing was changed"), message
        assert any(
            why in message
            for why in (
                "did not finish writing the file",
                "is the placeholder",
                "the block does not touch",
            )
        ), message
        assert review.result is None and review.hunks == ()
        assert doc.editor.text() == ORIGINAL and not doc.editor.canUndo()
        window.close()
        return
    if review.outcome == "unchanged":  # the model wrote the file back as it was
        assert doc.editor.text() == ORIGINAL and not doc.editor.canUndo()
        window.close()
        return
    assert review.state == "review", message
    result = review.result
    assert result is not None and result.source == "model"
    new = result.text
    # A complete file: no placeholder in place of code, not cut short.
    assert find_rewrite_defect(ORIGINAL, BLOCK, new) is None
    assert "existing code" not in new
    assert new != ORIGINAL and review.hunks
    if result.removals:  # code the block does not account for is never offered silently
        assert review.message_kind == "warning" and "removes" in message
    assert doc.editor.text() == ORIGINAL  # untouched until accepted

    review.focus()
    qtbot.keyClick(review.view, Qt.Key.Key_Return, CTRL)  # accept all
    qtbot.waitUntil(lambda: doc not in window.review.reviews, timeout=5000)
    assert doc.editor.text() == new
    doc.editor.undo()
    assert doc.editor.text() == ORIGINAL  # one undo step
    window.close()
