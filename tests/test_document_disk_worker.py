"""A document's disk work off the UI thread (issue 16's "the UI never stalls more than 16 ms":
``bench lsp --ui`` sampled the UI thread in a file's digest when it opened and in a save's
fsync): the digest is computed on the document's disk worker, a save's fsyncs run there after
the atomic rename, and a failed fsync is shown as an error."""

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
from forecode_core.store.atomic import TEMP_SUFFIX, atomic_replace
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


def test_save_fsyncs_off_the_ui_thread_with_the_bytes_and_flag_right(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digests: list[threading.Thread]
) -> None:
    path = tmp_path / "a.py"
    path.write_bytes(b"x = 1\n")
    doc = _open(qtbot, path)
    synced: list[threading.Thread] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(threading.current_thread())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    doc.editor.gotoPos(doc.editor.textLength())
    doc.editor.insertText(doc.editor.textLength(), "y = 2\n")
    assert doc.is_dirty()
    assert doc.save()
    assert path.read_bytes() == b"x = 1\ny = 2\n"  # in the file when save returns
    assert not doc.is_dirty()
    qtbot.waitUntil(lambda: len(synced) >= 2, timeout=10000)  # the file, then its folder
    assert _calls_on_ui(synced) == [] and _calls_on_ui(digests) == []
    assert doc.disk is not None and doc.disk.size == len(b"x = 1\ny = 2\n")
    assert doc.disk.digest == hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    assert not list(tmp_path.glob(f"*{TEMP_SUFFIX}"))
    assert doc.check_disk() is DiskCheck.SAME  # its own save is not a change on disk


def test_a_failed_fsync_is_shown_as_an_error(
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
    assert doc.editor.text().startswith("# edit\n")


def test_a_save_that_cannot_write_fails_at_once_and_keeps_the_buffer_dirty(
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
    assert not doc.save()
    assert doc.banner.kind == "error" and "No space left" in doc.banner.label.text()
    assert doc.is_dirty() and path.read_bytes() == b"x = 1\n"


def test_atomic_replace_renames_first_and_syncs_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "t.txt"
    target.write_bytes(b"old")
    target.chmod(0o640)
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    sync = atomic_replace(target, b"new")
    assert target.read_bytes() == b"new" and synced == []
    assert (target.stat().st_mode & 0o777) == 0o640
    sync()
    assert len(synced) == 2  # the file, then the folder
    assert not list(tmp_path.glob(f"*{TEMP_SUFFIX}"))


def test_a_tab_closed_before_its_fsync_ends_is_never_destroyed_on_the_worker(
    qtbot: QtBot, tmp_path: Path
) -> None:
    """The save's callback on the disk worker holds no strong reference to the document: a
    document dropped while its fsync waits is destroyed on the UI thread, never on the
    worker (a QWidget destroyed there crashed the process in a fresh-clone test run)."""
    import gc
    import weakref

    path = tmp_path / "a.py"
    path.write_bytes(b"x = 1\n")
    doc = Document.open(path, Settings())  # no parent, no qtbot: Python owns the widget
    gate = threading.Event()
    document_module._disk_worker().submit(gate.wait, 10)  # the worker is busy meanwhile
    doc.editor.insertText(0, "# edit\n")
    assert doc.save()
    ref = weakref.ref(doc)
    doc.deleteLater()
    del doc
    qtbot.wait(50)  # deleteLater runs here, on the UI thread
    gc.collect()
    assert ref() is None  # nothing on the worker keeps it alive
    gate.set()
    document_module._disk_worker().submit(lambda: None).result(10)  # the fsync ran
    qtbot.wait(50)
    assert path.read_bytes() == b"# edit\nx = 1\n"
