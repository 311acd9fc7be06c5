"""Language-server actions beside the language owner (``app.ui.owners.language``): the
References panel and Rename Symbol (F2), reviewed as a multi-file edit.

- Shift+F12 stays the language owner's (its quick picker); every answer also fills the
  References panel (``app.ui.references_panel``, a bottom dock like Problems), which keeps
  the list after the picker closes, each reference with its line's text: from the open
  buffer at once, else the file, read on a worker thread (``forecode-lsp-refs``, one per
  answer, files in the panel's order) and put in as each file is read; a newer answer drops
  an older one's texts; files over 1 MB are shown without text. The UI thread opens no file.
- F2 (VS Code's Rename Symbol): ``textDocument/prepareRename`` first (the server says what
  can be renamed and the name to prefill; a server without it, or an error, falls back to
  the identifier at the caret), then an inline box at the caret, prefilled and selected,
  that accepts only an identifier (Enter renames, Esc or leaving it cancels). The answer of
  ``textDocument/rename`` (a ``WorkspaceEdit``) becomes a set of file changes
  (``forecode_core.lsp.workspace_edit``: UTF-16 positions applied to the documents' texts,
  ``documentChanges`` and ``changes`` both, simple file creations and deletions taken, file
  renames refused with a message) and opens in the multi-file edit review
  (``app.ui.owners.edit_set``): per-hunk and per-file accept, one undo for the set. Nothing
  changes until the user accepts. Every answer is dropped if the text changed meanwhile.
- Context for the models (``LspActions.prompt_context``; the chooser is
  ``forecode_core.lsp.context``): the problems near the caret (from the diagnostics store)
  and the definitions of the names near it go into the completion prompt (as snippets),
  the next-edit input (as related excerpts, before the related files') and the chat (as
  files), within each one's budget. Definitions come from a cache: when the caret rests on
  a name (checked every ``PROBE_MS``), ``textDocument/definition`` is asked once for it and
  the answer's first lines are kept (a file that is not open is read on a thread); a prompt
  takes only what has arrived, never waiting.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, overload

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QDockWidget, QLineEdit, QWidget

from app.services.threads import UiThread
from forecode_core.chat.context import ContextSource, SourceKind
from forecode_core.completion.prompt import Snippet
from forecode_core.lsp.context import Definition, PromptContext, choose_context, definition_excerpt
from forecode_core.lsp.navigation import Place
from forecode_core.lsp.positions import Position, byte_col_from_utf16
from forecode_core.lsp.workspace_edit import (
    DocumentEdit,
    FileOperation,
    OperationKind,
    RenameRefused,
    TextEdit,
    to_file_changes,
)
from forecode_core.next_edit.input import EditPair, RelatedExcerpt

from ...services.lsp.results import locations, path_of
from ..document import Document
from ..editor import CodeEditor
from ..references_panel import ReferenceRow, ReferencesDock
from .commands import Command
from .documents import Documents
from .edit_set import EditSetOwner
from .engine import RelatedSnippets
from .language import DEFINITION, LanguageController, lsp_position
from .next_edit import RelatedExcerpts

__all__ = ["LspActions", "RenameBox", "valid_name", "workspace_changes"]

PREPARE_RENAME = "textDocument/prepareRename"
RENAME = "textDocument/rename"
MAX_READ = 1_000_000
PROBE_MS = 300  # the caret's name is checked this often; asked about once it rests
CONTEXT_LINES = 45  # lines either side of the caret the context chooser reads
PROBLEM_WINDOW = 40  # ``near_problems``' window: only these diagnostics reach the chooser
COMPLETION_CONTEXT_CHARS = 800
CHAT_CONTEXT_CHARS = 3000
_COMMENT = {"python": "#", "shell": "#", "ruby": "#", "yaml": "#", "toml": "#", "perl": "#"}
_WORD = re.compile(r"^[^\W\d]\w*$")


def valid_name(name: str, language: str) -> str:
    """ "" when ``name`` can be the new name, else why not (Python: an identifier that is
    not a keyword; other languages: letters, digits and underscores, not starting with a
    digit)."""
    if not name:
        return "Enter a name"
    if language == "python":
        if not name.isidentifier():
            return f"'{name}' is not a valid Python identifier"
        if keyword.iskeyword(name):
            return f"'{name}' is a Python keyword"
        return ""
    return "" if _WORD.match(name) else f"'{name}' is not a valid identifier"


def _text_edits(edits: Any) -> tuple[TextEdit, ...]:
    from lsprotocol import types as lsp

    out: list[TextEdit] = []
    for e in edits:
        if isinstance(e, lsp.SnippetTextEdit):
            raise RenameRefused("the language server sent a snippet edit")
        r = e.range
        out.append(
            TextEdit(
                Position(r.start.line, r.start.character),
                Position(r.end.line, r.end.character),
                e.new_text,
            )
        )
    return tuple(out)


def _operation(change: Any) -> FileOperation:
    from lsprotocol import types as lsp

    options = getattr(change, "options", None)
    overwrite = bool(getattr(options, "overwrite", False))
    ignore = bool(getattr(options, "ignore_if_exists", False))
    if isinstance(change, lsp.CreateFile):
        return FileOperation(OperationKind.CREATE, change.uri, "", overwrite, ignore)
    if isinstance(change, lsp.RenameFile):
        return FileOperation(OperationKind.RENAME, change.old_uri, change.new_uri, overwrite)
    recursive = bool(getattr(options, "recursive", False))
    return FileOperation(OperationKind.DELETE, change.uri, recursive=recursive)


def workspace_changes(result: object) -> list[DocumentEdit | FileOperation]:
    """A ``WorkspaceEdit`` as plain changes (``documentChanges`` when given, else
    ``changes``); an empty list for no edit."""
    from lsprotocol import types as lsp

    if not isinstance(result, lsp.WorkspaceEdit):
        return []
    out: list[DocumentEdit | FileOperation] = []
    if result.document_changes:
        for change in result.document_changes:
            if isinstance(change, lsp.TextDocumentEdit):
                doc = change.text_document
                out.append(DocumentEdit(doc.uri, _text_edits(change.edits), doc.version))
            else:
                out.append(_operation(change))
    elif result.changes:
        for uri, edits in result.changes.items():
            out.append(DocumentEdit(uri, _text_edits(edits)))
    return out


def _prepared(result: object, text: str) -> str | None:
    """The name to prefill from a prepareRename answer; None when the server says the
    symbol cannot be renamed."""
    from lsprotocol import types as lsp

    if result is None:
        return None
    if isinstance(result, lsp.PrepareRenamePlaceholder):
        return result.placeholder
    if isinstance(result, lsp.Range):
        return text
    return text  # {defaultBehavior: true} and anything else: the word at the caret


def _read_file(path: Path) -> str | None:
    """A file's text (UTF-8), None when it cannot be read or is over ``MAX_READ`` bytes."""
    try:
        if path.stat().st_size > MAX_READ:
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


