"""A VS Code-like find/replace bar for a :class:`ScintillaEdit`.

Searching is done by Scintilla itself (``searchInTarget``), so positions are always
byte offsets into the editor's UTF-8 text and never need converting; only the
*length* of the query/replacement passed to Scintilla is a byte count.

Regular expressions use Scintilla's C++11 engine (``SCFIND_REGEXP | SCFIND_CXX11REGEX``),
i.e. ECMAScript syntax: ``\\d``, ``\\w``, ``\\b``, ``(?:...)``, ``(?=...)``, ``{m,n}``,
non-greedy ``*?``; no look-behind. Matches never span lines (Scintilla searches line by
line). Case-insensitive regex matching only folds ASCII letters.

In a regex replacement, ``$1``..``$9`` and ``\\1``..``\\9`` insert a group, ``$&``, ``$0``
and ``\\0`` the whole match, ``$$`` a dollar sign, ``\\n`` / ``\\t`` a newline / tab and
``\\\\`` a backslash. Without regex, the replacement is inserted literally.

Scintilla reports an invalid regex by returning -1 from ``searchInTarget`` (not -2)
and setting the editor status to ``SC_STATUS_WARN_REGEX`` (1001), which stays set until
reset; the bar resets it before every regex search.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass

import shiboken6
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QToolButton, QVBoxLayout, QWidget
from pyside6_scintilla import ScintillaEdit

from app.ui.tool_button import tool_button

SCFIND_WHOLEWORD = 0x2
SCFIND_MATCHCASE = 0x4
SCFIND_WORDSTART = 0x00100000
SCFIND_REGEXP = 0x00200000
SCFIND_POSIX = 0x00400000
SCFIND_CXX11REGEX = 0x00800000

SC_STATUS_OK = 0
SC_STATUS_WARN_REGEX = 1001
SC_UPDATE_SELECTION = 0x2
INDIC_ROUNDBOX = 7

#: Stop counting/highlighting after this many matches (the label then shows "N+").
MAX_MATCHES = 10_000
#: Delay before matches are recounted after the document text changes.
TEXT_CHANGE_DEBOUNCE_MS = 150
#: Above this many bytes, typing in the query searches after a short pause, not per key.
LARGE_DOCUMENT_BYTES = 1_000_000
QUERY_DEBOUNCE_MS = 120

INVALID_REGEX = "Invalid regular expression"
NO_RESULTS = "No results"

_REGEX_SPECIAL = frozenset("\\^$.|?*+()[]{}")
_INVALID_STYLE = "QLineEdit { border: 1px solid #e51400; }"


class InvalidRegexError(ValueError):
    """Scintilla rejected the regular expression."""


@dataclass(frozen=True)
class _Query:
    text: str
    length: int  # UTF-8 byte length, as Scintilla wants it
    flags: int
    regex: bool
    word_filter: bool  # whole word with regex: Scintilla ignores SCFIND_WHOLEWORD there


def escape_regex(text: str) -> str:
    """Escape *text* so the ECMAScript regex engine matches it literally."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in text)


