"""The chat panel in the editor window, as a user drives it (Ctrl+L, typing, Enter, Esc, Stop).

Most tests plug a scripted ``ChatBackend`` into the window's seam: the test feeds each reply's
events and the iteration blocks in between, as a real stream does. The real parts are covered
at the end: the window starting the real service on loopback (with the real default model),
a question answered through it, and the service gone when the window closes; and a remote
service whose token is set with "Cloud: Set Service Token".
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backends import fail
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from app.ui.chat_panel import ChatPanel, describe_failure
from app.ui.chat_view import CodeBlockView, MessageView
from app.ui.cloud import CloudConnection, DeferredBackend
from app.ui.main_window import MainWindow
from app.ui.owners.cloud import token_name
from cloud_client.router import NOTICE_FALLBACK, NOTICE_RESTART
from forecode_core.chat.conversations import ConversationStore, StoredMessage
from forecode_core.chat.types import (
    ChatDelta,
    ChatDone,
    ChatError,
    ChatMessage,
    ChatNotice,
    ChatParams,
    ChatStarted,
    ContextItem,
)

CTRL = Qt.KeyboardModifier.ControlModifier
_END = object()


# ----- the scripted backend ------------------------------------------------------------------


class FakeCall:
    """One reply the test scripts: ``send`` events, ``fail`` with an exception, ``end`` it.
    Iterating blocks until the test feeds the next item."""

    def __init__(self, params: ChatParams) -> None:
        self.params = params
        self._items: queue.Queue[object] = queue.Queue()
        self.cancelled = threading.Event()
        self.finished = threading.Event()  # the iteration is over

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                item = self._items.get(timeout=60)
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.finished.set()

    def cancel(self) -> None:
        # Like a slow service, the script keeps going after cancel: the panel must drop it.
        self.cancelled.set()

    def send(self, *events: object) -> None:
        for event in events:
            self._items.put(event)

    def fail(self, error: BaseException) -> None:
        self._items.put(error)

    def end(self) -> None:
        self._items.put(_END)

    def reply(self, text: str, model: str = "fake-model", source: str = "cloud") -> None:
        self.send(ChatStarted(model, source), ChatDelta(text), ChatDone("stop"))  # type: ignore[arg-type]
        self.end()


class FakeBackend:
    def __init__(self) -> None:
        self.calls: list[FakeCall] = []
        self.gate = threading.Event()  # chat() blocks until it is set
        self.gate.set()

    def chat(self, params: ChatParams) -> FakeCall:
        self.gate.wait(60)
        call = FakeCall(params)
        self.calls.append(call)
        return call

    def call(self, qtbot: QtBot, n: int = 1) -> FakeCall:
        qtbot.waitUntil(lambda: len(self.calls) >= n, timeout=5000)
        return self.calls[n - 1]

    def close_all(self) -> None:
        for call in self.calls:
            call.end()


# ----- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "src" / "pkg").mkdir(parents=True)
    (ws / "src" / "pkg" / "util.py").write_text("def helper():\n    return 1\n\n\nVALUE = 2\n")
    (ws / "src" / "app.js").write_text("const x = helper();\n")
    (ws / "README.md").write_text("# hi\n")
    return ws


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    fake = FakeBackend()
    yield fake
    fake.gate.set()
    fake.close_all()


def settings_file(base: Path, **values: object) -> Path:
    path = base / "settings.json"
    path.write_text(json.dumps({"completion.enabled": False, "cloud.autostart": False, **values}))
    return path


def make_window(
    qtbot: QtBot, folder: Path | None, chat_backend: Any = None, settings: Path | None = None
) -> MainWindow:
    win = MainWindow(settings, chat_backend=chat_backend)
    qtbot.addWidget(win)
    win.resize(1200, 760)
    win.show()
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=2000)
    if folder is not None:
        win.open_folder(folder)
        qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=5000)
    return win


@pytest.fixture
def window(qtbot: QtBot, workspace: Path, backend: FakeBackend) -> MainWindow:
    return make_window(qtbot, workspace, backend)


def open_chat(qtbot: QtBot, window: MainWindow) -> ChatPanel:
    if not window.chat_panel.isVisible():
        window.activateWindow()  # shortcuts go to the active window (a dialog may have been)
        qtbot.waitUntil(window.isActiveWindow, timeout=2000)
        qtbot.keyClick(window, Qt.Key.Key_L, CTRL)
    assert window.chat_panel.isVisible()
    return window.chat_panel


def ask(qtbot: QtBot, panel: ChatPanel, text: str) -> None:
    panel.input.setFocus()
    panel.input.setPlainText(text)
    qtbot.keyClick(panel.input, Qt.Key.Key_Return)


def last_reply(panel: ChatPanel) -> MessageView:
    view = panel.messages()[-1]
    assert view.role == "assistant"
    return view


def shown_text(view: MessageView) -> str:
    """What a reader sees of a message: its prose labels' text and its code blocks."""
    parts = []
    for widget in view.segment_widgets:
        if isinstance(widget, CodeBlockView):
            parts.append(widget.editor.text())
        else:
            from PySide6.QtGui import QTextDocument

            doc = QTextDocument()
            doc.setHtml(widget.text())  # type: ignore[attr-defined]
            parts.append(doc.toPlainText().strip())
    return "\n".join(parts)


# ----- streaming -----------------------------------------------------------------------------