class _WindowLines(Sequence[str]):
    """A document's lines as the context chooser indexes them (0-based, up to the window's
    last line), holding only the window's: a line before it reads as ""."""

    def __init__(self, first: int, lines: list[str]) -> None:
        self._first = first
        self._lines = lines

    def __len__(self) -> int:
        return self._first + len(self._lines)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._lines[index - self._first] if index >= self._first else ""


def _window_at(editor: CodeEditor, caret: int, line: int) -> tuple[Sequence[str], int]:
    """``CONTEXT_LINES`` either side of the caret's ``line``, read as one range (a read per
    line was ~460 Scintilla calls, each a GIL hand-off the UI thread waited on while a worker
    ran: ``bench next_edit_ui``), and the caret's code-point column."""
    first = max(0, line - CONTEXT_LINES)
    last = min(editor.lineCount() - 1, line + CONTEXT_LINES)
    lo, start = editor.positionFromLine(first), editor.positionFromLine(line)
    raw = bytes(editor.textRange(lo, editor.lineEndPosition(last)).data())
    column = len(raw[start - lo : caret - lo].decode("utf-8", "replace"))
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    return _WindowLines(first, text.split("\n")), column


class RenameBox(QLineEdit):
    """The inline rename box (VS Code's): over the editor at the symbol, prefilled and
    selected; ``accepted(name)`` on Enter with a valid name; Esc or losing the focus closes
    it. An invalid name turns the frame red and says why in its tooltip."""

    accepted = Signal(str)

    def __init__(self, parent: QWidget, name: str, language: str) -> None:
        super().__init__(name, parent)
        self.setObjectName("renameBox")
        self._language = language
        self.problem = ""
        self.setMinimumWidth(220)
        self.textChanged.connect(self._check)
        self.installEventFilter(self)
        self.selectAll()

    def _check(self, text: str) -> None:
        self.problem = valid_name(text, self._language)
        self.setStyleSheet("" if not self.problem else "QLineEdit { border: 1px solid #f14c4c; }")
        self.setToolTip(self.problem or "Enter to review the rename, Esc to cancel")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self and event.type() == QEvent.Type.KeyPress:
            assert isinstance(event, QKeyEvent)
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._check(self.text())
                if not self.problem:
                    name = self.text()
                    self.close_box()
                    self.accepted.emit(name)
                return True
            if event.key() == Qt.Key.Key_Escape:
                self.close_box()
                return True
        if watched is self and event.type() == QEvent.Type.FocusOut:
            self.close_box()
        return super().eventFilter(watched, event)

    def close_box(self) -> None:
        self.hide()
        self.deleteLater()


