"""The Search panel (Ctrl+Shift+F, Ctrl+Shift+H with Replace): find in files, VS Code style.

The panel never searches on the UI thread: a search runs in a worker process
(``app.services.find_in_files.SearchService``), and a timer hands what arrived to the results tree
in slices of a few milliseconds, so typing, scrolling and repaints keep going while results
stream in with a count. A new search (typing, a toggle, a glob) cancels the running one; Stop
(or Esc in the panel) cancels it; a regex stuck in backtracking is killed with its process.

Results are grouped by file: each row is one match with its line number and the line, the
match highlighted; click or Enter opens the file at the match. With Replace open every match
shows its change (old text struck through, new text beside it) with a check box on the file and
on the match: the ticked set is applied together. Open documents are edited in their buffers,
one undo step each (they stay unsaved); closed files are written atomically by
``replace_in_file`` on a worker thread, in their own encoding and line endings; a file changed
since the search (on disk, or its buffer edited) is skipped and named.

``SearchHost`` is the seam to the window (folder, ignore settings, open documents, opening a
file at a match); ``WindowSearchHost`` is the real one and ``SearchDock`` puts the panel on the
window's left side.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QKeyEvent, QKeySequence, QPainter, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.services.find_in_files import SearchService, SearchSession
from forecode_core.workspace.search_text import (
    Edit,
    FileResult,
    QueryError,
    ReplaceOutcome,
    ReplaceStatus,
    SearchItem,
    SearchQuery,
    SearchRequest,
    SearchSummary,
    compile_query,
    digest_text,
    replace_in_file,
)

from .tasks import BackgroundTask
from .tool_button import tool_button

if TYPE_CHECKING:
    from .main_window import MainWindow

__all__ = ["FindInFilesPanel", "SearchDock", "SearchHost", "WindowSearchHost"]

SEARCH_DEBOUNCE_MS = 300
POLL_MS = 30
SLICE_MS = 8.0  # UI-thread time per poll for turning results into rows
STALL_NOTICE_S = 2.0

MATCH_INDICATOR = 27  # the opened match in the editor (find bar: 28, 29; apply review: 12)
INDIC_ROUNDBOX = 7
ROLE = Qt.ItemDataRole.UserRole + 1  # (Row.FILE, FileResult) or (Row.MATCH, path, line, ...)


class Row(StrEnum):
    """What a results row is (the first item of its ``ROLE`` data)."""

    FILE = "file"
    MATCH = "match"


class SearchHost(Protocol):
    def search_root(self) -> Path | None: ...
    def search_extra_patterns(self) -> Sequence[str]: ...
    def open_buffers(self) -> dict[str, str]:
        """The texts of the open documents in the folder (searched instead of the disk)."""
        ...

    def document_state(self, rel: str) -> tuple[str, str | None, bool, bool] | None:
        """An open document's (text, digest of the disk bytes it was read from, dirty,
        read-only), or None when the file is not open."""
        ...

    def edit_document(self, rel: str, edits: Sequence[Edit]) -> None:
        """Apply ``edits`` to the open document's buffer as one undo step."""
        ...

    def open_match(self, rel: str, line: int, start: int, end: int) -> None: ...


