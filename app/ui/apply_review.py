"""The apply review: the proposed file shown inline in a document's pane, hunk by hunk, until
the user accepts or rejects it.

What the user sees (one ``ApplyReview`` in place of the document's editor, the buffer hidden
under it and untouched):

- a *read-only view of the proposed file* (a ``CodeEditor`` with the document's language, theme
  and font), streamed in as the apply writes it: what has arrived is shown, the rest of the
  original follows dimmed, and each hunk is decorated as soon as ``final_hunks`` says it can no
  longer change (compared in LF; ``diff_hunks`` of the finished file replaces them at the end);
- *insertions highlighted in place*: the new lines get a green line background and a green bar
  in the margin; *deletions in a box beside the code*: the removed lines sit in a boxed, red
  Scintilla annotation right above the lines that replace them, never struck through over the
  code; unchanged code is left as is;
- hunks whose kind is not "substantive" ("whitespace-only", "rename") are grayed (gray
  background, gray box), so the eye goes to the lines that matter;
- a bar above the view: the file, the state ("Writing… 120 lines", "Change 2 of 5"), and
  Previous / Next / Accept all / Reject all (Stop while streaming); a floating bar at the
  current hunk with Accept / Reject; a warning line when ``find_unaccounted_removals`` flags
  code ("This apply removes N lines the block does not mention: …"; "N of the file's M lines"
  when that is at least half of it). A result that is not the whole file (a placeholder such
  as ``# ... existing code ...`` left in it) never reaches the review: the apply fails with a
  message saying so (``ApplyRunner``).

Keys (while the review has the focus; they win over the window's shortcuts there):

    Ctrl+Enter          accept all (every hunk not rejected) and apply
    Ctrl+Backspace      reject all: close the review, the buffer untouched
    Ctrl+Y or Y         accept the current hunk (then the next undecided one)
    Ctrl+N or N         reject the current hunk
    F7 / Alt+]          next hunk
    Shift+F7 / Alt+[    previous hunk
    Esc                 stop a streaming apply / discard the review (buffer untouched)

The shadow workspace's check (issue 16): when the review has a ``checker``
(``app.services.shadow.ShadowWorkspace``), the finished file is checked off the UI thread in the
hidden copy (the user's files untouched) and the panel under the header (``CheckPanel``) says
"Checking…", then lists only the NEW diagnostics the edit causes (severity icon and colour,
line, message, code, source, the change it falls in; a click shows the line) and squiggles
them in the view. They show as each server answers (``ShadowWorkspace.submit_check_each``:
ruff's in milliseconds, then basedpyright's added), with "checking basedpyright…" until the last
one answers; each is as new as in the final verdict (compared with its own server's "before").
After ``check_timeout_ms`` the review says it is shown without the check.
The review never waits for it: hunks can be accepted while it runs (as in VS Code, where
diagnostics arrive after the edit).

Deciding the last undecided hunk applies the accepted ones. Applying edits the buffer in ONE
undo action (``beginUndoAction``/``endUndoAction``; each accepted hunk replaces its own lines,
bottom-up, so markers and the caret elsewhere stay put), so one Ctrl+Z reverts the whole apply.
Before that the buffer's text is compared with the text the review was computed against: if
the user (or a reload from disk) changed it, the stale hunks are refused with a message and an
"Apply again" button. Hunks keep the buffer's own line endings (CRLF stays CRLF).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import Protocol

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontDatabase, QKeyEvent, QKeySequence, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.services.shadow import CheckStatus, Verdict
from forecode_core.apply.block import ApplyInput, Removal
from forecode_core.apply.merge import changes as line_changes
from forecode_core.apply.merge import merge3
from forecode_core.apply.review import (
    Hunk,
    HunkKind,
    final_hunks,
    indentation_matters,
    split_lines,
)
from forecode_core.apply.review_state import ReviewOutcome, ReviewPhase, ReviewState
from forecode_core.workspace.diagnostics_diff import Diagnostic, Next, RepairPolicy, Severity

from .apply_backend import ApplyBackend, ApplyResult, ApplyRunner, describe_apply_failure
from .editor import CodeEditor
from .repair_loop import RepairBackend, fit_repair, summary
from .theme import Theme, bgr

__all__ = [
    "REVIEW_KEYS",
    "ApplyReview",
    "CheckPanel",
    "EditChecker",
    "ReviewView",
    "replace_lines",
]

# Scintilla constants (Scintilla.h).
SC_MARK_BACKGROUND, SC_MARK_FULLRECT, SC_MARK_LEFTRECT = 22, 26, 27
ANNOTATION_BOXED = 2
INDIC_TEXTFORE = 17
SC_MOD_INSERTTEXT, SC_MOD_DELETETEXT = 0x1, 0x2

# Markers (below the folding markers 25..31) and the symbol margin they show in.
MARK_ADD, MARK_ADD_GRAY, MARK_REJECTED = 16, 17, 18  # line backgrounds
MARK_BAR_ADD, MARK_BAR_GRAY, MARK_BAR_CURRENT = 19, 20, 21  # margin bars
_BACKGROUND_MARKS = (MARK_ADD, MARK_ADD_GRAY, MARK_REJECTED)
_BAR_MARKS = (MARK_BAR_ADD, MARK_BAR_GRAY, MARK_BAR_CURRENT)
SYMBOL_MARGIN = 1
# Annotation styles (no lexer uses these numbers; 250 is the ghost text's).
STYLE_DELETED, STYLE_DELETED_GRAY, STYLE_DELETED_DONE = 244, 245, 246
INDICATOR_PENDING = 12  # the not-yet-rewritten tail, dimmed
INDICATOR_ERROR, INDICATOR_WARNING = 13, 14  # the check's new diagnostics, squiggled
INDIC_SQUIGGLE = 1

# Colours per theme darkness: (dark, light).
_COLOURS = {
    "add": ("#1d3a29", "#dcf5e3"),
    "add_gray": ("#2b2d33", "#eef0f3"),
    "rejected": ("#262629", "#f4f4f4"),
    "bar_add": ("#3fb950", "#2da44e"),
    "bar_gray": ("#6e7681", "#a0a6ad"),
    "bar_current": ("#3794ff", "#0969da"),
    "deleted_fore": ("#f0a8a8", "#86181d"),
    "deleted_back": ("#3d1f24", "#ffe4e6"),
    "gray_fore": ("#8b9098", "#6e7781"),
    "gray_back": ("#26282d", "#f2f3f5"),
    "pending_fore": ("#5c6068", "#a8adb4"),
    "warning": ("#cca700", "#9a6700"),
    "error": ("#f14c4c", "#cf222e"),
    "ok": ("#3fb950", "#1a7f37"),
}
_SEVERITY_ICONS = {Severity.ERROR: "✖", Severity.WARNING: "⚠"}


def _colour(name: str, theme: Theme) -> str:
    dark, light = _COLOURS[name]
    return dark if theme.dark else light


def _combo(text: str) -> int:
    return QKeySequence(text)[0].toCombined()


# key -> review action name
REVIEW_KEYS: dict[int, str] = {
    _combo("Ctrl+Return"): "accept_all",
    _combo("Ctrl+Backspace"): "reject_all",
    _combo("Ctrl+Y"): "accept_hunk",
    _combo("Y"): "accept_hunk",
    _combo("Ctrl+N"): "reject_hunk",
    _combo("N"): "reject_hunk",
    _combo("F7"): "next",
    _combo("Alt+]"): "next",
    _combo("Shift+F7"): "previous",
    _combo("Alt+["): "previous",
    _combo("Esc"): "escape",
}


def _key_of(event: QKeyEvent) -> int:
    """The event's key combination, keypad Enter counted as Return."""
    key = Qt.Key(event.key())
    if key == Qt.Key.Key_Enter:
        key = Qt.Key.Key_Return
    mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    return int(key.value) | int(mods.value)


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n")


