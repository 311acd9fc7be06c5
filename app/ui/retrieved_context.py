"""``RetrievedContext``: code from the codebase index for the completion prompt, never waited on.

It follows the attached editor's caret. When the caret has rested ``idle_ms`` (600 ms) it builds
a query from the lines around it (``forecode_core.completion.retrieval.build_query``) and, unless
the cache
already holds the answer for that file region, asks the ``CodebaseSearch`` on a worker thread
(one search at a time: a newer one cancels the older through ``should_stop``). Answers land in
the per-region cache on the UI thread. ``snippets`` / ``current_snippets`` hand the completion
renderer what is cached for the caret's region, right away, as ``retrieved`` snippets; with
nothing cached they are empty. Completions therefore never wait on the network.

When the index cannot answer (``CodebaseUnavailable``, any other failure) the reason is kept in
``unavailable`` and the region is not asked again for ``retry_s`` seconds; nothing is shown to
the user here (the index controller reports its own state). No query text is logged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal

from forecode_core.completion.prompt import Snippet
from forecode_core.completion.retrieval import (
    QUERY_LINES_ABOVE,
    QUERY_LINES_BELOW,
    HitCache,
    Region,
    build_query,
    needs_search,
    region_of,
    retrieved_snippets,
)
from forecode_core.index.codebase import CodebaseSearch, CodebaseUnavailable, CodeHit

from .editor import CodeEditor
from .tasks import BackgroundTask

__all__ = ["RetrievedContext"]


@dataclass(frozen=True)
class _Answer:
    """A search's answer, from the worker thread to the UI thread."""

    generation: int
    hits: list[CodeHit] | None  # None: the index could not answer (``why`` says so)
    why: str = ""


class RetrievedContext(QObject):
    """The retrieved-code stage of the completion context (module docstring)."""

    searched = Signal(object)  # the Region whose hits were just cached (tests, status)

    def __init__(
        self,
        search: CodebaseSearch | None = None,
        *,
        idle_ms: int = 600,
        top_k: int = 6,
        retry_s: float = 30.0,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.search: CodebaseSearch | None = search
        self.top_k = top_k
        self.retry_s = retry_s
        self.cache = HitCache()
        self.editor: CodeEditor | None = None
        self.path = ""
        self.unavailable = ""  # why the index did not answer last time ("" when it did)
        self.searches = 0  # searches started
        self.cache_hits = 0  # pauses answered by the cache
        self._unavailable_at = 0.0
        self._generation = 0
        self._idle = QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.setInterval(idle_ms)
        self._idle.timeout.connect(self.on_pause)
        self._task = BackgroundTask(self)
        self._task.done.connect(self._on_done)
        self._task.failed.connect(self._on_failed)
        self._in_flight: tuple[int, Region, str] | None = None

    # ----- wiring ---------------------------------------------------------------------------
    def set_codebase(self, search: CodebaseSearch | None) -> None:
        """Ask ``search`` from now on (None: nothing is retrieved); the cache starts afresh."""
        self._task.cancel()
        self._in_flight = None
        self.search = search
        self.cache.clear()
        self.unavailable = ""
        self._unavailable_at = 0.0
        if search is not None and self.editor is not None:
            self._idle.start()

    def attach(self, editor: CodeEditor | None, path: str = "") -> None:
        """Follow ``editor`` (the current tab; None: none), whose workspace path is ``path``."""
        if editor is not self.editor:
            if self.editor is not None:
                self.editor.caretMoved.disconnect(self._on_caret)
            self.editor = editor
            if editor is not None:
                editor.caretMoved.connect(self._on_caret)
        self.path = path
        self._idle.stop()
        if editor is not None and self.search is not None:
            self._idle.start()

    def _on_caret(self, _line: int, _col: int) -> None:
        if self.search is not None:
            self._idle.start()  # restart: a pause is idle_ms without a move or an edit

    # ----- asking ---------------------------------------------------------------------------
    def caret_line(self) -> int:
        """The attached editor's 1-based caret line (0 without an editor)."""
        ed = self.editor
        return ed.lineFromPosition(ed.currentPos()) + 1 if ed is not None else 0

    def on_pause(self) -> None:
        """The caret rested: search for its region unless the cache already answers."""
        ed, search = self.editor, self.search
        if ed is None or search is None:
            return
        line = self.caret_line()
        first = max(0, line - 1 - QUERY_LINES_ABOVE)
        last = min(ed.lineCount() - 1, line - 1 + QUERY_LINES_BELOW)
        start, end = ed.positionFromLine(first), ed.lineEndPosition(last)
        lines = bytes(ed.textRange(start, end).data()).decode("utf-8", "replace").split("\n")
        query = build_query([x.rstrip("\r") for x in lines], line - first)
        region = region_of(self.path, line)
        if not needs_search(self.cache.query(region), query):
            self.cache_hits += 1
            return
        if self._in_flight is not None and self._in_flight[1:] == (region, query):
            return  # already asked
        if self.unavailable and time.monotonic() - self._unavailable_at < self.retry_s:
            return
        self._generation += 1
        generation = self._generation
        self._in_flight = (generation, region, query)
        top_k = self.top_k
        self.searches += 1

        def run(cancel: threading.Event) -> _Answer:
            try:
                hits = search.search(query, top_k=top_k, should_stop=cancel.is_set)
            except CodebaseUnavailable as exc:
                return _Answer(generation, None, str(exc) or "no reason given")
            return _Answer(generation, hits)

        self._task.start(run)

    def _on_done(self, result: object) -> None:
        flight = self._in_flight
        if not isinstance(result, _Answer) or flight is None or result.generation != flight[0]:
            return
        self._in_flight = None
        if not isinstance(result.hits, list):
            self._mark_unavailable(result.why if result.hits is None else str(result.hits))
            return
        self.unavailable = ""
        _, region, query = flight
        self.cache.put(region, query, (h for h in result.hits if isinstance(h, CodeHit)))
        self.searched.emit(region)

    def _on_failed(self, message: str) -> None:
        self._in_flight = None
        self._mark_unavailable(f"the search failed: {message}")

    def _mark_unavailable(self, reason: str) -> None:
        self.unavailable = reason or "no reason given"
        self._unavailable_at = time.monotonic()

    # ----- handing out ----------------------------------------------------------------------
    def snippets(
        self, path: str, cursor_line: int, others: Sequence[Snippet] = ()
    ) -> tuple[Snippet, ...]:
        """What is cached for the region of the 1-based ``cursor_line`` of ``path``, as
        ``retrieved`` snippets, minus the edited file's own lines near the cursor and code
        ``others`` (the prompt's other snippets) already hold. Never blocks."""
        if self.search is None:
            return ()
        return retrieved_snippets(
            self.cache.hits(region_of(path, cursor_line)), path, cursor_line, others
        )

    def current_snippets(self, others: Sequence[Snippet] = ()) -> tuple[Snippet, ...]:
        """``snippets`` at the attached editor's caret."""
        if self.editor is None:
            return ()
        return self.snippets(self.path, self.caret_line(), others)

    def shutdown(self) -> None:
        self._idle.stop()
        self._task.cancel()
        self._in_flight = None
