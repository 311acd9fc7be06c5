"""The bug finder's tier 2 in the window (issue 16, "A first bug finder").

Tier 1 is the language owner's: ``ruff server`` with the bug rules of
``forecode_core.bugs.rules`` squiggles within tens of milliseconds of a save. This owner adds
tier 2: when the current editor has been idle for ``IDLE_MS`` (no typing) and the local engine
has no request in flight (``busy``), a worker thread has the bug finder's process
(``app.services.bug_targets``: HEAD's copy by a bounded ``git show``, the parse and the diff,
none of it holding this process's GIL) find the functions the buffer changes against HEAD
(``forecode_core.bugs.targets``) and asks the local model about each: a small replacement
against HEAD's version of the function as the fill question (the line left out, the model
writes it; 2 samples), else the open question (3 samples, shuffled context); only a finding
the samples agree on (``forecode_core.bugs.runner``). A finding is drawn in the "likely bug"
style: Scintilla indicator 23 (free: 12-14 apply review, 20-22 squiggles, 26 next
edit, 27 find in files, 28-29 find bar), a dashed purple underline from the line's first
character to its end, at most one per function; the mouse resting on it shows the explanation
in a call tip. "Likely Bug: Fix in Shadow" sends the function with the finding as the
instruction through the review owner's apply path (``start_review``: the shadow's check, then
the review); "Likely Bug: Dismiss" remembers it per workspace (``<data>/bugs/<workspace
hash>.json``, keyed by the function's text and the finding, so it comes back only when the
function changes). Typing stops a review in flight (its request is cancelled); results for an
older text are dropped (a generation per document). ``bugs.tier2`` off: no review
runs and nothing is drawn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from app.services.threads import UiThread
from forecode_core.apply.windows import unique_selection
from forecode_core.bugs.dismissals import Dismissals
from forecode_core.bugs.functions import Function
from forecode_core.bugs.review import Finding, dismissal_key
from forecode_core.bugs.runner import Ask, Review
from forecode_core.bugs.runner import review as review_one
from forecode_core.store.json_store import CorruptDocument, workspace_folder, write_document
from forecode_core.store.settings import Settings, data_dir

from ...services.bug_review import ModelError, scoring_for
from ...services.bug_targets import TargetsError, TargetsProcess
from ..document import Document
from .commands import Command
from .documents import Documents

__all__ = ["BUG_INDICATOR", "BugFinder", "Shown", "engine_seams"]

BUG_INDICATOR = 23
INDIC_DASH = 9
BUG_BGR = 0xC050B0  # purple (BGR), apart from the squiggles' red/yellow/blue
IDLE_MS = 3000
MAX_FUNCTIONS = 6  # a pass reviews at most this many changed functions


@dataclass(frozen=True)
class Shown:
    """A finding drawn in a document: the function it is in and its dismissal key."""

    function: Function
    finding: Finding
    key: str
    function_text: str


@dataclass
class _State:
    doc: Document
    timer: QTimer
    generation: int = 0
    shown: list[Shown] = field(default_factory=list)


class BugFinder(QObject):
    message = Signal(str, int)
    # doc, generation, list[Review], list[each one's function text] (worker -> UI)
    reviewed = Signal(object, int, object, object)
    findings_changed = Signal(object)  # doc: its shown findings changed

    def __init__(
        self,
        documents: Documents,
        root: Callable[[], Path | None],
        settings: Callable[[], Settings],
        ask: Callable[[], Ask | None],
        busy: Callable[[], bool],
        fix: Callable[[Document, str, str], object],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._documents = documents
        self._root = root
        self._settings = settings
        self._ask = ask  # the model (EngineAsk over the local engine), None without one
        self._busy = busy  # another model request is in flight
        self._fix = fix  # the review owner's start_review(doc, block, instruction)
        self._states: dict[Document, _State] = {}
        self._running: tuple[Document, Ask, threading.Event] | None = None
        self._dismissals: dict[str, Dismissals] = {}
        self._asked: Document | None = None  # the review the palette asked for, told of
        # HEAD's copy, the parse and the diff: a process of its own (GIL-holding C calls)
        self._targets = TargetsProcess()
        self.idle_ms = IDLE_MS
        self.reviewed.connect(self._on_reviewed)
        documents.added.connect(self._on_added)
        documents.closing.connect(self._on_closing)

    def commands(self) -> list[Command]:
        return [
            Command("bugs.review", "Likely Bug: Review Changed Functions", "", self.review_now),
            Command("bugs.fix", "Likely Bug: Fix in Shadow", "", self.fix_at_caret),
            Command("bugs.dismiss", "Likely Bug: Dismiss", "", self.dismiss_at_caret),
        ]

    def enabled(self) -> bool:
        return self._settings().bugs_tier2

    # ----- documents ------------------------------------------------------------------------
    def _on_added(self, doc: Document) -> None:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.timeout.connect(lambda d=doc: self._idle(d))
        state = _State(doc, timer)
        self._states[doc] = state
        editor = doc.editor
        editor.indicSetStyle(BUG_INDICATOR, INDIC_DASH)
        editor.indicSetFore(BUG_INDICATOR, BUG_BGR)
        # over the text, as the squiggles: the caret line's background covers one drawn under
        editor.indicSetUnder(BUG_INDICATOR, False)
        editor.modified.connect(lambda *_a, s=state: self._changed(s))
        editor.dwellStart.connect(lambda x, y, s=state: self._hover(s, x, y))

    def _on_closing(self, doc: Document) -> None:
        state = self._states.pop(doc, None)
        if state is not None:
            state.timer.stop()
        self._stop(doc)

    def _changed(self, state: _State) -> None:
        state.generation += 1
        self._stop(state.doc)
        if state.shown:  # the text moved under them: they come back after the next review
            self._paint(state, [])
        if self.enabled():
            state.timer.start(self.idle_ms)

    def _stop(self, doc: Document) -> None:
        """Typing in ``doc`` stops its review: no next sample, the one in flight cancelled."""
        if self._running is not None and self._running[0] is doc:
            self._running[2].set()
            cancel = getattr(self._running[1], "stop", None)
            if callable(cancel):
                cancel()

    # ----- the review -----------------------------------------------------------------------
    def review_now(self) -> None:
        doc = self._documents.current_document()
        if doc is not None and doc in self._states:
            self._asked = doc  # its review is said in the status bar, start and end
            self._idle(doc, asked=True)

    def _tell(self, doc: Document, text: str, ms: int = 10000) -> None:
        """A status-bar line about ``doc``'s review when the palette asked for it (an idle
        review stays silent): without one the command looked dead for the whole review."""
        if self._asked is doc:
            self.message.emit(f"Likely bug: {text}", ms)

    def _idle(self, doc: Document, asked: bool = False) -> None:
        state = self._states.get(doc)
        if state is None or not self.enabled() or doc.path is None or doc.large:
            self._tell(doc, "not reviewed (bugs.tier2 is off, or the file is unsaved or large)")
            self._asked = None
            return
        if self._running is not None or self._busy():  # try again after another pause
            self._tell(doc, "waiting for the local model to finish another request…", 0)
            state.timer.start(self.idle_ms)
            return
        ask = self._ask()
        if ask is None:
            if asked:
                self.message.emit("The bug finder needs the local model (it is off).", 5000)
            return
        stop = threading.Event()
        self._running = (doc, ask, stop)
        self._tell(doc, "reviewing the functions changed since the last commit…", 0)
        text = doc.editor.text()
        path, root = doc.path, self._root() or doc.path.parent
        generation = state.generation
        UiThread(
            target=self._work,
            args=(doc, generation, ask, path, root, text, stop),
            name="forecode-bugs",
            daemon=True,
        ).start()

    def _work(
        self,
        doc: Document,
        generation: int,
        ask: Ask,
        path: Path,
        root: Path,
        text: str,
        stop: threading.Event,
    ) -> None:
        """Worker thread: the changed functions against HEAD's copy (every function when the
        file has none), found by the bug finder's process (``app.services.bug_targets``: no
        parse or diff holds this process's GIL), then the model's reviews."""
        reviews: list[Review] = []
        texts: list[str] = []  # each one's function text (the UI thread need not cut it)
        try:
            targets = self._targets.prepare(root, path, text, MAX_FUNCTIONS)
            for target in targets:
                if stop.is_set():
                    break
                found = review_one(  # the surprise score on the same engine (else the fill)
                    target.target(text, path.name),
                    _stoppable(ask, stop),
                    scoring_for(ask),
                    stop.is_set,
                )
                reviews.append(found)
                texts.append(target.text)
        except (_Stopped, ModelError, TargetsError) as exc:
            if not stop.is_set():
                self.message.emit(f"Bug finder: {exc}", 5000)
        except Exception as exc:  # the model or git failed: said, not raised
            self.message.emit(f"Bug finder: {exc}", 5000)
        self.reviewed.emit(doc, generation, reviews, texts)

    def _on_reviewed(
        self, doc: Document, generation: int, reviews: list[Review], texts: list[str]
    ) -> None:
        if self._running is not None and self._running[0] is doc:
            self._running = None
        state = self._states.get(doc)
        if state is None or generation != state.generation or not self.enabled():
            self._tell(doc, "stopped: the file changed during the review")
            self._asked = None
            return  # the text changed meanwhile: dropped
        dismissed = self._dismissed()
        shown: list[Shown] = []
        for review, function_text in zip(reviews, texts, strict=True):  # generation current
            if review.finding is None:
                continue
            key = dismissal_key(function_text, review.function.start_line, review.finding)
            if key not in dismissed:
                shown.append(Shown(review.function, review.finding, key, function_text))
        self._paint(state, shown)
        self._tell(doc, _summary(len(reviews), shown))
        self._asked = None

    # ----- drawing and hover ----------------------------------------------------------------
    def _paint(self, state: _State, shown: list[Shown]) -> None:
        editor = state.doc.editor
        editor.setIndicatorCurrent(BUG_INDICATOR)
        editor.indicatorClearRange(0, editor.textLength())
        state.shown = shown
        for item in shown:
            line = item.finding.line - 1
            start = editor.lineIndentPosition(line)
            end = editor.lineEndPosition(line)
            if end > start:
                editor.indicatorFillRange(start, end - start)
        self.findings_changed.emit(state.doc)

    def shown(self, doc: Document) -> list[Shown]:
        state = self._states.get(doc)
        return list(state.shown) if state is not None else []

    def tip_text(self, item: Shown) -> str:
        return (
            f"Likely bug ({item.finding.kind}): {item.finding.reason}\n"
            "Command palette: Likely Bug: Fix in Shadow / Likely Bug: Dismiss"
        )

    def tip_lines_at(self, doc: Document, position: int) -> list[str]:
        """The finding's tip when byte ``position`` is on its underline (the language
        owner's hover puts it above the server's text)."""
        state = self._states.get(doc)
        editor = doc.editor
        if state is None or not editor.indicatorValueAt(BUG_INDICATOR, position):
            return []
        item = self._at_line(state, editor.lineFromPosition(position) + 1)
        return [self.tip_text(item)] if item is not None else []

    def _hover(self, state: _State, x: int, y: int) -> None:
        editor = state.doc.editor
        position = editor.positionFromPointClose(x, y)
        lines = self.tip_lines_at(state.doc, position) if position >= 0 else []
        if lines:
            editor.callTipShow(position, lines[0])

    def _at_line(self, state: _State, line: int) -> Shown | None:
        for item in state.shown:
            if item.finding.line == line:
                return item
        for item in state.shown:  # the caret anywhere in the function
            if item.function.start_line <= line <= item.function.end_line:
                return item
        return None

    def _at_caret(self) -> tuple[_State, Shown] | None:
        doc = self._documents.current_document()
        state = self._states.get(doc) if doc is not None else None
        if state is None:
            return None
        item = self._at_line(state, state.doc.editor.caret_line_col()[0])
        if item is None and len(state.shown) == 1:
            item = state.shown[0]
        return (state, item) if item is not None else None

    # ----- actions --------------------------------------------------------------------------
    def fix_at_caret(self) -> None:
        """The finding's function goes to the apply path with the finding as its instruction:
        the shadow checks the model's fix, the review shows it."""
        found = self._at_caret()
        if found is None:
            self.message.emit("No likely bug here.", 3000)
            return
        state, item = found
        text = state.doc.editor.text()
        block = unique_selection(text, item.function.start_line - 1, item.function.end_line - 1)
        instruction = (
            f"Fix the likely bug on line {item.finding.line - item.function.start_line + 1} "
            f"of this function ({item.finding.kind}): {item.finding.reason}. Change nothing else."
        )
        self._fix(state.doc, block, instruction)

    def dismiss_at_caret(self) -> None:
        found = self._at_caret()
        if found is None:
            self.message.emit("No likely bug here.", 3000)
            return
        state, item = found
        self.dismiss(state.doc, item)

    def dismiss(self, doc: Document, item: Shown) -> None:
        """Forget ``item`` until its function changes; remembered per workspace."""
        state = self._states.get(doc)
        dismissed = self._dismissed()
        dismissed.add(item.key)
        self._save(dismissed)
        if state is not None:
            self._paint(state, [s for s in state.shown if s.key != item.key])

    # ----- the workspace's dismissals -------------------------------------------------------
    def _store_path(self) -> Path:
        root = self._root()
        name = workspace_folder(root)[1] if root is not None else "no-folder"
        return data_dir() / "bugs" / f"{name}.json"

    def _dismissed(self) -> Dismissals:
        path = self._store_path()
        key = str(path)
        if key not in self._dismissals:
            try:
                self._dismissals[key] = Dismissals.from_bytes(path.read_bytes())
            except FileNotFoundError:
                self._dismissals[key] = Dismissals()
            except (OSError, CorruptDocument) as exc:
                self.message.emit(f"Bug finder: dismissals not read ({exc}); starting over", 5000)
                self._dismissals[key] = Dismissals()
        return self._dismissals[key]

    def _save(self, dismissed: Dismissals) -> None:
        path, doc = self._store_path(), dismissed.to_json()

        def write() -> None:
            try:
                write_document(path, doc)
            except OSError as exc:
                self.message.emit(f"Bug finder: dismissal not saved ({exc})", 5000)

        UiThread(target=write, name="forecode-bugs-save", daemon=True).start()

    def shutdown(self) -> None:
        if self._running is not None:
            self._stop(self._running[0])
        self._targets.close()


