"""Next-command prediction in the window's terms (``app.ui.terminal_predict``): ghost text from
the workspace's history at once, the local engine (a scripted ``CompletionEngine`` at its
seam) only when history has nothing, its stale answers dropped and its requests cancelled
when the user types on; the history stored per workspace, owner-only, never a secret line
(real files, real Qt timers and threads)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from pytestqt.qtbot import QtBot

from app.services.command_history import HistoryStore
from app.ui.inline_completion import CompletionEngine
from app.ui.terminal_predict import TerminalPredictor
from forecode_core.protocol import Done
from forecode_core.terminal.records import CommandRecord


class _Engine(CompletionEngine):
    """The engine at its seam: records requests; the test answers them."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[int, Any]] = []
        self.cancelled: list[int] = []
        self.ready = True

    def complete(self, inp: Any, max_tokens: int) -> int:
        self.requests.append((len(self.requests) + 100, inp))
        return self.requests[-1][0]

    def cancel(self, request_id: int) -> None:
        self.cancelled.append(request_id)

    def is_ready(self) -> bool:
        return self.ready

    def answer(self, request_id: int, text: str) -> None:
        self.done.emit(request_id, Done(request_id, text, "stop"))


class _View:
    """The terminal view's ghost: set by ``set_suggestion``, cleared when the line changes."""

    def __init__(self) -> None:
        self.ghosts: list[str] = []
        self.ghost = ""

    def set_suggestion(self, text: str) -> None:
        self.ghosts.append(text)
        self.ghost = text

    def suggestion(self) -> str:
        return self.ghost


def _type(predictor: TerminalPredictor, view: _View, line: str) -> None:
    view.ghost = ""  # as the view does on each change of its line
    predictor.line_changed(view, line)


def _ran(predictor: TerminalPredictor, root: Path, *commands: str) -> None:
    for command in commands:
        predictor.command_ran(CommandRecord(command, str(root), "", 0))


def test_history_first_then_the_model(qtbot: QtBot, tmp_path: Path) -> None:
    engine, view = _Engine(), _View()
    root = tmp_path / "ws"
    root.mkdir()
    predictor = TerminalPredictor(lambda: root, lambda: engine, None)
    _ran(predictor, root, "pytest -q", "git status", "pytest -q")
    _type(predictor, view, "")
    assert view.ghosts[-1] == "git status"  # what followed "pytest -q" before
    _type(predictor, view, "git s")
    assert view.ghosts[-1] == "tatus"  # the ghost is what follows the typed text
    assert not engine.requests  # history answered: the model was not asked

    _type(predictor, view, "make b")  # history has nothing: the model after a pause
    assert view.ghost == ""
    qtbot.waitUntil(lambda: len(engine.requests) == 1, timeout=5000)
    first, inp = engine.requests[0]
    assert inp.prefix.endswith("pytest -q\ngit status\npytest -q\nmake b")
    _type(predictor, view, "make bu")  # typed on: the request is cancelled
    assert engine.cancelled == [first]
    engine.answer(first, "uild\n")  # its late answer is no suggestion
    assert view.ghost == ""
    qtbot.waitUntil(lambda: len(engine.requests) == 2, timeout=5000)
    second = engine.requests[1][0]
    engine.answer(second, "ild --release\nmake test\n")
    assert view.ghost == "ild --release"
    engine.ready = False  # a model that is not ready is not asked
    _type(predictor, view, "cargo x")
    qtbot.wait(500)
    assert len(engine.requests) == 2


def test_another_engine_is_listened_to_instead(qtbot: QtBot, tmp_path: Path) -> None:
    old, new, view = _Engine(), _Engine(), _View()
    engines = [old]
    predictor = TerminalPredictor(lambda: tmp_path, lambda: engines[-1], None)
    _type(predictor, view, "make")
    qtbot.waitUntil(lambda: len(old.requests) == 1, timeout=5000)
    engines.append(new)  # the model changed (a recalibration)
    _type(predictor, view, "make ")
    assert old.cancelled == [100]
    qtbot.waitUntil(lambda: len(new.requests) == 1, timeout=5000)
    old.answer(100, " wrong")  # the old engine's late answer, same id: not ours any more
    assert view.ghost == ""
    new.answer(100, " test")
    assert view.ghost == "test"


