"""The next-edit owner (issue 15): Tab predicts the next change, not only the next characters.

It keeps, per open document, the recent edit events (``forecode_core.next_edit.events``,
every change captured from Scintilla's ``modified``) and the session on offer
(``forecode_core.next_edit.session``: the rules of Tab, Esc, typing and accepts), and draws the
shown suggestion with ``NextEditView`` in the current editor.

- **Sources.** After an edit pauses (``PAUSE_MS``), edit-pattern propagation
  (``propagation.propose``) runs on the buffer: on the UI thread for an ordinary file (a few
  milliseconds), on a worker thread above ``BIG_CHARS`` (the UI thread never waits on a big
  file; a result for an older document version is dropped), and the pattern's sites in the
  other open files follow this file's ("Tab → name.py:12"). The model source
  (``app.ui.next_edit_model.ModelSource``, the local engine's next-edit request) is asked at the
  same pause and again right after an accept, as if the accepted text were already there
  (prefetch); its answer is an offer for the document version it was asked about.
- **Keys.** Tab, Esc and Ctrl+Right are read in the editor (an event filter), not bound as
  window shortcuts: a window-wide Tab would take Tab from every field, and Tab must still
  indent. When the inline completion shows ghost text at the caret, **the completion wins**:
  its Tab, Esc and Ctrl+Right come first (whichever filter runs first yields to it) and the
  next-edit view steps aside until the completion's ghost is gone; one Esc dismisses both.
  Tab's other rules are ``session.press_tab``'s. In subtle mode Tab still acts on the marker
  (it says "Tab"); holding Alt shows the edit first.
- **Accept** makes the edits in one undo action; the next suggestion is already waiting (the
  other propagation sites re-based), the model's prefetched one follows.
- **Status.** A label in the status bar says whether predictions are on, edit patterns only
  (``nextEdit.model: "none"``, or the engine is not ready), or off and why (turned off, a
  read-only or too big file, a file still loading: said again when its load ends).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal, SignalInstance
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QLabel

from app.services.next_edit_outcomes import OutcomeLog
from app.services.propagation_sites import OpenBuffer, OtherSites, find_other_sites
from forecode_core.next_edit.acceptance import features_of
from forecode_core.next_edit.answer import Suggestion
from forecode_core.next_edit.events import (
    Change,
    EditEvent,
    EditHistory,
    compose_events,
    steps_and_chains,
)
from forecode_core.next_edit.input import (
    EditPair,
    NextEditInput,
    RelatedExcerpt,
    input_at,
    pair_of,
)
from forecode_core.next_edit.lexmask import LexMask
from forecode_core.next_edit.propagation import Proposal, cross_file_pattern, propose
from forecode_core.next_edit.session import (
    ActionKind,
    Offer,
    OfferEdit,
    Session,
    Source,
    accepted,
    escape,
    from_proposals,
    offer,
    on_change,
    press_tab,
    word_of,
)
from forecode_core.store.settings import Settings

from ..document import Document
from ..editor import CodeEditor
from ..inline_completion import InlineCompletion
from ..lex_kinds import editor_mask, kind_table, style_to
from ..next_edit_view import NextEditView, Positions
from ..tasks import BackgroundTask
from .commands import Command
from .documents import Documents
from .workspace import Workspace

__all__ = ["BIG_CHARS", "MAX_CHARS", "PAUSE_MS", "ModelPort", "NextEditController"]

PAUSE_MS = 300  # an edit pauses this long: propagation runs and the model is asked
# The related files' excerpts in the model's input (``set_related``), in characters (about 400
# tokens; the renderer drops an excerpt that does not fit its token budget).
RELATED_CHARS = 1600
STYLE_DEFAULT = 32  # Scintilla's default style: the text's font, for widths
#: A change this big (characters) is no edit to learn from (a reload, a restored backup, a
#: whole file pasted): the buffer's history and offers start afresh.
RESET_CHARS = 20_000
#: The model's input is built from this many lines either side of the caret (its excerpt is at
#: most 42 lines above and 28 below): ``input_at`` scans the text it is given for brackets,
#: and over a whole 16 k-character file that took 20-30 ms of the UI thread (bench
#: next_edit_ui); the window starts at a top-level line the lexer styles as code.
INPUT_WINDOW_LINES = 60
# (path, text, caret, budget in characters, recent edit pairs) -> excerpts of related files
RelatedExcerpts = Callable[[str, str, int, int, Sequence[EditPair]], tuple[RelatedExcerpt, ...]]
BIG_CHARS = 50_000  # propagation of a buffer larger than this runs on a worker thread (the
# scanner's mask and the match over ~1,200 lines take a few ms on a quiet 2-core machine)
MAX_CHARS = 5_000_000  # no predictions in a buffer larger than this ("file too big")
OTHERS_MAX_CHARS = 1_000_000  # buffers up to this size are read for the other files' search
SC_MOD_INSERTTEXT, SC_MOD_DELETETEXT = 0x1, 0x2


class ModelPort(Protocol):
    """What the owner needs of the model source (``app.ui.next_edit_model.ModelSource``): a
    request or a prefetch for a buffer's document version; the answer as ``suggested(version,
    Suggestion, probability, buffer)`` or ``declined(version, reason, buffer)`` on the UI
    thread; ``outcome`` says whether the user took a suggestion it gave."""

    @property
    def suggested(self) -> SignalInstance: ...

    @property
    def declined(self) -> SignalInstance: ...

    def is_ready(self) -> bool: ...

    def request(self, inp: NextEditInput, version: int, buffer: str = "") -> None: ...

    def prefetch(self, inp: NextEditInput, version: int, buffer: str = "") -> None: ...

    def cancel(self) -> None: ...

    def outcome(self, version: int, accepted: bool, buffer: str = "") -> None: ...


@dataclass
class _Buffer:
    doc: Document
    key: str
    positions: Positions
    session: Session
    version: int = 0
    view: NextEditView | None = None
    model_version: int = -1  # the version the model was last asked about
    model_offered: int = -1  # the version the model's suggestion on offer was asked about
    prop_shown: Offer | None = None  # the propagation site shown, its outcome not yet logged
    copied: tuple[tuple[int, str, str], OpenBuffer] | None = None  # ``_copy_of``

    @property
    def editor(self) -> CodeEditor:
        return self.doc.editor


class _Snapshot(NamedTuple):
    """What propagation needs of a buffer, read on the UI thread."""

    caret: int
    version: int
    events: tuple[EditEvent, ...]
    path: str
    caret_line: int
    mask: LexMask | None  # the lexer styles' (None: the core's scanner)


@dataclass(frozen=True)
class _Proposed:
    """A worker thread's propagation result (or the UI thread's)."""

    doc: Document
    version: int
    caret_line: int
    offers: tuple[Offer, ...]


def _window_start(ed: CodeEditor, line: int) -> int:
    """``line`` or the nearest line above it (at most ``INPUT_WINDOW_LINES`` up) that starts
    at column 0 with code, by the lexer's styles: the window's bracket scan then never starts
    inside a docstring or a block comment; ``line`` when none is found."""
    table = kind_table(ed.language)
    if table is not None:
        style_to(ed, ed.lineEndPosition(line))
    for k in range(line, max(-1, line - INPUT_WINDOW_LINES), -1):
        start = ed.positionFromLine(k)
        if ed.lineIndentation(k) or ed.lineEndPosition(k) == start:
            continue
        if table is None or table[ed.styleAt(start) & 0xFF] == 0:
            return k
    return line


class NextEditController(QObject):
    """``settings``: the settings now; ``documents``: the tabs; ``completion``: the inline
    completion now (its ghost wins the keys); ``model``: the model source now (None: edit
    patterns only)."""

    message = Signal(str, int)
    state_changed = Signal(str, str)  # the status label's text and tooltip
    shown_changed = Signal()  # what is drawn changed (tests, screenshots)

    def __init__(
        self,
        settings: Callable[[], Settings],
        documents: Documents,
        workspace: Workspace | None = None,
        completion: Callable[[], InlineCompletion | None] = lambda: None,
        model: Callable[[], ModelPort | None] = lambda: None,
        parent: QObject | None = None,
        *,
        outcomes: OutcomeLog | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._documents = documents
        self._workspace = workspace
        self._completion = completion
        self._model = model
        self._outcomes = outcomes  # propagation's shown / accepted / rejected (features only)
        self.history = EditHistory()
        self._buffers: dict[Document, _Buffer] = {}
        self._current: _Buffer | None = None
        self._applying = False
        self._alt = False
        self._keys = 0
        self._watched_completions: set[int] = set()
        self._connected_model: ModelPort | None = None
        self._pause = QTimer(self)
        self._pause.setSingleShot(True)
        self._pause.setInterval(PAUSE_MS)
        self._pause.timeout.connect(self.predict_now)
        self._render_soon = QTimer(self)
        self._render_soon.setSingleShot(True)
        self._render_soon.setInterval(0)
        self._render_soon.timeout.connect(self.render)
        self._task = BackgroundTask(self)
        self._task.done.connect(self._on_proposed)
        self._task.failed.connect(lambda m: self.message.emit(f"Edit patterns failed: {m}", 8000))
        self._others = BackgroundTask(self)  # the pattern's sites in other files
        self._others.done.connect(self._on_other_sites)
        self._others.failed.connect(
            lambda m: self.message.emit(f"Edit patterns in other files failed: {m}", 8000)
        )
        self.label = QLabel()
        self.label.setContentsMargins(6, 0, 6, 0)
        self.label.hide()  # no file yet: nothing to say (an explicit hide: the bar keeps it)
        self._state = ("", "")
        self.last_declined = ""  # why the model's last answer was not shown
        self._related: RelatedExcerpts | None = None
        documents.added.connect(self.track)
        documents.closing.connect(self.forget)
        documents.current_changed.connect(self.attach)
        for doc in documents.documents():
            self.track(doc)
        self.attach(documents.current_document())

    def commands(self) -> list[Command]:
        # No shortcuts here: Tab, Esc and Ctrl+Right are read in the editor (module doc).
        return [
            Command(
                "nextEdit.acceptOrJump",
                "Next Edit: Jump to or Accept the Suggestion (Tab)",
                "",
                self.tab,
            ),
            Command("nextEdit.dismiss", "Next Edit: Dismiss the Suggestion (Esc)", "", self.escape),
            Command(
                "nextEdit.suggest", "Next Edit: Suggest the Next Edit Now", "", self.predict_now
            ),
        ]

    # ----- documents ---------------------------------------------------------------------------
    def track(self, doc: Document) -> None:
        if doc in self._buffers:
            return
        self._keys += 1
        buf = _Buffer(doc, f"buffer-{self._keys}", Positions(doc.editor), Session())
        self._buffers[doc] = buf
        doc.editor.modified.connect(partial(self._on_modified, buf))
        doc.editor.updateUi.connect(partial(self._on_update_ui, buf))
        doc.editor.installEventFilter(self)
        # a file over 1 MB loads in the background, read-only until it is in: the status
        # label said "off: read-only" until the first edit's pause
        doc.loadFinished.connect(partial(self._on_loaded, buf))

    def _on_loaded(self, buf: _Buffer) -> None:
        if buf is self._current:
            self._update_state()
            self.render()

    def forget(self, doc: Document) -> None:
        buf = self._buffers.pop(doc, None)
        if buf is None:
            return
        self.history.forget(buf.key)
        doc.editor.removeEventFilter(self)
        if buf.view is not None:
            buf.view.clear(ghost=False)
        if buf is self._current:
            self._current = None

    def attach(self, doc: Document | None) -> None:
        """The current tab changed: its session is drawn, the others' views cleared."""
        previous = self._current
        if previous is not None and previous.view is not None and previous.doc is not doc:
            previous.view.clear(ghost=False)
        self._current = self._buffers.get(doc) if doc is not None else None
        if doc is not None and self._current is None:
            self.track(doc)
            self._current = self._buffers[doc]
        self._update_state()
        self.render()
        # the completion attaches its key filter to this editor after us: ours goes first
        # again, so one Esc dismisses both (the completion still wins Tab: ``eventFilter``)
        QTimer.singleShot(0, self, self._filter_first)

    def _filter_first(self) -> None:
        cur = self._current
        if cur is not None:
            cur.editor.removeEventFilter(self)
            cur.editor.installEventFilter(self)

    def engine_changed(self) -> None:
        """The local engine started, stopped or changed state: the status label follows."""
        self._update_state()

    def apply_settings(self, _settings: Settings) -> None:
        self._update_state()
        self.render()

    def buffer_session(self, doc: Document) -> Session:
        """The session on offer in ``doc`` (tests)."""
        return self._buffers[doc].session

    def view(self, doc: Document) -> NextEditView | None:
        buf = self._buffers.get(doc)
        return buf.view if buf is not None else None

    # ----- state -------------------------------------------------------------------------------
    def why_off(self, buf: _Buffer | None = None) -> str:
        """Why predictions are off in the buffer, or ``""``."""
        buf = buf or self._current
        if not self._settings().next_edit_enabled:
            return "turned off (nextEdit.enabled)"
        if buf is None:
            return "no file"
        if buf.doc.loading:
            return "the file is still loading"
        if buf.doc.read_only_reason:
            return "the file is read-only"
        if buf.editor.textLength() > MAX_CHARS:
            return f"the file is too big (over {MAX_CHARS // 1_000_000} MB)"
        return ""

    def _model_now(self) -> ModelPort | None:
        if self._settings().next_edit_model == "none":
            return None
        model = self._model()
        if model is not self._connected_model:
            if self._connected_model is not None:
                self._connected_model.suggested.disconnect(self._on_suggested)
                self._connected_model.declined.disconnect(self._on_declined)
            self._connected_model = model
            if model is not None:
                model.suggested.connect(self._on_suggested)
                model.declined.connect(self._on_declined)
        return model

    def _update_state(self) -> None:
        off = self.why_off()
        model = self._model_now()
        if off == "no file":  # nothing to predict in: the status bar says nothing (VS Code)
            state = ("", "")
        elif off:
            state = ("⇥ Predictions off", f"Next-edit predictions are off: {off}")
        elif self._settings().next_edit_model == "none":
            state = ("⇥ Edit patterns", "Next edits from edit patterns only (nextEdit.model)")
        elif model is None or not model.is_ready():
            state = (
                "⇥ Edit patterns",
                "Next edits from edit patterns only: the local model is not ready",
            )
        else:
            state = ("⇥ Next edit", "Next-edit predictions: edit patterns and the local model")
        if state != self._state:
            self._state = state
            self.label.setText(state[0])
            self.label.setToolTip(state[1])
            self.label.setVisible(bool(state[0]))
            self.state_changed.emit(*state)

    # ----- capture -----------------------------------------------------------------------------
    def _on_modified(
        self,
        buf: _Buffer,
        flags: int,
        position: int,
        length: int,
        _lines: int,
        text: object,
        *_rest: object,
    ) -> None:
        flags = int(flags)
        if not flags & (SC_MOD_INSERTTEXT | SC_MOD_DELETETEXT):
            return
        raw = bytes(text.data()) if hasattr(text, "data") else b""
        changed = raw.decode("utf-8", "replace")
        ed = buf.editor
        offset = buf.positions.to_chars(int(position))
        inserted, removed = (changed, "") if flags & SC_MOD_INSERTTEXT else ("", changed)
        change = Change(offset, removed, inserted, time.monotonic(), ed.lineFromPosition(position))
        buf.version += 1
        if len(changed) > RESET_CHARS or buf.doc.loading:
            self.history.forget(buf.key)
            buf.session = Session(version=buf.version)
            self._render_soon.start()
            return
        self.history.record(buf.key, change)
        if self._applying:
            return  # an accept: ``_accept`` re-bases the session itself
        had_model = buf.session.model
        buf.session = on_change(buf.session, change, buf.version)
        if buf.prop_shown is not None and not buf.session.propagation:
            self._prop_outcome(buf, "rejected")  # typed over, or an edit elsewhere
        if had_model is not None and buf.session.model is None:
            typed_all = had_model.is_insertion and had_model.edits[0].new == change.inserted
            self._model_outcome(buf, accepted=typed_all)  # typed it all, or over it
        model = self._connected_model
        if model is not None and buf.model_version >= 0:
            model.cancel()
            buf.model_version = -1
        self._render_soon.start()
        if buf is self._current:
            self._others.cancel()
            self._pause.start()

    def _on_update_ui(self, buf: _Buffer, updated: int) -> None:
        if int(updated) & 0x2 and buf is self._current and not buf.session.empty:
            self._render_soon.start()  # the caret moved: the jump marker follows its line

    # ----- sources -----------------------------------------------------------------------------
    def predict_now(self) -> None:
        """Run propagation on the current buffer and ask the model (after an edit pauses)."""
        self._pause.stop()
        buf = self._current
        self._update_state()
        if buf is None or self.why_off(buf):
            return
        ed = buf.editor
        if ed.textLength() > BIG_CHARS:
            self._propose_in_background(buf)
        else:
            text = ed.text()
            self._on_proposed(self._propose(buf, text, self._snapshot(buf, text)))
            self._ask_model(buf, text)

    def _snapshot(self, buf: _Buffer, text: str) -> _Snapshot:
        """What propagation needs, read on the UI thread: the caret, the version, the events,
        the path, the caret's line and the lexer styles' mask (``lex_kinds.editor_mask``: not
        for Python, whose scanner propagation is tuned on, nor for a very big document)."""
        ed = buf.editor
        caret = buf.positions.to_chars(ed.currentPos())
        path = self._documents.workspace_path(buf.doc)
        return _Snapshot(
            caret,
            buf.version,
            self.history.events(buf.key),
            path,
            ed.lineFromPosition(ed.currentPos()),
            editor_mask(ed, path, text),
        )

    def _propose(self, buf: _Buffer, text: str, snap: _Snapshot) -> _Proposed:
        proposals: list[Proposal] = propose(
            text, snap.events, snap.caret, path=snap.path, mask=snap.mask
        )
        offers = from_proposals(text, proposals)
        return _Proposed(buf.doc, snap.version, snap.caret_line, tuple(offers))

    def _propose_in_background(self, buf: _Buffer) -> None:
        text = buf.editor.text()  # one copy; the worker never touches the widget
        snapshot = self._snapshot(buf, text)

        def run(_cancel: threading.Event) -> _Proposed:
            return self._propose(buf, text, snapshot)

        self._task.start(run)
        self._ask_model(buf, None)  # a window around the caret, not the big text

    def _on_proposed(self, result: object) -> None:
        if not isinstance(result, _Proposed):
            return
        buf = self._buffers.get(result.doc)
        if buf is None or buf.version != result.version:
            return  # stale: the buffer changed since
        buf.session = offer(
            buf.session,
            result.offers,
            Source.PROPAGATION,
            result.version,
            caret_line=result.caret_line,
            recent=steps_and_chains(self.history.events(buf.key)),
        )
        if buf is self._current:
            self.render()
        self._search_other_files(buf, result.version)

    def _search_other_files(self, buf: _Buffer, version: int) -> None:
        """The pattern's sites in the other open buffers, then the workspace's files
        (``app.services.propagation_sites``), on a worker thread; offered after this file's."""
        self._others.cancel()
        if buf.editor.textLength() > OTHERS_MAX_CHARS or not self.history.events(buf.key):
            return
        events = self.history.events(buf.key)
        path = self._documents.workspace_path(buf.doc)
        origin = str(buf.doc.path) if buf.doc.path is not None else path
        here = self._copy_of(buf, origin)
        text, mask = here.text, here.mask
        buffers = [
            self._copy_of(b, str(b.doc.path))
            for b in self._buffers.values()
            if b is not buf and b.doc.path is not None and b.editor.textLength() <= OTHERS_MAX_CHARS
        ]
        ws = self._workspace
        root = ws.root if ws is not None else None
        files = tuple(ws.files) if ws is not None and root is not None else ()
        doc = buf.doc

        def run(cancel: threading.Event) -> tuple[Document, int, str, OtherSites] | None:
            pattern = cross_file_pattern(text, events, path, mask=mask)
            if pattern is None:
                return None
            found = find_other_sites(
                pattern, origin=origin, buffers=buffers, root=root, files=files, cancel=cancel
            )
            return doc, version, pattern.label, found

        self._others.start(run)

    @staticmethod
    def _copy_of(buf: _Buffer, path: str) -> OpenBuffer:
        """``buf``'s text and lexer mask for the other files' search, read once per version:
        each pause read every open buffer's text and styles again on the UI thread (the
        other tabs had not changed; ``tests/test_ui_pause_work.py``)."""
        key = (buf.version, path, buf.editor.language.id)  # the mask follows the lexer
        if buf.copied is None or buf.copied[0] != key:
            text = buf.editor.text()
            buf.copied = (key, OpenBuffer(path, text, editor_mask(buf.editor, path, text)))
        return buf.copied[1]

    def _on_other_sites(self, result: object) -> None:
        if not isinstance(result, tuple):
            return
        doc, version, label, found = result
        buf = self._buffers.get(doc)
        if buf is None or buf.version != version or not found.sites:
            return
        here = [o for o in buf.session.propagation if not o.path]
        there = [
            Offer(
                (OfferEdit(s.start, s.end, s.old, s.new),),
                Source.PROPAGATION,
                s.line,
                label,
                s.path,
            )
            for s in found.sites
        ]
        buf.session = offer(
            buf.session,
            here + there,
            Source.PROPAGATION,
            version,
            caret_line=buf.session.caret_line,
            recent=steps_and_chains(self.history.events(buf.key)),
        )
        if buf is self._current:
            self.render()

    def set_related(self, related: RelatedExcerpts | None) -> None:
        """Where the model's input gets related files' excerpts
        (``app.ui.related_files.RelatedFiles.excerpts_for``: cached, never reads a file)."""
        self._related = related

    def _input(self, buf: _Buffer, text: str | None) -> NextEditInput:
        """The model's input at the caret. ``text``: the whole buffer, or None for a big one:
        then only ``INPUT_WINDOW_LINES`` either side of the caret are read (the input is an
        excerpt anyway), its offsets moved back to the document's."""
        ed = buf.editor
        path = self._documents.workspace_path(buf.doc)
        base, first = 0, 0
        if text is not None and ed.lineCount() > 2 * INPUT_WINDOW_LINES + 1:
            text = None  # a window is enough (``INPUT_WINDOW_LINES``)
        if text is None:
            line = ed.lineFromPosition(ed.currentPos())
            first = _window_start(ed, max(0, line - INPUT_WINDOW_LINES))
            last = line + INPUT_WINDOW_LINES
            lo = ed.positionFromLine(first)
            hi = ed.positionFromLine(last) if last < ed.lineCount() else ed.textLength()
            text = bytes(ed.textRange(lo, hi).data()).decode("utf-8", "replace")
            base = buf.positions.to_chars(lo)
        caret = buf.positions.to_chars(ed.currentPos()) - base
        events = tuple(
            pair_of(path, replace(e, offset=e.offset - base), text)
            for e in compose_events(self.history.events(buf.key))  # a chain as one pair
            if e.offset >= base and e.end - base <= len(text)
        )
        related: tuple[RelatedExcerpt, ...] = ()
        if self._related is not None:
            related = self._related(path, text, caret, RELATED_CHARS, events)
        inp = input_at(
            text, caret, path=path, language=ed.language.id, events=events, related=related
        )
        if base:  # document offsets and lines again
            inp = replace(
                inp, excerpt_offset=inp.excerpt_offset + base, first_line=inp.first_line + first
            )
        return inp

    def _ask_model(self, buf: _Buffer, text: str | None, *, prefetch: bool = False) -> None:
        model = self._model_now()
        if model is None or not model.is_ready():
            return
        inp = self._input(buf, text)
        buf.model_version = buf.version
        if prefetch:
            model.prefetch(inp, buf.version, buf.key)
        else:
            model.request(inp, buf.version, buf.key)

    def _model_buffer(self, version: int, key: str) -> _Buffer | None:
        buf = next((b for b in self._buffers.values() if b.key == key), None) if key else None
        buf = buf or self._current
        if buf is None or buf.model_version != version or buf.version != version:
            return None
        return buf

    def _on_suggested(
        self, version: int, suggestion: object, _probability: float = 0.0, buffer: str = ""
    ) -> None:
        buf = self._model_buffer(version, buffer)
        if buf is None or not isinstance(suggestion, Suggestion):
            return  # stale: the buffer changed since it was asked
        self._model_outcome(buf, accepted=False)  # a shown one replaced is not taken
        caret_line = buf.editor.lineFromPosition(buf.editor.currentPos())
        buf.session = offer(
            buf.session,
            [self._offer_of(buf, suggestion)],
            Source.MODEL,
            version,
            caret_line=caret_line,
            recent=steps_and_chains(self.history.events(buf.key)),
        )
        if buf.session.model is not None:
            buf.model_offered = version
        if buf is self._current:
            self.render()

    def _offer_of(self, buf: _Buffer, suggestion: Suggestion) -> Offer:
        """The model's suggestion as an offer, its removed text read from the editor (never
        the whole buffer)."""
        ed, pos = buf.editor, buf.positions
        edits = tuple(
            OfferEdit(
                e.start,
                e.end,
                bytes(ed.textRange(pos.to_bytes(e.start), pos.to_bytes(e.end)).data()).decode(
                    "utf-8", "replace"
                ),
                e.text,
            )
            for e in suggestion.edits
        )
        line = ed.lineFromPosition(pos.to_bytes(edits[0].start)) if edits else 0
        return Offer(edits, Source.MODEL, line)

    def _on_declined(self, version: int, reason: str, buffer: str = "") -> None:
        buf = self._model_buffer(version, buffer)
        if buf is not None:
            buf.model_version = -1
            self.last_declined = reason

    def _model_outcome(self, buf: _Buffer, *, accepted: bool) -> None:
        """Tell the model source what became of its suggestion on offer (its outcome log and
        the gate's recent rejects)."""
        model = self._connected_model
        if buf.model_offered >= 0 and model is not None:
            model.outcome(buf.model_offered, accepted, buf.key)
        buf.model_offered = -1

    # ----- keys --------------------------------------------------------------------------------
    def _completion_active(self) -> bool:
        inline = self._completion()
        if inline is None:
            return False
        if id(inline) not in self._watched_completions:
            self._watched_completions.add(id(inline))
            inline.suggestionChanged.connect(lambda _t: self._render_soon.start())
        cur = self._current
        return bool(inline.suggestion) and cur is not None and inline.editor is cur.editor

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        cur = self._current
        if cur is None or watched is not cur.editor:
            return False
        if event.type() == QEvent.Type.FocusOut:
            # Alt's release goes to whatever has the focus then (Alt+Tab to another window):
            # subtle mode would keep showing the edit with no modifier held
            self._set_alt(False)
            return False
        if not isinstance(event, QKeyEvent):
            return False
        key, mods = event.key(), event.modifiers()
        if event.type() == QEvent.Type.KeyRelease and key == Qt.Key.Key_Alt:
            self._set_alt(False)
            return False
        if event.type() != QEvent.Type.KeyPress:
            return False
        if key == Qt.Key.Key_Alt:
            self._set_alt(True)
            return False
        plain = mods in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.KeypadModifier)
        if key == Qt.Key.Key_Tab and plain:
            return self.tab()
        if key == Qt.Key.Key_Escape and plain:
            if self._completion_active():  # one Esc: the completion's ghost and ours go
                cur.session, _ = escape(cur.session)
                return False
            return self.escape()
        if key == Qt.Key.Key_Right and mods == Qt.KeyboardModifier.ControlModifier:
            return self.accept_word()
        return False

    def _set_alt(self, held: bool) -> None:
        if held != self._alt:
            self._alt = held
            if self._settings().next_edit_mode == "subtle":
                self.render()

    def tab(self) -> bool:
        """Tab: accept, jump or open (``session.press_tab``); False lets Tab do its own job."""
        buf = self._current
        if buf is None or buf.session.empty or self._completion_active() or self.why_off(buf):
            return False
        ed = buf.editor
        if ed.selections() != 1 or ed.selectionStart() != ed.selectionEnd():
            return False  # Tab indents the selected lines
        text = ed.text()
        caret = buf.positions.to_chars(ed.currentPos())
        action = press_tab(buf.session, text, caret, ed.tab_size)
        if action.kind == ActionKind.PASS:
            return False
        if action.kind == ActionKind.JUMP:
            self._move_caret(buf, action.offset)
            self.render()
            self._reveal(buf)
            return True
        if action.kind == ActionKind.OPEN:
            return self._open_other(buf, action.path)
        shown = buf.session.shown
        assert shown is not None
        self._accept(buf, shown, action.edits, action.offset)
        return True

    def _move_caret(self, buf: _Buffer, offset: int) -> None:
        ed = buf.editor
        pos = buf.positions.to_bytes(offset)
        line = ed.lineFromPosition(pos)
        ed.ensureVisibleEnforcePolicy(line)
        ed.gotoPos(pos)
        first, shown = ed.firstVisibleLine(), ed.linesOnScreen()
        if not first <= line < first + shown:
            ed.setFirstVisibleLine(max(0, line - shown // 2))

    def _reveal(self, buf: _Buffer) -> None:
        """After a jump (asked for by Tab), scroll sideways so the shown edit in the caret's
        line is on screen: its boxed old text and the new text drawn beside it (found in a user
        run: with the chat panel open the view scrolled only as far as the caret, and the box
        and the new name were past the right edge). The edit's start stays on screen first."""
        shown, ed = buf.session.shown, buf.editor
        if shown is None or shown.path:
            return
        start = buf.positions.to_bytes(shown.start)
        end = buf.positions.to_bytes(shown.end)
        if ed.lineFromPosition(start) != ed.lineFromPosition(end):
            return
        last = shown.edits[-1]
        drawn = last.new if "\n" not in last.new else ""
        margin = 2 * ed.textWidth(STYLE_DEFAULT, " ")
        right = ed.pointXFromPosition(end) + ed.textWidth(STYLE_DEFAULT, drawn) + margin
        left = ed.marginLeft() + sum(ed.marginWidthN(i) for i in range(ed.margins()))
        over = right - (ed.viewport().width() - ed.marginRight())
        room = ed.pointXFromPosition(start) - left - margin
        shift = min(over, room)
        if shift > 0:
            ed.setXOffset(ed.xOffset() + shift)

    def _accept(
        self, buf: _Buffer, shown: Offer, edits: Sequence[OfferEdit], caret_after: int
    ) -> None:
        ed = buf.editor
        spans = [
            (buf.positions.to_bytes(e.start), buf.positions.to_bytes(e.end), e.new) for e in edits
        ]
        self._applying = True
        try:
            ed.beginUndoAction()
            for start, end, new in reversed(spans):  # the latest first: earlier spans stay put
                ed.setTargetRange(start, end)
                ed.replaceTarget(-1, new)
            ed.endUndoAction()
            ed.gotoPos(buf.positions.to_bytes(caret_after))
        finally:
            self._applying = False
        self.history.close(buf.key)  # the next typing is an edit of its own
        if shown.source == Source.MODEL:
            self._model_outcome(buf, accepted=True)
        else:
            self._prop_outcome(buf, "accepted")
        caret_line = ed.lineFromPosition(ed.currentPos())
        buf.session = accepted(
            buf.session,
            shown,
            buf.version,
            caret_line=caret_line,
            recent=steps_and_chains(self.history.events(buf.key)),
        )
        self.render()
        # prefetch: the next prediction as if the accepted text were already there (it is)
        big = ed.textLength() > BIG_CHARS
        self._ask_model(buf, None if big else ed.text(), prefetch=True)

    def _open_other(self, buf: _Buffer, path: str) -> bool:
        doc = self._documents.find(Path(path)) or self._documents.open_file(path)
        if doc is None:
            return False
        self.track(doc)
        target = self._buffers[doc]
        text = target.editor.text()
        theirs = [
            replace(o, path="")
            for o in buf.session.propagation
            if o.path == path and all(text[e.start : e.end] == e.old for e in o.edits)
        ]
        buf.session = replace(
            buf.session, propagation=tuple(o for o in buf.session.propagation if o.path != path)
        )
        if buf.view is not None:
            buf.view.clear(ghost=False)
        target.session = offer(
            Session(version=target.version),
            theirs,
            Source.PROPAGATION,
            target.version,
            caret_line=target.editor.lineFromPosition(target.editor.currentPos()),
            recent=steps_and_chains(self.history.events(target.key)),
        )
        self._documents.activate(target.doc)
        if theirs:
            self._move_caret(target, theirs[0].start)
        target.editor.focus()
        self.render()
        return True

    def escape(self) -> bool:
        buf = self._current
        if buf is None or self._completion_active():
            return False
        had_model = buf.session.model is not None
        buf.session, handled = escape(buf.session)
        if handled:
            if had_model:
                self._model_outcome(buf, accepted=False)
            self._prop_outcome(buf, "rejected")
            model = self._connected_model
            if model is not None:
                model.cancel()
            self.render()
        return handled

    def accept_word(self) -> bool:
        """Ctrl+Right: the next word of a shown insertion, typed in one undo step."""
        buf = self._current
        if buf is None or self._completion_active():
            return False
        ed = buf.editor
        word = word_of(buf.session, buf.positions.to_chars(ed.currentPos()))
        if not word:
            return False
        pos = ed.currentPos()
        ed.beginUndoAction()
        ed.insertText(pos, word)
        ed.gotoPos(pos + len(word.encode()))
        ed.endUndoAction()
        return True

    # ----- drawing -----------------------------------------------------------------------------
    def render(self) -> None:
        """Draw the current buffer's shown suggestion (or nothing)."""
        self._render_soon.stop()
        buf = self._current
        if buf is None:
            return
        completion = self._completion_active()
        shown = buf.session.shown
        if shown is None or completion or self.why_off(buf):
            if buf.view is not None:
                buf.view.clear(ghost=not completion)
                self.shown_changed.emit()
            return
        if buf.view is None:
            buf.view = NextEditView(buf.editor)
        view, ed = buf.view, buf.editor
        caret = buf.positions.to_chars(ed.currentPos())
        line = ed.lineFromPosition(buf.positions.to_bytes(shown.start)) if not shown.path else -1
        here = not shown.path and (
            shown.start <= caret <= shown.end or line == ed.lineFromPosition(ed.currentPos())
        )
        subtle = self._settings().next_edit_mode == "subtle" and not self._alt
        if not here:
            view.show_jump(shown, shown.line if shown.path else line)
        elif subtle:
            view.show_marker(shown)
        else:
            view.show_edit(shown)
        seen = buf.prop_shown
        if shown.source == Source.PROPAGATION and (
            seen is None
            or (seen.line, seen.path, seen.edits[0].old)
            != (shown.line, shown.path, shown.edits[0].old)
        ):
            buf.prop_shown = shown
            self._log_propagation(buf, "shown", shown)
        self.shown_changed.emit()

    def _prop_outcome(self, buf: _Buffer, event: Literal["accepted", "rejected"]) -> None:
        shown, buf.prop_shown = buf.prop_shown, None
        if shown is not None:
            self._log_propagation(buf, event, shown)

    def _log_propagation(
        self, buf: _Buffer, event: Literal["shown", "accepted", "rejected"], shown: Offer
    ) -> None:
        """One outcome of a propagation site in the local log: features only, no text."""
        log = self._outcomes
        if log is None:
            return
        kind: Literal["insertion", "replacement", "deletion"] = (
            "insertion"
            if shown.is_insertion
            else "deletion"
            if shown.is_deletion
            else "replacement"
        )
        caret_line = buf.editor.lineFromPosition(buf.editor.currentPos())
        features = features_of(
            [(e.start, e.end, e.new) for e in shown.edits],
            kind=kind,
            ghost=False,
            distance=shown.line - caret_line if not shown.path else 0,
            metrics=None,
            recent_rejects=0,
        )
        log.record(event, features, probability=1.0, source="propagation")

    def shutdown(self) -> None:
        self._pause.stop()
        self._task.cancel()
        self._others.cancel()
        model = self._connected_model
        if model is not None:
            model.cancel()
        if self._outcomes is not None:
            self._outcomes.flush(timeout=1.0)  # the window closes: what was recorded is kept
