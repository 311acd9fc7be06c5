"""A control sequence pyte fails on is dropped and the terminal goes on: a private-marked one
its handler does not take (``CSI ? 4 m``: vim 9 sends it at start, xterm's query of its key
modifiers), or ``CSI 5 J``. Before, the error ended the PTY's reader thread and the tab stayed
blank and deaf (seen in a user run under Xvfb: vim, then nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.services.terminal.screen import TerminalScreen
from forecode_core.terminal.records import CommandRecord
from tests.helpers.terminal_view import WAIT, bash_view

HANDLED = "@ABCDEFGHJKLMPXadefghlmnr"  # the final bytes pyte's stream dispatches
BROKEN = [f"\x1b[?4;2{final}" for final in HANDLED] + ["\x1b[5J", "\x1b[?4m"]


@pytest.mark.parametrize("sequence", BROKEN, ids=repr)
def test_a_sequence_pyte_fails_on_is_dropped(sequence: str) -> None:
    screen = TerminalScreen(5, 20, start_cwd="/", reply=lambda _data: None, nonce="n")
    screen.feed(f"ab{sequence}cd\x1b[1mef".encode())
    assert screen.text().endswith("cdef")
    cells = [cell for row in screen.snapshot().rows for cell in row]
    assert any(c.data == "f" and c.bold for c in cells)  # the parser goes on after it


def test_the_terminal_goes_on_after_one_through_a_real_shell(qtbot: QtBot, tmp_path: Path) -> None:
    records: list[CommandRecord] = []
    with bash_view(qtbot, tmp_path, (700, 300)) as view:
        view.command_finished.connect(records.append)
        view.session.write(b"printf 'x\\033[?4my\\n'\r")
        qtbot.waitUntil(lambda: len(records) == 1, timeout=WAIT)
        view.session.write(b"echo still-alive\r")
        qtbot.waitUntil(lambda: len(records) == 2, timeout=WAIT)
        assert records[1].output == "still-alive\n"
        assert "xy" in view.model.text()
