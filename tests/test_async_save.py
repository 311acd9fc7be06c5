"""Saves never block the UI thread (issue 16's "the UI never stalls more than 16 ms": a save's
rename blocked it 17-116 ms on a busy disk). A real window offscreen, real files, and one seam:
the writer's ``atomic_write`` can be held on an ``Event`` (``Gate``), so a save is seen in
flight. What a VS Code / Zed user expects: Ctrl+S returns at once and the tab's dirty dot
clears when the bytes are on disk; a failed save shows an error and loses nothing; typing
during a save leaves the buffer dirty; two quick saves land in order; closing with "Save"
waits for that save's result; quitting waits for a save in flight; the file watcher does not
take our own save for someone else's change."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from pytestqt.qtbot import QtBot

from app.services.saver import saver
from app.ui.document import Document
from app.ui.main_window import MainWindow
from forecode_core.states import SaveChoice
from forecode_core.store.atomic import atomic_write
from tests.helpers.window import folder_window

ORIGINAL = "x = 1\n"


class Gate:
    """Holds every write of the app's writer thread until ``open()``; records the bytes of
    each write in the order they reached the disk."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.entered = threading.Event()
        self.written: list[bytes] = []

    def write(self, target: Path, data: bytes) -> os.stat_result:
        self.entered.set()
        assert self.event.wait(20), "the test never opened the gate"
        result = atomic_write(target, data)
        self.written.append(data)
        return result

    def open(self) -> None:
        self.event.set()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    held = Gate()
    monkeypatch.setattr("app.services.saver.atomic_write", held.write)
    yield held
    held.open()  # never leave the writer held for the next test
    assert saver().wait(20)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text(ORIGINAL)
    return root


def _open(qtbot: QtBot, ws: Path) -> tuple[MainWindow, Document]:
    win = folder_window(qtbot, ws)
    doc = win.open_file(ws / "pkg" / "a.py")
    assert doc is not None
    return win, doc


def _type(qtbot: QtBot, doc: Document, text: str) -> None:
    doc.editor.gotoPos(doc.editor.textLength())
    qtbot.keyClicks(doc.editor, text)


def _ctrl_s(qtbot: QtBot, doc: Document) -> None:
    qtbot.keyClick(doc.editor, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)


def _marked(win: MainWindow, doc: Document) -> bool:
    """The tab shows the modified mark: ``●`` on its close button, the title unchanged."""
    close = win.docs.close_button(doc)
    assert close is not None and win.tabs.tabText(win.tabs.indexOf(doc)) == doc.title
    return close.text() == "●"


def test_ctrl_s_returns_before_the_write_and_the_dot_clears_when_on_disk(
    qtbot: QtBot, ws: Path, gate: Gate
) -> None:
    win, doc = _open(qtbot, ws)
    _type(qtbot, doc, "y = 2")
    path = ws / "pkg" / "a.py"
    _ctrl_s(qtbot, doc)  # returns although the writer is held
    assert gate.entered.wait(10)  # the write is in flight, on the writer thread
    ticks: list[int] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(5)
    qtbot.wait(100)  # the event loop runs meanwhile: the UI thread is not waiting on the disk
    timer.stop()
    assert ticks, "the UI thread did not run its timer while the save was held"
    assert doc.save_pending and doc.is_dirty() and _marked(win, doc)
    assert path.read_text() == ORIGINAL
    gate.open()
    qtbot.waitUntil(lambda: not _marked(win, doc), timeout=10000)
    assert path.read_text() == ORIGINAL + "y = 2"
    assert not doc.is_dirty() and not doc.save_pending


def test_typing_during_a_save_keeps_the_buffer_dirty_and_saves_the_snapshot(
    qtbot: QtBot, ws: Path, gate: Gate
) -> None:
    win, doc = _open(qtbot, ws)
    _type(qtbot, doc, "y = 2")
    results: list[bool] = []
    doc.saveFinished.connect(results.append)
    _ctrl_s(qtbot, doc)
    assert gate.entered.wait(10)
    _type(qtbot, doc, " z = 3")  # typed while the save runs
    gate.open()
    qtbot.waitUntil(lambda: results == [True], timeout=10000)
    assert (ws / "pkg" / "a.py").read_text() == ORIGINAL + "y = 2"  # the snapshot of Ctrl+S
    assert doc.is_dirty() and _marked(win, doc)
    assert doc.editor.text() == ORIGINAL + "y = 2 z = 3"