def test_a_reply_streams_into_the_transcript(
    qtbot: QtBot, window: MainWindow, backend: FakeBackend
) -> None:
    panel = open_chat(qtbot, window)
    ask(qtbot, panel, "What does helper do?")
    call = backend.call(qtbot)
    assert call.params.messages == (ChatMessage("user", "What does helper do?"),)
    assert call.params.max_tokens == window.settings.chat_max_tokens
    assert panel.input.toPlainText() == ""
    question, reply = panel.messages()
    assert question.role == "user" and shown_text(question) == "What does helper do?"
    assert panel.is_streaming() and panel.stop_button.isVisible()
    assert not panel.send_button.isEnabled()

    call.send(ChatStarted("tiny-model", "cloud"), ChatDelta("It returns"))
    qtbot.waitUntil(lambda: shown_text(reply) == "It returns", timeout=3000)
    assert "tiny-model" in reply.header.text()
    call.send(ChatDelta(" **one**."))
    qtbot.waitUntil(lambda: shown_text(reply) == "It returns one.", timeout=3000)
    assert "<strong>one</strong>" in reply.prose_labels()[0].text()
    assert panel.is_streaming()  # not finished until Done

    call.send(ChatDone("stop"))
    call.end()
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)
    assert not panel.stop_button.isVisible() and panel.send_button.isEnabled()
    assert panel.current.messages[-1] == StoredMessage(
        "assistant", "It returns **one**.", (), "tiny-model", "cloud", "stop"
    )


def test_code_blocks_are_highlighted_with_copy_and_apply(
    qtbot: QtBot, window: MainWindow, backend: FakeBackend, workspace: Path
) -> None:
    window.open_file(workspace / "src" / "pkg" / "util.py")
    panel = open_chat(qtbot, window)
    ask(qtbot, panel, "Rewrite helper")
    call = backend.call(qtbot)
    code = "def helper():\n    return 'one'  # why"
    call.send(ChatStarted("m"), ChatDelta("Use **this**:\n\n```python\ndef hel"))
    reply = last_reply(panel)
    qtbot.waitUntil(lambda: len(reply.code_blocks()) == 1, timeout=3000)
    # the block grows as the reply streams
    call.send(ChatDelta(code[7:] + "\n```\n\nThen call `helper()`."), ChatDone("stop"))
    call.end()
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)

    (block,) = reply.code_blocks()
    first, last = reply.prose_labels()
    assert "<strong>this</strong>" in first.text()
    assert "<code>helper()</code>" in last.text()
    assert block.language.id == "python" and block.title.text() == "Python"
    assert block.code == code and block.editor.text() == code

    editor = block.editor
    editor.colourise(0, -1)

    def colour_at(word: str) -> int:
        return int(editor.styleFore(editor.styleAt(code.index(word))))

    plain = int(editor.styleFore(0))
    # keywords, strings and comments each have their own colour, unlike plain text
    assert len({colour_at("def"), colour_at("'one'"), colour_at("# why"), plain}) == 4
    assert colour_at("return") == colour_at("def")

    block.copy_button.click()
    assert QGuiApplication.clipboard().text() == code
    with qtbot.waitSignal(panel.apply_requested) as applied:
        qtbot.mouseClick(block.apply_button, Qt.MouseButton.LeftButton)
    assert applied.args == [code, "python", "src/pkg/util.py"]
    # a review (tests/test_apply_review.py)
    assert window.current_document() in window.review.reviews


# ----- stopping ------------------------------------------------------------------------------


def test_stop_ends_the_reply_and_nothing_more_arrives(
    qtbot: QtBot, window: MainWindow, backend: FakeBackend
) -> None:
    panel = open_chat(qtbot, window)
    ask(qtbot, panel, "Tell me a long story")
    call = backend.call(qtbot)
    call.send(ChatStarted("m"), ChatDelta("Once upon"))
    reply = last_reply(panel)
    qtbot.waitUntil(lambda: shown_text(reply) == "Once upon", timeout=3000)

    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert call.cancelled.is_set()
    assert not panel.is_streaming() and not panel.stop_button.isVisible()
    assert reply.footer.text() == "Stopped."
    # the backend keeps talking after the cancel: none of it may show
    call.send(ChatDelta(" a time"), ChatDelta(" there was"), ChatDone("stop"))
    call.end()
    qtbot.waitUntil(call.finished.is_set, timeout=3000)
    qtbot.wait(100)  # room for a stray queued update to (wrongly) arrive
    assert shown_text(reply) == "Once upon"
    assert panel.current.messages[-1] == StoredMessage(
        "assistant", "Once upon", (), "m", "cloud", "cancelled"
    )

    # the next question streams normally
    ask(qtbot, panel, "Shorter, please")
    second = backend.call(qtbot, 2)
    assert [m.content for m in second.params.messages] == [
        "Tell me a long story",
        "Once upon",
        "Shorter, please",
    ]
    second.reply("The end.")
    qtbot.waitUntil(lambda: shown_text(last_reply(panel)) == "The end.", timeout=3000)
    assert shown_text(reply) == "Once upon"


