"""Undo of a multi-file edit that deleted a file: the file is written back on the app's
writer thread (``app.services.saver``), never on the UI thread, and its editor opens when
the bytes have landed; a failed write is said and its text opened as an unsaved buffer.
Real window offscreen, real files."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

import app.services.saver as saver_module
from app.ui.edit_set_review import AppliedSet, apply_set
from app.ui.main_window import MainWindow
from forecode_core.edits.events import FileChangeKind
from forecode_core.edits.review import AcceptedFile

TEXT = "def gone():\n    return 'déjà vu'\n"


def _window(qtbot: QtBot, tmp_path: Path, root: Path) -> MainWindow:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"completion.enabled": False, "cloud.autostart": False}))
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    win.open_folder(root)
    qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=5000)
    return win


def _deleted(win: MainWindow, tmp_path: Path, root: Path) -> AppliedSet:
    """A set that deleted ``pkg/gone.py`` (and its folder), applied."""
    trashed = tmp_path / "trash"
    trashed.mkdir()

    def trash(path: Path) -> None:
        path.rename(trashed / path.name)
        path.parent.rmdir()  # the folder goes too: the restore makes it again

    win.edit_set.host._trash = trash
    accepted = [AcceptedFile("pkg/gone.py", FileChangeKind.DELETED, TEXT, "")]
    applied = apply_set(accepted, win.edit_set.host)
    assert isinstance(applied, AppliedSet)
    assert not (root / "pkg").exists()
    win.edit_set.last = applied
    return applied


def test_undo_writes_the_deleted_file_off_the_ui_thread_then_opens_it(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "gone.py").write_bytes(TEXT.encode())
    win = _window(qtbot, tmp_path, root)
    _deleted(win, tmp_path, root)
    release = threading.Event()
    writers: list[threading.Thread] = []
    real_write = saver_module.atomic_write

    def held_write(target: Path, data: bytes, *args: Any, **kwargs: Any) -> Any:
        writers.append(threading.current_thread())
        assert release.wait(30), "the test never released the write"
        return real_write(target, data, *args, **kwargs)

    monkeypatch.setattr(saver_module, "atomic_write", held_write)
    # The write is held on its thread: undo returns to the event loop all the same.
    assert win.edit_set.undo_last()
    assert win.edit_set.last is None and win.edit_set.host.restoring == 1
    target = (root / "pkg" / "gone.py").resolve()
    assert win.docs.find(target) is None  # not opened before the bytes land
    release.set()
    qtbot.waitUntil(lambda: win.docs.find(target) is not None, timeout=10000)
    assert target.read_bytes() == TEXT.encode()
    assert writers and all(t is not threading.main_thread() for t in writers)
    doc = win.docs.find(target)
    assert doc is not None
    qtbot.waitUntil(lambda: doc.editor.text() == TEXT, timeout=10000)
    assert win.edit_set.host.restoring == 0
    win.close()


def test_a_failed_restore_is_said_and_its_text_kept_unsaved(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "gone.py").write_bytes(TEXT.encode())
    win = _window(qtbot, tmp_path, root)
    _deleted(win, tmp_path, root)

    def failing_write(target: Path, data: bytes, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(saver_module, "atomic_write", failing_write)
    messages: list[str] = []
    win.edit_set.message.connect(lambda text, _ms: messages.append(text))
    assert win.edit_set.undo_last()
    qtbot.waitUntil(lambda: any("could not be restored" in m for m in messages), timeout=10000)
    assert "Permission denied" in messages[-1]
    target = (root / "pkg" / "gone.py").resolve()
    assert not target.exists()
    kept = [d for d in win.docs.documents() if d.editor.text() == TEXT]
    assert len(kept) == 1 and kept[0].path == target
    assert kept[0].banner.kind == "error" and "unsaved" in kept[0].banner.label.text()
    assert kept[0].is_dirty()
    win.close()
