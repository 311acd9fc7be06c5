"""The multi-file edit review: a proposed set of file changes (``forecode_core.edits``)
reviewed as one, then applied to the buffers as one undoable step.

What the user sees (one ``EditSetReview`` in the editor area, the tabs hidden under it):

- a header: "Edit files", the state ("Change 2 of 3 in app/main.py"), Accept file / Reject
  file, Accept all (Ctrl+Enter), Reject all (Ctrl+Backspace);
- the files on the left, each with its status -- ``A`` new, ``D`` deleted, ``M`` modified,
  ``!`` could not be resolved (its reason in the row's tooltip and in the message bar when
  selected; never applied) -- and its hunk count and decisions;
- the selected file's proposed text on the right, in the apply review's style
  (``app.ui.apply_review``: added lines on a green background with a margin bar, removed lines
  in a red box above the lines that replace them, whitespace/rename hunks grayed), with the
  floating Accept / Reject bar at the current hunk; a safety warning from the apply pipeline
  (code the block did not mention) above it.

Keys as in the apply review (Y / Ctrl+Y accept the hunk, N / Ctrl+N reject it, F7 / Shift+F7
move, Ctrl+Enter accept all, Ctrl+Backspace or Esc reject all). Deciding the last undecided
hunk of the set applies it; so does Accept all.

Nothing touches the user's files or buffers before that. Applying (``apply_set`` through an
``EditSetHost``, the window's documents) first checks every file (a buffer the user changed
meanwhile is merged three-way with the set's text, refused when both changed the same or
neighbouring lines; a deleted file's buffer still holds the text the set saw; a new file's path
is still free), so a stale set changes nothing; then it edits each modified buffer in ONE undo
action (accepted hunks only, bottom-up), creates each new file (empty on disk, its text in the
buffer, unsaved like any other change), and moves each deleted file to the trash (its tab
closed). The result is an ``AppliedSet``.

Undo -- what a VS Code user expects: a workspace edit (a rename across files, a refactoring)
is undone as one, from any of its files. ``undo_set`` reverts the whole set (each buffer's one
undo action, the new files removed to the trash, the deleted files written back from the text
they had) after checking that no touched buffer changed since; the window's owner
(``app.ui.owners.edit_set``) offers it when Ctrl+Z is pressed in a touched buffer whose last
change is the set's ("Undo the multi-file edit in N files?" / "Only this file"), and as the
palette command "Edits: Undo the Last Multi-file Edit".
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from forecode_core.apply.merge import merge3
from forecode_core.edits.events import FileChange, FileChangeKind
from forecode_core.edits.review import AcceptedFile, EditSetState, FileReview
from forecode_core.text.languages import language_for_path

from .apply_review import (
    HunkBar,
    ReviewHeader,
    ReviewView,
    changed_span,
    mark_hunks,
    scroll_to_hunk,
)
from .editor import CodeEditor
from .theme import Theme

__all__ = [
    "AppliedSet",
    "EditSetHost",
    "EditSetReview",
    "apply_set",
    "can_undo_set",
    "undo_set",
]

_STATUS = {
    FileChangeKind.NEW: "A",
    FileChangeKind.DELETED: "D",
    FileChangeKind.MODIFIED: "M",
    FileChangeKind.FAILED: "!",
}
_ids = itertools.count(1)


# ----- applying and undoing ---------------------------------------------------------------------


class EditSetHost(Protocol):
    """Where a set is applied: the window's documents (``app.ui.owners.edit_set``), or a
    test's. Paths are workspace-relative."""

    def exists(self, path: str) -> bool: ...

    def open_editor(self, path: str) -> CodeEditor | None:
        """The buffer of an existing file (opened when it is not open); None: it cannot be."""
        ...

    def create_file(self, path: str) -> CodeEditor | None:
        """A new, empty file at ``path`` (never over an existing one), opened."""
        ...

    def delete_file(self, path: str) -> str:
        """Close its tab and move it to the trash; "" or why it failed."""
        ...

    def restore_file(self, path: str, text: str) -> str:
        """Write ``text`` back at ``path`` (the undo of a delete) and open it; "" or why not."""
        ...


