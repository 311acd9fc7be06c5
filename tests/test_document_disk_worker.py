"""A document's disk work off the UI thread (issue 16's "the UI never stalls more than 16 ms":
``bench lsp --ui`` sampled the UI thread in a file's digest when it opened and in a save's
fsync and rename): the digest is computed on the document's disk worker, a save's write,
fsyncs and rename run on the app's writer thread (``app.services.saver``), and a failed save
is shown as an error with the buffer still dirty."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.ui import document as document_module
from app.ui.document import Document
from forecode_core.states import DiskCheck
from forecode_core.store.atomic import TEMP_SUFFIX, atomic_write
from forecode_core.store.settings import Settings


def _open(qtbot: QtBot, path: Path) -> Document:
    doc = Document.open(path, Settings())
    qtbot.addWidget(doc)
    return doc


def _calls_on_ui(calls: list[threading.Thread]) -> list[threading.Thread]:
    return [t for t in calls if t is threading.main_thread()]


@pytest.fixture
def digests(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The thread of each call of the document's digest."""
    calls: list[threading.Thread] = []
    original = document_module._digest

    def recorded(data: bytes) -> str:
        calls.append(threading.current_thread())
        return original(data)

    monkeypatch.setattr(document_module, "_digest", recorded)
    return calls


def test_opening_a_file_hashes_it_off_the_ui_thread(
    qtbot: QtBot, tmp_path: Path, digests: list[threading.Thread]
) -> None:
    path = tmp_path / "a.py"
    path.write_bytes(b"x = 1\n" * 1000)
    doc = _open(qtbot, path)
    assert doc.disk is not None
    assert doc.disk.digest == hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    assert digests and _calls_on_ui(digests) == []


def test_the_lazy_digest_still_tells_a_touch_from_a_change(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    path.write_bytes(b"one\n")
    doc = _open(qtbot, path)
    os.utime(path, ns=(1, 1))  # touched: same bytes
    assert doc.check_disk() is DiskCheck.SAME
    path.write_bytes(b"two\n")
    os.utime(path, ns=(2, 2))
    assert doc.check_disk() is DiskCheck.RELOADED and doc.editor.text() == "two\n"


def test_save_writes_and_fsyncs_off_the_ui_thread_with_the_bytes_and_flag_right(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digests: list[threading.Thread]
) -> None:
    path = tmp_path / "a.py"
    path.write_bytes(b"x = 1\n")
    doc = _open(qtbot, path)
    synced: list[threading.Thread] = []
    replaced: list[threading.Thread] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        synced.append(threading.current_thread())
        real_fsync(fd)

    def replace(src: str, dst: object) -> None:
        replaced.append(threading.current_thread())
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    doc.editor.gotoPos(doc.editor.textLength())
    doc.editor.insertText(doc.editor.textLength(), "y = 2\n")
    assert doc.is_dirty()
    assert doc.save()
    qtbot.waitUntil(lambda: not doc.is_dirty(), timeout=10000)  # the result came back
    assert path.read_bytes() == b"x = 1\ny = 2\n"
    assert len(synced) >= 2 and len(replaced) == 1  # the file, then its folder; one rename
    assert _calls_on_ui(synced + replaced) == [] and _calls_on_ui(digests) == []
    assert doc.disk is not None and doc.disk.size == len(b"x = 1\ny = 2\n")
    assert doc.disk.digest == hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    assert not list(tmp_path.glob(f"*{TEMP_SUFFIX}"))
    assert doc.check_disk() is DiskCheck.SAME  # its own save is not a change on disk


def test_a_failed_fsync_keeps_the_old_file_and_the_buffer_dirty(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.py"
    path.write_bytes(b"x = 1\n")
    doc = _open(qtbot, path)

    def broken(_fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken)
    doc.editor.insertText(0, "# edit\n")
    assert doc.save()
    qtbot.waitUntil(lambda: doc.banner.kind == "error", timeout=10000)
    assert "Input/output error" in doc.banner.label.text()
    assert "save again" in doc.banner.label.text()
    assert doc.is_dirty() and doc.editor.text().startswith("# edit\n")
    assert path.read_bytes() == b"x = 1\n"  # fsynced before the rename: never renamed
    assert not list(tmp_path.glob(f"*{TEMP_SUFFIX}"))


def test_a_save_that_cannot_write_fails_and_keeps_the_buffer_dirty(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    path = tmp_path / "a.py"
    path.write_bytes(b"x = 1\n")
    doc = _open(qtbot, path)
    doc.editor.insertText(0, "# edit\n")

    def full(*_a: object, **_k: object) -> tuple[int, str]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", full)
    results: list[bool] = []
    assert doc.save(on_done=results.append)
    qtbot.waitUntil(lambda: results == [False], timeout=10000)
    assert doc.banner.kind == "error" and "No space left" in doc.banner.label.text()
    assert doc.is_dirty() and path.read_bytes() == b"x = 1\n"


def test_a_tab_closed_before_its_save_ends_is_never_destroyed_on_the_writer(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The save's callback on the writer thread holds no strong reference to the document:
    a document dropped while its save waits is destroyed on the UI thread, never on the
    writer (a QWidget destroyed there crashed the process in a fresh-clone test run)."""
    import gc
    import weakref

    from app.services import saver as saver_module

    path = tmp_path / "a.py"
    path.write_bytes(b"x = 1\n")
    doc = Document.open(path, Settings())  # no parent, no qtbot: Python owns the widget
    gate = threading.Event()

    def held(target: Path, data: bytes) -> os.stat_result:
        gate.wait(10)  # the writer is busy meanwhile
        return atomic_write(target, data)

    monkeypatch.setattr("app.services.saver.atomic_write", held)
    doc.editor.insertText(0, "# edit\n")
    assert doc.save()
    ref = weakref.ref(doc)
    doc.deleteLater()
    del doc
    qtbot.wait(50)  # deleteLater runs here, on the UI thread
    gc.collect()
    assert ref() is None  # nothing on the writer keeps it alive
    gate.set()
    assert saver_module.saver().wait(10)  # the save ran
    qtbot.wait(50)
    assert path.read_bytes() == b"# edit\nx = 1\n"