def test_escape_stops_a_reply_then_returns_to_the_editor(
    qtbot: QtBot, window: MainWindow, backend: FakeBackend, workspace: Path
) -> None:
    doc = window.open_file(workspace / "src" / "app.js")
    assert doc is not None
    panel = open_chat(qtbot, window)
    ask(qtbot, panel, "Why?")
    call = backend.call(qtbot)
    call.send(ChatStarted("m"), ChatDelta("Because"))
    qtbot.waitUntil(lambda: shown_text(last_reply(panel)) == "Because", timeout=3000)
    assert panel.input.hasFocus()

    qtbot.keyClick(panel.input, Qt.Key.Key_Escape)  # first Esc: stop
    assert call.cancelled.is_set() and not panel.is_streaming()
    assert panel.input.hasFocus() and panel.isVisible()

    qtbot.keyClick(panel.input, Qt.Key.Key_Escape)  # then: back to the editor
    qtbot.waitUntil(doc.editor.hasFocus, timeout=2000)
    assert panel.isVisible()


def test_escape_in_the_file_picker_only_closes_the_picker(
    qtbot: QtBot, window: MainWindow, backend: FakeBackend
) -> None:
    panel = open_chat(qtbot, window)
    ask(qtbot, panel, "Keep going")
    call = backend.call(qtbot)
    call.send(ChatStarted("m"), ChatDelta("Going"))
    panel.input.setFocus()
    qtbot.keyClicks(panel.input, "and @")
    assert panel.picker.is_open() and panel.picker.query_edit.hasFocus()
    qtbot.keyClick(panel.picker.query_edit, Qt.Key.Key_Escape)
    assert not panel.picker.is_open()
    assert panel.is_streaming() and not call.cancelled.is_set()
    assert panel.input.toPlainText() == "and @"
    call.reply("")


# ----- failures and notices ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (
            ChatError("unauthenticated", "The Forecode service refused the access token."),
            ["refused the access token", "Cloud: Set Service Token"],
        ),
        (
            ChatError("unavailable", "Cannot reach the Forecode service at 127.0.0.1:9."),
            ["not reachable", "127.0.0.1:9"],
        ),
        (ChatError("deadline", "No answer within 300 s."), ["did not answer in time", "300 s"]),
        (ChatError("busy", "All 2 slots are in use."), ["busy", "try again", "All 2 slots"]),
        (
            ChatError("too_large", "The request is 40 MB; the limit is 32 MB."),
            ["too large for the service", "40 MB"],
        ),
        (
            RuntimeError("socket closed"),
            ["The chat failed (internal)", "RuntimeError: socket closed"],
        ),
        (None, ["The reply ended without finishing."]),
    ],
)
def test_failures_are_readable_and_the_panel_recovers(
    qtbot: QtBot,
    window: MainWindow,
    backend: FakeBackend,
    error: BaseException | None,
    words: list[str],
) -> None:
    panel = open_chat(qtbot, window)
    ask(qtbot, panel, "Hello?")
    call = backend.call(qtbot)
    if error is None:
        call.send(ChatStarted("m"))
        call.end()  # a stream that stops without its Done
    else:
        call.fail(error)
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)
    (notice,) = panel.notices()
    assert notice.kind == "error"
    qtbot.waitUntil(notice.isVisible, timeout=2000)
    for word in words:
        assert word in notice.message
    # no empty reply is left behind, the question stays, and a new one can be asked
    assert [m.role for m in panel.messages()] == ["user"]
    assert panel.send_button.isEnabled() and not panel.stop_button.isVisible()
    assert panel.current.messages[-1].role == "notice"
    ask(qtbot, panel, "Again?")
    backend.call(qtbot, 2).reply("Yes.")
    qtbot.waitUntil(lambda: shown_text(last_reply(panel)) == "Yes.", timeout=3000)


def test_a_failure_mid_reply_keeps_what_arrived(
    qtbot: QtBot, window: MainWindow, backend: FakeBackend
) -> None:
    panel = open_chat(qtbot, window)
    ask(qtbot, panel, "Hello?")
    call = backend.call(qtbot)
    call.send(ChatStarted("m"), ChatDelta("Half an ans"))
    call.fail(ChatError("internal", "The model crashed."))
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)
    reply = last_reply(panel)
    assert shown_text(reply) == "Half an ans"
    assert reply.footer.text() == "The reply broke off."
    assert "The model crashed." in panel.notices()[0].message


def test_router_notices_show_where_the_answer_comes_from(
    qtbot: QtBot, window: MainWindow, backend: FakeBackend
) -> None:
    panel = open_chat(qtbot, window)
    ask(qtbot, panel, "First")
    backend.call(qtbot).send(
        ChatNotice(NOTICE_FALLBACK),
        ChatStarted("gemma", "local"),
        ChatDelta("From here."),
        ChatDone("stop"),
    )
    backend.calls[0].end()
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)
    (notice,) = panel.notices()
    assert notice.message == NOTICE_FALLBACK and notice.kind == "info"
    reply = last_reply(panel)
    assert panel.views.index(notice) == panel.views.index(reply) - 1  # above its reply
    assert reply.header.text() == "Assistant · gemma · local model"

    # the service breaks off mid-reply: the local model's answer replaces the partial one
    ask(qtbot, panel, "Second")
    call = backend.call(qtbot, 2)
    call.send(ChatStarted("big", "cloud"), ChatDelta("Half of a cloud ans"))
    second = last_reply(panel)
    qtbot.waitUntil(lambda: shown_text(second) == "Half of a cloud ans", timeout=3000)
    call.send(
        ChatNotice(NOTICE_RESTART),
        ChatStarted("gemma", "local"),
        ChatDelta("A whole local answer."),
        ChatDone("stop"),
    )
    call.end()
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)
    assert shown_text(second) == "A whole local answer."
    assert panel.notices()[-1].message == NOTICE_RESTART
    assert panel.current.messages[-1].content == "A whole local answer."
    assert panel.current.messages[-1].source == "local"


