"""Git in the editor: status colours in the explorer and the changed-lines gutter.

``GitController`` (one per window, ``window.git``) runs ``git status`` for the open folder on its
own worker thread (``forecode-git``; the UI thread never runs git), debounced after saves,
file-system changes, changes of ``.git/index`` / ``HEAD`` and the window becoming active, and
hands the explorer's model a ``StatusLookup``. No git or no repository: no colours, no message.
A status slower than the deadline (a hostile or huge repository) is killed and retried later,
with a growing pause, and the status bar says so once.

``DecoratedFileSystemModel`` is the explorer's ``QFileSystemModel`` with the decoration in
``ForegroundRole`` (VS Code's ``gitDecoration.*`` colours), ``BADGE_ROLE`` (the letter, or ``•``
for a folder tinted by changes below it) and the tooltip; ``BadgeDelegate`` draws the badge at
the right of the row.

``GitGutter`` (one per document) shows VS Code's dirty diff in the editor's margin 1, between
the line numbers and the folding: a green bar for added lines, a blue bar for modified ones, a
red triangle across the boundary where lines were deleted. The HEAD version is read with
``git cat-file`` on the git thread (cached per file and HEAD commit); the diff runs on a second
worker thread (``forecode-diff``) after a pause in typing.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QFileSystemWatcher,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QPainter
from PySide6.QtWidgets import (
    QFileSystemModel,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from app.services.git_status import read_head_blob, read_status
from app.services.threads import SerialExecutor
from forecode_core.pacing import RefreshPacing
from forecode_core.text.line_changes import gutter_marks, line_changes
from forecode_core.text.textfile import decode_bytes
from forecode_core.workspace.git_status import Decoration, StatusLookup, StatusResult

from .theme import Theme

if TYPE_CHECKING:
    from .document import Document
    from .editor import CodeEditor

__all__ = [
    "BADGE_ROLE",
    "GUTTER_MARKERS",
    "BadgeDelegate",
    "DecoratedFileSystemModel",
    "GitController",
    "GitGutter",
    "explorer_colours",
    "gutter_colours",
]

BADGE_ROLE = int(Qt.ItemDataRole.UserRole) + 40

# VS Code's gitDecoration.*ResourceForeground: (dark, light).
_EXPLORER_COLOURS = {
    "modified": ("#e2c08d", "#895503"),
    "added": ("#81b88b", "#587c0c"),
    "renamed": ("#73c991", "#007100"),
    "untracked": ("#73c991", "#007100"),
    "deleted": ("#c74e39", "#ad0707"),
    "ignored": ("#8c8c8c", "#8e8e90"),
    "conflicted": ("#e4676b", "#ad0707"),
}
_KIND_NAMES = {
    "modified": "Modified",
    "added": "Index Added",
    "renamed": "Index Renamed",
    "untracked": "Untracked",
    "deleted": "Deleted",
    "ignored": "Ignored",
    "conflicted": "Conflict",
}
# VS Code's editorGutter.*Background: (dark, light).
_GUTTER_COLOURS = {
    "added": ("#487e02", "#48985d"),
    "modified": ("#1b81a8", "#2090d3"),
    "deleted": ("#f14c4c", "#e51400"),
}

# The gutter's markers (Scintilla marker numbers) in editor.py's margin 1 (DIFF_MARGIN_MASK);
# bit i of a line's mark (forecode_core.text.line_changes: ADDED, MODIFIED, DELETED_ABOVE,
# DELETED_BELOW)
# is marker DIFF_MARKER_BASE + i.
DIFF_MARGIN = 1
DIFF_MARKER_BASE = 12
GUTTER_MARKERS = {"added": 12, "modified": 13, "deleted_above": 14, "deleted_below": 15}
SCI_MARKERDEFINERGBAIMAGE = 2626

REFRESH_DEBOUNCE_MS = 400
DIFF_DEBOUNCE_MS = 250
GUTTER_MAX_BYTES = 8 * 1024 * 1024
STATUS_TIMEOUT_S = 10.0
MAX_BACKOFF_S = 300.0
BLOB_CACHE_FILES = 64


def explorer_colours(theme: Theme) -> dict[str, str]:
    return {kind: pair[0 if theme.dark else 1] for kind, pair in _EXPLORER_COLOURS.items()}


def gutter_colours(theme: Theme) -> dict[str, str]:
    return {kind: pair[0 if theme.dark else 1] for kind, pair in _GUTTER_COLOURS.items()}


# ----- the explorer's model and badge ------------------------------------------------------------


class DecoratedFileSystemModel(QFileSystemModel):
    """``QFileSystemModel`` plus git decorations for column 0 (see the module docstring)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.root: str | None = None
        self.lookup: StatusLookup | None = None
        self.colours: dict[str, str] = {}
        self._cache: dict[str, Decoration | None] = {}

    def set_decorations(
        self, root: str | None, lookup: StatusLookup | None, colours: dict[str, str]
    ) -> None:
        self.root, self.lookup, self.colours = root, lookup, colours
        self._cache.clear()

    def decoration(self, index: QModelIndex | QPersistentModelIndex) -> Decoration | None:
        if self.lookup is None or self.root is None:
            return None
        path = self.filePath(index)
        if path in self._cache:
            return self._cache[path]
        try:
            rel = os.path.relpath(path, self.root).replace(os.sep, "/")
        except ValueError:
            rel = ".."
        found = None if rel.startswith("..") else self.lookup.decoration(rel, self.isDir(index))
        if len(self._cache) > 20_000:
            self._cache.clear()
        self._cache[path] = found
        return found

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            index.column() == 0
            and self.lookup is not None
            and role in (Qt.ItemDataRole.ForegroundRole, BADGE_ROLE, Qt.ItemDataRole.ToolTipRole)
        ):
            found = self.decoration(index)
            if found is not None:
                if role == Qt.ItemDataRole.ForegroundRole:
                    return QBrush(QColor(self.colours.get(found.kind, "#888888")))
                if role == BADGE_ROLE:
                    return "•" if found.propagated else found.letter
                what = "Contains changes" if found.propagated else _KIND_NAMES[found.kind]
                return f"{self.filePath(index)} • {what}"
            if role == BADGE_ROLE:
                return ""
        return super().data(index, role)


