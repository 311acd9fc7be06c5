"""The apply review in the editor, as a user drives it: real windows, real Scintilla widgets
offscreen, real files of the Python standard library.

The deterministic tests run the window's real apply backend (``PipelineApplyBackend``: the
deterministic path, which needs no model) on stdlib text. The streaming tests plug a scripted
backend into the window's ``apply_backend`` seam: the test feeds the new file's text piece by
piece and the iteration blocks in between, as a model's stream does.
"""

from __future__ import annotations

import json
import queue
import sysconfig
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import Qt, QTimer
from pytestqt.qtbot import QtBot

from app.ui.apply_backend import PipelineApplyBackend
from app.ui.apply_review import (
    INDICATOR_PENDING,
    MARK_ADD,
    MARK_ADD_GRAY,
    STYLE_DELETED,
    ApplyReview,
)
from app.ui.document import Document
from app.ui.main_window import MainWindow
from forecode_core.apply.block import ApplyInput
from forecode_core.apply.events import ApplyDone
from forecode_core.apply.review import REJOIN_WINDOW, diff_hunks
from forecode_core.apply.review_state import ReviewOutcome, ReviewPhase
from forecode_core.chat.types import ChatDelta, ChatDone, ChatParams, ChatStarted
from forecode_core.streams import Delta, Notice, StreamError

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
ALT = Qt.KeyboardModifier.AltModifier
STDLIB = Path(sysconfig.get_paths()["stdlib"])
TEXTWRAP = (STDLIB / "textwrap.py").read_text(encoding="utf-8")
SHLEX = (STDLIB / "shlex.py").read_text(encoding="utf-8")
_END = object()


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


# Two places touched: wrap() and fill() get width=72.
WRAP_OLD, WRAP_NEW = "def wrap(text, width=70, **kwargs):", "def wrap(text, width=72, **kwargs):"
FILL_OLD, FILL_NEW = "def fill(text, width=70, **kwargs):", "def fill(text, width=72, **kwargs):"
TWO_PLACES = f"{WRAP_NEW}\n    # ... existing code ...\n\n{FILL_NEW}\n    # ... existing code ...\n"
TWO_PLACES_DONE = edit(edit(TEXTWRAP, WRAP_OLD, WRAP_NEW), FILL_OLD, FILL_NEW)

# A body rewritten under elisions (the method's 20 lines become 2).
SPLIT_OLD = TEXTWRAP[
    TEXTWRAP.index("    def _split(self, text):") : TEXTWRAP.index("    def _fix_sentence_endings")
]
SPLIT_NEW = '''    def _split(self, text):
        """Split text into chunks (see _wrap_chunks())."""
        pattern = self.wordsep_re if self.break_on_hyphens else self.wordsep_simple_re
        return [c for c in pattern.split(text) if c]

'''
SPLIT_BLOCK = (
    "class TextWrapper:\n    # ... existing code ...\n"
    + SPLIT_NEW
    + ("    # ... existing code ...\n")
)

# split() then quote() with no elision between them: join() and _find_unsafe are dropped.
DROPS_JOIN = '''def split(s, comments=False, posix=True):
    """Split the string *s* using shell-like syntax."""
    # ... existing code ...
    return list(lex)


def quote(s):
    """Return a shell-escaped version of the string *s*."""
    # ... existing code ...
'''


# ----- the scripted apply backend --------------------------------------------------------------


class ScriptedCall:
    """One apply the test scripts: ``send`` events, ``fail`` with an exception, ``end``.
    Iterating blocks until the test feeds the next item."""

    def __init__(self, request: ApplyInput) -> None:
        self.request = request
        self._items: queue.Queue[object] = queue.Queue()
        self.cancelled = threading.Event()
        self.finished = threading.Event()

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
        # Like a slow model, the script goes on after cancel: the review must drop it.
        self.cancelled.set()

    def send(self, *events: object) -> None:
        for event in events:
            self._items.put(event)

    def fail(self, error: BaseException) -> None:
        self._items.put(error)

    def end(self) -> None:
        self._items.put(_END)


class ScriptedBackend:
    def __init__(self) -> None:
        self.calls: list[ScriptedCall] = []
        self.gate = threading.Event()  # apply() blocks until it is set
        self.gate.set()

    def apply(self, request: ApplyInput) -> ScriptedCall:
        self.gate.wait(60)
        call = ScriptedCall(request)
        self.calls.append(call)
        return call

    def call(self, qtbot: QtBot, n: int = 1) -> ScriptedCall:
        qtbot.waitUntil(lambda: len(self.calls) >= n, timeout=5000)
        return self.calls[n - 1]

    def close_all(self) -> None:
        for call in self.calls:
            call.end()


class CannedChat:
    """A chat backend answering each question with the next canned reply."""

    def __init__(self) -> None:
        self.replies: list[str] = []

    def chat(self, params: ChatParams) -> CannedCall:
        return CannedCall(self.replies.pop(0))


class CannedCall:
    def __init__(self, text: str) -> None:
        self.text = text

    def __iter__(self) -> Iterator[Any]:
        yield ChatStarted("canned", "cloud")
        yield ChatDelta(self.text)
        yield ChatDone("stop")

    def cancel(self) -> None:
        pass


# ----- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "lib").mkdir(parents=True)
    (ws / "lib" / "textwrap.py").write_bytes(TEXTWRAP.encode("utf-8"))
    (ws / "lib" / "textwrap_crlf.py").write_bytes(TEXTWRAP.replace("\n", "\r\n").encode())
    (ws / "shlex.py").write_bytes(SHLEX.encode("utf-8"))
    return ws


