"""The review controller: apply reviews (a chat code block's Apply, the last code block, inline
edit) shown in the target document's pane, the buffer hidden under it and untouched until
accepted; the inline edit prompt (Ctrl+K on a selection) and whether Ctrl+K is the inline edit
(a selection) or the prefix of its chords (none).

Each review of a workspace file is checked in the workspace's shadow copy
(``app.services.shadow.ShadowWorkspace``, made on the first review of a folder and kept in step
by saves and its own scans; ``make_shadow`` is the seam): the "before" diagnostics are computed
while the apply streams, or earlier (``warm``: when the inline edit prompt opens, when a chat
answer's first code block for a workspace file is recognisable while the answer still streams
(``warm_while_streaming``; ``warm_for_answer`` at its end for blocks found later), when the
chat's "Edit files" mode is turned on (``warm_for_edits``), and, once the folder has a shadow,
when the user focuses a file), the new ones shown in the review when it is done. New errors go back
to the model for up to ``shadow.repairRounds`` rounds first (``app.ui.repair_loop``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QVBoxLayout

from app.services.shadow import ShadowWorkspace
from forecode_core.apply.block import ApplyInput
from forecode_core.apply.review_state import ReviewOutcome
from forecode_core.edits.events import EditsDone
from forecode_core.store.settings import Settings
from forecode_core.text.file_languages import language_id_for_path

from ..apply_backend import ApplyBackend
from ..apply_review import ApplyReview
from ..chat_view import CodeBlockView
from ..document import Document
from ..inline_edit import InlineEditPrompt
from ..theme import theme_named
from .commands import Command
from .documents import Documents
from .workspace import Workspace

__all__ = ["ReviewController"]

WARM_MAX_BYTES = 1 << 20  # files above this are checked when their review starts, not warmed
WARM_MAX_FILES = 4  # a chat answer's code blocks: at most this many target files warmed


@dataclass
class _AnswerWarm:
    """What one chat answer has warmed: its message view, how many of its segment widgets
    were read (a last prose label is read again: it may turn into a code block when its fence
    line completes; a code block's widget is kept as it grows), the last widget read (another
    one there: the reply started over) and its target files (relative path -> path), in the
    order found."""

    view: object
    read: int = 0
    mark: object = None
    targets: dict[str, Path] = field(default_factory=dict)


class ReviewController(QObject):
    """``backend``: where applies go; ``chat_messages``: the chat's message views now (for
    Apply the Last Code Block)."""

    inline_edit_allowed = Signal(bool)  # Ctrl+K is the inline edit now (else the chord prefix)
    message = Signal(str, int)

    def __init__(
        self,
        settings: Callable[[], Settings],
        workspace: Workspace,
        documents: Documents,
        backend: ApplyBackend,
        chat_messages: Callable[[], Sequence[Any]],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._workspace = workspace
        self._documents = documents
        self._chat_messages = chat_messages
        self.backend = backend
        self.reviews: dict[Document, ApplyReview] = {}
        self.inline_prompt: InlineEditPrompt | None = None
        self.shadow: ShadowWorkspace | None = None
        self._answer: _AnswerWarm | None = None  # the last chat answer's warmed targets
        self.make_shadow: Callable[[Path], ShadowWorkspace | None] = lambda root: ShadowWorkspace(
            root,
            rules=lambda: workspace.rules,  # the rules now: .gitignore may change
            fixtures=settings().shadow_fixtures,  # snapshotted, never linked (shadow_plan)
        )
        documents.closing.connect(self._on_closing)
        documents.current_changed.connect(self._on_current_changed)
        documents.saved.connect(self._on_saved)
        documents.disk_changed.connect(self._on_disk_changed)

    def commands(self) -> list[Command]:
        return [
            # Ctrl+K is enabled only while the editor has a selection: without one it stays
            # the prefix of the Ctrl+K chords (Ctrl+K Ctrl+O, Ctrl+K S).
            Command(
                "edit.inlineEdit", "Edit: Inline Edit of the Selection", "Ctrl+K", self.inline_edit
            ),
            Command(
                "chat.applyLast", "Chat: Apply the Last Code Block", "", self.apply_last_code_block
            ),
            Command(
                "apply.acceptAll",
                "Apply: Accept All Changes",
                "",
                lambda: self.review_action("accept_all"),
            ),
            Command(
                "apply.rejectAll",
                "Apply: Reject All Changes",
                "",
                lambda: self.review_action("reject_all"),
            ),
            Command("apply.next", "Apply: Next Change", "", lambda: self.review_action("next")),
            Command(
                "apply.previous",
                "Apply: Previous Change",
                "",
                lambda: self.review_action("previous"),
            ),
        ]

    # ----- starting a review -------------------------------------------------------------------
    def apply_requested(self, code: str, _language: str, path: str) -> None:
        """A chat code block's Apply: review it against the file its path hint names (when it
        is a workspace file), else the current document."""
        doc = self._target(path)
        if doc is None:
            self.message.emit("Open the file to apply this code to first.", 8000)
            return
        self.start_review(doc, code)

    def _target(self, hint: str) -> Document | None:
        documents = self._documents
        open_paths = {d.path for d in documents.documents() if d.path is not None}
        path = self._workspace.resolve_hint(hint, open_paths)
        if path is None:
            return documents.current_document()
        doc = documents.find(path)
        if doc is not None:
            documents.activate(doc)
            return doc
        return documents.open_file(path)

    def apply_last_code_block(self) -> None:
        """Apply the last code block of the chat's last answer that has one."""
        for view in reversed(self._chat_messages()):
            blocks = view.code_blocks() if view.role == "assistant" else []
            if blocks:
                block = blocks[-1]
                self.apply_requested(block.code, block.language.id, block.path_hint)
                return
        self.message.emit("The chat has no code block to apply.", 5000)

    def start_review(self, doc: Document, block: str, instruction: str = "") -> ApplyReview | None:
        """Review ``block`` (with ``instruction``: an inline edit) against ``doc``'s buffer, in
        its pane. Returns the review (None when the document cannot be changed)."""
        if doc.read_only_reason or doc.editor.readOnly():
            self.message.emit(f"{doc.title} is read-only; nothing can be applied to it.", 8000)
            return None
        old = self.reviews.get(doc)
        if old is not None:
            old.close_review()
        request = ApplyInput(
            path=self._documents.workspace_path(doc),
            language=doc.editor.language.id,
            original=doc.editor.text(),
            block=block,
            instruction=instruction,
        )
        settings = self._settings()
        shadow = self._shadow_for(doc)
        if shadow is not None:
            self._push_unsaved(shadow, doc)
            shadow.prepare({request.path: request.original})  # "before", while it streams
        review = ApplyReview(
            doc.editor,
            request,
            self.backend,
            title=doc.title,
            theme=theme_named(settings.theme),
            parent=doc,
            checker=shadow,
        )
        review.repair_rounds = settings.shadow_repair_rounds if shadow is not None else 0
        layout = doc.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(layout.indexOf(doc.editor) + 1, review, 1)
        doc.editor.hide()
        review.show()
        self.reviews[doc] = review
        review.finished.connect(lambda outcome, d=doc, r=review: self._end_review(d, r, outcome))
        self._documents.activate(doc)
        review.start()
        if not review.outcome:
            review.focus()
        self.update_inline_edit()
        return review

    # ----- the shadow workspace ------------------------------------------------------------------
    def _shadow_for(self, doc: Document) -> ShadowWorkspace | None:
        """The shadow of the workspace ``doc`` is in (made and synced on first use), or None
        for a file outside it."""
        root = self._workspace.root
        if root is None or doc.path is None or not doc.path.is_relative_to(root):
            return None
        return self.workspace_shadow()

    def workspace_shadow(self) -> ShadowWorkspace | None:
        """The open folder's shadow (made and synced on first use; a multi-file edit's set
        is checked in it too), or None without a folder."""
        root = self._workspace.root
        if root is None:
            return None
        if self.shadow is None or self.shadow.root != root.resolve():
            if self.shadow is not None:
                self.shadow.close()
            self.shadow = self.make_shadow(root)
            if self.shadow is not None:
                self.shadow.start()
        return self.shadow

    def warm(self, doc: Document, start: bool = False) -> None:
        """Get the shadow's servers ready for a review of ``doc`` (``ShadowWorkspace.warm``):
        they open it and its "before" diagnostics are computed now, not when the review
        starts. ``start``: make the shadow if the folder has none yet (a review is about to
        start: the inline edit prompt opened); else only an existing shadow warms (after
        the first review, the file the user focuses), so a user who never applies runs no
        second set of servers."""
        if (self.shadow is None and not start) or doc.editor.textLength() > WARM_MAX_BYTES:
            return  # a big file: its text is not copied on the UI thread at each focus
        shadow = self._shadow_for(doc)
        rel = self._rel(doc.path)
        if shadow is None or rel is None:
            return
        self._push_unsaved(shadow, doc)
        shadow.warm({rel: doc.editor.text()})

    def warm_while_streaming(self, _text: str = "") -> None:
        """A chunk of a chat answer was shown (the chat runner's ``delta``, connected after the
        panel's own slot): a Cursor user clicks Apply as soon as the answer ends, and the
        shadow's servers need seconds to start, so they are warmed as soon as a code block
        for a workspace file is recognisable, while the rest of the answer streams. The panel
        has already split the reply (``chat_markdown.StreamSegmenter``: a block exists once
        its fence line is complete, its language and path hint final), so only the segment
        widgets added since the last chunk are read (and the last one again): no text is
        parsed here. Each block's target is resolved as ``warm_for_answer`` resolves it (the
        Apply's own resolution); a file is warmed once per answer, at most
        ``WARM_MAX_FILES`` files. Each warm carries the answer's earlier targets too (their
        "before" is cached in the shadow): ``ShadowWorkspace.warm`` drops a warm still
        queued when the next comes, and the first block's may still wait behind the copy's
        first build. A chunk costs the UI thread the panel's list of messages (to find the
        answer) and its new widgets; a file not open is read on the shadow's thread. An "Edit
        files" answer's blocks warm the same way (its set is checked in this shadow)."""
        view = self._last_answer()
        if view is None:
            return
        state = self._answer_state(view)
        widgets: list[object] = view.segment_widgets
        if state.read and (len(widgets) < state.read or widgets[state.read - 1] is not state.mark):
            state.read = 0  # the reply started over (a fallback after the service broke off)
        fresh = [w for w in widgets[state.read :] if isinstance(w, CodeBlockView)]
        if widgets:
            last_is_code = isinstance(widgets[-1], CodeBlockView)
            state.read = len(widgets) if last_is_code else len(widgets) - 1
            state.mark = widgets[state.read - 1] if state.read else None
        self._warm_blocks(state, fresh)

    def warm_for_answer(self, _done: object = None) -> None:
        """A chat answer finished streaming (the chat runner's ``finished``): its code blocks'
        Apply buttons show now, and a Cursor or VS Code user applies right after reading, so
        the shadow is made (when the folder has none yet) and its servers warmed on each
        block's target not warmed while the answer streamed (``warm_while_streaming``):
        the workspace file the block's path hint names (the file that was current when the
        question was asked, for a block without a path), when the block's language is that
        file's (a shell command shown beside Python code warms nothing). An answer without
        such a block starts nothing: a user who only chats never runs the second set of
        servers. Open files warm with their buffer's text; a file not open (Apply opens it)
        is read on the shadow's thread, never on the UI thread. An "Edit files" answer
        (``EditsDone``) is a set already being checked: nothing more."""
        if isinstance(_done, EditsDone):
            return
        view = self._last_answer()
        if view is not None:
            self._warm_blocks(self._answer_state(view), view.code_blocks())

    def _last_answer(self) -> Any | None:
        return next((v for v in reversed(self._chat_messages()) if v.role == "assistant"), None)

    def _answer_state(self, view: object) -> _AnswerWarm:
        if self._answer is None or self._answer.view is not view:
            self._answer = _AnswerWarm(view)
        return self._answer

    def _warm_blocks(self, state: _AnswerWarm, blocks: Iterable[Any]) -> None:
        """Warm the targets of ``blocks`` the answer has not warmed yet (with its earlier
        ones: see ``warm_while_streaming``)."""
        found = False
        for block in blocks:
            if len(state.targets) >= WARM_MAX_FILES:
                break
            path = self._answer_target(block.path_hint, block.language.id)
            rel = self._rel(path)
            if path is not None and rel is not None and rel not in state.targets:
                state.targets[rel] = path
                found = True
        if found:
            self._warm_paths(dict(state.targets))

    def warm_for_edits(self, on: bool) -> None:
        """The chat's "Edit files" mode was turned on (its button or the palette's Edits
        command): a multi-file set is likely, and the chat sends the current file with it, so
        the shadow's servers start on that file now (a set's other files are checked by
        servers already running)."""
        doc = self._documents.current_document()
        if on and doc is not None and doc not in self.reviews:
            self.warm(doc, start=True)

    def _answer_target(self, hint: str, language: str) -> Path | None:
        documents = self._documents
        open_paths = {d.path for d in documents.documents() if d.path is not None}
        path = self._workspace.resolve_hint(hint, open_paths)
        if path is None or language_id_for_path(path) != language:
            return None
        return path

    def _warm_paths(self, targets: dict[str, Path]) -> None:
        texts: dict[str, str] = {}
        unopened: dict[str, Path] = {}
        for rel, path in targets.items():
            doc = self._documents.find(path)
            if doc is None:
                unopened[rel] = path
            elif doc not in self.reviews and doc.editor.textLength() <= WARM_MAX_BYTES:
                texts[rel] = doc.editor.text()
        shadow = self.workspace_shadow()
        if shadow is None or not (texts or unopened):
            return
        for other in self._documents.documents():  # the other unsaved buffers, as a review does
            other_rel = self._rel(other.path)
            if other_rel is not None and other_rel not in targets and other.is_dirty():
                shadow.push_buffer(other_rel, other.editor.text())
        if not unopened:
            shadow.warm(texts)
            return

        def read_then_warm() -> None:  # the shadow's thread
            for rel, path in unopened.items():
                with contextlib.suppress(OSError, UnicodeDecodeError):
                    if path.stat().st_size <= WARM_MAX_BYTES:
                        texts[rel] = path.read_text("utf-8")
            if texts:
                shadow.warm(texts)

        shadow.submit(read_then_warm)

    def _on_current_changed(self, doc: object) -> None:
        if isinstance(doc, Document) and doc not in self.reviews:
            self.warm(doc)

    def _rel(self, path: Path | None) -> str | None:
        root = self._workspace.root
        if root is None or path is None or not path.is_relative_to(root):
            return None
        return path.relative_to(root).as_posix()

    def _push_unsaved(self, shadow: ShadowWorkspace, target: Document) -> None:
        """The other unsaved buffers of the workspace overlay their files in the copy (the
        checked file's buffer goes with the check itself)."""
        for doc in self._documents.documents():
            rel = self._rel(doc.path)
            if doc is not target and rel is not None and doc.is_dirty():
                shadow.push_buffer(rel, doc.editor.text())

    def _on_disk_changed(self, path: str) -> None:
        rel = self._rel(Path(path))
        if self.shadow is not None and rel is not None:
            self.shadow.note_changed([rel])

    def _on_saved(self, path: str) -> None:
        shadow, root = self.shadow, self._workspace.root
        if shadow is not None and root is not None and Path(path).is_relative_to(root):
            shadow.note_saved(Path(path).relative_to(root).as_posix())

    def _end_review(self, doc: Document, review: ApplyReview, outcome: str) -> None:
        if self.reviews.get(doc) is review:
            del self.reviews[doc]
        review.hide()
        review.deleteLater()
        doc.editor.show()
        if doc is self._documents.current_document():
            doc.editor.focus()
        accepted = review.accepted()
        if outcome == ReviewOutcome.APPLIED and accepted:
            doc.editor.go_to_line(accepted[0].old_start + 1)
        changes = f"change{'s' if len(review.hunks) != 1 else ''}"
        words: dict[str, str] = {
            ReviewOutcome.APPLIED: f"Applied {len(accepted)} of {len(review.hunks)} {changes} "
            f"to {doc.title} (Ctrl+Z undoes the whole apply).",
            ReviewOutcome.REJECTED: f"Rejected the changes to {doc.title}; nothing was changed.",
            ReviewOutcome.CANCELLED: f"Apply to {doc.title} stopped; nothing was changed.",
            ReviewOutcome.UNCHANGED: f"The code block changes nothing in {doc.title}.",
        }
        text = words.get(outcome)  # StrEnum members hash and compare as their strings
        if text:
            self.message.emit(text, 8000)
        self.update_inline_edit()

    def review_action(self, name: str) -> None:
        doc = self._documents.current_document()
        review = self.reviews.get(doc) if doc is not None else None
        if review is None:
            self.message.emit("No apply is being reviewed in this editor.", 5000)
            return
        review.run_action(name)

    def _on_closing(self, doc: object) -> None:
        rel = self._rel(doc.path) if isinstance(doc, Document) else None
        if self.shadow is not None and rel is not None:
            self.shadow.drop_buffer(rel)  # closed unsaved: the file on disk again
        review = self.reviews.get(doc) if isinstance(doc, Document) else None
        if review is not None:
            review.close_review()  # the buffer stays as it was

    def apply_settings(self, settings: Settings) -> None:
        theme = theme_named(settings.theme)
        for review in self.reviews.values():
            review.set_font(settings.font_family, settings.font_size)
            review.apply_theme(theme)

    def shutdown(self) -> None:
        for review in list(self.reviews.values()):
            review.close_review()  # an apply in flight stops; buffers stay as they were
        if self.shadow is not None:
            self.shadow.close()

    # ----- inline edit -------------------------------------------------------------------------
    def inline_edit(self) -> None:
        """Ctrl+K on a selection: a prompt at the selection; its instruction and the selected
        code go to the apply (model path) and the result is reviewed."""
        doc = self._documents.current_document()
        if doc is None or doc in self.reviews:
            return
        editor = doc.editor
        if editor.selectionEmpty():
            self.message.emit("Select the code to edit first (Ctrl+K edits the selection).", 5000)
            return
        if doc.read_only_reason or editor.readOnly():
            self.message.emit(f"{doc.title} is read-only.", 5000)
            return
        if self.inline_prompt is not None:
            self.inline_prompt.close_prompt(focus_editor=False)
        prompt = InlineEditPrompt(editor, theme_named(self._settings().theme))
        self.inline_prompt = prompt
        self.warm(doc, start=True)  # while the user types the instruction

        def submitted(instruction: str) -> None:
            # The selected lines, once in the file: the model rewrites only them.
            self.start_review(doc, prompt.selection_block(), instruction)

        def closed() -> None:
            if self.inline_prompt is prompt:
                self.inline_prompt = None

        prompt.submitted.connect(submitted)
        prompt.closed.connect(closed)
        prompt.open()

    def update_inline_edit(self) -> None:
        """Ctrl+K is the inline edit only while the current editor has a selection (and no
        review): Qt fires a one-key shortcut at once, so an enabled Ctrl+K would shadow the
        chords."""
        doc = self._documents.current_document()
        allowed = doc is not None and doc not in self.reviews and not doc.editor.selectionEmpty()
        self.inline_edit_allowed.emit(allowed)
