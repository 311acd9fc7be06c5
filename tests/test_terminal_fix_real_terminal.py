"""Explain / Fix and the next-command ghost with the real terminal: bash on a real PTY in the
real window runs pytest on a tiny project; the failure bar shows over the terminal, Explain
sends pytest's real output to the chat (the real loopback service, a scripted model at its
seam); the prompt line gets the history's suggestion as ghost text, Right accepts it into the
line and nothing runs until the user presses Enter."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from cloud_client.client import CloudClient
from forecode_core.terminal.records import CommandRecord
from tests.test_edit_set_window import _digests, _window, service
from tests.test_edits_rpc import _ScriptedBackend
from tests.test_terminal_fix_window import project

__all__ = ["project", "service"]  # fixtures: the tiny project; the loopback service

WAIT = 30_000  # generous: a loaded 2-core machine


@pytest.fixture
def shell_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SHELL", shutil.which("bash") or "/bin/bash")
    yield home


def test_a_failed_pytest_in_the_terminal_offers_explain_and_a_ghost(
    qtbot: QtBot,
    tmp_path: Path,
    service: tuple[CloudClient, _ScriptedBackend],
    shell_home: Path,
    project: Path,
) -> None:
    client, backend = service
    backend.answer = "add subtracts where it should add."
    root = project
    win = _window(qtbot, tmp_path, client, root)
    before = _digests(root)
    records: list[CommandRecord] = []
    win.terminal.command_finished.connect(records.append)
    win.actions_by_id["terminal.toggle"].trigger()
    view = win.terminal.view
    assert view is not None
    qtbot.waitUntil(lambda: view.input_line() is not None, timeout=WAIT)

    command = f"{sys.executable} -m pytest -q -p no:cacheprovider tests"
    view.session.write(command.encode() + b"\r")
    qtbot.waitUntil(lambda: len(records) == 1, timeout=WAIT)
    assert records[0].exit_code == 1 and "tests/test_calc.py:5" in records[0].output
    bar = win.terminal_ai.fix.bar
    qtbot.waitUntil(bar.isVisible, timeout=WAIT)
    tabs = win.terminal.tabs
    assert tabs is not None and bar.parentWidget() is tabs  # over the terminal ...
    top_of_output = view.mapTo(tabs, QPoint(0, 0)).y()
    assert bar.geometry().bottom() < top_of_output  # ... in the tabs' row, over no output
    assert "exited with 1" in bar.label.text()

    # the ghost: at the new prompt, the history's next command (the only one so far)
    qtbot.waitUntil(lambda: view.input_line() == "", timeout=WAIT)
    view.setFocus()
    QTest.keyClicks(view, sys.executable[:3])
    qtbot.waitUntil(lambda: view.suggestion() == command[3:], timeout=WAIT)
    QTest.keyClick(view, Qt.Key.Key_Right)  # accepted into the line ...
    qtbot.waitUntil(lambda: view.input_line() == command, timeout=WAIT)
    assert len(records) == 1  # ... and not run: Enter is the user's

    bar.explain_button.click()
    qtbot.waitUntil(lambda: len(backend.asked) == 1, timeout=WAIT)
    turn = backend.asked[0].messages[-1].content
    assert "assert add(2, 2) == 4" in turn and "1 failed" in turn
    assert "5 |     assert add(2, 2) == 4" in turn  # the window around the named line
    assert _digests(root) == before
    win.close()
