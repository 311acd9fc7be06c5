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
probed time), ``ui_stall_stacks`` and ``ui_stalls_over_16ms_detail`` (each stall with the
UI thread's stacks a watchdog sampled in it, the other threads running then, the UI thread's
own CPU time and its run-queue wait, and the collections that overlapped it, from gc
callbacks), ``ui_stalls_over_16ms_not_load`` (stalls still over 16 ms without the run-queue
wait: not the machine's load), ``max_ui_blocked_ms`` (the most a stall over 16 ms spent neither
running nor runnable: waiting for the GIL or a lock, which the watchdog cannot sample),
``gil_switch_interval_ms`` (at the end: ``lsp.warm`` lowers it only while it prepares),
``gc_policy``, ``gc_idle_collections``, ``gc_collections``, ``gc_deep_log`` (each deep one's
path, the rule's inputs and ms)
(the app's collector policy, started as ``app.main`` starts it: ``app.ui.gc_idle``),
``ui_rss_mb`` (the process's RSS by round: ``--ui-rounds 500`` is a ~5-minute session),
``ui_diagnostics``, ``ui_first_report_s`` (the folder and files opened in a fresh
process, to both servers naming the first round's typed name: the first squiggles a user
waits for, with the client's import, the gate and the servers' start in it), ``ui_sched``
(``realtime_editor_only``: under ``chrt`` the servers and other child processes are put back
to the normal policy). Wall clock on a shared machine:
read with the load average.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.services.gcpolicy import GcLog

from ._common import REPO, percentile, wait_with_events

__all__ = [
    "FILES",
    "RunQueue",
    "Watchdog",
    "gc_keys",
    "gc_overlaps",
    "measure_ui",
    "measure_ui_fresh",
    "realtime_editor_only",
]

PROBE_MS = 2
WAIT_S = 180.0
FILES = (
    "store/settings.py",
    "lsp/positions.py",
    "lsp/diagnostics.py",
    "completion/prompt.py",
    "chat/context.py",
)


def _pump_until(cond: Callable[[], bool], timeout_s: float, poll_ms: int = 20) -> bool:
    """Run the event loop (blocking between events, as the app's does) until ``cond()`` or
    ``timeout_s``. Until 2026-12-05 it spun on ``processEvents``: under ``chrt -f 1`` that
    kept the UI thread on a core at 100 %, and the kernel's real-time throttling
    (``sched_rt_runtime_us`` 950000 of 1000000) then stopped it for ~50 ms: the 40-52 ms
    stalls with under 2 ms of the UI thread's own work."""
    return wait_with_events(cond, timeout_s, poll_ms=poll_ms)


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


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tids = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                children = Path(f"/proc/{parent}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                out.append(child)
                todo.append(child)
    return out


_DEMOTING: list[subprocess.Popen[bytes]] = []  # the one demoting process, once started


DEMOTE_EVERY_S = 0.01


def _demote_children(root: int) -> None:
    """Until ``root`` exits: every ``DEMOTE_EVERY_S``, its descendants' threads (this
    process's apart) back to the normal policy. Run in a process of its own
    (``realtime_editor_only``): as a thread of the bench it held the GIL for 12 % of py-spy's
    samples of ``--ui-rounds 150``, GIL the UI thread waited for. Every 50 ms and at the
    bench's own priority until 2026-12-06: the servers now start while ``forecode-lsp``
    imports (``app.services.lsp.spawn``), and a Node at FIFO 1 beside that import held both
    cores, the UI thread (their equal) waiting 36-47 ms in each run until this process, their
    equal too, got a core to demote it."""
    me = os.getpid()
    while os.getppid() == root:
        time.sleep(DEMOTE_EVERY_S)
        for pid in _descendants(root):
            if pid == me:
                continue
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for tid in map(int, tids):
                try:
                    if os.sched_getscheduler(tid) != os.SCHED_OTHER:
                        os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
                except OSError:
                    continue


def realtime_editor_only() -> str:
    """Under ``chrt -f 1`` every thread and child process inherits the real-time policy: the
    language servers (basedpyright's Node, ruff) and the engine worker's llama.cpp threads
    then run as the UI thread's equals, and a real-time thread is never preempted by an equal
    one, so the UI thread can wait for a server's thread to block (seen 2026-12-05 17:28 at
    load 45: the bench's own basedpyright Node at FIFO 1 ran at 95 % of a core for minutes
    while the bench's main thread, FIFO 1 too, got no CPU time beside another job's FIFO
    process); no user's machine runs them so. From here on a thread puts every child
    process's threads back to the normal policy within 50 ms; the editor's own threads keep
    the UI thread's (they hold the GIL it needs).
    Returns the UI thread's policy (``ui_sched`` in the results).
    ``FORECODE_BENCH_INHERIT_RT=1`` keeps the children real-time (the condition of the figures
    before 2026-12-05 17:00, to compare)."""
    if not hasattr(os, "sched_getscheduler") or not Path("/proc/self/task").is_dir():
        return "n/a"
    policy = os.sched_getscheduler(0)
    names = {os.SCHED_OTHER: "other", os.SCHED_FIFO: "fifo", os.SCHED_RR: "rr"}
    name = f"{names.get(policy, str(policy))} {os.sched_getparam(0).sched_priority}"
    if policy not in (os.SCHED_FIFO, os.SCHED_RR):
        return name
    if os.environ.get("FORECODE_BENCH_INHERIT_RT"):
        return f"{name}, inherited by child processes"
    if not _DEMOTING:
        code = "import sys; from bench.lsp_ui import _demote_children as d; d(int(sys.argv[1]))"
        demoter = subprocess.Popen([sys.executable, "-c", code, str(os.getpid())], cwd=REPO)
        _DEMOTING.append(demoter)
        # one step above the editor: it preempts a real-time child to demote it
        with contextlib.suppress(OSError):
            top = os.sched_get_priority_max(policy)
            above = min(os.sched_getparam(0).sched_priority + 1, top)
            os.sched_setscheduler(demoter.pid, policy, os.sched_param(above))
    return f"{name}, child processes normal"


def measure_ui(rounds: int) -> dict[str, Any]:
    """The keys above (module docstring)."""
    sched = realtime_editor_only()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="fc-bench-lspui-") as tmp:
        root = editor_workspace(Path(tmp))
        return {**_run_window(root, rounds), "ui_sched": sched}


def editor_workspace(scratch: Path) -> Path:
    """``scratch/ws``: a copy of this repository's ``forecode_core`` (this checkout's ``.venv``
    linked beside it); the window's settings and data in ``scratch`` (no completion engine, no
    chat service, the servers on), set for this process's windows."""
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
    return root


_FRESH_LIBS = ("lsprotocol.types", "pygls.lsp.client", "cattrs")


def measure_ui_fresh(rounds: int) -> dict[str, Any]:
    """``measure_ui`` in a new interpreter (``python -m bench.lsp_ui ROUNDS``), as ``bench lsp
    --ui`` runs it: a user's editor meets its first server start without pygls, lsprotocol or
    cattrs imported, where ``bench lsp`` has imported them and generated the converter's code
    before its ``--ui`` part (until 2026-12-05 the window was measured in that process: the
    first start's imports, 250-700 ms of CPU on the ``forecode-lsp`` thread, never showed).
    ``ui_fresh_process``: none of them was imported when the window opened."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.lsp_ui", str(rounds)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=WAIT_S + 60.0 * rounds,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"bench.lsp_ui failed ({out.returncode}): {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _main(argv: list[str]) -> None:
    fresh = not any(name in sys.modules for name in _FRESH_LIBS)
    result = {**measure_ui(int(argv[0]) if argv else 1), "ui_fresh_process": fresh}
    print(json.dumps(result))


_WAITING = frozenset(
    {
        "wait",
        "select",
        "poll",
        "sleep",
        "get",
        "_worker",
        "read",
        "readline",
        "recv_into",
        "accept",
        "_wait_for_tstate_lock",
        "run_forever",
        "_run_once",
        "readinto",
        "result",
    }
)


class RunQueue:
    """The thread that made it (the UI thread): its time runnable but not running, waiting for
    a core (``/proc/thread-self/schedstat``'s second field, ns; 0 where there is none). In a
    stall, that part is the machine's load; the rest is the thread's own work (``busy``) or
    a wait for the GIL or for nothing to do."""

    def __init__(self) -> None:
        try:
            self._fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = -1

    def ns(self) -> int:
        if self._fd < 0:
            return 0
        try:
            return int(os.pread(self._fd, 128, 0).split()[1])
        except (OSError, ValueError, IndexError):
            return 0


class Watchdog:
    """A thread that, while the UI thread's current gap runs past ``after_s``, samples the UI
    thread's stack and the other threads' innermost frames that are not in a waiting call
    (who may hold the GIL the UI thread waits for). ``gap_start()`` is when the current gap
    began (``time.perf_counter``). Samples by gap start: ``samples`` (the UI thread's) and
    ``others``."""

    def __init__(self, gap_start: Callable[[], float], after_s: float = 0.010) -> None:
        self.stacks: Counter[str] = Counter()
        self.samples: dict[float, list[str]] = {}
        self.others: dict[float, list[str]] = {}
        self._gap_start = gap_start
        self._after_s = after_s
        self._ui = threading.get_ident()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1.0)

    def _run(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(0.003):
            start = self._gap_start()
            if time.perf_counter() - start < self._after_s:
                continue
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                if ident == self._ui:
                    where = traceback.extract_stack(frame)[-6:]
                    key = " < ".join(
                        f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in where[::-1]
                    )
                    self.stacks[key] += 1
                    _add_once(self.samples.setdefault(start, []), key)
                elif frame.f_code.co_name not in _WAITING:
                    code = frame.f_code
                    where_other = (
                        f"{names.get(ident, ident)}: {Path(code.co_filename).name}:"
                        f"{frame.f_lineno} {code.co_name}"
                    )
                    _add_once(self.others.setdefault(start, []), where_other)

    def detail(self, start: float) -> str:
        ui = " | ".join(self.samples.get(start, [])) or "not sampled"
        others = self.others.get(start, [])
        return ui + (f"; running: {' | '.join(others[:4])}" if others else "")


def _add_once(into: list[str], key: str) -> None:
    if key not in into:
        into.append(key)


class _Probe:
    """The 2 ms probe on the UI thread, and a ``Watchdog`` that, while a gap runs past
    10 ms, samples the UI thread's stack (where its time goes during stalls) and the other
    threads that are running."""

    def __init__(self) -> None:
        from PySide6.QtCore import QElapsedTimer, Qt, QTimer

        self.gaps: list[float] = []
        self.busy: list[float] = []  # the UI thread's CPU time within each gap
        # over 16 ms: (gap ms, busy ms, start, ms runnable but waiting for a core)
        self.long: list[tuple[float, float, float, float]] = []
        self._clock = QElapsedTimer()
        self._clock.start()
        self._last: tuple[int, int, int] | None = None
        self._runq = RunQueue()
        self._last_s = time.perf_counter()
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(PROBE_MS)
        self.timer.timeout.connect(self._tick)
        self.watch = Watchdog(lambda: self._last_s)

    def start(self) -> None:
        self.timer.start()
        self.watch.start()

    def stop(self) -> None:
        self.timer.stop()
        self.watch.stop()

    def _tick(self) -> None:
        now, cpu, runq = self._clock.nsecsElapsed(), time.thread_time_ns(), self._runq.ns()
        start, self._last_s = self._last_s, time.perf_counter()
        if self._last is not None:
            gap, busy = (now - self._last[0]) / 1e6, (cpu - self._last[1]) / 1e6
            self.gaps.append(gap)
            self.busy.append(busy)
            if gap - PROBE_MS > 16:
                self.long.append((gap, busy, start, (runq - self._last[2]) / 1e6))
        self._last = (now, cpu, runq)

    def keys(self, gc_log: GcLog | None = None) -> dict[str, Any]:
        return {
            **_stalls(self.gaps),
            **_busy(self.busy),
            "ui_stall_stacks": [f"{n}x {k}" for k, n in self.watch.stacks.most_common(5)],
            # each stall over 16 ms: its length, the UI thread's CPU time in it, and the
            # distinct stacks the watchdog sampled in it (none: it ended before 20 ms)
            # blocked: neither running nor waiting for a core (the GIL, a lock): what the
            # watchdog cannot sample, as it needs the GIL too
            "ui_stalls_over_16ms_detail": [
                f"{gap - PROBE_MS:.1f} ms (busy {busy:.1f}, run queue {runq:.1f}, blocked "
                f"{max(0.0, gap - PROBE_MS - busy - runq):.1f}): "
                + self.watch.detail(start)
                + gc_overlaps(gc_log, start, start + gap / 1000)
                for gap, busy, start, runq in self.long
            ],
            "ui_stalls_over_16ms_not_load": sum(
                1 for gap, _b, _s, runq in self.long if gap - PROBE_MS - runq > 16
            ),
            "max_ui_blocked_ms": round(
                max((max(0.0, g - PROBE_MS - b - r) for g, b, _s, r in self.long), default=0.0),
                1,
            ),
            "gil_switch_interval_ms": round(sys.getswitchinterval() * 1000, 2),
        }


def gc_overlaps(gc_log: GcLog | None, start_s: float, end_s: float) -> str:
    """The collections (any thread) that overlap a stall, as text for its detail line."""
    if gc_log is None:
        return ""
    found = gc_log.overlapping(start_s, end_s)
    return "".join(f"; gc {c.thread} gen {c.generation} {c.ms:.1f} ms" for c in found)


def gc_keys(gc_log: GcLog, gc_idle: Any) -> dict[str, Any]:
    """``gc_policy`` (the app's: ``app.ui.gc_idle``), the idle collector's counts and every
    collection by thread and generation while probed (``gc_collections``)."""
    from app.ui.gc_idle import ENV

    out: dict[str, Any] = {
        "gc_policy": os.environ.get(ENV, "idle"),
        "gc_collections": gc_log.summary(),
    }
    if gc_idle is not None:
        out["gc_idle_collections"] = {a.value: n for a, n in gc_idle.policy.collections.items()}
        out["gc_deep_log"] = [vars(d) for d in gc_idle.policy.deeps]  # path, inputs, ms
    return out


def _show_and_paint(win: Any) -> float:
    """Show ``win`` and wait for its first frame; the ms it took.

    The window's first frame is the app's start (``bench package`` times it), not a stall:
    until 2026-12-06 it fell inside the first probed gap, with the folder's and the five files'
    first paint, and was counted as one (16-18 ms of the UI thread's own work). The probe
    starts after it, as app.main has it: the first paint, then the user's action."""
    from app.ui.startup import FirstPaint

    shown = time.perf_counter()
    win.show()
    painted: list[float] = []
    FirstPaint(win, lambda: painted.append(time.perf_counter()))
    _pump_until(lambda: bool(painted), 5.0)
    return round(((painted[0] if painted else time.perf_counter()) - shown) * 1000, 1)


def _run_window(root: Path, rounds: int) -> dict[str, Any]:
    from PySide6.QtWidgets import QApplication

    from app.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    probe = _Probe()
    win = MainWindow()
    win.resize(1200, 800)
    first_frame_ms = _show_and_paint(win)
    from app.ui.gc_idle import start_gc_policy

    gc_idle = start_gc_policy(app)  # as app.main does after the first paint
    gc_log = GcLog().install()
    started = time.perf_counter()
    probe.start()
    reported = False
    diagnostics: dict[str, int] = {}  # what the open files showed at the end
    rss = [_rss_mb()]
    first_report_s = 0.0
    try:
        opened = time.perf_counter()
        win.open_folder(root)
        docs = [win.open_file(root / "forecode_core" / f) for f in FILES]
        doc = docs[0]
        assert doc is not None, "the first file did not open"
        for i in range(rounds):
            reported = _type_and_save(win, doc, i, gc_idle)
            if i == 0 and reported:
                first_report_s = time.perf_counter() - opened
            rss.append(_rss_mb())
        _pump_until(lambda: False, 1.0)  # the last reports and repaints
        counts = win.language.store.counts()
        diagnostics = {"errors": counts.errors, "warnings": counts.warnings}
    finally:
        probe.stop()
        gc_log.remove()
        if gc_idle is not None:
            gc_idle.stop()
        window_s = time.perf_counter() - started
        for d in list(win.docs.documents()):
            d.editor.setSavePoint()
        win.close()
        app.processEvents()
    return {
        **probe.keys(gc_log),
        **gc_keys(gc_log, gc_idle),
        "ui_first_frame_ms": first_frame_ms,  # show to the first paint, before the probe
        "ui_servers_reported": reported,
        "ui_first_report_s": round(first_report_s, 3),
        "ui_window_s": round(window_s, 1),
        "ui_rss_mb": _rss_keys(rss),
        "ui_diagnostics": diagnostics,
    }


def _type_and_save(win: Any, doc: Any, i: int, gc_idle: Any) -> bool:
    """Round ``i``: a fresh undefined name typed at the end of ``doc``, a pause, a save; whether
    both servers then named it (within ``WAIT_S`` for the first round, 30 s after)."""
    name = f"bench_ui_undefined_{i}"
    uri = doc.path.as_uri() if doc.path is not None else ""
    editor = doc.editor
    editor.gotoPos(editor.textLength())
    editor.insertText(editor.textLength(), f"\nprint({name})\n")
    if gc_idle is not None:  # the keys a user types: what the app's filter would see
        gc_idle.policy.note_input()
    _pump_until(lambda: False, 0.3)  # typing pauses; the change goes out
    win.docs.save(doc)

    def both() -> bool:
        found = win.language.store.all_for(uri)
        sources = {d.source.lower() for d in found if name in d.message}
        return "basedpyright" in sources and "ruff" in sources

    return _pump_until(both, WAIT_S if i == 0 else 30.0)


def _rss_mb() -> float:
    """This process's resident set (MB), from /proc (0 where there is none)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _rss_keys(rss: list[float]) -> dict[str, Any]:
    """The editor process's RSS at the start, after each round (every tenth when many) and at
    the end, and the most: over a long run (``--ui-rounds 150``) it says whether the
    collector's policy lets memory grow."""
    step = max(1, len(rss) // 20)
    return {
        "start": round(rss[0], 1),
        "end": round(rss[-1], 1),
        "max": round(max(rss), 1),
        "by_round": [round(r, 1) for r in rss[::step]],
    }


if __name__ == "__main__":
    _main(sys.argv[1:])
