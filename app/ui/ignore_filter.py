"""The explorer's ignore decisions, kept off the UI thread whenever they could cost anything.

``QSortFilterProxyModel.filterAcceptsRow`` runs on the UI thread, once per row. Matching is
linear (``forecode_core.workspace.wildmatch``), but an ignore file within the limits can still make
one
decision cost tens of milliseconds (1 MiB of long wildcard patterns against a long name), and
the first question about a folder reads and compiles its ``.gitignore``. So a row is decided
on the UI thread only when ``IgnoreRules.peek`` can answer: the rule sets it needs are already
compiled and ``light`` (well under a millisecond at worst), and the UI thread has spent less
than ``UI_BUDGET_S`` on decisions since the event loop last turned. Every other row is hidden
until a worker thread has decided it; then the proxy filters its rows again and it appears (within
milliseconds for an ordinary ``.gitignore``).

When the rules change (a ``.gitignore`` saved, ``files.exclude`` edited) the rows keep their
old answers until the worker has decided every one of them again, then all switch at once:
nothing flickers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from app.services.threads import UiThread
from forecode_core.workspace.gitignore import IgnoreRules

__all__ = ["UI_BUDGET_S", "IgnoreDecisions"]

log = logging.getLogger(__name__)

UI_BUDGET_S = 0.010  # decisions on the UI thread per turn of the event loop, at most
_BATCH = 64  # rows a worker decides before it publishes them
_IDLE_EXIT_S = 5.0  # a worker with nothing to do for this long ends (a new one starts on demand)

_Key = tuple[str, bool]  # (path relative to the root, is a directory)


class IgnoreDecisions(QObject):
    """Answers "show this row?" for one explorer proxy (see the module docstring).

    ``accepts`` is called on the UI thread; ``ready`` is emitted (queued to the UI thread)
    when a worker has decided rows the proxy hid, ``warning`` with each new problem the rules
    report (an ignore file beyond the limits).
    """

    ready = Signal()
    warning = Signal(str)

    def __init__(self, rules: IgnoreRules, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rules = rules
        self._lock = threading.Condition()
        self._generation = 0
        self._known: dict[_Key, bool] = {}  # key -> ignored, for the rows shown so far
        self._fresh: dict[_Key, bool] | None = None  # new rules' answers while re-deciding
        self._queue: deque[_Key] = deque()
        self._queued: set[_Key] = set()
        self._worker: threading.Thread | None = None
        self._closed = False
        self._spent = 0.0
        self._turn_pending = False
        self._warned = 0
        self.worker_decisions = 0  # rows decided on the worker (tests read it)
        self._listen(rules)

    def _listen(self, rules: IgnoreRules) -> None:
        """Hear of problems whichever thread reads the rules (the window's file scan too)."""
        if rules.on_warning is None:
            rules.on_warning = lambda _message: self._check_warnings()

    @property
    def rules(self) -> IgnoreRules:
        return self._rules

    # ----- UI thread ---------------------------------------------------------------------
    def accepts(self, rel: str, is_dir: bool) -> bool:
        """Whether to show the row ``rel``: its answer if known, else decided here when that
        is cheap, else hidden until a worker has decided it."""
        key = (rel, is_dir)
        fresh = self._fresh
        table = fresh if fresh is not None else self._known
        known = table.get(key)
        if known is not None:
            return not known
        if self._spent < UI_BUDGET_S:
            start = time.perf_counter()
            answer = self._rules.peek(rel, is_dir)
            self._charge(time.perf_counter() - start)
            self._check_warnings()
            if answer is not None:
                table[key] = answer
                return not answer
        self._enqueue([key])
        stale = self._known.get(key) if fresh is not None else None
        return stale is not None and not stale

    def set_rules(self, rules: IgnoreRules) -> None:
        """Decide every row again with ``rules``; rows keep their old answers meanwhile."""
        with self._lock:
            self._rules = rules
            self._generation += 1
            self._warned = 0
            self._listen(rules)
            keys = set(self._known) | set(self._fresh or ()) | self._queued
            self._fresh = {} if self._known else None
            self._queue = deque(keys)
            self._queued = set(keys)
            if keys:
                self._start_worker()
        self.ready.emit()

    def close(self) -> None:
        """Stop the worker (it ends after its current row)."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            self._queued.clear()
            self._lock.notify_all()

    def _charge(self, seconds: float) -> None:
        self._spent += seconds
        if not self._turn_pending:
            self._turn_pending = True
            QTimer.singleShot(0, self, self._new_turn)

    def _new_turn(self) -> None:
        self._turn_pending = False
        self._spent = 0.0

    def _check_warnings(self) -> None:
        """Emit the problems the rules reported since the last call (any thread)."""
        if len(self._rules.warnings) <= self._warned:
            return
        with self._lock:
            warnings = self._rules.warnings
            new = warnings[self._warned :]
            self._warned = len(warnings)
        try:
            for message in new:
                self.warning.emit(message)
        except RuntimeError:  # the proxy (and this object) are gone
            pass

    # ----- the worker --------------------------------------------------------------------
    def _enqueue(self, keys: list[_Key]) -> None:
        with self._lock:
            if self._closed:
                return
            for key in keys:
                if key not in self._queued:
                    self._queued.add(key)
                    self._queue.append(key)
            self._start_worker()
            self._lock.notify_all()

    def _start_worker(self) -> None:
        """With the lock held: make sure a worker runs while the queue is not empty."""
        if self._queue and (self._worker is None or not self._worker.is_alive()):
            self._worker = UiThread(target=self._work, name="ignore-decisions", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._queue and not self._closed:
                    self._lock.wait(_IDLE_EXIT_S)
                if self._closed or not self._queue:
                    self._worker = None
                    return
                batch = [self._queue.popleft() for _ in range(min(_BATCH, len(self._queue)))]
                rules, generation = self._rules, self._generation
            results = self._decide(rules, batch)
            with self._lock:
                if generation != self._generation:
                    continue  # set_rules queued these again
                table = self._fresh if self._fresh is not None else self._known
                table.update(results)
                self._queued.difference_update(batch)
                if self._fresh is not None and not self._queue:
                    self._known, self._fresh = self._fresh, None
            try:
                self._check_warnings()
                self.ready.emit()
            except RuntimeError:  # the proxy (and this object) are gone
                return

    def _decide(self, rules: IgnoreRules, batch: list[_Key]) -> dict[_Key, bool]:
        results: dict[_Key, bool] = {}
        for rel, is_dir in batch:
            try:
                results[(rel, is_dir)] = rules.is_ignored(rel, is_dir)
            except Exception:  # never lose a row to a bug: show it
                log.exception("ignore decision failed for %r", rel)
                results[(rel, is_dir)] = False
            self.worker_decisions += 1
            time.sleep(0)  # let the UI thread take the GIL between rows
        return results


def connect_refresh(decisions: IgnoreDecisions, refresh: Callable[[], None]) -> None:
    """Call ``refresh`` (the proxy filtering its rows again) on the UI thread after
    ``ready``, at most once per 20 ms however many batches arrive."""
    timer = QTimer(decisions)
    timer.setSingleShot(True)
    timer.setInterval(20)
    timer.timeout.connect(refresh)

    def on_ready() -> None:
        if not timer.isActive():
            timer.start()

    decisions.ready.connect(on_ready)
