"""The window's layout, kept from one run to the next as VS Code does: its size and place
(maximized too), the explorer's and the chat panel's widths, whether the chat panel was
open, and which bottom panel was open (Problems, References, Terminal: by the dock's object
name, reopened by its own command, ``BOTTOM_DOCKS``) at what height. One small JSON file
in the data dir (``<data>/window-layout.json``), written atomically when the window closes
and read before it first shows (``app.main``); the tabs and carets are hot exit's
(``app.ui.session``), per folder.

A missing, foreign or broken file is no layout: the window opens at its defaults, never an
error. A geometry from a screen that is gone is Qt's to fit (``restoreGeometry`` keeps the
window on an available screen). Widths are checked: a pane never comes back collapsed to
nothing nor wider than the window."""

from __future__ import annotations

import base64
import binascii
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtWidgets import QDockWidget

from forecode_core.store.json_store import CorruptDocument, read_document, write_document
from forecode_core.store.settings import data_dir

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["WindowLayout"]

FORMAT_NAME = "forecode-window-layout"
FORMAT_VERSION = 1
MIN_PANE = 80  # pixels: a side pane stored narrower comes back at its default
# The bottom docks that come back, by object name: the command that makes and shows each
# (each is made on first use). Another dock stored (a database branch's run, a dock that no
# longer exists) is ignored.
BOTTOM_DOCKS = {
    "problems": "view.problems",
    "references": "view.references",
    "terminal-dock": "terminal.toggle",
}


class WindowLayout:
    """Stores and restores one window's layout (module doc)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or data_dir() / "window-layout.json"

    def capture(self, window: MainWindow) -> dict[str, Any]:
        geometry = bytes(window.saveGeometry().data())
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "geometry": base64.b64encode(geometry).decode("ascii"),
            "panes": [int(n) for n in window.splitter.sizes()],
            "chat_open": window.chat.panel.isVisible(),
            "bottom": _open_bottom(window),
        }

    def save(self, window: MainWindow) -> str | None:
        """Store ``window``'s layout; the problem in words when it cannot (never raises)."""
        try:
            write_document(self.path, self.capture(window), indent=1)
        except OSError as exc:
            return f"the window's layout could not be stored: {exc}"
        return None

    def load(self) -> dict[str, Any] | None:
        try:
            data = self.path.read_bytes()
        except OSError:
            return None
        try:
            return read_document(data, FORMAT_NAME, FORMAT_VERSION, "window layout")
        except CorruptDocument:
            return None

    def restore(self, window: MainWindow) -> bool:
        """Put the stored layout on ``window`` before it shows; False when there is none."""
        doc = self.load()
        if doc is None:
            return False
        geometry = doc.get("geometry")
        if isinstance(geometry, str):
            with contextlib.suppress(binascii.Error, ValueError):  # broken: the default size
                window.restoreGeometry(QByteArray(base64.b64decode(geometry, validate=True)))
        chat_open = doc.get("chat_open") is True
        if chat_open:
            window.chat.panel.show()
        panes = doc.get("panes")
        if (
            isinstance(panes, list)
            and len(panes) == len(window.splitter.sizes())
            and all(isinstance(n, int) and n >= 0 for n in panes)
        ):
            window.splitter.setSizes(_checked(panes, chat_open))
        _restore_bottom(window, doc.get("bottom"))
        return True


def _open_bottom(window: MainWindow) -> dict[str, Any] | None:
    """The bottom dock shown now (the raised tab) and its height, or None."""
    bottom = Qt.DockWidgetArea.BottomDockWidgetArea
    for dock in window.findChildren(QDockWidget):
        if (
            window.dockWidgetArea(dock) == bottom
            and not dock.isFloating()
            and dock.isVisible()
            and dock.objectName() in BOTTOM_DOCKS
        ):
            return {"dock": dock.objectName(), "height": dock.height()}
    return None


def _restore_bottom(window: MainWindow, stored: object) -> None:
    """Reopen the stored bottom dock by its command, at its height, once the event loop runs
    (after ``app.main`` opened the folder: a terminal starts in it, not in the home folder;
    a dock resized before the window's first show is laid out anew)."""
    if not isinstance(stored, dict):
        return
    name, height = stored.get("dock"), stored.get("height")
    action = window.actions_by_id.get(BOTTOM_DOCKS.get(name, "")) if isinstance(name, str) else None
    if action is None:
        return

    def reopen() -> None:
        action.trigger()
        dock = window.findChild(QDockWidget, str(name))
        if dock is not None and isinstance(height, int) and height >= MIN_PANE:
            window.resizeDocks([dock], [height], Qt.Orientation.Vertical)

    QTimer.singleShot(0, window, reopen)  # dropped if the window is gone by then


def _checked(panes: list[int], chat_open: bool) -> list[int]:
    """The stored widths [explorer, editor, chat], with a side pane stored too narrow (or the
    chat open but stored at nothing) back at its default width."""
    tree, editor, chat = panes
    if 0 < tree < MIN_PANE:
        tree = 260
    if chat_open and chat < MIN_PANE:
        chat = 420
    return [tree, max(editor, MIN_PANE), chat if chat_open else 0]
