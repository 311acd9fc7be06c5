"""The UI thread while language servers start, index and report (``python -m bench lsp
--ui``): issue 16's "the UI never stalls more than 16 ms".

A real ``MainWindow`` (offscreen unless a display is set; settings in a scratch folder:
no completion engine, no chat service, the servers on) opens a copy of this repository's
``forecode_core`` (this checkout's ``.venv`` linked beside it), then opens ``files`` modules
one after another, types into the first (a fresh undefined name each round, so both servers
re-check and report) and saves it, while a 2 ms precise ``QTimer`` on the UI thread records
the gaps between its firings (``bench.local_engine``'s probe). A stall is a gap minus the
2 ms interval. The run ends when both servers have reported on the typed file's last version
(or after ``WAIT_S``).

Keys: ``max_ui_stall_ms``, ``ui_stall_p99_ms``, ``ui_stalls_over_16ms`` (count),
``max_ui_busy_ms`` and ``ui_busy_over_16ms`` (the UI thread's CPU time within a gap: on a
loaded machine a gap is mostly waiting for a core; this part is Forecode's own work),
``ui_probe_ticks``, ``ui_servers_reported`` (both servers answered), ``ui_window_s`` (the
probed time). Wall clock on a shared machine: read with the load average.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._common import REPO, percentile

__all__ = ["FILES", "measure_ui"]

PROBE_MS = 2
WAIT_S = 180.0
FILES = (
    "store/settings.py",
    "lsp/positions.py",
    "lsp/diagnostics.py",
    "completion/prompt.py",
    "chat/context.py",
)


def _pump_until(cond: Callable[[], bool], timeout_s: float) -> bool:
    from PySide6.QtCore import QCoreApplication, QEventLoop

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    return cond()


def _stalls(gaps_ms: list[float]) -> dict[str, Any]:
    stalls = [max(0.0, g - PROBE_MS) for g in gaps_ms]
    return {
        "max_ui_stall_ms": round(max(stalls, default=0.0), 1),
        "ui_stall_p99_ms": round(percentile(stalls, 99), 1) if stalls else 0.0,
        "ui_stalls_over_16ms": sum(1 for s in stalls if s > 16),
        "ui_probe_ticks": len(gaps_ms),
    }


def _busy(busy_ms: list[float]) -> dict[str, Any]:
    """The UI thread's own work in a gap (CPU time): a long gap with little of it is the
    machine's load (the thread was not scheduled), not Forecode's work."""
    return {
        "max_ui_busy_ms": round(max(busy_ms, default=0.0), 1),
        "ui_busy_over_16ms": sum(1 for b in busy_ms if b > 16),
    }


def measure_ui(rounds: int) -> dict[str, Any]:
    """The keys above (module docstring)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="fc-bench-lspui-") as tmp:
        scratch = Path(tmp)
        root = scratch / "ws"
        shutil.copytree(
            REPO / "forecode_core",
            root / "forecode_core",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        venv = REPO / ".venv"
        if venv.is_dir():
            (root / ".venv").symlink_to(venv, target_is_directory=True)
        config = scratch / "config"
        config.mkdir()
        settings = {"completion.enabled": False, "cloud.autostart": False, "lsp.enabled": True}
        (config / "settings.json").write_text(json.dumps(settings))
        os.environ["FORECODE_CONFIG_DIR"] = str(config)
        os.environ["FORECODE_DATA_DIR"] = str(scratch / "data")
        os.environ.pop("FORECODE_LSP", None)
        return _run_window(root, rounds)


class _Probe:
    """The 2 ms probe on the UI thread, and a watchdog thread that, while a gap runs past
    20 ms, samples the UI thread's stack (where its time goes during stalls)."""

    def __init__(self) -> None:
        from PySide6.QtCore import QElapsedTimer, Qt, QTimer

        self.gaps: list[float] = []
        self.busy: list[float] = []  # the UI thread's CPU time within each gap
        self.stacks: Counter[str] = Counter()
        self._clock = QElapsedTimer()
        self._clock.start()
        self._last: tuple[int, int] | None = None
        self._last_s = time.monotonic()
        self._ui = threading.get_ident()
        self._stop = threading.Event()
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._tick)
        self._watch = threading.Thread(target=self._watchdog, name="bench-watchdog", daemon=True)

    def start(self) -> None:
        self.timer.start()
        self._watch.start()

    def stop(self) -> None:
        self.timer.stop()
        self._stop.set()
        self._watch.join(1.0)

    def _tick(self) -> None:
        now, cpu = self._clock.nsecsElapsed(), time.thread_time_ns()
        self._last_s = time.monotonic()
        if self._last is not None:
            self.gaps.append((now - self._last[0]) / 1e6)
            self.busy.append((cpu - self._last[1]) / 1e6)
        self._last = (now, cpu)

    def _watchdog(self) -> None:
        while not self._stop.wait(0.005):
            if time.monotonic() - self._last_s < 0.020:
                continue
            frame = sys._current_frames().get(self._ui)
            if frame is not None:
                where = traceback.extract_stack(frame)[-6:]
                key = " < ".join(
                    f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in where[::-1]
                )
                self.stacks[key] += 1

    def keys(self) -> dict[str, Any]:
        return {
            **_stalls(self.gaps),
            **_busy(self.busy),
            "ui_stall_stacks": [f"{n}x {k}" for k, n in self.stacks.most_common(5)],
        }


def _run_window(root: Path, rounds: int) -> dict[str, Any]:
    from PySide6.QtWidgets import QApplication

    from app.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    probe = _Probe()
    win = MainWindow()
    win.resize(1200, 800)
    win.show()
    started = time.perf_counter()
    probe.start()
    reported = False
    try:
        win.open_folder(root)
        docs = [win.open_file(root / "forecode_core" / f) for f in FILES]
        doc = docs[0]
        assert doc is not None, "the first file did not open"
        uri = doc.path.as_uri() if doc.path is not None else ""
        language = win.language
        for i in range(rounds):
            name = f"bench_ui_undefined_{i}"
            editor = doc.editor
            editor.gotoPos(editor.textLength())
            editor.insertText(editor.textLength(), f"\nprint({name})\n")
            _pump_until(lambda: False, 0.3)  # typing pauses; the change goes out
            win.docs.save(doc)

            def both(name: str = name) -> bool:
                found = language.store.all_for(uri)
                sources = {d.source.lower() for d in found if name in d.message}
                return "basedpyright" in sources and "ruff" in sources

            reported = _pump_until(both, WAIT_S if i == 0 else 30.0)
        _pump_until(lambda: False, 1.0)  # the last reports and repaints
    finally:
        probe.stop()
        window_s = time.perf_counter() - started
        for d in list(win.docs.documents()):
            d.editor.setSavePoint()
        win.close()
        app.processEvents()
    return {**probe.keys(), "ui_servers_reported": reported, "ui_window_s": round(window_s, 1)}
