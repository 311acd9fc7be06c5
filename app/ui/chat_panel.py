"""The chat panel (Ctrl+L): a transcript, the context chips and the question box.

The panel sends a question through a ``ChatBackend`` (the router, or a test's fake) with the
``ChatRunner``, which streams the reply back as signals; the last assistant message updates
as the deltas arrive. The current file and the selection go along automatically (chips that
toggle them); ``@path`` mentions (typing ``@`` opens a fuzzy file picker) add files. What was
sent, truncated or dropped under the ``chat.contextBudgetTokens`` budget shows on the chips
and under the question. Conversations are kept per workspace (``forecode_core.chat.conversations``).

``@codebase`` (the picker's first entry) asks the codebase index (``set_codebase``, a
``forecode_core.index.codebase.CodebaseSearch``): on send, the question without the mention is
searched
on a worker thread while the transcript says "Searching the codebase…" (Stop cancels it and
puts the question back in the box); the hits join the context below the mentions, then the
request goes out as usual. Without an index, or when it cannot answer, the question goes out
without them and a notice says why.

The panel reaches the editor through ``ChatHost`` (the window's adapter is
``chat_host.WindowChatHost``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QPalette, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from forecode_core import streams
from forecode_core.chat.context import (
    CODEBASE_MENTION,
    ContextPlan,
    ContextReport,
    ContextSource,
    SourceKind,
    Status,
    assemble_context,
    codebase_query,
    codebase_sources,
    format_mention,
    has_codebase_mention,
    parse_mentions,
    remove_codebase_mention,
    remove_mention,
    trim_history,
)
from forecode_core.chat.conversations import (
    Conversation,
    ConversationStore,
    Finish,
    MessageRole,
    NoticeKind,
    StoredMessage,
    new_conversation,
)
from forecode_core.chat.types import CHAT, ChatDone, ChatParams, ChatStarted, FinishReason
from forecode_core.edits.events import EditsDone
from forecode_core.edits.excerpt import symbol_line
from forecode_core.index.codebase import CodebaseSearch, CodebaseUnavailable, CodeHit
from forecode_core.text.languages import language_for_path
from forecode_core.workspace.fuzzy import rank_paths

from .chat_view import FlowLayout, MessageView, NoticeView
from .cloud import ChatBackend, ChatRunner
from .picker import Picker, PickerItem
from .tasks import BackgroundTask
from .theme import DARK, Theme

__all__ = ["CODEBASE_ENTRY", "ChatHost", "ChatInput", "ChatPanel", "describe_failure"]

SEARCHING_NOTICE = "Searching the codebase…"
# "Edit files" sends the files inside the question (``forecode_core.edits.prompt``), where the
# service cannot cut them as it cuts a chat's context: a request over its slot is refused. A
# slot holds 4,096 tokens on the default service (``cloud_server.config``; the Info RPC's
# ``n_ctx`` is not read here yet, as ``repair_loop.SLOT_CONTEXT_TOKENS``: the window keeps
# only its words for a tooltip, ``app.ui.cloud._about_service``); the reply's
# ``chat.maxTokens`` and this much for the answer format, the system prompt and the question
# come off it. In a user run the default 6,000-token budget with jinja's utils.py open was
# refused ("5299 tokens with the system prompt, 3071 allowed"). A current file or mention
# that does not fit whole goes as an editable excerpt (``forecode_core.edits.excerpt``).
EDITS_SLOT_TOKENS = 4096
EDITS_PROMPT_TOKENS = 512
# Under a reply that has no words yet (the model reading the question and its context).
READING_NOTE = "Reading the question and its context…"
NO_INDEX_NOTICE = (
    "There is no codebase index for this workspace yet, so @codebase found "
    "nothing; the question was sent without codebase context."
)
UNAVAILABLE_NOTICE = (
    "The codebase index could not answer ({reason}); the question was sent "
    "without codebase context."
)
NO_HITS_NOTICE = "The codebase search found nothing for this question."
NO_QUERY_NOTICE = (
    "@codebase needs a question to search for; the question was sent without codebase context."
)
SEARCH_STOPPED_NOTICE = (
    "The codebase search was stopped; the question was not sent (it is back in the box)."
)


class _CodebaseEntry:
    """The picker's ``@codebase`` row (its ``data``)."""

    def __repr__(self) -> str:
        return "CODEBASE_ENTRY"


CODEBASE_ENTRY = _CodebaseEntry()


@dataclass
class _PendingSearch:
    """A question held back while its ``@codebase`` search runs."""

    question: str
    from_box: bool
    view: MessageView
    notice: NoticeView


_FINISH_NOTES: dict[str, str] = {
    Finish.LENGTH: "The reply was cut at the length limit (chat.maxTokens).",
    Finish.CANCELLED: "Stopped.",
    Finish.ERROR: "The reply broke off.",
}

# The chip of an ``@codebase`` mention before its search ran (its other chips are sources').
_MENTION_CHIP = "codebase_mention"
# A suggested ``@`` mention: a file that usually changes with the current one (one click adds
# it); at most this many, most likely first.
_RELATED_CHIP = "related_suggestion"
RELATED_SUGGESTIONS = 3
_CHIP_MARKS = {Status.FULL: "✓", Status.TRUNCATED: "✂", Status.DROPPED: "✕"}
_CHIP_COLOURS = {
    Status.FULL: "",
    Status.TRUNCATED: "color: #cca700;",
    Status.DROPPED: "color: #f14c4c;",
}