class BadgeDelegate(QStyledItemDelegate):
    """Draws a row's git badge (``BADGE_ROLE``) at its right edge in the row's colour."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        badge = index.data(BADGE_ROLE)
        if not badge:
            super().paint(painter, option, index)
            return
        width = option.fontMetrics.horizontalAdvance("MM") + 6
        rect = QRect(option.rect)
        rect.setRight(max(rect.left(), rect.right() - width))
        narrowed = QStyleOptionViewItem(option)
        narrowed.rect = rect
        super().paint(painter, narrowed, index)
        brush = index.data(Qt.ItemDataRole.ForegroundRole)
        painter.save()
        if option.state & QStyle.StateFlag.State_Selected:
            painter.setPen(option.palette.highlightedText().color())
        elif isinstance(brush, QBrush):
            painter.setPen(brush.color())
        badge_rect = QRect(rect.right() + 1, option.rect.top(), width - 6, option.rect.height())
        painter.drawText(badge_rect, int(Qt.AlignmentFlag.AlignCenter), str(badge))
        painter.restore()


# ----- the window's git state --------------------------------------------------------------------


class _Bridge(QObject):
    status = Signal(int, object)  # generation, (StatusResult, StatusLookup | None)
    blob = Signal(object, object)  # key, text or None
    diff = Signal(object, int, object)  # gutter, generation, marks


class GitController(QObject):
    """The open folder's git status and the documents' gutters (see the module docstring)."""

    changed = Signal()  # a new status arrived (or the colours went away)
    headChanged = Signal()

    def __init__(
        self,
        tree_model: Callable[[], DecoratedFileSystemModel | None],
        theme: Callable[[], Theme],
        message: Callable[[str], None],
        parent: QObject | None = None,
        *,
        status_reader: Callable[..., StatusResult] | None = None,
        timeout_s: float = STATUS_TIMEOUT_S,
    ) -> None:
        super().__init__(parent)
        self._tree_model = tree_model
        self._theme = theme
        self._message = message
        self._status_reader = status_reader
        self.timeout_s = timeout_s
        self.root: Path | None = None
        self.result: StatusResult | None = None
        self.lookup: StatusLookup | None = None
        self.problem: str | None = None
        self.checked = False  # a status for this root has arrived (with or without a repo)
        self.head_oid: str | None = None
        self._generation = 0
        self._pacing = RefreshPacing()  # replaced, never edited
        self._told: str | None = None
        self._executor = SerialExecutor("forecode-git")  # no thread started in a submit
        self._abort = threading.Event()  # set on close: a git still running is killed
        self._diff_executor = SerialExecutor("forecode-diff")
        self._bridge = _Bridge()
        self._bridge.status.connect(self._on_status)
        self._bridge.blob.connect(self._on_blob)
        self._bridge.diff.connect(self._on_diff)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.refresh_now)
        self._watcher = QFileSystemWatcher(self)
        self._watcher.fileChanged.connect(self._on_git_file_changed)
        self._blobs: OrderedDict[tuple[str, str | None], str | None] = OrderedDict()
        self._blob_waiters: dict[tuple[str, str | None], list[GitGutter]] = {}
        self.gutters: dict[Document, GitGutter] = {}
        self._closed = False
        self._watched_model: DecoratedFileSystemModel | None = None
        self.enabled = True  # the git.enabled setting

    @property
    def refreshing(self) -> bool:
        """A git status runs now."""
        return self._pacing.running

    def set_enabled(self, enabled: bool) -> None:
        """``git.enabled``: off, no git runs, the colours and the gutters' marks go."""
        if enabled == self.enabled:
            return
        self.enabled = enabled
        self._generation += 1  # a status under way is dropped
        self._timer.stop()
        self.result = self.lookup = None
        self.problem = None
        self.head_oid = None
        self._push()
        self.changed.emit()
        for gutter in list(self.gutters.values()):
            gutter.load_base()
        if enabled:
            self.refresh_now()

    # ----- status ------------------------------------------------------------------------
    def set_root(self, root: Path | None) -> None:
        self.root = root
        self._generation += 1
        self.result = self.lookup = None
        self.problem = None
        self.checked = False
        self._pacing = self._pacing.rooted()
        self._told = None
        files = self._watcher.files()
        if files:
            self._watcher.removePaths(files)
        model = self._tree_model()
        if model is not None and model is not self._watched_model:
            # Files created, deleted or renamed in the folders the explorer has loaded.
            self._watched_model = model
            model.rowsInserted.connect(lambda *_a: self.refresh_soon())
            model.rowsRemoved.connect(lambda *_a: self.refresh_soon())
            model.fileRenamed.connect(lambda *_a: self.refresh_soon())
        self._push()
        self.refresh_now()

    def refresh_soon(self) -> None:
        """Refresh after a short pause (events come in bursts)."""
        if self.root is None or self._closed or not self.enabled:
            return
        wait_ms = self._pacing.wait_ms(time.monotonic(), REFRESH_DEBOUNCE_MS)
        if not self._timer.isActive() or self._timer.remainingTime() < wait_ms:
            self._timer.start(wait_ms)

    def refresh_now(self) -> None:
        if self.root is None or self._closed or not self.enabled:
            return
        running = self._pacing.running
        self._pacing = self._pacing.asked(time.monotonic())
        if running:
            return  # pending: asked again once the running one is done
        generation, root, timeout = self._generation, self.root, self.timeout_s
        reader = self._status_reader or read_status

        def job() -> None:
            try:
                result = reader(root, timeout=timeout, abort=self._abort)
            except Exception as exc:  # never raised into the pool; reported as a problem
                result = StatusResult(None, None, f"git status failed: {exc}")
            # The look-up tables are built here too (a big status takes a while).
            self._bridge.status.emit(generation, (result, result.lookup()))

        self._executor.submit(job)

    def _on_status(self, generation: int, result: object) -> None:
        # Automatic refreshes leave git at least two thirds of the time idle: a repository
        # whose status takes 3 s is asked at most every 9 s, however busy the file system.
        self._pacing = self._pacing.finished(time.monotonic())
        if self._closed:
            return
        if generation == self._generation:
            assert isinstance(result, tuple)
            self._apply_status(*result)
        if self._pacing.pending:
            self.refresh_soon()

    def _apply_status(self, result: StatusResult, lookup: StatusLookup | None) -> None:
        self.result = result
        self.checked = True
        self.problem = result.problem
        if result.problem is not None and result.status is None:
            # Too slow: keep the last colours, wait longer before the next try.
            self._pacing = self._pacing.too_slow(time.monotonic(), MAX_BACKOFF_S)
        else:
            self._pacing = self._pacing.answered()
            self.lookup = lookup
        if result.problem is not None and result.problem != self._told:
            self._message(result.problem)
        self._told = result.problem
        if result.repo is not None:
            git_dir = result.repo.git_dir
            wanted = [os.path.join(git_dir, name) for name in ("index", "HEAD", "logs/HEAD")]
            missing = [p for p in wanted if os.path.exists(p) and p not in self._watcher.files()]
            if missing:
                self._watcher.addPaths(missing)
        head = result.status.head_oid if result.status is not None else None
        if result.status is not None and head != self.head_oid:
            self.head_oid = head
            self.headChanged.emit()
            for gutter in list(self.gutters.values()):
                gutter.load_base()
        self._push()
        self.changed.emit()

    def _push(self) -> None:
        model = self._tree_model()
        if model is None:
            return
        root = str(self.root) if self.root is not None else None
        model.set_decorations(root, self.lookup, explorer_colours(self._theme()))
        view = model.parent()
        if isinstance(view, QWidget):
            view.update()
            viewport = getattr(view, "viewport", None)
            if callable(viewport):
                viewport().update()

    def theme_changed(self) -> None:
        self._push()
        for gutter in self.gutters.values():
            gutter.restyle()

    def _on_git_file_changed(self, path: str) -> None:
        # git replaces index and HEAD by rename: watch the new file again.
        QTimer.singleShot(50, self, lambda: self._rewatch(path))
        self.refresh_soon()

    def _rewatch(self, path: str) -> None:
        if os.path.exists(path) and path not in self._watcher.files():
            self._watcher.addPath(path)

    # ----- gutters -----------------------------------------------------------------------
    def attach(self, doc: Document) -> GitGutter:
        gutter = self.gutters.get(doc)
        if gutter is None:
            gutter = GitGutter(doc, self)
            self.gutters[doc] = gutter
            doc.destroyed.connect(lambda *_a, d=doc: self.gutters.pop(d, None))
        return gutter

    def detach(self, doc: Document) -> None:
        gutter = self.gutters.pop(doc, None)
        if gutter is not None:
            gutter.stop()

    def gutter_for(self, doc: Document) -> GitGutter | None:
        return self.gutters.get(doc)

    def request_blob(self, gutter: GitGutter, path: str) -> None:
        key = (path, self.head_oid)
        if key in self._blobs:
            self._blobs.move_to_end(key)
            gutter.set_base(path, self._blobs[key])
            return
        waiters = self._blob_waiters.setdefault(key, [])
        waiters.append(gutter)
        if len(waiters) > 1:
            return

        def job() -> None:
            data = read_head_blob(path, timeout=self.timeout_s, abort=self._abort)
            text: str | None = None
            if data is not None:
                decoded = decode_bytes(data)
                text = None if decoded.read_only_reason else decoded.text
            self._bridge.blob.emit(key, text)

        self._executor.submit(job)

    def _on_blob(self, key: object, text: object) -> None:
        assert isinstance(key, tuple)
        self._blobs[key] = text if isinstance(text, str) else None
        while len(self._blobs) > BLOB_CACHE_FILES:
            self._blobs.popitem(last=False)
        for gutter in self._blob_waiters.pop(key, []):
            if not self._closed and gutter in self.gutters.values():  # its tab is still open
                gutter.set_base(key[0], self._blobs[key])

    def submit_diff(
        self, gutter: GitGutter, generation: int, base: str, text: str, line_count: int
    ) -> None:
        if self._closed:  # a gutter's timer that fired after the window closed
            return

        def job() -> None:
            marks = gutter_marks(line_changes(base, text), line_count)
            self._bridge.diff.emit(gutter, generation, marks)

        self._diff_executor.submit(job)

    def _on_diff(self, gutter: object, generation: int, marks: object) -> None:
        assert isinstance(gutter, GitGutter)
        if not self._closed and gutter in self.gutters.values():
            assert isinstance(marks, dict)
            gutter.show_marks(generation, marks)

    def close(self) -> None:
        self._closed = True
        self._abort.set()
        self._timer.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._diff_executor.shutdown(wait=False, cancel_futures=True)


