"""Pull diagnostics (``textDocument/diagnostic``) with the real servers, through the hub:
basedpyright registers them after ``initialized`` and pushes nothing then, so the session
pulls after each open and change; a pull for a version the editor has moved past is
cancelled or dropped, never shown."""

from __future__ import annotations

import threading
from pathlib import Path

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
