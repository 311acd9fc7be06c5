"""The shadow warmed when an apply becomes likely (issue 16's edit-to-verdict for a chat Apply as
the session's first review), in a real window offscreen with the chat's scripted backend:

- a chat answer holding a code block for a workspace file makes the shadow and starts its real
  language servers on that file (before any Apply; while it streams:
  ``tests/test_review_warm_stream.py``);
- a block naming a file that is not open warms it too (its text read on the shadow's thread);
- an answer without a code block, or whose block is in another language than its target (a
  shell command), makes no shadow and warms nothing;
- turning the chat's "Edit files" mode on (its button, or the palette's Edits command) warms the
  current file;
- the review shows the first server's new problems before the second answers ("checking
  basedpyright…"), never one that is not new (a fake at the server seam for the order), and with
  the real servers each partial verdict is part of the final one.

Timings are never asserted: ``python -m bench shadow`` measures them
(``first_review_chat_apply``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.services.shadow import CheckStatus, LspChecker, ShadowWorkspace, Verdict
from app.ui.main_window import MainWindow
from forecode_core.chat.types import ChatDelta, ChatDone, ChatStarted
from forecode_core.edits.events import EditsDone
from forecode_core.streams import FinishReason
from forecode_core.workspace.diagnostics_diff import Diagnostic, Severity
from tests.test_chat_panel import FakeBackend, ask, open_chat
from tests.test_shadow_warm import GREET, SHOUT, RecordingChecker, needs_tools


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "greet.py").write_text(GREET)
    (root / "pkg" / "shout.py").write_text(SHOUT)
    (root / ".gitignore").write_text("__pycache__/\n")
    return root


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    fake = FakeBackend()
    yield fake
    fake.gate.set()
    fake.close_all()


class Warms:
    """The window's shadows, made with ``checker`` and their ``warm`` calls recorded (the
    originals asked for and the future each returned; a warm may come from the shadow's
    thread)."""

    def __init__(self, tmp_path: Path, win: MainWindow, checker: object) -> None:
        self.calls: list[tuple[dict[str, str], Future[object]]] = []
        self.lock = threading.Lock()
        self.made: list[ShadowWorkspace] = []

        def make(root: Path) -> ShadowWorkspace:
            shadow = ShadowWorkspace(
                root,
                base=tmp_path / "data",
                rules=lambda: win.workspace.rules,
                checker=checker,  # type: ignore[arg-type]
                check_timeout_s=300,
            )
            real = shadow.warm

            def warm(originals: Mapping[str, str]) -> Future[object]:
                future = real(originals)
                with self.lock:
                    self.calls.append((dict(originals), future))
                return future

            shadow.warm = warm  # type: ignore[method-assign]
            self.made.append(shadow)
            return shadow

        win.review.make_shadow = make

    def asked(self) -> list[dict[str, str]]:
        with self.lock:
            return [originals for originals, _ in self.calls]


def _window(qtbot: QtBot, tmp_path: Path, ws: Path, backend: FakeBackend) -> MainWindow:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"completion.enabled": False, "cloud.autostart": False}))
    win = MainWindow(settings, chat_backend=backend)
    qtbot.addWidget(win)
    win.resize(1200, 760)
    win.show()
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=2000)
    win.open_folder(ws)
    qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=5000)
    return win


def _answer(qtbot: QtBot, win: MainWindow, backend: FakeBackend, text: str, n: int = 1) -> None:
    panel = open_chat(qtbot, win)
    ask(qtbot, panel, "Make shout quieter")
    call = backend.call(qtbot, n)
    call.send(ChatStarted("m", "cloud"), ChatDelta(text))
    qtbot.waitUntil(lambda: bool(panel.messages()[-1].text), timeout=5000)
    # a block for the file warms while the answer streams (tests/test_review_warm_stream.py)
    call.send(ChatDone("stop"))  # type: ignore[arg-type]
    call.end()
    qtbot.waitUntil(lambda: not panel.is_streaming(), timeout=5000)


QUIET = SHOUT.replace(".upper()", ".lower()")


@needs_tools
def test_a_chat_answer_with_a_code_block_starts_the_shadows_servers_on_its_file(
    qtbot: QtBot, tmp_path: Path, ws: Path, backend: FakeBackend
) -> None:
    win = _window(qtbot, tmp_path, ws, backend)
    checker = LspChecker()  # the shadow's real servers (conftest turns the editor's off)
    warms = Warms(tmp_path, win, checker)
    doc = win.open_file(ws / "pkg" / "shout.py")
    assert doc is not None and win.review.shadow is None  # focusing a file: no shadow yet
    _answer(qtbot, win, backend, f"Use lower:\n\n```python\n{QUIET}```\n")
    assert win.review.shadow is not None
    assert warms.asked() == [{"pkg/shout.py": SHOUT}]  # the buffer's text: the review's "before"
    future = warms.calls[0][1]
    qtbot.waitUntil(future.done, timeout=300_000)
    verdict = future.result()
    assert getattr(verdict, "status", None) is CheckStatus.CHECKED
    tree = win.review.shadow.tree
    assert (tree / "pkg" / "shout.py").as_uri() in checker._open  # servers up, the file open
    assert (tree / "pkg" / "greet.py").as_uri() not in checker._open
    assert (ws / "pkg" / "shout.py").read_text() == SHOUT  # the user's file untouched


def test_a_code_block_for_a_file_not_open_warms_it_from_disk(
    qtbot: QtBot, tmp_path: Path, ws: Path, backend: FakeBackend
) -> None:
    win = _window(qtbot, tmp_path, ws, backend)
    warms = Warms(tmp_path, win, RecordingChecker())
    doc = win.open_file(ws / "pkg" / "shout.py")
    assert doc is not None
    loud = GREET.replace('"hello "', '"HELLO "')
    _answer(qtbot, win, backend, f"In greet:\n\n```python pkg/greet.py\n{loud}```\n")
    qtbot.waitUntil(lambda: len(warms.calls) == 1, timeout=10_000)
    assert warms.asked() == [{"pkg/greet.py": GREET}]  # read on the shadow's thread
    assert win.docs.find(ws / "pkg" / "greet.py") is None  # nothing opened before the Apply


def test_an_answer_without_a_code_block_for_the_file_starts_nothing(
    qtbot: QtBot, tmp_path: Path, ws: Path, backend: FakeBackend
) -> None:
    win = _window(qtbot, tmp_path, ws, backend)
    warms = Warms(tmp_path, win, RecordingChecker())
    doc = win.open_file(ws / "pkg" / "shout.py")
    assert doc is not None
    _answer(qtbot, win, backend, "shout calls `greet` and upper-cases the result.")
    # a shell command beside a Python file: its Apply would not be a review of that file
    _answer(qtbot, win, backend, "Run it:\n\n```bash\npython -m pkg.shout\n```\n", n=2)
    qtbot.wait(200)
    assert win.review.shadow is None and not warms.made and not warms.asked()
    # the control: the same window warms once an answer holds a block for the file
    _answer(qtbot, win, backend, f"```python\n{QUIET}```\n", n=3)
    assert warms.asked() == [{"pkg/shout.py": SHOUT}]
    # an "Edit files" answer's end is a set the edit-set owner checks already: nothing more
    win.review.warm_for_answer(EditsDone(finish_reason=FinishReason.STOP))
    assert len(warms.asked()) == 1


def test_the_edit_files_mode_warms_the_current_file(
    qtbot: QtBot, tmp_path: Path, ws: Path, backend: FakeBackend
) -> None:
    win = _window(qtbot, tmp_path, ws, backend)
    warms = Warms(tmp_path, win, RecordingChecker())
    doc = win.open_file(ws / "pkg" / "shout.py")
    assert doc is not None
    doc.editor.insertText(0, "# unsaved\n")
    win.edit_set.start()  # the palette's "Edits: Edit Files with AI…"
    assert win.chat_panel.edit_mode
    assert warms.asked() == [{"pkg/shout.py": "# unsaved\n" + SHOUT}]
    win.chat_panel.edit_files_button.setChecked(False)  # off: nothing more
    assert len(warms.asked()) == 1
    win.chat_panel.edit_files_button.click()  # the chat's "Edit files" button, on again
    assert len(warms.asked()) == 2


# ----- the verdict as each server answers -------------------------------------------------------


class TwoServers:
    """The server seam: "ruff" answers the edited file at once, "basedpyright" only when
    ``gate`` is set; each reports an undefined name on lines holding ``nme``, and ruff an old
    warning on the line holding ``OLD`` (there before the edit: never new)."""

    available = True

    def __init__(self) -> None:
        self.gate = threading.Event()

    def serves(self, path: str) -> bool:
        return path.endswith(".py")

    def diagnostics(self, root: Path, paths: Sequence[str], deadline: float) -> list[Diagnostic]:
        return self.diagnostics_each(root, paths, deadline, None)

    def diagnostics_each(
        self,
        root: Path,
        paths: Sequence[str],
        deadline: float,
        each: Callable[[list[Diagnostic], tuple[str, ...]], None] | None,
    ) -> list[Diagnostic]:
        lines = [
            (rel, k, line)
            for rel in paths
            for k, line in enumerate((root / rel).read_text().splitlines())
        ]
        ruff = [
            Diagnostic(rel, k, "undefined name nme", Severity.ERROR, "F821", "ruff")
            for rel, k, line in lines
            if "nme" in line
        ] + [
            Diagnostic(rel, k, "an old warning", Severity.WARNING, "W1", "ruff")
            for rel, k, line in lines
            if "OLD" in line
        ]
        pyright = [
            Diagnostic(rel, k, '"nme" is not defined', Severity.ERROR, "rUV", "basedpyright")
            for rel, k, line in lines
            if "nme" in line
        ]
        if each is not None:
            each(list(ruff), ("basedpyright",))
            assert self.gate.wait(30)
        return ruff + pyright


def test_the_review_shows_the_first_servers_problems_before_the_seconds(
    qtbot: QtBot, tmp_path: Path, ws: Path, backend: FakeBackend
) -> None:
    (ws / "pkg" / "shout.py").write_text("OLD = 1\n" + SHOUT)
    settings = tmp_path / "settings.json"
    settings.write_text(
        json.dumps(
            {"completion.enabled": False, "cloud.autostart": False, "shadow.repairRounds": 0}
        )
    )
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.show()
    win.open_folder(ws)
    qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=5000)
    servers = TwoServers()
    Warms(tmp_path, win, servers)
    doc = win.open_file(ws / "pkg" / "shout.py")
    assert doc is not None
    block = "def shout(name: str) -> str:\n    return greet(nme).upper()\n"
    review = win.start_review(doc, block)
    assert review is not None
    try:
        # ruff answered: its new problem shows, basedpyright still awaited
        qtbot.waitUntil(lambda: bool(review.checks.rows()), timeout=10_000)
        assert review.checks.state == "checking"
        assert "checking basedpyright" in review.checks.title.text()
        rows = review.checks.rows()
        assert len(rows) == 1 and "F821" in rows[0] and "line 6" in rows[0], rows
        assert review.squiggled() == [5]
        # basedpyright answers: its problem is added, the note goes
        servers.gate.set()
        qtbot.waitUntil(lambda: review.checks.state == "done", timeout=10_000)
        rows = review.checks.rows()
        assert len(rows) == 2 and any("rUV" in row for row in rows), rows
        assert not any("W1" in row for row in rows)  # old: never shown
        assert "checking" not in review.checks.title.text()
    finally:
        servers.gate.set()
    review.reject_all()
    assert (ws / "pkg" / "shout.py").read_text() == "OLD = 1\n" + SHOUT


@needs_tools
def test_with_real_servers_each_partial_verdict_is_part_of_the_final(
    ws: Path, tmp_path: Path
) -> None:
    shadow = ShadowWorkspace(
        ws, base=tmp_path / "data", checker=LspChecker(), scan_every_s=None, check_timeout_s=300
    )
    partials: list[Verdict] = []
    try:
        shadow.warm({"pkg/shout.py": SHOUT}).result(300)
        broken = SHOUT.replace("greet(name)", "greet(nme)")
        final = shadow.submit_check_each(
            {"pkg/shout.py": broken}, {"pkg/shout.py": SHOUT}, partials.append
        ).result(300)
    finally:
        shadow.close()
    assert {(d.source, d.line) for d in final.new} == {("ruff", 4), ("basedpyright", 4)}
    assert not final.waiting
    # the servers may answer within one wake-up: then no partial came (0 or 1 of them)
    assert len(partials) <= 1
    for partial in partials:
        assert partial.waiting and set(partial.waiting) <= {"ruff", "basedpyright"}
        assert set(partial.new) <= set(final.new)
        assert {d.source for d in partial.new}.isdisjoint(partial.waiting)


def test_a_review_waiting_behind_the_warm_goes_before_its_rehearsal(
    ws: Path, tmp_path: Path
) -> None:
    """A chat Apply clicked right after the answer: the review's ``prepare`` and check queue
    behind the answer's warm; the warm's throwaway rehearsal is left out (it would only delay
    the review's own first re-check), and a later warm does not rehearse either (the
    review's check paid the servers' slow first re-check)."""
    checker = RecordingChecker()
    shadow = ShadowWorkspace(
        ws, base=tmp_path / "data", checker=checker, scan_every_s=None, check_timeout_s=60
    )
    try:
        checker.gate.clear()
        warm = shadow.warm({"pkg/shout.py": SHOUT})  # the answer's end
        assert checker.started.wait(30)  # the warm's "before" runs (the servers start)
        prepared = shadow.prepare({"pkg/shout.py": SHOUT})  # Apply: the review starts
        verdict = shadow.submit_check(
            {"pkg/shout.py": SHOUT + "y = nme\n"}, {"pkg/shout.py": SHOUT}
        )
        checker.gate.set()
        warm.result(30)
        prepared.result(30)
        assert [d.code for d in verdict.result(30).new] == ["F821"]
        # the warm's "before", then the review's "after": no rehearsal between them
        assert checker.calls == [{"pkg/shout.py": SHOUT}, {"pkg/shout.py": SHOUT + "y = nme\n"}]
        shadow.warm({"pkg/greet.py": GREET}).result(30)
        assert checker.calls[2:] == [{"pkg/greet.py": GREET}]  # no rehearsal now either
        # a review's future cancelled before it ran is not counted as waiting
        checker.gate.clear()
        running = shadow.warm({"pkg/greet.py": GREET + "a = 1\n"})
        assert checker.started.wait(30)
        shadow.prepare({"pkg/shout.py": SHOUT + "b = 2\n"}).cancel()
        checker.gate.set()
        running.result(30)
        assert shadow._reviews_queued == 0
    finally:
        checker.gate.set()
        shadow.close()
