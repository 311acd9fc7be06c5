"""The README's terminal and agent screenshots (issue 17):

    python -m app.tools.terminal_shot docs/terminal.png docs/agent.png

Both on a scratch copy of a tiny project (``calc.py``'s ``add`` subtracts; ``test_calc.py``
fails), in a real window.

- terminal: the panel (Ctrl+`) with the user's bash on a real PTY, ``python -m pytest -q
  test_calc.py`` typed into it and failing (``python`` is this interpreter), the failure bar
  with Explain / Fix, and the history's ghost text at the next prompt.
- agent: "Agent: Start Task" with "make test_calc.py pass"; the model is scripted at the
  window's chat seam (``AGENT_TURNS``, so the shot is the same every time) but the rest is
  real: the first command card approved and run in the workspace's shadow (pytest's real
  failure under it), the model's fix applied there, the second card waiting for a click.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from app.tools.scratch import scratch_window_env, settle_until, settler
from forecode_core.chat.types import ChatDelta, ChatDone, ChatEvent, ChatParams, FinishReason

CALC = "def add(a, b):\n    return a - b\n"
TEST = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
COMMAND = "python -m pytest -q -p no:cacheprovider test_calc.py"
AGENT_TURNS = [
    "READ: calc.py",
    f"RUN: {COMMAND}\nWHY: see the test fail before changing anything",
    "FILE: calc.py\n```python\ndef add(a, b):\n    return a + b\n```",
    f"RUN: {COMMAND}\nWHY: check that the fix makes the test pass",
    "DONE: add adds",
]


class ScriptedChat:
    """The window's chat seam: each conversation gets the next of ``AGENT_TURNS``."""

    def __init__(self, turns: list[str]) -> None:
        self.turns = list(turns)

    def chat(self, params: ChatParams) -> _Turn:
        return _Turn(self.turns.pop(0) if self.turns else "DONE: nothing more")


class _Turn:
    def __init__(self, text: str) -> None:
        self.text = text

    def cancel(self) -> None:
        pass

    def __iter__(self) -> Iterator[ChatEvent]:
        yield ChatDelta(self.text)
        yield ChatDone(FinishReason.STOP)


def make_project(scratch: Path) -> Path:
    project = scratch / "calc"
    project.mkdir(parents=True)
    (project / "calc.py").write_text(CALC)
    (project / "test_calc.py").write_text(TEST)
    home = scratch / "home"  # the shell reads no rc of the user's; a short prompt
    home.mkdir()
    (home / ".bashrc").write_text("PS1='\\W$ '\n")
    os.environ["HOME"] = str(home)
    os.environ["SHELL"] = "/bin/bash"
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    return project


def shoot_terminal(window: Any, settle: Callable[[int], None]) -> bool:
    window.actions_by_id["terminal.toggle"].trigger()
    view = window.terminal.view
    if view is None or not settle_until(settle, lambda: view.input_line() is not None, 60):
        return False
    records: list[Any] = []
    view.command_finished.connect(records.append)
    view.session.write(f"{COMMAND}\r".encode())
    if not settle_until(settle, lambda: bool(records), 120):
        return False
    bar = window.terminal_ai.fix.bar
    return settle_until(settle, bar.isVisible, 30)


def shoot_agent(window: Any, settle: Callable[[int], None]) -> bool:
    from app.services.agent_run import PlainEnvironment
    from app.ui.agent_view import CommandCard

    def cards() -> list[Any]:
        return [v for v in window.chat_panel.views if isinstance(v, CommandCard)]

    python = os.path.dirname(sys.executable)
    window.agent.environment = lambda _root, _tree: PlainEnvironment(path_first=python)
    window.actions_by_id["agent.start"].trigger()
    window.chat_panel.input.setPlainText("make test_calc.py pass")
    if not window.chat_panel.send() or not settle_until(settle, lambda: len(cards()) == 1, 60):
        return False
    first = cards()[0]
    first.approve_button.click()
    if not settle_until(settle, lambda: "exit" in first.status_label.text(), 120):
        return False
    return settle_until(settle, lambda: len(cards()) == 2, 60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("terminal_out", type=Path)
    parser.add_argument("agent_out", type=Path)
    parser.add_argument("--size", default="1280x800")
    args = parser.parse_args(argv)
    settings = {"completion.enabled": False, "cloud.autostart": False, "index.enabled": False}
    project = make_project(scratch_window_env("fc-termshot-", settings))

    from PySide6.QtWidgets import QApplication

    from app.ui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    width, height = (int(v) for v in args.size.split("x"))
    settle = settler(app)

    ok = True
    for out, shoot in ((args.terminal_out, shoot_terminal), (args.agent_out, shoot_agent)):
        window = MainWindow(chat_backend=ScriptedChat(AGENT_TURNS))
        window.resize(width, height)
        window.open_folder(project)
        window.open_file(project / "calc.py")
        window.show()
        settle()
        shot = shoot(window, settle)
        settle()
        out.parent.mkdir(parents=True, exist_ok=True)
        saved = shot and window.grab().save(str(out))
        print(f"wrote {out}" if saved else f"could not make {out}")
        ok = ok and saved
        window.close()
        settle()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