@dataclass
class _Touched:
    path: str
    kind: FileChangeKind
    editor: CodeEditor | None  # None for a deleted file
    before: str
    after: str


@dataclass
class AppliedSet:
    """A set applied to the buffers: what to undo."""

    title: str
    touched: list[_Touched] = field(default_factory=list)
    id: int = field(default_factory=lambda: next(_ids))
    undone: bool = False

    @property
    def paths(self) -> list[str]:
        return [t.path for t in self.touched]

    def editors(self) -> list[CodeEditor]:
        return [t.editor for t in self.touched if t.editor is not None]


def _replace_hunks(editor: CodeEditor, before: str, after: str) -> None:
    """``editor`` (holding ``before``) changed to ``after`` in ONE undo action: the changed
    middle only, so the caret and markers elsewhere stay."""
    old, new = before.encode("utf-8"), after.encode("utf-8")
    head, tail = changed_span(old, new)
    middle = new[head : len(new) - tail]
    read_only = editor.readOnly()
    editor.setReadOnly(False)
    editor.beginUndoAction()
    try:
        editor.setTargetRange(head, len(old) - tail)
        editor.replaceTarget(len(middle), middle.decode("utf-8"))
    finally:
        editor.endUndoAction()
        editor.setReadOnly(read_only)


def _check(
    accepted: Sequence[AcceptedFile], host: EditSetHost
) -> tuple[dict[str, tuple[CodeEditor, str, str]], str]:
    """Every file still as the set expects (the modified buffers opened): each modified
    file's editor, its text now and the text it gets -- the accepted file, merged three-way
    (``forecode_core.apply.merge``) into a buffer the user changed meanwhile -- or why the
    set is stale ("" when not): a new file's path taken, a buffer changed on the lines the
    set changes."""
    editors: dict[str, tuple[CodeEditor, str, str]] = {}
    for item in accepted:
        if item.kind is FileChangeKind.NEW:
            if host.exists(item.path):
                return editors, f"{item.path} exists now; the set would create it"
            continue
        editor = host.open_editor(item.path)
        if editor is None:
            return editors, f"{item.path} cannot be opened"
        current = editor.text()
        target = merge3(item.original, current, item.text)
        if target is None or (item.kind is FileChangeKind.DELETED and current != item.original):
            return editors, f"{item.path} changed since the edit was proposed"
        editors[item.path] = (editor, current, target)
    return editors, ""


def apply_set(
    accepted: Sequence[AcceptedFile], host: EditSetHost, title: str = "multi-file edit"
) -> AppliedSet | str:
    """Apply the accepted files (module docstring); a sentence instead when the set is stale
    or a file cannot be written (then nothing, or as little as possible, was changed: the
    files applied before a failure are undone)."""
    editors, stale = _check(accepted, host)
    if stale:
        return f"{stale}: nothing was changed. Ask again to get a set for the current text."
    applied = AppliedSet(title)
    for item in accepted:
        problem = ""
        if item.kind is FileChangeKind.MODIFIED:
            editor, current, target = editors[item.path]
            _replace_hunks(editor, current, target)
            applied.touched.append(_Touched(item.path, item.kind, editor, current, target))
        elif item.kind is FileChangeKind.NEW:
            created = host.create_file(item.path)
            if created is None:
                problem = f"{item.path} could not be created"
            else:
                _replace_hunks(created, created.text(), item.text)
                applied.touched.append(_Touched(item.path, item.kind, created, "", item.text))
        else:
            problem = host.delete_file(item.path)
            if not problem:
                applied.touched.append(_Touched(item.path, item.kind, None, item.original, ""))
        if problem:
            undo_set(applied, host)
            return f"{problem}: nothing was changed."
    return applied


