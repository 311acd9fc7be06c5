"""Apply (Ctrl+K, a chat block) and multi-file edits without the service say *why* there is none.

Seen in a user run on a loaded machine: the loopback service did not listen within 120 s, and
Ctrl+K then said "Applying a code block needs the Forecode service, and none is configured" —
wrong (it is configured, autostart) and no help. The failure the connection knows (the
service could not start: …) is what the user reads now; with no service configured the old
words stay. The connection and router are the real ones; the service is a fake that fails."""

from __future__ import annotations

from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from app.ui.cloud import CloudConnection
from forecode_core.apply.block import ApplyInput
from forecode_core.chat.types import ChatError, ChatParams

WHY = "the Forecode service did not start listening within 120 s"


class FailingService:
    """A LocalService whose start fails at once, as a slow one does after its time-out."""

    pid = None

    def start_async(self, on_ready: Any, on_error: Any) -> None:
        on_error(WHY)

    def stop(self, timeout: float = 5.0) -> None:
        pass


def _request() -> ApplyInput:
    return ApplyInput("mod.py", "python", "x = 1\n", "x = 2\n", "change x")


def _router(qtbot: QtBot, conn: CloudConnection) -> Any:
    conn.start()
    qtbot.waitUntil(lambda: conn._router is not None, timeout=3000)
    return conn._router


def test_a_service_that_could_not_start_is_named_as_the_reason(qtbot: QtBot) -> None:
    conn = CloudConnection(autostart=True, service_factory=FailingService)
    router = _router(qtbot, conn)
    with pytest.raises(ChatError) as applied:
        router.apply(_request())
    text = str(applied.value)
    assert "could not start" in text and WHY in text and "none is configured" not in text
    with pytest.raises(ChatError) as edited:
        router.edits(ChatParams(conversation_id="c", messages=()))
    assert WHY in str(edited.value) and "none is configured" not in str(edited.value)
    conn.close(timeout=1.0)


def test_no_service_configured_still_says_so(qtbot: QtBot) -> None:
    conn = CloudConnection(autostart=False)
    router = _router(qtbot, conn)
    with pytest.raises(ChatError) as applied:
        router.apply(_request())
    assert "cloud.url is empty and cloud.autostart is off" in str(applied.value)
    conn.close(timeout=1.0)