def _display(text: str) -> str:
    """Text for the view: LF, and a lone CR (content for the hunks) shown, not a line end."""
    return _lf(text).replace("\r", "␍")


def _common_prefix(a: bytes, b: bytes) -> int:
    """The length of the common prefix of ``a`` and ``b`` (binary search over slice
    comparisons: a streamed 200 kB file costs the UI thread well under a millisecond)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def changed_span(old: bytes, new: bytes) -> tuple[int, int]:
    """(head, tail): the lengths of ``old`` and ``new``'s common prefix and common suffix
    (not overlapping), neither cutting a UTF-8 character of ``new``: replacing
    ``old[head:len(old) - tail]`` by ``new[head:len(new) - tail]`` turns one into the other."""
    head = _common_prefix(old, new)
    while head and head < len(new) and (new[head] & 0xC0) == 0x80:
        head -= 1  # not inside a character
    tail = _common_prefix(old[head:][::-1], new[head:][::-1])
    while tail and (new[len(new) - tail] & 0xC0) == 0x80:
        tail -= 1
    return head, tail


def _with_hunks(original: str, hunks: Sequence[Hunk]) -> str:
    """``original`` with ``hunks`` (computed against it) applied: the reviewed result."""
    lines = split_lines(original)
    for hunk in sorted(hunks, key=lambda h: h.old_start, reverse=True):
        lines[hunk.old_start : hunk.old_end] = [hunk.new_text]
    return "".join(lines)


def replace_lines(editor: CodeEditor, old: str, new: str) -> None:
    """Turn ``editor``'s text ``old`` into ``new`` in ONE undo action, replacing only the
    lines that differ (bottom-up, so markers and the caret elsewhere stay put)."""
    lines = old.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line.encode("utf-8")))
    read_only = editor.readOnly()
    editor.setReadOnly(False)
    editor.beginUndoAction()
    try:
        for change in reversed(line_changes(lines, new.splitlines(keepends=True))):
            text = "".join(change.lines)
            editor.setTargetRange(starts[change.start], starts[change.end])
            editor.replaceTarget(len(text.encode("utf-8")), text)
    finally:
        editor.endUndoAction()
        editor.setReadOnly(read_only)


def scroll_to_hunk(view: CodeEditor, hunk: Hunk) -> None:
    """Scroll ``view`` to ``hunk`` (three lines above it in sight) unless it shows already,
    the caret at its first new line: both reviews' current change is always on screen."""
    first = max(0, hunk.new_start - 1)
    top = view.firstVisibleLine()
    visible = view.linesOnScreen()
    if not top <= view.visibleFromDocLine(first) < top + max(1, visible - 4):
        view.setFirstVisibleLine(max(0, view.visibleFromDocLine(first) - 3))
    view.gotoPos(view.positionFromLine(min(hunk.new_start, max(0, view.lineCount() - 1))))


def box_line(hunk: Hunk) -> int:
    """The view line whose annotation holds the hunk's deletion box: the line above the
    new lines (the box shows right above them); at the top of the file, the hunk's last
    new line (or the first line)."""
    if hunk.new_start > 0:
        return hunk.new_start - 1
    return max(0, hunk.new_end - 1)


def mark_hunks(
    view: ReviewView, hunks: Sequence[Hunk], decisions: Sequence[bool | None], current: int
) -> None:
    """The review's marks for ``hunks`` (``decisions`` theirs, ``current`` the current one's
    index) in ``view``, which shows the proposed text: added lines on green with a margin bar,
    removed lines in a box above their replacement, whitespace/rename hunks grayed, rejected
    hunks dimmed. Shared by the apply review and the multi-file edit review."""
    for mark in (*_BACKGROUND_MARKS, *_BAR_MARKS):
        view.markerDeleteAll(mark)
    view.annotationClearAll()
    lines = view.lineCount()
    boxes: dict[int, tuple[list[str], int]] = {}
    for position, (hunk, decision) in enumerate(zip(hunks, decisions, strict=True)):
        gray = hunk.kind != HunkKind.SUBSTANTIVE
        background = MARK_REJECTED if decision is False else MARK_ADD_GRAY if gray else MARK_ADD
        bar = (
            MARK_BAR_CURRENT
            if position == current
            else MARK_BAR_GRAY
            if gray or decision is False
            else MARK_BAR_ADD
        )
        for line in range(hunk.new_start, min(hunk.new_end, lines)):
            view.markerAdd(line, background)
            view.markerAdd(line, bar)
        if hunk.old_lines:
            style = (
                STYLE_DELETED_DONE
                if decision is True
                else STYLE_DELETED_GRAY
                if gray
                else STYLE_DELETED
            )
            texts, _style = boxes.setdefault(box_line(hunk), ([], style))
            texts.extend(
                _display(x).rstrip("\n").expandtabs(max(1, view.tab_size)) for x in hunk.old_lines
            )
    for line, (texts, style) in boxes.items():
        if line < lines:
            # A boxed annotation starts at its line's indentation: take that much of the
            # removed lines' own indentation off, so they stay in their columns.
            common = min((len(t) - len(t.lstrip(" ")) for t in texts if t.strip()), default=0)
            cut = min(common, view.lineIndentation(line))
            view.annotationSetText(line, "\n".join(t[cut:] or " " for t in texts))
            view.annotationSetStyle(line, style)


