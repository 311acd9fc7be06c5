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


class FlakyService:
    """Fails its first ``failures`` starts (a stalled model load), then is the real service on
    loopback (in this process, a scripted model at its seam)."""

    starts = 0

    def __init__(self, failures: int, server: Any, token: str) -> None:
        self.failures, self.server, self.token = failures, server, token
        self.pid = None

    def start_async(self, on_ready: Any, on_error: Any) -> None:
        FlakyService.starts += 1
        if FlakyService.starts <= self.failures:
            on_error(WHY)
        else:
            on_ready(f"127.0.0.1:{self.server.port}", self.token)

    def stop(self, timeout: float = 5.0) -> None:
        pass


@pytest.mark.parametrize(("failures", "connected"), [(1, True), (2, True), (3, False)])
def test_a_loopback_service_that_did_not_start_is_tried_again_then_given_up(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch, failures: int, connected: bool
) -> None:
    from bench.scripted_service import ScriptedEditsModel
    from cloud_server.config import ServerConfig
    from cloud_server.service import start_server

    monkeypatch.setattr(CloudConnection, "RETRY_DELAYS_S", (0.05, 0.1))
    FlakyService.starts = 0
    server = start_server(
        ServerConfig(tokens=("t0k3n-for-the-retry-test",)), backend=ScriptedEditsModel()
    )
    conn = CloudConnection(
        autostart=True,
        service_factory=lambda: FlakyService(failures, server, "t0k3n-for-the-retry-test"),
    )
    details: list[str] = []
    conn.state_changed.connect(lambda _state, detail: details.append(detail))
    try:
        conn.start()
        if connected:
            qtbot.waitUntil(lambda: conn.state == "cloud", timeout=10_000)
            assert FlakyService.starts == failures + 1
            assert any("trying again in 0.05 s" in d for d in details)
        else:
            qtbot.waitUntil(lambda: FlakyService.starts == 3, timeout=10_000)
            qtbot.wait(300)  # no fourth try
            assert FlakyService.starts == 3 and conn.state != "cloud"
            assert "could not start" in conn.detail and "trying again" not in conn.detail
    finally:
        conn.close(timeout=1.0)
        server.stop(0)