def test_a_ghost_offered_by_someone_else_stays(qtbot: QtBot, tmp_path: Path) -> None:
    engine, view = _Engine(), _View()
    predictor = TerminalPredictor(lambda: tmp_path, lambda: engine, None)
    _type(predictor, view, "")  # a new shell's first prompt, no history
    view.set_suggestion("cd /shadow && export DATABASE_URL=...")  # the branch's line
    qtbot.waitUntil(lambda: len(engine.requests) == 1, timeout=5000)
    engine.answer(100, "git status")
    assert view.ghost == "cd /shadow && export DATABASE_URL=..."


def test_the_stored_history_read_late_leaves_another_ghost(qtbot: QtBot, tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "data")
    root = tmp_path / "ws"
    root.mkdir()
    first = TerminalPredictor(lambda: root, lambda: None, store)
    _ran(first, root, "make", "make test")
    qtbot.waitUntil(lambda: store.load(root).commands == ["make", "make test"], timeout=5000)
    first.shutdown()
    view = _View()
    second = TerminalPredictor(lambda: root, lambda: None, store)
    _type(second, view, "")  # the first prompt; the history is read on the worker ...
    view.set_suggestion("cd /shadow")  # ... while someone else offers a line
    qtbot.waitUntil(lambda: second.history.commands == ["make", "make test"], timeout=5000)
    assert view.ghost == "cd /shadow"
    second.shutdown()


def test_the_history_is_stored_owner_only_and_without_secrets(qtbot: QtBot, tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "data")
    root = tmp_path / "ws"
    root.mkdir()
    predictor = TerminalPredictor(lambda: root, lambda: None, store)
    _ran(predictor, root, "npm test", "GITHUB_TOKEN=ghp_abc gh pr list", "npm run build")
    path = store.path(root)
    qtbot.waitUntil(lambda: path.exists() and b"npm run build" in path.read_bytes(), timeout=5000)
    assert b"ghp_abc" not in path.read_bytes() and b"GITHUB_TOKEN" not in path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700
    predictor.shutdown()

    # a new session in the same folder reads it back (on its worker) and suggests from it
    view = _View()
    again = TerminalPredictor(lambda: root, lambda: None, store)
    _type(again, view, "npm t")
    qtbot.waitUntil(lambda: view.ghosts[-1:] == ["est"], timeout=5000)
    _ran(again, root, "npm test")
    qtbot.waitUntil(lambda: path.read_bytes().count(b"npm test") == 2, timeout=5000)
    again.shutdown()


def test_a_session_command_before_the_read_is_kept_with_the_stored(
    qtbot: QtBot, tmp_path: Path
) -> None:
    store = HistoryStore(tmp_path / "data")
    root = tmp_path / "ws"
    root.mkdir()
    first = TerminalPredictor(lambda: root, lambda: None, store)
    _ran(first, root, "make", "make test")
    qtbot.waitUntil(lambda: store.load(root).commands == ["make", "make test"], timeout=5000)
    first.shutdown()
    second = TerminalPredictor(lambda: root, lambda: None, store)
    _ran(second, root, "make lint")  # before its read of the stored history ends
    merged = ["make", "make test", "make lint"]
    qtbot.waitUntil(lambda: second.history.commands == merged, timeout=5000)
    qtbot.waitUntil(lambda: b"make lint" in store.path(root).read_bytes(), timeout=5000)
    assert store.load(root).commands == merged
    second.shutdown()


def test_a_corrupt_history_is_moved_aside(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "data")
    path = store.path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert store.load(tmp_path).commands == []
    assert not path.exists() and path.with_suffix(".corrupt").read_text() == "{not json"
    os.chmod(path.parent, 0o755)
    store.save(tmp_path, store.load(tmp_path))
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