class ReviewView(CodeEditor):
    """The read-only view of the proposed file, with the review's keys."""

    action = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setUndoCollection(False)
        self.setCaretLineVisible(False)
        self.setCaretLineVisibleAlways(False)
        self.setCaretStyle(0)  # CARETSTYLE_INVISIBLE: nothing to type here
        self.annotationSetVisible(ANNOTATION_BOXED)
        self.setMarginWidthN(SYMBOL_MARGIN, 5)
        self.setMarginMaskN(SYMBOL_MARGIN, sum(1 << m for m in _BAR_MARKS))
        self.markerDefine(MARK_ADD, SC_MARK_BACKGROUND)
        self.markerDefine(MARK_ADD_GRAY, SC_MARK_BACKGROUND)
        self.markerDefine(MARK_REJECTED, SC_MARK_BACKGROUND)
        for mark in _BAR_MARKS:
            self.markerDefine(mark, SC_MARK_FULLRECT)
        self.indicSetStyle(INDICATOR_PENDING, INDIC_TEXTFORE)
        self.indicSetStyle(INDICATOR_ERROR, INDIC_SQUIGGLE)
        self.indicSetStyle(INDICATOR_WARNING, INDIC_SQUIGGLE)

    def apply_theme(self, theme: Theme) -> None:
        super().apply_theme(theme)
        self.setCaretLineVisible(False)
        for mark, name in (
            (MARK_ADD, "add"),
            (MARK_ADD_GRAY, "add_gray"),
            (MARK_REJECTED, "rejected"),
            (MARK_BAR_ADD, "bar_add"),
            (MARK_BAR_GRAY, "bar_gray"),
            (MARK_BAR_CURRENT, "bar_current"),
        ):
            self.markerSetBack(mark, bgr(_colour(name, theme)))
            self.markerSetFore(mark, bgr(_colour(name, theme)))
        family = (
            self.font_family
            or QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
        )
        for style, fore, back in (
            (STYLE_DELETED, "deleted_fore", "deleted_back"),
            (STYLE_DELETED_GRAY, "gray_fore", "gray_back"),
            (STYLE_DELETED_DONE, "gray_fore", "rejected"),
        ):
            self.styleSetFont(style, family)
            self.styleSetSize(style, self.font_size)
            self.styleSetFore(style, bgr(_colour(fore, theme)))
            self.styleSetBack(style, bgr(_colour(back, theme)))
        self.indicSetFore(INDICATOR_PENDING, bgr(_colour("pending_fore", theme)))
        self.indicSetFore(INDICATOR_ERROR, bgr(_colour("error", theme)))
        self.indicSetFore(INDICATOR_WARNING, bgr(_colour("warning", theme)))

    def event(self, ev: QEvent) -> bool:
        # The review's keys win over the window's shortcuts (Ctrl+Y redo, Ctrl+N new file).
        if (
            ev.type() == QEvent.Type.ShortcutOverride
            and isinstance(ev, QKeyEvent)
            and _key_of(ev) in REVIEW_KEYS
        ):
            ev.accept()
            return True
        return super().event(ev)

    def keyPressEvent(self, ev: QKeyEvent) -> None:
        name = REVIEW_KEYS.get(_key_of(ev))
        if name is not None:
            ev.accept()
            self.action.emit(name)
            return
        super().keyPressEvent(ev)

    def deletion_boxes(self) -> dict[int, str]:
        """Line -> the deletion box's text shown below it."""
        out = {}
        for line in range(self.lineCount()):
            text = bytes(self.annotationText(line).data()).decode("utf-8")
            if text:
                out[line] = text
        return out


class ElidedLabel(QLabel):
    """One line of plain text that ends in "…" where the label is narrower than it (squeezed
    by a narrow pane or a big scale it showed a cut-off character); ``text()`` stays whole."""

    def paintEvent(self, event: QPaintEvent) -> None:
        rect = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, rect.width())
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(
            rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text
        )