@dataclass(frozen=True)
class _SearchAnswer:
    """An ``@codebase`` search's answer, from the worker thread to the UI thread."""

    hits: list[CodeHit] | None  # None: no answer (``why`` says why)
    why: str = ""


def describe_failure(code: str, message: str) -> str:
    """A sentence for the transcript from a ``ChatError`` code and message (the one failure
    table: ``forecode_core.streams.FAILURES``, in the chat's nouns)."""
    return streams.describe_failure(code, message, CHAT)


class ChatHost(Protocol):
    """What the panel needs from the editor around it."""

    def chat_editor_sources(self) -> tuple[ContextSource | None, ContextSource | None]:
        """The current file and the selection (None when there is none)."""
        ...

    def chat_workspace_files(self) -> Sequence[str]:
        """Workspace-relative paths for the @file picker."""
        ...

    def chat_read_file(self, path: str) -> tuple[str, str]:
        """A workspace file's text and language id (the open buffer's text when it is open).
        Raises OSError or ValueError with a short reason."""
        ...

    def chat_focus_editor(self) -> None: ...


class ChatInput(QPlainTextEdit):
    """The question box: Enter sends, Shift+Enter is a new line, Esc stops or leaves, ``@``
    at a word start asks for the file picker."""

    submitted = Signal()
    escape_pressed = Signal()
    mention_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(
            "Ask about the code — @ to add a file or @codebase, Enter to "
            "send, Shift+Enter for a new line"
        )
        self.setTabChangesFocus(True)
        self.setMaximumHeight(140)
        self.setMinimumHeight(56)

    def keyPressEvent(self, e: QKeyEvent) -> None:
        key, mods = e.key(), e.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if mods == Qt.KeyboardModifier.ShiftModifier:
                self.insertPlainText("\n")
            elif mods == Qt.KeyboardModifier.NoModifier:
                self.submitted.emit()
            else:
                super().keyPressEvent(e)
            return
        if key == Qt.Key.Key_Escape and mods == Qt.KeyboardModifier.NoModifier:
            self.escape_pressed.emit()
            return
        super().keyPressEvent(e)
        if e.text() == "@":
            cursor = self.textCursor()
            before = self.toPlainText()[: cursor.position() - 1]
            if not before or before[-1].isspace():
                self.mention_requested.emit()

    def event(self, e: QEvent) -> bool:
        # Esc and Enter belong to the box while it has the focus, not to window shortcuts.
        if (
            e.type() == QEvent.Type.ShortcutOverride
            and isinstance(e, QKeyEvent)
            and e.key() in (Qt.Key.Key_Escape, Qt.Key.Key_Return, Qt.Key.Key_Enter)
        ):
            e.accept()
            return True
        return super().event(e)