def test_two_quick_saves_land_in_order_and_the_later_wins(
    qtbot: QtBot, ws: Path, gate: Gate
) -> None:
    _win, doc = _open(qtbot, ws)
    _type(qtbot, doc, "first")
    _ctrl_s(qtbot, doc)
    assert gate.entered.wait(10)
    _type(qtbot, doc, " second")
    _ctrl_s(qtbot, doc)  # queued behind the first
    gate.open()
    qtbot.waitUntil(lambda: not doc.save_pending, timeout=10000)
    assert gate.written == [b"x = 1\nfirst", b"x = 1\nfirst second"]
    assert (ws / "pkg" / "a.py").read_text() == "x = 1\nfirst second"
    assert not doc.is_dirty() and doc.banner.kind == ""  # the second is no conflict


def test_a_failed_save_shows_the_error_and_keeps_the_text_dirty(qtbot: QtBot, ws: Path) -> None:
    """The folder is gone (a real failure of the real writer, no seam)."""
    win, doc = _open(qtbot, ws)
    _type(qtbot, doc, "y = 2")
    shutil.rmtree(ws / "pkg")
    qtbot.waitUntil(lambda: doc.deleted_on_disk, timeout=10000)  # the watcher saw it first
    results: list[bool] = []
    doc.saveFinished.connect(results.append)
    _ctrl_s(qtbot, doc)
    qtbot.waitUntil(lambda: results == [False], timeout=10000)
    assert doc.banner.kind == "error"
    assert "Could not save" in doc.banner.label.text()
    assert "No such file or directory" in doc.banner.label.text()
    assert doc.is_dirty() and doc.editor.text() == ORIGINAL + "y = 2"
    assert _marked(win, doc)
    (ws / "pkg").mkdir()  # the folder is back: saving again works
    _ctrl_s(qtbot, doc)
    qtbot.waitUntil(lambda: results == [False, True], timeout=10000)
    assert (ws / "pkg" / "a.py").read_text() == ORIGINAL + "y = 2" and not doc.is_dirty()


def test_a_save_keeps_an_owner_only_mode(qtbot: QtBot, ws: Path) -> None:
    path = ws / "pkg" / "a.py"
    path.chmod(0o600)
    _win, doc = _open(qtbot, ws)
    _type(qtbot, doc, "y = 2")
    assert doc.save() and doc.wait_saves()
    assert path.read_text() == ORIGINAL + "y = 2" and (path.stat().st_mode & 0o777) == 0o600