class GitGutter(QObject):
    """One document's changed-lines gutter (see the module docstring)."""

    def __init__(self, doc: Document, controller: GitController) -> None:
        super().__init__(doc)
        self.doc = doc
        self.editor: CodeEditor = doc.editor
        self.controller = controller
        self.base: str | None = None
        self.base_checked = False
        self.marks: dict[int, int] = {}
        self._path: str | None = None
        self._generation = 0
        self._style_key: tuple[int, int, bool] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DIFF_DEBOUNCE_MS)
        self._timer.timeout.connect(self._diff_now)
        self.editor.modified.connect(self._on_modified)
        doc.titleChanged.connect(self._on_title_changed)
        self.load_base()

    def stop(self) -> None:
        self._timer.stop()
        self._generation += 1

    def load_base(self) -> None:
        path = self.doc.path
        self._path = str(path) if path is not None else None
        if path is None or self.controller.root is None or not self.controller.enabled:
            self.set_base(self._path, None)
            return
        self.controller.request_blob(self, str(path))

    def _on_title_changed(self) -> None:
        path = str(self.doc.path) if self.doc.path is not None else None
        if path != self._path:  # renamed or saved under another name
            self.load_base()

    def set_base(self, path: str | None, text: str | None) -> None:
        if path != self._path:
            return  # an answer for the document's former path
        self.base = text
        self.base_checked = True
        self._diff_now()

    def _on_modified(self, *_args: object) -> None:
        if self.base is not None:
            self._timer.start()

    def _diff_now(self) -> None:
        self._timer.stop()
        self._generation += 1
        if self.base is None or self.editor.textLength() > GUTTER_MAX_BYTES:
            self.show_marks(self._generation, {})
            return
        self.controller.submit_diff(
            self, self._generation, self.base, self.editor.text(), self.editor.lineCount()
        )

    def show_marks(self, generation: int, marks: dict[int, int]) -> None:
        if generation != self._generation:
            return  # the text changed since; a newer diff is on its way
        self.restyle(force=False)
        editor = self.editor
        for number in GUTTER_MARKERS.values():
            editor.markerDeleteAll(number)
        for line, bits in marks.items():
            editor.markerAddSet(line, bits << DIFF_MARKER_BASE)
        self.marks = marks

    def restyle(self, force: bool = True) -> None:
        """Define the markers for the editor's theme and line height (again when they change)."""
        editor = self.editor
        # Images in logical pixels: Scintilla's Qt port draws an RGBA image pixel for pixel at
        # its top-left corner, ignoring SCI_RGBAIMAGESETSCALE (a 2x image covered two lines
        # at 200 %); solid shapes scale up cleanly anyway.
        key = (editor.textHeight(0), editor.marginWidthN(DIFF_MARGIN), editor.theme.dark)
        if key == self._style_key and not force:
            return
        self._style_key = key
        height, width = key[0], max(3, key[1])
        colours = gutter_colours(editor.theme)
        images = {
            "added": _bar_image(width, height, colours["added"]),
            "modified": _bar_image(width, height, colours["modified"]),
            "deleted_above": _triangle_image(width, height, colours["deleted"], top=True),
            "deleted_below": _triangle_image(width, height, colours["deleted"], top=False),
        }
        editor.rGBAImageSetWidth(width)
        editor.rGBAImageSetHeight(height)
        editor.rGBAImageSetScale(100)
        for name, number in GUTTER_MARKERS.items():
            # The binding's markerDefineRGBAImage cannot take bytes; Scintilla copies the
            # pixels during the call.
            pixels = ctypes.create_string_buffer(images[name], len(images[name]))
            editor.send(SCI_MARKERDEFINERGBAIMAGE, number, ctypes.addressof(pixels))


def _rgba(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _bar_image(width: int, height: int, colour: str) -> bytes:
    """A bar 3/7 of the margin wide, 2/7 from its left edge (3 pixels, 2 pixels from the edge
    at 100 %), the line's full height."""
    r, g, b = _rgba(colour)
    row = bytearray(width * 4)
    for x in range(min(width * 2 // 7, width - 1), min(width * 5 // 7, width)):
        row[x * 4 : x * 4 + 4] = bytes((r, g, b, 255))
    return bytes(row) * height


def _triangle_image(width: int, height: int, colour: str, *, top: bool) -> bytes:
    """Half of a right-pointing triangle centred on a line boundary: ``top`` draws the half
    below the boundary (at this line's top), else the half above it (at this line's bottom)."""
    r, g, b = _rgba(colour)
    half = max(3, min(height // 2, width))
    out = bytearray(width * height * 4)
    for y in range(height):
        distance = (y + 0.5) if top else (height - y - 0.5)  # from the boundary
        if distance >= half:
            continue
        filled = round(width * (1 - distance / half))
        for x in range(filled):
            i = (y * width + x) * 4
            out[i : i + 4] = bytes((r, g, b, 255))
    return bytes(out)
