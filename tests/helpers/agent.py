"""The agent tests' scripted model and in-memory tools (the seams of
``forecode_core.agent.loop``), and a tiny project with a failing test."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from forecode_core.agent.loop import CommandResult, ModelAnswer
from forecode_core.agent.paths import relative_path
from forecode_core.chat.types import ChatMessage

__all__ = ["CALC", "FIX", "TEST", "MemoryTools", "NoChecker", "Script", "project", "python_dir"]

CALC = "def add(a, b):\n    return a - b\n"
TEST = (
    "from calc import add\n\n\n"
    "def test_add():\n    assert add(2, 3) == 5\n\n\n"
    "if __name__ == '__main__':\n    test_add()\n    print('passed')\n"
)
FIX = "FILE: calc.py\n```python\ndef add(a, b):\n    return a + b\n```"


def project(tmp_path: Path) -> Path:
    """A folder with calc.py (add subtracts) and test_calc.py (run as a script: 'passed')."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "calc.py").write_text(CALC)
    (ws / "test_calc.py").write_text(TEST)
    return ws


def python_dir() -> str:
    """This interpreter's folder, put first on a command's PATH so ``python`` is it."""
    return os.path.dirname(sys.executable)


class NoChecker:
    """The shadow's checker seam with no tool: the verdict says "not checked"."""

    available = False

    def diagnostics(self, root: Path, paths: object, deadline: float) -> list[object]:
        return []


class Script:
    """A model that answers its turns in order and records what it was sent."""

    def __init__(self, *turns: str, tokens: int = 10) -> None:
        self.turns = list(turns)
        self.seen: list[tuple[ChatMessage, ...]] = []
        self.tokens = tokens

    def answer(self, messages: Sequence[ChatMessage], max_tokens: int) -> ModelAnswer:
        self.seen.append(tuple(messages))
        if not self.turns:
            return ModelAnswer("DONE: nothing left to say", self.tokens)
        return ModelAnswer(self.turns.pop(0), self.tokens)


class MemoryTools:
    """Files in a dict; commands recorded, their results scripted."""

    def __init__(self, files: Mapping[str, str], results: Sequence[CommandResult] = ()) -> None:
        self.files = dict(files)
        self.results = list(results)
        self.ran: list[str] = []
        self.written: list[dict[str, str]] = []

    def read(self, path: str) -> str:
        rel = relative_path(path)
        if rel not in self.files:
            raise FileNotFoundError(rel)
        return self.files[rel]

    def exists(self, path: str) -> bool:
        return relative_path(path) in self.files

    def write(self, texts: Mapping[str, str], originals: Mapping[str, str]) -> str:
        for rel in texts:
            relative_path(rel)
        self.written.append(dict(texts))
        return "none"

    def run(self, command: str) -> CommandResult:
        self.ran.append(command)
        return self.results.pop(0) if self.results else CommandResult(command, 0, "ok\n")