def test_close_with_save_waits_for_the_result(
    qtbot: QtBot, ws: Path, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    win, doc = _open(qtbot, ws)
    _type(qtbot, doc, "y = 2")
    monkeypatch.setattr(win.docs, "ask_save", lambda _d: SaveChoice.SAVE)
    closed: list[Document] = []
    win.docs.closing.connect(closed.append)
    assert win.close_tab(win.tabs.indexOf(doc)) is False  # not yet: the save is held
    assert gate.entered.wait(10)
    qtbot.wait(50)
    assert win.tabs.indexOf(doc) >= 0 and closed == []
    assert win.close_tab(win.tabs.indexOf(doc)) is False  # asked again: no second question
    gate.open()
    qtbot.waitUntil(lambda: closed == [doc], timeout=10000)
    assert win.tabs.count() == 0
    assert (ws / "pkg" / "a.py").read_text() == ORIGINAL + "y = 2"


def test_close_with_a_failed_save_keeps_the_tab(
    qtbot: QtBot, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    win, doc = _open(qtbot, ws)
    _type(qtbot, doc, "y = 2")
    shutil.rmtree(ws / "pkg")
    qtbot.waitUntil(lambda: doc.deleted_on_disk, timeout=10000)  # the watcher saw it first
    monkeypatch.setattr(win.docs, "ask_save", lambda _d: SaveChoice.SAVE)
    results: list[bool] = []
    doc.saveFinished.connect(results.append)
    assert win.close_tab(win.tabs.indexOf(doc)) is False
    qtbot.waitUntil(lambda: results == [False], timeout=10000)
    qtbot.wait(50)
    assert win.tabs.indexOf(doc) >= 0 and doc.is_dirty() and doc.banner.kind == "error"
    assert doc.editor.text() == ORIGINAL + "y = 2"


def test_quitting_waits_for_a_save_in_flight(qtbot: QtBot, ws: Path, gate: Gate) -> None:
    win, doc = _open(qtbot, ws)
    _type(qtbot, doc, "y = 2")
    saved: list[str] = []
    win.docs.saved.connect(saved.append)
    _ctrl_s(qtbot, doc)
    assert gate.entered.wait(10)
    release = threading.Timer(0.3, gate.open)  # the disk answers while the window closes
    release.start()
    win.close()  # hot exit: waits (bounded) for the save first
    release.join()
    assert (ws / "pkg" / "a.py").read_text() == ORIGINAL + "y = 2"
    assert saved == [str(ws / "pkg" / "a.py")]  # its listeners heard it before they stopped


def test_the_watcher_does_not_report_our_own_save(qtbot: QtBot, ws: Path) -> None:
    win, doc = _open(qtbot, ws)
    changed: list[str] = []
    win.docs.disk_changed.connect(changed.append)
    _type(qtbot, doc, "y = 2")
    _ctrl_s(qtbot, doc)
    qtbot.waitUntil(lambda: not doc.is_dirty(), timeout=10000)
    qtbot.wait(400)  # the watcher's event and its recheck (50 ms later) have run
    assert changed == []
    assert doc.banner.kind == "" and not doc.conflict
    assert doc.editor.text() == ORIGINAL + "y = 2"
    # Someone else's change is still reported.
    path = ws / "pkg" / "a.py"
    path.write_text("theirs\n")
    qtbot.waitUntil(lambda: changed == [str(path)], timeout=10000)
    qtbot.waitUntil(lambda: doc.editor.text() == "theirs\n", timeout=10000)  # reloaded


def test_save_as_writes_on_the_writer_and_renames_the_tab_when_done(
    qtbot: QtBot, ws: Path, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    win = folder_window(qtbot, ws)
    doc = win.docs.new_untitled()
    qtbot.keyClicks(doc.editor, "notes")
    target = ws / "notes.txt"
    monkeypatch.setattr(
        "app.ui.owners.documents.QFileDialog.getSaveFileName",
        lambda *_a, **_k: (str(target), ""),
    )
    renamed: list[Document] = []
    win.docs.renamed.connect(renamed.append)
    assert win.docs.save(doc)
    assert gate.entered.wait(10)
    assert renamed == [] and not target.exists() and doc.is_dirty()
    gate.open()
    qtbot.waitUntil(lambda: renamed == [doc], timeout=10000)
    assert target.read_text() == "notes" and not doc.is_dirty()
    assert doc.path == target.resolve() and win.tabs.tabText(win.tabs.indexOf(doc)) == "notes.txt"
    assert str(target) in win.docs.watcher.files()


def test_a_rename_waits_for_the_save_in_flight(qtbot: QtBot, ws: Path, gate: Gate) -> None:
    """Renamed while its save is held, the save would write the old path again: the explorer
    refuses the rename until the save has finished."""
    win, doc = _open(qtbot, ws)
    ops = win.explorer_ops
    ops.ask_name = lambda *_a, **_k: "b.py"  # type: ignore[method-assign]
    source = ws / "pkg" / "a.py"
    _type(qtbot, doc, "y = 2")
    _ctrl_s(qtbot, doc)
    assert gate.entered.wait(10)
    assert ops.rename(source) is None
    assert "is being saved" in ops.last_error and source.exists()
    assert not (ws / "pkg" / "b.py").exists() and doc.path == source.resolve()
    gate.open()
    qtbot.waitUntil(lambda: not doc.save_pending, timeout=10000)
    assert ops.rename(source) == ws / "pkg" / "b.py"
    assert not source.exists() and doc.path == (ws / "pkg" / "b.py").resolve()
    assert (ws / "pkg" / "b.py").read_text() == ORIGINAL + "y = 2"


def test_a_delete_waits_for_the_save_in_flight(qtbot: QtBot, ws: Path, gate: Gate) -> None:
    """Deleted while its save is held, the save would write the deleted file again: the
    explorer refuses the delete (before asking) until the save has finished."""
    win, doc = _open(qtbot, ws)
    ops = win.explorer_ops
    asked: list[str] = []
    ops.confirm = lambda text, *_a: asked.append(text) or False  # type: ignore[method-assign]
    source = ws / "pkg" / "a.py"
    _type(qtbot, doc, "y = 2")
    _ctrl_s(qtbot, doc)
    assert gate.entered.wait(10)
    ops.delete(source)
    assert "is being saved: delete it" in win.statusBar().currentMessage()
    assert not asked and source.exists()
    gate.open()
    qtbot.waitUntil(lambda: not doc.save_pending, timeout=10000)
    ops.delete(source)  # now asked (and declined here: nothing deleted)
    assert len(asked) == 1 and source.exists()
