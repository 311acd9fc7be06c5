"""Language servers in the window (issue 16, part 1): diagnostics as squiggles, their message
and the server's hover text on hover, the Problems panel, the status bar's counts, F12 Go to
Definition (and Ctrl+click, ``app.ui.definition_link``) and Shift+F12 Find All References
with Alt+Left / Alt+Right back and forward.

The servers run on the LSP hub's own thread (``app.services.lsp``, reached through
``app.ui.lsp_bridge``); this owner only posts texts to it and paints what comes back, so
the UI thread never waits on a server. Each open file with a path and a language that has
servers (``forecode_core.lsp.servers``: Python's basedpyright and ruff by default, others by
the ``lsp.servers`` setting) is opened on them; edits are sent 50 ms after typing pauses
(the hub sends them incrementally), and a save sends the pending text first, then didSave,
so ruff's diagnostics follow a save within tens of milliseconds. Diagnostics for a version
older than the last one sent are dropped here as well as on the hub's thread (a result can
be in flight to the UI thread while the next change is sent).

Squiggles (VS Code's look): errors red, warnings yellow, information and hints dotted blue,
Scintilla indicators 20-22 (the editor's other indicators: 12 apply review, 27 find in files,
28-29 find bar). Hovering over one shows its messages in a call tip. Ctrl+Shift+M shows the
Problems panel (a bottom dock), F8 / Shift+F8 go to the next / previous problem in the file.
A configured server that is not installed says so once in the status bar."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QDockWidget, QStatusBar

from forecode_core.lsp.diagnostics import Diagnostic, DiagnosticStore, Severity, is_stale
from forecode_core.lsp.navigation import NavigationHistory, Place, hover_text
from forecode_core.lsp.paint_diff import PaintPlan, plan
from forecode_core.lsp.positions import Position, byte_col_from_utf16, utf16_col_from_byte
from forecode_core.lsp.restart import ServerState
from forecode_core.lsp.servers import ServerTable, servers_for
from forecode_core.store.settings import Settings
from forecode_core.text.languages import language_for_path

from ...services.lsp import ServerStatus
from ...services.lsp.results import (
    definition_params,
    hover_markdown,
    hover_params,
    locations,
    path_of,
    reference_params,
)
from ..definition_link import DefinitionLink
from ..document import Document
from ..editor import SC_MOD_INSERTTEXT, CodeEditor
from ..encoding_picker import ClickableLabel
from ..lsp_bridge import LspBridge
from ..picker import Picker, PickerItem
from ..problems_panel import ProblemRow, ProblemsDock, listed, severity_mark
from ..startup import after_first_paint, held
from .commands import Command
from .documents import Documents

__all__ = ["INDICATORS", "LanguageController"]

INDIC_SQUIGGLEPIXMAP = 13
INDIC_DOTS = 10
# severity -> (indicator, style, colour as Scintilla's BGR)
INDICATORS: dict[Severity, tuple[int, int, int]] = {
    Severity.ERROR: (20, INDIC_SQUIGGLEPIXMAP, 0x3C3CF0),
    Severity.WARNING: (21, INDIC_SQUIGGLEPIXMAP, 0x1AB4E8),
    Severity.INFORMATION: (22, INDIC_DOTS, 0xE0A040),
    Severity.HINT: (22, INDIC_DOTS, 0xE0A040),
}
HOVER = "textDocument/hover"
DEFINITION = "textDocument/definition"
REFERENCES = "textDocument/references"
CHANGE_DELAY_MS = 50  # typing pause before the text goes to the servers
DWELL_MS = 400


@dataclass
class _Open:
    """A document the servers know: its URI, the last version sent, a change pending, the
    painted byte ranges of its diagnostics (for hover), and the first line edited since
    they were painted (None: none; a report repaints only what changed, ``paint_diff``)."""

    doc: Document
    uri: str
    version: int
    timer: QTimer
    painted: list[tuple[int, int, Diagnostic]] = field(default_factory=list)
    tip_shown: bool = False
    dirty_line: int | None = None  # the first line where lines were added or removed
    edited_lines: set[int] = field(default_factory=set)  # edited within, no line added
    shifts: list[tuple[int, int, int]] = field(default_factory=list)  # (line, position, bytes)


def lsp_position(editor: CodeEditor, position: int) -> Position:
    """The LSP position of the editor's byte ``position``."""
    line = editor.lineFromPosition(position)
    start = editor.positionFromLine(line)
    data = bytes(editor.textRange(start, editor.lineEndPosition(line)).data())
    return Position(line, utf16_col_from_byte(data, position - start))


