"""Multi-file edits in the window: the chat's "Edit files" mode and the palette command that
start one, the review of the proposed set (``app.ui.edit_set_review``) in the editor area,
applying it to the documents, and undoing it as one.

- ``Edits: Edit Files with AI…`` opens the chat with "Edit files" on; a question sent in
  that mode goes to the service's ``Edits`` RPC (``edits_backend``: the router's ``edits``)
  with the chat's context (the current file, the ``@`` files); the answer streams into the
  transcript like a reply, and its set (``EditsDone.files``) opens in the review.
- The set is checked in the shadow workspace (``check_in_shadow``: the workspace's
  ``app.services.shadow.ShadowWorkspace``, ``shadow()``) while the review opens: the header
  says "checking…", then each file's new problems show in its row and above its hunks (as
  the apply review's check does; the review does not wait for it).
- New errors go back to the model for up to ``shadow.repairRounds`` rounds (as for apply:
  ``app.ui.repair_loop.repair_set`` on the owner's one repair thread, every file's new
  diagnostics sent through the same Edits RPC with the set's proposed files, each answer
  checked in the shadow again). The review then shows the final set (a new review, while the
  user has decided nothing; a round that made it worse is never the set shown) and the
  round's report in its header ("1 repair round: fixed F821 ...").
- Applying goes through ``DocumentsHost`` (the open documents; a file not open is opened;
  a new file created empty and opened with its text unsaved; a deleted file's tab closed and
  the file moved to the trash, only after the accept).
- Undo as in VS Code for a workspace edit: Ctrl+Z in any touched buffer whose text is still
  the set's offers "Undo the multi-file edit in N files" (or this file only); the palette's
  ``Edits: Undo the Last Multi-file Edit`` does the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import QMessageBox, QVBoxLayout, QWidget

from app.services.saver import SaveOutcome, SaveRequest, SaveResult, saver
from app.services.threads import SerialExecutor
from forecode_core.chat.types import ChatParams
from forecode_core.edits.events import EditsDone, FileChange, FileChangeKind
from forecode_core.store.settings import Settings
from forecode_core.streams import Done, FailureCode, StreamError

from ..edit_set_review import AppliedSet, EditSetReview, apply_set, can_undo_set, undo_set
from ..editor import CodeEditor
from ..explorer_ops import move_to_trash
from ..repair_loop import SetRepairOutcome, repair_set
from ..theme import theme_named
from .commands import Command
from .documents import Documents
from .workspace import Workspace

__all__ = ["DocumentsHost", "EditSetOwner", "check_in_shadow", "describe_verdict"]


def check_in_shadow(shadow: Any | None, changes: Sequence[FileChange]) -> Future[Any] | None:
    """Check a proposed set in the shadow workspace (``app.services.shadow.ShadowWorkspace``):
    the new and modified files written into the copy, the diagnostics they cause that were not
    there before (``Verdict.new``), the copy put back; the user's files are never written.
    None without a shadow (no folder) or with nothing to check. (A deleted file is not
    checked: the shadow's check writes texts. The repair rounds that send the problems back to
    the model are ``EditSetOwner``'s, with ``app.ui.repair_loop.repair_set``.)"""
    edits = {
        c.path: c.new_text
        for c in changes
        if c.kind in (FileChangeKind.MODIFIED, FileChangeKind.NEW)
    }
    if shadow is None or not edits:
        return None
    originals = {c.path: c.original for c in changes if c.kind is FileChangeKind.MODIFIED}
    future: Future[Any] = shadow.submit_check(edits, originals)
    return future


def describe_verdict(verdict: Any) -> tuple[str, dict[str, list[str]]]:
    """The review's note and per-file problems for a shadow ``Verdict``."""
    status = str(getattr(verdict, "status", ""))
    if status != "checked":
        why = getattr(verdict, "note", "") or status.replace("_", " ")
        return f"not checked ({why})", {}
    problems: dict[str, list[str]] = {}
    for d in verdict.new:
        code = f" [{d.code}]" if d.code else ""
        problems.setdefault(d.path, []).append(
            f"line {d.line + 1}: {d.severity}: {d.message}{code}"
        )
    n = len(verdict.new)
    if not n:
        return "checked: no new problems", {}
    return f"checked: ⚠ {n} new problem{'s' if n != 1 else ''}", problems


class _Relay(QObject):
    """Brings a restore's write result from the writer thread to the UI thread."""

    landed = Signal(str, str, object)  # (path, text, (target, Future[SaveResult]))


class DocumentsHost:
    """``edit_set_review.EditSetHost`` over the window's documents and folder."""

    def __init__(
        self,
        workspace: Workspace,
        documents: Documents,
        trash: Callable[[Path], None] = move_to_trash,
        report: Callable[[str, int], None] = lambda _text, _ms: None,
    ) -> None:
        self._workspace = workspace
        self._documents = documents
        self._trash = trash
        self._report = report  # a failed restore's sentence (the status bar)
        self._relay = _Relay()
        self._relay.landed.connect(self._landed)
        self.restoring = 0  # restores queued whose write has not come back yet

    def _path(self, path: str) -> Path:
        root = self._workspace.root
        if root is None:
            raise OSError("no folder is open")
        return (root / path).resolve()

    def exists(self, path: str) -> bool:
        try:
            return self._path(path).exists()
        except OSError:
            return False

    def open_editor(self, path: str) -> CodeEditor | None:
        try:
            target = self._path(path)
        except OSError:
            return None
        doc = self._documents.find(target) or self._documents.open_file(target)
        if doc is None or doc.read_only_reason or doc.editor.readOnly():
            return None
        return doc.editor

    def create_file(self, path: str) -> CodeEditor | None:
        try:
            target = self._path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("x"):
                pass
        except OSError:
            return None
        return self.open_editor(path)

    def delete_file(self, path: str) -> str:
        try:
            target = self._path(path)
        except OSError as exc:
            return str(exc)
        doc = self._documents.find(target)
        if doc is not None:
            doc.editor.setSavePoint()  # its text is the set's to delete: no save prompt
            self._documents.close_tab(self._documents.tabs.indexOf(doc))
        try:
            self._trash(target)
        except OSError as exc:
            return f"{path} could not be moved to the trash: {exc}"
        return ""

    def restore_file(self, path: str, text: str) -> str:
        """Queue the write on the app's writer thread (``app.services.saver``): the UI
        thread never waits on the disk. "" once queued; the file's editor opens when the
        bytes have landed (``_landed``), and a failed write is reported then, its text
        opened as an unsaved buffer at that path (nothing is lost)."""
        try:
            target = self._path(path)
        except OSError as exc:
            return f"{path} could not be restored: {exc}"
        request = SaveRequest(target, text, "utf-8", overwrite=True, make_parents=True)
        future = saver().submit(request)
        relay = self._relay

        def landed(f: Future[SaveResult]) -> None:  # on the writer thread: hand it over
            with contextlib.suppress(RuntimeError):  # the window (and relay) went meanwhile
                relay.landed.emit(path, text, (target, f))

        self.restoring += 1
        future.add_done_callback(landed)
        return ""

    def _landed(self, path: str, text: str, written: tuple[Path, Future[SaveResult]]) -> None:
        self.restoring -= 1
        target, future = written  # the file written (the folder may have changed since)
        try:
            result = future.result()
        except Exception as exc:  # the writer's own failure: reported, never lost
            result = SaveResult(SaveOutcome.FAILED, message=f"{type(exc).__name__}: {exc}")
        if result.ok:
            self._documents.open_file(target)
            return
        doc = self._documents.new_untitled()
        doc.path = target  # Ctrl+S tries the same file again
        doc.editor.setText(text)
        why = f"{path} could not be restored: {result.message}"
        doc.banner.show_message(f"{why}. Its text is open here, unsaved.", "error")
        self._report(f"Undo of the multi-file edit: {why} (its text is open, unsaved).", 15000)


class _EditsAsChat:
    """The chat panel's backend in "Edit files" mode: its question goes to ``edits``
    (``last_params``: the request of the last set, which a repair round restates)."""

    def __init__(self, service: Callable[[], Any | None]) -> None:
        self._service = service
        self.last_params: ChatParams | None = None

    def ask(self, params: ChatParams) -> tuple[FileChange, ...]:
        """A repair round's request, blocking (a worker thread): the set of its answer."""
        for event in self._call(params):
            if isinstance(event, EditsDone):
                return event.files
            if isinstance(event, Done):
                break
        raise StreamError(FailureCode.INCOMPLETE, "the answer held no set of file changes")

    def chat(self, params: ChatParams) -> Any:
        self.last_params = params
        return self._call(params)

    def _call(self, params: ChatParams) -> Any:
        service = self._service()
        edits = getattr(service, "edits", None)
        if edits is None:
            raise StreamError(
                FailureCode.UNAVAILABLE,
                "Multi-file edits need the Forecode service, which is not connected yet.",
            )
        return edits(params)


class EditSetOwner(QObject):
    """``service()``: what answers ``edits(params)`` now (the router), asked on the chat's
    worker thread; ``chat_panel``: the chat panel (its "Edit files" mode and its
    ``edits_proposed`` signal); ``show_chat``: opens the chat panel; ``shadow``: the
    workspace's shadow now (set by the window)."""

    message = Signal(str, int)
    _checked = Signal(object, object)  # (review, Verdict or an exception), from the shadow
    _repairing = Signal(object, int, int)  # (review, round, new problems), from the repair
    _repaired = Signal(object, object)  # (review, SetRepairOutcome or an exception)

    def __init__(
        self,
        settings: Callable[[], Settings],
        workspace: Workspace,
        documents: Documents,
        chat_panel: Any,
        show_chat: Callable[[], None],
        service: Callable[[], Any | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        # the workspace's shadow now (the window sets it: the review owner's), or None
        self.shadow: Callable[[], Any | None] = lambda: None
        self._checked.connect(self._on_checked)
        self._repairing.connect(self._on_repairing)
        self._repaired.connect(self._on_repaired)
        self._repairer: SerialExecutor | None = None  # one thread, started once
        self._closed = False  # shutdown: late results from other threads are dropped
        self._repair_lock = threading.Lock()
        self._settings = settings
        self._documents = documents
        self._chat_panel = chat_panel
        self._show_chat = show_chat
        self.host = DocumentsHost(workspace, documents, report=self.message.emit)
        self.review: EditSetReview | None = None
        self.last: AppliedSet | None = None
        self._area: QVBoxLayout | None = None
        self._covered: QWidget | None = None
        self.undo_prompt: QMessageBox | None = None
        self.last_repair: SetRepairOutcome | None = None  # the last set's repair loop
        self._edits = _EditsAsChat(service)
        chat_panel.edits_backend = self._edits
        chat_panel.edits_proposed.connect(self.proposed)

    def commands(self) -> list[Command]:
        return [
            Command("edits.start", "Edits: Edit Files with AI…", "", self.start),
            Command("edits.undoLast", "Edits: Undo the Last Multi-file Edit", "", self.undo_last),
            Command(
                "edits.acceptAll",
                "Edits: Accept All Changes of the Multi-file Edit",
                "",
                lambda: self._review_action("accept_all"),
            ),
            Command(
                "edits.rejectAll",
                "Edits: Reject the Multi-file Edit",
                "",
                lambda: self._review_action("reject_all"),
            ),
        ]

    def _review_action(self, name: str) -> None:
        if self.review is None:
            self.message.emit("No multi-file edit is being reviewed.", 5000)
            return
        self.review.run_action(name)

    def place(self, area: QVBoxLayout, covered: QWidget) -> None:
        """The review shows in ``area`` in place of ``covered`` (the tabs)."""
        self._area, self._covered = area, covered

    # ----- starting ----------------------------------------------------------------------------
    def start(self) -> None:
        """The palette command: the chat in "Edit files" mode, the focus in its box."""
        self._chat_panel.set_edit_mode(True)
        self._show_chat()

    def proposed(self, done: object) -> None:
        """A set came back: check it (the shadow's hook), then review it."""
        if not isinstance(done, EditsDone) or not done.files:
            return
        review = self.show_review(done.files)
        try:
            future = check_in_shadow(self.shadow(), done.files)
        except RuntimeError:  # the shadow closed meanwhile
            future = None
        if future is None:
            return
        review.set_check("checking in the shadow workspace…", {})

        def done_checking(f: Future[Any]) -> None:  # on the shadow's thread: hand it over
            try:
                result: object = f.result()
            except BaseException as exc:  # a failed or cancelled check is said, not raised
                result = exc
            # A check that ends after the window closed has no one to tell (the owner's
            # C++ side may be gone: emitting would raise on the shadow's thread).
            with contextlib.suppress(RuntimeError):
                if not self._closed:
                    self._checked.emit(review, result)

        future.add_done_callback(done_checking)

    def _on_checked(self, review: object, result: object) -> None:
        if review is not self.review or not isinstance(review, EditSetReview):
            return  # the review closed meanwhile
        if isinstance(result, BaseException):
            review.set_check(f"not checked ({type(result).__name__})", {})
            return
        if self._start_repair(review, result):
            return
        note, problems = describe_verdict(result)
        review.set_check(note, problems)

    # ----- the repair rounds ---------------------------------------------------------------------
    def _start_repair(self, review: EditSetReview, verdict: Any) -> bool:
        """Send the set's new errors back to the model (``repair_set`` on the repair thread)
        when rounds are allowed, a request is known and the user has decided nothing."""
        rounds = self._settings().shadow_repair_rounds
        params = self._edits.last_params
        shadow = self.shadow()
        if rounds <= 0 or params is None or shadow is None or _decided(review):
            return False
        if str(getattr(verdict, "status", "")) != "checked" or not verdict.errors:
            return False
        with self._repair_lock:
            if self._repairer is None:
                self._repairer = SerialExecutor("forecode-edits-repair")
        changes = _changes(review)
        n = len(verdict.new)
        review.set_check(f"⚙ {n} new problem{'s' if n != 1 else ''}: repairing…", {})

        def check(current: Sequence[FileChange]) -> Any:
            future = check_in_shadow(shadow, current)
            return verdict if future is None else future.result()

        def work() -> None:
            try:
                result: object = repair_set(
                    changes,
                    verdict,
                    params,
                    check=check,
                    ask=self._edits.ask,
                    rounds=rounds,
                    going=lambda n, new: self._going(review, n, len(new)),
                )
            except BaseException as exc:  # said in the review (a cancelled check too)
                result = exc
            with contextlib.suppress(RuntimeError):  # the window closed meanwhile
                if not self._closed:
                    self._repaired.emit(review, result)

        self._repairer.submit(work)
        return True

    def _going(self, review: EditSetReview, round_no: int, problems: int) -> bool:
        """On the repair thread: whether the review is still open (then it is told)."""
        if self.review is not review:
            return False
        self._repairing.emit(review, round_no, problems)
        return True

    def _on_repairing(self, review: object, round_no: int, problems: int) -> None:
        if review is self.review and isinstance(review, EditSetReview):
            rounds = self._settings().shadow_repair_rounds
            review.set_check(
                f"⚙ repair round {round_no} of {rounds}: {problems} new "
                f"problem{'s' if problems != 1 else ''} sent back to the model…",
                {},
            )

    def _on_repaired(self, review: object, result: object) -> None:
        if review is not self.review or not isinstance(review, EditSetReview):
            return  # the review closed meanwhile
        if not isinstance(result, SetRepairOutcome):
            review.set_check(f"not checked ({type(result).__name__}: {result})", {})
            return
        shown, verdict = review, result.verdict
        if result.changes != _changes(review):
            if _decided(review):  # the user decided hunks meanwhile: their set stays
                verdict = dataclasses.replace(verdict, new=result.first)
                result = dataclasses.replace(
                    result, note="; the repaired version was not shown: hunks were decided"
                )
            else:
                shown = self.show_review(result.changes)
        self.last_repair = result
        note, problems = describe_verdict(verdict)
        report = result.report
        shown.set_check(f"{note} · {report}" if report else note, problems)

    def show_review(
        self, changes: Sequence[FileChange], title: str = "Edit files"
    ) -> EditSetReview:
        """The set's review over the tabs; ``title`` heads it (F2 gives "Rename a → b")."""
        if self.review is not None:
            self.review.close_review()
        review = EditSetReview(changes, title=title, theme=theme_named(self._settings().theme))
        review.apply_requested.connect(self._apply)
        review.finished.connect(lambda outcome, r=review: self._ended(r, outcome))
        self.review = review
        if self._area is not None and self._covered is not None:
            self._area.insertWidget(self._area.indexOf(self._covered), review, 1)
            self._covered.hide()
        review.show()
        review.focus()
        return review

    # ----- applying ----------------------------------------------------------------------------
    def _apply(self, accepted: object) -> None:
        review = self.review
        if review is None:
            return
        result = apply_set(accepted, self.host)  # type: ignore[arg-type]
        if isinstance(result, str):
            review.refused(result)
            return
        self._forget_last()
        self.last = result
        for editor in result.editors():
            editor.installEventFilter(self)
        review.applied()
        n = len(result.touched)
        self.message.emit(
            f"Applied the multi-file edit to {n} file{'s' if n != 1 else ''} "
            "(Ctrl+Z in any of them undoes the whole edit).",
            10000,
        )

    def _ended(self, review: EditSetReview, outcome: str) -> None:
        if self.review is review:
            self.review = None
        review.hide()
        review.deleteLater()
        if self._covered is not None:
            self._covered.show()
        doc = self._documents.current_document()
        if doc is not None:  # the keyboard back in the editor (the hidden review had it)
            doc.editor.focus()
        if outcome == "rejected":
            self.message.emit("Rejected the multi-file edit; nothing was changed.", 8000)

    # ----- undo ---------------------------------------------------------------------------------
    def undo_last(self) -> bool:
        """Undo the last applied set as one; False (and a message) when it cannot be."""
        applied = self.last
        if applied is None:
            self.message.emit("There is no multi-file edit to undo.", 5000)
            return False
        problem = undo_set(applied, self.host)
        if problem and not applied.undone:
            self.message.emit(f"The multi-file edit was not undone: {problem}.", 10000)
            return False
        self._forget_last()
        self.message.emit("Undid the multi-file edit." + (f" ({problem})" if problem else ""), 8000)
        return True

    def _forget_last(self) -> None:
        applied = self.last
        self.last = None
        if applied is not None:
            for editor in applied.editors():
                with contextlib.suppress(RuntimeError):
                    editor.removeEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Ctrl+Z in a buffer the last set touched, while it is still the set's: offer to
        undo the whole set (VS Code's "Undo in N files")."""
        applied = self.last
        if (
            applied is None
            or not isinstance(watched, CodeEditor)
            or event.type() not in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress)
            or not isinstance(event, QKeyEvent)
            or not event.matches(QKeySequence.StandardKey.Undo)
            or can_undo_set(applied)
        ):
            return False
        event.accept()
        if event.type() == QEvent.Type.KeyPress:
            self.offer_undo(watched)
        return True

    def offer_undo(self, editor: CodeEditor) -> QMessageBox:
        """The question Ctrl+Z asks in a touched buffer (non-modal)."""
        applied = self.last
        assert applied is not None
        n = len(applied.touched)
        box = QMessageBox(editor.window())
        box.setWindowTitle("Undo")
        box.setText(f"Undo the multi-file edit in {n} files?")
        box.setInformativeText("\n".join(applied.paths))
        every = box.addButton(f"Undo in {n} files", QMessageBox.ButtonRole.AcceptRole)
        only = box.addButton("Only this file", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(every)

        def answered() -> None:
            clicked = box.clickedButton()
            if clicked is every:
                self.undo_last()
            elif clicked is only:
                self._forget_last()  # the set is no longer whole
                editor.undo()

        box.finished.connect(lambda _result: answered())
        self.undo_prompt = box
        box.open()
        return box

    def apply_settings(self, settings: Settings) -> None:
        if self.review is not None:
            self.review.apply_theme(theme_named(settings.theme))

    def shutdown(self) -> None:
        self._closed = True  # late check or repair results are dropped
        if self.review is not None:
            self.review.close_review()
        if self._repairer is not None:
            self._repairer.shutdown(wait=False, cancel_futures=True)


def _changes(review: EditSetReview) -> tuple[FileChange, ...]:
    return tuple(f.change for f in review.state.files)


def _decided(review: EditSetReview) -> bool:
    """Whether the user decided any hunk of the review (a repair must not undo that)."""
    return any(d is not None for f in review.state.files for d in f.decisions)
