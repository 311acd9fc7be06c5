"""An inline edit (Ctrl+K) asked for while the service is still starting waits for it.

A user run pressed Ctrl+K while the status bar said "Chat starting…" (the service was loading
its model on a loaded machine): the review said at once that no model path was available and
nothing was changed. ``ServiceApply(starting=...)`` now says the service is starting, waits for
it on the runner's worker thread, and runs there; Esc ends the wait. The real ``ApplyRunner``
and ``PipelineApplyBackend`` (the window's chain), a scripted service at the seam.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from pytestqt.qtbot import QtBot

from app.ui.apply_backend import ApplyResult, ApplyRunner, PipelineApplyBackend, ServiceApply
from forecode_core.apply.block import ApplyInput
from forecode_core.apply.events import ApplyCall, ApplyDone, ApplyEvent
from forecode_core.streams import Delta, FinishReason

ORIGINAL = "def f(s):\n    return s\n"
EDITED = "def f(s: str) -> str:\n    return s\n"
REQUEST = ApplyInput("a.py", "python", ORIGINAL, "", instruction="add type hints")


class _Rewrite:
    def cancel(self) -> None:
        pass

    def __iter__(self) -> Iterator[ApplyEvent]:
        yield Delta(EDITED)
        yield ApplyDone(FinishReason.STOP, source="model")


class _Service:
    def apply(self, request: ApplyInput) -> ApplyCall:
        return _Rewrite()


class _Starting:
    """The cloud owner's two answers: no service yet and starting, until ``ready()``."""

    def __init__(self) -> None:
        self.service: _Service | None = None
        self.is_starting = True
        self.asked = threading.Event()

    def target(self) -> _Service | None:
        self.asked.set()
        return self.service

    def starting(self) -> bool:
        return self.is_starting

    def ready(self) -> None:
        self.service = _Service()
        self.is_starting = False


def _record(runner: ApplyRunner) -> list[tuple[str, object]]:
    seen: list[tuple[str, object]] = []
    runner.notice.connect(lambda text: seen.append(("notice", text)))
    runner.failed.connect(lambda code, message: seen.append(("failed", (code, message))))
    runner.finished.connect(lambda result: seen.append(("finished", result)))
    return seen


def test_an_inline_edit_asked_while_the_service_starts_runs_when_it_is_ready(
    qtbot: QtBot,
) -> None:
    svc = _Starting()
    runner = ApplyRunner()
    seen = _record(runner)
    runner.start(PipelineApplyBackend(ServiceApply(svc.target, starting=svc.starting)), REQUEST)
    qtbot.waitUntil(lambda: any(kind == "notice" and "starting" in str(v) for kind, v in seen))
    qtbot.wait(300)  # still waiting: nothing failed meanwhile
    assert not [kind for kind, _v in seen if kind in ("failed", "finished")]
    svc.ready()
    with qtbot.waitSignal(runner.finished, timeout=10_000) as blocker:
        pass
    assert blocker.args is not None and blocker.args[0].text == EDITED
    assert not [v for kind, v in seen if kind == "failed"]


def test_esc_while_waiting_for_the_service_ends_the_wait(qtbot: QtBot) -> None:
    svc = _Starting()
    runner = ApplyRunner()
    seen = _record(runner)
    runner.start(PipelineApplyBackend(ServiceApply(svc.target, starting=svc.starting)), REQUEST)
    qtbot.waitUntil(lambda: any(kind == "notice" and "starting" in str(v) for kind, v in seen))
    runner.stop()
    svc.ready()
    qtbot.wait(500)
    assert not [v for kind, v in seen if kind == "finished" and isinstance(v, ApplyResult)]


def test_a_service_that_gave_up_starting_fails_as_before(qtbot: QtBot) -> None:
    svc = _Starting()
    runner = ApplyRunner()
    seen = _record(runner)
    runner.start(PipelineApplyBackend(ServiceApply(svc.target, starting=svc.starting)), REQUEST)
    qtbot.waitUntil(lambda: any(kind == "notice" and "starting" in str(v) for kind, v in seen))
    svc.is_starting = False  # it went offline
    with qtbot.waitSignal(runner.failed, timeout=10_000) as blocker:
        pass
    assert blocker.args is not None and blocker.args[0] == "no_model"