def test_describe_failure_for_an_unknown_code() -> None:
    assert describe_failure("weird", "It broke.") == "The chat failed (weird): It broke."


# ----- context -------------------------------------------------------------------------------


def test_current_file_selection_and_mentions_go_with_the_question(
    qtbot: QtBot, window: MainWindow, backend: FakeBackend, workspace: Path
) -> None:
    doc = window.open_file(workspace / "src" / "pkg" / "util.py")
    assert doc is not None
    editor = doc.editor
    editor.setSel(editor.positionFromLine(1), editor.lineEndPosition(1))  # "    return 1"
    panel = open_chat(qtbot, window)
    qtbot.waitUntil(lambda: panel.current_chip.text() == "✓ util.py", timeout=3000)
    assert panel.selection_chip.text() == "✓ selection (1 line)"

    # "@" opens the file picker; choosing a file puts its mention in the question
    qtbot.keyClicks(panel.input, "explain with @")
    assert panel.picker.is_open()
    qtbot.keyClicks(panel.picker.query_edit, "appjs")
    assert panel.picker.items()[0].data == "src/app.js"
    qtbot.keyClick(panel.picker.query_edit, Qt.Key.Key_Return)
    assert panel.input.toPlainText() == "explain with @src/app.js "
    assert panel.input.hasFocus()
    qtbot.keyClicks(panel.input, "and @README.md")
    panel.refresh_context()
    assert [c.text() for c in panel.mention_chips] == ["✓ @app.js ✕", "✓ @README.md ✕"]
    qtbot.keyClick(panel.input, Qt.Key.Key_Return)

    call = backend.call(qtbot)
    assert call.params.context == (
        ContextItem("selection", "src/pkg/util.py", "    return 1", 2, 2, "python"),
        ContextItem("current_file", "src/pkg/util.py", editor.text(), 0, 0, "python"),
        ContextItem("file", "src/app.js", "const x = helper();\n", 0, 0, "javascript"),
        ContextItem("file", "README.md", "# hi\n", 0, 0, "markdown"),
    )
    question = panel.messages()[0]
    assert question.footer.text() == (
        "Context: selection in src/pkg/util.py (lines 2–2) · current file src/pkg/util.py · "
        "src/app.js · README.md"
    )
    call.reply("ok")


def test_unsaved_edits_and_chip_toggles_are_respected(
    qtbot: QtBot, window: MainWindow, backend: FakeBackend, workspace: Path
) -> None:
    doc = window.open_file(workspace / "src" / "pkg" / "util.py")
    assert doc is not None
    doc.editor.set_text("UNSAVED = True\n", keep_undo=True)
    panel = open_chat(qtbot, window)
    qtbot.waitUntil(lambda: panel.current_chip.text() == "✓ util.py", timeout=3000)
    assert not panel.selection_chip.isVisible()  # nothing selected
    ask(qtbot, panel, "first")
    first = backend.call(qtbot)
    assert [(i.kind, i.text) for i in first.params.context] == [
        ("current_file", "UNSAVED = True\n")
    ]
    first.reply("a")
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)

    panel.current_chip.click()  # leave the current file out
    assert panel.current_chip.text() == "util.py (off)"
    ask(qtbot, panel, "second, about @src/pkg/util.py")
    second = backend.call(qtbot, 2)
    # the mention is the open buffer, not the file on disk
    assert [(i.kind, i.path, i.text) for i in second.params.context] == [
        ("file", "src/pkg/util.py", "UNSAVED = True\n")
    ]
    second.reply("b")


def test_mentions_that_cannot_be_sent_say_why(
    qtbot: QtBot, window: MainWindow, backend: FakeBackend, workspace: Path
) -> None:
    (workspace / "blob.bin").write_bytes(b"\x00\x01binary")
    outside = workspace.parent / "secret.txt"
    outside.write_text("not yours")
    panel = open_chat(qtbot, window)
    panel.input.setPlainText(f"@missing.py @blob.bin @../secret.txt @{outside} @src")
    panel.refresh_context()
    chips = {c.path: c for c in panel.mention_chips}
    for path in ("missing.py", "blob.bin", "../secret.txt", str(outside), "src"):
        assert chips[path].status == "dropped", path
        assert chips[path].text().endswith("(dropped) ✕")
    assert "No such file" in chips["missing.py"].toolTip()
    assert "binary" in chips["blob.bin"].toolTip().lower()
    assert "not a file of the workspace" in chips["../secret.txt"].toolTip()
    assert "not a file of the workspace" in chips[str(outside)].toolTip()
    assert "not a file" in chips["src"].toolTip()
    qtbot.keyClick(panel.input, Qt.Key.Key_Return)
    call = backend.call(qtbot)
    assert call.params.context == ()
    call.reply("ok")

    # clicking a mention's chip takes it out of the question
    panel.input.setPlainText("look at @README.md and @src/app.js please")
    panel.refresh_context()
    panel.mention_chips[0].click()
    assert panel.input.toPlainText() == "look at and @src/app.js please"
    assert [c.path for c in panel.mention_chips] == ["src/app.js"]