def byte_range(editor: CodeEditor, d: Diagnostic) -> tuple[int, int]:
    """A diagnostic's range as the editor's byte positions; an empty range widens to one
    character (VS Code still shows a squiggle there)."""

    def at(p: Position) -> int:
        if p.line >= editor.lineCount():
            return editor.textLength()
        start = editor.positionFromLine(p.line)
        return start + byte_col_from_utf16(editor.line_text(p.line), p.character)

    start, end = at(d.start), at(d.end)
    if end <= start:
        end = editor.positionAfter(start)
        if end <= start or end > editor.lineEndPosition(editor.lineFromPosition(start)):
            start, end = editor.positionBefore(start), start
    return start, max(end, start)


def _shifted(
    painted: list[tuple[int, int, Diagnostic]], shifts: list[tuple[int, int, int]]
) -> list[tuple[int, int, Diagnostic]]:
    """Painted ranges after edits within lines (none of them on an edited line): each range
    at or after an edit's position moves by its bytes, as Scintilla moved the squiggle."""
    for _line, position, delta in shifts:
        if delta:
            painted = [
                (s + delta, e + delta, d) if s >= position else (s, e, d) for s, e, d in painted
            ]
    return painted


class LanguageController(QObject):
    message = Signal(str, int)
    counts_changed = Signal(int, int)  # errors, warnings
    tip_shown = Signal(str)  # a hover's call tip, as shown
    references_found = Signal(object, object)  # Shift+F12's origin Place, [(uri, Position)]

    def __init__(
        self,
        documents: Documents,
        root: Callable[[], Path | None],
        status_bar: QStatusBar,
        place_dock: Callable[[QDockWidget], None],
        settings: Callable[[], Settings],
        picker: Picker | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._documents = documents
        self._root = root
        self._place_dock = place_dock
        self._settings = settings
        self._picker = picker  # Shift+F12's list of references
        self.bridge: LspBridge | None = None  # the servers' thread, started on first use
        self.store = DiagnosticStore()
        self._open: dict[str, _Open] = {}  # by URI
        self.dock: ProblemsDock | None = None
        self.history = NavigationHistory()  # F12's jumps, for Alt+Left / Alt+Right
        self.references: list[PickerItem] = []  # the last Shift+F12's rows
        self._references_provider: Callable[[str], list[PickerItem]] | None = None
        self._hover_token = 0  # the hover being asked; a newer dwell or its end cancels it
        # other owners' lines for the hover tip at a position (the bug finder's finding): the
        # server's answer replaces the call tip, so what they say must be in it
        self.tip_sources: list[Callable[[Document, int], list[str]]] = []
        self.status_label = ClickableLabel("Problems (Ctrl+Shift+M)")
        self.status_label.clicked.connect(self.show_problems)
        self.status_label.setContentsMargins(6, 0, 6, 0)
        self._show_counts()
        status_bar.addWidget(self.status_label)
        documents.added.connect(self._on_added)
        documents.closing.connect(self._on_closing)
        documents.renamed.connect(self._on_renamed)
        documents.saved.connect(self._on_saved)

    def commands(self) -> list[Command]:
        return [
            Command("view.problems", "View: Problems", "Ctrl+Shift+M", self.show_problems),
            Command("editor.nextProblem", "Go to Next Problem", "F8", lambda: self.go_problem(1)),
            Command(
                "editor.prevProblem",
                "Go to Previous Problem",
                "Shift+F8",
                lambda: self.go_problem(-1),
            ),
            Command(
                "editor.definition", "Go to Definition", "F12", lambda: self.go_to_definition()
            ),
            Command("editor.references", "Find All References", "Shift+F12", self.find_references),
            Command("nav.back", "Go Back", "Alt+Left", lambda: self.navigate(-1)),
            Command("nav.forward", "Go Forward", "Alt+Right", lambda: self.navigate(1)),
        ]

    # ----- documents ------------------------------------------------------------------------
    def _table(self) -> ServerTable:
        return self._settings().lsp_servers

    def enabled(self) -> bool:
        """``lsp.enabled``, unless the environment says ``FORECODE_LSP=0`` (the tests' set-up
        does, so windows under test start no servers unless a test asks)."""
        return self._settings().lsp_enabled and os.environ.get("FORECODE_LSP", "1") != "0"

    def _hub_bridge(self) -> LspBridge:
        if self.bridge is None:
            self.bridge = LspBridge(self._table(), self)
            self.bridge.diagnostics.connect(self._on_diagnostics)
            self.bridge.status.connect(self._on_status)
        return self.bridge

    def warm(self, suffixes: Iterable[str]) -> None:
        """Start the servers of the languages of the folder's files (``suffixes``: ".py", ...)
        before one of them opens (``LspHub.warm``); nothing without a folder, when servers are
        off, or for a language without servers."""
        root = self._root()
        if root is None or not self.enabled():
            return
        table = self._table()
        languages = {language_for_path(f"file{suffix}").id for suffix in suffixes if suffix}
        served = sorted(lang for lang in languages if servers_for(lang, table))
        if not served:
            return
        hub = self._hub_bridge().hub
        if hub.table != table:
            hub.set_table(table)
        for language in served:
            hub.warm(language, root)

    def _on_added(self, doc: Document) -> None:
        doc.loadFinished.connect(lambda d=doc: self.attach(d))
        if not doc.loading and held():  # the files open at start: servers after the first paint
            after_first_paint(functools.partial(self._attach_if_open, doc))
        elif not doc.loading:
            self.attach(doc)

    def _attach_if_open(self, doc: Document) -> None:
        if doc in self._documents.documents():  # not closed while it waited
            self.attach(doc)

    def attach(self, doc: Document) -> None:
        """Open ``doc`` on its language's servers (once; nothing for a file without a path, a
        large read-only file, or a language without servers)."""
        if doc.path is None or doc.large or doc.loading or not self.enabled():
            return
        uri = doc.path.as_uri()
        if uri in self._open or not servers_for(doc.editor.language.id, self._table()):
            return
        root = self._root() or doc.path.parent
        editor = doc.editor
        hub = self._hub_bridge().hub
        if hub.table != self._table():  # lsp.servers changed since: new opens follow it
            hub.set_table(self._table())
        version = hub.open(uri, doc.editor.language.id, editor.text(), root)
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(CHANGE_DELAY_MS)
        state = _Open(doc, uri, version, timer)
        timer.timeout.connect(lambda s=state: self._send(s))
        self._open[uri] = state
        self._style(editor)
        editor.modified.connect(lambda *_a, t=timer: t.start())
        self.track_edits(state)
        editor.setMouseDwellTime(DWELL_MS)
        editor.dwellStart.connect(lambda x, y, s=state: self._hover(s, x, y))
        editor.dwellEnd.connect(lambda _x, _y, s=state: self._unhover(s))
        if editor.findChild(DefinitionLink) is None:  # once per editor (a rename re-attaches)
            DefinitionLink(editor, functools.partial(self._ctrl_click, editor))

    def _send(self, state: _Open) -> None:
        state.timer.stop()
        if self.bridge is not None and state.uri in self._open:
            state.version = self.bridge.hub.change(state.uri, state.doc.editor.text())

    def _on_saved(self, path: str) -> None:
        state = self._open.get(Path(path).as_uri())
        if state is None:
            doc = self._documents.find(Path(path))
            if doc is not None:
                self.attach(doc)  # e.g. an untitled buffer saved as a .py file
            return
        if state.timer.isActive():
            self._send(state)
        if self.bridge is not None:
            self.bridge.hub.save(state.uri)

    def _forget(self, uri: str) -> None:
        state = self._open.pop(uri, None)
        if state is None:
            return
        state.timer.stop()
        if self.bridge is not None:
            self.bridge.hub.close(uri)
        self.store.forget(uri)
        self._paint(state)
        self._refresh_lists()

    def _on_closing(self, doc: Document) -> None:
        for uri, state in list(self._open.items()):
            if state.doc is doc:
                self._forget(uri)

    def _on_renamed(self, doc: Document) -> None:
        self._on_closing(doc)
        self.attach(doc)

    # ----- what the servers say -------------------------------------------------------------
    def _on_diagnostics(
        self, uri: str, version: int | None, server: str, found: list[Diagnostic]
    ) -> None:
        state = self._open.get(uri)
        if state is None or is_stale(version, state.version):
            return
        self.store.put(uri, server, found)
        self._paint(state)
        self._refresh_lists()

    def _on_status(self, status: ServerStatus) -> None:
        if status.message and status.state in (
            ServerState.MISSING,
            ServerState.FAILED,
            ServerState.RESTARTING,
        ):
            self.message.emit(status.message, 15000)

    # ----- squiggles and hover --------------------------------------------------------------
    @staticmethod
    def _style(editor: CodeEditor) -> None:
        for indicator, style, colour in INDICATORS.values():
            editor.indicSetStyle(indicator, style)
            editor.indicSetFore(indicator, colour)
            # over the text: the caret line's and the selection's backgrounds cover an
            # indicator drawn under it, and the squiggle vanished from the line just typed
            editor.indicSetUnder(indicator, False)

    def track_edits(self, state: _Open) -> None:
        """Record where the text changes between paints (``_edited``)."""
        state.doc.editor.modified.connect(
            lambda kind, pos, length, added, *_a, s=state: self._edited(s, kind, pos, length, added)
        )

    @staticmethod
    def _edited(state: _Open, kind: int, position: int, length: int, lines_added: int) -> None:
        """``length`` bytes inserted or deleted at byte ``position`` (``modified``'s values):
        with lines added or removed, every squiggle from its line on moved; within a line,
        that line's did, and the painted ranges after it shift by ``length``."""
        line = state.doc.editor.lineFromPosition(position)
        if lines_added:
            if state.dirty_line is None or line < state.dirty_line:
                state.dirty_line = line
            return
        state.edited_lines.add(line)
        delta = length if kind & SC_MOD_INSERTTEXT else -length
        if state.shifts and state.shifts[-1][0] == line:  # typing on one line: one shift
            _line, first, total = state.shifts[-1]
            state.shifts[-1] = (line, min(first, position), total + delta)
        else:
            state.shifts.append((line, position, delta))

    def _paint(self, state: _Open) -> None:
        """Make the squiggles those of the store's diagnostics, repainting only what changed
        since the last paint (``forecode_core.lsp.paint_diff``): a report that changes one of
        1,000 diagnostics paints a few ranges, not 1,000 (15-18 ms of the UI thread each
        report in a long session). The result equals a full repaint (tests/
        test_diagnostics_paint.py reads the indicators back)."""
        editor = state.doc.editor
        painted = [d for _s, _e, d in state.painted]
        steps = plan(
            painted,
            self.store.all_for(state.uri),
            state.dirty_line,
            edited_lines=state.edited_lines,
        )
        shifts = state.shifts
        state.dirty_line, state.edited_lines, state.shifts = None, set(), []
        if steps.full:
            self._paint_all(state, steps)
            return
        for d in steps.clear:  # gone: their ranges still name the same bytes (above the tail)
            start, end = byte_range(editor, d)
            editor.setIndicatorCurrent(INDICATORS[d.severity][0])
            editor.indicatorClearRange(start, end - start)
        if steps.clear_from_line is not None:
            tail = editor.positionFromLine(steps.clear_from_line)
            for indicator in {i for i, _s, _c in INDICATORS.values()}:
                editor.setIndicatorCurrent(indicator)
                editor.indicatorClearRange(tail, editor.textLength() - tail)
        for line in steps.clear_lines:  # edited within: cleared, what touches it refilled
            start = editor.positionFromLine(line)
            end = editor.positionFromLine(line + 1) if line + 1 < editor.lineCount() else -1
            end = editor.textLength() if end < 0 else end
            for indicator in {i for i, _s, _c in INDICATORS.values()}:
                editor.setIndicatorCurrent(indicator)
                editor.indicatorClearRange(start, end - start)
        kept = [p for i, p in enumerate(state.painted) if i not in steps.drop]
        state.painted = _shifted(kept, shifts) + self._fill(editor, steps.fill)

    def _paint_all(self, state: _Open, steps: PaintPlan) -> None:
        editor = state.doc.editor
        length = editor.textLength()
        for indicator in {i for i, _s, _c in INDICATORS.values()}:
            editor.setIndicatorCurrent(indicator)
            editor.indicatorClearRange(0, length)
        state.painted = self._fill(editor, steps.fill)

    @staticmethod
    def _fill(
        editor: CodeEditor, diagnostics: tuple[Diagnostic, ...]
    ) -> list[tuple[int, int, Diagnostic]]:
        painted: list[tuple[int, int, Diagnostic]] = []
        # Least severe first, so an error's squiggle is drawn over a warning's.
        for d in sorted(diagnostics, key=lambda d: -d.severity):
            start, end = byte_range(editor, d)
            editor.setIndicatorCurrent(INDICATORS[d.severity][0])
            editor.indicatorFillRange(start, end - start)
            painted.append((start, end, d))
        return painted

    def diagnostics_at(self, doc: Document, position: int) -> list[Diagnostic]:
        """The diagnostics whose squiggle covers byte ``position`` of ``doc``, worst first."""
        state = self._open.get(doc.path.as_uri()) if doc.path is not None else None
        if state is None:
            return []
        hits = [d for start, end, d in state.painted if start <= position < max(end, start + 1)]
        return sorted(hits, key=lambda d: d.severity)

    def _hover(self, state: _Open, x: int, y: int) -> None:
        """The mouse rests over the text: the squiggles' messages there at once, then the
        server's hover text under them when it answers (dropped if the mouse moved on or
        the text changed meanwhile)."""
        editor = state.doc.editor
        position = editor.positionFromPointClose(x, y)
        if position < 0:
            return
        hits = self.diagnostics_at(state.doc, position)
        lines = [f"{severity_mark(d.severity)} {d.label()}" for d in hits]
        for source in self.tip_sources:
            lines.extend(source(state.doc, position))
        if lines:
            self._tip(state, position, "\n".join(lines))
        self.hover_at(state, position, lines)

    def hover_at(self, state: _Open, position: int, lines: list[str]) -> None:
        """Ask the servers what is at byte ``position``; the call tip shows ``lines`` and
        the answer under them."""
        if self.bridge is None:
            return
        editor = state.doc.editor
        self._flush(state)
        self._hover_token += 1
        token, version = self._hover_token, state.version

        def answered(result: object, error: BaseException | None) -> None:
            if token != self._hover_token or version != state.version or error is not None:
                return
            text = hover_text(hover_markdown(result))
            if text and state.uri in self._open:
                self._tip(state, position, "\n".join([*lines, text]))

        params = hover_params(state.uri, lsp_position(editor, position))
        self.bridge.ask(state.uri, "hover_provider", HOVER, params, answered)

    def _tip(self, state: _Open, position: int, text: str) -> None:
        state.doc.editor.callTipShow(position, text)
        state.tip_shown = True
        self.tip_shown.emit(text)

    def _unhover(self, state: _Open) -> None:
        self._hover_token += 1
        if state.tip_shown:
            state.doc.editor.callTipCancel()
            state.tip_shown = False

    def _flush(self, state: _Open) -> None:
        """Send a pending change now, so a request sees the text on screen."""
        if state.timer.isActive():
            self._send(state)

    def sent(self, doc: Document) -> tuple[str, int] | None:
        """``doc``'s URI and the version the servers have, its pending change sent first
        (for requests made by the owners beside this one: rename, the prompts' context);
        None when the servers do not know it."""
        state = self._open.get(doc.path.as_uri()) if doc.path is not None else None
        if state is None:
            return None
        self._flush(state)
        return state.uri, state.version

    def version_of(self, uri: str) -> int | None:
        """The version last sent of an open document (None when not open on the servers)."""
        state = self._open.get(uri)
        return None if state is None else state.version

    # ----- go to definition and back --------------------------------------------------------
    def _current(self) -> _Open | None:
        doc = self._documents.current_document()
        if doc is None or doc.path is None:
            return None
        return self._open.get(doc.path.as_uri())

    def _ctrl_click(self, editor: CodeEditor, position: int) -> None:
        """Ctrl+click (``app.ui.definition_link``): F12 at ``position`` (the caret is put
        there first), in the editor clicked."""
        state = next((s for s in self._open.values() if s.doc.editor is editor), None)
        self.go_to_definition(state)

    def go_to_definition(self, state: _Open | None = None) -> None:
        """F12: the definition of the symbol at the caret (the first, when several), in its
        file; Alt+Left comes back. The answer is dropped if the text changes or the caret
        moves meanwhile. ``state``: the document (else the current one)."""
        state = state or self._current()
        if state is None or self.bridge is None:
            self.message.emit("Go to Definition: no language server for this file", 4000)
            return
        self._flush(state)
        editor = state.doc.editor
        caret = editor.currentPos()
        origin = Place(str(state.doc.path), caret)
        version = state.version

        def answered(result: object, error: BaseException | None) -> None:
            if version != state.version or editor.currentPos() != caret:
                return  # the user moved on
            found = locations(result) if error is None else []
            if error is not None:
                self.message.emit(f"Go to Definition: {error or type(error).__name__}", 5000)
            elif not found:
                self.message.emit("No definition found", 4000)
            else:
                uri, position = found[0]
                path = path_of(uri)
                if path is not None and self._go(path, position):
                    self.history = self.history.jumped(origin)

        params = definition_params(state.uri, lsp_position(editor, caret))
        self.bridge.ask(state.uri, "definition_provider", DEFINITION, params, answered)

    def find_references(self) -> None:
        """Shift+F12: every reference to the symbol at the caret (its declaration included)
        in a picker, nearest file first; picking one goes there (Alt+Left comes back)."""
        state = self._current()
        if state is None or self.bridge is None:
            self.message.emit("Find All References: no language server for this file", 4000)
            return
        self._flush(state)
        editor = state.doc.editor
        caret = editor.currentPos()
        origin = Place(str(state.doc.path), caret)
        version = state.version

        def answered(result: object, error: BaseException | None) -> None:
            if version != state.version or editor.currentPos() != caret:
                return
            if error is not None:
                self.message.emit(f"Find All References: {error or type(error).__name__}", 5000)
                return
            self.show_references(origin, locations(result))

        params = reference_params(state.uri, lsp_position(editor, caret))
        self.bridge.ask(state.uri, "references_provider", REFERENCES, params, answered)

    def show_references(self, origin: Place, found: list[tuple[str, Position]]) -> None:
        if not found:
            self.message.emit("No references found", 4000)
            return
        root = self._root()
        here = Path(origin.path)
        rows: list[PickerItem] = []
        for uri, position in sorted(found, key=lambda f: (path_of(f[0]) != here, f)):
            path = path_of(uri)
            if path is None:
                continue
            shown = str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)
            label = f"{shown}:{position.line + 1}:{position.character + 1}"
            rows.append(PickerItem(label, data=(path, position)))
        self.references = rows
        # the References panel (lsp_actions) too; it hands each row's line text back by
        # ``reference_texts`` (open buffers' at once, other files' read off the UI thread)
        self.references_found.emit(origin, found)
        if self._picker is None:
            return

        def provider(query: str) -> list[PickerItem]:
            # the file's name narrows the list (the line's text would match every importer)
            return [r for r in self.references if query.lower() in r.label.lower()]

        self._references_provider = provider

        def accept(item: PickerItem | None, _query: str) -> None:
            if item is not None and isinstance(item.data, tuple):
                path, position = item.data
                if self._go(path, position):
                    self.history = self.history.jumped(origin)

        self._picker.open(f"{len(rows)} references", provider, on_accept=accept)

    def reference_texts(self, uri: str, texts: Mapping[int, str]) -> None:
        """The lines (line -> text) of ``uri``'s references in the last Shift+F12 answer:
        each picker row shows its line's text as its detail (VS Code's list shows it)."""
        path = path_of(uri)
        changed = False
        rows: list[PickerItem] = []
        for row in self.references:
            where = row.data
            if isinstance(where, tuple) and where[0] == path and where[1].line in texts:
                text = " ".join(texts[where[1].line].split())
                text = text if len(text) <= 120 else text[:119] + "…"
                changed |= text != row.detail
                row = replace(row, detail=text)
            rows.append(row)
        if changed:
            self.references = rows
            if self._picker is not None and self._references_provider is not None:
                self._picker.refresh(self._references_provider)

    def _go(self, path: Path, where: Position | int) -> bool:
        doc = self._documents.find(path) or self._documents.open_file(path)
        if doc is None:
            return False
        self._documents.activate(doc)
        editor = doc.editor
        if isinstance(where, Position):
            line = max(0, min(where.line, editor.lineCount() - 1))
            where = editor.positionFromLine(line) + byte_col_from_utf16(
                editor.line_text(line), where.character
            )
        editor.gotoPos(min(where, editor.textLength()))
        editor.verticalCentreCaret()
        editor.focus()
        return True

    def navigate(self, step: int) -> None:
        """Alt+Left / Alt+Right: back to where a jump started, and forward again."""
        doc = self._documents.current_document()
        if doc is None or doc.path is None:
            return
        here = Place(str(doc.path), doc.editor.currentPos())
        if step < 0:
            self.history, target = self.history.go_back(here)
        else:
            self.history, target = self.history.go_forward(here)
        if target is not None:
            self._go(Path(target.path), target.position)

    # ----- the Problems panel, counts and F8 ------------------------------------------------
    def _refresh_lists(self) -> None:
        self._show_counts()
        if self.dock is not None:
            self.dock.set_rows(self.rows())

    def rows(self) -> list[ProblemRow]:
        rows: list[ProblemRow] = []
        for uri in self.store.docs():
            state = self._open.get(uri)
            if state is None:
                continue
            shown = self._documents.workspace_path(state.doc)
            rows.extend(ProblemRow(uri, shown, d) for d in self.store.all_for(uri))
        return rows

    def _show_counts(self) -> None:
        counts = self.store.counts()
        self.status_label.setText(f"⊗ {counts.errors}  ⚠ {counts.warnings}")
        self.counts_changed.emit(counts.errors, counts.warnings)

    def show_problems(self) -> None:
        """Ctrl+Shift+M: the Problems panel at the bottom (made on first use)."""
        if self.dock is None:
            self.dock = ProblemsDock()
            self.dock.jump_requested.connect(self.jump_to)
            self._place_dock(self.dock)
        self.dock.set_rows(self.rows())
        self.dock.show()
        self.dock.raise_()
        self.dock.tree.setFocus()

    def jump_to(self, uri: str, line: int, character: int) -> None:
        state = self._open.get(uri)
        if state is not None and state.doc.path is not None:
            self._go(state.doc.path, Position(line, character))

    def go_problem(self, step: int) -> None:
        """F8 / Shift+F8: the caret to the next / previous problem in the current file
        (wrapping; hints are not problems: ``problems_panel.listed``), its message in a call
        tip."""
        doc = self._documents.current_document()
        state = self._open.get(doc.path.as_uri()) if doc is not None and doc.path else None
        starts = sorted({s for s, _e, d in (state.painted if state else ()) if listed(d.severity)})
        if state is None or not starts:
            self.message.emit("No problems in this file", 3000)
            return
        editor = state.doc.editor
        caret = editor.currentPos()
        if step > 0:
            target = next((s for s in starts if s > caret), starts[0])
        else:
            target = next((s for s in reversed(starts) if s < caret), starts[-1])
        editor.gotoPos(target)
        hits = self.diagnostics_at(state.doc, target)
        if hits:
            editor.callTipShow(
                target, "\n".join(f"{severity_mark(d.severity)} {d.label()}" for d in hits)
            )

    # ----- closing --------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop the servers (bounded: the window's close never hangs on one)."""
        for state in self._open.values():
            state.timer.stop()
        if self.bridge is not None:
            self.bridge.shutdown()
