"""The editor's side of the local engine: ``EngineClient`` (a worker subprocess) behind the
``CompletionEngine`` seam, its callbacks re-emitted as Qt signals on the UI thread; and
``ModelTierTask``, which picks the completion model (``local_models.calibrate``) off the UI
thread."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from forecode_core.completion.prompt import CompletionInput
from forecode_core.engine_state import EngineState
from forecode_core.next_edit.input import NextEditInput
from local_models.client import EngineClient

from .inline_completion import CompletionEngine
from .tasks import BackgroundTask

__all__ = ["LocalEngine", "ModelTierTask"]


class LocalEngine(CompletionEngine):
    """Signals are emitted from the client's reader thread; Qt queues them to the UI thread.

    ``title``: the name the status bar shows for the model ("" = the GGUF's own name, once
    the worker has loaded it, else the file name)."""

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        parent: QObject | None = None,
        *,
        title: str = "",
        **client_args: object,
    ) -> None:
        super().__init__(parent)
        self.model_path = Path(model_path)
        self._title = title
        self.client = EngineClient(model_path, on_state=self._on_state, **client_args)  # type: ignore[arg-type]
        self._state = EngineState.STOPPED

    @property
    def title(self) -> str:
        if self._title:
            return self._title
        info = self.client.info or {}
        name = info.get("name")
        return str(name) if name else self.model_path.name

    def start(self) -> None:
        self.client.start()

    def _on_state(self, state: EngineState, detail: str) -> None:
        self._state = state
        self.state.emit(state, detail)

    def is_ready(self) -> bool:
        return self._state is EngineState.READY

    def complete(self, inp: CompletionInput, max_tokens: int) -> int:
        return self.client.complete(
            inp,
            on_chunk=self.chunk.emit,
            on_done=self.done.emit,
            on_error=self.error.emit,
            max_tokens=max_tokens,
            speculative=True,
        )

    def warm(self, inp: CompletionInput) -> None:
        self.client.warm(inp)

    def next_edit(self, inp: NextEditInput, max_tokens: int | None = None) -> int:
        return self.client.next_edit(
            inp,
            on_done=self.next_edit_done.emit,
            on_error=self.next_edit_error.emit,
            max_tokens=max_tokens,
        )

    def cancel(self, request_id: int) -> None:
        self.client.cancel(request_id)

    def close(self) -> None:
        self.client.close()


class _Relay(QObject):
    measuring = Signal(str)


class ModelTierTask(QObject):
    """Chooses the completion model on a pool thread: ``local_models.calibrate.load_or_run``
    (cached rates, or a few seconds of measurement in a separate process). ``measuring(reason)``
    says a measurement started; ``chosen(Choice)`` or ``failed(message)`` ends it. Starting
    again or ``cancel`` stops the previous run (its measuring process is killed); a stale run's
    signals are never delivered, also after the window is gone. The UI thread never waits.

    The first completion never waits for a measurement (issue 18: first completion <= 5 s
    after launch): when one is due (a first run, a new model, another llama.cpp build), the run
    does not measure but chooses at once from what is known (``load_or_run(defer=True)``: the
    cache's rates, else the smallest model) and emits that ``Choice`` (``provisional``); the
    owner starts that model and calls ``engine_ready()`` once it answers, which starts the
    measurement (its process competes with no model load then), and ``chosen`` comes again with
    the measured pick. A recalibration (``force``) measures at once."""

    measuring = Signal(str)
    chosen = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._task = BackgroundTask(self)
        self._task.done.connect(self._on_done)
        self._task.failed.connect(self._on_failed)
        self._relay: _Relay | None = None
        self.running = False
        self._due: tuple[str, int] | None = None  # a measurement waiting for engine_ready()
        self._args: tuple[str, int] = ("", 0)  # the last run's setting and budget

    def start(
        self, setting: str, budget_ms: int, *, force: bool = False, defer: bool = True
    ) -> None:
        """``defer``: a due measurement waits for ``engine_ready()`` (see the class)."""
        self.cancel()
        # A relay per run, owned by no widget: the run may outlive this object (a window
        # closed mid-measurement) and must still be able to emit into nothing.
        relay = self._relay = _Relay()
        relay.measuring.connect(self._on_measuring)
        self.running = True
        self._args = (setting, budget_ms)

        def run(cancel: threading.Event) -> object:
            from local_models import calibrate

            try:
                return calibrate.load_or_run(
                    budget_ms,
                    setting=setting,
                    force=force,
                    should_stop=cancel.is_set,
                    on_measure=relay.measuring.emit,
                    defer=defer and not force,
                )
            except Exception:
                if cancel.is_set():
                    return None  # stopped: nothing is delivered
                raise

        self._task.start(run)

    def engine_ready(self) -> None:
        """The provisional model is loaded (or could not be): run the measurement now."""
        if self._due is not None:
            setting, budget_ms = self._due
            self.start(setting, budget_ms, defer=False)

    def cancel(self) -> None:
        self.running = False
        self._due = None
        if self._relay is not None:
            self._relay.measuring.disconnect(self._on_measuring)
            self._relay = None
        self._task.cancel()

    def _on_measuring(self, reason: str) -> None:
        if self.running:
            self.measuring.emit(reason)

    def _on_done(self, choice: object) -> None:
        if self.running:
            self.running = False
            if getattr(choice, "provisional", False):
                self._due = self._args
            self.chosen.emit(choice)

    def _on_failed(self, message: str) -> None:
        if self.running:
            self.running = False
            self.failed.emit(message)