@pytest.fixture
def scripted() -> Iterator[ScriptedBackend]:
    fake = ScriptedBackend()
    yield fake
    fake.gate.set()
    fake.close_all()


def make_window(
    qtbot: QtBot, tmp_path: Path, workspace: Path, apply_backend: Any = None, chat: Any = None
) -> MainWindow:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"completion.enabled": False, "cloud.autostart": False}))
    win = MainWindow(settings, chat_backend=chat or CannedChat(), apply_backend=apply_backend)
    qtbot.addWidget(win)
    win.resize(1200, 760)
    win.show()
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=2000)
    win.open_folder(workspace)
    qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=5000)
    return win


@pytest.fixture
def window(qtbot: QtBot, tmp_path: Path, workspace: Path) -> MainWindow:
    return make_window(qtbot, tmp_path, workspace)


@pytest.fixture
def scripted_window(
    qtbot: QtBot, tmp_path: Path, workspace: Path, scripted: ScriptedBackend
) -> MainWindow:
    return make_window(qtbot, tmp_path, workspace, scripted)


def open_doc(window: MainWindow, path: Path) -> Document:
    doc = window.open_file(path)
    assert doc is not None
    return doc


def review_of(window: MainWindow, doc: Document) -> ApplyReview:
    review = window.review.reviews.get(doc)
    assert review is not None, "no review is open on the document"
    return review


def wait_review(qtbot: QtBot, review: ApplyReview) -> None:
    qtbot.waitUntil(lambda: review.state != "streaming", timeout=10_000)
    assert review.state == "review", review.message_label.text()


def press(
    qtbot: QtBot,
    review: ApplyReview,
    key: Qt.Key,
    mods: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier,
) -> None:
    qtbot.keyClick(review.view, key, mods)


def line_of(text: str, needle: str) -> int:
    """0-based line of the one line containing ``needle``."""
    hits = [k for k, line in enumerate(text.split("\n")) if needle in line]
    assert len(hits) == 1, hits
    return hits[0]


def undo_once(qtbot: QtBot, doc: Document) -> None:
    doc.editor.focus()
    qtbot.keyClick(doc.editor, Qt.Key.Key_Z, CTRL)


# ----- the deterministic path on real files ----------------------------------------------------


