"""A missing language server's advice fits how Forecode was installed: from source, the pip
command; in a frozen app (no pip there) the pack to add — a packaged app without the Python
tools pack said "pip install basedpyright". A table on the presets and on a setting's command
line built on one, and the hub's message with the frozen flag set (no server started: the
command resolves to nothing)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from app.services.lsp import LspHub, ServerStatus
from forecode_core.lsp.restart import ServerState
from forecode_core.lsp.servers import PRESETS, missing_hint, servers_for


@pytest.mark.parametrize(
    ("server", "frozen", "says", "never"),
    [
        ("basedpyright", False, "pip install basedpyright", "tools pack"),
        ("basedpyright", True, "Python tools pack", "pip"),
        ("ruff", False, "pip install ruff", "reinstall"),
        ("ruff", True, "reinstall Forecode", "pip"),
        ("clangd", False, "apt install clangd", "pip"),
        ("clangd", True, "apt install clangd", "pip"),  # not ours to pack: the same advice
        ("gopls", True, "go install", "pip"),
    ],
)
def test_the_advice_for_a_missing_server(server: str, frozen: bool, says: str, never: str) -> None:
    hint = missing_hint(PRESETS[server], frozen)
    assert says in hint and never not in hint


def test_a_command_line_built_on_a_preset_keeps_its_frozen_advice() -> None:
    (spec,) = servers_for("python", (("python", (("basedpyright", "--verbose"),)),))
    assert "Python tools pack" in missing_hint(spec, True)
    assert "pip install basedpyright" in missing_hint(spec, False)


def test_the_hub_says_to_add_the_pack_in_a_frozen_app(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    said: list[ServerStatus] = []
    done = threading.Event()

    def status(s: ServerStatus) -> None:
        said.append(s)
        done.set()

    hub = LspHub(
        lambda *_a: None,
        status,
        (("python", (("basedpyright",),)),),
        resolve=lambda _argv: None,  # not installed
    )
    try:
        hub.open((tmp_path / "m.py").as_uri(), "python", "x = 1\n", tmp_path)
        assert done.wait(10)
    finally:
        hub.shutdown()
    (status_,) = said
    assert status_.state is ServerState.MISSING
    assert "Python tools pack" in status_.message and "pip" not in status_.message