def _summary(reviewed: int, shown: list[Shown]) -> str:
    """What an asked review found, for the status bar."""
    if shown:
        lines = ", ".join(str(item.finding.line) for item in shown)
        where = "line" if len(shown) == 1 else "lines"
        return f"{len(shown)} found, underlined on {where} {lines} (hover it for why)"
    if not reviewed:
        return "no function changed since the last commit"
    return f"nothing found in {reviewed} changed function{'s' if reviewed != 1 else ''}"


class _Stopped(Exception):
    pass


def _stoppable(ask: Ask, stop: threading.Event) -> Ask:
    def call(system: str, user: str, temperature: float) -> str:
        if stop.is_set():
            raise _Stopped
        answer = ask(system, user, temperature)
        if stop.is_set():
            raise _Stopped
        return answer

    return call


def engine_seams(
    client_of: Callable[[], object | None],
) -> tuple[Callable[[], Ask | None], Callable[[], bool]]:
    """The window's model seams over the engine owner's ``engine_client``: a fresh
    ``EngineAsk`` per review (None without a local engine), and "a request is in flight"."""
    from ...services.bug_review import EngineAsk

    def ask() -> Ask | None:
        client = client_of()
        return EngineAsk(client) if client is not None else None  # type: ignore[arg-type]

    def busy() -> bool:
        client = client_of()
        pending = getattr(client, "pending", None)
        return bool(pending()) if callable(pending) else False

    return ask, busy
