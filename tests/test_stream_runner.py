"""The shared streaming runner (``app.ui.stream_runner``) through its two users, ``ChatRunner``
and ``ApplyRunner``, with scripted calls at the seam (the panels' tests cover the real
features end to end)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from pytestqt.qtbot import QtBot

from app.ui.apply_backend import ApplyRunner
from app.ui.cloud import ChatRunner
from forecode_core.apply.block import ApplyInput
from forecode_core.apply.events import ApplyDone
from forecode_core.chat.types import ChatDelta, ChatDone, ChatMessage, ChatParams, ChatStarted
from forecode_core.streams import Delta, Notice, StreamError


class _Gate:
    """A call that yields ``first``, waits for ``release`` (or a cancel), then yields
    ``rest``; ``ended`` is set when its iteration is over."""

    def __init__(self, first: list[object], rest: list[object]) -> None:
        self.first, self.rest = first, rest
        self.release = threading.Event()
        self.cancelled = threading.Event()
        self.ended = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()

    def __iter__(self) -> Iterator[object]:
        try:
            yield from self.first
            self.release.wait(10)
            yield from self.rest  # a call that ignores its cancel: the runner must not
        finally:
            self.ended.set()


class _Backend:
    def __init__(self, *calls: object) -> None:
        self.calls = list(calls)

    def chat(self, params: ChatParams) -> object:
        return self._next()

    def apply(self, request: ApplyInput) -> object:
        return self._next()

    def _next(self) -> object:
        call = self.calls.pop(0)
        if isinstance(call, Exception):
            raise call
        return call


PARAMS = ChatParams("c1", (ChatMessage("user", "hi"),))
REQUEST = ApplyInput(path="a.py", language="python", original="x = 1\n", block="x = 2\n")


def _record(runner: ChatRunner | ApplyRunner) -> list[tuple[str, object]]:
    seen: list[tuple[str, object]] = []
    runner.delta.connect(lambda text: seen.append(("delta", text)))
    runner.notice.connect(lambda text: seen.append(("notice", text)))
    runner.finished.connect(lambda event: seen.append(("finished", event)))
    runner.failed.connect(lambda code, message: seen.append(("failed", (code, message))))
    return seen


def test_a_chat_stream_arrives_whole_and_in_order(qtbot: QtBot) -> None:
    words = [f"w{i} " for i in range(200)]
    call = _Gate(
        [ChatStarted(model="m", source="cloud"), *map(ChatDelta, words), ChatDone("stop")], []
    )
    call.release.set()
    runner = ChatRunner(_Backend(call))
    seen = _record(runner)
    with qtbot.waitSignal(runner.finished, timeout=10_000):
        runner.start(PARAMS)
    assert "".join(str(v) for k, v in seen if k == "delta") == "".join(words)
    assert seen[-1] == ("finished", ChatDone("stop"))
    assert not runner.is_running()


def test_after_stop_nothing_of_the_request_reaches_the_ui(qtbot: QtBot) -> None:
    call = _Gate([ChatDelta("kept ")], [ChatDelta("late"), ChatDone("stop")])
    runner = ChatRunner(_Backend(call))
    seen = _record(runner)
    runner.start(PARAMS)
    qtbot.waitUntil(lambda: ("delta", "kept ") in seen, timeout=10_000)
    runner.stop()
    assert call.cancelled.is_set()
    assert seen == [("delta", "kept "), ("finished", ChatDone("cancelled"))]
    call.release.set()  # the call goes on anyway
    assert call.ended.wait(10)
    qtbot.wait(100)  # let any queued wake-up run
    assert seen == [("delta", "kept "), ("finished", ChatDone("cancelled"))]


def test_a_new_apply_replaces_the_running_one(qtbot: QtBot) -> None:
    old = _Gate([Notice("old")], [Delta("stale\n"), ApplyDone("stop", source="model")])
    new = _Gate([Delta("x = 2\n"), ApplyDone("stop", source="deterministic")], [])
    new.release.set()
    runner = ApplyRunner()
    seen = _record(runner)
    backend = _Backend(old, new)
    runner.start(backend, REQUEST)  # type: ignore[arg-type]
    qtbot.waitUntil(lambda: ("notice", "old") in seen, timeout=10_000)
    with qtbot.waitSignal(runner.finished, timeout=10_000) as blocker:
        runner.start(backend, REQUEST)  # type: ignore[arg-type]
    old.release.set()
    assert old.ended.wait(10)
    qtbot.wait(100)
    result = blocker.args[0]
    assert (result.text, result.source) == ("x = 2\n", "deterministic")
    assert [k for k, _ in seen] == ["notice", "delta", "finished"]
    assert ("delta", "stale\n") not in seen


def test_failures_reach_the_ui_as_code_and_message(qtbot: QtBot) -> None:
    unfinished = _Gate([Delta("x")], [])
    unfinished.release.set()
    runner = ApplyRunner()
    seen = _record(runner)
    backend = _Backend(StreamError("busy", "try later"), RuntimeError("boom"), unfinished)
    for expected in (
        ("busy", "try later"),
        ("internal", "RuntimeError: boom"),
        ("internal", "The apply ended without finishing."),
    ):
        with qtbot.waitSignal(runner.failed, timeout=10_000) as blocker:
            runner.start(backend, REQUEST)  # type: ignore[arg-type]
        assert tuple(blocker.args) == expected
        assert not runner.is_running()
    assert [k for k, _ in seen] == ["failed", "failed", "delta", "failed"]
    chat = ChatRunner(None)
    with qtbot.waitSignal(chat.failed, timeout=10_000) as blocker:
        chat.start(PARAMS)
    assert blocker.args == ["unavailable", "No chat service is configured."]