class LspActions(QObject):
    """See the module docstring. ``place_dock`` puts the References panel in the window."""

    message = Signal(str, int)
    _definition_read = Signal(str, object)  # (uri, Definition) read on a thread
    _reference_lines = Signal(int, str, object)  # (answer, uri, {line: text}) read on a thread

    def __init__(
        self,
        language: LanguageController,
        edit_set: EditSetOwner,
        documents: Documents,
        root: Callable[[], Path | None],
        place_dock: Callable[[QDockWidget], None],
    ) -> None:
        super().__init__(language)
        self._language = language
        self._edit_set = edit_set
        self._documents = documents
        self._root = root
        self._place_dock = place_dock
        self.dock: ReferencesDock | None = None
        self.box: RenameBox | None = None
        language.references_found.connect(self.show_references)
        self._definition_read.connect(self._cache_definition)
        self._reference_lines.connect(self._fill_reference_lines)
        self._references_answer = 0  # the answer whose lines the panel waits for
        # definitions the servers gave, by document URI then name (the prompts' context)
        self.definitions: dict[str, dict[str, Definition]] = {}
        self._asked: set[tuple[str, int, str]] = set()  # (uri, version, name) asked
        self._resting: tuple[str, int, int] | None = None  # (uri, version, caret) last probe
        self.probe = QTimer(self)
        self.probe.setInterval(PROBE_MS)
        self.probe.timeout.connect(self._probe)
        self.probe.start()

    def commands(self) -> list[Command]:
        return [
            Command("editor.rename", "Rename Symbol", "F2", self.rename),
            Command("view.references", "View: References", "", self.show_panel),
        ]

    # ----- references ---------------------------------------------------------------------
    def _shown(self, path: Path) -> str:
        root = self._root()
        return str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)

    def _read(self, uri: str) -> str | None:
        """The document's text: the open buffer's, else the file's (None if unreadable).
        Rename's review reads the files it changes with it."""
        text = self._open_text(uri)
        if text is not None:
            return text
        path = path_of(uri)
        return _read_file(path) if path is not None else None

    def _open_text(self, uri: str) -> str | None:
        """The open buffer's text of ``uri`` (None: not open)."""
        path = path_of(uri)
        doc = self._documents.find(path) if path is not None else None
        return doc.editor.text() if doc is not None else None

    def show_references(self, origin: object, found: object) -> None:
        """Fill the References panel with Shift+F12's answer (shown, not focused: the
        picker has the focus). Open buffers give their lines now; the other files are read
        on a worker thread and their lines arrive by ``_reference_lines``."""
        if not isinstance(origin, Place) or not isinstance(found, list):
            return
        self._references_answer += 1
        answer = self._references_answer
        lines: dict[str, list[str]] = {}
        unread: dict[str, set[int]] = {}  # files not open -> the lines wanted
        rows: list[ReferenceRow] = []
        for uri, position in found:
            path = path_of(uri)
            if path is None:
                continue
            if uri not in lines and uri not in unread:
                text = self._open_text(uri)
                if text is not None:
                    lines[uri] = text.splitlines()
                else:
                    unread[uri] = set()
            if uri in unread:
                unread[uri].add(position.line)
                line: str | None = None
            else:
                here = lines[uri]
                line = here[position.line] if position.line < len(here) else ""
            rows.append(
                ReferenceRow(uri, self._shown(path), position.line, position.character, line)
            )
        symbol = self._symbol_at(origin)
        self._panel().set_rows(symbol, rows, self._shown(Path(origin.path)))
        self.show_panel(focus=False)
        for uri, text_lines in lines.items():  # the quick picker's rows show the lines too
            self._language.reference_texts(uri, dict(enumerate(text_lines)))
        if unread:
            UiThread(
                target=self._read_reference_lines,
                args=(answer, unread),
                name="forecode-lsp-refs",
                daemon=True,
            ).start()

    def _read_reference_lines(self, answer: int, unread: dict[str, set[int]]) -> None:
        """On a worker thread: each file's wanted lines, handed back file by file."""
        for uri, wanted in unread.items():
            if answer != self._references_answer:
                return  # a newer answer: nobody waits for these
            path = path_of(uri)
            text = _read_file(path) if path is not None else None
            all_lines = text.splitlines() if text is not None else []
            texts = {n: all_lines[n] for n in wanted if n < len(all_lines)}
            self._reference_lines.emit(answer, uri, texts)

    def _fill_reference_lines(self, answer: int, uri: str, texts: object) -> None:
        if answer != self._references_answer or not isinstance(texts, dict):
            return
        if self.dock is not None:
            self.dock.fill_texts(uri, texts)
        self._language.reference_texts(uri, texts)  # the quick picker's rows

    def _symbol_at(self, origin: Place) -> str:
        doc = self._documents.find(Path(origin.path))
        if doc is None:
            return ""
        editor = doc.editor
        start = editor.wordStartPosition(origin.position, True)
        end = editor.wordEndPosition(origin.position, True)
        return bytes(editor.textRange(start, end).data()).decode("utf-8", "replace")

    def _panel(self) -> ReferencesDock:
        if self.dock is None:
            self.dock = ReferencesDock()
            self.dock.jump_requested.connect(self.jump_to)
            self._place_dock(self.dock)
        return self.dock

    def show_panel(self, focus: bool = True) -> None:
        dock = self._panel()
        dock.show()
        dock.raise_()
        if focus:
            dock.tree.setFocus()

    def jump_to(self, uri: str, line: int, character: int) -> None:
        """A row picked: go there (Alt+Left comes back to where the caret was)."""
        path = path_of(uri)
        here = self._documents.current_document()
        if path is None:
            return
        doc = self._documents.find(path) or self._documents.open_file(path)
        if doc is None:
            return
        if here is not None and here.path is not None:
            origin = Place(str(here.path), here.editor.currentPos())
            self._language.history = self._language.history.jumped(origin)
        self._documents.activate(doc)
        editor = doc.editor
        line = max(0, min(line, editor.lineCount() - 1))
        pos = editor.positionFromLine(line) + byte_col_from_utf16(editor.line_text(line), character)
        editor.gotoPos(min(pos, editor.textLength()))
        editor.verticalCentreCaret()
        editor.focus()

    # ----- rename ---------------------------------------------------------------------------
    def rename(self) -> None:
        """F2: prepare, ask for the new name, rename, review the set."""
        doc = self._documents.current_document()
        bridge = self._language.bridge
        sent = self._language.sent(doc) if doc is not None else None
        if doc is None or sent is None or bridge is None:
            self.message.emit("Rename Symbol: no language server for this file", 4000)
            return
        uri, version = sent
        editor = doc.editor
        caret = editor.currentPos()
        start = editor.wordStartPosition(caret, True)
        end = editor.wordEndPosition(caret, True)
        word = bytes(editor.textRange(start, end).data()).decode("utf-8", "replace")
        where = lsp_position(editor, caret)
        from lsprotocol import types as lsp  # (the servers' thread imported it, as a rule)

        params = lsp.PrepareRenameParams(
            lsp.TextDocumentIdentifier(uri), lsp.Position(where.line, where.character)
        )

        def prepared(result: object, error: BaseException | None) -> None:
            if self._language.version_of(uri) != version or editor.currentPos() != caret:
                return  # the user moved on
            name = word if error is not None else _prepared(result, word)
            if name is None or not name:
                self.message.emit("The element can't be renamed.", 5000)
                return
            self.ask_name(doc, start, name, lambda new: self._rename(doc, uri, where, new, name))

        bridge.ask(uri, "rename_provider", PREPARE_RENAME, params, prepared)

    def ask_name(
        self, doc: Document, position: int, name: str, then: Callable[[str], None]
    ) -> RenameBox:
        """The inline box over ``doc``'s editor at byte ``position``."""
        if self.box is not None:
            self.box.close_box()
        editor = doc.editor
        box = RenameBox(editor, name, editor.language.id)
        x = editor.pointXFromPosition(position)
        y = editor.pointYFromPosition(position) + editor.textHeight(
            editor.lineFromPosition(position)
        )
        box.move(max(0, x), max(0, y))
        box.accepted.connect(then)
        box.destroyed.connect(lambda *_a, b=box: self._box_gone(b))
        self.box = box
        box.show()
        box.setFocus()
        return box

    def _box_gone(self, box: RenameBox) -> None:
        if self.box is box:
            self.box = None

    def _rename(
        self, doc: Document, uri: str, where: Position, new_name: str, old_name: str = ""
    ) -> None:
        from lsprotocol import types as lsp

        bridge = self._language.bridge
        sent = self._language.sent(doc)
        if bridge is None or sent is None:
            return
        version = sent[1]
        params = lsp.RenameParams(
            lsp.TextDocumentIdentifier(uri), lsp.Position(where.line, where.character), new_name
        )

        def renamed(result: object, error: BaseException | None) -> None:
            if self._language.version_of(uri) != version:
                self.message.emit("Rename Symbol: the file changed meanwhile; try again", 5000)
                return
            if error is not None:
                self.message.emit(f"Rename Symbol: {error or type(error).__name__}", 6000)
                return
            self.review_rename(result, new_name, old_name)

        bridge.ask(uri, "rename_provider", RENAME, params, renamed)

    def review_rename(self, result: object, new_name: str, old_name: str = "") -> bool:
        """Open a rename's ``WorkspaceEdit`` in the multi-file edit review, titled "Rename
        old → new" (VS Code's refactor preview names the rename); False (and a message)
        when it is empty or refused."""
        versions: dict[str, int] = {}
        for doc in self._documents.documents():
            if doc.path is not None:
                version = self._language.version_of(doc.path.as_uri())
                if version is not None:
                    versions[doc.path.as_uri()] = version

        def shown(uri: str) -> str:
            path = path_of(uri)
            return self._shown(path) if path is not None else uri

        try:
            changes = to_file_changes(workspace_changes(result), self._read, shown, versions)
        except RenameRefused as exc:
            self.message.emit(f"Rename Symbol: {exc}", 8000)
            return False
        if not changes:
            self.message.emit("Rename Symbol: nothing to change", 5000)
            return False
        title = f"Rename {old_name} → {new_name}" if old_name else f"Rename to {new_name}"
        self._edit_set.show_review(changes, title=title)
        n = len(changes)
        self.message.emit(
            f"Rename to '{new_name}': review the change in {n} file{'s' if n != 1 else ''}",
            8000,
        )
        return True

    # ----- context for the models -------------------------------------------------------------
    def _probe(self) -> None:
        """Ask for the definition of the name under a resting caret (once per name and
        version); the answer is cached for the prompts."""
        doc = self._documents.current_document()
        bridge = self._language.bridge
        if doc is None or doc.path is None or bridge is None:
            return
        uri = doc.path.as_uri()
        version = self._language.version_of(uri)
        if version is None:
            return
        editor = doc.editor
        caret = editor.currentPos()
        here = (uri, version, caret)
        resting, self._resting = self._resting == here, here
        if not resting:
            return
        start = editor.wordStartPosition(caret, True)
        end = editor.wordEndPosition(caret, True)
        name = bytes(editor.textRange(start, end).data()).decode("utf-8", "replace")
        if not name or not name.isidentifier() or (uri, version, name) in self._asked:
            return
        self._asked.add((uri, version, name))
        if len(self._asked) > 2000:
            self._asked.clear()
        from lsprotocol import types as lsp  # (the servers' thread imported it, as a rule)

        params = lsp.DefinitionParams(
            lsp.TextDocumentIdentifier(uri),
            lsp.Position(*lsp_position(editor, start)),
        )

        def answered(result: object, error: BaseException | None) -> None:
            if error is None:
                self.remember_definition(uri, name, result)

        bridge.ask(uri, "definition_provider", DEFINITION, params, answered)

    def remember_definition(self, uri: str, name: str, result: object) -> Definition | None:
        """Cache the first location of a definition answer as ``name``'s in ``uri``: at once
        from an open buffer (returned), else once a thread has read the file (None here)."""
        found = locations(result)
        if not found:
            return None
        target, position = found[0]
        path = path_of(target)
        if path is None:
            return None
        shown = self._shown(path)
        doc = self._documents.find(path)
        if doc is None:  # a file not open: read on a thread, cached when it is read

            def read() -> None:
                text = _read_file(path)
                if text is not None:
                    lines = text.splitlines()
                    found = Definition(
                        name, shown, position.line, definition_excerpt(lines, position.line)
                    )
                    self._definition_read.emit(uri, found)

            UiThread(target=read, name="forecode-lsp-read", daemon=True).start()
            return None
        excerpt = definition_excerpt(doc.editor.text().splitlines(), position.line)
        return self._cache_definition(uri, Definition(name, shown, position.line, excerpt))

    def _cache_definition(self, uri: str, definition: object) -> Definition | None:
        if not isinstance(definition, Definition):
            return None
        names = self.definitions.setdefault(uri, {})
        name = definition.name
        names[name] = definition
        if len(names) > 200:  # oldest first out
            names.pop(next(iter(names)))
        return definition

    def prompt_context(self, budget_chars: int) -> PromptContext | None:
        """The current file's context at its caret (``forecode_core.lsp.context``), from
        what has arrived; None without a file the servers know."""
        doc = self._documents.current_document()
        if doc is None or doc.path is None or budget_chars <= 0:
            return None
        uri = doc.path.as_uri()
        if self._language.version_of(uri) is None:
            return None
        editor = doc.editor
        caret = editor.currentPos()
        line = editor.lineFromPosition(caret)
        lines, column = _window_at(editor, caret, line)
        return choose_context(
            self._documents.workspace_path(doc),
            lines,
            (line, column),
            self._language.store.near(uri, line, PROBLEM_WINDOW),
            self.definitions.get(uri, {}),
            budget_chars,
            comment=_COMMENT.get(editor.language.id, "//"),
        )

    def completion_snippets(
        self, inner: RelatedSnippets | None
    ) -> Callable[[str, CodeEditor, Collection[str]], Sequence[Snippet]]:
        """``inner`` (the related files' snippets) with this context's first."""

        def snippets(path: str, editor: CodeEditor, skip: Collection[str]) -> list[Snippet]:
            ctx = self.prompt_context(COMPLETION_CONTEXT_CHARS)
            mine: list[Snippet] = []
            if ctx is not None and ctx.path == path:
                if ctx.problems:
                    mine.append(Snippet(path, ctx.problems, 1, "retrieved"))
                mine += [
                    Snippet(d.path, d.text, d.start_line + 1, "retrieved") for d in ctx.definitions
                ]
            rest = list(inner(path, editor, skip)) if inner is not None else []
            return mine + rest

        return snippets

    def related_excerpts(self, inner: RelatedExcerpts | None) -> RelatedExcerpts:
        """``inner`` (the related files' excerpts) after this context's, which take at most
        half the budget."""

        def excerpts(
            path: str, text: str, caret: int, budget: int, recent: Sequence[EditPair]
        ) -> tuple[RelatedExcerpt, ...]:
            ctx = self.prompt_context(budget // 2)
            mine: list[RelatedExcerpt] = []
            if ctx is not None and ctx.path == path:
                if ctx.problems:
                    mine.append(RelatedExcerpt(path, ctx.problems, 0))
                mine += [RelatedExcerpt(d.path, d.text, d.start_line) for d in ctx.definitions]
            used = sum(len(e.text) for e in mine)
            rest = inner(path, text, caret, budget - used, recent) if inner is not None else ()
            return (*mine, *rest)

        return excerpts

    def chat_sources(self) -> list[ContextSource]:
        """The chat's extra files: the problems and definitions near the caret."""
        ctx = self.prompt_context(CHAT_CONTEXT_CHARS)
        if ctx is None or ctx.empty:
            return []
        doc = self._documents.current_document()
        language = doc.editor.language.id if doc is not None else ""
        out: list[ContextSource] = []
        if ctx.problems:
            out.append(ContextSource(SourceKind.FILE, f"{ctx.path} (problems)", ctx.problems))
        out += [
            ContextSource(SourceKind.FILE, d.path, d.text, language, start_line=d.start_line + 1)
            for d in ctx.definitions
        ]
        return out
