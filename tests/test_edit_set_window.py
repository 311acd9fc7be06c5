"""Multi-file edits in the window, end to end: the palette command turns the chat's "Edit
files" mode on, the question (with an @ file) goes through a real CloudClient to the real
gRPC service on loopback (a scripted model at its backend seam), the set opens in the review
over the tabs, accept all applies it to the documents (one new file, one modified, one
deleted, only after the accept: hashes), and Ctrl+Z in a touched buffer offers to undo the
whole set, which puts every file back."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow
from cloud_client.client import CloudClient
from cloud_server.config import ServerConfig
from cloud_server.service import start_server
from tests.test_edits_rpc import ANSWER, MAIN, UTIL, _ScriptedBackend

TOKEN = secrets.token_urlsafe(24)


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def service() -> Iterator[tuple[CloudClient, _ScriptedBackend]]:
    backend = _ScriptedBackend(ANSWER)
    running = start_server(ServerConfig(tokens=(TOKEN,)), backend=backend)  # type: ignore[arg-type]
    client = CloudClient(f"127.0.0.1:{running.port}", TOKEN)
    try:
        yield client, backend
    finally:
        client.close()
        running.stop(0)


def _window(qtbot: QtBot, tmp_path: Path, client: CloudClient, root: Path) -> MainWindow:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"completion.enabled": False, "cloud.autostart": False}))
    win = MainWindow(settings, chat_backend=client)
    qtbot.addWidget(win)
    win.resize(1200, 760)
    win.show()
    win.open_folder(root)
    qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=5000)
    return win


def test_edit_files_from_the_chat_reviewed_applied_and_undone(
    qtbot: QtBot, tmp_path: Path, service: tuple[CloudClient, _ScriptedBackend]
) -> None:
    client, backend = service
    root = tmp_path / "project"
    (root / "app").mkdir(parents=True)
    (root / "app" / "main.py").write_text(MAIN)
    (root / "app" / "util.py").write_text(UTIL)
    win = _window(qtbot, tmp_path, client, root)
    trashed: list[Path] = []

    def trash(path: Path) -> None:  # the test's trash: the file moves beside the project
        trashed.append(path)
        path.rename(tmp_path / f"trashed-{path.name}")

    win.edit_set.host._trash = trash
    main_doc = win.open_file(root / "app" / "main.py")
    assert main_doc is not None
    before = _digests(root)

    win.actions_by_id["edits.start"].trigger()
    panel = win.chat_panel
    assert panel.isVisible() and panel.edit_mode and panel.edit_files_button.isChecked()
    assert panel.send("Add a shout helper, use it in main, delete @app/util.py")
    qtbot.waitUntil(lambda: win.edit_set.review is not None, timeout=15000)
    review = win.edit_set.review
    assert review is not None
    # what the service got: the current file and the @ file, whole
    (asked,) = backend.asked
    turn = asked.messages[-1].content
    assert "app/main.py" in turn and "app/util.py" in turn and "def unused" in turn
    # the review covers the tabs; nothing was written or changed yet
    assert review.isVisible() and not win.tabs.isVisible()
    assert [r.split("  ")[0] for r in review.rows()] == ["M", "A", "D"]
    assert _digests(root) == before and main_doc.editor.text() == MAIN

    win.actions_by_id["edits.acceptAll"].trigger()  # the palette's "Accept All"
    assert win.edit_set.review is None and win.tabs.isVisible()
    assert "from app.greeting import shout" in main_doc.editor.text()
    helper = win.docs.find((root / "app" / "greeting.py").resolve())
    assert helper is not None and "def shout" in helper.editor.text()
    assert not (root / "app" / "util.py").exists() and trashed == [(root / "app/util.py").resolve()]

    # Ctrl+Z in a touched buffer offers the whole set
    main_doc.editor.focus()
    qtbot.keyClick(main_doc.editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    box = win.edit_set.undo_prompt
    assert isinstance(box, QMessageBox) and "3 files" in box.text()
    assert "from app.greeting import shout" in main_doc.editor.text()  # asked, not yet undone
    every = next(b for b in box.buttons() if b.text() == "Undo in 3 files")
    every.click()
    qtbot.waitUntil(lambda: main_doc.editor.text() == MAIN, timeout=3000)
    # the deleted file is written back on the writer thread, then opened
    qtbot.waitUntil(lambda: win.edit_set.host.restoring == 0, timeout=10000)
    assert (root / "app" / "util.py").read_text() == UTIL
    assert not (root / "app" / "greeting.py").exists()
    assert win.docs.find((root / "app" / "greeting.py").resolve()) is None
    assert _digests(root) == before
    win.close()


def test_a_refused_answer_is_a_clear_message_and_no_review(
    qtbot: QtBot, tmp_path: Path, service: tuple[CloudClient, Any]
) -> None:
    client, backend = service
    backend.answer = "FILE: main.py\nI would change main like this:\n```python\nx = 1\n```\n"
    root = tmp_path / "project"
    root.mkdir()
    (root / "main.py").write_text(MAIN)
    win = _window(qtbot, tmp_path, client, root)
    win.open_file(root / "main.py")
    before = _digests(root)
    win.edit_set.start()
    assert win.chat_panel.send("Rename x")
    qtbot.waitUntil(lambda: not win.chat_panel.is_streaming(), timeout=15000)
    notices = [n.text() for n in win.chat_panel.notices()]
    assert any("not a well-formed set of file edits" in n for n in notices), notices
    assert win.edit_set.review is None and _digests(root) == before
    win.close()


def test_the_set_is_checked_in_the_shadow_and_new_problems_shown(
    qtbot: QtBot, tmp_path: Path, service: tuple[CloudClient, Any]
) -> None:
    """The real shadow workspace (the review owner's, real ruff/basedpyright): a change that
    calls an undefined name shows the new problem on its row and above its hunks, while the
    user's files stay byte-identical."""
    client, backend = service
    backend.answer = (
        "FILE: app/main.py\n```python\n# ... existing code ...\n\ndef main():\n"
        '    print(shout_loudly(greet("world")))\n```\n'
    )
    root = tmp_path / "project"
    (root / "app").mkdir(parents=True)
    (root / "app" / "main.py").write_text(MAIN)
    win = _window(qtbot, tmp_path, client, root)
    win.open_file(root / "app" / "main.py")
    before = _digests(root)
    win.edit_set.start()
    assert win.chat_panel.send("Make main shout")
    qtbot.waitUntil(lambda: win.edit_set.review is not None, timeout=15000)
    review = win.edit_set.review
    assert review is not None
    qtbot.waitUntil(lambda: review.check_note.startswith(("checked", "not checked")), timeout=90000)
    assert review.check_note.startswith("checked: ⚠"), review.check_note
    assert "new problem" in review.rows()[0]
    assert "shout_loudly" in review.message_label.text()
    assert _digests(root) == before
    review.reject_all()
    assert _digests(root) == before
    win.close()


class _HeldShadow:
    """A shadow whose check the test finishes by hand (``done``)."""

    def __init__(self) -> None:
        self.future: Future[Any] = Future()

    def submit_check(self, edits: Any, originals: Any = None) -> Future[Any]:
        return self.future


def test_a_check_that_ends_after_the_window_closed_tells_no_one(
    qtbot: QtBot,
    tmp_path: Path,
    service: tuple[CloudClient, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Closing the window while the set is still being checked: the late verdict is dropped,
    no 'Signal source has been deleted' on the shadow's thread."""
    client, _backend = service
    root = tmp_path / "project"
    (root / "app").mkdir(parents=True)
    (root / "app" / "main.py").write_text(MAIN)
    (root / "app" / "util.py").write_text(UTIL)
    win = _window(qtbot, tmp_path, client, root)
    held = _HeldShadow()
    win.edit_set.shadow = lambda: held
    assert win.open_file(root / "app" / "main.py") is not None
    win.actions_by_id["edits.start"].trigger()
    assert win.chat_panel.send("Add a shout helper, use it in main, delete @app/util.py")
    qtbot.waitUntil(lambda: win.edit_set.review is not None, timeout=15000)
    owner = win.edit_set
    win.close()
    shiboken6.delete(owner)  # the owner's C++ side gone, as after the window is deleted
    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        held.future.set_result(None)  # the verdict arrives late, on "the shadow's thread"
    assert not [r for r in caplog.records if "callback" in r.getMessage()]
