"""Hot exit: unsaved buffers survive the editor process being killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO
from pytestqt.qtbot import QtBot

from app.ui.main_window import MainWindow
from forecode_core.store.hotexit import BackupStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")


def test_unsaved_buffers_are_restored_after_kill(qtbot: QtBot, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    target = workspace / "notes.py"
    target.write_bytes(b"first line\r\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen")
    child = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests" / "helpers" / "edit_then_hang.py"),
            str(workspace),
            "notes.py",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "typed", child.stderr.read() if child.stderr else line
        store = BackupStore.for_workspace(workspace)
        deadline = time.monotonic() + 20
        texts: set[str] = set()
        while time.monotonic() < deadline:
            texts = {b.text for b in store.load_all()[0]}
            if texts == {"first line\r\nunsaved édit", "scratch notes"}:
                break
            time.sleep(0.05)
        assert texts == {"first line\r\nunsaved édit", "scratch notes"}
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=10)  # reaps the child and closes its pipes
    assert target.read_bytes() == b"first line\r\n"  # the file itself was never written

    window = MainWindow()
    qtbot.addWidget(window)
    window.open_folder(workspace)
    docs = {d.title: d for d in window.documents()}
    assert set(docs) == {"notes.py", "Untitled-1"}
    notes = docs["notes.py"]
    assert notes.editor.text() == "first line\r\nunsaved édit"
    assert notes.is_dirty() and notes.eol == "\r\n"
    assert "Restored" in notes.banner.label.text()
    assert docs["Untitled-1"].editor.text() == "scratch notes"
    # Undo takes the restored buffer back to the file's text on disk.
    notes.editor.undo()
    assert notes.editor.text() == "first line\r\n"
    notes.editor.redo()
    assert notes.save() and notes.wait_saves()
    assert target.read_bytes() == b"first line\r\nunsaved \xc3\xa9dit"