def test_over_budget_files_are_truncated_or_dropped_and_the_panel_says_so(
    qtbot: QtBot, tmp_path: Path, workspace: Path, backend: FakeBackend
) -> None:
    (workspace / "big.py").write_text("".join(f"x{i} = {i}  # a line\n" for i in range(500)))
    (workspace / "huge.py").write_text("y = 1\n" * 5000)
    settings = settings_file(tmp_path, **{"chat.contextBudgetTokens": 300})
    window = make_window(qtbot, workspace, backend, settings)
    window.open_file(workspace / "src" / "pkg" / "util.py")
    panel = open_chat(qtbot, window)
    assert panel.budget_tokens == 300
    ask(qtbot, panel, "compare @big.py with @huge.py")
    call = backend.call(qtbot)

    current, big = call.params.context  # huge.py did not fit at all
    assert current.kind == "current_file" and not current.truncated
    assert big.path == "big.py" and big.truncated
    assert big.start_line == 1 and 1 < big.end_line < 500
    assert big.text == "".join(f"x{i} = {i}  # a line\n" for i in range(big.end_line))[:-1]
    chips = {c.path: c.text() for c in panel.mention_chips}
    assert chips == {
        "big.py": f"✂ @big.py (lines 1–{big.end_line}) ✕",
        "huge.py": "✕ @huge.py (dropped) ✕",
    }
    assert "of the 300 tokens" in panel.budget_label.toolTip()
    # a narrow panel shows a shorter figure whole, never a clipped one (a user run saw
    # "context ≈5991 / 6000 toke")
    label = panel.budget_label
    label.resize(400, label.height())
    assert label.text().endswith("/ 300 tokens")
    label.resize(70, label.height())
    assert label.text() == "≈" + label.text()[1:].split("/")[0] + "/300"
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.width()
    label.resize(8, label.height())
    assert label.text() == ""
    footer = panel.messages()[0].footer.text()
    assert f"big.py (truncated to lines 1–{big.end_line})" in footer
    assert "huge.py (not sent: over the context budget)" in footer
    call.reply("ok")


# ----- conversations -------------------------------------------------------------------------


def test_conversations_persist_per_workspace(
    qtbot: QtBot, tmp_path: Path, workspace: Path, backend: FakeBackend
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    first = make_window(qtbot, workspace, backend)
    panel = open_chat(qtbot, first)
    ask(qtbot, panel, "How do I test this?")
    backend.call(qtbot).reply("With pytest:\n\n```python\nassert helper() == 1\n```")
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)
    conversation_id = panel.current.id
    first.close()

    again = make_window(qtbot, workspace, backend)
    panel = again.chat_panel
    assert panel.current.id == conversation_id
    question, reply = panel.messages()
    assert shown_text(question) == "How do I test this?"
    assert shown_text(reply) == "With pytest:\nassert helper() == 1"
    assert len(reply.code_blocks()) == 1
    assert panel.conversation_box.currentText().startswith("How do I test this?")
    # a follow-up continues the same conversation, with its history
    open_chat(qtbot, again)
    ask(qtbot, panel, "And with unittest?")
    call = backend.call(qtbot, 2)
    assert call.params.conversation_id == conversation_id
    assert [m.role for m in call.params.messages] == ["user", "assistant", "user"]
    call.reply("Use TestCase.")
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)
    again.close()

    elsewhere = make_window(qtbot, other, backend)
    assert elsewhere.chat_panel.messages() == []
    assert elsewhere.chat_panel.conversation_box.count() == 1
    assert elsewhere.chat_panel.conversation_box.currentText() == "New chat"
    elsewhere.close()

    # "Chat: New Conversation" from the palette, then back to the first one from the list
    third = make_window(qtbot, workspace, backend)
    panel = third.chat_panel
    assert len(panel.messages()) == 4
    qtbot.keyClick(third, Qt.Key.Key_P, CTRL | Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(third.picker.query_edit, "new conversation")
    assert third.picker.items()[0].label == "Chat: New Conversation"
    qtbot.keyClick(third.picker.query_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: panel.isVisible() and panel.messages() == [], timeout=3000)
    assert panel.input.hasFocus()
    ask(qtbot, panel, "Unrelated question")
    new_call = backend.call(qtbot, 3)
    assert new_call.params.conversation_id != conversation_id
    assert [m.content for m in new_call.params.messages] == ["Unrelated question"]
    new_call.reply("Sure.")
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)
    titles = [panel.conversation_box.itemText(i) for i in range(panel.conversation_box.count())]
    assert len(titles) == 2 and titles[0].startswith("Unrelated question")
    panel.conversation_box.activated.emit(1)
    assert panel.current.id == conversation_id and len(panel.messages()) == 4


def test_a_corrupt_conversation_file_is_reported_and_the_rest_kept(
    qtbot: QtBot, workspace: Path, backend: FakeBackend
) -> None:
    first = make_window(qtbot, workspace, backend)
    panel = open_chat(qtbot, first)
    ask(qtbot, panel, "Keep me")
    backend.call(qtbot).reply("Kept.")
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)
    kept_id = panel.current.id
    store = ConversationStore.for_workspace(workspace)
    (store.root / f"{'f' * 32}.json").write_text('{"format": "forecode-chat", "vers')
    first.close()

    again = make_window(qtbot, workspace, backend)
    panel = again.chat_panel
    (notice,) = panel.notices()
    assert notice.kind == "error"
    assert f"{'f' * 32}.json could not be read (invalid JSON" in notice.message
    assert "moved to" in notice.message
    assert "could not be read" in again.statusBar().currentMessage()
    assert kept_id in [
        panel.conversation_box.itemData(i) for i in range(panel.conversation_box.count())
    ]
    panel.switch_to(kept_id)
    assert [shown_text(m) for m in panel.messages()] == ["Keep me", "Kept."]


