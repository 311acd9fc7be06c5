""" "Likely Bug: Review Changed Functions" (the palette) says what it does and what it found.

Seen in a user run: the command gave no sign at all — no "reviewing…", no result — for the
whole review (the local model reviews each changed function three times: many seconds), so it
looked broken whether the model found something or nothing. The idle reviews stay silent.
Real window offscreen, a scripted model at the owner's seam (as tests/test_bug_finder.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.ui.document import Document
from app.ui.owners.bug_finder import BugFinder
from tests.helpers.window import folder_window
from tests.test_bug_finder import COMMITTED, Scripted, _edit, _git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with ``mod.py`` committed (as tests/test_bug_finder.py's)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "mod.py").write_text(COMMITTED)
    _git(ws, "init", "-q")
    _git(ws, "-c", "user.email=t@t", "-c", "user.name=t", "add", "mod.py")
    _git(ws, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "c")
    return ws


def _setup(qtbot: QtBot, repo: Path, scripted: Scripted) -> tuple[BugFinder, Document, list[str]]:
    win = folder_window(qtbot, repo)
    bugs = win.bugs
    bugs._ask = lambda: scripted
    bugs._busy = lambda: False
    bugs.idle_ms = 60_000  # no idle review unless a test asks for one
    said: list[str] = []
    bugs.message.connect(lambda text, _ms: said.append(text))
    doc = win.open_file(repo / "mod.py")
    assert doc is not None
    return bugs, doc, said


def test_an_asked_review_says_it_runs_and_what_it_found(qtbot: QtBot, repo: Path) -> None:
    bugs, doc, said = _setup(qtbot, repo, Scripted({"second": ["NO BUG"]}))
    _edit(doc, "    if a < b:\n", "    if a < b:  # smaller\n")
    bugs.review_now()
    assert said and "reviewing" in said[-1]
    qtbot.waitUntil(lambda: "nothing found" in said[-1], timeout=10_000)
    assert said[-1] == "Likely bug: nothing found in 1 changed function"


def test_an_asked_review_names_its_finding(qtbot: QtBot, repo: Path) -> None:
    scripted = Scripted({"second": ["BUG 10: off-by-one: should be <="]})
    bugs, doc, said = _setup(qtbot, repo, scripted)
    _edit(doc, "    if a < b:\n", "    if a < b:  # smaller\n")
    bugs.review_now()
    qtbot.waitUntil(lambda: bool(bugs.shown(doc)), timeout=10_000)
    assert said[-1] == "Likely bug: 1 found, underlined on line 10 (hover it for why)"


def test_an_asked_review_of_an_unchanged_file_says_so(qtbot: QtBot, repo: Path) -> None:
    bugs, _doc, said = _setup(qtbot, repo, Scripted({}))
    bugs.review_now()
    qtbot.waitUntil(lambda: "no function" in said[-1], timeout=10_000)
    assert said[-1] == "Likely bug: no function changed since the last commit"


def test_an_idle_review_is_silent(qtbot: QtBot, repo: Path) -> None:
    bugs, doc, said = _setup(qtbot, repo, Scripted({"second": ["NO BUG"]}))
    _edit(doc, "    if a < b:\n", "    if a < b:  # smaller\n")
    bugs._idle(doc)  # what the idle timer calls
    qtbot.waitUntil(lambda: bugs._running is None, timeout=10_000)
    qtbot.wait(100)
    assert said == []
