"""The next-command ghost from the real local engine (the small completion model, the real
worker) in the real window with bash on a real PTY: with no history for the typed prefix the
model is asked, answers, and what it suggests (if anything usable) is ghost text after the
typed text: one line, no secret, not run. Fails, never skips, when the engine is broken."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from forecode_core.terminal.predict import has_secret
from forecode_core.terminal.records import CommandRecord

pytestmark = pytest.mark.slow
WAIT = 30_000


@pytest.fixture
def shell_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SHELL", shutil.which("bash") or "/bin/bash")
    yield home


@pytest.mark.timeout(300)
def test_the_model_ghost_when_history_has_nothing(
    qtbot: QtBot, tmp_path: Path, shell_home: Path
) -> None:
    from app.ui.local_engine import LocalEngine
    from app.ui.main_window import MainWindow
    from local_models.model_store import ensure_small_model

    engine = LocalEngine(ensure_small_model())
    win = MainWindow(engine=engine)
    qtbot.addWidget(win)
    engine.start()
    qtbot.waitUntil(engine.is_ready, timeout=120_000)
    folder = tmp_path / "project"
    folder.mkdir()
    win.open_folder(folder)
    win.show()
    answers: list[tuple[str, str | None]] = []
    win.terminal_ai.predictor.model_answered.connect(lambda t, c: answers.append((t, c)))
    records: list[CommandRecord] = []
    win.terminal.command_finished.connect(records.append)
    win.actions_by_id["terminal.toggle"].trigger()
    view = win.terminal.view
    assert view is not None
    qtbot.waitUntil(lambda: view.input_line() == "", timeout=WAIT)
    view.setFocus()
    QTest.keyClicks(view, "git ")
    qtbot.waitUntil(lambda: view.input_line() == "git ", timeout=WAIT)
    qtbot.waitUntil(lambda: len(answers) == 1, timeout=120_000)  # the model was asked
    raw, command = answers[0]
    print("model:", repr(raw), "->", repr(command))
    if command is not None:
        assert command.startswith("git ") and "\n" not in command and not has_secret(command)
        qtbot.waitUntil(lambda: view.suggestion() == command[len("git ") :], timeout=WAIT)
    assert records == [] and view.input_line() == "git "  # nothing ran, nothing typed
    win.close()
