"""The agent's workspace side with real parts: a real shadow workspace, real processes in its
copy, a scripted model at the chat seam, the cards answered from this thread as the window
answers them (the window's own test is tests/test_agent_window.py)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from app.services.agent_run import (
    AgentRun,
    BranchEnvironment,
    PlainEnvironment,
    ShadowTools,
    environment_for,
    listing,
    run_command,
)
from app.services.shadow import ShadowWorkspace
from forecode_core.agent.loop import AgentLoop, AgentOutcome, Decision, StepEvent, StopReason
from forecode_core.agent.paths import PathRefused
from forecode_core.edits.events import FileChangeKind
from tests.helpers.agent import CALC, FIX, NoChecker, Script, project, python_dir

WAIT_S = 120.0


def tools_for(tmp_path: Path, ws: Path, timeout_s: float = 60.0) -> ShadowTools:
    shadow = ShadowWorkspace(ws, base=tmp_path / "data", checker=NoChecker(), scan_every_s=None)
    shadow.sync()
    env = PlainEnvironment(path_first=python_dir())
    return ShadowTools(ws, shadow, env, timeout_s=timeout_s)


class Clicker:
    """Answers each card from the test's thread, as a click would."""

    def __init__(self, *decisions: Decision) -> None:
        self.decisions = list(decisions)
        self.cards: list[StepEvent] = []
        self.events: list[StepEvent] = []
        self.run: AgentRun | None = None
        self.ended = threading.Event()
        self.outcome: AgentOutcome | BaseException | None = None

    def on_event(self, event: StepEvent) -> None:
        self.events.append(event)
        if event.kind == "card" and self.run is not None and event.card is not None:
            self.cards.append(event)
            decision = self.decisions.pop(0) if self.decisions else Decision.REJECT
            step = event.card.step
            threading.Thread(target=self.run.decide, args=(step, decision)).start()

    def on_end(self, outcome: AgentOutcome | BaseException) -> None:
        self.outcome = outcome
        self.ended.set()

    def go(self, loop: AgentLoop, model: Script, tools: ShadowTools) -> AgentOutcome:
        self.run = AgentRun(loop, model, tools, on_event=self.on_event, on_end=self.on_end)
        self.run.start()
        assert self.ended.wait(WAIT_S)
        assert isinstance(self.outcome, AgentOutcome), self.outcome
        return self.outcome


def test_the_loop_fixes_a_failing_test_in_the_shadow(tmp_path: Path) -> None:
    ws = project(tmp_path)
    tools = tools_for(tmp_path, ws)
    model = Script(
        "READ: calc.py",
        "RUN: python test_calc.py\nWHY: see it fail",
        FIX,
        "RUN: python test_calc.py\nWHY: see it pass",
        "DONE: add adds",
    )
    clicker = Clicker(Decision.APPROVE, Decision.APPROVE)
    loop = AgentLoop("make test_calc pass", listing=listing(ws))
    outcome = clicker.go(loop, model, tools)
    assert outcome.reason is StopReason.DONE
    first, second = outcome.commands
    assert first.exit_code != 0 and "AssertionError" in first.output
    assert second.exit_code == 0 and "passed" in second.output
    assert outcome.last_run == second and second.approved_by == "user"
    [change] = outcome.changes
    assert change.kind is FileChangeKind.MODIFIED and "a + b" in change.new_text
    assert (ws / "calc.py").read_text() == CALC  # the user's file is never written
    assert (tools.shadow.tree / "calc.py").read_text() == CALC  # the copy put back
    assert "test_calc.py" in loop.messages[1].content  # the listing
    assert len(clicker.cards) == 2


def test_a_refused_command_never_runs(tmp_path: Path) -> None:
    ws = project(tmp_path)
    tools = tools_for(tmp_path, ws)
    marker = tmp_path / "marker"
    model = Script(f"RUN: touch marker {marker}\nWHY: the README says so", "DONE: ok")
    outcome = Clicker(Decision.REJECT).go(AgentLoop("t"), model, tools)
    assert outcome.commands == ()
    assert not marker.exists()
    assert not (tools.shadow.tree / "marker").exists() and not (ws / "marker").exists()
    assert "The user refused" in model.seen[1][-1].content


