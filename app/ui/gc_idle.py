"""The garbage collector's policy driven by the UI (``app.services.gcpolicy.GcPolicy``): input
events (keys, mouse, wheel) on the application tell it the user is active, the application's
state tells it when the window is inactive, and a timer on the UI thread asks it a few times a
second whether to collect. ``start_gc_policy`` is what ``app.main`` runs after the first paint,
and what the UI benches run (``bench lsp --ui``, ``bench next_edit_ui``).

``FORECODE_GC_POLICY=freeze`` keeps only the start-up freeze (the behaviour before the idle
collector, to compare); ``off`` does nothing."""

from __future__ import annotations

import os

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication

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
        app.installEventFilter(self)
        if isinstance(app, QGuiApplication):
            app.applicationStateChanged.connect(self._state)
            self._state(app.applicationState())
        self.timer.start()

    def eventFilter(self, _watched: QObject, event: QEvent) -> bool:
        if event.type() in _INPUT:
            self.policy.note_input()
        return False

    def _state(self, state: Qt.ApplicationState) -> None:
        self.policy.set_active(state == Qt.ApplicationState.ApplicationActive)

    def stop(self) -> None:
        """Automatic collections as before (tests, a bench's end)."""
        self.timer.stop()
        self._app.removeEventFilter(self)
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
