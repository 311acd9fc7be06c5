"""The shadow warmed while a chat answer still streams (issue 16's edit-to-verdict for a chat
Apply clicked right after the answer), in a real window offscreen with the real chat runner
and panel, the answer scripted at the chat backend seam:

- the shadow's real servers start on the file of the answer's first code block before the
  answer's ``finished``;
- each target file is warmed once per answer, however many chunks and blocks name it, and its
  target resolved once per block, not per chunk; a later answer warms again; a block found
  only at the end is still warmed by ``warm_for_answer``;
- a path outside the workspace, or a block in another language than the current file with no
  path, warms nothing (and makes no shadow), while streaming or at the end.

Timings are never asserted: ``python -m bench shadow --only chat-apply`` measures them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytestqt.qtbot import QtBot

from app.services.shadow import CheckStatus, LspChecker
from app.ui.chat_panel import ChatPanel
from app.ui.main_window import MainWindow
from forecode_core.chat.types import ChatDelta, ChatDone, ChatStarted
from tests.test_chat_panel import FakeBackend, FakeCall, ask, open_chat
from tests.test_shadow_warm import GREET, SHOUT, RecordingChecker, needs_tools
from tests.test_shadow_warm_chat import QUIET, Warms, _window
from tests.test_shadow_warm_chat import backend as backend  # the fixtures
from tests.test_shadow_warm_chat import ws as ws


def _shout_open(
    qtbot: QtBot, tmp_path: Path, ws: Path, backend: FakeBackend
) -> tuple[MainWindow, Warms]:
    """A window on ``ws`` with shout.py current, its shadow's warms recorded (checker seam)."""
    win = _window(qtbot, tmp_path, ws, backend)
    warms = Warms(tmp_path, win, RecordingChecker())
    assert win.open_file(ws / "pkg" / "shout.py") is not None
    return win, warms


def _begin(qtbot: QtBot, win: MainWindow, backend: FakeBackend, n: int = 1) -> FakeCall:
    panel = open_chat(qtbot, win)
    ask(qtbot, panel, "Make shout quieter")
    call = backend.call(qtbot, n)
    call.send(ChatStarted("m", "cloud"))
    return call


def _stream(qtbot: QtBot, panel: ChatPanel, call: FakeCall, text: str, size: int = 0) -> None:
    """Send ``text`` as deltas of ``size`` characters (0: one), each shown before the next."""
    chunks = [text[k : k + size] for k in range(0, len(text), size)] if size else [text]
    for chunk in chunks:
        want = len(panel.messages()[-1].text) + len(chunk)
        call.send(ChatDelta(chunk))

        def shown(want: int = want) -> bool:
            return len(panel.messages()[-1].text) >= want

        qtbot.waitUntil(shown)
    assert panel.is_streaming()


def _finish(qtbot: QtBot, panel: ChatPanel, call: FakeCall) -> None:
    call.send(ChatDone("stop"))  # type: ignore[arg-type]
    call.end()
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=5000)


@needs_tools
def test_the_shadows_servers_start_on_the_first_blocks_file_while_the_answer_streams(
    qtbot: QtBot, tmp_path: Path, ws: Path, backend: FakeBackend
) -> None:
    win = _window(qtbot, tmp_path, ws, backend)
    checker = LspChecker()  # the shadow's real servers (conftest turns the editor's off)
    warms = Warms(tmp_path, win, checker)
    assert win.open_file(ws / "pkg" / "shout.py") is not None
    finished: list[object] = []
    win.chat_panel.runner.finished.connect(finished.append)
    call = _begin(qtbot, win, backend)
    panel = win.chat_panel
    _stream(qtbot, panel, call, "Use lower:\n\n")
    assert win.review.shadow is None  # prose only: nothing yet
    _stream(qtbot, panel, call, "```python\n")  # the fence line: the block is recognisable
    assert warms.asked() == [{"pkg/shout.py": SHOUT}]  # the buffer's text: the review's "before"
    future = warms.calls[0][1]
    qtbot.waitUntil(future.done, timeout=300_000)  # the answer is still streaming meanwhile
    assert panel.is_streaming() and not finished
    verdict = future.result()
    assert getattr(verdict, "status", None) is CheckStatus.CHECKED
    assert win.review.shadow is not None
    tree = win.review.shadow.tree
    assert (tree / "pkg" / "shout.py").as_uri() in checker._open  # servers up, the file open
    _stream(qtbot, panel, call, QUIET, size=16)
    _stream(qtbot, panel, call, "```\n\nThat is all.")
    _finish(qtbot, panel, call)
    assert finished and len(warms.asked()) == 1  # the answer's end warms nothing more
    assert (ws / "pkg" / "shout.py").read_text() == SHOUT  # the user's file untouched


