"""Hot exit's open tabs: what the window stores at close (``capture``) and reopens with the
folder (``restore_tabs``): every file tab, in order, with its selection and scroll, and the
active one; the unsaved texts come back from their backups as before (``BackupStore``).

A tab whose file is gone and has no backup is dropped; an untitled tab comes back only with
unsaved text (from its backup, after the file tabs).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from forecode_core.store.hotexit import Session, TabState

if TYPE_CHECKING:
    from .document import Document
    from .editor import CodeEditor
    from .owners.documents import Documents

__all__ = ["capture", "restore_tabs"]


def _tab_state(doc: Document) -> TabState:
    ed = doc.editor
    return TabState(
        doc.backup_key,
        str(doc.path) if doc.path is not None else None,
        anchor=ed.anchor(),
        caret=ed.currentPos(),
        first_line=ed.docLineFromVisible(ed.firstVisibleLine()),
        x_offset=ed.xOffset(),
    )


def capture(window: Documents) -> Session:
    """The window's tabs now: file tabs and untitled ones with unsaved text."""
    docs = [d for d in window.documents() if d.path is not None or d.is_dirty()]
    current = window.current_document()
    active = docs.index(current) if current in docs else (0 if docs else -1)
    return Session(tuple(_tab_state(d) for d in docs), active)


def _apply_view(editor: CodeEditor, tab: TabState) -> None:
    n = editor.textLength()
    editor.setSelection(min(tab.caret, n), min(tab.anchor, n))
    editor.setFirstVisibleLine(
        editor.visibleFromDocLine(min(tab.first_line, editor.lineCount() - 1))
    )
    editor.setXOffset(tab.x_offset)


def restore_tabs(window: Documents, session: Session | None) -> None:
    """Reopen the session's tabs around those the backups already opened, put them in the
    session's order, each with its selection and scroll, and make the active one current."""
    if session is None or not session.tabs:
        return
    by_key = {d.backup_key: d for d in window.documents()}
    ordered: list[Document] = []
    active: Document | None = None
    for i, tab in enumerate(session.tabs):
        doc = by_key.get(tab.key)
        if doc is None and tab.path is not None and os.path.isfile(tab.path):
            doc = window.open_file(tab.path)
        if doc is None or doc in ordered:
            continue
        ordered.append(doc)
        if getattr(doc, "loading", False):  # a big file: once its text is in
            doc.loadFinished.connect(lambda d=doc, t=tab: _apply_view(d.editor, t))
        else:
            _apply_view(doc.editor, tab)
        if i == session.active:
            active = doc
    bar = window.tabs.tabBar()
    for target, doc in enumerate(ordered):
        index = window.tabs.indexOf(doc)
        if index != target:
            bar.moveTab(index, target)
    if active is not None:
        window.tabs.setCurrentWidget(active)
        active.editor.focus()
