"""The model's next-edit suggestions for the editor: ``ModelSource``, between the next-edit owner
(``app.ui.owners.next_edit.NextEditController``, its ``ModelPort``) and the local engine
(``CompletionEngine.next_edit``: the worker rewrites the editable region).

- **Ask.** ``request(inp, version, buffer)`` (or ``request_at(buffer, version, BufferAt)``,
  which builds the input from the buffer's text, caret, recent ``EditEvent``s and related
  excerpts with ``input_at``) sends a
  next-edit request; the client queues it to the worker and returns at once, so the UI thread
  never waits. A newer request supersedes the one in flight (the engine's rule too).
  ``prefetch`` is the same request made right after an accept, for the text as it is after it
  (the accepted edit is in the buffer): the answer is waiting, or on its way, when the user
  looks for the next edit.
- **Answer.** On the engine's Done, ``judge`` (on a worker thread: the filters' character diff
  of a large region may take a few milliseconds) runs ``check_answer`` (the answer's parser and
  filters) and the acceptance gate (``forecode_core.next_edit.acceptance``: the changed
  tokens' margins, the edit's size, its distance from the caret, its kind, the user's recent
  rejects); ``suggested(version, Suggestion, probability, buffer)`` follows when it passes,
  else ``declined(version, reason, buffer)`` (a filter's reason, ``unlikely (p=0.12)``, or
  the engine's error). The owner's two-argument slots receive the first two.
- **Stale.** Only the newest version asked about for a buffer is answered: an answer for an
  older one (the user typed on) is dropped, never emitted. A cancelled request answers nothing.
- **Cache.** Answers are kept by ``(buffer, version)`` (the last ``CACHE_SIZE``): the same
  version asked again (Esc, then the caret comes back) is answered from it at once (on the
  next event-loop turn, never inside the call).
- **Outcomes.** Every suggestion emitted is recorded as shown, and ``outcome(version,
  accepted)`` (the owner's accept or reject) as accepted or rejected, in the outcome log
  (``app.services.next_edit_outcomes``: features only, no text) and in the recent rejects the
  gate reads.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.services.next_edit_outcomes import OutcomeLog
from forecode_core.next_edit.acceptance import (
    PRIOR,
    AcceptanceModel,
    Judged,
    RecentOutcomes,
    judge,
)
from forecode_core.next_edit.events import EditEvent
from forecode_core.next_edit.input import NextEditInput, RelatedExcerpt, input_at, pair_of
from forecode_core.protocol import Done

from .inline_completion import CompletionEngine
from .tasks import BackgroundTask

__all__ = ["CACHE_SIZE", "BufferAt", "Judged", "ModelSource", "ModelSources", "judge"]

CACHE_SIZE = 64


@dataclass(frozen=True)
class BufferAt:
    """A buffer at a caret, for ``ModelSource.request_at``: its whole text, the caret (a
    character offset), its workspace path and language, its recent edit events (newest last)
    and related excerpts."""

    text: str
    caret: int
    path: str
    language: str
    events: Sequence[EditEvent] = ()
    related: tuple[RelatedExcerpt, ...] = ()


@dataclass
class _Asked:
    buffer: str
    version: int
    inp: NextEditInput
    prefetch: bool
    started: float


class ModelSource(QObject):
    """See the module doc. ``engine``: the seam (``LocalEngine`` in the editor); ``gate``: the
    acceptance model (refit from the log by the caller, off the UI thread); ``log``: where
    outcomes go (None: nowhere)."""

    suggested = Signal(int, object, float, str)  # (version, Suggestion, probability, buffer)
    declined = Signal(int, str, str)  # (version, reason, buffer)

    def __init__(
        self,
        engine: CompletionEngine,
        *,
        gate: AcceptanceModel = PRIOR,
        log: OutcomeLog | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.engine = engine
        self.gate = gate
        self.log = log
        self.recent = RecentOutcomes()
        self._asked: dict[int, _Asked] = {}  # request id -> what was asked
        self._latest: dict[str, int] = {}  # buffer -> the newest version asked about
        self._cache: OrderedDict[tuple[str, int], Judged] = OrderedDict()
        self._shown: OrderedDict[tuple[str, int], Judged] = OrderedDict()
        self._judging: _Asked | None = None
        self._task = BackgroundTask(self)
        self._task.done.connect(self._on_judged)
        self._task.failed.connect(self._on_judge_failed)
        self.last_metrics: dict[str, Any] = {}
        self.last_latency_ms: float | None = None  # request to suggestion or decline
        engine.next_edit_done.connect(self._on_done)
        engine.next_edit_error.connect(self._on_error)

    # --- the owner's port ----------------------------------------------------------------------

    def is_ready(self) -> bool:
        return self.engine.is_ready()

    def request(self, inp: NextEditInput, version: int, buffer: str = "") -> None:
        self._ask(inp, version, buffer or inp.path, prefetch=False)

    def prefetch(self, inp: NextEditInput, version: int, buffer: str = "") -> None:
        self._ask(inp, version, buffer or inp.path, prefetch=True)

    def request_at(
        self, buffer: str, version: int, at: BufferAt, *, prefetch: bool = False
    ) -> NextEditInput:
        """Build the input for ``at`` (``input_at``; its events as pairs of whole lines) and
        ask for it; returns the input."""
        pairs = tuple(pair_of(at.path, e, at.text) for e in at.events)
        inp = input_at(
            at.text,
            at.caret,
            path=at.path,
            language=at.language,
            events=pairs,
            related=at.related,
        )
        self._ask(inp, version, buffer, prefetch=prefetch)
        return inp

    def cancel(self) -> None:
        """Stop what is in flight; nothing it asked is answered."""
        for rid in list(self._asked):
            self.engine.cancel(rid)
        self._asked.clear()
        self._task.cancel()
        self._judging = None
        self._latest.clear()

    def outcome(self, version: int, accepted: bool, buffer: str = "") -> None:
        """The user accepted (Tab) or rejected (Esc, typed over) the suggestion shown for
        ``version`` (of ``buffer``; "" the newest shown with that version)."""
        key = next(
            (k for k in reversed(self._shown) if k[1] == version and buffer in ("", k[0])), None
        )
        if key is None:
            return
        judged = self._shown.pop(key)
        self.recent.note(accepted)
        if self.log is not None and judged.features is not None:
            self.log.record(
                "accepted" if accepted else "rejected",
                judged.features,
                probability=judged.probability,
            )

    # --- asking --------------------------------------------------------------------------------

    def _ask(self, inp: NextEditInput, version: int, buffer: str, *, prefetch: bool) -> None:
        key = (buffer, version)
        self._latest[buffer] = version
        cached = self._cache.get(key)
        if cached is not None:
            asked = _Asked(buffer, version, inp, prefetch, time.perf_counter())
            QTimer.singleShot(0, lambda: self._answer(asked, cached))
            return
        if any(a.buffer == buffer and a.version == version for a in self._asked.values()):
            return  # already on its way (a prefetch, then the request at the pause)
        try:
            rid = self.engine.next_edit(inp)
        except (NotImplementedError, RuntimeError, ValueError) as exc:
            why = (
                "this engine cannot predict edits"
                if isinstance(exc, NotImplementedError)
                else str(exc)
            )
            QTimer.singleShot(0, lambda: self.declined.emit(version, why, buffer))
            return
        for old in [r for r, a in self._asked.items() if a.buffer == buffer]:
            del self._asked[old]  # superseded by the engine: no answer will come
        self._asked[rid] = _Asked(buffer, version, inp, prefetch, time.perf_counter())

    def _on_done(self, rid: int, done: object) -> None:
        asked = self._asked.pop(rid, None)
        if asked is None or not isinstance(done, Done):
            return
        if done.stop_reason == "cancelled" or self._latest.get(asked.buffer) != asked.version:
            return  # stale: the buffer moved on
        self.last_metrics = dict(done.metrics, prefetch=asked.prefetch)
        finished = done.stop_reason in ("stop", "eos")
        rejects = self.recent.rejects
        gate = self.gate
        inp, text, metrics = asked.inp, done.text, dict(done.metrics)
        self._judging = asked
        self._task.start(
            lambda _cancel: judge(
                inp,
                text,
                finished=finished,
                metrics=metrics,
                recent_rejects=rejects,
                gate=gate,
            )
        )

    def _on_error(self, rid: int, message: str) -> None:
        asked = self._asked.pop(rid, None)
        if asked is not None and self._latest.get(asked.buffer) == asked.version:
            self.last_latency_ms = (time.perf_counter() - asked.started) * 1000.0
            self.declined.emit(asked.version, f"engine: {message}", asked.buffer)

    def _on_judged(self, result: object) -> None:
        asked, self._judging = self._judging, None
        if asked is None or not isinstance(result, Judged):
            return
        key = (asked.buffer, asked.version)
        self._cache[key] = result
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        self._answer(asked, result)

    def _on_judge_failed(self, message: str) -> None:
        asked, self._judging = self._judging, None
        if asked is not None and self._latest.get(asked.buffer) == asked.version:
            self.declined.emit(asked.version, f"bad answer: {message}", asked.buffer)

    def _answer(self, asked: _Asked, judged: Judged) -> None:
        if self._latest.get(asked.buffer) != asked.version:
            return  # stale: asked about a newer version since
        self.last_latency_ms = (time.perf_counter() - asked.started) * 1000.0
        if judged.suggestion is None:
            self.declined.emit(asked.version, judged.reason, asked.buffer)
            return
        key = (asked.buffer, asked.version)
        self._shown[key] = judged
        while len(self._shown) > CACHE_SIZE:
            self._shown.popitem(last=False)
        if self.log is not None and judged.features is not None:
            self.log.record("shown", judged.features, probability=judged.probability)
        self.suggested.emit(asked.version, judged.suggestion, judged.probability, asked.buffer)


class ModelSources(QObject):
    """The model source of the engine now, for ``NextEditController(model=...)``: calling it
    gives a ``ModelSource`` over ``engine()`` (a new one when the engine changed: another
    model, a restart of the editor's engine owner), or None without an engine. The gate is
    refit from ``log`` once, on a worker thread, and given to every source from then on."""

    def __init__(
        self,
        engine: Callable[[], CompletionEngine | None],
        *,
        log: OutcomeLog | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._engine = engine
        self.log = log
        self.gate = PRIOR
        self._source: ModelSource | None = None
        self._refit = BackgroundTask(self)
        self._refit.done.connect(self._on_refit)
        if log is not None:
            self._refit.start(lambda _cancel: log.refit())

    def __call__(self) -> ModelSource | None:
        engine = self._engine()
        if engine is None:
            return None
        source = self._source
        if source is None or source.engine is not engine:
            if source is not None:
                source.cancel()
            source = self._source = ModelSource(engine, gate=self.gate, log=self.log, parent=self)
        return source

    def _on_refit(self, model: object) -> None:
        if isinstance(model, AcceptanceModel):
            self.gate = model
            if self._source is not None:
                self._source.gate = model
