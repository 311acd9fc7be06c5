"""Pull diagnostics (``textDocument/diagnostic``) with the real servers, through the hub:
basedpyright registers them after ``initialized`` and pushes nothing then, so the session
pulls after each open and change; a pull for a version the editor has moved past is
cancelled or dropped, never shown."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from app.services.lsp import LspHub
from forecode_core.lsp.diagnostics import Diagnostic

pytestmark = pytest.mark.slow

WAIT_S = 120.0  # a cold basedpyright took 20-40 s at load 25 on two cores


class _Got:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: list[tuple[int | None, str, list[str]]] = []

    def add(self, _uri: str, version: int | None, server: str, found: list[Diagnostic]) -> None:
        with self.cond:
            self.events.append((version, server, [d.message for d in found]))
            self.cond.notify_all()

    def wait_for(self, server: str, needle: str) -> tuple[int | None, list[str]]:
        with self.cond:
            ok = self.cond.wait_for(
                lambda: any(
                    s == server and any(needle in m for m in ms) for _v, s, ms in self.events
                ),
                WAIT_S,
            )
            assert ok, f"{server} never reported {needle!r}: {self.events}"
            return next(
                (v, ms) for v, s, ms in self.events if s == server and any(needle in m for m in ms)
            )


def test_basedpyright_is_pulled_and_a_pull_for_an_old_version_never_shows(
    tmp_path: Path,
) -> None:
    got = _Got()
    hub = LspHub(got.add, lambda _s: None, (("python", (("basedpyright",),)),))
    try:
        path = tmp_path / "m.py"
        uri = path.as_uri()
        first = hub.open(uri, "python", "print(undefined_open)\n", tmp_path)
        version, _ = got.wait_for("basedpyright", "undefined_open")
        assert version == first
        session = hub.call(lambda: hub.sessions()[0]).result(5)
        assert hub.call(lambda: session._pull).result(5), "basedpyright was not pulled"
        # Typing on: three versions in a row; only the last one's check may be shown after it.
        for i in range(3):
            last = hub.change(uri, f"print(undefined_{i})\n")
        version, _ = got.wait_for("basedpyright", "undefined_2")
        assert version == last
        with got.cond:
            shown = [v or 0 for v, s, _m in got.events if s == "basedpyright"]
        assert shown == sorted(shown), f"an older version shown after a newer one: {shown}"
        assert all("undefined_0" not in m for v, _s, ms in got.events if v == last for m in ms)
    finally:
        hub.shutdown()


def test_ruff_reports_with_pull_offered(tmp_path: Path) -> None:
    """ruff gets the same client capabilities: its diagnostics still arrive, pulled or
    pushed, for the version sent."""
    got = _Got()
    hub = LspHub(got.add, lambda _s: None, (("python", (("ruff",),)),))
    try:
        path = tmp_path / "r.py"
        uri = path.as_uri()
        hub.open(uri, "python", "print(ruff_open)\n", tmp_path)
        got.wait_for("ruff", "ruff_open")
        version = hub.change(uri, "print(ruff_changed)\n")
        seen, _ = got.wait_for("ruff", "ruff_changed")
        assert seen == version
    finally:
        hub.shutdown()


def test_a_first_pull_answered_unchanged_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """basedpyright answers "unchanged" (no items) to a pull that reaches it before the open
    reaches its workspace: the session asks again until it gets the report (a fake server at
    the protocol seam: the timing cannot be forced on a real one)."""
    import asyncio

    from lsprotocol import types as lsp

    from app.services.lsp import session as session_module
    from app.services.lsp.session import OpenDoc, Session, SessionEvents
    from forecode_core.lsp.servers import PRESETS

    monkeypatch.setattr(session_module, "PULL_RETRIES", 3)
    answers: list[object] = [
        lsp.RelatedUnchangedDocumentDiagnosticReport(result_id=""),
        lsp.RelatedFullDocumentDiagnosticReport(
            items=[
                lsp.Diagnostic(
                    lsp.Range(lsp.Position(0, 0), lsp.Position(0, 1)), "late", source="fake"
                )
            ],
            result_id="7",
        ),
    ]
    asked: list[str | None] = []
    reported: list[tuple[int | None, list[str]]] = []

    class Protocol:
        def send_request_async(self, _method: str, params: Any, msg_id: str = "") -> Any:
            asked.append(params.previous_result_id)
            future = asyncio.get_running_loop().create_future()
            future.set_result(answers.pop(0))
            return future

        def notify(self, *_a: object) -> None:
            pass

    class Client:
        protocol = Protocol()

    async def run() -> None:
        events = SessionEvents(
            lambda _u, v, _s, found: reported.append((v, [d.message for d in found])),
            lambda *_a: None,
        )
        session = Session(
            PRESETS["basedpyright"],
            ["x"],
            Path("/tmp"),
            events,
            init_timeout_s=1,
            request_timeout_s=1,
        )
        session._client = Client()  # type: ignore[assignment]
        session._pull = True
        session._sent["u"] = OpenDoc("u", "python", 1, "x\n")
        session._pull_soon("u", 1)
        for _ in range(40):
            await asyncio.sleep(0.05)
            if reported:
                break

    asyncio.run(run())
    assert asked == [None, None]
    assert reported == [(1, ["late"])]
