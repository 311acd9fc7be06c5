"""Reopen with Encoding / Save with Encoding: the status bar's encoding label and the palette.

As in VS Code, a click on the encoding in the status bar ("File: Change File Encoding") asks
whether to reopen or to save with an encoding, then lists the encodings, marking the current one
and the one the file's first bytes suggest. The work is the document's
(``Document.reopen_with_encoding`` / ``save_with_encoding``); this module only asks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QLabel, QWidget

from forecode_core.text.textfile import ENCODING_CHOICES, decode_bytes

from .document import Document
from .picker import Picker, PickerItem

__all__ = ["ClickableLabel", "EncodingCommands", "guess_encoding"]

REOPEN = "Reopen with Encoding"
SAVE = "Save with Encoding"
_GUESS_BYTES = 64 << 10


class ClickableLabel(QLabel):
    """A status bar label that acts like VS Code's: a click runs a command."""

    clicked = Signal()

    def __init__(self, tooltip: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setToolTip(tooltip)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.rect().contains(
            event.position().toPoint()
        ):
            self.clicked.emit()
        super().mouseReleaseEvent(event)


def guess_encoding(doc: Document) -> str | None:
    """The encoding the first 64 KiB of the document's file suggest (cut at a line break so no
    character is cut in two), or None. Never more than 64 KiB is read on the UI thread."""
    if doc.path is None:
        return None
    try:
        with open(doc.path, "rb") as f:
            head = f.read(_GUESS_BYTES)
    except OSError:
        return None
    if len(head) == _GUESS_BYTES:
        cut = head.rfind(b"\n")
        head = head[: cut + 1] if cut > 0 else head
    decoded = decode_bytes(head)
    return None if decoded.read_only else decoded.encoding


class _Window(Protocol):
    picker: Picker

    def current_document(self) -> Document | None: ...

    def show_message(self, text: str, timeout_ms: int = 5000) -> None: ...


class EncodingCommands:
    """The window's encoding commands; ``window`` gives the picker and the current tab."""

    def __init__(self, window: _Window) -> None:
        self.window = window

    def change_encoding(self) -> None:
        """The status bar click: first Reopen or Save, then the encoding."""
        doc = self._document()
        if doc is None:
            return
        actions = [
            PickerItem(REOPEN, "decode the file on disk again", data=self.reopen),
            PickerItem(SAVE, "write the text in another encoding", data=self.save),
        ]

        def accept(item: PickerItem | None, _query: str) -> None:
            if item is not None and callable(item.data):
                item.data(doc)

        self.window.picker.open("Select Action", _filtered(actions), on_accept=accept)

    def reopen(self, doc: Document | None = None) -> None:
        doc = doc or self._document()
        if doc is None:
            return
        if doc.path is None:
            self.window.show_message("An untitled file has no bytes on disk to reopen.")
            return
        self._pick(doc, "Select File Encoding to Reopen File", doc.reopen_with_encoding)

    def save(self, doc: Document | None = None) -> None:
        doc = doc or self._document()
        if doc is None:
            return
        self._pick(doc, "Select File Encoding to Save with", doc.save_with_encoding)

    def _document(self) -> Document | None:
        doc = self.window.current_document()
        if doc is None:
            self.window.show_message("Open a file first.")
        return doc

    def _pick(self, doc: Document, placeholder: str, apply: Callable[[str], bool]) -> None:
        guessed = guess_encoding(doc)
        ranked = []
        for encoding, label in ENCODING_CHOICES:
            if encoding == doc.encoding:
                rank, detail = 0, "Current"
            elif encoding == guessed:
                rank, detail = 1, "Guessed from content"
            else:
                rank, detail = 2, encoding
            ranked.append((rank, PickerItem(label, detail, data=encoding)))
        # The current encoding and the guess first, as VS Code lists them.
        items = [item for _rank, item in sorted(ranked, key=lambda pair: pair[0])]

        def accept(item: PickerItem | None, _query: str) -> None:
            if item is not None and isinstance(item.data, str):
                apply(item.data)

        self.window.picker.open(placeholder, _filtered(items), on_accept=accept)


def _filtered(items: list[PickerItem]) -> Callable[[str], list[PickerItem]]:
    def provider(query: str) -> list[PickerItem]:
        words = query.lower().split()
        return [
            item
            for item in items
            if all(w in f"{item.label} {item.detail} {item.data}".lower() for w in words)
        ]

    return provider