def to_scintilla_replacement(text: str) -> str:
    """Translate ``$1``/``$&``/``$$`` (VS Code style) into Scintilla's ``\\1``/``\\0``/``$``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if c == "\\" and nxt:
            out.append(c + nxt)  # Scintilla handles \0-\9, \n, \t, \\ ... itself
            i += 2
        elif c == "$" and nxt and nxt in "0123456789":
            out.append("\\" + nxt)
            i += 2
        elif c == "$" and nxt == "&":
            out.append("\\0")
            i += 2
        elif c == "$" and nxt == "$":
            out.append("$")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _regex_error_message(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"{INVALID_REGEX}: {exc.msg}"
    return INVALID_REGEX


class FindBar(QWidget):
    """Find/replace bar. Construct it hidden; ``open_find``/``open_replace`` show it."""

    #: Scintilla indicator used to highlight all matches (container range is 8..31).
    INDICATOR = 28
    #: Highlight colour as 0xBBGGRR.
    HIGHLIGHT_BGR = 0x0096FF
    #: The current match: a box drawn over the text, so it shows while the bar has the focus
    #: (the editor's caret line is painted over its inactive selection and under-text marks).
    CURRENT_INDICATOR = 29
    CURRENT_BGR = 0x30D8FF  # a brighter amber than the other matches'

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._editor: ScintillaEdit | None = None
        self._active = False  # bar opened (highlights shown, text changes tracked)
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._capped = False
        self._dirty = True
        self._invalid = ""  # error message when the regex is invalid
        self._message = ""  # transient message such as "Replaced 3"
        self._guard = False  # our own edits: ignore the editor's change notifications
        self._current: tuple[int, int] | None = None  # the match marked as current

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(TEXT_CHANGE_DEBOUNCE_MS)
        self._timer.timeout.connect(self._refresh_after_edit)
        self._query_timer = QTimer(self)
        self._query_timer.setSingleShot(True)
        self._query_timer.setInterval(QUERY_DEBOUNCE_MS)
        self._query_timer.timeout.connect(self._apply_query)

        self.query_edit = QLineEdit(self)
        self.query_edit.setPlaceholderText("Find")
        self.query_edit.setClearButtonEnabled(False)
        self.replace_edit = QLineEdit(self)
        self.replace_edit.setPlaceholderText("Replace")

        self.expand_button = tool_button(self, "›", "Toggle Replace (Ctrl+H)")
        self.case_button = tool_button(self, "Aa", "Match Case (Alt+C)", checkable=True)
        self.word_button = tool_button(self, "ab", "Match Whole Word (Alt+W)", checkable=True)
        self.regex_button = tool_button(
            self, ".*", "Use Regular Expression (Alt+R)", checkable=True
        )
        self.count_label = QLabel(self)
        self.count_label.setMinimumWidth(self.count_label.fontMetrics().horizontalAdvance("0") * 14)
        self.prev_button = tool_button(self, "↑", "Previous Match (Shift+Enter)")
        self.next_button = tool_button(self, "↓", "Next Match (Enter)")
        self.close_button = tool_button(self, "×", "Close (Escape)")
        self.replace_button = tool_button(self, "Replace", "Replace (Enter)")
        self.replace_all_button = tool_button(self, "Replace All", "Replace All (Ctrl+Alt+Enter)")

        find_row = QHBoxLayout()
        find_row.setContentsMargins(0, 0, 0, 0)
        find_row.setSpacing(2)
        find_row.addWidget(self.expand_button)
        find_row.addWidget(self.query_edit, 1)
        for w in (self.case_button, self.word_button, self.regex_button, self.count_label):
            find_row.addWidget(w)
        for w in (self.prev_button, self.next_button, self.close_button):
            find_row.addWidget(w)

        self._replace_row = QWidget(self)
        replace_row = QHBoxLayout(self._replace_row)
        replace_row.setContentsMargins(self.expand_button.sizeHint().width() + 2, 0, 0, 0)
        replace_row.setSpacing(2)
        replace_row.addWidget(self.replace_edit, 1)
        replace_row.addWidget(self.replace_button)
        replace_row.addWidget(self.replace_all_button)
        replace_row.addStretch(0)
        self._replace_row.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 3, 4, 3)
        layout.setSpacing(2)
        layout.addLayout(find_row)
        layout.addWidget(self._replace_row)

        self.query_edit.textChanged.connect(self._on_query_changed)
        for button in (self.case_button, self.word_button, self.regex_button):
            button.toggled.connect(self._on_query_changed)
        self.expand_button.clicked.connect(self._toggle_replace)
        self.prev_button.clicked.connect(self.find_previous)
        self.next_button.clicked.connect(self.find_next)
        self.close_button.clicked.connect(self.close_bar)
        self.replace_button.clicked.connect(self.replace_one)
        self.replace_all_button.clicked.connect(self.replace_all)
        for watched in (self.query_edit, self.replace_edit, self):
            watched.installEventFilter(self)
        self.hide()

    # ------------------------------------------------------------------ editor
    def editor(self) -> ScintillaEdit | None:
        return self._editor

    def set_editor(self, editor: ScintillaEdit | None) -> None:
        """Search in *editor* from now on (``None`` detaches the bar)."""
        if editor is self._editor:
            return
        old = self._editor
        if old is not None and shiboken6.isValid(old):
            old.notifyChange.disconnect(self._on_text_changed)
            old.updateUi.disconnect(self._on_update_ui)
            old.destroyed.disconnect(self._on_editor_destroyed)
            self._clear_highlights(old)
        self._editor = editor
        self._dirty = True
        self._message = ""
        if editor is not None:
            editor.indicSetStyle(self.INDICATOR, INDIC_ROUNDBOX)
            editor.indicSetFore(self.INDICATOR, self.HIGHLIGHT_BGR)
            editor.indicSetAlpha(self.INDICATOR, 70)
            editor.indicSetOutlineAlpha(self.INDICATOR, 160)
            editor.indicSetUnder(self.INDICATOR, True)
            editor.indicSetStyle(self.CURRENT_INDICATOR, INDIC_ROUNDBOX)
            editor.indicSetFore(self.CURRENT_INDICATOR, self.CURRENT_BGR)
            editor.indicSetAlpha(self.CURRENT_INDICATOR, 90)
            editor.indicSetOutlineAlpha(self.CURRENT_INDICATOR, 255)
            editor.indicSetUnder(self.CURRENT_INDICATOR, False)
            editor.notifyChange.connect(self._on_text_changed)
            editor.updateUi.connect(self._on_update_ui)
            editor.destroyed.connect(self._on_editor_destroyed)
        self.refresh()

    def _on_editor_destroyed(self) -> None:
        self._editor = None
        self._starts, self._ends = [], []
        self._timer.stop()

    # ------------------------------------------------------------------ open / close
    def open_find(self) -> None:
        """Show the find row (Ctrl+F), seeded with a one-line selection, and focus the query."""
        self._open(replace=False)

    def open_replace(self) -> None:
        """Show the find and replace rows (Ctrl+H)."""
        self._open(replace=True)

    def _open(self, *, replace: bool) -> None:
        self._active = True
        self._message = ""
        self._replace_row.setVisible(replace)
        self.expand_button.setText("⌄" if replace else "›")
        self.show()
        seeded = self._seed_from_selection()
        if not seeded:
            self.refresh()
        # Ctrl+F and Ctrl+H both put the focus in Find with its text selected (type to replace
        # it, Tab to reach Replace), also after Esc closed the bar.
        self.query_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.query_edit.selectAll()

    def _seed_from_selection(self) -> bool:
        ed = self._editor
        if ed is None or ed.selectionEmpty():
            return False
        raw = ed.getSelText().data()
        text = bytes(raw).rstrip(b"\0").decode("utf-8", errors="replace")
        if not text or "\n" in text or "\r" in text:
            return False
        if self.regex_button.isChecked():
            text = escape_regex(text)
        if text == self.query_edit.text():
            return False
        self.query_edit.setText(text)  # searches from the selection start: finds itself
        return True

    def _toggle_replace(self) -> None:
        if self._replace_row.isVisible():
            self._replace_row.hide()
            self.expand_button.setText("›")
            self.query_edit.setFocus()
        else:
            self.open_replace()

    def close_bar(self) -> None:
        """Hide the bar, drop the highlights and give the focus back to the editor."""
        self._flush_query()
        self._active = False
        self._timer.stop()
        self.hide()
        ed = self._editor
        if ed is not None:
            self._clear_highlights(ed)
            # ScintillaEdit.setFocus is SCI_SETFOCUS(bool) and shadows QWidget.setFocus
            QWidget.setFocus(ed, Qt.FocusReason.OtherFocusReason)

    def is_open(self) -> bool:
        return self._active

    # ------------------------------------------------------------------ public search API
    def find_next(self) -> bool:
        """Select the next match after the selection, wrapping around; False if none."""
        return self._step(forward=True)

    def find_previous(self) -> bool:
        """Select the previous match before the selection, wrapping around; False if none."""
        return self._step(forward=False)

    def match_count(self) -> int:
        """Number of matches in the document (capped at ``MAX_MATCHES``)."""
        self._flush_query()
        self._ensure_matches()
        return len(self._starts)

    def status_text(self) -> str:
        return self.count_label.text()

    def refresh(self) -> None:
        """Recount and re-highlight now (e.g. after the editor switched documents)."""
        self._recompute()
        self._update_label()

    def replace_one(self) -> bool:
        """Replace the selected match and select the next one.

        If the selection is not a match, only move to the next match (like VS Code).
        Returns True if something was replaced.
        """
        self._flush_query()
        ed, q = self._editor, self._query()
        if ed is None or q is None:
            return False
        self._message = ""
        sel_s, sel_e = ed.selectionStart(), ed.selectionEnd()
        try:
            m = self._search(ed, q, sel_s, ed.textLength())
        except InvalidRegexError as exc:
            self._set_invalid(str(exc))
            return False
        if m != (sel_s, sel_e):
            self._step(forward=True)
            return False
        # the search left the target on the match (and its groups, for the regex case)
        self._guard = True
        try:
            end = sel_s + self._replace_target(ed, q)
        finally:
            self._guard = False
        ed.setSelection(end, end)
        self._dirty = True
        self._step(forward=True)
        return True

    def replace_all(self) -> int:
        """Replace every match as one undo step; returns (and reports) how many."""
        self._flush_query()
        ed, q = self._editor, self._query()
        if ed is None or q is None:
            return 0
        count = 0
        pos = 0
        self._guard = True
        ed.beginUndoAction()
        try:
            while True:
                m = self._search(ed, q, pos, ed.textLength())
                if m is None:
                    break
                start, end = m
                pos = start + self._replace_target(ed, q)
                count += 1
                if start == end:  # empty match: step over one character
                    if pos >= ed.textLength():
                        break
                    pos = ed.positionAfter(pos)
        except InvalidRegexError as exc:
            self._set_invalid(str(exc))
            return 0
        finally:
            ed.endUndoAction()
            self._guard = False
        self._dirty = True
        self._recompute()
        self._message = f"Replaced {count}" if count else NO_RESULTS
        self._update_label()
        return count

    # ------------------------------------------------------------------ internals
    def _query(self) -> _Query | None:
        text = self.query_edit.text()
        if not text:
            return None
        regex = self.regex_button.isChecked()
        whole = self.word_button.isChecked()
        flags = SCFIND_MATCHCASE if self.case_button.isChecked() else 0
        if regex:
            flags |= SCFIND_REGEXP | SCFIND_CXX11REGEX
        elif whole:
            flags |= SCFIND_WHOLEWORD
        return _Query(text, len(text.encode("utf-8")), flags, regex, regex and whole)

    def _search(self, ed: ScintillaEdit, q: _Query, start: int, end: int) -> tuple[int, int] | None:
        """First match in [start, end) (or the last in [end, start) when start > end)."""
        forward = start <= end
        while True:
            if q.regex:
                ed.setStatus(SC_STATUS_OK)
            ed.setSearchFlags(q.flags)
            ed.setTargetRange(start, end)
            pos = ed.searchInTarget(q.length, q.text)
            if pos < 0:
                if pos == -2 or (q.regex and ed.status() == SC_STATUS_WARN_REGEX):
                    ed.setStatus(SC_STATUS_OK)
                    raise InvalidRegexError(_regex_error_message(q.text))
                return None
            ms, me = ed.targetStart(), ed.targetEnd()
            if not q.word_filter or ed.isRangeWord(ms, me):
                return ms, me
            if forward:
                if ms >= end:
                    return None
                start = ed.positionAfter(ms)
            else:
                if me <= end:
                    return None
                start = ed.positionBefore(me)

    def _replace_target(self, ed: ScintillaEdit, q: _Query) -> int:
        text = self.replace_edit.text()
        if q.regex:
            text = to_scintilla_replacement(text)
            return ed.replaceTargetRE(len(text.encode("utf-8")), text)
        return ed.replaceTarget(len(text.encode("utf-8")), text)

    def _step(self, *, forward: bool) -> bool:
        if self._flush_query():  # Enter right after typing: go to the first match
            return self._editor is not None and not self._editor.selectionEmpty()
        ed, q = self._editor, self._query()
        if ed is None or q is None:
            return False
        self._message = ""
        sel_s, sel_e = ed.selectionStart(), ed.selectionEnd()
        if not self._dirty and not self._capped and not self._invalid:
            m = self._step_in_list(sel_s, sel_e, forward=forward)  # no need to search again
            if m is not None:
                self._select(ed, *m)
            self._update_label()
            return m is not None
        n = ed.textLength()
        try:
            if forward:
                m = self._search(ed, q, sel_e, n)
                if m == (sel_s, sel_e):  # empty match where we already are
                    m = self._search(ed, q, ed.positionAfter(sel_e), n) if sel_e < n else None
                if m is None:
                    m = self._search(ed, q, 0, n)
            else:
                m = self._search(ed, q, sel_s, 0)
                if m == (sel_s, sel_e):
                    m = self._search(ed, q, ed.positionBefore(sel_s), 0) if sel_s > 0 else None
                if m is None:
                    m = self._search(ed, q, n, 0)
        except InvalidRegexError as exc:
            self._set_invalid(str(exc))
            return False
        if m is not None:
            self._select(ed, *m)
        self._update_label()
        return m is not None

    def _step_in_list(self, sel_s: int, sel_e: int, *, forward: bool) -> tuple[int, int] | None:
        starts, ends = self._starts, self._ends
        if not starts:
            return None
        if forward:
            i = bisect_left(starts, sel_e)
            if i < len(starts) and (starts[i], ends[i]) == (sel_s, sel_e):
                i += 1  # empty match where we already are
            if i >= len(starts):
                i = 0
        else:
            i = bisect_right(ends, sel_s) - 1  # ends never decrease: matches don't overlap
            if i >= 0 and (starts[i], ends[i]) == (sel_s, sel_e):
                i -= 1
            if i < 0:
                i = len(starts) - 1
        return starts[i], ends[i]

    def _search_from_caret(self) -> None:
        """Incremental search while typing: first match at or after the selection start."""
        ed, q = self._editor, self._query()
        if ed is None or q is None or self._invalid:
            return
        start, n = ed.selectionStart(), ed.textLength()
        if not self._dirty and (self._starts or not self._capped):  # use the fresh list
            i = bisect_left(self._starts, start)
            if i < len(self._starts):
                self._select(ed, self._starts[i], self._ends[i])
                return
            if not self._capped:
                if self._starts:
                    self._select(ed, self._starts[0], self._ends[0])
                return
        try:
            m = self._search(ed, q, start, n) or self._search(ed, q, 0, n)
        except InvalidRegexError as exc:
            self._set_invalid(str(exc))
            return
        if m is not None:
            self._select(ed, *m)

    def _select(self, ed: ScintillaEdit, start: int, end: int) -> None:
        ed.ensureVisibleEnforcePolicy(ed.lineFromPosition(start))
        ed.setSelection(end, start)
        ed.scrollRange(end, start)
        self._mark_current(ed, start, end)
        # The status bar's Ln/Col follows every find step: Scintilla reports the caret move
        # (updateUi) only when it next paints, which it may not do while the bar has the focus.
        caret_moved = getattr(ed, "caretMoved", None)
        if caret_moved is not None:
            pos = ed.currentPos()
            caret_moved.emit(ed.lineFromPosition(pos) + 1, ed.column(pos) + 1)

    def _mark_current(self, ed: ScintillaEdit, start: int, end: int) -> None:
        ed.setIndicatorCurrent(self.CURRENT_INDICATOR)
        ed.indicatorClearRange(0, ed.textLength())
        self._current = (start, end)
        if self._active and end > start:
            ed.indicatorFillRange(start, end - start)

    def current_match(self) -> tuple[int, int] | None:
        """The match marked as current (shown while the bar has the focus), or None."""
        return self._current

    def _clear_highlights(self, ed: ScintillaEdit) -> None:
        for indicator in (self.INDICATOR, self.CURRENT_INDICATOR):
            ed.setIndicatorCurrent(indicator)
            ed.indicatorClearRange(0, ed.textLength())
        self._current = None

    def _recompute(self) -> None:
        """Collect the (capped) list of matches and highlight them when the bar is open."""
        self._timer.stop()
        self._dirty = False
        self._starts, self._ends = [], []
        self._capped = False
        self._invalid = ""
        ed, q = self._editor, self._query()
        if ed is None:
            self._show_invalid(False)
            return
        self._clear_highlights(ed)
        if q is not None:
            n = ed.textLength()
            pos = 0
            try:
                while True:
                    m = self._search(ed, q, pos, n)
                    if m is None:
                        break
                    if len(self._starts) >= MAX_MATCHES:
                        self._capped = True
                        break
                    start, end = m
                    self._starts.append(start)
                    self._ends.append(end)
                    if end > start:
                        pos = end
                    elif end >= n:
                        break
                    else:
                        pos = ed.positionAfter(end)
            except InvalidRegexError as exc:
                self._invalid = str(exc)
            if self._active:
                ed.setIndicatorCurrent(self.INDICATOR)
                for start, end in zip(self._starts, self._ends, strict=True):
                    if end > start:
                        ed.indicatorFillRange(start, end - start)
        self._show_invalid(bool(self._invalid))

    def _ensure_matches(self) -> None:
        if self._dirty:
            self._recompute()

    def _set_invalid(self, message: str) -> None:
        self._invalid = message
        self._show_invalid(True)
        self._update_label()

    def _show_invalid(self, invalid: bool) -> None:
        if self.query_edit.property("invalid") == invalid:
            return
        self.query_edit.setProperty("invalid", invalid)
        self.query_edit.setStyleSheet(_INVALID_STYLE if invalid else "")

    def _update_label(self) -> None:
        self.count_label.setText(self._label_text())

    def _label_text(self) -> str:
        if self._message:
            return self._message
        if self._editor is None or not self.query_edit.text():
            return ""
        self._ensure_matches()
        if self._invalid:
            return self._invalid
        total = len(self._starts)
        if total == 0:
            return NO_RESULTS
        shown_total = f"{total}+" if self._capped else str(total)
        sel_s, sel_e = self._editor.selectionStart(), self._editor.selectionEnd()
        i = bisect_left(self._starts, sel_s)
        if i < total and self._starts[i] == sel_s and self._ends[i] == sel_e:
            return f"{i + 1} of {shown_total}"
        return f"? of {shown_total}"

    # ------------------------------------------------------------------ slots
    def _on_query_changed(self) -> None:
        self._message = ""
        ed = self._editor
        if ed is not None and ed.textLength() > LARGE_DOCUMENT_BYTES and self.query_edit.text():
            self._dirty = True
            self._query_timer.start()
        else:
            self._apply_query()

    def _apply_query(self) -> None:
        self._query_timer.stop()
        self._recompute()
        self._search_from_caret()
        self._update_label()

    def _flush_query(self) -> bool:
        """Run a search still waiting for the typing pause; True if there was one."""
        if not self._query_timer.isActive():
            return False
        self._apply_query()
        return True

    def _on_text_changed(self) -> None:
        if self._guard:
            return
        self._dirty = True
        self._message = ""
        if self._active and self.query_edit.text():
            self._timer.start()

    def _refresh_after_edit(self) -> None:
        if self._active and self._editor is not None:
            self.refresh()

    def _on_update_ui(self, updated: int) -> None:
        ed = self._editor
        if (
            self._current is not None
            and ed is not None
            and updated & SC_UPDATE_SELECTION
            and (ed.selectionStart(), ed.selectionEnd()) != self._current
        ):
            self._mark_current(ed, 0, 0)  # the selection left the match
            self._current = None
        if self._active and not self._dirty and updated & SC_UPDATE_SELECTION:
            text = self._label_text()
            if text != self.count_label.text():
                self.count_label.setText(text)

    # ------------------------------------------------------------------ keys
    def _key_action(self, event: QKeyEvent, source: QObject) -> Callable[[], object] | None:
        key = event.key()
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        none = Qt.KeyboardModifier.NoModifier
        shift = Qt.KeyboardModifier.ShiftModifier
        alt = Qt.KeyboardModifier.AltModifier
        ctrl_alt = Qt.KeyboardModifier.ControlModifier | alt
        if key == Qt.Key.Key_Escape and mods == none:
            return self.close_bar
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if source is self.replace_edit:
                if mods == ctrl_alt:
                    return self.replace_all
                if mods == none:
                    return self.replace_one
            if mods == shift:
                return self.find_previous
            if mods == none:
                return self.find_next
        if key == Qt.Key.Key_F3:
            if mods == shift:
                return self.find_previous
            if mods == none:
                return self.find_next
        if mods == alt:
            toggles: dict[int, QToolButton] = {
                Qt.Key.Key_C: self.case_button,
                Qt.Key.Key_W: self.word_button,
                Qt.Key.Key_R: self.regex_button,
            }
            button = toggles.get(int(key))
            if button is not None:
                toggle: Callable[[], object] = button.toggle
                return toggle
        return None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        etype = event.type()
        if etype in (QEvent.Type.KeyPress, QEvent.Type.ShortcutOverride) and isinstance(
            event, QKeyEvent
        ):
            action = self._key_action(event, watched)
            if action is not None:
                if etype == QEvent.Type.ShortcutOverride:
                    event.accept()  # keep the key from window-level shortcuts
                else:
                    action()
                return True
        return super().eventFilter(watched, event)
