"""The UI thread never waits in ``Thread.start`` (issue 16's "the UI never stalls more than
16 ms": ``bench lsp --ui`` sampled it there while the servers indexed; ``app.services.threads``).

``Thread.start`` is recorded with the thread that called it; after the launcher exists, nothing
the window does on the UI thread (opening a folder: git status and its decorations, the
backups, a file) may call it there.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.services.threads import SerialExecutor, UiThread, prestart


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """(the started thread's name, the caller's name) for every ``Thread.start``."""
    prestart()
    seen: list[tuple[str, str]] = []
    original = threading.Thread.start

    def recorded(self: threading.Thread) -> None:
        seen.append((self.name, threading.current_thread().name))
        original(self)

    monkeypatch.setattr(threading.Thread, "start", recorded)
    yield seen


def _on_ui(seen: list[tuple[str, str]]) -> list[str]:
    main = threading.main_thread().name
    return [name for name, caller in seen if caller == main]


def test_a_ui_thread_start_is_made_by_the_launcher(starts: list[tuple[str, str]]) -> None:
    ran = threading.Event()
    thread = UiThread(target=ran.set, name="t-job", daemon=True)
    thread.start()
    assert thread.is_alive() or ran.is_set()  # handed over counts as running
    thread.join(10)
    assert ran.is_set() and not thread.is_alive()
    assert _on_ui(starts) == [] and ("t-job", "forecode-thread-launcher") in starts
    with pytest.raises(RuntimeError):
        thread.start()


def test_a_ui_thread_started_off_the_ui_thread_starts_at_once() -> None:
    inner: list[UiThread] = []

    def outer() -> None:
        t = UiThread(target=lambda: None, daemon=True)
        t.start()
        inner.append(t)
        assert t.launched  # no launcher in between off the UI thread

    t = threading.Thread(target=outer)
    t.start()
    t.join(10)
    inner[0].join(10)
    assert not inner[0].is_alive()


def test_join_before_start_is_refused() -> None:
    with pytest.raises(RuntimeError):
        UiThread(target=lambda: None).join()


def test_serial_executor_submit_starts_no_thread_on_the_ui_thread(
    starts: list[tuple[str, str]],
) -> None:
    executor = SerialExecutor("t-serial")
    order: list[int] = []
    futures = [executor.submit(order.append, i) for i in range(5)]
    failing = executor.submit(lambda: 1 // 0)
    assert [f.result(10) for f in futures] == [None] * 5 and order == [0, 1, 2, 3, 4]
    with pytest.raises(ZeroDivisionError):
        failing.result(10)
    executor.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        executor.submit(order.append, 9)
    assert _on_ui(starts) == []


def test_serial_executor_shutdown_cancels_the_queued_jobs() -> None:
    executor = SerialExecutor("t-cancel")
    gate, running = threading.Event(), threading.Event()

    def first_job() -> bool:
        running.set()
        return gate.wait(10)

    first = executor.submit(first_job)
    assert running.wait(10)
    queued = [executor.submit(lambda: "ran") for _ in range(3)]
    executor.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert first.result(10) is True
    assert all(f.cancelled() for f in queued)


def _repo(root: Path) -> Path:
    root.mkdir()
    for args in (["init", "-q", "-b", "main"], ["config", "user.email", "t@example.com"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    subprocess.run(["git", "config", "user.name", "T"], cwd=root, check=True)
    (root / "a.py").write_text("x = 1\n")
    subprocess.run(["git", "add", "."], cwd=root, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "one"], cwd=root, check=True)
    (root / "a.py").write_text("x = 2\n")
    return root


def test_the_window_starts_no_thread_on_the_ui_thread(
    qtbot: QtBot, tmp_path: Path, starts: list[tuple[str, str]]
) -> None:
    """Opening a folder (git status, decorations, the explorer, backups) and a file, then an
    edit and a save: git's first status used to start its executor's thread in ``submit``."""
    from app.ui.main_window import MainWindow

    repo = _repo(tmp_path / "repo")
    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    window.open_folder(repo)
    doc = window.open_file(repo / "a.py")
    assert doc is not None
    qtbot.waitUntil(lambda: window.git.checked, timeout=20000)
    doc.editor.insertText(0, "# edited\n")
    assert window.docs.save(doc) and doc.wait_saves()
    qtbot.wait(200)
    names = {name for name, _ in starts}
    assert any(name.startswith("forecode-git") for name in names), names  # it did start one
    assert _on_ui(starts) == []