def test_review_shows_hunks_and_accept_all_applies_as_one_undo(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    review = window.start_review(doc, TWO_PLACES)
    assert review is not None
    wait_review(qtbot, review)

    # the proposed file is shown in place of the buffer, which is untouched
    assert not doc.editor.isVisible() and review.view.isVisible()
    assert review.view_text() == TWO_PLACES_DONE
    assert doc.editor.text() == TEXTWRAP and not doc.is_dirty()
    wrap, fill = line_of(TWO_PLACES_DONE, WRAP_NEW), line_of(TWO_PLACES_DONE, FILL_NEW)
    assert [(h.new_start, h.new_end, h.kind) for h in review.hunks] == [
        (wrap, wrap + 1, "substantive"),
        (fill, fill + 1, "substantive"),
    ]
    # insertions highlighted in place; the replaced lines in boxes right above them
    assert review.marked_lines(MARK_ADD) == [wrap, fill]
    assert review.deletion_boxes() == {wrap - 1: WRAP_OLD, fill - 1: FILL_OLD}
    assert review.view.annotationStyle(wrap - 1) == STYLE_DELETED
    assert review.current == 0 and review.hunk_bar.isVisible()
    assert "Change 1 of 2" in review.status_label.text()
    assert "deterministic" in review.status_label.text()

    with qtbot.waitSignal(review.finished, timeout=2000) as finished:
        press(qtbot, review, Qt.Key.Key_Return, CTRL)
    assert doc.editor.text() == TWO_PLACES_DONE
    assert review.outcome == "applied"
    assert finished.args == [ReviewOutcome.APPLIED]  # the member itself, not only its string
    assert type(finished.args[0]) is ReviewOutcome and review.state is ReviewPhase.DONE
    qtbot.waitUntil(lambda: doc.editor.isVisible(), timeout=2000)
    assert doc not in window.review.reviews and doc.is_dirty()
    assert "Applied 2 of 2 changes" in window.statusBar().currentMessage()

    undo_once(qtbot, doc)  # one Ctrl+Z reverts the whole apply
    assert doc.editor.text() == TEXTWRAP


def test_the_apply_is_its_own_undo_step_after_typing(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    doc.editor.focus()
    qtbot.keyClicks(doc.editor, "#")
    typed = "#" + TEXTWRAP
    assert doc.editor.text() == typed
    review = window.start_review(doc, TWO_PLACES)
    assert review is not None
    wait_review(qtbot, review)
    assert review.request.original == typed
    press(qtbot, review, Qt.Key.Key_Return, CTRL)
    assert doc.editor.text() == "#" + TWO_PLACES_DONE
    undo_once(qtbot, doc)
    assert doc.editor.text() == typed  # the typing is not undone with the apply
    undo_once(qtbot, doc)
    assert doc.editor.text() == TEXTWRAP


def test_reject_all_leaves_the_buffer_untouched(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    review = window.start_review(doc, TWO_PLACES)
    assert review is not None
    wait_review(qtbot, review)
    press(qtbot, review, Qt.Key.Key_Backspace, CTRL)
    assert review.outcome == "rejected"
    qtbot.waitUntil(lambda: doc.editor.isVisible(), timeout=2000)
    assert doc.editor.text() == TEXTWRAP
    assert not doc.is_dirty() and not doc.editor.canUndo()
    assert "nothing was changed" in window.statusBar().currentMessage()


def test_accepting_one_of_two_hunks_applies_exactly_that_one(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    review = window.start_review(doc, TWO_PLACES)
    assert review is not None
    wait_review(qtbot, review)
    # F7 / Shift+F7 and Alt+] / Alt+[ move between the hunks
    press(qtbot, review, Qt.Key.Key_F7)
    assert review.current == 1
    press(qtbot, review, Qt.Key.Key_F7, SHIFT)
    assert review.current == 0
    press(qtbot, review, Qt.Key.Key_BracketRight, ALT)
    assert review.current == 1
    press(qtbot, review, Qt.Key.Key_BracketLeft, ALT)
    assert review.current == 0

    press(qtbot, review, Qt.Key.Key_Y, CTRL)  # accept wrap(): the review moves to fill()
    assert review.current == 1 and doc.editor.text() == TEXTWRAP  # nothing applied yet
    assert "1 accepted, 0 rejected" in review.status_label.text()
    press(qtbot, review, Qt.Key.Key_N, CTRL)  # reject fill(): the last decision applies
    assert review.outcome == "applied"
    assert doc.editor.text() == edit(TEXTWRAP, WRAP_OLD, WRAP_NEW)
    undo_once(qtbot, doc)
    assert doc.editor.text() == TEXTWRAP


def test_plain_y_and_n_and_the_hunk_bar_buttons(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    review = window.start_review(doc, TWO_PLACES)
    assert review is not None
    wait_review(qtbot, review)
    press(qtbot, review, Qt.Key.Key_N)
    assert review.current == 1
    qtbot.mouseClick(review.hunk_bar.accept_button, Qt.MouseButton.LeftButton)
    assert doc.editor.text() == edit(TEXTWRAP, FILL_OLD, FILL_NEW)


def test_crlf_documents_keep_crlf(qtbot: QtBot, window: MainWindow, workspace: Path) -> None:
    original = TEXTWRAP.replace("\n", "\r\n")
    doc = open_doc(window, workspace / "lib" / "textwrap_crlf.py")
    assert doc.editor.text() == original
    review = window.start_review(doc, SPLIT_BLOCK)
    assert review is not None
    wait_review(qtbot, review)
    assert review.view_text() == edit(TEXTWRAP, SPLIT_OLD, SPLIT_NEW)  # shown in LF
    press(qtbot, review, Qt.Key.Key_Return, CTRL)
    expected = edit(TEXTWRAP, SPLIT_OLD, SPLIT_NEW).replace("\n", "\r\n")
    assert doc.editor.text() == expected
    assert doc.save() and doc.wait_saves()
    assert (workspace / "lib" / "textwrap_crlf.py").read_bytes() == expected.encode()


def test_a_block_that_would_delete_a_function_shows_the_safety_warning(
    qtbot: QtBot, scripted_window: MainWindow, scripted: ScriptedBackend, workspace: Path
) -> None:
    """A result (here a model's: the deterministic path refuses such a placement) that drops
    a function the block never mentions is reviewed with the safety warning."""
    window = scripted_window
    doc = open_doc(window, workspace / "shlex.py")
    join = SHLEX[SHLEX.index("def join(") : SHLEX.index("_find_unsafe =")]
    review = window.start_review(doc, DROPS_JOIN)
    assert review is not None
    call = scripted.call(qtbot)
    call.send(Delta(SHLEX.replace(join, "")), ApplyDone("stop", source="model"))
    call.end()
    wait_review(qtbot, review)
    assert review.message_bar.isVisible() and review.message_kind == "warning"
    removed = sum(1 for line in join.split("\n") if line.strip())
    text = review.message_label.text()
    assert f"removes {removed} lines the block does not mention" in text
    assert "join" in text
    # the deleted function is in a box, beside the code that follows it
    assert any("def join(split_command):" in box for box in review.deletion_boxes().values())
    assert doc.editor.text() == SHLEX
    press(qtbot, review, Qt.Key.Key_Escape)  # Esc after the apply: discard
    assert review.outcome == "rejected" and doc.editor.text() == SHLEX


def test_whitespace_only_hunks_are_grayed(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    # a blank line added inside fill(): same tokens, so the hunk is grayed
    block = (
        '    def fill(self, text):\n        """fill(text : string) -> string\n\n'
        '        # ... existing code ...\n        """\n\n'
        '        return "\\n".join(self.wrap(text))\n'
    )
    expected = edit(
        TEXTWRAP,
        '        """\n        return "\\n".join(self.wrap(text))',
        '        """\n\n        return "\\n".join(self.wrap(text))',
    )
    review = window.start_review(doc, block)
    assert review is not None
    wait_review(qtbot, review)
    assert review.view_text() == expected
    (hunk,) = review.hunks
    assert hunk.kind == "whitespace-only"
    assert review.marked_lines(MARK_ADD_GRAY) == [hunk.new_start]
    assert review.marked_lines(MARK_ADD) == []
    assert "whitespace/rename (grayed)" in review.status_label.text()


def test_without_a_model_path_a_refused_block_says_so(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    block = (
        "# ... existing code ...\n    total = sum(widths)\n    log(total)\n"
        "# ... existing code ...\n"
    )
    review = window.start_review(doc, block)
    assert review is not None
    qtbot.waitUntil(lambda: review.state == "failed", timeout=5000)
    text = review.message_label.text()
    assert "does not match lib/textwrap.py unambiguously" in text
    assert "no model path is available" in text and "Nothing was changed" in text
    assert review.view_text() == TEXTWRAP and doc.editor.text() == TEXTWRAP
    press(qtbot, review, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: doc.editor.isVisible(), timeout=2000)
    assert doc.editor.text() == TEXTWRAP


def test_edits_during_the_review_that_clash_make_its_hunks_stale(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    review = window.start_review(doc, TWO_PLACES)
    assert review is not None
    wait_review(qtbot, review)
    # the buffer changes under the review (an edit through a command, a reload from disk...)
    # on the very line a hunk changes: a three-way merge cannot keep both
    clash = edit(TEXTWRAP, WRAP_OLD, "def wrap(text, width=80, **kwargs):")
    doc.editor.set_text(clash, keep_undo=True)
    assert review.state == "stale"
    doc.editor.undo()  # back to the text the hunks fit: the review goes on
    assert review.state == "review" and not review.message_bar.isVisible()
    doc.editor.set_text(clash, keep_undo=True)
    assert review.state == "stale"
    press(qtbot, review, Qt.Key.Key_Return, CTRL)
    assert review.outcome == "" and doc.editor.text() == clash
    assert review.message_kind == "error"
    assert "changed during the review" in review.message_label.text()
    # "Apply again" reviews the block against the text as it is now
    review._message_buttons[0].click()
    wait_review(qtbot, review)
    press(qtbot, review, Qt.Key.Key_Return, CTRL)
    assert doc.editor.text() == edit(clash, "width=80", "width=72").replace(FILL_OLD, FILL_NEW)


def test_edits_during_the_review_elsewhere_are_merged_three_way_in_one_undo_step(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    """Issue 16: "Accepting applies the reviewed diff to the user's buffers (three-way when
    the user edited meanwhile), as one undo step"."""
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    review = window.start_review(doc, TWO_PLACES)
    assert review is not None
    wait_review(qtbot, review)
    doc.editor.insertText(0, "# edited\n")  # away from both hunks
    assert review.state == "review"
    assert review.message_kind == "info" and "merges" in review.message_label.text()
    doc.editor.undo()  # back: the note goes
    assert review.state == "review" and not review.message_bar.isVisible()
    doc.editor.insertText(0, "# edited\n")
    press(qtbot, review, Qt.Key.Key_Return, CTRL)
    assert review.outcome == "applied"
    assert doc.editor.text() == "# edited\n" + TWO_PLACES_DONE
    doc.editor.undo()  # one step takes the whole apply back, the user's line stays
    assert doc.editor.text() == "# edited\n" + TEXTWRAP


def test_an_unchanged_result_closes_with_a_message(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    review = window.start_review(doc, f"{WRAP_OLD}\n    # ... existing code ...\n")
    assert review is not None
    qtbot.waitUntil(lambda: review.outcome == "unchanged", timeout=5000)
    assert "changes nothing" in window.statusBar().currentMessage()
    assert doc.editor.text() == TEXTWRAP and doc.editor.isVisible()


# ----- streaming, cancelling and failing (scripted backend) --------------------------------------


NEW_IMPORT = edit(TEXTWRAP, "import re\n", "import re\nimport sys\n")
STREAMED = edit(NEW_IMPORT, FILL_OLD, FILL_NEW)


def test_hunks_appear_while_the_new_file_streams(
    qtbot: QtBot, scripted_window: MainWindow, scripted: ScriptedBackend, workspace: Path
) -> None:
    window = scripted_window
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    review = window.start_review(doc, "import re\nimport sys\n# ... existing code ...\n")
    assert review is not None
    call = scripted.call(qtbot)
    assert call.request.original == TEXTWRAP and call.request.path == "lib/textwrap.py"
    assert review.state == "streaming" and review.stop_button.isVisible()
    # before anything arrives the original is shown, dimmed
    assert review.view_text() == TEXTWRAP

    lines = STREAMED.split("\n")
    first = line_of(STREAMED, "import sys")
    head = "\n".join(lines[: first + REJOIN_WINDOW + 3]) + "\n"
    call.send(Notice("the model rewrites the file"), Delta(head[:500]), Delta(head[500:]))
    qtbot.waitUntil(lambda: len(review.hunks) == 1, timeout=5000)
    assert review.state == "streaming"  # the first hunk is shown before the apply is done
    assert review.hunks[0] == diff_hunks(TEXTWRAP, STREAMED)[0]
    assert review.marked_lines(MARK_ADD) == [first]
    assert review.view_text().startswith(head)
    assert review.view_text().endswith(TEXTWRAP.split("\n")[-2] + "\n")  # the tail: original
    view = review.view
    assert not view.indicatorAllOnFor(0) & (1 << INDICATOR_PENDING)
    assert view.indicatorAllOnFor(view.textLength() - 2) & (1 << INDICATOR_PENDING)
    assert "Writing…" in review.status_label.text()
    assert "the model rewrites the file" in review.status_label.text()
    assert doc.editor.text() == TEXTWRAP

    press(qtbot, review, Qt.Key.Key_Y, CTRL)  # decided while streaming: kept
    press(qtbot, review, Qt.Key.Key_Return, CTRL)  # not before the apply is done
    assert review.outcome == "" and doc.editor.text() == TEXTWRAP

    call.send(Delta(STREAMED[len(head) :]), ApplyDone("stop", source="cloud", accepted_tokens=900))
    call.end()
    wait_review(qtbot, review)
    assert [h.new_start for h in review.hunks] == [first, line_of(STREAMED, FILL_NEW)]
    assert review.view_text() == STREAMED
    assert review.current == 1 and "from cloud" in review.status_label.text()
    press(qtbot, review, Qt.Key.Key_N, CTRL)
    assert review.outcome == "applied" and doc.editor.text() == NEW_IMPORT


def test_escape_cancels_mid_stream_and_nothing_arrives_afterwards(
    qtbot: QtBot, scripted_window: MainWindow, scripted: ScriptedBackend, workspace: Path
) -> None:
    window = scripted_window
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    review = window.start_review(doc, "import re\nimport sys\n# ... existing code ...\n")
    assert review is not None
    call = scripted.call(qtbot)
    call.send(Delta(STREAMED[:2000]))
    qtbot.waitUntil(lambda: review.received == STREAMED[:2000], timeout=5000)

    press(qtbot, review, Qt.Key.Key_Escape)
    assert call.cancelled.is_set()
    assert review.outcome == "cancelled"
    qtbot.waitUntil(lambda: doc.editor.isVisible(), timeout=2000)
    assert doc.editor.text() == TEXTWRAP and not doc.is_dirty() and not doc.editor.canUndo()
    assert "stopped; nothing was changed" in window.statusBar().currentMessage()
    # the stream goes on after the cancel: none of it may reach the review or the buffer
    call.send(Delta(STREAMED[2000:]), ApplyDone("stop", source="model"))
    call.end()
    qtbot.waitUntil(call.finished.is_set, timeout=5000)
    qtbot.wait(100)  # room for a stray queued update to (wrongly) arrive
    assert review.received == STREAMED[:2000] and review.result is None
    assert doc.editor.text() == TEXTWRAP and doc not in window.review.reviews


def test_hunks_decided_while_streaming_wait_for_a_safety_warning(
    qtbot: QtBot, scripted_window: MainWindow, scripted: ScriptedBackend, workspace: Path
) -> None:
    # A model answer that drops join() (the block never mentions it): even with every hunk
    # accepted while it streamed, nothing is applied before the user has seen the warning.
    doc = open_doc(scripted_window, workspace / "shlex.py")
    review = scripted_window.start_review(doc, DROPS_JOIN)
    assert review is not None
    call = scripted.call(qtbot)
    join = SHLEX[SHLEX.index("def join(") : SHLEX.index("def quote(s):")]
    dropped = edit(SHLEX, join, "")
    call.send(Delta(dropped))
    qtbot.waitUntil(lambda: len(review.hunks) == 1, timeout=5000)
    press(qtbot, review, Qt.Key.Key_Y)
    call.send(ApplyDone("stop", source="model"))
    call.end()
    wait_review(qtbot, review)
    assert review.message_kind == "warning" and "join" in review.message_label.text()
    assert review.outcome == "" and doc.editor.text() == SHLEX
    press(qtbot, review, Qt.Key.Key_Return, CTRL)  # the user has seen it and accepts
    assert doc.editor.text() == dropped


def test_a_failure_is_shown_readably(
    qtbot: QtBot, scripted_window: MainWindow, scripted: ScriptedBackend, workspace: Path
) -> None:
    window = scripted_window
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    review = window.start_review(doc, TWO_PLACES)
    assert review is not None
    call = scripted.call(qtbot)
    call.send(Delta(STREAMED[:300]))
    call.fail(StreamError("unavailable", "connection refused by 127.0.0.1:5005"))
    qtbot.waitUntil(lambda: review.state == "failed", timeout=5000)
    assert review.message_bar.isVisible() and review.message_kind == "error"
    assert review.message_label.text() == (
        "The apply service is not reachable: connection refused by 127.0.0.1:5005"
    )
    assert review.status_label.text() == "Nothing was changed."
    # nothing to accept, reject or step through: only the message bar's Close is offered
    assert not any(
        b.isVisible()
        for b in (
            review.accept_all_button,
            review.reject_all_button,
            review.prev_button,
            review.next_button,
        )
    )
    assert review.view_text() == TEXTWRAP and doc.editor.text() == TEXTWRAP
    review._message_buttons[0].click()  # Close
    qtbot.waitUntil(lambda: doc.editor.isVisible(), timeout=2000)
    assert doc.editor.text() == TEXTWRAP and not doc.is_dirty()


# What a small model answered on a 2-core machine: the file's first line, then the block's
# elision marker (and closed the file there).
LAZY = TEXTWRAP.split("\n")[0] + "\n    # ... existing code ...\n"


def test_a_rewrite_with_a_placeholder_is_refused_not_reviewed(
    qtbot: QtBot, scripted_window: MainWindow, scripted: ScriptedBackend, workspace: Path
) -> None:
    doc = open_doc(scripted_window, workspace / "lib" / "textwrap.py")
    review = scripted_window.start_review(doc, TWO_PLACES)
    assert review is not None
    call = scripted.call(qtbot)
    call.send(Delta(LAZY), ApplyDone("stop", source="model"))
    call.end()
    qtbot.waitUntil(lambda: review.state != "streaming", timeout=5000)
    assert review.state == "failed" and review.result is None and review.hunks == ()
    text = review.message_label.text()
    assert review.message_kind == "error"
    assert "line 2 is the placeholder '# ... existing code ...'" in text, text
    assert "not offered for review" in text and text.endswith("Nothing was changed.")
    assert review.view_text() == TEXTWRAP and doc.editor.text() == TEXTWRAP
    assert not doc.editor.canUndo()
    review._message_buttons[0].click()  # Close
    qtbot.waitUntil(lambda: doc.editor.isVisible(), timeout=2000)
    assert doc.editor.text() == TEXTWRAP and not doc.is_dirty()


def test_a_rewrite_that_drops_most_of_the_file_is_refused(
    qtbot: QtBot, scripted_window: MainWindow, scripted: ScriptedBackend, workspace: Path
) -> None:
    doc = open_doc(scripted_window, workspace / "lib" / "textwrap.py")
    review = scripted_window.start_review(doc, SPLIT_BLOCK)
    assert review is not None
    call = scripted.call(qtbot)
    good = edit(TEXTWRAP, SPLIT_OLD, SPLIT_NEW)
    call.send(
        Delta(good[: good.index("    def _fix_sentence_endings")]),
        ApplyDone("stop", source="model"),
    )
    call.end()
    qtbot.waitUntil(lambda: review.state != "streaming", timeout=5000)
    assert review.state == "failed"
    assert "the block does not touch" in review.message_label.text()
    assert doc.editor.text() == TEXTWRAP and not doc.editor.canUndo()


def test_a_whole_file_block_that_removes_most_of_the_file_is_flagged(
    qtbot: QtBot, scripted_window: MainWindow, scripted: ScriptedBackend, workspace: Path
) -> None:
    # A block without elisions may be the whole new file: offered, with the safety warning
    # saying how much of the file goes, and nothing applied before the user decides.
    doc = open_doc(scripted_window, workspace / "shlex.py")
    block = "def split(s):\n    return s.split()\n"
    review = scripted_window.start_review(doc, block)
    assert review is not None
    call = scripted.call(qtbot)
    call.send(Delta(block), ApplyDone("stop", source="model"))
    call.end()
    wait_review(qtbot, review)
    total = sum(1 for x in SHLEX.splitlines() if x.strip())
    text = review.message_label.text()
    assert review.message_kind == "warning" and f"of the file's {total} lines" in text, text
    assert review.outcome == "" and doc.editor.text() == SHLEX


def test_the_services_unfinished_refusal_names_the_placeholder(
    qtbot: QtBot, scripted_window: MainWindow, scripted: ScriptedBackend, workspace: Path
) -> None:
    # The service refuses such a rewrite as unfinished ("incomplete", after its text): the
    # review says which placeholder it left; a file that simply ran out keeps its words.
    from forecode_core.chat.types import ChatError

    unfinished = "The model did not finish writing the file (it stopped after 31 tokens)"
    for sent, expected in (
        (LAZY, "is the placeholder '# ... existing code ...'"),
        (TEXTWRAP[:400], unfinished),
        # the whole file, but without the edit's new lines
        (TEXTWRAP, "leaves out the edit's line"),
    ):
        n = len(scripted.calls) + 1
        doc = open_doc(scripted_window, workspace / "lib" / "textwrap.py")
        review = scripted_window.start_review(doc, TWO_PLACES)
        assert review is not None
        call = scripted.call(qtbot, n)
        call.send(Delta(sent))
        call.fail(ChatError("incomplete", f"{unfinished}; nothing was changed"))
        qtbot.waitUntil(lambda r=review: r.state == "failed", timeout=5000)
        assert expected in review.message_label.text()
        assert doc.editor.text() == TEXTWRAP
        review.reject_all()
        qtbot.waitUntil(lambda d=doc: d not in scripted_window.review.reviews, timeout=5000)


def test_a_stream_that_ends_without_done_is_an_error(
    qtbot: QtBot, scripted_window: MainWindow, scripted: ScriptedBackend, workspace: Path
) -> None:
    doc = open_doc(scripted_window, workspace / "lib" / "textwrap.py")
    review = scripted_window.start_review(doc, TWO_PLACES)
    assert review is not None
    call = scripted.call(qtbot)
    call.send(Delta(STREAMED[:300]))
    call.end()
    qtbot.waitUntil(lambda: review.state == "failed", timeout=5000)
    assert "ended without finishing" in review.message_label.text()


def test_the_ui_thread_never_waits_on_the_apply(
    qtbot: QtBot, scripted_window: MainWindow, scripted: ScriptedBackend, workspace: Path
) -> None:
    window = scripted_window
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    scripted.gate.clear()  # apply() itself blocks, as a connect to a dead host would
    review = window.start_review(doc, TWO_PLACES)
    assert review is not None
    ticks: list[int] = []
    timer = QTimer(window)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(5)
    qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=3000)  # the event loop keeps turning
    assert review.state == "streaming" and scripted.calls == []
    press(qtbot, review, Qt.Key.Key_Escape)  # and Esc works while apply() hangs
    assert review.outcome == "cancelled"
    scripted.gate.set()
    call = scripted.call(qtbot)
    qtbot.waitUntil(call.cancelled.is_set, timeout=3000)  # the late call is cancelled at once
    timer.stop()
    assert doc.editor.text() == TEXTWRAP


# ----- entry points ------------------------------------------------------------------------------


def test_ctrl_k_on_a_selection_sends_selection_and_instruction(
    qtbot: QtBot, scripted_window: MainWindow, scripted: ScriptedBackend, workspace: Path
) -> None:
    window = scripted_window
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    editor = doc.editor
    start = TEXTWRAP.index(FILL_OLD)
    end = TEXTWRAP.index("\n\n", start) + 1
    selected = TEXTWRAP[start:end]
    editor.setSel(len(TEXTWRAP[:start].encode()), len(TEXTWRAP[:end].encode()))
    editor.focus()
    qtbot.keyClick(editor, Qt.Key.Key_K, CTRL)
    prompt = window.review.inline_prompt
    assert prompt is not None and prompt.isVisible() and prompt.input.hasFocus()
    assert prompt.first_line == line_of(TEXTWRAP, FILL_OLD)
    qtbot.keyClicks(prompt.input, "make the default width 72")
    qtbot.keyClick(prompt.input, Qt.Key.Key_Return)

    call = scripted.call(qtbot)
    assert call.request.original == TEXTWRAP
    assert call.request.block == selected
    assert call.request.instruction == "make the default width 72"
    assert call.request.language == "python"
    review = review_of(window, doc)
    # the prompt is closed (and deleted later: on a loaded machine the wait above may already
    # have run its deleteLater)
    assert window.review.inline_prompt is None
    assert not shiboken6.isValid(prompt) or not prompt.isVisible()
    call.send(Delta(edit(TEXTWRAP, FILL_OLD, FILL_NEW)), ApplyDone("stop", source="model"))
    call.end()
    wait_review(qtbot, review)
    press(qtbot, review, Qt.Key.Key_Return, CTRL)
    assert doc.editor.text() == edit(TEXTWRAP, FILL_OLD, FILL_NEW)


def test_ctrl_k_prompt_escape_and_ctrl_k_chords_without_a_selection(
    qtbot: QtBot, scripted_window: MainWindow, scripted: ScriptedBackend, workspace: Path
) -> None:
    window = scripted_window
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    editor = doc.editor
    editor.setSel(0, 10)
    qtbot.keyClick(editor, Qt.Key.Key_K, CTRL)
    prompt = window.review.inline_prompt
    assert prompt is not None and prompt.isVisible()
    qtbot.keyClick(prompt.input, Qt.Key.Key_Escape)
    assert window.review.inline_prompt is None and not prompt.isVisible()
    assert scripted.calls == [] and editor.text() == TEXTWRAP

    # without a selection Ctrl+K stays the prefix of its chords: Ctrl+K S saves all
    editor.setEmptySelection(0)
    editor.focus()
    qtbot.keyClicks(editor, "# x")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert doc.is_dirty()
    qtbot.keyClick(editor, Qt.Key.Key_K, CTRL)
    qtbot.keyClick(editor, Qt.Key.Key_S)
    qtbot.waitUntil(lambda: not doc.is_dirty(), timeout=10000)  # saved on the writer thread
    assert window.review.inline_prompt is None
    assert (workspace / "lib" / "textwrap.py").read_text().startswith("# x\n")


def test_the_chat_apply_button_reviews_the_named_file(
    qtbot: QtBot, tmp_path: Path, workspace: Path
) -> None:
    chat = CannedChat()
    window = make_window(qtbot, tmp_path, workspace, chat=chat)
    target = open_doc(window, workspace / "lib" / "textwrap.py")
    other = open_doc(window, workspace / "shlex.py")  # the current document
    assert window.current_document() is other
    chat.replies.append(f"Change both defaults:\n\n```python lib/textwrap.py\n{TWO_PLACES}```\n")
    window.chat.show()
    panel = window.chat_panel
    panel.input.setPlainText("Make the default width 72")
    panel.send()
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=5000)
    (block,) = panel.messages()[-1].code_blocks()
    assert block.path_hint == "lib/textwrap.py"

    qtbot.mouseClick(block.apply_button, Qt.MouseButton.LeftButton)
    review = review_of(window, target)
    assert window.current_document() is target and other not in window.review.reviews
    wait_review(qtbot, review)
    assert review.view_text() == TWO_PLACES_DONE
    review.focus()
    press(qtbot, review, Qt.Key.Key_Return, CTRL)
    assert target.editor.text() == TWO_PLACES_DONE and other.editor.text() == SHLEX


def test_apply_without_a_path_hint_goes_to_the_current_document(
    qtbot: QtBot, window: MainWindow, workspace: Path
) -> None:
    open_doc(window, workspace / "shlex.py")
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    window.chat_panel.apply_requested.emit(TWO_PLACES, "python", "")
    review = review_of(window, doc)
    wait_review(qtbot, review)
    assert review.view_text() == TWO_PLACES_DONE
    # a bare file name finds the one workspace file of that name
    window.chat_panel.apply_requested.emit(DROPS_JOIN, "python", "shlex.py")
    shlex_doc = window.current_document()
    assert shlex_doc is not None and shlex_doc.title == "shlex.py"
    assert shlex_doc in window.review.reviews and doc in window.review.reviews


def test_closing_a_tab_or_the_window_stops_its_review(
    qtbot: QtBot, scripted_window: MainWindow, scripted: ScriptedBackend, workspace: Path
) -> None:
    window = scripted_window
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    review = window.start_review(doc, TWO_PLACES)
    assert review is not None
    call = scripted.call(qtbot)
    assert window.close_tab(window.tabs.indexOf(doc))
    assert call.cancelled.is_set() and review.outcome == "cancelled"
    doc2 = open_doc(window, workspace / "shlex.py")
    review2 = window.start_review(doc2, DROPS_JOIN)
    assert review2 is not None
    call2 = scripted.call(qtbot, 2)
    window.close()
    assert call2.cancelled.is_set() and review2.outcome == "cancelled"


def test_palette_rows_drive_the_review(qtbot: QtBot, window: MainWindow, workspace: Path) -> None:
    by_id = {c.id: c for c in window.commands}
    assert {
        "edit.inlineEdit",
        "chat.applyLast",
        "apply.acceptAll",
        "apply.rejectAll",
        "apply.next",
        "apply.previous",
    } <= set(by_id)
    assert by_id["edit.inlineEdit"].shortcut == "Ctrl+K"
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    review = window.start_review(doc, TWO_PLACES)
    assert review is not None
    wait_review(qtbot, review)
    by_id["apply.next"].handler()
    assert review.current == 1
    by_id["apply.acceptAll"].handler()
    assert doc.editor.text() == TWO_PLACES_DONE


def test_pipeline_backend_runs_the_deterministic_path_off_the_ui_thread() -> None:
    # The seam itself, without Qt: events in order, then done with the path's name.
    backend = PipelineApplyBackend()
    call = backend.apply(ApplyInput("lib/textwrap.py", "python", TEXTWRAP, TWO_PLACES))
    events = list(call)
    assert events == [
        Delta(TWO_PLACES_DONE),
        ApplyDone("stop", source="deterministic", placements=2),
    ]
    with pytest.raises(StreamError) as failure:
        list(backend.apply(ApplyInput("x.py", "python", TEXTWRAP, "x = 1\n", "rename x")))
    assert failure.value.code == "no_model"
    assert "inline edit is written by the model" in failure.value.message


class ChatStyleApply:
    """A service client whose ``apply`` streams chat-style events (the shape of the cloud's
    ApplyEvent: deltas of the new file, then done), recording what it was asked."""

    def __init__(self, new_text: str) -> None:
        self.new_text = new_text
        self.asked: dict[str, str] = {}

    def apply(self, request: ApplyInput) -> Any:
        self.asked = {
            "path": request.path,
            "original": request.original,
            "block": request.block,
            "instruction": request.instruction,
            "language": request.language,
        }
        text = self.new_text

        class Call:
            def cancel(self) -> None:
                pass

            def __iter__(self) -> Iterator[Any]:
                yield ChatStarted("gemma", "cloud")
                yield ChatDelta(text[:100])
                yield ChatDelta(text[100:])
                yield ChatDone("stop")

        return Call()


def test_the_model_path_runs_when_the_deterministic_path_refuses() -> None:
    from app.ui.apply_backend import ServiceApply

    new = edit(TEXTWRAP, FILL_OLD, FILL_NEW)
    service = ChatStyleApply(new)
    backend = PipelineApplyBackend(ServiceApply(lambda: service))
    block = "    w = TextWrapper(width=72, **kwargs)\n    # ... existing code ...\n"  # ambiguous
    events = list(backend.apply(ApplyInput("lib/textwrap.py", "python", TEXTWRAP, block)))
    notice, *deltas, done = events
    assert isinstance(notice, Notice)
    assert "the model rewrites the part of the file it changes" in notice.text
    assert "".join(d.text for d in deltas) == new
    assert isinstance(done, ApplyDone) and done.source == "cloud"
    assert service.asked == {
        "path": "lib/textwrap.py",
        "original": TEXTWRAP,
        "block": block,
        "instruction": "",
        "language": "python",
    }
    # no service connected: a readable "no model path" error, with the refusal's reason
    with pytest.raises(StreamError) as failure:
        list(
            PipelineApplyBackend(ServiceApply(lambda: None)).apply(
                ApplyInput("lib/textwrap.py", "python", TEXTWRAP, block)
            )
        )
    assert failure.value.code == "no_model"
    assert failure.value.message.startswith("The block does not match lib/textwrap.py")


# ----- Ctrl+K with a real model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_apply_engine() -> Iterator[Any]:
    """A real engine for apply: the service's default model."""
    from local_models.apply_model import open_engine
    from local_models.model_store import SERVICE_MODEL, ensure_model

    engine = open_engine(ensure_model(SERVICE_MODEL), n_ctx=4096, n_threads=2)
    yield engine
    engine.close()


def test_ctrl_k_with_the_real_model_rewrites_only_the_selected_lines(
    qtbot: QtBot, tmp_path: Path, workspace: Path, small_apply_engine: Any
) -> None:
    """A 2-line selection in a 500-line file: the in-process model path (``EngineApply``:
    the service's own ``LlamaBackend.stream_apply``, without the gRPC hop) rewrites exactly
    those lines; the review's hunks, and the buffer after accepting them, touch nothing else."""
    from helpers.engine_apply import EngineApply

    backend = PipelineApplyBackend(EngineApply(lambda: small_apply_engine))
    window = make_window(qtbot, tmp_path, workspace, backend)
    doc = open_doc(window, workspace / "lib" / "textwrap.py")
    editor = doc.editor
    first = line_of(TEXTWRAP, "w = TextWrapper(width=width, max_lines=1, **kwargs)")
    lines = TEXTWRAP.splitlines(keepends=True)
    start = len("".join(lines[:first]).encode())
    editor.setSel(start, start + len("".join(lines[first : first + 2]).encode()))
    editor.focus()
    qtbot.keyClick(editor, Qt.Key.Key_K, CTRL)
    prompt = window.review.inline_prompt
    assert prompt is not None
    qtbot.keyClicks(prompt.input, "rename the variable w to wrapper")
    qtbot.keyClick(prompt.input, Qt.Key.Key_Return)
    review = review_of(window, doc)
    qtbot.waitUntil(lambda: review.state != "streaming", timeout=240_000)
    if review.state != "review":
        # The model may not close its answer (or copy the context): refused; or it may
        # leave the lines as they were: "unchanged". Either way nothing changed.
        print(f"\nCtrl+K: {review.state} {review.outcome} {review.message_label.text()}")
        assert (
            review.state == "failed"
            and "nothing was changed" in review.message_label.text().lower()
        ) or review.outcome == "unchanged"
        assert editor.text() == TEXTWRAP
        return
    for hunk in review.hunks:
        assert first <= hunk.old_start and hunk.old_end <= first + 2, hunk
    press(qtbot, review, Qt.Key.Key_Return, CTRL)
    new = editor.text().splitlines(keepends=True)
    assert new[:first] == lines[:first]
    assert new[len(new) - (len(lines) - first - 2) :] == lines[first + 2 :]