# ----- the panel in the window ---------------------------------------------------------------


def test_ctrl_l_toggles_and_focuses_the_panel(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = window.open_file(workspace / "README.md")
    assert doc is not None
    panel = window.chat_panel
    assert not panel.isVisible()
    qtbot.keyClick(doc.editor, Qt.Key.Key_L, CTRL)
    assert panel.isVisible() and panel.input.hasFocus()
    assert panel.width() >= panel.minimumWidth()
    assert doc.editor.text() == "# hi\n"  # Scintilla's own Ctrl+L did not run

    qtbot.keyClick(panel.input, Qt.Key.Key_L, CTRL)  # from the panel: close it
    assert not panel.isVisible()
    qtbot.waitUntil(doc.editor.hasFocus, timeout=2000)

    qtbot.keyClick(doc.editor, Qt.Key.Key_L, CTRL)
    assert panel.isVisible() and panel.input.hasFocus()
    doc.editor.focus()
    qtbot.keyClick(doc.editor, Qt.Key.Key_L, CTRL)  # open, focus elsewhere: focus it again
    assert panel.isVisible() and panel.input.hasFocus()

    by_title = {c.title: c for c in window.commands}
    assert by_title["Chat: Toggle Chat Panel"].shortcut == "Ctrl+L"
    assert "Chat: New Conversation" in by_title
    assert "Cloud: Set Service Token" in by_title


def test_the_ui_thread_never_waits_on_the_backend(
    qtbot: QtBot, window: MainWindow, backend: FakeBackend
) -> None:
    panel = open_chat(qtbot, window)
    backend.gate.clear()  # chat() itself blocks, as a connect to a dead host would
    ask(qtbot, panel, "Are you there?")
    ticks: list[int] = []
    timer = QTimer(window)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(5)
    qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=3000)  # the event loop keeps turning
    qtbot.keyClicks(panel.input, "still typing")
    assert panel.input.toPlainText() == "still typing"
    assert panel.is_streaming() and backend.calls == []

    backend.gate.set()
    call = backend.call(qtbot)
    call.send(ChatStarted("m"))  # now the iterator blocks between events
    ticks.clear()
    qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=3000)
    call.send(ChatDelta("Yes."), ChatDone("stop"))
    call.end()
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)
    timer.stop()
    assert shown_text(last_reply(panel)) == "Yes."


def test_a_question_asked_while_the_service_starts_waits_for_it(
    qtbot: QtBot, window: MainWindow, backend: FakeBackend
) -> None:
    deferred = DeferredBackend()
    window.chat_panel.set_backend(deferred)
    panel = open_chat(qtbot, window)
    ask(qtbot, panel, "Early question")
    qtbot.waitUntil(lambda: len(panel.notices()) == 1, timeout=3000)
    assert "starting" in panel.notices()[0].message
    assert panel.is_streaming()
    deferred.set(backend)
    call = backend.call(qtbot)
    assert call.params.messages[-1].content == "Early question"
    call.reply("Late answer.")
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)
    assert shown_text(last_reply(panel)) == "Late answer."


def test_without_a_service_the_status_bar_and_the_panel_say_so(
    qtbot: QtBot, workspace: Path
) -> None:
    window = make_window(qtbot, workspace)  # the test settings: no service, no local model
    assert window.cloud.connection is not None and window.cloud.connection.mode == "none"
    assert window.status_chat.text() == "○ Chat offline"
    assert "cloud.autostart is off" in window.status_chat.toolTip()
    panel = open_chat(qtbot, window)
    ask(qtbot, panel, "Anyone?")
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)
    assert "no model can answer" in panel.notices()[0].message


def test_changing_cloud_settings_reconnects(
    qtbot: QtBot, tmp_path: Path, workspace: Path, file_keyring: None
) -> None:
    settings = settings_file(tmp_path)
    window = make_window(qtbot, workspace, settings=settings)
    first = window.cloud.connection
    assert first is not None and first.mode == "none"
    window.cloud.set_service_token()  # nothing to set a token for yet
    assert window.cloud.token_dialog is None
    assert "Set cloud.url first" in window.statusBar().currentMessage()

    settings.write_text(
        json.dumps(
            {"completion.enabled": False, "cloud.autostart": False, "cloud.url": "127.0.0.1:9"}
        )
    )
    window.prefs.reload()
    assert window.cloud.connection is not first and window.cloud.connection is not None
    assert window.cloud.connection.mode == "remote"
    assert window.chat_panel.runner.backend is window.cloud.connection.backend
    qtbot.waitUntil(
        lambda: "no token is set for 127.0.0.1:9" in window.status_chat.toolTip(), timeout=5000
    )
    assert window.status_chat.text() == "○ Chat offline"


class FakeService:
    """A LocalService that starts only when the test says so."""

    def __init__(self) -> None:
        self.ready: Any = None
        self.stopped = threading.Event()

    pid = None

    def start_async(self, on_ready: Any, on_error: Any) -> None:
        self.ready = on_ready

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped.set()


