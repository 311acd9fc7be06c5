"""The garbage collector's policy driven by the UI (``app.services.gcpolicy.GcPolicy``): input
events (keys, mouse, wheel) on the application's windows tell it the user is active, the
application's state tells it when the window is inactive, and a timer on the UI thread asks it a
few times a second whether to collect.

The input is seen by an event filter on each top-level ``QWindow`` (the ones there at the start
and each that later takes the focus), where a user's keys and clicks arrive before Qt hands them
to a widget, not by one on the application: an application's filter is called for every event
of every object (timers, paints, layout, meta-calls: about 400 a second in ``bench lsp --ui``
besides its probe), each a Python call that takes the GIL. While the ``forecode-lsp`` thread
imports pygls and lsprotocol, each take waits for it, and those waits made the frame that
handles a save 16.4-20.8 ms (3 of 16 runs over 16 ms); with the windows' filters the same
bench's longest gap was 5.9-13.8 ms, none over 16 of 16 (2026-12-06, load 1-2, no ``chrt``).
What a window's filter misses (an event a test sends straight to a widget, a wheel over an
unfocused window) only makes the user look idle sooner: a light collection, a few ms.

``start_gc_policy`` is what ``app.main`` runs after the first paint, and what the UI benches
run (``bench lsp --ui``, ``bench next_edit_ui``).

``FORECODE_GC_POLICY=freeze`` keeps only the start-up freeze (the behaviour before the idle
collector, to compare); ``off`` does nothing."""

from __future__ import annotations

import os

import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QWindow

from app.services.gcpolicy import GcPolicy, freeze_startup_heap

__all__ = ["ENV", "GcIdle", "start_gc_policy"]

ENV = "FORECODE_GC_POLICY"
TICK_MS = 250

_INPUT = frozenset(
    {
        QEvent.Type.KeyPress,
        QEvent.Type.KeyRelease,
        QEvent.Type.ShortcutOverride,
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseButtonRelease,
        QEvent.Type.MouseButtonDblClick,
        QEvent.Type.MouseMove,
        QEvent.Type.Wheel,
        QEvent.Type.InputMethod,
    }
)


class GcIdle(QObject):
    """The application's input filter and the tick timer around one ``GcPolicy``."""

    def __init__(self, app: QCoreApplication, policy: GcPolicy) -> None:
        super().__init__(app)
        self.policy = policy
        self._app = app
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.setTimerType(Qt.TimerType.CoarseTimer)
        self.timer.timeout.connect(policy.tick)
        self._windows: list[QWindow] = []
        if isinstance(app, QGuiApplication):
            for window in app.topLevelWindows():
                self._watch(window)
            app.focusWindowChanged.connect(self._watch)
            app.applicationStateChanged.connect(self._state)
            self._state(app.applicationState())
        self.timer.start()

    def eventFilter(self, _watched: QObject, event: QEvent) -> bool:
        if event.type() in _INPUT:
            self.policy.note_input()
        return False

    def _watch(self, window: QWindow | None) -> None:
        """Input on ``window`` tells the policy (once per window)."""
        if window is None or window in self._windows:
            return
        self._windows = [w for w in self._windows if shiboken6.isValid(w)]
        self._windows.append(window)
        window.installEventFilter(self)

    def _state(self, state: Qt.ApplicationState) -> None:
        self.policy.set_active(state == Qt.ApplicationState.ApplicationActive)

    def stop(self) -> None:
        """Automatic collections as before (tests, a bench's end)."""
        self.timer.stop()
        if isinstance(self._app, QGuiApplication):
            self._app.focusWindowChanged.disconnect(self._watch)
        for window in self._windows:
            if shiboken6.isValid(window):
                window.removeEventFilter(self)
        self._windows = []
        self.policy.uninstall()


def start_gc_policy(app: QCoreApplication, policy: GcPolicy | None = None) -> GcIdle | None:
    """Freeze the start-up heap and start the idle collector (module docstring); None when
    ``FORECODE_GC_POLICY`` says ``freeze`` or ``off``."""
    mode = os.environ.get(ENV, "idle")
    if mode == "off":
        return None
    if mode == "freeze":
        freeze_startup_heap()
        return None
    policy = policy or GcPolicy()
    policy.install()
    return GcIdle(app, policy)