def can_undo_set(applied: AppliedSet) -> str:
    """ "" when ``undo_set`` can revert the whole set now, else why not."""
    if applied.undone:
        return "it was undone already"
    for item in applied.touched:
        if item.editor is not None and item.editor.text() != item.after:
            return f"{item.path} changed since the edit was applied"
    return ""


def undo_set(applied: AppliedSet, host: EditSetHost) -> str:
    """Revert the whole set (module docstring); "" or why it was not undone (then nothing
    was)."""
    why = can_undo_set(applied)
    if why:
        return why
    problems: list[str] = []
    for item in reversed(applied.touched):
        if item.kind is FileChangeKind.DELETED:
            problem = host.restore_file(item.path, item.before)
            if problem:
                problems.append(problem)
        elif item.editor is not None:
            item.editor.undo()
            if item.kind is FileChangeKind.NEW:
                problem = host.delete_file(item.path)
                if problem:
                    problems.append(problem)
    applied.undone = True
    return "; ".join(problems)


# ----- the review widget ------------------------------------------------------------------------


class EditSetReview(QFrame):
    """A proposed set under review; ``apply_requested(accepted files)`` when the decisions
    are made (the owner applies them and calls ``applied`` or ``refused``); ``finished``
    with "applied", "rejected" or "closed"."""

    apply_requested = Signal(object)  # tuple[AcceptedFile, ...]
    finished = Signal(str)

    def __init__(
        self,
        changes: Sequence[FileChange],
        *,
        title: str = "",
        theme: Theme | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("EditSetReview")
        self.title = title or "Edit files"
        self.state = EditSetState.of(changes)
        self.outcome = ""
        self._shown_file = -1
        self._scrolled_to = (-1, -1)  # the (file, hunk) the view was last scrolled to
        # the shadow workspace's check (``set_check``): a note for the header, and the new
        # problems each file's change causes
        self.check_note = ""
        self.problems: dict[str, tuple[str, ...]] = {}

        self._build_header()
        self.message_label = QLabel()
        self.message_label.setObjectName("ReviewMessage")
        self.message_label.setWordWrap(True)
        self.message_label.hide()

        self.file_list = QListWidget()
        self.file_list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.view = ReviewView()
        self.hunk_bar = HunkBar(self.view)
        splitter = self.splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.file_list)
        splitter.addWidget(self.view)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([220, 700])
        self._list_fitted = False
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.header)
        column.addWidget(self.message_label)
        column.addWidget(splitter, 1)

        self.file_list.currentRowChanged.connect(self._on_row)
        self.view.action.connect(self.run_action)
        self.hunk_bar.accept_button.clicked.connect(lambda: self.decide_hunk(True))
        self.hunk_bar.reject_button.clicked.connect(lambda: self.decide_hunk(False))
        self.accept_file_button.clicked.connect(lambda: self.decide_file(True))
        self.reject_file_button.clicked.connect(lambda: self.decide_file(False))
        self.accept_all_button.clicked.connect(self.accept_all)
        self.reject_all_button.clicked.connect(self.reject_all)
        if theme is not None:
            self.apply_theme(theme)
        self._fill_list()
        self._show()

    def _build_header(self) -> None:
        self.header = ReviewHeader()
        self.title_label = self.header.title_label
        self.status_label = self.header.status_label
        top = self.header.row
        self.accept_file_button = QPushButton("Accept file")
        self.reject_file_button = QPushButton("Reject file")
        self.accept_all_button = QPushButton("Accept all  Ctrl+Enter")
        self.reject_all_button = QPushButton("Reject all  Ctrl+Backspace")
        for button in (
            self.accept_file_button,
            self.reject_file_button,
            self.accept_all_button,
            self.reject_all_button,
        ):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            top.addWidget(button)

    # ----- decisions -----------------------------------------------------------------------
    def run_action(self, name: str) -> None:
        actions: dict[str, Callable[[], None]] = {
            "accept_all": self.accept_all,
            "reject_all": self.reject_all,
            "accept_hunk": lambda: self.decide_hunk(True),
            "reject_hunk": lambda: self.decide_hunk(False),
            "next": lambda: self.move_current(1),
            "previous": lambda: self.move_current(-1),
            "escape": self.reject_all,
        }
        actions[name]()

    def decide_hunk(self, accept: bool) -> None:
        if self.outcome:
            return
        self.state = self.state.decide_hunk(accept)
        self._after_decision()

    def decide_file(self, accept: bool) -> None:
        if self.outcome:
            return
        self.state = self.state.decide_file(accept)
        self._after_decision()

    def accept_all(self) -> None:
        if self.outcome:
            return
        self.state = self.state.decide_rest(True)
        self._after_decision()

    def reject_all(self) -> None:
        """Close the review: nothing is changed."""
        if self.outcome:
            return
        self._finish("rejected")

    def close_review(self) -> None:
        if not self.outcome:
            self._finish("closed")

    def move_current(self, step: int) -> None:
        review = self.state.file
        if review is None or not review.hunks:
            return
        self.state = self.state.with_hunk((self.state.current_hunk + step) % len(review.hunks))
        self._show()

    def _after_decision(self) -> None:
        self._fill_list()
        self._show()
        if self.state.ready:
            accepted = self.state.accepted_files()
            if not accepted:
                self._finish("rejected")
            else:
                self.apply_requested.emit(accepted)

    # ----- the owner's answers -------------------------------------------------------------
    def set_check(self, note: str, problems: Mapping[str, Sequence[str]]) -> None:
        """The shadow's verdict: ``note`` for the header ("Checking…", "2 new problems",
        "no new problems"), ``problems`` the new diagnostics by file, shown in its row and
        above its hunks."""
        self.check_note = note
        self.problems = {path: tuple(items) for path, items in problems.items() if items}
        self._fill_list()
        self._show()

    def applied(self) -> None:
        self._finish("applied")

    def refused(self, message: str) -> None:
        """The set could not be applied (stale): say so; the decisions stay."""
        self._show_message(message)

    def _finish(self, outcome: str) -> None:
        self.outcome = outcome
        self.hunk_bar.hide()
        self.finished.emit(outcome)

    # ----- showing ---------------------------------------------------------------------------
    def _fill_list(self) -> None:
        self.file_list.blockSignals(True)
        self.file_list.clear()
        for review in self.state.files:
            found = self.problems.get(review.path, ())
            flag = f" · ⚠ {len(found)} new problem{'s' if len(found) != 1 else ''}" if found else ""
            item = QListWidgetItem(_row_text(review) + flag)
            change = review.change
            item.setToolTip(change.error or change.warning or change.path)
            self.file_list.addItem(item)
        self.file_list.setCurrentRow(self.state.current_file)
        self.file_list.blockSignals(False)
        self._fit_list()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit_list()  # the splitter's real width is known once shown

    def _fit_list(self) -> None:
        """Once, at the first fill: the list as wide as its longest row ("M  src/pkg/long_name.py
        (2 changes)" was cut at 220 px), at most 45 % of the review; the user's drag after
        that is kept."""
        if self._list_fitted or self.file_list.count() == 0 or not self.splitter.isVisible():
            return
        self._list_fitted = True
        metrics = self.file_list.fontMetrics()
        rows = (self.file_list.item(i).text() for i in range(self.file_list.count()))
        need = max(metrics.horizontalAdvance(text) for text in rows) + 40
        total = sum(self.splitter.sizes()) or 920
        width = min(need, int(total * 0.45))
        if width > self.splitter.sizes()[0]:
            self.splitter.setSizes([width, total - width])

    def _on_row(self, row: int) -> None:
        if 0 <= row < len(self.state.files) and row != self.state.current_file:
            self.state = self.state.select(row)
            self._show()

    def _show(self) -> None:
        review = self.state.file
        if review is None:
            return
        if self.file_list.currentRow() != self.state.current_file:
            self.file_list.blockSignals(True)
            self.file_list.setCurrentRow(self.state.current_file)
            self.file_list.blockSignals(False)
        change = review.change
        if self._shown_file != self.state.current_file:
            self._shown_file = self.state.current_file
            self.view.set_language(language_for_path(change.path))
            shown = "" if change.kind is FileChangeKind.DELETED else change.new_text
            if change.kind is FileChangeKind.FAILED:
                shown = change.original
            self.view.setReadOnly(False)
            self.view.setText(shown.replace("\r\n", "\n"))
            self.view.setReadOnly(True)
        found = self.problems.get(change.path, ())
        if change.kind is FileChangeKind.FAILED:
            self._show_message(f"{change.path} could not be changed: {change.error}")
        elif found:
            self._show_message(
                f"⚠ Checked in the shadow workspace: this change to {change.path} causes "
                + "; ".join(found)
            )
        elif change.warning:
            self._show_message(f"⚠ {change.path}: this change {change.warning}. Check it.")
        else:
            self.message_label.hide()
        current = (self.state.current_file, self.state.current_hunk)
        if current != self._scrolled_to and 0 <= current[1] < len(review.hunks):
            # the change the header names, in sight (once: a late check never moves the view)
            self._scrolled_to = current
            scroll_to_hunk(self.view, review.hunks[current[1]])
        _decorate(self.view, review, self.state.current_hunk, self.hunk_bar)
        self._update_header()

    def _update_header(self) -> None:
        n = len(self.state.files)
        title = html.escape(self.title)  # a rename's names are the user's text
        self.title_label.setText(f"<b>{title}</b> · {n} file{'s' if n != 1 else ''}")
        review = self.state.file
        text = ""
        if review is not None and review.hunks:
            text = f"Change {self.state.current_hunk + 1} of {len(review.hunks)} in {review.path}"
        elif review is not None:
            text = f"{review.path}: nothing to apply"
        if self.check_note:
            text += f" · {self.check_note}"
        self.status_label.setText(text)
        can = review is not None and bool(review.hunks) and not self.outcome
        self.accept_file_button.setEnabled(can)
        self.reject_file_button.setEnabled(can)

    def _show_message(self, text: str) -> None:
        self.message_label.setText(text)
        self.message_label.show()

    def apply_theme(self, theme: Theme) -> None:
        self.view.apply_theme(theme)
        self.hunk_bar.apply_theme(theme)
        self.header.apply_theme(theme)
        self.message_label.setStyleSheet(
            "#ReviewMessage { border-left: 4px solid #cca700; padding: 4px 8px; }"
        )

    def focus(self) -> None:
        self.view.focus()

    # ----- queries (tests) ---------------------------------------------------------------------
    def rows(self) -> list[str]:
        return [self.file_list.item(i).text() for i in range(self.file_list.count())]

    def deletion_boxes(self) -> dict[int, str]:
        return self.view.deletion_boxes()


def _row_text(review: FileReview) -> str:
    change = review.change
    status = _STATUS[change.kind]
    n = len(review.hunks)
    if change.kind is FileChangeKind.FAILED:
        return f"{status}  {change.path}  — not resolved"
    accepted = sum(1 for d in review.decisions if d is True)
    rejected = sum(1 for d in review.decisions if d is False)
    decided = f" · {accepted}✓ {rejected}✕" if accepted or rejected else ""
    return f"{status}  {change.path}  ({n} change{'s' if n != 1 else ''}){decided}"


def _decorate(view: ReviewView, review: FileReview, current: int, bar: HunkBar) -> None:
    """The apply review's marks for ``review``'s hunks (``app.ui.apply_review.mark_hunks``);
    the hunk bar at the current hunk while it is undecided."""
    mark_hunks(view, review.hunks, review.decisions, current)
    if 0 <= current < len(review.hunks) and review.decisions[current] is None:
        bar.show_for(review.hunks[current], current, len(review.hunks))
    else:
        bar.hide()
