"""A language server's ``WorkspaceEdit`` (rename's answer) as a multi-file edit set.

The server's edit arrives as plain values here (``app.services.lsp.results`` converts the
lsprotocol types): ``DocumentEdit``s (a document's text edits, with the version they were
computed for when the server gave one) and ``FileOperation``s (create, rename, delete), in
the order to apply them (``documentChanges``; the older ``changes`` map becomes one
``DocumentEdit`` per document, without versions). ``to_file_changes`` applies them to the
documents' current texts and returns one ``forecode_core.edits.FileChange`` per file, which
the edit-set review shows hunk by hunk.

Positions are LSP's (line, UTF-16 units; ``forecode_core.lsp.positions``). Edits of one
document may come in any order but must not overlap (the protocol's rule): an overlap, an
edit for a version that is not the document's, or a document that cannot be read refuses the
whole set with a sentence; nothing is half-applied.

File operations (VS Code applies them all; Forecode takes the simple ones): creating a file
that does not exist (its text then comes from the edits that follow) and deleting a file
that exists become a new / deleted file of the set. Renaming a file, creating over an
existing one and deleting a folder are refused with a clear message, since the review can
not yet show them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from forecode_core.edits.events import FileChange, FileChangeKind
from forecode_core.lsp.positions import Position, line_spans

__all__ = [
    "DocumentEdit",
    "FileOperation",
    "OperationKind",
    "RenameRefused",
    "TextEdit",
    "apply_text_edits",
    "index_of",
    "to_file_changes",
]


class RenameRefused(ValueError):
    """The workspace edit cannot be shown as a set; ``str()`` says why, for the user."""


@dataclass(frozen=True)
class TextEdit:
    start: Position
    end: Position
    new_text: str


@dataclass(frozen=True)
class DocumentEdit:
    uri: str
    edits: tuple[TextEdit, ...]
    version: int | None = None  # the version the edits were computed for; None: any


class OperationKind(StrEnum):
    CREATE = "create"
    RENAME = "rename"
    DELETE = "delete"


@dataclass(frozen=True)
class FileOperation:
    kind: OperationKind
    uri: str
    new_uri: str = ""  # a rename's target
    overwrite: bool = False
    ignore_if_exists: bool = False
    recursive: bool = False


Change = DocumentEdit | FileOperation


def index_of(text: str, position: Position) -> int:
    """The code-point index in ``text`` of an LSP position (a line past the end: the text's
    end; a character past the line's end: the line's end; inside a surrogate pair: the
    character's start)."""
    spans = line_spans(text)
    if position.line < 0:
        return 0
    if position.line >= len(spans):
        return len(text)
    start, end = spans[position.line]
    units = 0
    for i in range(start, end):
        width = 2 if ord(text[i]) > 0xFFFF else 1
        if units + width > position.character:
            return i
        units += width
    return end


def apply_text_edits(text: str, edits: Sequence[TextEdit]) -> str:
    """``text`` with ``edits`` made (all computed against ``text``). Edits at the same
    position are inserted in their given order; overlapping edits raise ``RenameRefused``."""
    spans = sorted(
        (
            (index_of(text, e.start), index_of(text, e.end), n, e.new_text)
            for n, e in enumerate(edits)
        ),
        key=lambda s: (s[0], s[2]),
    )
    out: list[str] = []
    cursor = 0
    for start, end, _n, new_text in spans:
        if end < start:
            raise RenameRefused("the language server sent an edit whose end is before its start")
        if start < cursor:
            raise RenameRefused("the language server sent overlapping edits")
        out.append(text[cursor:start])
        out.append(new_text)
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


@dataclass
class _File:
    original: str | None  # None: the file does not exist before the set
    text: str | None  # None: deleted by the set


@dataclass
class _Plan:
    read: Callable[[str], str | None]
    versions: Mapping[str, int]
    files: dict[str, _File] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def get(self, uri: str) -> _File:
        known = self.files.get(uri)
        if known is None:
            text = self.read(uri)
            known = _File(text, text)
            self.files[uri] = known
            self.order.append(uri)
        return known

    def edit(self, change: DocumentEdit) -> None:
        known = self.versions.get(change.uri)
        if change.version is not None and known is not None and change.version != known:
            raise RenameRefused(
                f"{_name(change.uri)} changed while the language server worked; try again"
            )
        file = self.get(change.uri)
        if file.text is None:
            raise RenameRefused(f"{_name(change.uri)} cannot be read")
        file.text = apply_text_edits(file.text, change.edits)

    def operate(self, op: FileOperation) -> None:
        name = _name(op.uri)
        if op.kind is OperationKind.RENAME:
            raise RenameRefused(
                f"the rename would also rename the file {name} to {_name(op.new_uri)}; "
                "renaming files is not supported yet"
            )
        file = self.get(op.uri)
        if op.kind is OperationKind.CREATE:
            if file.text is not None:
                if op.ignore_if_exists:
                    return
                raise RenameRefused(f"the rename would overwrite the existing file {name}")
            file.text = ""
            return
        if op.recursive:
            raise RenameRefused(f"the rename would delete the folder {name}")
        if file.text is None:
            raise RenameRefused(f"the rename would delete {name}, which does not exist")
        file.text = None


def _name(uri: str) -> str:
    return uri.rsplit("/", 1)[-1] or uri


def to_file_changes(
    changes: Sequence[Change],
    read: Callable[[str], str | None],
    path_of: Callable[[str], str],
    versions: Mapping[str, int] | None = None,
) -> tuple[FileChange, ...]:
    """The files ``changes`` touch as a set to review, in the order first touched; files
    whose text ends as it began are left out. ``read(uri)``: a document's current text (the
    open buffer's, else the file's; None when it does not exist); ``path_of(uri)``: the path
    the set shows and applies (relative to the workspace where it is inside it);
    ``versions``: the versions the editor last sent, to refuse an edit made for another.
    Raises ``RenameRefused`` with the reason when the edit cannot be offered."""
    plan = _Plan(read, versions or {})
    for change in changes:
        if isinstance(change, DocumentEdit):
            plan.edit(change)
        else:
            plan.operate(change)
    out: list[FileChange] = []
    for uri in plan.order:
        file = plan.files[uri]
        path = path_of(uri)
        if file.original is None and file.text is not None:
            out.append(FileChange(path, FileChangeKind.NEW, "", file.text, source="lsp"))
        elif file.original is not None and file.text is None:
            out.append(FileChange(path, FileChangeKind.DELETED, file.original, "", source="lsp"))
        elif file.original is not None and file.text is not None and file.text != file.original:
            out.append(
                FileChange(path, FileChangeKind.MODIFIED, file.original, file.text, source="lsp")
            )
    return tuple(out)
