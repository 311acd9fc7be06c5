"""A document tab: one file (or an untitled buffer) in a ``CodeEditor``, with its file state.

It owns what makes saving safe: the encoding and line endings the file was read with (kept on
save), read-only protection for binary and undecodable files, atomic saves on the app's writer
thread (``save``: the UI thread never waits on the disk), noticing changes on
disk (an unmodified buffer reloads, a modified one is offered the choice and never overwrites the
disk silently), and hot-exit backups of unsaved text shortly after each change.

Big files (see ``forecode_core.text.large_files``) are read on a worker thread: the tab shows
progress with
Cancel, the text reaches the widget in pieces from a short timer (the UI thread never holds more
than one piece's work), and above 20 MiB the tab is in large-file mode (read-only, plain text).
A file can be reopened or saved with another encoding (``reopen_with_encoding``,
``save_with_encoding``).
"""

from __future__ import annotations

import contextlib
import os
import queue
import stat
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.services.saver import (
    Expected,
    SaveOutcome,
    SaveRequest,
    SaveResult,
    digest,
    saver,
)
from app.services.threads import SerialExecutor, UiThread
from forecode_core.states import DiskCheck
from forecode_core.store.hotexit import Backup, BackupStore
from forecode_core.store.settings import Settings
from forecode_core.text.languages import PLAIN_TEXT, language_for_path
from forecode_core.text.large_files import (
    LONG_LINE_CHARS,
    SYNC_READ_MAX_BYTES,
    FileTooLargeError,
    LoadDone,
    LoadHeader,
    OpenPlan,
    break_long_lines,
    hard_limit_bytes,
    human_size,
    load_file,
    long_line_note,
    plan_open,
    refusal_message,
)
from forecode_core.text.textfile import (
    BINARY,
    EDITABLE_ENCODINGS,
    Decoded,
    decode_bytes,
    encode_text,
    encoding_label,
)

from .editor import CodeEditor

__all__ = ["Banner", "DiskState", "Document", "FileTooLargeError"]

REOPEN_WITH_ENCODING = "Reopen with Encoding..."
EDIT_LONG_LINES = "Edit Anyway (may be slow)"
_PUMP_BUDGET_S = 0.012  # the most one pass of the load pump spends on the UI thread
_LARGE_DOCUMENT_OPTIONS = 0x1 | 0x100  # SC_DOCUMENTOPTION_STYLES_NONE | TEXT_LARGE


def _digest(data: bytes) -> str:
    return digest(data)  # the writer's, so a save's digest and a read's compare


_DISK_WORKER: SerialExecutor | None = None


def _disk_worker() -> SerialExecutor:
    """The thread that hashes what a document read or saved and makes its saves durable."""
    global _DISK_WORKER
    if _DISK_WORKER is None:
        _DISK_WORKER = SerialExecutor("forecode-document-disk")
    return _DISK_WORKER


class _SaveRelay(QObject):
    """Carries a save's completion from the writer thread to its document on the UI thread
    (made on the UI thread, never deleted; always queued, so a result is never handled inside
    the ``save()`` call that asked for it)."""

    finished = Signal(object, int)  # weakref.ref to the Document, the save's number

    def __init__(self) -> None:
        super().__init__()
        self.finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    @Slot(object, int)
    def _deliver(self, ref: object, seq: int) -> None:
        doc = ref() if isinstance(ref, weakref.ref) else None
        if doc is not None:
            with contextlib.suppress(RuntimeError):  # its widget was deleted meanwhile
                doc._deliver_save(seq)


_SAVE_RELAY: _SaveRelay | None = None


def _save_relay() -> _SaveRelay:
    global _SAVE_RELAY
    if _SAVE_RELAY is None:
        _SAVE_RELAY = _SaveRelay()
    return _SAVE_RELAY


@dataclass
class _PendingSave:
    """A save asked and not yet applied: its number, the writer's future, the buffer's edit
    version when it was taken, its target and the caller's callback (UI side only)."""

    seq: int
    future: Future[SaveResult]
    version: int
    target: Path
    on_done: Callable[[bool], object] | None


def _digest_later(data: bytes) -> Future[str]:
    """The digest of ``data``, computed off the UI thread (it is wanted only when the file
    changes on disk, seconds later if ever; ``bench lsp --ui`` sampled it in opens' stalls)."""
    return _disk_worker().submit(_digest, data)


@dataclass(frozen=True)
class DiskState:
    """What the document last knew of its file on disk. ``digest`` (of its bytes) is computed
    on a worker thread when the file is read or saved and resolved when first read: by then it
    is long done (a change on disk is noticed on focus or a watcher's event); each read or save
    makes a new ``DiskState``, so a digest is never of another version."""

    mtime_ns: int
    size: int
    pending: Future[str] | str = field(repr=False, compare=False)

    @property
    def digest(self) -> str:
        return self.pending if isinstance(self.pending, str) else self.pending.result()

    def expected(self) -> Expected:
        """What a save checks the file against (on the writer thread)."""
        return Expected(self.mtime_ns, self.size, lambda: self.digest)