class _Delegate(QStyledItemDelegate):
    """Paints a row: a file (name, folder, count) or a match (line number, the line with the
    match highlighted, and with Replace open the change)."""

    def __init__(self, panel: FindInFilesPanel) -> None:
        super().__init__(panel)
        self.panel = panel

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        size = super().sizeHint(option, index)
        return QSize(size.width(), max(size.height(), option.fontMetrics.height() + 4))

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        data = index.data(ROLE)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else None
        if style is None or data is None:
            super().paint(painter, option, index)
            return
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        palette = opt.palette
        text_colour = palette.highlightedText().color() if selected else palette.text().color()
        dim = QColor(text_colour)
        dim.setAlpha(150)
        painter.save()
        painter.setClipRect(rect)
        fm = opt.fontMetrics
        x = rect.left() + 2
        baseline = rect.top() + (rect.height() + fm.ascent() - fm.descent()) // 2
        if data[0] is Row.FILE:
            result: FileResult = data[1]
            name = result.path.rsplit("/", 1)[-1]
            folder = result.path[: -len(name)].rstrip("/")
            bold = QFont(opt.font)
            bold.setBold(True)
            painter.setFont(bold)
            painter.setPen(text_colour)
            painter.drawText(x, baseline, name)
            x += painter.fontMetrics().horizontalAdvance(name) + 8
            painter.setFont(opt.font)
            painter.setPen(dim)
            count = str(result.match_count)
            badge_w = fm.horizontalAdvance(count) + 10
            painter.drawText(
                QRect(x, rect.top(), max(0, rect.right() - x - badge_w - 4), rect.height()),
                int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft),
                fm.elidedText(
                    folder, Qt.TextElideMode.ElideLeft, max(0, rect.right() - x - badge_w - 4)
                ),
            )
            badge = QRect(rect.right() - badge_w, rect.top() + 2, badge_w, rect.height() - 4)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(self.panel.badge_colour))
            painter.drawRoundedRect(badge, 6, 6)
            painter.setPen(QColor("#ffffff"))
            painter.drawText(badge, int(Qt.AlignmentFlag.AlignCenter), count)
        else:
            _kind, _path, line, match, preview, offset = data
            number = f"{line}"
            painter.setPen(dim)
            painter.drawText(x, baseline, number)
            x += fm.horizontalAdvance("0000") + 8
            start, end = match.start - offset, match.end - offset
            lead = preview[:start]
            # keep the match in view: trim the line's start
            lead = "…" + lead[-22:].lstrip() if len(lead) > 24 else lead.lstrip()
            old = preview[start:end]
            tail = preview[end:]
            painter.setPen(text_colour)
            painter.drawText(x, baseline, lead)
            x += fm.horizontalAdvance(lead)
            show_replace = self.panel.replace_visible() and match.replacement is not None
            w = fm.horizontalAdvance(old)
            painter.fillRect(
                QRect(x, rect.top() + 1, max(w, 2), rect.height() - 2),
                QColor(self.panel.removed_colour if show_replace else self.panel.match_colour),
            )
            font = QFont(opt.font)
            font.setStrikeOut(show_replace)
            painter.setFont(font)
            painter.drawText(x, baseline, old)
            painter.setFont(opt.font)
            x += w
            if show_replace:
                new = match.replacement or ""
                w = fm.horizontalAdvance(new)
                painter.fillRect(
                    QRect(x, rect.top() + 1, max(w, 2), rect.height() - 2),
                    QColor(self.panel.added_colour),
                )
                painter.drawText(x, baseline, new)
                x += w
            painter.drawText(x, baseline, tail)
        painter.restore()