def test_paths_outside_are_refused_by_the_tools(tmp_path: Path) -> None:
    ws = project(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside, ws / "shared")
    tools = tools_for(tmp_path, ws)
    for raw in ("../outside/secret.txt", str(outside / "secret.txt"), "shared/secret.txt"):
        with pytest.raises(PathRefused):
            tools.read(raw)
    with pytest.raises(PathRefused):
        tools.write({"shared/evil.py": "x = 1\n"}, {})
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert "shared" not in listing(ws)


def test_a_command_is_bounded_timed_out_and_runs_in_the_copy(tmp_path: Path) -> None:
    ws = project(tmp_path)
    tools = tools_for(tmp_path, ws, timeout_s=1.0)
    result = tools.run("python -c 'import os; print(os.getcwd())'")  # shell syntax: /bin/sh
    assert result.exit_code == 0
    assert Path(result.output.strip()) == tools.shadow.tree.resolve()
    env = PlainEnvironment(path_first=python_dir()).env()
    big = run_command("python -c 'print(\"x\" * 200000)'", tools.shadow.tree, env, timeout_s=WAIT_S)
    assert big.exit_code == 0 and "bytes of output before this" in big.output
    assert len(big.output) < 70_000
    slow = tools.run("sleep 30")
    assert slow.timed_out and slow.exit_code is None


def test_stop_kills_a_running_command(tmp_path: Path) -> None:
    ws = project(tmp_path)
    tools = tools_for(tmp_path, ws, timeout_s=WAIT_S)
    model = Script("RUN: sleep 60\nWHY: wait", "DONE: never")
    clicker = Clicker(Decision.APPROVE)
    original = clicker.on_event

    def stop_when_running(event: StepEvent) -> None:
        original(event)
        if event.kind == "card":
            threading.Thread(target=stop_once_started).start()

    def stop_once_started() -> None:
        while tools._proc is None and not clicker.ended.is_set():
            clicker.ended.wait(0.05)
        assert clicker.run is not None
        clicker.run.stop()

    clicker.on_event = stop_when_running  # type: ignore[method-assign]
    outcome = clicker.go(AgentLoop("t"), model, tools)
    assert outcome.reason is StopReason.STOPPED
    [ran] = outcome.commands
    assert ran.exit_code is None


ADD_ROW = (
    "import os, sqlite3\n"
    "path = os.environ['DATABASE_URL'].removeprefix('sqlite:///')\n"
    "with sqlite3.connect(path) as db:\n"
    "    db.execute(\"INSERT INTO items (name) VALUES ('new')\")\n"
    "print('added')\n"
)


def test_the_runs_use_a_database_branch_and_the_main_database_is_untouched(
    tmp_path: Path,
) -> None:
    ws = project(tmp_path)
    main_db = ws / "app.db"
    with sqlite3.connect(main_db) as db:
        db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO items (name) VALUES ('old')")
    db.close()
    (ws / "add_row.py").write_text(ADD_ROW)
    before = hashlib.sha256(main_db.read_bytes()).hexdigest()
    tools = tools_for(tmp_path, ws)
    tools.environment = environment_for(ws, tools.shadow.tree)
    assert isinstance(tools.environment, BranchEnvironment)
    model = Script("RUN: python add_row.py\nWHY: add a row", "DONE: added")
    outcome = Clicker(Decision.APPROVE).go(AgentLoop("t"), model, tools)
    [ran] = outcome.commands
    assert ran.exit_code == 0, ran.output
    assert "items: +1 ~0 -0" in ran.preview
    assert hashlib.sha256(main_db.read_bytes()).hexdigest() == before
    assert tools.environment.branch.dropped  # closed with the loop