def test_a_service_still_starting_when_the_window_closes_is_stopped(qtbot: QtBot) -> None:
    service = FakeService()
    conn = CloudConnection(autostart=True, service_factory=lambda: service)
    states: list[str] = []
    conn.state_changed.connect(lambda s, _d: states.append(s))
    conn.start()
    assert states == ["starting"] and service.ready is not None
    conn.close(timeout=1.0)
    assert service.stopped.is_set()
    service.stopped.clear()
    # the start finishes after the close (another thread): the service is stopped again
    threading.Thread(target=service.ready, args=("127.0.0.1:1", "t")).start()
    assert service.stopped.wait(5)
    qtbot.wait(50)
    assert states == ["starting"]


# ----- real parts ----------------------------------------------------------------------------


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_the_window_runs_the_real_service_and_stops_it_on_close(
    qtbot: QtBot, tmp_path: Path, workspace: Path
) -> None:
    settings = settings_file(tmp_path, **{"cloud.autostart": True, "chat.maxTokens": 24})
    window = make_window(qtbot, workspace, settings=settings)
    assert window.cloud.connection is not None and window.cloud.connection.mode == "loopback"
    assert window.status_chat.text() == "◌ Chat starting…"
    pid = window.cloud.connection.service_pid
    assert pid is not None and not process_gone(pid)
    window.open_file(workspace / "src" / "pkg" / "util.py")

    panel = open_chat(qtbot, window)
    qtbot.keyClicks(panel.input, "What does helper return?")
    qtbot.keyClick(panel.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.status_chat.text() == "● Chat", timeout=180_000)
    assert window.cloud.connection.target.startswith("127.0.0.1:")
    assert window.cloud.connection.target in window.status_chat.toolTip()
    reply = last_reply(panel)
    qtbot.waitUntil(lambda: bool(reply.text.strip()), timeout=120_000)  # streamed text
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=120_000)
    assert "cloud" in reply.header.text()
    stored = panel.current.messages[-1]
    assert stored.role == "assistant" and stored.source == "cloud"
    assert stored.finish in ("stop", "length") and stored.content == reply.text
    assert "Qwen2.5 Coder 1.5B Instruct" in stored.model  # the service's default model

    window.close()
    qtbot.waitUntil(lambda: process_gone(pid), timeout=10_000)


@pytest.mark.slow
def test_chat_model_path_picks_the_model_of_the_loopback_service(
    qtbot: QtBot, tmp_path: Path, workspace: Path
) -> None:
    from local_models.model_store import ensure_small_model

    settings = settings_file(
        tmp_path,
        **{
            "cloud.autostart": True,
            "chat.maxTokens": 8,
            "chat.modelPath": str(ensure_small_model()),
        },
    )
    window = make_window(qtbot, workspace, settings=settings)
    panel = open_chat(qtbot, window)
    qtbot.keyClicks(panel.input, "Say hi")
    qtbot.keyClick(panel.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: window.status_chat.text() == "● Chat", timeout=180_000)
    reply = last_reply(panel)
    qtbot.waitUntil(lambda: not panel.is_streaming() and bool(reply.text), timeout=120_000)
    stored = panel.current.messages[-1]
    assert stored.source == "cloud" and "Gemma 3" in stored.model
    assert "Gemma 3" in reply.header.text()
    window.close()


@pytest.fixture
def file_keyring() -> Iterator[None]:
    """No OS keyring: the token goes to the encrypted file in the test's data dir."""
    old = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(old)


@pytest.mark.slow
def test_a_remote_service_token_is_set_from_the_palette(
    qtbot: QtBot, tmp_path: Path, workspace: Path, file_keyring: None
) -> None:
    from cloud_client.tokens import TokenStore
    from cloud_server.config import ServerConfig
    from cloud_server.service import start_server
    from local_models.model_store import ensure_small_model

    token = secrets.token_urlsafe(32)
    server = start_server(
        ServerConfig(
            tokens=(token,),
            slots=1,
            n_ctx=1024,
            default_max_tokens=16,
            model_path=str(ensure_small_model()),
            grace_s=0.5,
        )
    )
    try:
        url = f"127.0.0.1:{server.port}"
        settings = settings_file(tmp_path, **{"cloud.url": url, "chat.maxTokens": 16})
        window = make_window(qtbot, workspace, settings=settings)
        assert window.cloud.connection is not None and window.cloud.connection.mode == "remote"
        # no token yet: the status bar says what to do
        qtbot.waitUntil(lambda: window.status_chat.text() == "○ Chat offline", timeout=5000)
        assert "Cloud: Set Service Token" in window.status_chat.toolTip()

        window.cloud.set_service_token()
        dialog = window.cloud.token_dialog
        assert dialog is not None and dialog.isVisible()
        assert dialog.textEchoMode() == QLineEdit.EchoMode.Password
        assert url in dialog.labelText()
        dialog.setTextValue(token)
        dialog.accept()
        qtbot.waitUntil(lambda: window.status_chat.text() == "● Chat", timeout=10_000)
        assert TokenStore().get(token_name(url)) == token
        for text in (window.status_chat.toolTip(), window.statusBar().currentMessage()):
            assert token not in text

        panel = open_chat(qtbot, window)
        ask(qtbot, panel, "Say hi")
        qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=120_000)
        reply = last_reply(panel)
        assert reply.text.strip() and "cloud" in reply.header.text()
        assert panel.notices() == []
        window.close()
    finally:
        server.stop(0)