class _FitLabel(QLabel):
    """A label that shows the longest of its texts that fits its width (the budget: "≈296 /
    300 tokens", else "≈296/300", else nothing); the tooltip says it in words. A narrow chat
    panel clipped it to "context ≈5991 / 6000 toke" in a user run."""

    def __init__(self) -> None:
        super().__init__()
        self._texts: tuple[str, ...] = ()
        self.setMinimumWidth(0)

    def set_texts(self, *texts: str) -> None:
        self._texts = texts
        self._fit()

    def minimumSizeHint(self) -> QSize:
        return QSize(0, super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        room = self.width()
        metrics = self.fontMetrics()
        shown = next((t for t in self._texts if metrics.horizontalAdvance(t) <= room), "")
        if shown != self.text():
            self.setText(shown)


class _Transcript(QWidget):
    """The messages' column, never wider than the chat: its minimum width is 0, so a message
    with a long unbreakable run (pytest's "=====" lines in a terminal failure's question)
    overflows alone instead of widening the whole transcript, which cut every later line,
    card and button at the panel's right edge (seen in a user run under Xvfb)."""

    def minimumSizeHint(self) -> QSize:
        return QSize(0, super().minimumSizeHint().height())


class _Chip(QToolButton):
    def __init__(self, kind: str, path: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.path = path
        self.status = ""
        self.setAutoRaise(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.setFocusPolicy(Qt.FocusPolicy.TabFocus)

    def show_report(self, base: str, report: ContextReport | None, enabled: bool = True) -> None:
        if not enabled:
            self.status = "off"
            self.setText(f"{base} (off)")
            self.setToolTip("Not sent. Click to include it.")
            self.setStyleSheet("QToolButton { color: palette(placeholder-text); }")
            return
        status = Status(report.status) if report is not None else Status.FULL
        self.status = status
        text = f"{_CHIP_MARKS[status]} {base}"
        if report is not None and status == Status.TRUNCATED:
            text += f" (lines {report.start_line}–{report.end_line})"
        elif report is not None and status == Status.DROPPED:
            text += " (dropped)"
        self.setText(text + (" ✕" if self.kind == SourceKind.FILE else ""))
        tip = report.label if report is not None else base
        if report is not None and report.included_as:  # the current file again: sent once
            tip += f"\nThe same file as {report.included_as}: its text goes once."
        elif report is not None:
            tip += f"\n≈{report.tokens} of ≈{report.full_tokens} tokens sent"
        if self.kind == SourceKind.FILE:
            tip += "\nClick to remove the mention."
        elif self.kind == SourceKind.CODEBASE:
            tip = "Found by the @codebase search: " + tip
        self.setToolTip(tip)
        self.setStyleSheet(f"QToolButton {{ {_CHIP_COLOURS[status]} }}")


class ChatPanel(QWidget):
    """The chat side panel. ``apply_requested(code, language, path_hint)`` comes from the
    Apply button of a code block."""

    apply_requested = Signal(str, str, str)
    message = Signal(str)  # a problem to show in the status bar too
    # "Edit files" mode: a reply's EditsDone (its set of file changes) for the review
    edits_proposed = Signal(object)
    # "Agent" mode (issue 17): the question is a task for the agent loop (owners.agent)
    agent_requested = Signal(str)

    REFRESH_MS = 150

    def __init__(
        self, host: ChatHost, backend: ChatBackend | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.host = host
        self.budget_tokens = 6000
        self.max_tokens = 1024
        self.theme: Theme = DARK
        self.store = ConversationStore.for_workspace(None)
        self.conversations: list[Conversation] = []
        self.current: Conversation = new_conversation()
        self.plan: ContextPlan | None = None
        self.include_current_file = True
        self.include_selection = True
        self.codebase: CodebaseSearch | None = None
        self.codebase_top_k = 8
        self._search = BackgroundTask(self)
        self._search.done.connect(self._on_search_done)
        self._search.failed.connect(
            lambda message: self._on_search_done(
                _SearchAnswer(None, f"the search failed: {message}")
            )
        )
        self._pending: _PendingSearch | None = None
        self._last_hits: tuple[ContextReport, ...] = ()  # of the last question sent
        self.views: list[QWidget] = []  # transcript widgets, in order
        self._streaming: MessageView | None = None
        self._reply_text = ""
        self._reply_started: ChatStarted | None = None
        self._reply_notices: list[StoredMessage] = []
        self._follow = True
        self.setObjectName("ChatPanel")
        self.setMinimumWidth(300)

        self._chat_backend = backend
        # "Edit files" (issue 16): questions go to ``edits_backend`` (the window's edit-set
        # owner sets it: the service's Edits RPC) with the same context; the reply's set is
        # handed on by ``edits_proposed``.
        self.edits_backend: ChatBackend | None = None
        self.edit_mode = False
        self.agent_mode = False
        self.runner = ChatRunner(backend, self)
        self.runner.started.connect(self._on_started)
        self.runner.delta.connect(self._on_delta)
        self.runner.notice.connect(lambda text: self._on_notice(text, NoticeKind.INFO))
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)

        # conversations
        self.conversation_box = QComboBox()
        self.conversation_box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.conversation_box.setMinimumContentsLength(12)
        self.conversation_box.setToolTip("Conversations in this workspace")
        self.conversation_box.activated.connect(self._on_conversation_chosen)
        self.new_button = QPushButton("New chat")
        self.new_button.clicked.connect(self.new_conversation)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.conversation_box, 1)
        top.addWidget(self.new_button)

        # transcript
        self.transcript = _Transcript()
        self._messages = QVBoxLayout(self.transcript)
        self._messages.setSizeConstraint(QVBoxLayout.SizeConstraint.SetNoConstraint)
        self._messages.setContentsMargins(4, 4, 4, 4)
        self._messages.setSpacing(8)
        self._messages.addStretch(1)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setWidget(self.transcript)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        bar = self.scroll_area.verticalScrollBar()
        bar.rangeChanged.connect(lambda _lo, hi: bar.setValue(hi) if self._follow else None)
        bar.valueChanged.connect(lambda v: setattr(self, "_follow", v >= bar.maximum() - 8))

        # context chips
        self.chips_area = QWidget()
        self._chips = FlowLayout(self.chips_area)
        self.current_chip = _Chip(SourceKind.CURRENT_FILE, "", self.chips_area)
        self.current_chip.setCheckable(True)
        self.current_chip.setChecked(True)
        self.current_chip.toggled.connect(self._toggle_current)
        self.selection_chip = _Chip(SourceKind.SELECTION, "", self.chips_area)
        self.selection_chip.setCheckable(True)
        self.selection_chip.setChecked(True)
        self.selection_chip.toggled.connect(self._toggle_selection)
        self._chips.addWidget(self.current_chip)
        self._chips.addWidget(self.selection_chip)
        self.mention_chips: list[_Chip] = []
        self.codebase_chips: list[_Chip] = []  # the @codebase mention, or the hits sent
        self.related_chips: list[_Chip] = []  # suggested mentions (``set_related``)
        self.related_for: Callable[[str], Sequence[tuple[str, float]]] | None = None
        self.budget_label = _FitLabel()
        self.budget_label.setEnabled(False)

        # input
        self.input = ChatInput()
        self.input.submitted.connect(self.send)
        self.input.escape_pressed.connect(self._on_escape)
        self.input.mention_requested.connect(self.open_mention_picker)
        self.input.textChanged.connect(self.schedule_refresh)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(lambda: self.send())  # not clicked(checked) as text
        self.stop_button = QPushButton("■ Stop")
        self.stop_button.setToolTip("Stop the reply (Esc)")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.hide()
        self.mention_button = QPushButton("@ Add file")
        self.mention_button.clicked.connect(self._add_file_clicked)
        self.edit_files_button = QPushButton("Edit files")
        self.edit_files_button.setCheckable(True)
        self.edit_files_button.setToolTip(
            "Ask for a change across files: the model proposes edits to the current file and "
            "the @ files (and new or deleted files), reviewed as one set before anything changes"
        )
        self.edit_files_button.toggled.connect(self.set_edit_mode)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.mention_button)
        buttons.addWidget(self.edit_files_button)
        self.agent_button = QPushButton("Agent")
        self.agent_button.setCheckable(True)
        self.agent_button.setToolTip(
            "Give the agent a task: it reads files, edits in the shadow copy and asks before "
            "each command; the result is a set of changes to review"
        )
        self.agent_button.toggled.connect(self.set_agent_mode)
        buttons.addWidget(self.agent_button)
        buttons.addWidget(self.budget_label, 1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.send_button)
        self._bar = buttons

        column = QVBoxLayout(self)
        column.setContentsMargins(6, 6, 6, 6)
        column.setSpacing(4)
        column.addLayout(top)
        column.addWidget(self.scroll_area, 1)
        column.addWidget(self.chips_area)
        column.addWidget(self.input)
        column.addLayout(buttons)

        self.picker = Picker(self)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.timeout.connect(self.refresh_context)
        self.input.installEventFilter(self)
        self._show_conversation(self.current)
        self._fill_conversation_box()

    # ----- public API ------------------------------------------------------------------------
    def set_backend(self, backend: ChatBackend | None) -> None:
        self._chat_backend = backend
        self.runner.backend = backend

    def set_edit_mode(self, on: bool) -> None:
        """Send questions as multi-file edit requests (the "Edit files" toggle)."""
        self.edit_mode = on
        if self.edit_files_button.isChecked() != on:
            self.edit_files_button.setChecked(on)
        self.input.setPlaceholderText("Describe the change to make across the files…" if on else "")
        self._paint_edit_files_button()
        self.schedule_refresh()  # the chips under the mode's budget

    def set_agent_mode(self, on: bool) -> None:
        """Send questions as agent tasks (the "Agent" toggle; "Edit files" goes off)."""
        self.agent_mode = on
        if self.agent_button.isChecked() != on:
            self.agent_button.setChecked(on)
        if on:
            self.set_edit_mode(False)
        self._paint_edit_files_button()  # on, it wears the selection colour (a user run)

    def add_view(self, view: QWidget) -> None:
        """A widget of another owner (an agent's step or command card) at the transcript's
        end, followed."""
        self._follow = True
        self._insert_view(view)

    def pin_to_bar(self, widget: QWidget) -> None:
        """Another owner's widget in the bottom bar before Stop / Send (the agent's Stop): in
        view however long the transcript grows."""
        self._bar.insertWidget(self._bar.indexOf(self.stop_button), widget)

    def _paint_edit_files_button(self) -> None:
        """On, the toggle wears the selection colour: Fusion draws a checked button only a
        shade darker (#2b2c2f against #35363a in the dark theme), and in a user run nothing
        but the input's placeholder told the mode on from off. A palette, not a style sheet:
        a style sheet keeps the palette of when it was polished, and the button stayed light
        grey after the window's dark palette came."""
        for button in (self.edit_files_button, self.agent_button):  # the Agent toggle too
            palette = QPalette()  # no role set: the rest comes from the window, as it changes
            if button.isChecked():
                window = self.palette()
                highlight = window.color(QPalette.ColorRole.Highlight)
                palette.setColor(QPalette.ColorRole.Button, highlight)
                palette.setColor(
                    QPalette.ColorRole.ButtonText, window.color(QPalette.ColorRole.HighlightedText)
                )
            button.setPalette(palette)

    def context_budget(self) -> int:
        """The context's token budget: ``chat.contextBudgetTokens``, and in "Edit files" mode
        no more than a service slot leaves (``EDITS_SLOT_TOKENS``)."""
        if not self.edit_mode:
            return self.budget_tokens
        room = EDITS_SLOT_TOKENS - self.max_tokens - EDITS_PROMPT_TOKENS
        return max(256, min(self.budget_tokens, room))

    def set_codebase(self, search: CodebaseSearch | None) -> None:
        """The index ``@codebase`` asks (None: there is none; the chip says so)."""
        self.codebase = search
        self.schedule_refresh()

    def set_related(self, related: Callable[[str], Sequence[tuple[str, float]]] | None) -> None:
        """The files related to a file (workspace-relative, with a confidence 0..1): the
        current file's are offered as ``@`` chips, one click adds the mention (Cursor's
        suggested context)."""
        self.related_for = related
        self.schedule_refresh()

    def is_streaming(self) -> bool:
        return self._streaming is not None

    def is_searching(self) -> bool:
        """True while an ``@codebase`` search runs for a question not yet sent."""
        return self._pending is not None

    def set_workspace(self, root: str | os.PathLike[str] | None) -> None:
        """Show the conversations of ``root`` (the most recent one), or a fresh one."""
        self.stop()
        self.store = ConversationStore.for_workspace(root)
        self.conversations, problems = self.store.load_all()
        # A corrupt file: start afresh (the others stay in the list) and say why.
        fresh = problems or not self.conversations
        self.current = new_conversation() if fresh else self.conversations[0]
        self._show_conversation(self.current)
        self._fill_conversation_box()
        for problem in problems:
            self._add_notice(problem, NoticeKind.ERROR)
            self.message.emit(problem)

    def new_conversation(self) -> None:
        self.stop()
        if not self.current.messages and not self.views:
            self.focus_input()  # already a fresh conversation
            return
        self.current = new_conversation()
        self._show_conversation(self.current)
        self._fill_conversation_box()
        self.focus_input()

    def switch_to(self, conv_id: str) -> None:
        for conv in self.conversations:
            if conv.id == conv_id and conv.id != self.current.id:
                self.stop()
                self.current = conv
                self._show_conversation(conv)
                self._fill_conversation_box()
                return

    def focus_input(self) -> None:
        self.input.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def apply_theme(self, theme: Theme) -> None:
        self.theme = theme
        self._paint_edit_files_button()
        for view in self.views:
            if isinstance(view, MessageView):
                view.apply_theme(theme)

    def messages(self) -> list[MessageView]:
        return [v for v in self.views if isinstance(v, MessageView)]

    def notices(self) -> list[NoticeView]:
        return [v for v in self.views if isinstance(v, NoticeView)]

    def shutdown(self) -> None:
        """Stop a reply in flight (its text so far is saved)."""
        self.stop()

    # ----- sending ---------------------------------------------------------------------------
    def send(self, text: str | None = None) -> bool:
        """Send the question in the box (or ``text``). False when nothing was sent.

        A question with ``@codebase`` is held while the search runs off the UI thread (True:
        it is on its way)."""
        question = (self.input.toPlainText() if text is None else text).strip()
        if not question or self.is_streaming() or self.is_searching():
            return False
        if text is None:
            self.input.clear()
        if self.agent_mode:
            self.agent_requested.emit(question)
            return True
        if not has_codebase_mention(question):
            self._dispatch(question, None, ())
            return True
        query = codebase_query(question)
        search = self.codebase
        if search is None or not query:
            self._dispatch(question, (), (NO_INDEX_NOTICE if search is None else NO_QUERY_NOTICE,))
            return True
        view = self._add_message(StoredMessage(MessageRole.USER, question))
        notice = NoticeView(SEARCHING_NOTICE)
        self._insert_view(notice)
        self._pending = _PendingSearch(question, text is None, view, notice)
        self._follow = True
        self._set_busy(True)
        top_k = self.codebase_top_k

        def run(cancel: threading.Event) -> _SearchAnswer:
            try:
                hits = search.search(query, top_k=top_k, should_stop=cancel.is_set)
            except CodebaseUnavailable as exc:
                return _SearchAnswer(None, str(exc) or "no reason given")
            if not isinstance(hits, list):
                return _SearchAnswer(None, f"the search failed: {hits}")
            return _SearchAnswer(hits)

        self._search.start(run)
        return True

    def _on_search_done(self, result: object) -> None:
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        self._remove_view(pending.notice)
        if not isinstance(result, _SearchAnswer):
            result = _SearchAnswer(None, "the search failed: no answer")
        hits: list[CodeHit] = []
        notices: list[str] = []
        if result.hits is not None:
            hits = [h for h in result.hits if isinstance(h, CodeHit)]
            if not hits:
                notices.append(NO_HITS_NOTICE)
        else:
            notices.append(UNAVAILABLE_NOTICE.format(reason=result.why.rstrip(".")))
        self._set_busy(False)
        self._dispatch(pending.question, hits, tuple(notices), pending.view)

    def _dispatch(
        self,
        question: str,
        hits: Sequence[CodeHit] | None,
        notices: Sequence[str],
        view: MessageView | None = None,
    ) -> None:
        """Plan the context (with the codebase ``hits``, when searched), record the question
        and its ``notices``, and start the reply."""
        plan = self.refresh_context(question, hits)
        self._last_hits = tuple(r for r in plan.reports if r.kind == SourceKind.CODEBASE)
        labels = tuple(r.label for r in plan.reports)
        user = StoredMessage(MessageRole.USER, question, labels)
        self.current = self.current.with_message(user)
        if view is None:
            self._add_message(user)
        elif labels:
            view.set_footer("Context: " + " · ".join(labels))
        for text in notices:
            self.current = self.current.with_message(StoredMessage.notice(text, NoticeKind.INFO))
            self._add_notice(text, NoticeKind.INFO)
        self._remember(self.current)
        current_path = next(
            (
                r.path
                for r in plan.reports
                if r.kind == SourceKind.CURRENT_FILE and r.status != Status.DROPPED
            ),
            "",
        )
        history = trim_history(self.current.chat_messages(), max(1024, self.budget_tokens))
        params = ChatParams(self.current.id, history, plan.items, max_tokens=self.max_tokens)
        reply = MessageView(MessageRole.ASSISTANT, self.theme, current_path)
        reply.apply_requested.connect(self.apply_requested)
        reply.set_header("Assistant …")
        # Until the first words: the local model reads a 6,000-token context for a minute on
        # two cores, and in a user run the reply sat empty under its header all that time.
        reply.set_footer(READING_NOTE)
        self._insert_view(reply)
        self._streaming = reply
        self._reply_text = ""
        self._reply_started = None
        self._reply_notices = []
        self._follow = True
        self._set_busy(True)
        edits = self.edits_backend if self.edit_mode else None
        self.runner.backend = edits if edits is not None else self._chat_backend
        self.runner.start(params)
        self.schedule_refresh()  # the chips follow the box again

    def stop(self) -> None:
        """Stop the reply in flight, or the codebase search of a question not yet sent (the
        question goes back to the box)."""
        pending = self._pending
        if pending is not None:
            self._pending = None
            self._search.cancel()
            self._remove_view(pending.notice)
            self._remove_view(pending.view)
            if pending.from_box and not self.input.toPlainText().strip():
                self.input.setPlainText(pending.question)
                self.input.moveCursor(self.input.textCursor().MoveOperation.End)
            self._add_notice(SEARCH_STOPPED_NOTICE, NoticeKind.INFO)
            self._set_busy(False)
        elif self.is_streaming():
            self.runner.stop()

    # ----- reply signals -----------------------------------------------------------------------
    def _on_started(self, started: ChatStarted) -> None:
        self._reply_started = started
        if self._streaming is not None:
            self._streaming.set_header(_assistant_header(started.model, started.source))
            if self._reply_text:
                # A second start (the router's fallback after the service broke off mid-reply;
                # its notice says so): the reply starts over here.
                self._reply_text = ""
                self._streaming.set_text("")

    def _on_delta(self, text: str) -> None:
        if self._streaming is None:
            return
        if not self._reply_text:
            self._streaming.set_footer("")  # the words are coming: no more READING_NOTE
        self._reply_text += text
        self._streaming.set_text(self._reply_text)

    def _on_notice(self, text: str, kind: NoticeKind) -> None:
        notice = StoredMessage.notice(text, kind)
        if self._streaming is not None:
            self._reply_notices.append(notice)
            self._insert_view(NoticeView(text, kind), before=self._streaming)
        else:
            self._add_notice(text, kind)

    def _on_finished(self, done: ChatDone) -> None:
        self._end_reply(done.finish_reason)
        if isinstance(done, EditsDone) and done.files:
            self.edits_proposed.emit(done)

    def _on_failed(self, code: str, message: str) -> None:
        self._on_notice(describe_failure(code, message), NoticeKind.ERROR)
        self._end_reply(Finish.ERROR)

    def _end_reply(self, finish: str) -> None:
        """End the reply in flight with ``finish`` (a ``FinishReason``, or ``Finish.ERROR``)."""
        view = self._streaming
        if view is None:
            return
        self._streaming = None
        started = self._reply_started
        note = _FINISH_NOTES.get(finish, "")
        conv = self.current
        for notice in self._reply_notices:
            conv = conv.with_message(notice)
        if self._reply_text or finish != Finish.ERROR:
            stopped = not self._reply_text and finish == FinishReason.CANCELLED
            view.finish("Stopped." if stopped else note)
            conv = conv.with_message(
                StoredMessage(
                    MessageRole.ASSISTANT,
                    self._reply_text,
                    (),
                    started.model if started else "",
                    started.source if started else "",
                    finish,
                )
            )
        else:
            self._remove_view(view)
        self.current = conv
        self._remember(conv)
        self._set_busy(False)

    # ----- context -----------------------------------------------------------------------------
    def schedule_refresh(self) -> None:
        if self.isVisible():
            self._refresh_timer.start(self.REFRESH_MS)

    def refresh_context(
        self, text: str | None = None, hits: Sequence[CodeHit] | None = None
    ) -> ContextPlan:
        """Gather the sources (with the codebase ``hits`` of an ``@codebase`` search, when it
        ran), fit them to the budget and show the outcome on the chips."""
        self._refresh_timer.stop()
        question = self.input.toPlainText() if text is None else text
        current, selection = self.host.chat_editor_sources()
        sources: list[ContextSource] = []
        if selection is not None and self.include_selection:
            sources.append(selection)
        if current is not None and self.include_current_file:
            sources.append(current)
            extra = getattr(self.host, "chat_extra_sources", None)  # the servers' problems
            sources += extra() if callable(extra) else []
        failed: list[ContextReport] = []
        mentions = parse_mentions(question)
        for path in mentions:
            try:
                body, language = self.host.chat_read_file(path)
            except (OSError, ValueError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                failed.append(
                    ContextReport(
                        SourceKind.FILE,
                        path,
                        Status.DROPPED,
                        0,
                        0,
                        reason=reason or "cannot be read",
                    )
                )
                continue
            # In "Edit files" mode a mention too big to send whole is an editable excerpt
            # around the definition the question names (``forecode_core.edits.excerpt``).
            focus = symbol_line(body, question) if self.edit_mode else 0
            sources.append(ContextSource(SourceKind.FILE, path, body, language, focus_line=focus))
        if hits:
            sources += codebase_sources(hits, _language_of)
        plan = assemble_context(sources, self.context_budget(), excerpts=self.edit_mode)
        plan = ContextPlan(
            plan.items, plan.reports + tuple(failed), plan.used_tokens, plan.budget_tokens
        )
        self.plan = plan
        self._show_chips(plan, current, selection, mentions)
        self._show_codebase_chips(plan, question, hits is not None)
        self._show_related_chips(current, mentions)
        return plan

    def _show_related_chips(self, current: ContextSource | None, mentions: list[str]) -> None:
        """Suggested mentions: the current file's related files not yet mentioned."""
        for chip in self.related_chips:
            self._chips.removeWidget(chip)
            chip.deleteLater()
        self.related_chips = []
        if current is None or self.related_for is None:
            return
        shown = 0
        for path, confidence in self.related_for(current.path):
            if shown >= RELATED_SUGGESTIONS:
                break
            if path in mentions or path == current.path:
                continue
            shown += 1
            chip = _Chip(_RELATED_CHIP, path, self.chips_area)
            chip.setText(f"+ @{Path(path).name}")
            chip.setToolTip(
                f"{path}\nChanged together with {Path(current.path).name} in "
                f"{confidence:.0%} of its commits.\nClick to add it to the question."
            )
            chip.setStyleSheet("QToolButton { border: 1px dashed palette(mid); }")
            chip.clicked.connect(lambda _c=False, p=path: self.insert_mention(p))
            self._chips.addWidget(chip)
            self.related_chips.append(chip)
        if self.related_chips:
            self.chips_area.setVisible(True)
            self.chips_area.updateGeometry()

    def _show_codebase_chips(self, plan: ContextPlan, question: str, searched: bool) -> None:
        """The ``@codebase`` chip while the question asks for a search; the hits (sent,
        truncated, dropped) once it ran, kept until the next question is typed."""
        for chip in self.codebase_chips:
            self._chips.removeWidget(chip)
            chip.deleteLater()
        self.codebase_chips = []
        reports = tuple(r for r in plan.reports if r.kind == SourceKind.CODEBASE)
        if not searched and not question.strip():
            reports = self._last_hits
        if has_codebase_mention(question) and not searched:
            chip = _Chip(_MENTION_CHIP, CODEBASE_MENTION, self.chips_area)
            if self.codebase is None:
                chip.setText("@codebase (no index) ✕")
                chip.setToolTip(
                    "There is no codebase index for this workspace yet: the question "
                    "will go without codebase context.\nClick to remove the mention."
                )
            else:
                chip.setText("⌕ @codebase ✕")
                chip.setToolTip(
                    "The codebase is searched for this question when it is sent; "
                    "the best matches go along.\nClick to remove the mention."
                )
            chip.clicked.connect(self.remove_codebase_mention)
            self.codebase_chips.append(chip)
        else:
            for report in reports:
                chip = _Chip(SourceKind.CODEBASE, report.path, self.chips_area)
                chip.show_report(report.range_label, report)
                self.codebase_chips.append(chip)
        for chip in self.codebase_chips:
            self._chips.addWidget(chip)
        if self.codebase_chips:
            self.chips_area.setVisible(True)
            self.chips_area.updateGeometry()

    def remove_codebase_mention(self) -> None:
        self.input.setPlainText(remove_codebase_mention(self.input.toPlainText()))
        self.input.moveCursor(self.input.textCursor().MoveOperation.End)
        self.refresh_context()

    def _show_chips(
        self,
        plan: ContextPlan,
        current: ContextSource | None,
        selection: ContextSource | None,
        mentions: list[str],
    ) -> None:
        self.current_chip.setVisible(current is not None)
        if current is not None:
            self.current_chip.path = current.path
            self.current_chip.show_report(
                Path(current.path).name,
                plan.report_for(SourceKind.CURRENT_FILE, current.path),
                self.include_current_file,
            )
        self.selection_chip.setVisible(selection is not None)
        if selection is not None:
            lines = selection.text.count("\n") + 1
            self.selection_chip.path = selection.path
            self.selection_chip.show_report(
                f"selection ({lines} line{'s' if lines != 1 else ''})",
                plan.report_for(SourceKind.SELECTION, selection.path),
                self.include_selection,
            )
        for chip in self.mention_chips:
            self._chips.removeWidget(chip)
            chip.deleteLater()
        self.mention_chips = []
        for path in mentions:
            chip = _Chip(SourceKind.FILE, path, self.chips_area)
            chip.show_report("@" + Path(path).name, plan.report_for(SourceKind.FILE, path))
            chip.clicked.connect(lambda _c=False, p=path: self.remove_mention(p))
            self._chips.addWidget(chip)
            self.mention_chips.append(chip)
        self.chips_area.setVisible(bool(current or selection or mentions))
        self.chips_area.updateGeometry()
        used, budget = plan.used_tokens, plan.budget_tokens
        self.budget_label.set_texts(f"≈{used} / {budget} tokens", f"≈{used}/{budget}")
        self.budget_label.setToolTip(
            f"The context sent with the question: about {plan.used_tokens} of the "
            f"{plan.budget_tokens} tokens it may take"
        )

    def _toggle_current(self, on: bool) -> None:
        self.include_current_file = on
        self.refresh_context()

    def _toggle_selection(self, on: bool) -> None:
        self.include_selection = on
        self.refresh_context()

    def remove_mention(self, path: str) -> None:
        self.input.setPlainText(remove_mention(self.input.toPlainText(), path))
        self.input.moveCursor(self.input.textCursor().MoveOperation.End)
        self.refresh_context()

    def open_mention_picker(self) -> None:
        """The fuzzy file picker for an ``@`` just typed; accepting replaces the ``@`` with
        the mention."""
        files = list(self.host.chat_workspace_files())
        at = self.input.textCursor().position() - 1
        typed_at = at >= 0 and self.input.toPlainText()[at : at + 1] == "@"

        def provider(query: str) -> list[PickerItem]:
            out = []
            entry = _codebase_entry(query)
            if entry is not None:
                out.append(entry)
            for match in rank_paths(query, files, limit=50):
                name_start = match.path.rfind("/") + 1
                positions = tuple(p - name_start for p in match.positions if p >= name_start)
                out.append(
                    PickerItem(
                        match.path[name_start:], match.path[:name_start], positions, match.path
                    )
                )
            return out

        def accept(item: PickerItem | None, _query: str) -> None:
            if item is None:
                return
            mention = item.data if isinstance(item.data, _CodebaseEntry) else str(item.data)
            self.insert_mention(mention, at if typed_at else -1)

        self.picker.open("Add a file (or @codebase) to the question", provider, on_accept=accept)

    def insert_mention(self, path: str | _CodebaseEntry, replace_at: int = -1) -> None:
        """Put ``@path`` (or ``@codebase`` for ``CODEBASE_ENTRY``) in the box (over the ``@``
        at ``replace_at`` when given)."""
        cursor = self.input.textCursor()
        text = self.input.toPlainText()
        if 0 <= replace_at < len(text) and text[replace_at] == "@":
            cursor.setPosition(replace_at)
            cursor.setPosition(replace_at + 1, cursor.MoveMode.KeepAnchor)
        elif text and not text[cursor.position() - 1 : cursor.position()].isspace():
            cursor.insertText(" ")
        mention = (
            "@" + CODEBASE_MENTION if isinstance(path, _CodebaseEntry) else format_mention(path)
        )
        cursor.insertText(mention + " ")
        self.input.setTextCursor(cursor)
        self.input.setFocus()
        self.refresh_context()

    def _add_file_clicked(self) -> None:
        self.input.setFocus()
        self.open_mention_picker()

    # ----- transcript --------------------------------------------------------------------------
    def _show_conversation(self, conv: Conversation) -> None:
        self._last_hits = ()
        for view in self.views:
            self._messages.removeWidget(view)
            view.deleteLater()
        self.views = []
        for message in conv.messages:
            if message.role == MessageRole.NOTICE:
                self._add_notice(message.content, message.notice_kind)
            else:
                self._add_message(message)
        self._follow = True

    def _add_message(self, message: StoredMessage) -> MessageView:
        view = MessageView(message.role, self.theme)
        view.apply_requested.connect(self.apply_requested)
        if message.role == MessageRole.USER:
            view.set_text(message.content)
            if message.context:
                view.set_footer("Context: " + " · ".join(message.context))
        else:
            view.set_header(_assistant_header(message.model, message.source))
            view.set_text(message.content, final=True)
            view.set_footer(_FINISH_NOTES.get(message.finish, ""))
        self._insert_view(view)
        return view

    def _add_notice(self, text: str, kind: NoticeKind) -> None:
        self._insert_view(NoticeView(text, kind))

    def _insert_view(self, view: QWidget, before: QWidget | None = None) -> None:
        index = self.views.index(before) if before in self.views else len(self.views)
        self.views.insert(index, view)
        self._messages.insertWidget(index, view)

    def _remove_view(self, view: QWidget) -> None:
        if view in self.views:
            self.views.remove(view)
            self._messages.removeWidget(view)
            view.deleteLater()

    def _fill_conversation_box(self) -> None:
        box = self.conversation_box
        box.blockSignals(True)
        box.clear()
        known = [c for c in self.conversations if c.id != self.current.id]
        entries = [self.current, *sorted(known, key=lambda c: c.updated_at, reverse=True)]
        for conv in entries:
            stamp = time.strftime("%d %b %H:%M", time.localtime(conv.updated_at))
            box.addItem(f"{conv.title} — {stamp}" if conv.messages else conv.title, conv.id)
        box.setCurrentIndex(0)
        box.blockSignals(False)

    def _on_conversation_chosen(self, index: int) -> None:
        conv_id = self.conversation_box.itemData(index)
        if isinstance(conv_id, str):
            self.switch_to(conv_id)

    def _remember(self, conv: Conversation) -> None:
        """Keep ``conv`` in the list and on disk; a failed write is shown, never raised."""
        self.conversations = [conv, *[c for c in self.conversations if c.id != conv.id]]
        try:
            self.store.save(conv)
        except OSError as exc:
            problem = f"The conversation could not be saved: {exc.strerror or exc}"
            self._add_notice(problem, NoticeKind.ERROR)
            self.message.emit(problem)
        self._fill_conversation_box()

    # ----- state and keys ----------------------------------------------------------------------
    def _set_busy(self, busy: bool) -> None:
        self.stop_button.setVisible(busy)
        self.send_button.setEnabled(not busy)
        self.conversation_box.setEnabled(not busy)

    def _on_escape(self) -> None:
        if self.picker.is_open():
            self.picker.close_picker()
        elif self.is_streaming() or self.is_searching():
            self.stop()
        else:
            self.host.chat_focus_editor()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self._on_escape()
            return
        super().keyPressEvent(event)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.input and event.type() == QEvent.Type.FocusIn:
            self.schedule_refresh()
        return super().eventFilter(watched, event)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.schedule_refresh()


def _language_of(path: str) -> str:
    return language_for_path(path).id


def _codebase_entry(query: str) -> PickerItem | None:
    """The picker's ``@codebase`` row when ``query`` could be heading for it (empty, or its
    letters in order in "codebase"), with the matched letters marked."""
    label = "@" + CODEBASE_MENTION
    positions: list[int] = []
    at = 1
    for ch in query.lstrip("@").lower():
        found = label.find(ch, at)
        if found < 0:
            return None
        positions.append(found)
        at = found + 1
    return PickerItem(
        label, "search the whole codebase for this question", tuple(positions), CODEBASE_ENTRY
    )


def _assistant_header(model: str, source: str) -> str:
    where = {"local": "local model", "cloud": "cloud"}.get(source, source)
    parts = [p for p in (model, where) if p]
    return "Assistant" + (" · " + " · ".join(parts) if parts else "")
