"""The shadow check's path from a finished AI edit to its verdict (issue 16's edit-to-verdict):

- a check right after a whole scan (the review's "before" half, run when it started) scans only
  its own files, and one after ``resync_s`` scans the whole workspace again;
- an unsaved buffer pushed again unchanged (each review pushes them) keeps the cached "before";
- ``ShadowWorkspace.warm`` starts the shadow's real language servers on a file before any review,
  rehearses one throwaway edit the first time, drops a warm still queued when the next comes,
  and runs nothing for the command-line tools;
- the review owner warms when the inline edit prompt opens and when the user focuses a file of
  a folder that has a shadow (a real window offscreen, real servers).

Timings are never asserted: ``python -m bench shadow`` measures them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.services.shadow import (
    REHEARSAL,
    CheckStatus,
    CliChecker,
    LspChecker,
    ShadowWorkspace,
    Verdict,
)
from app.ui.main_window import MainWindow
from forecode_core.workspace.diagnostics_diff import Diagnostic, Severity

GREET = 'def greet(name: str) -> str:\n    return "hello " + name\n'
SHOUT = (
    "from pkg.greet import greet\n\n\n"
    "def shout(name: str) -> str:\n"
    "    return greet(name).upper()\n"
)

needs_tools = pytest.mark.skipif(
    not CliChecker().available and not LspChecker().available,
    reason="ruff and basedpyright are installed by the run command",
)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "greet.py").write_text(GREET)
    (root / "pkg" / "shout.py").write_text(SHOUT)
    (root / ".gitignore").write_text("__pycache__/\n")
    return root


class RecordingChecker:
    """The checker seam: records each call (the files asked for and their text in the copy)
    and reports an F821 on every line holding ``nme``; ``gate`` holds calls until set."""

    available = True

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def serves(self, path: str) -> bool:
        return path.endswith(".py")

    def diagnostics(self, root: Path, paths: Sequence[str], deadline: float) -> list[Diagnostic]:
        self.started.set()
        self.gate.wait(30)
        texts = {rel: (root / rel).read_text() for rel in paths if (root / rel).is_file()}
        self.calls.append(texts)
        return [
            Diagnostic(rel, k, "undefined name nme", Severity.ERROR, "F821", "ruff")
            for rel, text in texts.items()
            for k, line in enumerate(text.splitlines())
            if "nme" in line
        ]


@pytest.fixture
def recording(ws: Path, tmp_path: Path) -> Iterator[tuple[ShadowWorkspace, RecordingChecker]]:
    checker = RecordingChecker()
    shadow = ShadowWorkspace(
        ws, base=tmp_path / "data", checker=checker, scan_every_s=None, check_timeout_s=60
    )
    yield shadow, checker
    checker.gate.set()
    shadow.close()


def _counting_syncs(shadow: ShadowWorkspace) -> list[int]:
    """Counts the whole-workspace syncs from now on (an instance attribute over the method)."""
    count = [0]
    whole = shadow.sync

    def sync() -> object:
        count[0] += 1
        return whole()

    shadow.sync = sync  # type: ignore[method-assign,assignment]
    return count


def test_a_check_right_after_a_whole_scan_syncs_only_its_own_files(
    ws: Path, recording: tuple[ShadowWorkspace, RecordingChecker]
) -> None:
    shadow, checker = recording
    shadow.sync()
    whole = _counting_syncs(shadow)
    # changed on disk, the editor not told (another program): the check's own file is brought
    # in step, the other file waits for the next whole scan
    saved = SHOUT + "# saved elsewhere\n"
    (ws / "pkg" / "shout.py").write_text(saved)
    (ws / "pkg" / "greet.py").write_text(GREET + "# also elsewhere\n")
    verdict = shadow.check({"pkg/shout.py": saved.replace("greet(name)", "greet(nme)")})
    assert verdict.status is CheckStatus.CHECKED
    assert [d.line for d in verdict.new] == [4]
    assert whole[0] == 0
    assert checker.calls[0] == {"pkg/shout.py": saved}  # "before": the file as saved
    assert (shadow.tree / "pkg" / "greet.py").read_text() == GREET
    # past resync_s a check scans the whole workspace again
    shadow.resync_s = 0.0
    assert shadow.check({"pkg/shout.py": saved + "x = 1\n"}).status is CheckStatus.CHECKED
    assert whole[0] == 1
    assert (shadow.tree / "pkg" / "greet.py").read_text() == GREET + "# also elsewhere\n"
    assert (ws / "pkg" / "shout.py").read_text() == saved  # the user's file untouched


def test_an_unsaved_buffer_pushed_again_unchanged_keeps_the_prepared_before(
    recording: tuple[ShadowWorkspace, RecordingChecker],
) -> None:
    shadow, checker = recording
    shadow.push_buffer("pkg/greet.py", GREET + "UNSAVED = 1\n").result()
    shadow.prepare({"pkg/shout.py": SHOUT}).result()
    assert len(checker.calls) == 1
    # the review starts: it pushes the unsaved buffers again, unchanged
    shadow.push_buffer("pkg/greet.py", GREET + "UNSAVED = 1\n").result()
    verdict = shadow.submit_check({"pkg/shout.py": SHOUT + "y = nme\n"}, {"pkg/shout.py": SHOUT})
    assert verdict.result().new and len(checker.calls) == 2  # only the "after" half ran
    # a changed buffer is another workspace: the "before" is checked again
    shadow.push_buffer("pkg/greet.py", GREET + "UNSAVED = 2\n").result()
    shadow.submit_check({"pkg/shout.py": SHOUT + "y = nme\n"}, {"pkg/shout.py": SHOUT}).result()
    assert len(checker.calls) == 4
    assert (shadow.tree / "pkg" / "greet.py").read_text() == GREET + "UNSAVED = 2\n"


def test_a_warm_still_queued_is_dropped_when_the_next_comes(
    recording: tuple[ShadowWorkspace, RecordingChecker],
) -> None:
    shadow, checker = recording
    checker.gate.clear()
    first = shadow.warm({"pkg/shout.py": SHOUT})
    assert checker.started.wait(30)  # running: held at the checker
    second = shadow.warm({"pkg/greet.py": GREET})
    third = shadow.warm({"pkg/greet.py": GREET + "z = 1\n"})
    assert second.cancelled() and not first.cancelled()
    checker.gate.set()
    first.result(30)
    third.result(30)
    # the first warm rehearses one throwaway edit after its "before" (a server's first re-check
    # after its start is the slow one); later warms do not
    assert [list(c) for c in checker.calls] == [["pkg/shout.py"]] * 2 + [["pkg/greet.py"]]
    assert checker.calls[1]["pkg/shout.py"] == SHOUT + REHEARSAL
    assert checker.calls[2]["pkg/greet.py"] == GREET + "z = 1\n"
    assert (shadow.tree / "pkg" / "shout.py").read_text() == SHOUT  # the copy put back
    # a file no server checks, or a checker without servers: nothing runs
    assert shadow.warm({"notes.txt": "hello\n"}).cancelled()


def test_the_command_line_tools_are_never_run_to_warm(ws: Path, tmp_path: Path) -> None:
    shadow = ShadowWorkspace(ws, base=tmp_path / "data", checker=CliChecker(), scan_every_s=None)
    try:
        assert shadow.warm({"pkg/shout.py": SHOUT}).cancelled()
    finally:
        shadow.close()


def _opened(checker: LspChecker, path: Path) -> bool:
    return path.as_uri() in checker._open


@needs_tools
def test_warm_starts_the_shadows_servers_on_the_file_before_a_review(
    ws: Path, tmp_path: Path
) -> None:
    checker = LspChecker()
    shadow = ShadowWorkspace(
        ws, base=tmp_path / "data", checker=checker, scan_every_s=None, check_timeout_s=300
    )
    try:
        warmed = shadow.warm({"pkg/shout.py": SHOUT})
        verdict = warmed.result(300)
        assert isinstance(verdict, Verdict) and verdict.status is CheckStatus.CHECKED
        assert _opened(checker, shadow.tree / "pkg" / "shout.py")
        # the review that follows reuses the "before" (by the text and the copy's generation):
        # its check asks the servers for the edited text only
        asked: list[list[str]] = []
        real = checker.diagnostics

        def spy(root: Path, paths: Sequence[str], deadline: float) -> list[Diagnostic]:
            asked.append([(root / p).read_text() for p in paths])
            return real(root, paths, deadline)

        checker.diagnostics = spy  # type: ignore[method-assign]
        broken = SHOUT.replace("greet(name)", "greet(nme)")
        verdict = shadow.submit_check({"pkg/shout.py": broken}, {"pkg/shout.py": SHOUT}).result()
        assert {(d.source, d.line) for d in verdict.new} == {("ruff", 4), ("basedpyright", 4)}
        assert asked == [[broken]]
    finally:
        shadow.close()
    assert (ws / "pkg" / "shout.py").read_text() == SHOUT


# ----- the review owner in a real window ----------------------------------------------------


def _window(qtbot: QtBot, tmp_path: Path, ws: Path) -> MainWindow:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"completion.enabled": False, "cloud.autostart": False}))
    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.resize(1100, 700)
    win.show()
    win.open_folder(ws)
    qtbot.waitUntil(lambda: win.workspace.files_complete, timeout=5000)
    return win


@needs_tools
def test_the_inline_edit_prompt_and_a_focused_file_warm_the_shadows_servers(
    qtbot: QtBot, tmp_path: Path, ws: Path
) -> None:
    win = _window(qtbot, tmp_path, ws)
    warms: list[Future[object]] = []

    def make(root: Path) -> ShadowWorkspace:
        shadow = ShadowWorkspace(  # the shadow's servers (conftest turns the editor's off)
            root,
            base=tmp_path / "data",
            rules=lambda: win.workspace.rules,
            checker=LspChecker(),
            check_timeout_s=300,
        )
        real = shadow.warm

        def warm(originals: dict[str, str]) -> Future[object]:
            warms.append(real(originals))
            return warms[-1]

        shadow.warm = warm  # type: ignore[method-assign,assignment]
        return shadow

    win.review.make_shadow = make
    greet = win.open_file(ws / "pkg" / "greet.py")
    assert greet is not None
    assert win.review.shadow is None  # focusing a file makes no shadow: no review yet
    doc = win.open_file(ws / "pkg" / "shout.py")
    assert doc is not None and win.review.shadow is None
    doc.editor.setSel(doc.editor.positionFromLine(3), doc.editor.positionFromLine(5))
    win.review.inline_edit()  # the prompt opens: a review is about to start
    shadow = win.review.shadow
    assert shadow is not None and len(warms) == 1
    checker = shadow.checker
    assert isinstance(checker, LspChecker)
    qtbot.waitUntil(lambda: warms[0].done(), timeout=300_000)
    assert warms[0].result().status is CheckStatus.CHECKED
    assert _opened(checker, shadow.tree / "pkg" / "shout.py")
    assert not _opened(checker, shadow.tree / "pkg" / "greet.py")
    assert win.review.inline_prompt is not None
    win.review.inline_prompt.close_prompt()
    # the folder has a shadow now: focusing another file opens it in the shadow's servers
    win.docs.activate(greet)
    assert len(warms) == 2
    qtbot.waitUntil(lambda: warms[1].done(), timeout=300_000)
    assert _opened(checker, shadow.tree / "pkg" / "greet.py")
    assert (ws / "pkg" / "shout.py").read_text() == SHOUT  # the user's files untouched
    assert (ws / "pkg" / "greet.py").read_text() == GREET
