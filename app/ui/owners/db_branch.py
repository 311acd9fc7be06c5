"""Tests on a database branch (issue 17): the palette's "Run Tests on a Database Branch".

On the owner's worker (``SerialExecutor``; the UI thread never waits on a database, the disk
or a process): the open folder's shadow is brought in step (``ShadowWorkspace.sync``), the
project's development database is found (the ``dbBranch.database`` setting first, else
``forecode_core.dbbranch.detect``) and branched into the shadow
(``app.services.dbbranch.open_branch``), the test command (``dbBranch.testCommand``, default
``python -m pytest -q`` with the project's interpreter) runs in the shadow with the branch's
environment, and the preview (per-table changes, sample rows) and the dev database's
checksums are taken. The panel (``app.ui.db_branch_panel``, a bottom dock) shows them with
"Keep branch", "Discard" and "Open in terminal": the terminal owner's new tab, whose first prompt
gets a ghost-text line that enters the shadow and exports the branch's variables (the user
accepts it and presses Enter; ``open_terminal`` is emitted too). A branch nobody kept is
dropped when the next run starts, on Discard, or when the application quits.
"Database Branch: Show Found Database" says what would be branched.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QDockWidget

from app.services.dbbranch import (
    Branch,
    BranchError,
    default_test_command,
    detect_in,
    find_database,
    open_branch,
    run_tests,
)
from app.services.threads import SerialExecutor, UiThread
from forecode_core.dbbranch.preview import Preview, TestRun
from forecode_core.store.settings import Settings

from ..db_branch_panel import DbBranchPanel
from .commands import Command

if TYPE_CHECKING:
    from app.services.shadow import ShadowWorkspace

    from .terminal import TerminalOwner

__all__ = ["DbBranchOwner", "Outcome"]


@dataclass(frozen=True)
class Outcome:
    """A run's result for the panel; ``error`` alone when no branch or run came of it."""

    database: str = ""
    branch: Branch | None = None
    run: TestRun | None = None
    preview: Preview | None = None
    unchanged: bool | None = None
    error: str = ""
    folder: Path | None = None  # the shadow the tests ran in


@dataclass(frozen=True)
class _Job:
    """One run's inputs, taken on the UI thread for the worker."""

    root: Path
    shadow: ShadowWorkspace
    choice: str  # the dbBranch.database setting
    command: str  # the dbBranch.testCommand setting ("": the default)
    cancel: threading.Event