RESTORED_NOTICE = "Restored unsaved changes from the last session."


_BANNER_COLOURS = {"info": "#2f65ca", "warning": "#b58900", "error": "#c0392b"}


class Banner(QFrame):
    """A one-line message above the editor with action buttons (no modal dialogs)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        layout.addWidget(self.label, 1)
        self._buttons: list[QPushButton] = []
        self._layout = layout
        self.kind = ""
        self.hide()

    def show_message(
        self,
        text: str,
        kind: str = "info",
        actions: tuple[tuple[str, Callable[[], object]], ...] = (),
    ) -> None:
        for button in self._buttons:
            button.deleteLater()
        self._buttons = []
        self.kind = kind
        self.update()  # the stripe's colour
        self.label.setText(text)
        for title, callback in actions:
            button = QPushButton(title)
            button.clicked.connect(callback)
            self._layout.addWidget(button)
            self._buttons.append(button)
        self.show()

    def paintEvent(self, event: QPaintEvent) -> None:
        # the kind's stripe drawn here, not by a style sheet: a styled banner kept the palette
        # it was polished with, so after a theme switch its text stayed the old theme's (pale
        # on the light theme, seen in a user run); unstyled, it follows the application's
        super().paintEvent(event)
        painter = QPainter(self)
        painter.fillRect(0, 0, 4, self.height(), QColor(_BANNER_COLOURS.get(self.kind, "#555")))
        painter.end()

    def buttons(self) -> dict[str, QPushButton]:
        return {b.text(): b for b in self._buttons}

    def clear(self) -> None:
        self.kind = ""
        self.hide()


class Document(QWidget):
    """One editor tab. Create with ``Document.open(path)`` or ``Document.untitled(n)``."""

    _restored_notice = False  # the "Restored unsaved changes" banner is up (restore_backup)

    dirtyChanged = Signal(bool)
    titleChanged = Signal()
    saved = Signal(str)  # path
    loadFinished = Signal()  # a background load put the whole text in the widget
    loadFailed = Signal(str)
    closeRequested = Signal()  # the user cancelled opening: the window closes the tab
    encodingRequested = Signal()  # the banner's "Reopen with Encoding..." button
    saveFinished = Signal(bool)  # a save's result came back (True: the bytes are on disk)

    def __init__(
        self,
        settings: Settings,
        backups: BackupStore | None,
        executor: Executor | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self._backups = backups
        self._executor = executor
        self.path: Path | None = None
        self.untitled_index = 0
        self.encoding = "utf-8"
        self.eol = settings.default_eol
        self.mixed_eol = False
        self.read_only_reason: str | None = None
        self.disk: DiskState | None = None
        self.conflict = False  # the file changed on disk while the buffer had unsaved edits
        self.deleted_on_disk = False
        self.chosen_encoding: str | None = None  # the user's "Reopen with Encoding" choice
        self.large = False  # large-file mode: read-only, plain text (text.large_files)
        self.loading = False  # a background load is filling the widget
        self.allow_long_lines = False  # the user chose to edit a file with very long lines
        self.load_progress = (0, 0)  # bytes read, bytes in all (while loading)
        self._load: _Load | None = None
        self._saves: list[_PendingSave] = []  # in flight, in the order asked
        self._save_seq = 0
        self._edit_version = 0  # counts the buffer's insertions and deletions
        self._written: tuple[int, int] | None = None  # our last save's (mtime_ns, size)
        self._check_deferred = False  # a disk check asked while a save was in flight
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.banner = Banner(self)
        self.editor = CodeEditor(self)
        layout.addWidget(self.banner)
        layout.addWidget(self.editor, 1)
        self._backup_timer = QTimer(self)
        self._backup_timer.setSingleShot(True)
        self._backup_timer.timeout.connect(self.backup_now)
        self.editor.savePointChanged.connect(self._on_save_point)
        self.editor.modified.connect(self._on_modified)
        self.apply_settings(settings)

    # ----- construction -------------------------------------------------------------------
    @classmethod
    def untitled(
        cls,
        index: int,
        settings: Settings,
        backups: BackupStore | None = None,
        executor: Executor | None = None,
    ) -> Document:
        doc = cls(settings, backups, executor)
        doc.untitled_index = index
        doc.editor.set_eol(doc.eol)
        return doc

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        settings: Settings,
        backups: BackupStore | None = None,
        executor: Executor | None = None,
        *,
        hard_limit: int | None = None,
    ) -> Document:
        """Open ``path``. Raises ``OSError`` when it cannot be read, and
        :class:`FileTooLargeError` (an ``OSError`` whose ``strerror`` is the message) above the
        hard limit. A file above 1 MiB is read in the background: the document returns at once
        with ``loading`` set and emits ``loadFinished`` (or ``loadFailed``)."""
        target = Path(path).resolve()
        st = os.stat(target)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"not a regular file: {target}")
        limit = hard_limit if hard_limit is not None else hard_limit_bytes()
        plan = plan_open(st.st_size, limit)
        if plan is OpenPlan.REFUSE:
            raise FileTooLargeError(refusal_message(target.name, st.st_size, limit))
        doc = cls(settings, backups, executor)
        doc.path = target
        doc._hard_limit = limit
        if plan is OpenPlan.SYNC:
            doc._load_from_disk()
        else:
            doc._start_load(large=plan is OpenPlan.LARGE)
        return doc

    _hard_limit: int | None = None

    def _read_raw(self) -> tuple[bytes, os.stat_result]:
        assert self.path is not None
        with open(self.path, "rb") as f:
            st = os.fstat(f.fileno())  # before reading: a change during the read is seen later
            return f.read(), st

    def _read_disk(self) -> tuple[Decoded, bytes, os.stat_result]:
        data, st = self._read_raw()
        decoded = decode_bytes(data, self.settings.default_eol, self.chosen_encoding)
        if not self.allow_long_lines:
            decoded = break_long_lines(decoded)  # long lines shown broken, read-only
        return decoded, data, st

    def _load_from_disk(self) -> None:
        decoded, data, st = self._read_disk()
        self._apply_decoded(decoded, data, st)

    def _apply_decoded(
        self, decoded: Decoded, data: bytes, st: os.stat_result, keep_position: bool = False
    ) -> None:
        assert self.path is not None
        self._use_document(large=False)  # a file that shrank out of large-file mode
        first_line = decoded.text[:200].split("\n", 1)[0]
        language = language_for_path(self.path, first_line)
        if _is_long_line_note(decoded.read_only_reason):
            language = PLAIN_TEXT  # broken lines would be mis-lexed (strings cut in two)
        if language is not self.editor.language:
            self.editor.set_language(language)
        line = self.editor.firstVisibleLine()
        pos = self.editor.currentPos()
        self.encoding, self.eol, self.mixed_eol = decoded.encoding, decoded.eol, decoded.mixed_eol
        self.read_only_reason = decoded.read_only_reason
        self.editor.setReadOnly(False)
        self.editor.set_text(decoded.text, keep_undo=keep_position)
        self.editor.setSavePoint()
        self.editor.set_eol(decoded.eol)
        self.editor.setReadOnly(self.read_only_reason is not None)
        if keep_position:
            self.editor.gotoPos(min(pos, self.editor.textLength()))
            self.editor.setFirstVisibleLine(line)
        self.disk = DiskState(st.st_mtime_ns, st.st_size, _digest_later(data))
        self.conflict = self.deleted_on_disk = False
        self.large = False
        self._show_decoding_banner(decoded.read_only_reason, decoded.notice, decoded.encoding)
        self.titleChanged.emit()

    def _show_decoding_banner(self, reason: str | None, notice: str | None, encoding: str) -> None:
        reopen = ((REOPEN_WITH_ENCODING, self.encodingRequested.emit),)
        if _is_long_line_note(reason):
            self.banner.show_message(reason, "warning", ((EDIT_LONG_LINES, self.edit_long_lines),))
        elif reason:
            offer = encoding != BINARY and not self.large
            self.banner.show_message(reason, "warning", reopen if offer else ())
        elif notice:
            self.banner.show_message(notice, "info", reopen)
        else:
            self.banner.clear()

    def edit_long_lines(self) -> None:
        """Reload with the long lines as they are, editable (painting them may be slow)."""
        self.allow_long_lines = True
        self.reload_from_disk()

    # ----- background loading (big files) ------------------------------------------------
    def _start_load(self, *, large: bool, keep_position: bool = False) -> None:
        """Read the file on a worker thread; the text reaches the widget in pieces."""
        assert self.path is not None
        self.cancel_load(close=False)
        load = _Load(
            self.path,
            default_eol=self.settings.default_eol,
            encoding=self.chosen_encoding,
            large=large,
            hard_limit=self._hard_limit,
            keep_position=keep_position,
            long_lines=self.allow_long_lines,
            position=(self.editor.firstVisibleLine(), self.editor.currentPos()),
        )
        self._load = load
        self.loading = True
        self.load_progress = (0, 0)
        self.read_only_reason = "The file is still loading."
        self.editor.setReadOnly(True)
        self.destroyed.connect(load.cancel.set)  # a closed tab stops its reader
        timer = QTimer(self)
        timer.setInterval(5)
        timer.timeout.connect(self._pump_load)
        load.timer = timer
        self.banner.show_message(
            f"Opening {self.path.name}...",
            "info",
            (("Cancel", lambda: self.cancel_load(close=True)),),
        )
        load.thread.start()
        timer.start()

    def _use_document(self, *, large: bool) -> None:
        """Large-file mode keeps the text in a Scintilla document without a style byte per
        character (half the memory, and growing the buffer copies half as much)."""
        editor = self.editor
        options = _LARGE_DOCUMENT_OPTIONS if large else 0
        if editor.documentOptions() == options:
            return
        pointer = editor.createDocument(0, options)
        editor.setDocPointer(pointer)
        editor.releaseDocument(pointer)  # the editor holds its own reference
        # Code page, lexer, line endings and indentation belong to the document.
        editor.setCodePage(65001)
        editor.set_language(PLAIN_TEXT)
        self.apply_settings(self.settings)

    def cancel_load(self, *, close: bool = True) -> None:
        """Stop a background load; with ``close`` the window closes the tab."""
        load, self._load = self._load, None
        if load is None:
            return
        load.cancel.set()
        if load.timer is not None:
            load.timer.stop()
        self.loading = False
        if close:
            self.read_only_reason = "Opening was cancelled."
            self.banner.show_message(self.read_only_reason, "info")
            self.closeRequested.emit()

    def _pump_load(self) -> None:
        load = self._load
        if load is None:
            return
        deadline = time.monotonic() + _PUMP_BUDGET_S
        while time.monotonic() < deadline and self._load is load:
            try:
                item = load.items.get_nowait()
            except queue.Empty:
                break
            self._load_item(load, item)
        if self._load is load:
            done, total = load.progress
            if (done, total) != self.load_progress and total:
                self.load_progress = (done, total)
                assert self.path is not None
                self.banner.label.setText(
                    f"Opening {self.path.name}: {100 * done // total} % of {human_size(total)}"
                )

    def _load_item(self, load: _Load, item: object) -> None:
        editor = self.editor
        if isinstance(item, str):
            editor.setReadOnly(False)
            editor.appendText(len(item.encode("utf-8", "surrogatepass")), item)
            editor.setReadOnly(True)
        elif isinstance(item, LoadHeader):
            assert self.path is not None
            self.large = item.large
            self._use_document(large=item.large)
            language = (
                PLAIN_TEXT
                if item.large or item.long_lines
                else language_for_path(self.path, item.first_line)
            )
            if language is not editor.language:
                editor.set_language(language)
            if item.large:
                editor.setWrapMode(0)  # wrapping a 200 MB file would be minutes of idle work
            self.encoding, self.eol, self.mixed_eol = item.encoding, item.eol, item.mixed_eol
            load.header = item
            editor.setUndoCollection(False)
            editor.setReadOnly(False)
            editor.setText("")
            # Room for all of it at once: growing the buffer piece by piece copied the whole
            # text at each step (150 ms stalls near the end of a 50 MB file).
            editor.allocate(item.size + 4096)
            if item.lines_hint:
                editor.allocateLines(item.lines_hint + item.lines_hint // 8)
            editor.setReadOnly(True)
        elif isinstance(item, LoadDone):
            self._finish_load(load, item)
        elif isinstance(item, _LoadError):
            self._load = None
            assert load.timer is not None
            load.timer.stop()
            self.loading = False
            self.read_only_reason = f"Could not open {self.path}: {item.message}"
            editor.setUndoCollection(True)
            self.banner.show_message(self.read_only_reason, "error")
            self.titleChanged.emit()
            self.loadFailed.emit(item.message)

    def _finish_load(self, load: _Load, done: LoadDone) -> None:
        header = load.header
        assert header is not None and load.timer is not None
        self._load = None
        load.timer.stop()
        editor = self.editor
        editor.setUndoCollection(True)
        editor.emptyUndoBuffer()
        editor.setSavePoint()
        editor.set_eol(header.eol)
        self.loading = False
        self.read_only_reason = header.read_only_reason
        if done.longest_broken:  # large-file mode found long lines on the way
            self.read_only_reason = f"{self.read_only_reason} {long_line_note(done.longest_broken)}"
        editor.setReadOnly(self.read_only_reason is not None)
        editor._update_line_margin()
        # The caret is where setText("") left it (0). No gotoPos: it scrolls the caret into
        # view, which lays out its whole line first (14 s for a 6.5 MB one-line JSON file).
        if load.keep_position:
            line, pos = load.position
            editor.setEmptySelection(min(pos, editor.textLength()))
            editor.setFirstVisibleLine(line)
        self.disk = DiskState(done.mtime_ns, done.size, done.digest)
        self.conflict = self.deleted_on_disk = False
        self._show_decoding_banner(self.read_only_reason, header.notice, header.encoding)
        self.titleChanged.emit()
        self.loadFinished.emit()

    # ----- encodings -----------------------------------------------------------------------
    def reopen_with_encoding(self, encoding: str) -> bool:
        """Decode the file on disk again with ``encoding`` (an id of ``ENCODING_CHOICES``).
        Refused (False, with a banner) while the buffer has unsaved changes."""
        if self.path is None or self.loading:
            return False
        if self.is_dirty():
            self.banner.show_message(
                f"{self.path.name} has unsaved changes: save or revert them before reopening "
                "it with another encoding.",
                "warning",
            )
            return False
        previous = self.chosen_encoding
        self.chosen_encoding = encoding
        try:
            size = os.stat(self.path).st_size
            if size > SYNC_READ_MAX_BYTES:
                plan = plan_open(size, self._hard_limit)
                if plan is OpenPlan.REFUSE:
                    raise FileTooLargeError(
                        refusal_message(self.path.name, size, self._hard_limit or 0)
                    )
                self._start_load(large=plan is OpenPlan.LARGE, keep_position=True)
                return True
            decoded, data, st = self._read_disk()
        except (OSError, ValueError) as exc:
            self.chosen_encoding = previous
            self.banner.show_message(f"Could not reopen {self.path.name}: {exc}", "error")
            return False
        self._apply_decoded(decoded, data, st, keep_position=True)
        return True

    def save_with_encoding(self, encoding: str) -> bool:
        """Save the text in ``encoding`` from now on (an id of ``EDITABLE_ENCODINGS``). Text
        the encoding cannot hold is refused with a banner, and nothing changes."""
        if encoding not in EDITABLE_ENCODINGS:
            raise ValueError(f"not an encoding a file can be saved with: {encoding!r}")
        if self.read_only_reason:
            self.banner.show_message(
                f"{self.read_only_reason} Reopen it with the right encoding first.",
                "warning",
                ()
                if self.loading or self.large
                else ((REOPEN_WITH_ENCODING, self.encodingRequested.emit),),
            )
            return False
        try:
            encode_text(self.editor.text(), encoding)
        except ValueError as exc:
            self.banner.show_message(f"Cannot save with {encoding_label(encoding)}: {exc}", "error")
            return False
        previous, self.encoding = self.encoding, encoding
        if self.path is None:
            self.chosen_encoding = None
            self.titleChanged.emit()
            return True

        def done(ok: bool) -> None:
            if ok:
                self.chosen_encoding = encoding
            elif self.encoding == encoding:
                self.encoding = previous
            self.titleChanged.emit()

        if not self.save(overwrite=True, on_done=done):
            self.encoding = previous
            return False
        self.titleChanged.emit()
        return True

    # ----- state ---------------------------------------------------------------------------
    @property
    def title(self) -> str:
        return self.path.name if self.path else f"Untitled-{self.untitled_index}"

    @property
    def backup_key(self) -> str:
        if self.path is None:
            return f"untitled-{self.untitled_index}"
        return BackupStore.key_for_path(self.path)

    def is_dirty(self) -> bool:
        return not self.loading and bool(self.editor.modify())

    def apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        self.editor.font_family = settings.font_family
        self.editor.font_size = settings.font_size
        self.editor.apply_settings(
            tab_size=settings.tab_size,
            insert_spaces=settings.insert_spaces,
            word_wrap=settings.word_wrap and not self.large,
            render_whitespace=settings.render_whitespace,
            rulers=settings.rulers,
        )

    def _on_save_point(self, dirty: bool) -> None:
        self.dirtyChanged.emit(bool(dirty))
        self.titleChanged.emit()
        if not dirty:
            self._backup_timer.stop()
            self._remove_backup()

    def _on_modified(self, flags: int, *_args: object) -> None:
        if int(flags) & 0x3:
            self._edit_version += 1
        if int(flags) & 0x3 and self._restored_notice:  # the user edits the restored text
            self._dismiss_restored_notice()
        if int(flags) & 0x3 and self._backups is not None:  # SC_MOD_INSERTTEXT | DELETETEXT
            self._backup_timer.start(self.settings.hot_exit_delay_ms)

    # ----- hot exit --------------------------------------------------------------------------
    def make_backup(self) -> Backup:
        return Backup(
            key=self.backup_key,
            path=str(self.path) if self.path else None,
            text=self.editor.text(),
            encoding=self.encoding,
            eol=self.eol,
            disk_mtime_ns=self.disk.mtime_ns if self.disk else None,
            disk_size=self.disk.size if self.disk else None,
            saved_at=time.time(),
        )

    def backup_now(self, wait: bool = False) -> None:
        """Write the unsaved text to the backup store, on the backup thread."""
        if self._backups is None or self._executor is None:
            return
        if not self.is_dirty():
            self._remove_backup()
            return
        future = self._executor.submit(self._backups.write, self.make_backup())
        if wait:
            future.result()

    def use_backups(self, backups: BackupStore | None) -> None:
        """Back up into ``backups`` from now on (a folder was opened: its store)."""
        self._backups = backups

    def detach_backups(self) -> None:
        """Stop backing up (the window is closing and has flushed the backups)."""
        self._backup_timer.stop()
        self._backups = None
        self._executor = None

    def _remove_backup(self) -> None:
        if self._backups is not None and self._executor is not None:
            self._executor.submit(self._backups.remove, self.backup_key)

    def discard_backup(self) -> None:
        self._backup_timer.stop()
        self._remove_backup()

    def restore_backup(self, backup: Backup) -> None:
        """Put a backed-up unsaved text into this document; undo returns to the disk text."""
        if self.loading:  # a big file: restore once its text is in
            self.loadFinished.connect(lambda: self.restore_backup(backup))
            return
        if (
            self.path is not None
            and backup.encoding != self.encoding
            and backup.encoding in EDITABLE_ENCODINGS
        ):
            self.reopen_with_encoding(backup.encoding)  # the text was edited in that one
        self.editor.set_text(backup.text, keep_undo=self.path is not None)
        if self.path is None:
            self.encoding, self.eol = backup.encoding, backup.eol
            self.editor.set_eol(backup.eol)
        changed = (
            self.disk is not None
            and backup.disk_mtime_ns is not None
            and ((backup.disk_mtime_ns, backup.disk_size) != (self.disk.mtime_ns, self.disk.size))
        )
        if changed:
            self.conflict = True
            self.banner.show_message(
                "Restored your unsaved changes. The file also changed on disk since then: "
                "saving will ask before overwriting it.",
                "warning",
                (
                    ("Compare: reload from disk", self.reload_from_disk),
                    ("Keep my changes", self.keep_mine),
                ),
            )
        else:
            # VS Code restores hot-exit buffers without a word; Forecode says so once, as a
            # notice that goes when the user acts: Dismiss, a save, or the first edit
            # (``_on_modified``). The conflict banner above carries a decision and stays.
            self.banner.show_message(
                RESTORED_NOTICE, "info", (("Dismiss", self._dismiss_restored_notice),)
            )
            self._restored_notice = True
        self.titleChanged.emit()

    def _dismiss_restored_notice(self) -> None:
        if self._restored_notice and self.banner.label.text() == RESTORED_NOTICE:
            self.banner.clear()
        self._restored_notice = False

    # ----- saving ----------------------------------------------------------------------------
    def _prepare_text(self) -> str:
        text = self.editor.text()
        eol = self.eol
        if self.settings.trim_trailing_whitespace:
            lines = text.split(eol)
            trimmed = [ln.rstrip(" \t") for ln in lines]
            if trimmed != lines:
                text = eol.join(trimmed)
        if self.settings.insert_final_newline and text and not text.endswith(("\n", "\r")):
            text += eol
        if text != self.editor.text():
            line, col = self.editor.caret_line_col()
            self.editor.set_text(text, keep_undo=True)
            self.editor.go_to_line(line, col)
        return text

    @property
    def save_pending(self) -> bool:
        """A save was asked and its result has not come back yet."""
        return bool(self._saves)

    def save(
        self, *, overwrite: bool = False, on_done: Callable[[bool], object] | None = None
    ) -> bool:
        """Start saving to ``self.path``; returns at once (``app.services.saver``: the check
        against the disk, the encoding, the atomic write with its fsyncs and the rename run on
        the app's writer thread). False (with a banner) when refused at once: still loading,
        read-only. Else True, and the result comes back on the UI thread: ``saved`` (the
        path) and ``on_done(True)`` once the bytes are on disk, the dirty mark cleared only if
        the buffer is still the text saved (typing meanwhile leaves it dirty); a failure
        (disk full, permission denied, the folder gone) shows an error banner, keeps the
        buffer dirty and calls ``on_done(False)``. ``on_done`` is never called when this
        returns False. Saves run in the order asked, so the latest snapshot is what stays on
        disk.

        Without ``overwrite``, a file changed on disk since it was read is not overwritten:
        the banner offers to overwrite or reload instead (``on_done(False)``).
        """
        if self.path is None:
            raise ValueError("an untitled document needs save_as")
        if self.loading:
            return False
        if self.read_only_reason:
            self.banner.show_message(self.read_only_reason, "warning")
            return False
        self._start_save(overwrite=overwrite, on_done=on_done)
        return True

    def _start_save(self, *, overwrite: bool, on_done: Callable[[bool], object] | None) -> None:
        assert self.path is not None
        text = self._prepare_text()  # the snapshot: what Ctrl+S saw
        expected = None if self.disk is None else self.disk.expected()
        previous = self._saves[-1].future if self._saves else None
        request = SaveRequest(self.path, text, self.encoding, expected, overwrite, previous)
        self._save_seq += 1
        pending = _PendingSave(
            self._save_seq, saver().submit(request), self._edit_version, self.path, on_done
        )
        self._saves.append(pending)
        # The writer's callback holds only a weak reference and a number: nothing of the
        # document is ever released on the writer thread (a QWidget destroyed off the GUI
        # thread crashed the process once, see test_document_disk_worker).
        ref, seq, relay = weakref.ref(self), pending.seq, _save_relay()
        pending.future.add_done_callback(lambda _f: relay.finished.emit(ref, seq))

    def _deliver_save(self, seq: int) -> None:
        """A save's result reached the UI thread (or ``wait_saves`` took it first)."""
        while self._saves and self._saves[0].seq <= seq and self._saves[0].future.done():
            self._finish_save(self._saves.pop(0))

    def wait_saves(self, timeout: float = 10.0) -> bool:
        """Block (at most ``timeout`` seconds) until the saves asked so far are done and their
        results applied; True when none is left. For quitting and tests, never for a user's
        command on the UI thread."""
        deadline = time.monotonic() + timeout
        while self._saves:
            try:
                self._saves[0].future.exception(max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                return False
            self._finish_save(self._saves.pop(0))
        return True

    def _finish_save(self, pending: _PendingSave) -> None:
        try:
            result = pending.future.result()
        except Exception as exc:  # the writer's own failure: reported, never lost
            result = SaveResult(SaveOutcome.FAILED, message=f"{type(exc).__name__}: {exc}")
        if result.ok:
            self._saved(pending, result)
        if not self._saves and self._check_deferred:
            self._check_deferred = False
            self.check_disk()  # a change seen while saving: what is on disk now?
        if result.outcome is SaveOutcome.CONFLICT and self.path == pending.target:
            self._show_save_conflict()
        elif not result.ok:  # shown last: no other banner hides why the save failed
            self.banner.show_message(
                f"Could not save {pending.target}: {result.message}. Your text is kept "
                "(unsaved): fix the cause, then save again or save elsewhere.",
                "error",
            )
        self.saveFinished.emit(result.ok)
        if pending.on_done is not None:
            pending.on_done(result.ok)

    def _saved(self, pending: _PendingSave, result: SaveResult) -> None:
        if self.path != pending.target:  # saved as another file meanwhile: that one is ours
            return
        self.disk = DiskState(result.mtime_ns, result.size, result.digest)
        self._written = (result.mtime_ns, result.size)
        self.conflict = self.deleted_on_disk = False
        if self._edit_version == pending.version:
            self.editor.setSavePoint()  # else typed meanwhile: still dirty
        self.banner.clear()
        self.saved.emit(str(self.path))

    def _show_save_conflict(self) -> None:
        assert self.path is not None
        self.conflict = True
        self.banner.show_message(
            f"{self.path.name} changed on disk since it was opened. Saving would "
            "overwrite those changes.",
            "warning",
            (
                ("Overwrite", lambda: self.save(overwrite=True)),
                ("Reload from disk (lose my changes)", self.reload_from_disk),
            ),
        )

    def disk_is_own_write(self) -> bool:
        """A save of ours is in flight, or the file is still the one our last save wrote (a
        watcher's event for it is not a change by someone else)."""
        if self._saves:
            return True
        if self._written is None or self.path is None:
            return False
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return (st.st_mtime_ns, st.st_size) == self._written

    def save_as(
        self, path: str | os.PathLike[str], on_done: Callable[[bool], object] | None = None
    ) -> bool:
        """Save under ``path`` from now on (the title changes at once); a failed save puts
        the old path back. Returns as ``save`` does."""
        old = (self.path, self.disk, self.read_only_reason, self.editor.language)
        old_key = self.backup_key
        self.path = Path(path).resolve()
        self.disk = None
        self.read_only_reason = None
        language = language_for_path(self.path, self.editor.line_text(0))
        if language is not self.editor.language:
            self.editor.set_language(language)
        target = self.path

        def restore() -> None:
            if self.path == target:
                self.path, self.disk, self.read_only_reason = old[0], old[1], old[2]
                if old[3] is not self.editor.language:
                    self.editor.set_language(old[3])

        def done(ok: bool) -> None:
            if ok and self._backups is not None and self._executor is not None:
                self._executor.submit(self._backups.remove, old_key)
            elif not ok:
                restore()
            self.titleChanged.emit()
            if on_done is not None:
                on_done(ok)

        started = self.save(overwrite=True, on_done=done)
        if not started:
            restore()
        self.titleChanged.emit()
        return started

    # ----- changes on disk ---------------------------------------------------------------
    def check_disk(self) -> DiskCheck:
        """Look at the file on disk; returns what happened (same, reloaded, conflict, changed:
        a banner offers a reload, deleted, or error)."""
        if self.path is None or self.disk is None or self.loading:
            return DiskCheck.SAME
        if self._saves:  # our own write is landing: look again when it has
            self._check_deferred = True
            return DiskCheck.SAME
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if not self.deleted_on_disk:
                self.deleted_on_disk = True
                self.banner.show_message(
                    f"{self.path.name} was deleted on disk. Your text is kept; save to "
                    "write it again.",
                    "warning",
                )
            return DiskCheck.DELETED
        except OSError:
            return DiskCheck.ERROR
        if (st.st_mtime_ns, st.st_size) == (self.disk.mtime_ns, self.disk.size) and not (
            self.deleted_on_disk
        ):
            return DiskCheck.SAME
        if st.st_size > SYNC_READ_MAX_BYTES or self.large:
            return self._big_file_changed()
        try:
            decoded, data, st = self._read_disk()
        except OSError:
            return DiskCheck.ERROR
        if _digest(data) == self.disk.digest:
            self.disk = DiskState(st.st_mtime_ns, st.st_size, self.disk.digest)
            if self.deleted_on_disk:
                self.deleted_on_disk = False
                self.banner.clear()
            return DiskCheck.SAME
        if not self.is_dirty():
            self._apply_decoded(decoded, data, st, keep_position=True)
            return DiskCheck.RELOADED
        self.conflict = True
        self.banner.show_message(
            f"{self.path.name} changed on disk and you have unsaved changes.",
            "warning",
            (
                ("Reload from disk (lose my changes)", self.reload_from_disk),
                ("Keep my changes", self.keep_mine),
            ),
        )
        return DiskCheck.CONFLICT

    def _big_file_changed(self) -> DiskCheck:
        """A big file changed on disk: never re-read on the UI thread; offer a reload."""
        assert self.path is not None
        if not self.is_dirty() and not self.large:
            self.reload_from_disk()
            return DiskCheck.RELOADED
        self.conflict = self.is_dirty()
        if self.conflict:
            self.banner.show_message(
                f"{self.path.name} changed on disk and you have unsaved changes.",
                "warning",
                (
                    ("Reload from disk (lose my changes)", self.reload_from_disk),
                    ("Keep my changes", self.keep_mine),
                ),
            )
            return DiskCheck.CONFLICT
        self.banner.show_message(
            f"{self.path.name} changed on disk.",
            "warning",
            (("Reload from disk", self.reload_from_disk),),
        )
        return DiskCheck.CHANGED

    def reload_from_disk(self) -> None:
        if self.path is None:
            return
        try:
            size = os.stat(self.path).st_size
        except OSError as exc:
            self.banner.show_message(f"Could not reload: {exc}", "error")
            return
        if size > SYNC_READ_MAX_BYTES:
            plan = plan_open(size, self._hard_limit)
            if plan is OpenPlan.REFUSE:
                self.banner.show_message(
                    refusal_message(self.path.name, size, self._hard_limit or hard_limit_bytes()),
                    "error",
                )
                return
            self._start_load(large=plan is OpenPlan.LARGE, keep_position=True)
            self.discard_backup()
            return
        try:
            decoded, data, st = self._read_disk()
        except OSError as exc:
            self.banner.show_message(f"Could not reload: {exc}", "error")
            return
        self._apply_decoded(decoded, data, st, keep_position=True)
        self.discard_backup()

    def keep_mine(self) -> None:
        """Keep the buffer; the next save overwrites the file on disk (the user chose so)."""
        if self.path is None:
            return
        try:
            data, st = self._read_raw()
        except OSError:
            self.banner.clear()
            return
        self.disk = DiskState(st.st_mtime_ns, st.st_size, _digest_later(data))
        self.conflict = False
        self.banner.clear()


def _is_long_line_note(reason: str | None) -> bool:
    return reason is not None and reason.startswith(f"Lines longer than {LONG_LINE_CHARS:,}")


class _LoadError:
    def __init__(self, message: str) -> None:
        self.message = message


class _Load:
    """One background load: the reader thread, its bounded queue of items (header, text
    pieces, done or error) and the UI timer that drains it. The thread never touches Qt."""

    def __init__(
        self,
        path: Path,
        *,
        default_eol: str,
        encoding: str | None,
        large: bool,
        hard_limit: int | None,
        keep_position: bool,
        position: tuple[int, int],
        long_lines: bool,
    ) -> None:
        self.items: queue.Queue[object] = queue.Queue(maxsize=8)  # bounds memory in flight
        self.cancel = threading.Event()
        self.progress = (0, 0)
        self.header: LoadHeader | None = None
        self.timer: QTimer | None = None
        self.keep_position = keep_position
        self.position = position
        self.thread = UiThread(
            target=self._run,
            name=f"load {path.name}",
            daemon=True,
            args=(path, default_eol, encoding, large, hard_limit, long_lines),
        )

    def _put(self, item: object) -> bool:
        while not self.cancel.is_set():
            try:
                self.items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(
        self,
        path: Path,
        default_eol: str,
        encoding: str | None,
        large: bool,
        hard_limit: int | None,
        long_lines: bool,
    ) -> None:
        def progress(done: int, total: int) -> None:
            self.progress = (done, total)

        try:
            for item in load_file(
                path,
                default_eol=default_eol,
                encoding=encoding,
                large=large,
                hard_limit=hard_limit,
                cancelled=self.cancel.is_set,
                progress=progress,
                long_lines=long_lines,
            ):
                if not self._put(item):
                    return
        except OSError as exc:
            self._put(_LoadError(exc.strerror or str(exc)))
        except Exception as exc:  # any failure ends the load with a message, never a hang
            self._put(_LoadError(f"{type(exc).__name__}: {exc}"))
