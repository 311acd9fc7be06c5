"""Next-command prediction in the terminal's prompt line (issue 17): ghost text the terminal's
view shows and a key accepts into the line; the user presses Enter, never the editor.

- Each finished command joins the workspace's history (``CommandHistory.add``: never a line
  with a secret) and the history is ranked once (``rank_next``); each change of the prompt
  line only filters that ranking by what is typed (``suggest``, on the UI thread: a list scan).
- When history has nothing, the local completion engine is asked after a pause
  (``MODEL_DELAY_MS``) with the recent commands (``model_input``); its answer is shown only
  if the line is still the one it was asked for. A change of the line cancels the request
  (``engine.cancel``): the engine's answers come by its signals, the UI thread never waits.
- The history is read and written on the predictor's own worker (``app.services.command_history``,
  owner-only files in the data folder); the first suggestions wait for nothing: until the
  stored history is read, the commands of this session rank alone, and are merged after.

``view``: any object with ``set_suggestion(text)``, ``text`` the ghost text after what is
typed: the terminal's owner (its current tab) or a ``TerminalView``. The view clears its
ghost on each change of the line; the predictor never clears one, and the model's late answer
never replaces a ghost someone else offered meanwhile (the database branch's "Open in
terminal" line at a new shell's first prompt).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.services.command_history import HistoryStore
from app.services.threads import SerialExecutor
from forecode_core.terminal.predict import (
    CommandHistory,
    model_input,
    model_suggestion,
    rank_next,
    suggest,
)
from forecode_core.terminal.records import CommandRecord

__all__ = ["TerminalPredictor"]

MODEL_DELAY_MS = 300  # the pause after the last key before the model is asked
MODEL_MAX_TOKENS = 32


class TerminalPredictor(QObject):
    """``root()``: the workspace folder now (its history is read when it changes) or None;
    ``engine()``: the completion engine now (``CompletionEngine``) or None; ``store``: where
    histories live (None: this session's commands only, nothing written)."""

    suggested = Signal(str, str)  # (typed, whole command) each time a suggestion is shown
    model_answered = Signal(str, object)  # (the model's raw text, its suggestion or None)
    _loaded = Signal(str, object)  # (workspace, CommandHistory) from the worker

    def __init__(
        self,
        root: Callable[[], str | os.PathLike[str] | None],
        engine: Callable[[], Any | None],
        store: HistoryStore | None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._root_now = root
        self._engine = engine
        self._store = store
        self._worker: SerialExecutor | None = None
        self._root = ""
        self._read = False  # the stored history of _root is read (merged): saves may start
        self.history = CommandHistory()
        self.ranked: list[str] = []
        self._view: Any = None
        self._typed = ""
        self._pending: tuple[Any, int] | None = None  # (engine, request id) asked of the model
        self._wired: Any = None  # the engine whose answers reach us
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(MODEL_DELAY_MS)
        self._timer.timeout.connect(self._ask_model)
        self._loaded.connect(self._on_loaded)

    # ----- history -----------------------------------------------------------------------------
    def _run(self, fn: Callable[[], object]) -> None:
        if self._store is None:
            return
        if self._worker is None:
            self._worker = SerialExecutor("forecode-terminal-history")
        self._worker.submit(fn)

    def _follow_root(self) -> None:
        """Another folder: its stored history is read on the worker."""
        root = self._root_now()
        if (str(root) if root else "") == self._root:
            return
        self._root = str(root) if root else ""
        self._read = False
        self.history = CommandHistory()
        self.ranked = []
        store, workspace = self._store, self._root
        if store is None or not workspace:
            return

        def load() -> None:
            history = store.load(workspace)
            with contextlib.suppress(RuntimeError):  # the window closed meanwhile
                self._loaded.emit(workspace, history)

        self._run(load)

    def _on_loaded(self, workspace: str, stored: CommandHistory) -> None:
        if workspace != self._root:
            return
        for command in self.history.commands:  # this session's, after the stored ones
            stored.add(command)
        added = bool(self.history.commands)
        self.history, self._read = stored, True
        self.ranked = rank_next(stored.commands)
        if added:
            self._save()
        view = self._view
        if view is not None and self._pending is None and not _ghost_now(view):
            self.line_changed(view, self._typed)  # the line shown gets its due

    def command_ran(self, record: CommandRecord) -> None:
        """A finished command joins the history (when it may) and the ranking is redone."""
        self._follow_root()
        if not self.history.add(record.command):
            return
        self.ranked = rank_next(self.history.commands)
        if self._read:  # else the read's merge saves it (a save now would lose the stored)
            self._save()

    def _save(self) -> None:
        store, workspace = self._store, self._root
        if store is None or not workspace:
            return
        snapshot = CommandHistory(list(self.history.commands))
        self._run(lambda: store.save(workspace, snapshot))

    # ----- the prompt line ---------------------------------------------------------------------
    def line_changed(self, view: Any, typed: str) -> None:
        """The prompt line of ``view`` is now ``typed``: a suggestion from history at once,
        else the model after a pause; a request for an older line is cancelled."""
        self._cancel_model()
        self._follow_root()
        self._view, self._typed = view, typed
        command = suggest(self.ranked, typed)
        if command is not None:
            self._show(command)
            return
        self._timer.start()  # (the view cleared its ghost when the line changed)

    def _show(self, command: str) -> None:
        if self._view is not None:
            self._view.set_suggestion(command[len(self._typed) :])
            self.suggested.emit(self._typed, command)

    def _ask_model(self) -> None:
        engine = self._engine()
        if engine is None or self._view is None or not engine.is_ready():
            return
        if engine is not self._wired:  # a new engine (another model): its answers reach us
            if self._wired is not None:
                with contextlib.suppress(RuntimeError, TypeError):
                    self._wired.done.disconnect(self._on_model_done)
            self._wired = engine
            engine.done.connect(self._on_model_done)
        folder = os.path.basename(self._root.rstrip("/\\"))
        inp = model_input(self.history.commands, self._typed, folder)
        self._pending = (engine, engine.complete(inp, MODEL_MAX_TOKENS))

    def _on_model_done(self, request_id: int, done: object) -> None:
        pending = self._pending
        if pending is None or pending[1] != request_id:
            return  # another request's (the editor's ghost text shares the engine)
        self._pending = None
        text = str(getattr(done, "text", ""))
        command = model_suggestion(text, self._typed)
        if command is not None and not _ghost_now(self._view):
            self._show(command)  # (a ghost someone else offered meanwhile stays)
        self.model_answered.emit(text, command)

    def _cancel_model(self) -> None:
        self._timer.stop()
        pending, self._pending = self._pending, None
        if pending is not None:
            with contextlib.suppress(RuntimeError):
                pending[0].cancel(pending[1])

    def shutdown(self) -> None:
        self._cancel_model()
        if self._worker is not None:
            self._worker.shutdown(wait=False)  # a queued save still runs


def _ghost_now(view: Any) -> str:
    """The ghost text ``view`` shows now: a ``TerminalView``'s, or the terminal owner's
    current tab's ("" when neither says)."""
    target = getattr(view, "view", view)
    get = getattr(target, "suggestion", None)
    return str(get()) if callable(get) else ""
