"""A real terminal view for tests: the user's bash on a real PTY with Forecode's shell
integration, the widget shown (offscreen), HOME a test folder; killed and joined after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pytestqt.qtbot import QtBot

from app.services.terminal import shell_launch
from app.ui.terminal.view import TerminalView
from app.ui.theme import theme_named

WAIT = 30_000  # generous: a loaded 2-core machine


@contextmanager
def bash_view(qtbot: QtBot, folder: Path, size: tuple[int, int]) -> Iterator[TerminalView]:
    """The view at its first prompt."""
    env = {k: v for k, v in os.environ.items() if k != "PROMPT_COMMAND"}
    env["HOME"] = str(folder)
    view = TerminalView(shell_launch("bash", env), folder, lambda: theme_named("dark"))
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    view.start()
    try:
        qtbot.waitUntil(lambda: view.input_line() is not None, timeout=WAIT)
        yield view
    finally:
        view.kill()
        view.session.join(10)