class ReviewHeader(QFrame):
    """A review's header row: the title, the state (elided), then the owner's buttons, added
    to ``row``. Shared by the apply review and the multi-file edit review."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ReviewHeader")
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(8, 3, 4, 3)
        self.row.setSpacing(4)
        self.title_label = QLabel()
        self.status_label = ElidedLabel()
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.row.addWidget(self.title_label)
        self.row.addSpacing(10)
        self.row.addWidget(self.status_label, 1)

    def apply_theme(self, theme: Theme) -> None:
        border = "#3794ff" if theme.dark else "#0969da"
        back = "#25262a" if theme.dark else "#f3f3f3"
        self.setStyleSheet(
            f"#ReviewHeader {{ background: {back}; border-top: 2px solid {border}; }}"
            " QPushButton { padding: 2px 8px; }"
        )


class HunkBar(QFrame):
    """Accept / Reject at the current hunk, floating at the view's right edge."""

    def __init__(self, view: ReviewView) -> None:
        super().__init__(view.viewport())
        self.setObjectName("HunkBar")
        self.view = view
        layout = QHBoxLayout(self)
        layout.setContentsMargins(1, 0, 1, 0)
        layout.setSpacing(2)
        self.label = QLabel()
        self.accept_button = QPushButton("✓ Accept  Ctrl+Y")
        self.reject_button = QPushButton("✕ Reject  Ctrl+N")
        for button in (self.accept_button, self.reject_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
        layout.addWidget(self.label)
        layout.addWidget(self.accept_button)
        layout.addWidget(self.reject_button)
        self.place = (0, False)
        self._rows: tuple[tuple[int, bool], ...] = ()
        view.updateUi.connect(self._follow)
        view.resized.connect(self._follow)
        self.hide()

    def apply_theme(self, theme: Theme) -> None:
        back = "#2b2d33" if theme.dark else "#f3f4f6"
        border = "#454850" if theme.dark else "#c9ccd1"
        self.setStyleSheet(
            f"#HunkBar {{ background: {back}; border: 1px solid {border}; border-radius: 4px; }}"
            " QPushButton { padding: 0px 8px; margin: 0px; border-radius: 3px; }"
            f" QLabel {{ color: {_colour('gray_fore', theme)}; padding: 0 4px; }}"
        )

    def show_for(self, hunk: Hunk, position: int, count: int) -> None:
        """At ``hunk`` (beside its deletion box, or at its first new line), labelled
        "position+1/count"."""
        self.label.setText(f"{position + 1}/{count}")
        last = max(0, self.view.lineCount() - 1)
        first = min(hunk.new_start, last)
        after = (min(hunk.new_end, last), False)
        if hunk.old_lines and hunk.new_start > 0:
            box = box_line(hunk)
            # Beside the deletion box's first row, else on the line above the box, else at
            # the first new line, else after the hunk: the first whose text ends left of the
            # bar (a long removed line stays readable, found in a user run: a chat Apply of a
            # changed error message hid the end of the old line).
            rows = ((box, True), (box, False), (first, False), after)
            self.show_at(box, below=True, rows=rows)
        else:
            # Its first new line, else the line above the hunk, else the line after it:
            # the first whose text ends left of the bar (a long line stays readable).
            near = ((first, False), (first - 1, False), after)
            self.show_at(first, below=False, rows=tuple(r for r in near if r[0] >= 0))

    def show_at(self, line: int, below: bool, rows: tuple[tuple[int, bool], ...] = ()) -> None:
        """At ``line`` of the view (``below``: under its text, where a deletion box starts),
        one text line high so it covers no other line; with ``rows`` (line, below), on the
        first of them whose text the bar does not cover (``line`` when every one is too
        long)."""
        self.place = (line, below)
        self._rows = rows
        height = max(16, self.view.textHeight(line))
        # Size from the polished style (the style sheet's padding and the font): sized before
        # its first show, the bar took unpolished hints and clipped its labels.
        self.ensurePolished()
        for button in (self.accept_button, self.reject_button):
            button.setFixedHeight(height - 2)
            button.setMinimumWidth(button.sizeHint().width())
        layout = self.layout()
        if layout is not None:
            layout.activate()
        self.adjustSize()
        self.setFixedHeight(height)
        self.show()
        self.raise_()
        self._follow()

    def _follow(self, *_args: object) -> None:
        if not self.isVisible():
            return
        view = self.view
        x = view.viewport().width() - self.width() - 18
        line, below = next((r for r in self._rows if self._text_end_x(*r) + 8 < x), self.place)
        y = view.pointYFromPosition(view.positionFromLine(line))
        if below:
            y += view.textHeight(line)
        self.move(max(0, x), max(0, y))

    def _text_end_x(self, line: int, below: bool = False) -> int:
        """Where ``line``'s text ends in the viewport (pixels); ``below``: the first row of
        its deletion box (boxed from the line's indentation, a space's margin each side)."""
        view = self.view
        if not below:
            return view.pointXFromPosition(view.lineEndPosition(line))
        row = bytes(view.annotationText(line).data()).decode("utf-8").split("\n")[0]
        style = view.annotationStyle(line)
        start = view.pointXFromPosition(view.lineIndentPosition(line))
        return start + view.textWidth(style, row) + 2 * view.textWidth(style, " ")


class EditChecker(Protocol):
    """Where a finished apply is checked: ``ShadowWorkspace.submit_check`` (path -> new text,
    path -> the buffer's text), answered on another thread."""

    def submit_check(
        self, edits: Mapping[str, str], originals: Mapping[str, str] | None = None
    ) -> Future[Verdict]: ...


class _CheckRelay(QObject):
    done = Signal(int, object)  # generation, the Future (emitted on the shadow's thread)
    partial = Signal(int, object)  # generation, a partial Verdict (the shadow's thread)


class CheckPanel(QFrame):
    """Under the review's header: the shadow check's state and the new diagnostics, one row
    each (severity icon and colour, line, message, code and source, the change it is in)."""

    line_clicked = Signal(int)  # a 0-based line of the proposed file

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ReviewChecks")
        column = QVBoxLayout(self)
        column.setContentsMargins(8, 2, 4, 4)
        column.setSpacing(2)
        self.title = QLabel()
        self.repair = QLabel()  # the repair loop's line ("1 repair round: fixed F821 ...")
        self.repair.setWordWrap(True)
        self.repair.hide()
        self.list = QListWidget()
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.itemClicked.connect(self._clicked)
        column.addWidget(self.title)
        column.addWidget(self.repair)
        column.addWidget(self.list)
        self.list.hide()
        self.state = ""  # "", "checking", "done", "timed_out", "failed"
        self.diagnostics: tuple[Diagnostic, ...] = ()

    def checking(self) -> None:
        self._set("checking", "◷ Checking the edit in the shadow workspace…", "")
        self.show()

    def repairing(self, round_no: int, rounds: int, new: tuple[Diagnostic, ...]) -> None:
        first = new[0] if new else None
        what = f"{first.code} {first.message}".strip() if first is not None else "problems"
        more = f" and {len(new) - 1} more" if len(new) > 1 else ""
        self._set(
            "repairing",
            f"⚙ Repair round {round_no} of {rounds}: the check found {what}{more}; "
            "the model is correcting its edit…",
            "warning",
        )
        self.show()

    def set_repair_line(self, text: str) -> None:
        self.repair.setText(text)
        self.repair.setVisible(bool(text))

    def timed_out(self, seconds: float) -> None:
        self._set(
            "timed_out",
            f"The check did not finish in {seconds:g} s: this review is shown without it.",
            "warning",
        )

    def show_verdict(self, verdict: Verdict, where: Callable[[int], str], theme: Theme) -> None:
        if verdict.status is not CheckStatus.CHECKED:
            words = {
                CheckStatus.TIMED_OUT: "The check timed out: this review is shown without it.",
                CheckStatus.NO_CHECKER: "Not checked: neither ruff nor basedpyright is installed.",
            }
            text = words.get(verdict.status, f"The check failed: {verdict.note}")
            self._set(str(verdict.status), text, "warning")
            return
        self.diagnostics = verdict.new
        if not verdict.new:
            self._set("done", "✓ No new problems in the checked files.", "ok")
            return
        n = len(verdict.new)
        self._set("done", f"{n} new problem{'s' if n != 1 else ''} this edit introduces:", "")
        self._rows(verdict.new, where, theme)

    def show_partial(self, verdict: Verdict, where: Callable[[int], str], theme: Theme) -> None:
        """Some servers answered (``verdict.waiting`` did not): their new problems so far."""
        self.diagnostics = verdict.new
        waiting = f"checking {', '.join(verdict.waiting)}…"
        n = len(verdict.new)
        if not n:
            self._set("checking", f"◷ No new problems so far; {waiting}", "")
            return
        self._set("checking", f"◷ {n} new problem{'s' if n != 1 else ''} so far; {waiting}", "")
        self._rows(verdict.new, where, theme)

    def _rows(self, new: tuple[Diagnostic, ...], where: Callable[[int], str], theme: Theme) -> None:
        n = len(new)
        for diag in new:
            icon = _SEVERITY_ICONS.get(diag.severity, "ℹ")
            code = f" ({diag.code}, {diag.source})" if diag.code else f" ({diag.source})"
            item = QListWidgetItem(
                f"{icon}  line {diag.line + 1}: {diag.message}{code}{where(diag.line)}"
            )
            item.setData(Qt.ItemDataRole.UserRole, diag.line)
            colour = "error" if diag.severity is Severity.ERROR else "warning"
            item.setForeground(QColor(_colour(colour, theme)))
            self.list.addItem(item)
        self.list.setMaximumHeight(min(6, n) * (self.list.sizeHintForRow(0) + 2) + 6)
        self.list.show()

    def rows(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def _set(self, state: str, text: str, colour: str) -> None:
        self.state = state
        self.title.setText(text)
        self.list.clear()
        self.list.hide()
        tint = {"warning": "#cca700", "ok": "#3fb950"}.get(colour)
        self.title.setStyleSheet(f"color: {tint};" if tint else "")

    def _clicked(self, item: QListWidgetItem) -> None:
        self.line_clicked.emit(int(item.data(Qt.ItemDataRole.UserRole)))


class ApplyReview(QFrame):
    """One apply under review, in place of ``buffer`` (the document's editor) in its pane.

    The run's phase, stale flag and per-review fields are one value, ``review_state``
    (``forecode_core.apply.review_state.ReviewState``), replaced on each event; ``state``,
    ``hunks``, ``current``, ``outcome`` ... read it."""

    finished = Signal(object)  # the ReviewOutcome (applied, rejected, cancelled, unchanged, closed)

    REFRESH_MS = 50
    CHECK_TIMEOUT_MS = 10_000  # then the review says it is shown without the check

    def __init__(
        self,
        buffer: CodeEditor,
        request: ApplyInput,
        backend: ApplyBackend,
        *,
        title: str = "",
        theme: Theme | None = None,
        parent: QWidget | None = None,
        checker: EditChecker | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("ApplyReview")
        self.checker = checker
        # the repair loop (app.ui.repair_loop): rounds allowed (set before start; 0 = off),
        # rounds run, the first check's new diagnostics, the last checked result and verdict
        # (kept if a round fails)
        self.repair_rounds = 0
        self.repairs_run = 0
        self._repair_policy = RepairPolicy(rounds=0)
        self._first_new: tuple[Diagnostic, ...] = ()
        self._repair_base: tuple[ApplyResult, Verdict] | None = None
        self.check_timeout_ms = self.CHECK_TIMEOUT_MS
        self.verdict: Verdict | None = None
        self._check_generation = 0
        self._check_future: Future[Verdict] | None = None
        self.buffer = buffer
        self.backend = backend
        self.title = title or request.path
        self.theme = theme or buffer.theme
        self.request = request
        self._indent_matters = indentation_matters(request.path, request.language)
        self.original = request.original  # the buffer text this review is computed against
        # the run's phase, stale flag and per-review fields, as one value (replaced, never
        # reset field by field); the properties below read it
        self.review_state: ReviewState[ApplyResult] = ReviewState()
        self.applied_text: str | None = None
        self._applying = False
        self._merging = False  # the buffer changed away from the hunks: accept merges three-way
        self._view_text = ""
        self._refresh_cost = 0.0

        self.runner = ApplyRunner(self)
        self.runner.delta.connect(self._on_delta)
        self.runner.notice.connect(self._on_notice)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.timeout.connect(self._refresh)

        # header: file, state, navigation and the whole-review actions
        self.header = ReviewHeader()
        self.title_label = self.header.title_label
        self.status_label = self.header.status_label
        top = self.header.row
        self.prev_button = QPushButton("↑")
        self.prev_button.setToolTip("Previous change (Shift+F7 or Alt+[)")
        self.next_button = QPushButton("↓")
        self.next_button.setToolTip("Next change (F7 or Alt+])")
        self.accept_all_button = QPushButton("Accept all  Ctrl+Enter")
        self.reject_all_button = QPushButton("Reject all  Ctrl+Backspace")
        self.stop_button = QPushButton("Stop  Esc")
        for button in (
            self.prev_button,
            self.next_button,
            self.accept_all_button,
            self.reject_all_button,
            self.stop_button,
        ):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setCursor(Qt.CursorShape.PointingHandCursor)
        for button in (
            self.prev_button,
            self.next_button,
            self.stop_button,
            self.accept_all_button,
            self.reject_all_button,
        ):
            top.addWidget(button)

        # a warning or an error, with its actions
        self.message_bar = QFrame()
        self.message_bar.setObjectName("ReviewMessage")
        row = QHBoxLayout(self.message_bar)
        row.setContentsMargins(8, 4, 4, 4)
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.message_label, 1)
        self._message_buttons: list[QPushButton] = []
        self._message_row = row
        self.message_kind = ""
        self.message_bar.hide()

        self.view = ReviewView(self)
        self.view.action.connect(self.run_action)
        self.view.caretMoved.connect(self._on_view_caret)
        self.hunk_bar = HunkBar(self.view)
        self.hunk_bar.accept_button.clicked.connect(lambda: self.decide(True))
        self.hunk_bar.reject_button.clicked.connect(lambda: self.decide(False))

        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.header)
        column.addWidget(self.message_bar)
        # the shadow check's state and new diagnostics, under the header
        self.checks = CheckPanel()
        self.checks.line_clicked.connect(self._show_line)
        self.checks.hide()
        column.addWidget(self.checks)
        column.addWidget(self.view, 1)
        self._check_relay = _CheckRelay(self)
        self._check_relay.done.connect(self._on_checked)
        self._check_relay.partial.connect(self._on_partial)
        self._check_timer = QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.timeout.connect(self._check_timed_out)

        self.prev_button.clicked.connect(lambda: self.move_current(-1))
        self.next_button.clicked.connect(lambda: self.move_current(1))
        self.accept_all_button.clicked.connect(self.accept_all)
        self.reject_all_button.clicked.connect(self.reject_all)
        self.stop_button.clicked.connect(self.cancel)
        buffer.modified.connect(self._on_buffer_modified)

        self.view.set_language(buffer.language)
        self.view.font_family, self.view.font_size = buffer.font_family, buffer.font_size
        self.view.apply_settings(
            tab_size=buffer.tab_size,
            insert_spaces=buffer.insert_spaces,
            word_wrap=False,
            render_whitespace=False,
            rulers=(),
        )
        self.apply_theme(self.theme)

    # ----- the state (read-only views of ``review``) --------------------------------------------
    @property
    def state(self) -> ReviewPhase:
        return self.review_state.phase

    @property
    def received(self) -> str:
        return self.review_state.received

    @property
    def hunks(self) -> tuple[Hunk, ...]:
        return self.review_state.hunks

    @property
    def result(self) -> ApplyResult | None:
        return self.review_state.result

    @property
    def current(self) -> int:
        return self.review_state.current

    @property
    def notice(self) -> str:
        return self.review_state.notice

    @property
    def outcome(self) -> str:
        """The ``ReviewOutcome`` the review closed with; "" while it is open."""
        return self.review_state.outcome or ""

    @property
    def first_hunk_ms(self) -> float | None:
        return self.review_state.first_hunk_ms

    # ----- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Run the apply; the view shows the original (dimmed) until the new text streams."""
        self.repairs_run = 0
        self._repair_policy = RepairPolicy(rounds=self.repair_rounds)
        self._first_new = ()
        self._repair_base = None
        self.review_state = ReviewState.started(time.monotonic())
        self._hide_message()
        self._refresh()
        self._keep_place()
        self.runner.start(self.backend, self.request)
        self._update_header()

    def _keep_place(self) -> None:
        """The view opens where the user was in the buffer (its top line and caret), not at
        line 1, until the first hunk scrolls to itself (a user run saw a failed apply show the
        file's top, the user's place lost until Close)."""
        buf, view = self.buffer, self.view
        view.gotoPos(min(buf.currentPos(), view.textLength()))
        top = buf.docLineFromVisible(buf.firstVisibleLine())
        view.setFirstVisibleLine(view.visibleFromDocLine(top))

    def restart(self) -> None:
        """Run the same block again against the buffer as it is now."""
        self.runner.stop()
        self.request = replace(self.request, original=self.buffer.text())
        self.original = self.request.original
        self._merging = False
        self.start()

    def cancel(self) -> None:
        """Esc while streaming: stop the apply; the buffer stays exactly as it was."""
        self.runner.stop()
        self._finish(ReviewOutcome.CANCELLED)

    def close_review(self) -> None:
        """Stop whatever runs and close without touching the buffer (a tab or window closes)."""
        self.runner.stop()
        if not self.outcome:
            self._finish(self.review_state.close_outcome())

    def _finish(self, outcome: ReviewOutcome) -> None:
        if self.review_state.outcome is not None:
            return
        self.review_state = self.review_state.closed(outcome)
        self._refresh_timer.stop()
        self._stop_check()
        self.hunk_bar.hide()
        with contextlib.suppress(RuntimeError, TypeError):
            self.buffer.modified.disconnect(self._on_buffer_modified)
        self.finished.emit(outcome)

    # ----- the stream ------------------------------------------------------------------------
    def _on_delta(self, text: str) -> None:
        self.review_state = self.review_state.with_received(text)
        if not self._refresh_timer.isActive():
            # at least REFRESH_MS apart, and never more than a quarter of the time in diffs
            wait = max(self.REFRESH_MS, int(self._refresh_cost * 4000))
            self._refresh_timer.start(wait)

    def _on_notice(self, text: str) -> None:
        self.review_state = self.review_state.with_notice(text)
        self._update_header()

    def _on_finished(self, result: object) -> None:
        assert isinstance(result, ApplyResult)
        if not self._show_result(result):
            return
        self._start_check(result.text)
        if not result.removals and self.review_state.all_decided():
            self._apply()  # every hunk was decided while it streamed (and nothing is flagged)

    def _show_result(self, result: ApplyResult) -> bool:
        """The finished file in the view with its hunks; False when it changes nothing (the
        review closed)."""
        self._refresh_timer.stop()
        self.review_state = self.review_state.reviewing(result, result.text, result.hunks)
        if not result.hunks:
            self._finish(ReviewOutcome.UNCHANGED)
            return False
        self._show_text(_display(result.text), -1)
        review = self.review_state
        if review.current_is_done():
            review = review.with_current(review.next_undecided(max(0, review.current)))
        self.review_state = review.with_hunks(review.hunks, time.monotonic())
        self._decorate()
        if result.removals:
            self._warn_removals(result.removals)
        if self.review_state.stale:
            self._show_stale()
        self._update_header()
        self._scroll_to_current()
        return True

    # ----- the shadow check --------------------------------------------------------------------
    def _start_check(self, text: str) -> None:
        """Check the finished file in the shadow workspace, off the UI thread."""
        if self.checker is None:
            return
        self._check_generation += 1
        generation = self._check_generation
        self.checks.checking()
        relay = self._check_relay

        def done(future: Future[Verdict]) -> None:  # the shadow's thread
            with contextlib.suppress(RuntimeError):  # the review is gone
                relay.done.emit(generation, future)

        def partial(verdict: Verdict) -> None:  # the shadow's thread
            with contextlib.suppress(RuntimeError):  # the review is gone
                relay.partial.emit(generation, verdict)

        path = self.request.path
        each = getattr(self.checker, "submit_check_each", None)
        future = (
            each({path: text}, {path: self.original}, partial)
            if callable(each)
            else self.checker.submit_check({path: text}, {path: self.original})
        )
        self._check_future = future
        self._check_timer.start(self.check_timeout_ms)
        future.add_done_callback(done)

    def _on_checked(self, generation: int, future: object) -> None:
        if generation != self._check_generation or not isinstance(future, Future):
            return  # a stale check, or one that timed out
        self._check_timer.stop()
        self._check_future = None
        if future.cancelled():
            return
        exc = future.exception()
        verdict = (
            Verdict(CheckStatus.FAILED, note=f"{type(exc).__name__}: {exc}")
            if exc is not None
            else future.result()
        )
        if self._repair(verdict):
            return
        if self._worse_than_before(verdict):
            return
        self._show_verdict(verdict)

    def _on_partial(self, generation: int, verdict: object) -> None:
        """Some servers answered: their new problems show at once, the rest still awaited
        (the final verdict replaces them; the repair loop decides only on it)."""
        if generation != self._check_generation or not isinstance(verdict, Verdict):
            return  # a stale check, or one that timed out or finished
        if self._check_future is None or self.outcome:
            return
        self.checks.show_partial(verdict, self._where, self.theme)
        self._squiggle(verdict.new)

    def _worse_than_before(self, verdict: Verdict) -> bool:
        """After a repair round whose version has more new problems than the version it was
        asked to repair, review that earlier version (a wrong result is worse than a refusal:
        the model's worse attempt is never the one offered); True when it did."""
        base = self._repair_base
        if base is None or not self.repairs_run or verdict.status is not CheckStatus.CHECKED:
            return False
        result, before = base
        if len(verdict.new) <= len(before.new):
            return False
        self._repair_base = None
        self.review_state = ReviewState.started(time.monotonic())
        if self._show_result(result):
            self._show_verdict(
                before,
                f"; repair round {self.repairs_run} made it worse "
                f"({len(verdict.new)} problems): the version before it is shown",
            )
        return True

    def _show_verdict(self, verdict: Verdict, note: str = "") -> None:
        self.verdict = verdict
        self.checks.show_verdict(verdict, self._where, self.theme)
        line = summary(self.repairs_run, self._first_new, verdict.new)
        self.checks.set_repair_line(f"{line}{note}" if line else note.lstrip("; "))
        self._squiggle(verdict.new)

    # ----- the repair loop (app.ui.repair_loop) --------------------------------------------
    def _repair(self, verdict: Verdict) -> bool:
        """When the policy says so, send the new diagnostics back to the model through the same
        backend and stream its corrected file (checked again when it is done); True when a round
        started."""
        result = self.result
        if self.repair_rounds <= 0 or result is None or self.outcome:
            return False
        if verdict.status is not CheckStatus.CHECKED or self.review_state.decisions:
            return False  # not checked, or the user is already deciding hunks
        if self.repairs_run == 0:
            self._first_new = verdict.new
        step, self._repair_policy = self._repair_policy.next(verdict.new)
        if step is not Next.REPAIR:
            return False
        self.repairs_run += 1
        self._repair_base = (result, verdict)
        lines = [d.line for d in verdict.new if d.path == self.request.path]
        request = fit_repair(
            self.request, result.text, result.hunks, lines, verdict.new, self.repairs_run
        )
        self.checks.repairing(self.repairs_run, self.repair_rounds, verdict.new)
        self.review_state = ReviewState.started(time.monotonic())
        self._hide_message()
        self.runner.start(RepairBackend(self.backend, result.text), request)
        self._update_header()
        return True

    def _repair_failed(self, message: str) -> None:
        """A repair round's stream failed: the last checked version is reviewed as it was."""
        assert self._repair_base is not None
        result, verdict = self._repair_base
        self._repair_base = None
        self.review_state = ReviewState.started(time.monotonic())
        if self._show_result(result):
            self._show_verdict(verdict, f"; repair round {self.repairs_run} failed: {message}")

    def _check_timed_out(self) -> None:
        self._stop_check()
        self.checks.timed_out(self.check_timeout_ms / 1000)

    def _stop_check(self) -> None:
        self._check_generation += 1
        self._check_timer.stop()
        if self._check_future is not None:
            self._check_future.cancel()
            self._check_future = None

    def _where(self, line: int) -> str:
        for position, hunk in enumerate(self.hunks):
            if hunk.new_start <= line < max(hunk.new_end, hunk.new_start + 1):
                return f" · change {position + 1}"
        return ""

    def _squiggle(self, diagnostics: tuple[Diagnostic, ...]) -> None:
        view = self.view
        for indicator in (INDICATOR_ERROR, INDICATOR_WARNING):
            view.setIndicatorCurrent(indicator)
            view.indicatorClearRange(0, view.textLength())
        lines = self._view_text.split("\n")
        for diag in diagnostics:
            if diag.line >= min(len(lines), view.lineCount()):
                continue
            text = lines[diag.line]
            start = view.positionFromLine(diag.line)
            end = view.lineEndPosition(diag.line)
            begin = min(end, start + len(text[: diag.column].encode("utf-8")))
            stop = end
            if diag.end_line == diag.line and diag.end_column > diag.column:
                stop = min(end, start + len(text[: diag.end_column].encode("utf-8")))
            view.setIndicatorCurrent(
                INDICATOR_ERROR if diag.severity is Severity.ERROR else INDICATOR_WARNING
            )
            view.indicatorFillRange(begin, max(1, stop - begin))

    def squiggled(self, indicator: int = INDICATOR_ERROR) -> list[int]:
        """The lines with the check's squiggles (tests)."""
        view = self.view
        return [
            line
            for line in range(view.lineCount())
            if any(
                view.indicatorValueAt(indicator, pos)
                for pos in range(view.positionFromLine(line), view.lineEndPosition(line))
            )
        ]

    def _show_line(self, line: int) -> None:
        view = self.view
        view.setFirstVisibleLine(max(0, view.visibleFromDocLine(line) - 3))
        view.gotoPos(view.positionFromLine(line))

    def _on_failed(self, code: str, message: str) -> None:
        if self._repair_base is not None and self.repairs_run:
            self._repair_failed(describe_apply_failure(code, message))
            return
        self._refresh_timer.stop()
        self.review_state = self.review_state.failed()
        self._show_text(_display(self.original), -1)
        self._decorate()
        self._show_message(
            describe_apply_failure(code, message), "error", (("Close", self.reject_all),)
        )
        self._update_header()

    def _refresh(self) -> None:
        """Show what has streamed so far, and decorate the hunks that are final."""
        started = time.perf_counter()
        original = _lf(self.original)
        prefix = _lf(self.received)
        self.review_state = self.review_state.with_hunks(
            final_hunks(original, prefix, indent_matters=self._indent_matters) if prefix else (),
            time.monotonic(),
        )
        complete = prefix[: prefix.rfind("\n") + 1]
        partial = prefix[len(complete) :]
        done_lines = complete.count("\n")
        if self.hunks:
            last = self.hunks[-1]
            old_pos = last.old_end + (done_lines - last.new_end)
        else:
            old_pos = done_lines
        old_lines = split_lines(original)
        old_pos = max(0, min(len(old_lines), old_pos + (1 if partial else 0)))
        shown = complete + (partial + "\n" if partial else "")
        tail = "".join(old_lines[old_pos:])
        self._show_text(_display(shown + tail), len(_display(shown).encode("utf-8")))
        review = self.review_state
        if (
            review.hunks and review.current_is_done()
        ):  # the first hunk, or the next after a decision
            self.review_state = review.with_current(review.next_undecided(max(0, review.current)))
            if self.review_state.current != review.current:
                self._scroll_to_current()
        self._decorate()
        self._update_header()
        self._refresh_cost = time.perf_counter() - started

    # ----- the view ----------------------------------------------------------------------------
    def _show_text(self, text: str, tail_start: int) -> None:
        """Put ``text`` in the view, replacing only what changed (the scroll position stays);
        bytes from ``tail_start`` on are dimmed (-1: none)."""
        view = self.view
        if text != self._view_text:
            old, new = self._view_text.encode("utf-8"), text.encode("utf-8")
            head, tail = changed_span(old, new)
            view.setReadOnly(False)
            view.setTargetRange(head, len(old) - tail)
            middle = new[head : len(new) - tail].decode("utf-8")
            view.replaceTarget(len(middle.encode("utf-8")), middle)
            view.setReadOnly(True)
            self._view_text = text
        view.setIndicatorCurrent(INDICATOR_PENDING)
        view.indicatorClearRange(0, view.textLength())
        if 0 <= tail_start < view.textLength():
            view.indicatorFillRange(tail_start, view.textLength() - tail_start)

    def _decorate(self) -> None:
        """Markers and deletion boxes for the hunks, the current one marked."""
        hunks = self.hunks
        mark_hunks(self.view, hunks, [self._decision(h) for h in hunks], self.current)
        current = self.current_hunk()
        if self.review_state.can_decide and current is not None:
            self.hunk_bar.show_for(current, self.current, len(hunks))
            self.hunk_bar.accept_button.setEnabled(self._decision(current) is not True)
            self.hunk_bar.reject_button.setEnabled(self._decision(current) is not False)
        else:
            self.hunk_bar.hide()

    def _scroll_to_current(self) -> None:
        if 0 <= self.current < len(self.hunks):
            scroll_to_hunk(self.view, self.hunks[self.current])

    # ----- decisions ---------------------------------------------------------------------------
    def _decision(self, hunk: Hunk) -> bool | None:
        return self.review_state.decision(hunk)

    def run_action(self, name: str) -> None:
        actions: dict[str, Callable[[], None]] = {
            "accept_all": self.accept_all,
            "reject_all": self.reject_all,
            "accept_hunk": lambda: self.decide(True),
            "reject_hunk": lambda: self.decide(False),
            "next": lambda: self.move_current(1),
            "previous": lambda: self.move_current(-1),
            "escape": self.cancel if self.state is ReviewPhase.STREAMING else self.reject_all,
        }
        actions[name]()

    def _on_view_caret(self, line: int, _column: int) -> None:
        """A click (or the caret) on a hunk's lines or its deletion box makes it current."""
        line -= 1
        for position, hunk in enumerate(self.hunks):
            if hunk.new_start <= line < hunk.new_end or (
                not hunk.new_lines and line == box_line(hunk)
            ):
                if position != self.current:
                    self.review_state = self.review_state.with_current(position)
                    self._decorate()
                    self._update_header()
                return

    def move_current(self, step: int) -> None:
        if not self.hunks:
            return
        self.review_state = self.review_state.moved(step)
        self._decorate()
        self._update_header()
        self._scroll_to_current()

    def decide(self, accept: bool) -> None:
        """Accept or reject the current hunk, then go to the next undecided one; the last
        decision applies the accepted hunks (once the apply has finished)."""
        if not self.review_state.can_decide or self.review_state.current_hunk() is None:
            return
        self.review_state = self.review_state.decided(accept)
        if self.review_state.ready_to_apply:
            self._apply()
            return
        self.review_state = self.review_state.with_current(
            self.review_state.next_undecided(self.current + 1)
        )
        self._decorate()
        self._update_header()
        self._scroll_to_current()

    def accept_all(self) -> None:
        """Accept every hunk not rejected, and apply."""
        if self.state is not ReviewPhase.REVIEW:
            if self.state is ReviewPhase.STREAMING:
                self._show_message(
                    "The apply is still being written; accept when it is done (Esc stops it).",
                    "info",
                )
            return
        self.review_state = self.review_state.accepting_rest()
        self._apply()

    def reject_all(self) -> None:
        """Close the review; the buffer is left exactly as it was."""
        self.runner.stop()
        self._finish(self.review_state.reject_outcome())

    # ----- applying ----------------------------------------------------------------------------
    def _apply(self) -> None:
        assert self.result is not None
        accepted = [h for h in self.hunks if self._decision(h) is True]
        current = self.buffer.text()
        if current != self.original:
            # the buffer changed during the review: three-way, or refused when they clash
            merged = merge3(self.original, current, _with_hunks(self.original, accepted))
            if merged is None:
                self._show_stale()
                return
            if not accepted:
                self._finish(ReviewOutcome.REJECTED)
                return
            self._applying = True
            try:
                replace_lines(self.buffer, current, merged)
            finally:
                self._applying = False
            self.applied_text = self.buffer.text()
            self._finish(ReviewOutcome.APPLIED)
            return
        if not accepted:
            self._finish(ReviewOutcome.REJECTED)
            return
        old = split_lines(self.original)
        starts = [0]
        for line in old:
            starts.append(starts[-1] + len(line.encode("utf-8")))
        buffer = self.buffer
        read_only = buffer.readOnly()
        self._applying = True
        try:
            buffer.setReadOnly(False)
            buffer.beginUndoAction()
            for hunk in sorted(accepted, key=lambda h: h.old_start, reverse=True):
                new = hunk.new_text
                buffer.setTargetRange(starts[hunk.old_start], starts[hunk.old_end])
                buffer.replaceTarget(len(new.encode("utf-8")), new)
            buffer.endUndoAction()
        finally:
            buffer.setReadOnly(read_only)
            self._applying = False
        self.applied_text = buffer.text()
        self._finish(ReviewOutcome.APPLIED)

    def _on_buffer_modified(self, flags: int, *_args: object) -> None:
        """The buffer changed under the review (a command, a reload from disk): its hunks are
        stale while the text differs from the one they were computed against."""
        if self._applying or not int(flags) & (SC_MOD_INSERTTEXT | SC_MOD_DELETETEXT):
            return
        before = self.state
        current = self.buffer.text()
        merges = current == self.original or (
            self.state in (ReviewPhase.REVIEW, ReviewPhase.STALE)
            and merge3(self.original, current, _with_hunks(self.original, self.hunks)) is not None
        )
        was_merging = self._merging
        self._merging = current != self.original and merges
        self.review_state = self.review_state.buffer_changed(not merges)
        if self.state is ReviewPhase.STALE and before is not ReviewPhase.STALE:
            self._show_stale()
        elif self.state is ReviewPhase.REVIEW and (before is ReviewPhase.STALE or was_merging):
            # changed back (undone), or merging no more: the hunks fit again as they are
            self._hide_message()
            if self.result is not None and self.result.removals:
                self._warn_removals(self.result.removals)
            self._decorate()
            self._update_header()
        if self.state is ReviewPhase.REVIEW and self._merging:
            self._show_message(
                f"{self.title} changed during the review, away from these changes: accepting "
                "merges them into its text as it is now (your edits stay).",
                "info",
            )

    def _show_stale(self) -> None:
        self.review_state = self.review_state.went_stale()
        self.hunk_bar.hide()
        self._show_message(
            f"{self.title} changed during the review: these changes were computed for the "
            "text it had before, so they are not applied. Apply the block again to review it "
            "against the current text.",
            "error",
            (("Apply again", self.restart), ("Discard", self.reject_all)),
        )
        self._update_header()

    def _warn_removals(self, removals: tuple[Removal, ...]) -> None:
        count = sum(r.count for r in removals)
        first = removals[0]
        where = (
            f"line {first.start + 1}"
            if first.end - first.start <= 1
            else (f"lines {first.start + 1}–{first.end}")
        )
        more = f" and {len(removals) - 1} more place(s)" if len(removals) > 1 else ""
        lines = "line" if count == 1 else "lines"
        total = sum(1 for x in self.original.splitlines() if x.strip())
        if count * 2 >= total:  # most of the file: say so (a block that is a whole new file)
            lines = f"of the file's {total} lines"
        self._show_message(
            f"⚠ This apply removes {count} {lines} the block does not mention ({where}{more}: "
            f"{first.reason}). Check them before accepting.",
            "warning",
            (("Show", lambda: self._go_to_removal(first)),),
        )

    def _go_to_removal(self, removal: Removal) -> None:
        for position, hunk in enumerate(self.hunks):
            if hunk.old_start <= removal.start < max(hunk.old_end, hunk.old_start + 1):
                self.review_state = self.review_state.with_current(position)
                self._decorate()
                self._update_header()
                self._scroll_to_current()
                return

    # ----- header and messages -------------------------------------------------------------------
    def _update_header(self) -> None:
        self.title_label.setText(f"<b>Apply</b> · {self.title}")
        n = len(self.hunks)
        accepted = sum(1 for h in self.hunks if self._decision(h) is True)
        rejected = sum(1 for h in self.hunks if self._decision(h) is False)
        changes = f"{n} change{'s' if n != 1 else ''}"
        if self.state is ReviewPhase.STREAMING:
            lines = _lf(self.received).count("\n")
            text = f"Writing… {lines} lines · {changes} so far"
            if self.notice:
                text += f" · {self.notice}"
        elif self.state in (ReviewPhase.REVIEW, ReviewPhase.STALE):
            source = self.result.source if self.result is not None else ""
            parts = [f"Change {self.current + 1} of {n}" if self.current >= 0 else changes]
            if accepted or rejected:
                parts.append(f"{accepted} accepted, {rejected} rejected")
            gray = sum(1 for h in self.hunks if h.kind != HunkKind.SUBSTANTIVE)
            if gray:
                parts.append(f"{gray} whitespace/rename (grayed)")
            if source:
                parts.append(
                    f"by the {source} path"
                    if source in ("deterministic", "model")
                    else f"from {source}"
                )
            text = " · ".join(parts)
        elif self.state is ReviewPhase.FAILED:
            text = "Nothing was changed."
        else:
            text = ""
        self.status_label.setText(text)
        self.status_label.setToolTip(self.notice)
        self.stop_button.setVisible(self.state is ReviewPhase.STREAMING)
        self.accept_all_button.setEnabled(self.state is ReviewPhase.REVIEW)
        self.prev_button.setEnabled(n > 1)
        self.next_button.setEnabled(n > 1)
        # A refusal has nothing to accept, reject or step through: its message bar's Close
        # is the one way on (the shortcuts stay harmless).
        for button in (
            self.prev_button,
            self.next_button,
            self.accept_all_button,
            self.reject_all_button,
        ):
            button.setVisible(self.state is not ReviewPhase.FAILED)

    def _show_message(
        self, text: str, kind: str, actions: tuple[tuple[str, Callable[[], None]], ...] = ()
    ) -> None:
        for button in self._message_buttons:
            button.deleteLater()
        self._message_buttons = []
        self.message_kind = kind
        self.message_label.setText(text)
        for title, callback in actions:
            button = QPushButton(title)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(callback)
            self._message_row.addWidget(button)
            self._message_buttons.append(button)
        colour = {"warning": _colour("warning", self.theme), "error": "#f14c4c"}.get(
            kind, "#3794ff"
        )
        self.message_bar.setStyleSheet(f"#ReviewMessage {{ border-left: 4px solid {colour}; }}")
        self.message_bar.show()

    def _hide_message(self) -> None:
        self.message_kind = ""
        self.message_bar.hide()

    def set_font(self, family: str, size: int) -> None:
        self.view.font_family, self.view.font_size = family, size
        self.apply_theme(self.theme)

    def apply_theme(self, theme: Theme) -> None:
        self.theme = theme
        self.view.apply_theme(theme)
        self.hunk_bar.apply_theme(theme)
        self.header.apply_theme(theme)
        self._decorate()

    # ----- queries (tests, the window) -----------------------------------------------------------
    def view_text(self) -> str:
        return self.view.text()

    def accepted(self) -> list[Hunk]:
        return [h for h in self.hunks if self._decision(h) is True]

    def current_hunk(self) -> Hunk | None:
        return self.hunks[self.current] if 0 <= self.current < len(self.hunks) else None

    def deletion_boxes(self) -> dict[int, str]:
        """View line -> the deletion box's text shown below it."""
        return self.view.deletion_boxes()

    def marked_lines(self, mark: int) -> list[int]:
        view = self.view
        return [line for line in range(view.lineCount()) if view.markerGet(line) & (1 << mark)]

    def focus(self) -> None:
        self.view.focus()
