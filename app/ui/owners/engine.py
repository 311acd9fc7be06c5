"""The engine controller: the local completion engine's life cycle (the model chosen by
measurement off the UI thread, or ``completion.modelPath``), its status-bar text, the ghost
text (``InlineCompletion``) on the current editor, and the completion context: the open
buffers by ``forecode_core.completion.open_buffers``' policy, then the index's cached hits
(``RetrievedContext``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from forecode_core.completion.open_buffers import open_buffer_snippets
from forecode_core.completion.prompt import Snippet
from forecode_core.engine_state import EngineState
from forecode_core.index.codebase import CodebaseSearch
from forecode_core.store.settings import Settings
from local_models.calibrate import Choice as ModelChoice

from ..document import Document
from ..editor import CodeEditor
from ..inline_completion import CompletionEngine, InlineCompletion
from ..retrieved_context import RetrievedContext
from ..tasks import BackgroundTask
from .commands import Command
from .documents import Documents

__all__ = ["EditorBuffer", "EngineController", "RelatedSnippets"]

# (path, its editor, paths to leave out) -> the related files' snippets for the caret
RelatedSnippets = Callable[[str, CodeEditor, Collection[str]], Sequence[Snippet]]


class EditorBuffer:
    """An open tab as ``forecode_core.completion.open_buffers.OpenBuffer``: its lines are read
    from the editor only when the policy asks for them."""

    def __init__(self, doc: Document, path_of: Callable[[Document], str]) -> None:
        self._doc = doc
        self._editor = doc.editor
        self._path_of = path_of

    @property
    def path(self) -> str:
        return self._path_of(self._doc)

    @property
    def dirty(self) -> bool:
        return self._doc.is_dirty()

    @property
    def read_only(self) -> bool:
        return bool(self._doc.read_only_reason)

    @property
    def caret_line(self) -> int:
        return self._editor.lineFromPosition(self._editor.currentPos())

    @property
    def line_count(self) -> int:
        return self._editor.lineCount()

    def lines(self, first: int, last: int) -> str:
        ed = self._editor
        data = ed.textRange(ed.positionFromLine(first), ed.lineEndPosition(last)).data()
        return bytes(data).decode("utf-8", "replace")


class EngineController(QObject):
    """``settings``: the settings now; ``documents``: the tabs the context reads."""

    # A measurement that waited for the provisional model starts this long after it answers:
    # the user's first completions (typed right after launch) get the cores, not the probe.
    # The frozen app's bench: with the probe starting at READY, a ghost came 4.1 s after READY.
    MEASURE_AFTER_READY_MS = 8000

    status = Signal(str, str)  # the model slot's text and tooltip
    engine_changed = Signal()  # started, stopped or changed state (the chat's local fallback)
    message = Signal(str, int)

    def __init__(
        self, settings: Callable[[], Settings], documents: Documents, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        from ..local_engine import ModelTierTask

        self._settings = settings
        self._documents = documents
        self.engine: CompletionEngine | None = None
        self.inline: InlineCompletion | None = None
        self.model_choice: ModelChoice | None = None  # the last measured pick
        # Code the index finds near the caret, for the completion context (never waited on).
        self.retrieved = RetrievedContext(parent=self)
        # The files related to a file, most likely first (``set_related``): their open tabs
        # come first in the completion context, then excerpts of them for the caret.
        self._related: Callable[[str], Sequence[str]] | None = None
        self._related_snippets: RelatedSnippets | None = None
        self._state: tuple[str, str] = (EngineState.STOPPED, "")
        self._model_task = BackgroundTask(self)
        self._model_task.done.connect(self._start_local_engine)
        self._model_task.failed.connect(
            lambda m: self.status.emit("✕ No model", f"The model could not be prepared: {m}")
        )
        # The completion model, chosen by measurement (local_models.calibrate) off the UI thread.
        self._tier_task = ModelTierTask(self)
        self._tier_task.measuring.connect(self._on_measuring)
        self._tier_task.chosen.connect(self._on_model_chosen)
        self._tier_task.failed.connect(
            lambda m: self.status.emit("✕ No model", f"No completion model: {m}")
        )

    def commands(self) -> list[Command]:
        return [
            Command(
                "completion.recalibrate", "Completions: Recalibrate Models", "", self.recalibrate
            )
        ]

    # ----- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Start completions off the UI thread: ``completion.modelPath`` when set (any GGUF),
        else the model ``local_models.calibrate`` picks (the best measured quality that fits
        ``completion.latencyBudgetMs`` here, or ``completion.model``); measuring happens on
        first run and after a model change, with "◌ Measuring models…" in the status bar."""
        settings = self._settings()
        configured = settings.completion_model_path
        if configured:
            self._tier_task.cancel()

            def prepare(_cancel: threading.Event) -> str:
                return str(Path(configured).expanduser())

            self.status.emit("◌ Preparing model…", f"completion.modelPath: {configured}")
            self._model_task.start(prepare)
            return
        self.status.emit(
            "◌ Choosing model…", "Preparing the installed models and reading their measured speeds"
        )
        self._tier_task.start(settings.completion_model, settings.completion_latency_budget_ms)

    def after_ready(self, fn: Callable[[], object], timeout_ms: int = 20_000) -> None:
        """``fn()`` once the completion engine first answers (READY) or fails, or after
        ``timeout_ms``, whichever comes first; at once when completions are off or an engine
        is ready. The window starts the loopback chat service this way: on a 2-core machine
        its model load (the 1.5B, at normal priority) starved the worker's (nice +10) -- the
        installed .deb's first ghost came 47 s after launch with Gemma's load taking 35 s
        beside it at load 14 -- and the first completion is what a user meets first."""
        engine = self.engine
        if not self._settings().completion_enabled or (engine is not None and engine.is_ready()):
            fn()
            return
        done: list[bool] = []

        def run() -> None:
            if not done:
                done.append(True)
                self.engine_changed.disconnect(check)
                fn()

        def check() -> None:
            state, _ = self._state
            if self.engine is None or state in (EngineState.READY, EngineState.FAILED):
                run()  # ready, failed, or completions stopped

        self.engine_changed.connect(check)
        QTimer.singleShot(timeout_ms, self, run)

    def recalibrate(self) -> None:
        """Measure every installed model again, off the UI thread, and switch completions to
        the new pick (the current model answers meanwhile)."""
        settings = self._settings()
        if not settings.completion_enabled:
            self.message.emit("Completions are off (completion.enabled)", 5000)
            return
        self._tier_task.start(
            settings.completion_model, settings.completion_latency_budget_ms, force=True
        )

    def settings_changed(self, old: Settings, new: Settings) -> None:
        """Restart for a new model or switch; measure again for a new tier or budget."""
        engine_changed = (old.completion_enabled, old.completion_model_path) != (
            new.completion_enabled,
            new.completion_model_path,
        )
        tier_changed = (old.completion_model, old.completion_latency_budget_ms) != (
            new.completion_model,
            new.completion_latency_budget_ms,
        )
        if engine_changed:
            self.stop()
            if new.completion_enabled:
                self.start()
        elif tier_changed and new.completion_enabled and not new.completion_model_path:
            self._tier_task.start(new.completion_model, new.completion_latency_budget_ms)

    def apply_settings(self, settings: Settings) -> None:
        if self.inline is not None:
            self.inline.set_debounce(settings.completion_debounce_ms)
            self.inline.max_tokens = settings.completion_max_tokens
            self.inline.enabled = settings.completion_enabled

    def _on_model_chosen(self, choice: ModelChoice) -> None:
        from ..local_engine import LocalEngine

        self.model_choice = choice
        settings = self._settings()
        if not settings.completion_enabled:
            return
        if settings.completion_model_path:  # a recalibration while a path overrides it
            self.message.emit(
                f"Measured: {choice.title} would answer completions; "
                "completion.modelPath overrides it",
                10000,
            )
            self._show_state()
            return
        engine = self.engine
        if isinstance(engine, LocalEngine) and engine.model_path == Path(choice.path):
            self._show_state()  # the same model: only the figures changed
            return
        self._start_local_engine(choice.path, title=choice.title)

    def _on_measuring(self, why: str) -> None:
        detail = (
            f"Measuring each installed model's speed on this machine ({why}): each is loaded "
            "and timed for a second or two, in a separate low-priority process."
        )
        engine = self.engine
        if engine is not None and engine.is_ready():  # the provisional model answers meanwhile
            self.status.emit(
                f"● {getattr(engine, 'title', 'model')} · measuring…",
                f"{detail} Completions come from this model meanwhile; the measured pick "
                "answers after.",
            )
            return
        self.status.emit("◌ Measuring models…", f"{detail} Completions start when it is done.")

    def _start_local_engine(self, model_path: object, title: str = "") -> None:
        from ..local_engine import LocalEngine

        engine = LocalEngine(str(model_path), self, title=title)
        self.use_engine(engine)
        engine.start()

    def use_engine(self, engine: CompletionEngine) -> None:
        if self.engine is not None:
            self.engine.close()
        self.engine = engine
        engine.state.connect(self._on_state)
        settings = self._settings()
        self.inline = InlineCompletion(
            engine,
            debounce_ms=settings.completion_debounce_ms,
            max_tokens=settings.completion_max_tokens,
            context=self.completion_context,
            parent=self,
        )
        doc = self._documents.current_document()
        self.inline.attach(doc.editor if doc is not None else None)

    def stop(self) -> None:
        self._tier_task.cancel()
        if self.inline is not None:
            self.inline.attach(None)
            self.inline = None
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self.status.emit("○ No model", "Inline completions are off")
        self.engine_changed.emit()

    def shutdown(self) -> None:
        """The window closes: the tasks stop, the ghost text's searches, the engine."""
        self._model_task.cancel()
        self._tier_task.cancel()
        self.retrieved.shutdown()

    def close_engine(self) -> None:
        if self.engine is not None:
            self.engine.close()

    def engine_client(self) -> object | None:
        """The local engine's worker client (the chat router's fallback); None without a
        local engine. Called on worker threads."""
        from ..local_engine import LocalEngine

        engine = self.engine
        return engine.client if isinstance(engine, LocalEngine) else None

    # ----- status ------------------------------------------------------------------------------
    def _on_state(self, state: str, detail: str) -> None:
        self._state = (state, detail)
        self._show_state()
        self.engine_changed.emit()
        if state == EngineState.FAILED:
            self._tier_task.engine_ready()  # a due measurement may find a model that loads
        elif state == EngineState.READY:  # after the first completions (see the constant)
            QTimer.singleShot(self.MEASURE_AFTER_READY_MS, self, self._tier_task.engine_ready)
        if state == EngineState.CRASHED:
            self.message.emit(f"The completion engine stopped and is restarting: {detail}", 8000)
        elif state == EngineState.FAILED:
            self.message.emit(f"Completions are off: {detail}", 15000)

    def _show_state(self) -> None:
        """The status bar's model slot: the model that answers, by its title, and why it was
        chosen with the measured rates in the tooltip."""
        from ..local_engine import LocalEngine

        state, detail = self._state
        engine = self.engine
        local = engine if isinstance(engine, LocalEngine) else None
        name = local.title if local is not None else "model"
        words: dict[str, str] = {
            EngineState.STARTING: f"◌ Loading {name}…",
            EngineState.READY: f"● {name}",
            EngineState.CRASHED: "⟳ Engine restarting",
            EngineState.FAILED: "✕ Model error",
            EngineState.STOPPED: "○ No model",
        }
        text = words.get(state, state)  # StrEnum members hash and compare as their strings
        tip = detail or state
        if state == EngineState.READY:
            tip = f"Completions: {name}"
        choice = self.model_choice
        if self._settings().completion_model_path:
            tip += "\nThe model of completion.modelPath (it overrides the measured choice)"
        elif choice is not None and local is not None and Path(choice.path) == local.model_path:
            tip += "\n" + choice.describe()
        self.status.emit(text, tip)

    # ----- the current editor and the context --------------------------------------------------
    def attach(self, doc: Document | None) -> None:
        """The ghost text and the retrieval follow the current tab (and its path)."""
        if self.inline is not None:
            self.inline.attach(doc.editor if doc is not None else None)
        self.retrieved.attach(
            doc.editor if doc is not None else None,
            self._documents.workspace_path(doc) if doc is not None else "",
        )

    def renamed(self, doc: Document) -> None:
        """A tab's path changed (Save As, a rename in the explorer)."""
        if doc is self._documents.current_document():
            self.retrieved.attach(doc.editor, self._documents.workspace_path(doc))

    def set_codebase(self, search: CodebaseSearch | None) -> None:
        self.retrieved.set_codebase(search)

    def set_related(
        self,
        related: Callable[[str], Sequence[str]] | None,
        snippets: RelatedSnippets | None = None,
    ) -> None:
        """The related files of a workspace path, and their excerpts for the caret of an
        editor (``app.ui.related_files.RelatedFiles``: ``related_paths``,
        ``completion_snippets``; cached, they never read a file)."""
        self._related = related
        self._related_snippets = snippets

    def completion_context(self) -> tuple[str, str, tuple[Snippet, ...]]:
        """The current file's path and language, and the snippets for its prompt."""
        documents = self._documents
        doc = documents.current_document()
        if doc is None:
            return "untitled", "plaintext", ()
        docs = documents.documents()
        buffers = (EditorBuffer(d, documents.workspace_path) for d in docs)
        path = documents.workspace_path(doc)
        related = self._related(path) if self._related is not None else ()
        snippets = open_buffer_snippets(
            buffers, docs.index(doc) if doc in docs else -1, related=related
        )
        line = doc.editor.lineFromPosition(doc.editor.currentPos()) + 1
        if self._related_snippets is not None:
            snippets += self._related_snippets(path, doc.editor, {s.path for s in snippets})
        snippets += self.retrieved.snippets(path, line, snippets)  # only what is cached
        return path, doc.editor.language.id, tuple(snippets)
