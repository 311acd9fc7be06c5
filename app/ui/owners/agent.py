"""The agent in the window (issue 17): the chat's "Agent" mode and the palette's "Agent: Start
Task" give it a task ("make this test pass", "fix the failing command"); the loop
(``forecode_core.agent.loop``) runs on its own thread (``app.services.agent_run.AgentRun``)
over the chat's backend (the model), the workspace (reads, confined) and the workspace's
shadow (edits; commands run in its copy, on a database branch when the project has a
development database).

In the transcript: each step as a line, each proposed command as a card (command, folder,
why) with Approve / Reject / Always allow -- nothing runs before a click unless the command
matches ``agent.allowedCommands`` or a command allowed "always" in this session. Stop: a
button pinned in the chat's bottom bar beside Send, shown while an agent runs (in the
transcript a long run scrolled it out of view), and "Agent: Stop" (offered only then). At
the end: why it ended, the last command's result and the branch's preview, and the set of
changes opened in the multi-file edit review (``EditSetOwner.show_review``) with the last
run's result in its header. The UI thread never waits: the loop's events come back by signals.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QPushButton

from app.services.agent_lookup import AgentLookup
from app.services.agent_run import (
    AgentRun,
    RunEnvironment,
    ShadowTools,
    environment_for,
    listing,
)
from forecode_core.agent.allow import AllowList
from forecode_core.agent.loop import AgentLoop, AgentOutcome, Decision, StepEvent
from forecode_core.agent.model import ChatStreamModel
from forecode_core.store.settings import Settings

from ..agent_view import AgentEndView, CommandCard, StepLine, result_line
from .chat import Chat
from .commands import Command
from .edit_set import EditSetOwner
from .workspace import Workspace

__all__ = ["AgentOwner"]


class AgentOwner(QObject):
    """``settings()``: the settings now; ``shadow()``: the workspace's shadow now (the review
    owner's), or None."""

    message = Signal(str, int)
    _event = Signal(object, object)  # (run, StepEvent), from the agent's thread
    _end = Signal(object, object)  # (run, AgentOutcome or an exception)

    def __init__(
        self,
        settings: Callable[[], Settings],
        workspace: Workspace,
        chat: Chat,
        edit_set: EditSetOwner,
        shadow: Callable[[], Any | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._workspace = workspace
        self._chat = chat
        self._edit_set = edit_set
        self._shadow = shadow
        self.panel = chat.panel
        self.run: AgentRun | None = None
        self.cards: dict[int, CommandCard] = {}
        self.session_allow = AllowList()  # "Always allow" clicks of this session
        self.last_outcome: AgentOutcome | None = None
        self.end_view: AgentEndView | None = None
        self.stop_button = QPushButton("■ Stop agent")
        self.stop_button.setToolTip("Stop the agent (a command it runs is killed)")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setMinimumWidth(self.stop_button.sizeHint().width())  # never cut
        self.stop_button.hide()
        self.panel.pin_to_bar(self.stop_button)
        self.run_root: Path | None = None  # the folder the running agent works in
        self.detached = False  # the running agent's transcript was left (another folder)
        self._closed = False
        # the commands' environment (a database branch where the project has a database);
        # called on the agent's thread with the workspace and the shadow copy's roots
        self.environment: Callable[[Path, Path], RunEnvironment] = environment_for
        self._event.connect(self._on_event)
        self._end.connect(self._on_end)
        self.panel.agent_requested.connect(self.start_task)
        workspace.opened.connect(self._folder_opened)
        self.panel.edit_files_button.toggled.connect(
            lambda on: self.panel.set_agent_mode(False) if on else None
        )

    def commands(self) -> list[Command]:
        return [
            Command("agent.start", "Agent: Start Task", "", self.start),
            Command("agent.stop", "Agent: Stop", "", self.stop, lambda: self.run is not None),
        ]

    def start(self) -> None:
        """The palette command: the chat in "Agent" mode, the focus in its box."""
        self._chat.show()
        self.panel.set_agent_mode(True)
        self.panel.focus_input()

    def allow_list(self) -> AllowList:
        rules = (*self._settings().agent_allowed_commands, *self.session_allow.texts())
        return AllowList.of(rules)

    def start_task(self, task: str, context: str = "") -> bool:
        """Run ``task`` (from the chat's Agent mode; ``context``: what goes with it as data,
        e.g. a failed command and its output); False (with a message) when it cannot."""
        root = self._workspace.root
        shadow = self._shadow()
        backend = self.panel.runner.backend
        why = (
            "the agent is already running (Stop it first)"
            if self.run is not None
            else "open a folder first"
            if root is None or shadow is None
            else "no model is ready yet"
            if backend is None
            else ""
        )
        self.panel.add_view(StepLine("task", f"Agent task: {task}"))
        if why or root is None or shadow is None or backend is None:
            self.panel.add_view(StepLine("refused", f"The agent cannot start: {why}."))
            self.message.emit(f"Agent: {why}.", 5000)
            return False
        self.run_root = root
        self.detached = False
        tools = ShadowTools(root, shadow)
        panel = self.panel
        tools.lookup = AgentLookup(root, shadow.tree, lambda: shadow.rules, lambda: panel.codebase)
        allow = self.allow_list()
        rules = self._workspace.rules
        environment = self.environment

        def make_loop() -> AgentLoop:  # on the agent's thread: disk work
            shadow.sync()
            tools.environment = environment(root, shadow.tree)
            return AgentLoop(task, allow=allow, context=context, listing=listing(root, rules))

        run: AgentRun | None = None

        def on_event(event: StepEvent) -> None:
            if not self._closed:
                self._event.emit(run, event)

        def on_end(result: AgentOutcome | BaseException) -> None:
            if not self._closed:
                self._end.emit(run, result)

        model = ChatStreamModel(backend.chat)
        run = AgentRun(make_loop, model, tools, on_event=on_event, on_end=on_end)
        self.run = run
        self.cards = {}
        self.stop_button.setText("■ Stop agent")
        self.stop_button.setEnabled(True)
        self.stop_button.show()
        run.start()
        return True

    def _folder_opened(self, root: object) -> None:
        """Another folder opened: a running agent works on the old folder's shadow, so it
        stops; its transcript goes with the old folder's chat (the chat shows the new
        folder's), so the line saying why goes to the new one's and the status bar."""
        if self.run is None or root == self.run_root:
            return
        why = "The agent stopped: another folder was opened."
        self.stop()
        self.detached = True  # its cards and buttons are the old transcript's: left alone
        self.cards = {}
        self.stop_button.hide()
        self.message.emit(why, 8000)
        QTimer.singleShot(0, lambda: self.panel.add_view(StepLine("refused", why)))

    def stop(self) -> None:
        run = self.run
        if run is None:
            self.message.emit("The agent is not running.", 3000)
            return
        run.stop()  # the loop ends on its thread; its end comes back by the signal
        self.stop_button.setEnabled(False)
        self.stop_button.setText("Stopping…")

    # ----- the loop's events, on the UI thread ---------------------------------------------------
    def _on_event(self, run: object, event: StepEvent) -> None:
        if run is not self.run or self.detached:
            return
        if event.kind == "card" and event.card is not None:
            card = CommandCard(event.card)
            card.decided.connect(self._decided)
            self.cards[event.card.step] = card
            self.panel.add_view(card)
        elif event.kind == "allowed" and event.card is not None:
            card = CommandCard(event.card)
            card.close_buttons("Allowed by your list: running…")
            self.cards[event.card.step] = card
            self.panel.add_view(card)
        elif event.kind == "ran" and event.result is not None:
            shown = self.cards.get(event.step)
            if shown is not None:
                shown.show_result(event.result)
        elif event.kind != "end":
            self.panel.add_view(StepLine(event.kind, event.text))

    def _decided(self, step: int, decision: object) -> None:
        run = self.run
        if run is None or not isinstance(decision, Decision):
            return
        card = self.cards.get(step)
        if decision is Decision.ALWAYS and card is not None:
            self.session_allow = self.session_allow.with_rule(card.card.command)
            self.message.emit(
                f'Agent: "{card.card.command}" allowed for this session; add it to '
                '"agent.allowedCommands" in the settings to keep it.',
                8000,
            )
        run.decide(step, decision)  # the agent's thread waits on it; this returns at once

    def _on_end(self, run: object, result: object) -> None:
        if run is not self.run:
            return
        self.run = None
        self.stop_button.hide()
        if self.detached:  # another folder's transcript is shown: nothing to add there
            self.last_outcome = result if isinstance(result, AgentOutcome) else None
            return
        if not isinstance(result, AgentOutcome):
            self.panel.add_view(StepLine("refused", f"The agent failed: {result}"))
            self.message.emit(f"Agent failed: {result}", 8000)
            return
        self.last_outcome = result
        for card in self.cards.values():
            if card.decision is None and card.approve_button.isEnabled():
                card.close_buttons("Not answered: the agent ended.")
        view = AgentEndView(result)
        view.review_requested.connect(self.review_last)
        self.end_view = view
        self.panel.add_view(view)
        if result.changes:
            self.review_last()

    def review_last(self) -> None:
        outcome = self.last_outcome
        if outcome is None or not outcome.changes:
            return
        review = self._edit_set.show_review(outcome.changes, title="Agent")
        last = outcome.last_run
        note = f"last run: {result_line(last)}" if last is not None else "no command was run"
        if last is not None and last.preview:
            note += " · " + last.preview.splitlines()[0]
        review.set_check(note, {})

    def shutdown(self) -> None:
        self._closed = True
        if self.run is not None:
            self.run.stop()