def test_each_file_is_warmed_once_per_answer_and_each_block_resolved_once(
    qtbot: QtBot, tmp_path: Path, ws: Path, backend: FakeBackend
) -> None:
    win, warms = _shout_open(qtbot, tmp_path, ws, backend)
    resolved: list[tuple[str, str]] = []
    real = win.review._answer_target

    def counting(hint: str, language: str) -> Any:
        resolved.append((hint, language))
        return real(hint, language)

    win.review._answer_target = counting  # type: ignore[method-assign]
    panel = win.chat_panel
    loud = GREET.replace('"hello "', '"HELLO "')
    answer = (
        f"First:\n\n```python\n{QUIET}```\n\nThen greet:\n\n```python pkg/greet.py\n{loud}```\n\n"
        f"And shout again:\n\n```python\n{QUIET}```\n\nDone."
    )
    call = _begin(qtbot, win, backend)
    _stream(qtbot, panel, call, answer, size=5)  # about 60 chunks
    # the greet block's warm carries shout along (a warm still queued would be dropped)
    want = [{"pkg/shout.py": SHOUT}, {"pkg/shout.py": SHOUT, "pkg/greet.py": GREET}]
    qtbot.waitUntil(lambda: len(warms.asked()) == 2, timeout=10_000)
    assert warms.asked() == want
    assert len(resolved) == 3, resolved  # once a block, not once a chunk
    _finish(qtbot, panel, call)
    qtbot.wait(200)
    assert warms.asked() == want  # the end: nothing more
    # the next answer is a new one: its file warms again (its "before" is cached)
    call = _begin(qtbot, win, backend, n=2)
    _stream(qtbot, panel, call, f"```python\n{QUIET}```\n", size=7)
    assert warms.asked()[2:] == [{"pkg/shout.py": SHOUT}]
    _finish(qtbot, panel, call)
    assert len(warms.asked()) == 3


def test_a_block_found_only_at_the_end_is_warmed_then(
    qtbot: QtBot, tmp_path: Path, ws: Path, backend: FakeBackend
) -> None:
    """A closing fence without a newline closes its block only when the answer is final; a
    block of an answer whose chunks were never seen (the chat's ``delta`` not connected) warms
    at the end as before."""
    win, warms = _shout_open(qtbot, tmp_path, ws, backend)
    panel = win.chat_panel
    panel.runner.delta.disconnect(win.review.warm_while_streaming)
    call = _begin(qtbot, win, backend)
    _stream(qtbot, panel, call, f"```python\n{QUIET}```")
    assert win.review.shadow is None
    _finish(qtbot, panel, call)
    assert warms.asked() == [{"pkg/shout.py": SHOUT}]


def test_a_path_outside_the_workspace_warms_nothing(
    qtbot: QtBot, tmp_path: Path, ws: Path, backend: FakeBackend
) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text(SHOUT)
    win, warms = _shout_open(qtbot, tmp_path, ws, backend)
    assert win.open_file(outside) is not None  # open too: a hint may name an open file
    assert win.open_file(ws / "pkg" / "shout.py") is not None  # current again
    panel = win.chat_panel
    call = _begin(qtbot, win, backend)
    for hint in (str(outside), "../outside.py", "/etc/hosts"):
        _stream(qtbot, panel, call, f"```python {hint}\n{QUIET}```\n\n", size=9)
    assert win.review.shadow is None and not warms.made
    _finish(qtbot, panel, call)
    qtbot.wait(200)
    assert win.review.shadow is None and not warms.made and not warms.asked()
    # the control: the same blocks' window warms the current file for a block without a path
    call = _begin(qtbot, win, backend, n=2)
    _stream(qtbot, panel, call, f"```python\n{QUIET}```\n")
    assert warms.asked() == [{"pkg/shout.py": SHOUT}]
    _finish(qtbot, panel, call)


def test_a_block_in_another_language_with_no_path_warms_nothing(
    qtbot: QtBot, tmp_path: Path, ws: Path, backend: FakeBackend
) -> None:
    win, warms = _shout_open(qtbot, tmp_path, ws, backend)
    panel = win.chat_panel
    call = _begin(qtbot, win, backend)
    text = (
        "Run it:\n\n```bash\npython -m pkg.shout\n```\n\n"
        "or from JavaScript:\n\n```js\nconsole.log(shout('x'))\n```\n\nThat is all."
    )
    _stream(qtbot, panel, call, text, size=6)
    assert win.review.shadow is None
    # the control, in the same answer: a block in the current file's language warms it
    _stream(qtbot, panel, call, f"\n\nOr change it:\n\n```py\n{QUIET}```\n", size=6)
    assert warms.asked() == [{"pkg/shout.py": SHOUT}]
    _finish(qtbot, panel, call)
    qtbot.wait(200)
    assert warms.asked() == [{"pkg/shout.py": SHOUT}]