class DbBranchOwner(QObject):
    message = Signal(str, int)
    finished = Signal(object)  # Outcome (worker -> UI)
    progress = Signal(str, str)  # database, step (worker -> UI)
    decided = Signal(str)  # what Keep / Discard did (worker -> UI)
    open_terminal = Signal(object, object)  # the branch's env (dict), the folder (Path)

    def __init__(
        self,
        settings: Callable[[], Settings],
        root: Callable[[], Path | None],
        shadow: Callable[[], ShadowWorkspace | None],
        place_dock: Callable[[QDockWidget], None],
        terminal: TerminalOwner | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._root = root
        self._shadow = shadow
        self._place_dock = place_dock
        self._terminal = terminal
        self._executor = SerialExecutor("forecode-dbbranch")
        self._cancel = threading.Event()
        self._running = False
        self.branch: Branch | None = None  # the last run's, until kept or discarded
        self.shadow_tree: Path | None = None
        self.panel: DbBranchPanel | None = None
        self.dock: QDockWidget | None = None
        self.finished.connect(self._on_finished)
        self.progress.connect(self._on_progress)
        self.decided.connect(self._on_decided)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self._drop_at_quit)

    def commands(self) -> list[Command]:
        return [
            Command("dbBranch.run", "Run Tests on a Database Branch", "", self.run_tests),
            Command("dbBranch.show", "Database Branch: Show Found Database", "", self.show_found),
            Command(
                "dbBranch.stop", "Database Branch: Stop Test Run", "", self.stop, self.is_running
            ),
        ]

    @property
    def running(self) -> bool:
        return self._running

    def is_running(self) -> bool:  # "Stop Test Run" is offered only then
        return self._running

    # ----- commands -----------------------------------------------------------------------------
    def run_tests(self) -> bool:
        """Start a run (False, with a message, when none can start)."""
        root = self._root()
        if root is None:
            self.message.emit("Open a folder to run its tests on a database branch", 5000)
            return False
        if self._running:
            self.message.emit("A test run on a database branch is already running", 5000)
            return False
        shadow = self._shadow()
        if shadow is None:
            self.message.emit("No shadow workspace for this folder", 5000)
            return False
        settings = self._settings()
        command = settings.db_branch_test_command  # "": the default, made on the worker
        panel = self._ensure_panel()
        panel.show_running("Finding the development database…", "")
        self._show()
        self._running = True
        self._cancel = threading.Event()
        previous, self.branch = self.branch, None
        self._executor.submit(
            self._work,
            _Job(root, shadow, settings.db_branch_database, command, self._cancel),
            previous,
        )
        return True

    def show_found(self) -> None:
        root = self._root()
        if root is None:
            self.message.emit("Open a folder first", 4000)
            return
        choice = self._settings().db_branch_database

        def find() -> None:
            try:
                used = find_database(root, choice=choice)
                found = detect_in(root)
            except OSError as e:
                self.progress.emit("", f"Finding the database failed: {e}")
                return
            text = f"Branches are made of: {used.label}" if used else "No database found"
            others = [f"Also found: {f.label}" for f in found.found if f != used]
            skipped = [f"Skipped: {note}" for note in found.notes]
            self.progress.emit(text, "\n".join(others + skipped))

        self._ensure_panel()
        self._show()
        self._executor.submit(find)

    def stop(self) -> None:
        if self._running:
            self._cancel.set()
            self.message.emit("Stopping the test run…", 3000)

    def keep(self) -> None:
        branch = self.branch
        if branch is None:
            return

        def work() -> None:
            try:
                where = branch.keep()
            except (BranchError, OSError) as e:
                self.decided.emit(f"Not kept: {e}")
                return
            self.decided.emit(f"Branch kept: {where}")

        self.branch = None
        self._executor.submit(work)

    def discard(self) -> None:
        branch, self.branch = self.branch, None
        if branch is not None:
            self._executor.submit(lambda: self.decided.emit(_drop(branch)))

    def open_in_terminal(self) -> None:
        branch, folder = self.branch, self.shadow_tree
        if branch is None or folder is None:
            return
        self.open_terminal.emit(dict(branch.env), folder)
        if self._terminal is None:
            return
        view = self._terminal.new_terminal()
        line = export_line(branch.env, folder)
        offered = False

        def offer(typed: str) -> None:  # at the new shell's first prompt, nothing typed yet
            nonlocal offered
            if not offered and typed == "":
                offered = True
                view.set_suggestion(line)

        view.input_line_changed.connect(offer)
        if view.input_line() == "":
            offer("")
        self.message.emit("Accept the suggested line (End) to use the branch in this shell", 8000)

    # ----- the worker ---------------------------------------------------------------------------
    def _work(self, job: _Job, previous: Branch | None) -> None:
        if previous is not None:
            _drop(previous)
        try:
            self.finished.emit(self._branch_and_run(job))
        except BranchError as e:
            self.finished.emit(Outcome(error=f"No branch: {e}"))
        except Exception as e:  # the disk, a driver's own error (connection refused, ...)
            self.finished.emit(Outcome(error=f"The database branch failed: {e}"))

    def _branch_and_run(self, job: _Job) -> Outcome:
        shadow, cancel = job.shadow, job.cancel
        command = job.command or default_test_command(job.root)  # looks for the project's venv
        found = find_database(job.root, choice=job.choice)
        if found is None:
            return Outcome(error="No development database found (set dbBranch.database)")
        self.progress.emit(found.label, "Bringing the shadow workspace in step…")
        shadow.sync()
        self.progress.emit(found.label, "Making the branch…")
        branch = open_branch(found, shadow.tree)
        if cancel.is_set():
            _drop(branch)
            return Outcome(found.label, error="Stopped")
        self.progress.emit(
            found.label, f"Running {command} ({branch.method}, {branch.branch_s:.2f} s)"
        )
        try:
            run = run_tests(command, shadow.tree, branch.env, cancel=cancel)
            preview, unchanged = branch.preview(), branch.main_unchanged()
        except BaseException:
            _drop(branch)  # nobody will see it: never left behind
            raise
        return Outcome(found.label, branch, run, preview, unchanged, "", shadow.tree)

    # ----- back on the UI thread ----------------------------------------------------------------
    def _on_progress(self, database: str, step: str) -> None:
        panel = self._ensure_panel()
        if database:
            panel.database.setText(database)
        if step:
            panel.result.setText(step)

    def _on_finished(self, outcome: Outcome) -> None:
        self._running = False
        panel = self._ensure_panel()
        if outcome.error or outcome.run is None or outcome.preview is None:
            panel.show_error(outcome.error or "No result")
            self.message.emit(outcome.error, 8000)
            return
        self.branch = outcome.branch
        self.shadow_tree = outcome.folder
        notes = outcome.branch.notes if outcome.branch else []
        panel.show_result(outcome.database, outcome.run, outcome.preview, notes, outcome.unchanged)
        self.message.emit(f"Tests on a database branch: {outcome.run.summary}", 8000)
        self._show()

    def _on_decided(self, text: str) -> None:
        self._ensure_panel().show_decided(text)
        self.message.emit(text, 6000)

    def _drop_at_quit(self) -> None:
        branch, self.branch = self.branch, None
        if branch is not None:  # not a daemon: the interpreter waits for it, not the UI thread
            UiThread(target=_drop, args=(branch,), name="forecode-dbbranch-drop").start()

    # ----- the dock -----------------------------------------------------------------------------
    def _ensure_panel(self) -> DbBranchPanel:
        if self.panel is not None:
            return self.panel
        self.panel = DbBranchPanel()
        self.panel.keep_clicked.connect(self.keep)
        self.panel.discard_clicked.connect(self.discard)
        self.panel.terminal_clicked.connect(self.open_in_terminal)
        self.panel.stop_clicked.connect(self.stop)
        self.dock = QDockWidget("Database Branch")
        self.dock.setObjectName("db-branch-dock")
        self.dock.setWidget(self.panel)
        self._place_dock(self.dock)
        return self.panel

    def _show(self) -> None:
        if self.dock is not None:
            self.dock.show()
            self.dock.raise_()


def _drop(branch: Branch) -> str:
    try:
        branch.drop()
    except Exception as e:  # the server went away: nothing left to drop, or nothing we can
        return f"Not discarded: {e}"
    return f"Branch discarded: {branch.location}"


def export_line(env: dict[str, str], folder: Path) -> str:
    """A shell line that enters the shadow and exports the branch's variables (the password
    variable left out: it would stay in the shell's history)."""
    pairs = " ".join(
        f"{key}={shlex.quote(value)}" for key, value in env.items() if key != "PGPASSWORD"
    )
    return f"cd {shlex.quote(str(folder))} && export {pairs}"