@pytest.mark.slow
def test_when_the_service_cannot_start_the_local_model_answers(
    qtbot: QtBot, tmp_path: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cloud_client.local_service as local_service

    class BrokenService(local_service.LocalService):
        """The real service process, started with a command line it refuses (exit 2)."""

        def __init__(self, model_path: str | None = None) -> None:
            super().__init__(model_path=model_path, extra_args=("--slots", "0"))

    monkeypatch.setattr(local_service, "LocalService", BrokenService)
    # the completion model is one that can chat (Qwen 0.5B): since the first start uses the
    # smallest model at once (Gemma 3 270M, refused for chat: test_local_chat_refusal.py)
    settings = settings_file(
        tmp_path,
        **{
            "cloud.autostart": True,
            "completion.enabled": True,
            "completion.model": "qwen2.5-coder-0.5b-instruct",
            "chat.maxTokens": 16,
        },
    )
    window = make_window(qtbot, workspace, settings=settings)
    qtbot.waitUntil(lambda: window.status_chat.text() == "◐ Chat: local model", timeout=60_000)
    assert "could not start" in window.status_chat.toolTip()
    panel = open_chat(qtbot, window)
    ask(qtbot, panel, "Say hi")
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=120_000)
    reply = last_reply(panel)
    assert reply.text.strip() and reply.header.text().endswith("· local model")
    assert panel.current.messages[-1].source == "local"
    assert panel.notices() == []
    window.close()


def test_a_reply_with_no_words_yet_says_it_is_reading(
    qtbot: QtBot, window: MainWindow, backend: FakeBackend
) -> None:
    """A user run: the local model read a 6,000-token context for a minute and the reply sat
    empty under its header; now it says what is happening until the first words."""
    from app.ui.chat_panel import READING_NOTE

    panel = open_chat(qtbot, window)
    ask(qtbot, panel, "What does helper do?")
    call = backend.call(qtbot)
    reply = last_reply(panel)
    assert reply.footer.text() == READING_NOTE and not reply.footer.isHidden()
    call.send(ChatStarted("tiny-model", "cloud"))
    qtbot.waitUntil(lambda: "tiny-model" in reply.header.text(), timeout=3000)
    assert reply.footer.text() == READING_NOTE  # started: a slot, still reading
    call.send(ChatDelta("It returns"))
    qtbot.waitUntil(lambda: shown_text(reply) == "It returns", timeout=3000)
    assert reply.footer.isHidden()
    call.send(ChatDone("stop"))
    call.end()
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=3000)
    assert reply.footer.isHidden()


def test_the_current_file_chip_follows_the_tab_shown(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    """A user run: after switching tabs with the chat open, the chip still named the previous
    file until the question box took the focus."""
    window.open_file(workspace / "src" / "pkg" / "util.py")
    panel = open_chat(qtbot, window)
    qtbot.waitUntil(lambda: "util.py" in panel.current_chip.text(), timeout=3000)
    window.open_file(workspace / "README.md")  # a tab switch; the focus stays out of the box
    qtbot.waitUntil(lambda: "README.md" in panel.current_chip.text(), timeout=3000)


def test_edit_files_mode_sends_no_more_than_a_service_slot_holds(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    """A user run: "Edit files" with jinja's utils.py (659 lines) open sent the chat's 6,000
    tokens, and the service refused it ("5299 tokens with the system prompt, 3071 allowed"):
    the edits prompt carries the files in the question, which the service cannot cut."""
    from app.ui.chat_panel import EDITS_PROMPT_TOKENS, EDITS_SLOT_TOKENS

    big = workspace / "src" / "pkg" / "big.py"
    big.write_text("".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(700)))
    window.open_file(big)
    panel = open_chat(qtbot, window)
    panel.input.setPlainText("rename f1 to g1 in @src/pkg/util.py")
    plan = panel.refresh_context()
    assert plan.budget_tokens == window.settings.chat_context_budget_tokens == 6000
    assert plan.used_tokens > EDITS_SLOT_TOKENS  # chat: the service cuts what does not fit
    panel.edit_files_button.click()
    assert panel.edit_mode
    qtbot.waitUntil(lambda: "of the 2560 tokens" in panel.budget_label.toolTip(), timeout=3000)
    plan = panel.refresh_context()
    room = EDITS_SLOT_TOKENS - window.settings.chat_max_tokens - EDITS_PROMPT_TOKENS
    assert plan.budget_tokens == room == 2560
    assert plan.used_tokens <= room
    assert [r.status for r in plan.reports] == ["truncated", "full"]  # the mention kept whole
    panel.edit_files_button.click()  # off: the chat's budget again
    assert panel.refresh_context().budget_tokens == 6000


def test_a_mention_of_the_current_file_is_included_once_not_dropped(
    qtbot: QtBot, window: MainWindow, backend: FakeBackend, workspace: Path
) -> None:
    doc = window.open_file(workspace / "src" / "pkg" / "util.py")
    assert doc is not None
    panel = open_chat(qtbot, window)
    qtbot.waitUntil(lambda: panel.current_chip.text() == "✓ util.py", timeout=3000)
    panel.input.setPlainText("what does @src/pkg/util.py do? see @src/pkg/util.py")
    panel.refresh_context()
    (chip,) = panel.mention_chips
    assert chip.status == "full" and chip.text() == "✓ @util.py ✕"
    assert "dropped" not in chip.text() and "goes once" in chip.toolTip()
    assert panel.current_chip.text() == "✓ util.py"
    qtbot.keyClick(panel.input, Qt.Key.Key_Return)
    call = backend.call(qtbot)
    assert [(i.kind, i.path) for i in call.params.context] == [("current_file", "src/pkg/util.py")]
    call.reply("ok")
