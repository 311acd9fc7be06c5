"""Start-up work that waits for the main window's first paint (issue 18: the window first).

``python -m app`` (``app.main``) calls ``hold()`` before it builds the window and ``release()``
once the window has painted; in between, ``after_first_paint(fn)`` queues ``fn`` instead of
running it. The owners put there what the first frame does not need and what would take a
core from it on a two-core machine: the local engine's worker and its calibration probe, the
chat service on loopback, the language servers of the files open at start. Released, each
queued call runs from the event loop, one per turn (input and painting go between them), in the
order queued. Not held (every test, any window not built by ``app.main``), ``after_first_paint``
calls ``fn`` at once: the behaviour the owners had before.

One process has one start-up, so the gate is module state, not the window's.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer

__all__ = ["FirstPaint", "after_first_paint", "held", "hold", "release"]

_queue: list[Callable[[], object]] = []
_held = False


def hold() -> None:
    """Queue ``after_first_paint`` calls until ``release()``."""
    global _held
    _held = True


def held() -> bool:
    return _held


def after_first_paint(fn: Callable[[], object]) -> None:
    """``fn()`` now, or, while held, from the event loop after the first paint."""
    if _held:
        _queue.append(fn)
    else:
        fn()


def release() -> None:
    """Run what was queued, one call per event-loop turn, in order; later calls run at once."""
    global _held
    _held = False
    queued = list(_queue)
    _queue.clear()
    for fn in queued:
        QTimer.singleShot(0, fn)


class FirstPaint(QObject):
    """Calls ``on_painted`` once, on the event-loop turn after ``window``'s first paint event
    (the frame is flushed to the screen by then), or after ``fallback_ms`` when no paint comes
    (a minimized or unmapped window)."""

    def __init__(self, window: QObject, on_painted: Callable[[], None], fallback_ms: int = 3000):
        super().__init__(window)
        self._window = window
        self._on_painted = on_painted
        self._fired = False
        window.installEventFilter(self)
        QTimer.singleShot(fallback_ms, self, self._fire)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._window and event.type() == QEvent.Type.Paint and not self._fired:
            QTimer.singleShot(0, self, self._fire)
        return False

    def _fire(self) -> None:
        if self._fired:
            return
        self._fired = True
        self._window.removeEventFilter(self)
        self._on_painted()
