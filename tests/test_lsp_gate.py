"""The editor's hub starts its first work (importing the LSP libraries) once the UI thread is
free, not while the window paints the files that made it: ``GatedHub`` waits for its gate (at
most ``GATE_MAX_S``), ``UiFree`` opens it when a UI timer runs on time again."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.services.lsp import hub as hub_module
from app.services.lsp import warm
from app.services.lsp.hub import GatedHub, LspHub
from app.ui import lsp_bridge
from app.ui.lsp_bridge import LspBridge, UiFree


def _record(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``warm.prepare`` and the hub's document opens, in the order they run."""
    order: list[str] = []
    monkeypatch.setattr(warm, "prepared", lambda: False)

    def prepare() -> float:
        order.append("prepare")
        return 0.0

    monkeypatch.setattr(warm, "prepare", prepare)
    real_open = hub_module.LspHub._open_new

    def open_new(self: hub_module.LspHub, *args: object) -> None:
        order.append("open")
        real_open(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(hub_module.LspHub, "_open_new", open_new)
    return order


def test_a_gated_hub_prepares_when_its_gate_opens_and_opens_wait_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order = _record(monkeypatch)
    hub = GatedHub(lambda *_a: None, lambda _s: None, ())
    try:
        version = hub.open("file:///x.txt", "plaintext", "text", Path("/"))  # never waits
        assert version == 1
        time.sleep(0.3)
        assert order == []  # the gate is shut: nothing ran on the hub's thread
        hub.open_gate()
        hub.call(lambda: None).result(10)
    finally:
        hub.shutdown(2.0)
    assert order == ["prepare", "open"]


def test_a_gate_never_opened_holds_the_first_work_at_most_gate_max_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order = _record(monkeypatch)
    monkeypatch.setattr(hub_module, "GATE_MAX_S", 0.2)
    hub = GatedHub(lambda *_a: None, lambda _s: None, ())
    try:
        hub.open("file:///x.txt", "plaintext", "text", Path("/"))
        hub.call(lambda: None).result(10)
    finally:
        hub.shutdown(2.0)
    assert order == ["prepare", "open"]


def test_ui_free_waits_while_the_ui_thread_is_busy_then_calls_once(qtbot: QtBot) -> None:
    """Events handled every 50 ms (a UI thread busy in between) never run its timer on time:
    it waits; an idle event loop then calls ``then`` once, ``SETTLE_MS`` or more after."""
    app = QApplication.instance()
    assert app is not None
    called: list[float] = []
    start = time.perf_counter()
    free = UiFree(lambda: called.append(time.perf_counter() - start))
    busy_until = start + 0.4
    while time.perf_counter() < busy_until:
        time.sleep(0.05)  # the UI thread's own work
        app.processEvents()
    assert called == [] and free.waiting
    qtbot.waitUntil(lambda: bool(called), timeout=3000)
    qtbot.wait(100)
    assert len(called) == 1 and not free.waiting
    assert called[0] >= lsp_bridge.SETTLE_MS / 1000


def test_the_bridge_opens_its_hubs_gate_when_the_ui_is_free(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = _record(monkeypatch)
    monkeypatch.setattr(hub_module, "GATE_MAX_S", 30.0)  # only the gate can let it start
    bridge = LspBridge(())
    try:
        assert isinstance(bridge.hub, GatedHub)
        seen = threading.Event()
        bridge.hub.call(seen.set)
        qtbot.waitUntil(seen.is_set, timeout=5000)
        assert not bridge.ui_free.waiting
    finally:
        bridge.shutdown(2.0)
    assert order == ["prepare"]


def test_a_servers_last_word_after_the_bridge_is_gone_raises_nothing(qtbot: QtBot) -> None:
    """A process that exits without closing its window: the servers' last status, a late
    report or answer reach a deleted bridge on the LSP thread; nobody to tell, no traceback
    (seen as "RuntimeError: Signal source has been deleted" from Session._done)."""
    from concurrent.futures import Future

    import shiboken6

    from app.services.lsp.hub import ServerStatus
    from forecode_core.lsp.restart import ServerState

    bridge = LspBridge(())
    bridge.shutdown(2.0)
    shiboken6.delete(bridge)
    bridge._on_status(ServerStatus("basedpyright", ServerState.FAILED, "gone"))
    bridge._on_diagnostics("file:///a.py", 1, "ruff", [])
    done: Future[object] = Future()
    done.set_result(None)
    bridge._finished(1, done)


def test_the_servers_of_documents_opened_meanwhile_start_before_the_import_ends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A document opened before the hub is ready has its server's process started before
    ``warm.prepare`` (the import, 250-700 ms at the first start) ends, so the server boots
    meanwhile; the document's own open still waits behind the import, and a process no session
    took is killed at shutdown. The server here is a real process that says when it started."""
    order = _record(monkeypatch)
    release = threading.Event()
    in_prepare = threading.Event()

    def slow_prepare() -> float:
        in_prepare.set()
        release.wait(30)
        order.append("prepare")
        return 0.0

    monkeypatch.setattr(warm, "prepare", slow_prepare)
    marker = tmp_path / "started"
    script = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    table = (("plaintext", ((sys.executable, "-c", script, str(marker)),)),)
    hub = GatedHub(lambda *_a: None, lambda _s: None, table, init_timeout_s=60.0)
    try:
        hub.open((tmp_path / "x.txt").as_uri(), "plaintext", "text", tmp_path)
        hub.open_gate()
        assert in_prepare.wait(10)
        deadline = time.monotonic() + 20
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the server did not start while the hub imported"
        assert order == []  # still importing: the open itself has not run
        release.set()
        hub.call(lambda: None).result(10)
        assert order == ["prepare", "open"]
        pid = int(marker.read_text())

        def pids() -> list[int | None]:
            return hub.call(lambda: [s.pid for s in hub.sessions()]).result(10)

        deadline = time.monotonic() + 10
        while pids() != [pid] and time.monotonic() < deadline:  # its start is a task
            time.sleep(0.02)
        assert pids() == [pid]  # the session took the early process
    finally:
        release.set()
        hub.shutdown(3.0)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def test_an_early_process_no_session_takes_is_killed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A hub shut down before it was ready (the window closed during the import): the process
    it started early is killed, not left running."""
    _record(monkeypatch)
    release = threading.Event()
    monkeypatch.setattr(warm, "prepare", lambda: release.wait(30) and 0.0)
    marker = tmp_path / "started"
    script = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)"
    table = (("plaintext", ((sys.executable, "-c", script, str(marker)),)),)
    hub = LspHub(lambda *_a: None, lambda _s: None, table)
    hub.open((tmp_path / "x.txt").as_uri(), "plaintext", "text", tmp_path)
    deadline = time.monotonic() + 20
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists()
    pid = int(marker.read_text())
    threading.Timer(0.2, release.set).start()  # the import ends while the hub shuts down
    hub.shutdown(3.0)
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def test_a_failed_early_start_still_lets_the_hub_get_ready(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The early start is a head start only: when it fails (here, finding the program raises),
    the hub still gets ready and the document's open runs, its session starting its own."""
    order = _record(monkeypatch)
    calls: list[tuple[str, ...]] = []

    def resolve(argv: tuple[str, ...]) -> list[str] | None:
        calls.append(argv)
        if len(calls) == 1:
            raise OSError("the first lookup fails")
        return None  # then: not installed (reported missing, nothing started)

    statuses: list[object] = []
    hub = LspHub(lambda *_a: None, statuses.append, (), resolve=resolve)
    try:
        hub.open((tmp_path / "x.py").as_uri(), "python", "x = 1\n", tmp_path)
        hub.call(lambda: None).result(10)
    finally:
        hub.shutdown(2.0)
    assert order == ["prepare", "open"]
    assert len(calls) >= 2 and statuses  # the open looked the servers up again and said so
