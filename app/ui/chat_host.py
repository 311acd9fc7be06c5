"""The window's side of the chat panel (``ChatHost``): what the editor shows, as context.

- the current file (its buffer, not the disk: unsaved edits count) with the caret line as the
  focus a truncation keeps, and the main selection when there is one;
- the workspace files for the ``@`` picker (the window's background scan);
- a mentioned file: its open buffer when it is open, else the file read and decoded by
  ``forecode_core.text.textfile`` — a workspace file only, at most ``MAX_FILE_BYTES``, never binary.
  Reads are cached by (path, mtime, size), since the panel re-plans the context as the user
  types; one capped read of one file is the same order of cost as a save.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from forecode_core.chat.context import ContextSource, SourceKind
from forecode_core.text.languages import language_for_path
from forecode_core.text.textfile import read_text_file

if TYPE_CHECKING:
    from .document import Document
    from .owners.documents import Documents
    from .owners.workspace import Workspace

__all__ = ["MAX_FILE_BYTES", "WindowChatHost"]

MAX_FILE_BYTES = 1_000_000


class WindowChatHost:
    """``ChatHost`` over the window's workspace and documents (the owners, given explicitly:
    this module never imports the window)."""

    def __init__(self, workspace: Workspace, documents: Documents) -> None:
        self._workspace = workspace
        self._documents = documents
        self._cache: dict[Path, tuple[int, int, str, str]] = {}
        self.extra_sources: Callable[[], Sequence[ContextSource]] | None = None

    # ----- the editor --------------------------------------------------------------------------
    def _document(self) -> Document | None:
        doc = self._documents.current_document()
        return doc if doc is not None and not doc.read_only_reason else None

    def chat_editor_sources(self) -> tuple[ContextSource | None, ContextSource | None]:
        doc = self._document()
        if doc is None:
            return None, None
        editor = doc.editor
        path = self._documents.workspace_path(doc)
        language = editor.language.id
        caret_line = editor.lineFromPosition(editor.currentPos())
        current = ContextSource(
            SourceKind.CURRENT_FILE,
            path,
            editor.text(),
            language,
            start_line=1,
            focus_line=caret_line,
        )
        start, end = editor.selectionStart(), editor.selectionEnd()
        selection = None
        if end > start:
            text = bytes(editor.textRange(start, end).data()).decode("utf-8", "replace")
            if text.strip():
                selection = ContextSource(
                    SourceKind.SELECTION,
                    path,
                    text,
                    language,
                    start_line=editor.lineFromPosition(start) + 1,
                )
        return current, selection

    def chat_workspace_files(self) -> Sequence[str]:
        return list(self._workspace.files)

    def chat_extra_sources(self) -> list[ContextSource]:
        """Sources beside the current file: the language servers' problems and definitions
        near the caret (``extra_sources``, set by the window: ``LspActions.chat_sources``)."""
        return list(self.extra_sources()) if self.extra_sources is not None else []

    def chat_focus_editor(self) -> None:
        doc = self._documents.current_document()
        if doc is not None:
            doc.editor.focus()
        else:
            self._documents.tabs.setFocus()

    # ----- files ---------------------------------------------------------------------------------
    def chat_read_file(self, path: str) -> tuple[str, str]:
        root = self._workspace.root
        given = Path(path)
        if given.is_absolute():
            target = Path(os.path.normpath(given))
        elif root is not None:
            target = Path(os.path.normpath(root / given))
        else:
            raise ValueError("no folder is open")
        for doc in self._documents.documents():
            if doc.path is not None and doc.path == target.resolve():
                return doc.editor.text(), doc.editor.language.id
        if root is None or not target.is_relative_to(root):
            raise ValueError("not a file of the workspace")
        st = target.stat()  # OSError: "No such file or directory"
        if not target.is_file():
            raise ValueError("not a file")
        if st.st_size > MAX_FILE_BYTES:
            raise ValueError(
                f"too large ({st.st_size // 1024} KiB; the limit is {MAX_FILE_BYTES // 1024} KiB)"
            )
        cached = self._cache.get(target)
        if cached is not None and cached[:2] == (st.st_mtime_ns, st.st_size):
            return cached[2], cached[3]
        decoded, _raw = read_text_file(target)
        if decoded.read_only_reason:
            raise ValueError(decoded.read_only_reason)
        first_line = decoded.text.split("\n", 1)[0]
        language = language_for_path(target, first_line).id
        self._cache[target] = (st.st_mtime_ns, st.st_size, decoded.text, language)
        return decoded.text, language