class FindInFilesPanel(QWidget):
    """The Search view: query, toggles, replace, globs, status and grouped results."""

    message = Signal(str)
    replaced = Signal(object)  # list[ReplaceOutcome], after a Replace

    def __init__(
        self, host: SearchHost, parent: QWidget | None = None, service: SearchService | None = None
    ) -> None:
        super().__init__(parent)
        self.host = host
        self.service = service or SearchService()
        self.session: SearchSession | None = None
        self.summary: SearchSummary | None = None
        self.results: dict[str, FileResult] = {}
        self._file_items: dict[str, QTreeWidgetItem] = {}
        self._pending: deque[FileResult] = deque()
        self._unticked: set[tuple[str, int, int]] = set()  # kept across a re-search
        self._progress: SearchSummary | None = None
        self._started = 0.0
        self.error = ""
        self.outcome_text = ""
        self._searched_root: Path | None = None
        self.match_colour = "#7a5a1f"
        self.removed_colour = "#6b2a2a"
        self.added_colour = "#2c5a2c"
        self.badge_colour = "#4d5157"
        self._replace_task = BackgroundTask(self)
        self._replace_task.done.connect(self._on_replace_done)
        self._replace_task.failed.connect(lambda m: self._set_outcome(f"Replace failed: {m}"))
        self._replace_pending: list[ReplaceOutcome] = []

        self.query_edit = QLineEdit(self)
        self.query_edit.setPlaceholderText("Search")
        self.replace_edit = QLineEdit(self)
        self.replace_edit.setPlaceholderText("Replace")
        self.include_edit = QLineEdit(self)
        self.include_edit.setPlaceholderText("files to include (e.g. *.py, src/**)")
        self.exclude_edit = QLineEdit(self)
        self.exclude_edit.setPlaceholderText("files to exclude (e.g. tests, *.min.js)")
        self.expand_button = tool_button(self, "›", "Toggle Replace (Ctrl+Shift+H)")
        self.case_button = tool_button(self, "Aa", "Match Case (Alt+C)", checkable=True)
        self.word_button = tool_button(self, "ab", "Match Whole Word (Alt+W)", checkable=True)
        font = self.word_button.font()
        font.setUnderline(True)
        self.word_button.setFont(font)
        self.regex_button = tool_button(
            self, ".*", "Use Regular Expression (Alt+R)", checkable=True
        )
        self.replace_all_button = QPushButton("Replace All", self)
        self.replace_all_button.setToolTip("Replace the ticked matches (Ctrl+Alt+Enter)")
        self.replace_all_button.clicked.connect(self.replace_ticked)
        self.stop_button = tool_button(self, "■", "Stop the search (Esc)")
        self.stop_button.clicked.connect(self.cancel)
        self.stop_button.hide()
        self.status_label = QLabel(self)
        self.status_label.setWordWrap(True)
        self.outcome_label = QLabel(self)
        self.outcome_label.setWordWrap(True)
        self.outcome_label.hide()
        self.tree = QTreeWidget(self)
        self.tree.setHeaderHidden(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setRootIsDecorated(True)
        self.tree.setIndentation(12)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tree.setItemDelegate(_Delegate(self))
        self.tree.itemClicked.connect(lambda item, _c: self._open_item(item))
        self.tree.itemActivated.connect(lambda item, _c: self._open_item(item))
        self.tree.itemChanged.connect(self._on_item_changed)

        query_row = QHBoxLayout()
        query_row.setSpacing(2)
        query_row.addWidget(self.query_edit, 1)
        for button in (self.case_button, self.word_button, self.regex_button):
            query_row.addWidget(button)
        self._replace_row = QWidget(self)
        replace_row = QHBoxLayout(self._replace_row)
        replace_row.setContentsMargins(0, 0, 0, 0)
        replace_row.setSpacing(2)
        replace_row.addWidget(self.replace_edit, 1)
        replace_row.addWidget(self.replace_all_button)
        self._replace_row.hide()
        fields = QVBoxLayout()
        fields.setSpacing(3)
        fields.addLayout(query_row)
        fields.addWidget(self._replace_row)
        top = QHBoxLayout()
        top.setSpacing(2)
        top.addWidget(self.expand_button, 0, Qt.AlignmentFlag.AlignTop)
        top.addLayout(fields, 1)
        status_row = QHBoxLayout()
        status_row.addWidget(self.status_label, 1)
        status_row.addWidget(self.stop_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(self.include_edit)
        layout.addWidget(self.exclude_edit)
        layout.addLayout(status_row)
        layout.addWidget(self.outcome_label)
        layout.addWidget(self.tree, 1)
        self.setMinimumWidth(260)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(SEARCH_DEBOUNCE_MS)
        self._debounce.timeout.connect(self.search_now)
        self._button_timer = QTimer(self)
        self._button_timer.setSingleShot(True)
        self._button_timer.setInterval(0)
        self._button_timer.timeout.connect(self._update_replace_button)
        self._poll = QTimer(self)
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._drain)
        for edit in (self.query_edit, self.include_edit, self.exclude_edit, self.replace_edit):
            edit.textChanged.connect(self._schedule)
            edit.returnPressed.connect(self.search_now)
        for button in (self.case_button, self.word_button, self.regex_button):
            button.toggled.connect(self._schedule)
        self.expand_button.clicked.connect(
            lambda: self.set_replace_visible(not self.replace_visible())
        )
        for keys, slot in (
            ("Alt+C", self.case_button.toggle),
            ("Alt+W", self.word_button.toggle),
            ("Alt+R", self.regex_button.toggle),
            ("Ctrl+Alt+Return", self.replace_ticked),
        ):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
        self.query_edit.installEventFilter(self)
        self._update_status()

    # ----- the query -------------------------------------------------------------------------
    def query(self) -> SearchQuery:
        replacement = self.replace_edit.text() if self.replace_visible() else None
        return SearchQuery(
            self.query_edit.text(),
            regex=self.regex_button.isChecked(),
            match_case=self.case_button.isChecked(),
            whole_word=self.word_button.isChecked(),
            include=self.include_edit.text(),
            exclude=self.exclude_edit.text(),
            replacement=replacement,
        )

    def replace_visible(self) -> bool:
        return not self._replace_row.isHidden()

    def set_replace_visible(self, visible: bool) -> None:
        if visible == self.replace_visible():
            return
        self._replace_row.setVisible(visible)
        self.expand_button.setText("⌄" if visible else "›")
        self.search_now()  # the rows gain (or lose) their changes and check boxes

    def focus_query(self) -> None:
        self.query_edit.setFocus()
        self.query_edit.selectAll()

    def _schedule(self) -> None:
        self._debounce.start()

    # ----- searching -------------------------------------------------------------------------
    def search_now(self) -> None:
        """Start the search for the fields' query now (cancelling one that runs)."""
        self._debounce.stop()
        self.cancel(quiet=True)
        self._clear_results()
        self.error = ""
        query = self.query()
        root = self.host.search_root()
        if not query.pattern:
            self._update_status()
            return
        if root is None:
            self.error = "Open a folder first: Find in Files searches the open folder."
            self._update_status()
            return
        try:
            compile_query(query)  # a bad regex or replacement: said at once, no process
        except QueryError as exc:
            self.error = str(exc)
            self._update_status()
            return
        request = SearchRequest(
            str(root), query, tuple(self.host.search_extra_patterns()), self.host.open_buffers()
        )
        self._searched_root = root
        self._started = time.monotonic()
        self.session = self.service.start(request)
        self._poll.start()
        self._update_status()

    def cancel(self, quiet: bool = False) -> None:
        """Stop the running search (its results so far stay)."""
        session, self.session = self.session, None
        self._poll.stop()
        if session is not None and not session.done:
            session.cancel()
            if not quiet:
                self._drain_session(session)
                self.summary = self._progress or SearchSummary()
                self.summary.cancelled = True
        self._update_status()

    def running(self) -> bool:
        return self.session is not None

    def _clear_results(self) -> None:
        self.tree.clear()
        self._file_items.clear()
        self.results.clear()
        self._pending.clear()
        self.summary = None
        self._progress = None

    def _drain_session(self, session: SearchSession) -> None:
        for item in session.poll(5000):
            if isinstance(item, FileResult):
                self._pending.append(item)
        self._add_pending(budget_ms=1e9)

    def _drain(self) -> None:
        session = self.session
        if session is None:
            self._poll.stop()
            return
        for item in session.poll(2000):
            if isinstance(item, FileResult):
                self._pending.append(item)
            elif item[0] == SearchItem.PROGRESS:
                self._progress = item[1]
            else:
                self.summary = item[1]
        self._add_pending(SLICE_MS)
        if session.done and not self._pending:
            self.session = None
            self._poll.stop()
            if self.summary is not None and self.summary.error:
                self.error = self.summary.error
        self._update_status()

    def _add_pending(self, budget_ms: float) -> None:
        deadline = time.perf_counter() + budget_ms / 1000
        self.tree.setUpdatesEnabled(False)
        self.tree.blockSignals(True)
        try:
            while self._pending and time.perf_counter() < deadline:
                self._add_file(self._pending.popleft())
        finally:
            self.tree.blockSignals(False)
            self.tree.setUpdatesEnabled(True)

    def _add_file(self, result: FileResult) -> None:
        self.results[result.path] = result
        checkable = self.replace_visible()
        file_item = QTreeWidgetItem(self.tree)
        file_item.setData(0, ROLE, (Row.FILE, result))
        file_item.setToolTip(0, result.path)
        flags = file_item.flags()
        if checkable:
            file_item.setFlags(
                flags | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsAutoTristate
            )
        children = []
        for line in result.lines:
            for match in line.matches:
                child = QTreeWidgetItem()
                child.setData(
                    0,
                    ROLE,
                    (Row.MATCH, result.path, line.line, match, line.preview, line.preview_offset),
                )
                if checkable:
                    child.setFlags(child.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    unticked = (result.path, line.line, match.start) in self._unticked
                    child.setCheckState(
                        0, Qt.CheckState.Unchecked if unticked else Qt.CheckState.Checked
                    )
                children.append(child)
        file_item.addChildren(children)
        file_item.setExpanded(True)
        self._file_items[result.path] = file_item

    # ----- status ------------------------------------------------------------------------------
    def _update_status(self) -> None:
        running = self.session is not None
        self.stop_button.setVisible(running)
        if running:
            self.replace_all_button.setEnabled(False)
        summary = self.summary if not running else self._progress
        matches = sum(r.match_count for r in self.results.values())
        files = len(self.results)
        palette_error = "color: #e5534b;"
        if self.error:
            self.status_label.setStyleSheet(palette_error)
            self.status_label.setText(self.error)
        elif running:
            self.status_label.setStyleSheet("")
            searched = summary.files_searched if summary is not None else 0
            text = (
                f"Searching… {searched:,} files · {_results(matches)} in {_plural(files, 'file')}"
            )
            session = self.session
            assert session is not None
            quiet = time.monotonic() - max(session.last_event, self._started)
            if quiet > STALL_NOTICE_S:
                text += (
                    f" · no progress for {quiet:.0f} s (a slow regular expression?); Stop ends it"
                )
            self.status_label.setText(text)
        elif summary is not None:
            self.status_label.setStyleSheet("")
            if summary.cancelled:
                text = f"Stopped · {_results(matches)} in {_plural(files, 'file')}"
            elif matches == 0:
                text = f"No results in {_plural(summary.files_searched, 'file')}"
            else:
                text = f"{_results(matches)} in {_plural(files, 'file')}"
            if summary.capped:
                text += f" · results capped at {summary.matches:,}"
            skipped = []
            if summary.skipped_binary:
                skipped.append(f"{summary.skipped_binary:,} binary")
            if summary.skipped_large:
                skipped.append(f"{summary.skipped_large:,} over 4 MB")
            if summary.skipped_unreadable:
                skipped.append(f"{summary.skipped_unreadable:,} unreadable")
            if skipped:
                text += " · skipped " + ", ".join(skipped)
            self.status_label.setText(text)
        else:
            self.status_label.setStyleSheet("")
            self.status_label.setText("")
        if not running:
            self._button_timer.start()

    def _update_replace_button(self) -> None:
        ticked = self._ticked() if self.session is None else {}
        count = sum(len(e) for e in ticked.values())
        self.replace_all_button.setEnabled(count > 0)
        self.replace_all_button.setText(
            f"Replace {count:,} in {_plural(len(ticked), 'file')}" if count else "Replace All"
        )

    def status_text(self) -> str:
        return self.status_label.text()

    # ----- opening a match --------------------------------------------------------------------
    def _folder_changed(self) -> bool:
        """True (and the results cleared, with a word) when the window's folder is no longer
        the one the results come from."""
        if self.host.search_root() == self._searched_root:
            return False
        self.cancel(quiet=True)
        self._clear_results()
        self.error = "The folder changed since this search: search again."
        self._update_status()
        return True

    def _open_item(self, item: QTreeWidgetItem) -> None:
        data = item.data(0, ROLE)
        if data is None or self._folder_changed():
            return
        if data[0] is Row.FILE:
            result: FileResult = data[1]
            line = result.lines[0]
            self.host.open_match(result.path, line.line, line.matches[0].start, line.matches[0].end)
            return
        _kind, path, line_no, match, _preview, _offset = data
        self.host.open_match(path, line_no, match.start, match.end)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.session is not None:
            self.cancel()
            return
        super().keyPressEvent(event)

    def eventFilter(self, watched: object, event: object) -> bool:
        # Down from the search field goes to the results.
        if (
            watched is self.query_edit
            and isinstance(event, QKeyEvent)
            and event.type() == QKeyEvent.Type.KeyPress
            and event.key() == Qt.Key.Key_Down
            and self.tree.topLevelItemCount()
        ):
            self.tree.setFocus()
            first = self.tree.topLevelItem(0)
            target = first.child(0) if first is not None and first.childCount() else first
            self.tree.setCurrentItem(target)
            return True
        return super().eventFilter(watched, event)  # type: ignore[arg-type]

    # ----- replacing -----------------------------------------------------------------------
    def _on_item_changed(self, item: QTreeWidgetItem, _column: int) -> None:
        data = item.data(0, ROLE)
        if data is not None and data[0] is Row.MATCH:
            key = (data[1], data[2], data[3].start)
            if item.checkState(0) == Qt.CheckState.Unchecked:
                self._unticked.add(key)
            else:
                self._unticked.discard(key)
        self._button_timer.start()  # once, after a file's box ticked all its matches

    def _ticked(self) -> dict[str, list[Edit]]:
        out: dict[str, list[Edit]] = {}
        if not self.replace_visible():
            return out
        for path, file_item in self._file_items.items():
            edits = []
            for i in range(file_item.childCount()):
                child = file_item.child(i)
                if child.checkState(0) != Qt.CheckState.Checked:
                    continue
                _kind, _path, line, match, _preview, _offset = child.data(0, ROLE)
                if match.replacement is not None:
                    edits.append(Edit(line, match.start, match.end, match.replacement))
            if edits:
                out[path] = edits
        return out

    def ticked_count(self) -> int:
        return sum(len(e) for e in self._ticked().values())

    def set_ticked(self, path: str, ticked: bool, line: int | None = None) -> None:
        """Tick or untick a file's matches (all, or those on ``line``), as a click would."""
        file_item = self._file_items[path]
        state = Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked
        if line is None:
            file_item.setCheckState(0, state)
            return
        for i in range(file_item.childCount()):
            child = file_item.child(i)
            if child.data(0, ROLE)[2] == line:
                child.setCheckState(0, state)

    def replace_ticked(self) -> None:
        """Apply the ticked changes: open documents in their buffers (one undo step each),
        closed files on a worker thread; files changed since the search are skipped."""
        if self.session is not None:
            self.message.emit("Wait for the search to finish (or stop it) before replacing.")
            return
        ticked = self._ticked()
        if not ticked or self._folder_changed():
            return
        root = self.host.search_root()
        if root is None:
            return
        outcomes: list[ReplaceOutcome] = []
        closed: list[tuple[str, str, list[Edit]]] = []
        for path, edits in ticked.items():
            result = self.results[path]
            state = self.host.document_state(path)
            if state is None:
                if result.buffer:  # searched in a buffer that has been closed since
                    outcomes.append(
                        ReplaceOutcome(
                            path, ReplaceStatus.CHANGED, 0, "was closed since the search"
                        )
                    )
                else:
                    closed.append((path, result.digest, edits))
                continue
            text, disk_digest, dirty, read_only = state
            if read_only:
                outcomes.append(ReplaceOutcome(path, ReplaceStatus.FAILED, 0, "is read-only"))
                continue
            same = (
                digest_text(text) == result.digest
                if result.buffer
                else not dirty and disk_digest == result.digest
            )
            if not same:
                outcomes.append(
                    ReplaceOutcome(path, ReplaceStatus.CHANGED, 0, "changed since the search")
                )
                continue
            try:
                self.host.edit_document(path, edits)
            except ValueError as exc:
                outcomes.append(ReplaceOutcome(path, ReplaceStatus.FAILED, 0, str(exc)))
                continue
            outcomes.append(ReplaceOutcome(path, ReplaceStatus.BUFFER, len(edits)))
        self._replace_pending = outcomes
        if not closed:
            self._on_replace_done([])
            return
        self.replace_all_button.setEnabled(False)
        self._set_outcome(f"Replacing in {_plural(len(closed), 'file')}…")

        def write(cancel: threading.Event) -> list[ReplaceOutcome]:
            done = []
            for path, digest, edits in closed:
                if cancel.is_set():
                    break
                outcome = replace_in_file(root / path, digest, edits)
                done.append(ReplaceOutcome(path, outcome.status, outcome.replaced, outcome.message))
            return done

        self._replace_task.start(write)

    def _on_replace_done(self, written: object) -> None:
        assert isinstance(written, list)
        outcomes = self._replace_pending + written
        self._replace_pending = []
        replaced = sum(o.replaced for o in outcomes)
        changed_files = [o for o in outcomes if o.status.replaced]
        in_buffers = [o for o in outcomes if o.status == ReplaceStatus.BUFFER]
        skipped = [o.path for o in outcomes if o.status == ReplaceStatus.CHANGED]
        failed = [o for o in outcomes if o.status == ReplaceStatus.FAILED]
        text = (
            f"Replaced {_plural(replaced, 'match', 'matches')} in "
            f"{_plural(len(changed_files), 'file')}"
        )
        if in_buffers:
            text += (
                f" ({_plural(len(in_buffers), 'open file')} changed in the editor, "
                "unsaved; Ctrl+Z undoes each)"
            )
        text += "."
        if skipped:
            text += " Skipped, changed since the search: " + ", ".join(skipped) + "."
        if failed:
            text += " Not changed: " + "; ".join(f"{o.path} ({o.message})" for o in failed) + "."
        self._set_outcome(text)
        self.replaced.emit(outcomes)
        self.message.emit(text)
        self._unticked.clear()
        self.search_now()  # the results show what is left

    def _set_outcome(self, text: str) -> None:
        self.outcome_text = text
        self.outcome_label.setText(text)
        self.outcome_label.setVisible(bool(text))

    # ----- life cycle --------------------------------------------------------------------------
    def apply_theme(self, dark: bool) -> None:
        if dark:
            self.match_colour, self.removed_colour, self.added_colour = (
                "#7a5a1f",
                "#6b2a2a",
                "#2c5a2c",
            )
            self.badge_colour = "#4d5157"
        else:
            self.match_colour, self.removed_colour, self.added_colour = (
                "#f8d66d",
                "#f4b8b8",
                "#b8e6b8",
            )
            self.badge_colour = "#8a8f98"
        self.tree.viewport().update()

    def shutdown(self) -> None:
        """Stop the search and the worker processes (the window is closing)."""
        self._debounce.stop()
        self.cancel(quiet=True)
        self._replace_task.cancel()
        self.service.close()


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else plural or word + 's'}"


def _results(n: int) -> str:
    return _plural(n, "result")


class WindowSearchHost:
    """The window's side of the panel: its folder, ``files.exclude``, its open documents."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window

    def search_root(self) -> Path | None:
        return self.window.root

    def search_extra_patterns(self) -> Sequence[str]:
        return tuple(self.window.settings.files_exclude)

    def _documents(self) -> dict[str, object]:
        root = self.window.root
        out: dict[str, object] = {}
        if root is None:
            return out
        for doc in self.window.documents():
            if doc.path is None:
                continue
            try:
                out[doc.path.relative_to(root).as_posix()] = doc
            except ValueError:
                continue
        return out

    def open_buffers(self) -> dict[str, str]:
        from .document import Document

        out = {}
        for rel, doc in self._documents().items():
            assert isinstance(doc, Document)
            if not doc.read_only_reason:
                out[rel] = doc.editor.text()
        return out

    def document_state(self, rel: str) -> tuple[str, str | None, bool, bool] | None:
        from .document import Document

        doc = self._documents().get(rel)
        if not isinstance(doc, Document):
            return None
        return (
            doc.editor.text(),
            doc.disk.digest if doc.disk else None,
            doc.is_dirty(),
            bool(doc.read_only_reason or doc.editor.readOnly()),
        )

    def edit_document(self, rel: str, edits: Sequence[Edit]) -> None:
        from .document import Document

        doc = self._documents().get(rel)
        assert isinstance(doc, Document)
        editor = doc.editor
        targets = []
        for edit in edits:
            line = edit.line - 1
            if line >= editor.lineCount():
                raise ValueError(f"line {edit.line} is past the end of the document")
            text = editor.line_text(line)
            if edit.end > len(text):
                raise ValueError(f"a change on line {edit.line} does not fit the document")
            base = editor.positionFromLine(line)
            targets.append(
                (
                    base + len(text[: edit.start].encode("utf-8")),
                    base + len(text[: edit.end].encode("utf-8")),
                    edit.text,
                )
            )
        targets.sort(reverse=True)
        editor.beginUndoAction()
        try:
            for start, end, new in targets:  # last first: earlier positions stay valid
                editor.setTargetRange(start, end)
                editor.replaceTarget(-1, new)
        finally:
            editor.endUndoAction()

    def open_match(self, rel: str, line: int, start: int, end: int) -> None:
        window = self.window
        if window.root is None:
            return
        doc = window.open_file(window.root / rel)
        if doc is None:
            return
        editor = doc.editor
        index = max(0, min(line - 1, editor.lineCount() - 1))
        text = editor.line_text(index)
        base = editor.positionFromLine(index)
        a = base + len(text[:start].encode("utf-8"))
        b = base + len(text[:end].encode("utf-8"))
        editor.go_to_line(line, 1)
        editor.setSelection(b, a)  # caret at the match's end, like VS Code
        editor.scrollRange(a, b)
        # marked over the text too: the caret line hides an unfocused selection
        for other in window.documents():
            other.editor.setIndicatorCurrent(MATCH_INDICATOR)
            other.editor.indicatorClearRange(0, other.editor.textLength())
        editor.indicSetStyle(MATCH_INDICATOR, INDIC_ROUNDBOX)
        editor.indicSetFore(MATCH_INDICATOR, 0x2E9BE5)  # amber (BGR)
        editor.indicSetAlpha(MATCH_INDICATOR, 90)
        editor.indicSetOutlineAlpha(MATCH_INDICATOR, 255)
        editor.setIndicatorCurrent(MATCH_INDICATOR)
        editor.indicatorFillRange(a, b - a)
        # after the click that opened it is done: the match shows as the active selection
        QTimer.singleShot(0, editor, editor.focus)


class SearchDock(QDockWidget):
    """The Search panel on the window's left; the explorer steps aside while it is shown."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__("Search", window)
        self.setObjectName("searchDock")
        self.window_ = window
        self.host = WindowSearchHost(window)
        self.panel = FindInFilesPanel(self.host, self)
        self.panel.message.connect(lambda text: window.show_message(text, 10000))
        self.setWidget(self.panel)
        self.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetClosable
            | QDockWidget.DockWidgetFeature.DockWidgetMovable
        )
        self.setAllowedAreas(
            Qt.DockWidgetArea.LeftDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea
        )
        window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self)
        self._tree_was_visible: bool | None = None
        self._sized = False
        self.visibilityChanged.connect(self._on_visibility)
        self.hide()

    def open(self, replace: bool = False) -> None:
        """Show the panel, seeded with the editor's one-line selection, focus in the query."""
        window = self.window_
        doc = window.current_document()
        if doc is not None and not doc.editor.selectionEmpty():
            start, end = doc.editor.selectionStart(), doc.editor.selectionEnd()
            selected = bytes(doc.editor.textRange(start, end).data()).decode("utf-8", "replace")
            if selected and "\n" not in selected and "\r" not in selected:
                self.panel.query_edit.setText(selected)
        self.panel.apply_theme(window.settings.theme != "light")
        self.panel.service.warm()  # the first search starts without waiting for a process
        if self.isHidden():
            if self._tree_was_visible is None:
                self._tree_was_visible = window.tree.isVisible()
            window.tree.hide()
            self.show()
            if not self._sized:
                self._sized = True
                window.resizeDocks([self], [340], Qt.Orientation.Horizontal)
        self.raise_()
        if replace:
            self.panel.set_replace_visible(True)
        self.panel.focus_query()

    def _on_visibility(self, visible: bool) -> None:
        if not visible and not self.isVisible() and self._tree_was_visible is not None:
            if self._tree_was_visible:
                self.window_.tree.show()
            self._tree_was_visible = None
