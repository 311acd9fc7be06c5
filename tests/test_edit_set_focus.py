"""After a multi-file review closes (accepted or rejected), the keyboard is back in the editor.

Seen in a user run: F2 Rename Symbol, Ctrl+Enter to accept; the next key went to the file
explorer (Right expanded a folder there) because the review that had the focus was hidden and
Qt passed the focus to the next widget in the chain. VS Code returns to the editor. Real
window offscreen; the review is opened by the owner as the chat's and F2's paths do."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from forecode_core.edits.events import FileChange, FileChangeKind
from tests.helpers.window import folder_window

OLD = "def area(width, height):\n    size = width * height\n    return size\n"
NEW = OLD.replace("size", "result")


@pytest.mark.parametrize("action", ["accept_all", "reject_all"])
def test_the_editor_has_the_focus_after_the_review(
    qtbot: QtBot, tmp_path: Path, action: str
) -> None:
    (tmp_path / "mod.py").write_text(OLD)
    win = folder_window(qtbot, tmp_path)
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=3000)
    doc = win.open_file(tmp_path / "mod.py")
    assert doc is not None
    doc.editor.focus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is doc.editor, timeout=3000)

    review = win.edit_set.show_review([FileChange("mod.py", FileChangeKind.MODIFIED, OLD, NEW)])
    qtbot.waitUntil(lambda: QApplication.focusWidget() is review.view, timeout=3000)
    review.run_action(action)
    assert win.edit_set.review is None and win.tabs.isVisible()
    assert doc.editor.text() == (NEW if action == "accept_all" else OLD)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is doc.editor, timeout=3000)
