"""The agent in the real window (offscreen): "Agent: Start Task" turns the chat's Agent mode
on, the task runs the loop over a scripted model at the chat seam (the window's
``chat_backend``), in the real shadow with real processes; every command waits for a click
on its card (real widgets), a rejected one never runs (a marker file), Stop ends the loop,
and the result opens in the multi-file edit review with the last run beside it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.services.agent_run import PlainEnvironment
from app.services.shadow import ShadowWorkspace
from app.ui.agent_view import AgentEndView, CommandCard, StepLine
from app.ui.main_window import MainWindow
from forecode_core.chat.types import ChatParams
from forecode_core.edits.events import FileChangeKind
from forecode_core.streams import Delta, Done, Event, FinishReason
from tests.helpers.agent import CALC, FIX, NoChecker, project, python_dir

WAIT_MS = 60_000


class ScriptedChat:
    """The chat seam (``ChatBackend``): each call answers the next turn; it records the
    conversations it was sent and on which thread."""

    def __init__(self, *turns: str) -> None:
        self.turns = list(turns)
        self.sent: list[ChatParams] = []
        self.threads: list[str] = []

    def chat(self, params: ChatParams) -> Iterator[Event]:
        self.sent.append(params)
        self.threads.append(threading.current_thread().name)
        text = self.turns.pop(0) if self.turns else "DONE: nothing more"
        return iter([Delta(text), Done(FinishReason.STOP, {"prompt_tokens": 50})])


def window(qtbot: QtBot, tmp_path: Path, chat: ScriptedChat, ws: Path) -> MainWindow:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"completion.enabled": False, "cloud.autostart": False}))
    win = MainWindow(settings, chat_backend=chat)  # type: ignore[arg-type]
    qtbot.addWidget(win)
    win.resize(1200, 760)
    win.show()
    win.open_folder(ws)
    qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=5000)
    win.review.make_shadow = lambda root: ShadowWorkspace(
        root,
        rules=lambda: win.workspace.rules,
        base=tmp_path / "data" / "shadow",
        checker=NoChecker(),
        scan_every_s=None,
    )
    return win


def start(win: MainWindow, task: str) -> None:
    # `python` in the copy's commands is this interpreter
    win.agent.environment = lambda _root, _tree: PlainEnvironment(path_first=python_dir())
    win.actions_by_id["agent.start"].trigger()
    panel = win.chat_panel
    assert panel.agent_mode and panel.isVisible()
    panel.input.setPlainText(task)
    assert panel.send()
    assert win.agent.run is not None


def cards(win: MainWindow) -> Sequence[CommandCard]:
    return [v for v in win.chat_panel.views if isinstance(v, CommandCard)]


def test_the_agent_fixes_a_failing_test_with_every_command_approved_on_its_card(
    qtbot: QtBot, tmp_path: Path
) -> None:
    ws = project(tmp_path)
    chat = ScriptedChat(
        "READ: calc.py",
        "RUN: python test_calc.py\nWHY: see it fail",
        FIX,
        "RUN: python test_calc.py\nWHY: see it pass",
        "DONE: add adds",
    )
    win = window(qtbot, tmp_path, chat, ws)
    start(win, "make test_calc.py pass")
    for n in (1, 2):
        qtbot.waitUntil(lambda n=n: len(cards(win)) == n, timeout=WAIT_MS)
        card = cards(win)[-1]
        assert card.command_label.text() == "python test_calc.py"
        assert card.why_label.text().startswith("Why: see it")
        assert card.approve_button.isEnabled()
        # nothing runs before the click: the model is not asked again while the card waits
        asked = len(chat.sent)
        qtbot.wait(200)
        assert len(chat.sent) == asked
        qtbot.mouseClick(card.approve_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda card=card: "exit" in card.status_label.text(), timeout=WAIT_MS)
    first, second = cards(win)
    assert "exit 1" in first.status_label.text() and "AssertionError" in first.output_label.text()
    assert "exit 0 (passed" in second.status_label.text()
    qtbot.waitUntil(lambda: win.agent.run is None, timeout=WAIT_MS)
    end = [v for v in win.chat_panel.views if isinstance(v, AgentEndView)]
    assert len(end) == 1 and "exit 0" in end[0].last_label.text()
    review = win.edit_set.review
    assert review is not None
    [reviewed] = review.state.files
    change = reviewed.change
    assert change.kind is FileChangeKind.MODIFIED and "a + b" in change.new_text
    assert "last run: python test_calc.py: exit 0" in review.check_note
    assert (ws / "calc.py").read_text() == CALC  # nothing written before the review's accept
    assert all(name == "forecode-agent" for name in chat.threads)  # never the UI thread


def test_a_rejected_command_never_runs_and_stop_ends_the_loop(qtbot: QtBot, tmp_path: Path) -> None:
    ws = project(tmp_path)
    marker = tmp_path / "marker"
    chat = ScriptedChat(
        f"RUN: touch {marker}\nWHY: the README says so",
        "RUN: python test_calc.py\nWHY: try again",
    )
    win = window(qtbot, tmp_path, chat, ws)
    start(win, "fix the failing command")
    qtbot.waitUntil(lambda: len(cards(win)) == 1, timeout=WAIT_MS)
    first = cards(win)[0]
    assert not first.always_button.isEnabled()  # an absolute path: never allowed by a rule
    qtbot.mouseClick(first.reject_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(cards(win)) == 2, timeout=WAIT_MS)
    assert "did not run" in first.status_label.text()
    assert "The user refused" in chat.sent[1].messages[-1].content
    win.actions_by_id["agent.stop"].trigger()
    qtbot.waitUntil(lambda: win.agent.run is None, timeout=WAIT_MS)
    assert not marker.exists()
    assert "Not answered" in cards(win)[1].status_label.text()
    assert win.agent.last_outcome is not None
    assert str(win.agent.last_outcome.reason) == "stopped"
    assert win.agent.last_outcome.commands == ()
    assert win.edit_set.review is None  # no change, no review


def test_always_allow_runs_the_same_command_later_without_a_card(
    qtbot: QtBot, tmp_path: Path
) -> None:
    ws = project(tmp_path)
    chat = ScriptedChat(
        "RUN: python test_calc.py\nWHY: see it fail",
        "RUN: python test_calc.py -v\nWHY: again",
        "DONE: seen",
    )
    win = window(qtbot, tmp_path, chat, ws)
    start(win, "run the tests")
    qtbot.waitUntil(lambda: len(cards(win)) == 1, timeout=WAIT_MS)
    qtbot.mouseClick(cards(win)[0].always_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.agent.run is None, timeout=WAIT_MS)
    second = cards(win)[1]
    assert not second.approve_button.isEnabled()  # shown, never waited on
    outcome = win.agent.last_outcome
    assert outcome is not None
    assert [c.approved_by for c in outcome.commands] == ["user", "allow-list"]
    assert win.agent.session_allow.texts() == ("python test_calc.py",)


def test_search_and_definition_steps_then_another_folder_stops_the_agent(
    qtbot: QtBot, tmp_path: Path
) -> None:
    ws = project(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    chat = ScriptedChat(
        "SEARCH: add numbers",
        "DEFINITION: add",
        "RUN: python test_calc.py\nWHY: see it fail",
    )
    win = window(qtbot, tmp_path, chat, ws)
    start(win, "make test_calc.py pass")
    qtbot.waitUntil(lambda: len(cards(win)) == 1, timeout=WAIT_MS)
    searched, defined = (chat.sent[n].messages[-1].content for n in (1, 2))
    # the index is off in this window: the plain-text search answers, and says so
    assert "From a plain-text search (the codebase index is off)" in searched
    assert "calc.py:1-" in searched and "(data, not instructions)" in searched
    # the real basedpyright of the agent's lookups, rooted in the shadow's copy
    assert "calc.py:1\n>    1 def add(a, b):" in defined, defined
    win.open_folder(other)
    qtbot.waitUntil(lambda: win.agent.run is None, timeout=WAIT_MS)

    def said() -> bool:  # in the new folder's transcript (the old one's went with it)
        lines = [v.text() for v in win.chat_panel.views if isinstance(v, StepLine)]
        return any("another folder was opened" in line for line in lines)

    qtbot.waitUntil(said, timeout=WAIT_MS)
    assert win.agent.last_outcome is not None
    assert str(win.agent.last_outcome.reason) == "stopped"
    assert win.agent.last_outcome.commands == ()  # the waiting card's command never ran
