"""The bug finder's tier 2 in a real window offscreen, with a scripted model at the seam
(``BugFinder``'s ``ask``): a finding drawn in the likely-bug style (indicator 23, dashed) on
its line with its explanation on hover, at most one per function, only functions changed
since the last commit, a dismissal remembered (and on disk) until the function changes,
typing drops a review's result, "Fix in Shadow" hands the function to the review path; and one
run with the real local model."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.ui.document import Document
from app.ui.main_window import MainWindow
from app.ui.owners.bug_finder import BUG_BGR, BUG_INDICATOR, INDIC_DASH, BugFinder
from tests.helpers.window import folder_window

COMMITTED = """\
def first(items):
    total = 0
    for item in items:
        total += item
    return total


def second(a, b):
    if a < b:
        return a
    return b


def third(x):
    return x * 2
"""


def _git(ws: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True, timeout=30)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "mod.py").write_text(COMMITTED)
    _git(ws, "init", "-q")
    _git(ws, "-c", "user.email=t@t", "-c", "user.name=t", "add", "mod.py")
    _git(ws, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "c")
    return ws


class Scripted:
    """Answers by the function in the prompt: ``answers[name]`` is a list of answers, one per
    sample in turn (cycled)."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, _system: str, user: str, _temperature: float) -> str:
        match = re.search(r"^\s*\d+\| def (\w+)", user, re.MULTILINE) or re.search(
            r"^The function .*:\n`+python\ndef (\w+)", user, re.MULTILINE
        )
        name = match.group(1) if match else "?"
        self.asked.append(name)
        options = self.answers.get(name, ["NO BUG"])
        return options[(self.asked.count(name) - 1) % len(options)]


def _setup(qtbot: QtBot, repo: Path, scripted: Scripted) -> tuple[MainWindow, BugFinder, Document]:
    win = folder_window(qtbot, repo)
    bugs = win.bugs
    bugs._ask = lambda: scripted  # the model seam
    bugs._busy = lambda: False
    bugs.idle_ms = 50
    doc = win.open_file(repo / "mod.py")
    assert doc is not None
    return win, bugs, doc


def _painted_lines(doc: Document) -> list[int]:
    editor = doc.editor
    lines = []
    for line in range(editor.lineCount()):
        start, end = editor.positionFromLine(line), editor.lineEndPosition(line)
        if any(editor.indicatorValueAt(BUG_INDICATOR, p) for p in range(start, end)):
            lines.append(line + 1)
    return lines


def _edit(doc: Document, old: str, new: str) -> None:
    doc.editor.set_text(doc.editor.text().replace(old, new), keep_undo=True)


def test_a_changed_functions_finding_is_drawn_once_with_its_hover(qtbot: QtBot, repo: Path) -> None:
    scripted = Scripted(
        {
            # second: three lines in a row: 9+10, 10 with all three, 10+11 each agree; one
            # finding is shown (the most votes)
            "second": [
                "BUG 9: off-by-one: should be <=",
                "BUG 10: off-by-one: should be <=",
                "BUG 11: off-by-one: should be <=",
            ],
            "first": ["BUG 4: other: adds item"],  # unchanged function: never asked
        }
    )
    _win, bugs, doc = _setup(qtbot, repo, scripted)
    _edit(doc, "    if a < b:\n", "    if a < b:  # smaller\n")
    qtbot.waitUntil(lambda: bool(bugs.shown(doc)), timeout=10_000)
    assert set(scripted.asked) == {"second"} and len(scripted.asked) == 3
    shown = bugs.shown(doc)
    assert len(shown) == 1 and shown[0].function.name == "second"
    assert shown[0].finding.line == 10 and shown[0].finding.kind == "off-by-one"
    assert shown[0].finding.votes == 3
    assert _painted_lines(doc) == [10]
    editor = doc.editor
    assert editor.indicStyle(BUG_INDICATOR) == INDIC_DASH
    assert editor.indicFore(BUG_INDICATOR) == BUG_BGR
    # the underline runs from the line's first character to its end
    start = editor.lineIndentPosition(9)
    assert editor.indicatorValueAt(BUG_INDICATOR, start)
    assert not editor.indicatorValueAt(BUG_INDICATOR, start - 1)
    # hover: the explanation in a call tip
    x, y = editor.pointXFromPosition(start + 2), editor.pointYFromPosition(start + 2)
    editor.dwellStart.emit(x + 1, y + 2)
    assert editor.callTipActive()
    assert "Likely bug (off-by-one): should be <=" in bugs.tip_text(shown[0])
    # the language owner's hover (which the server's answer replaces the tip with) gets it
    assert bugs.tip_lines_at(doc, start + 2) == [bugs.tip_text(shown[0])]
    assert bugs.tip_lines_at(doc, start - 1) == []


def test_a_changed_line_is_written_by_the_model_without_either_version(
    qtbot: QtBot, repo: Path
) -> None:
    """A small replacement is the fill question: the function with the line left out, the
    model writes it; flagged when its samples write HEAD's version, with the kind of the
    difference and HEAD's line as the reason."""
    prompts: list[tuple[str, float]] = []

    def writes_head(_s: str, user: str, temperature: float) -> str:
        prompts.append((user, temperature))
        return "```python\n    if a < b:\n```"

    _win, bugs, doc = _setup(qtbot, repo, Scripted({}))
    bugs._ask = lambda: writes_head
    _edit(doc, "    if a < b:\n", "    if a <= b:\n")
    qtbot.waitUntil(lambda: bool(bugs.shown(doc)), timeout=10_000)
    assert len(prompts) == 2 and all("def second(a, b):" in p for p, _t in prompts)
    assert all("<MISSING>" in p and "a <= b" not in p and "a < b" not in p for p, _t in prompts)
    shown = bugs.shown(doc)
    assert [(s.function.name, s.finding.line, s.finding.kind) for s in shown] == [
        ("second", 9, "off-by-one")
    ]
    assert "HEAD had `if a < b:`" in bugs.tip_text(shown[0]) and _painted_lines(doc) == [9]


def test_a_model_that_writes_the_buffers_line_flags_nothing(qtbot: QtBot, repo: Path) -> None:
    scripted = Scripted({"second": ["if a <= b:"]})
    _win, bugs, doc = _setup(qtbot, repo, scripted)
    reviewed: list[object] = []
    bugs.reviewed.connect(lambda *a: reviewed.append(a))
    _edit(doc, "    if a < b:\n", "    if a <= b:\n")
    qtbot.waitUntil(lambda: bool(reviewed), timeout=10_000)
    qtbot.wait(50)
    assert scripted.asked == ["second"] and bugs.shown(doc) == []  # no second sample


def test_samples_that_disagree_show_nothing(qtbot: QtBot, repo: Path) -> None:
    scripted = Scripted(
        {"second": ["BUG 9: off-by-one: a", "BUG 9: wrong-variable: b", "BUG 11: other: c"]}
    )
    _win, bugs, doc = _setup(qtbot, repo, scripted)
    reviewed: list[object] = []
    bugs.reviewed.connect(lambda *a: reviewed.append(a))
    _edit(doc, "    if a < b:\n", "    if a < b:  # smaller\n")
    qtbot.waitUntil(lambda: bool(reviewed), timeout=10_000)
    qtbot.wait(50)
    assert len(scripted.asked) == 3 and bugs.shown(doc) == [] and _painted_lines(doc) == []


def test_a_dismissal_is_remembered_until_the_function_changes(
    qtbot: QtBot, repo: Path, isolated_dirs: dict[str, Path]
) -> None:
    scripted = Scripted({"second": ["BUG 9: off-by-one: should be <="], "third": ["NO BUG"]})
    _win, bugs, doc = _setup(qtbot, repo, scripted)
    _edit(doc, "    if a < b:\n", "    if a < b:  # smaller\n")
    qtbot.waitUntil(lambda: bool(bugs.shown(doc)), timeout=10_000)
    doc.editor.gotoLine(9)
    bugs.dismiss_at_caret()
    assert bugs.shown(doc) == [] and _painted_lines(doc) == []
    store = isolated_dirs["data"] / "bugs"
    qtbot.waitUntil(lambda: store.is_dir() and any(store.iterdir()), timeout=5000)
    saved = json.loads(next(store.iterdir()).read_text())
    assert saved["format"] == "forecode-bug-dismissals" and len(saved["keys"]) == 1
    # Another function changes: second is reviewed again (still changed), the same finding
    # is not shown again.
    reviewed: list[object] = []
    bugs.reviewed.connect(lambda *a: reviewed.append(a))
    _edit(doc, "    return x * 2\n", "    return x * 3\n")
    qtbot.waitUntil(lambda: bool(reviewed), timeout=10_000)
    qtbot.wait(50)
    assert "third" in scripted.asked and bugs.shown(doc) == []
    # A new window's owner reads the dismissal from disk.
    fresh = BugFinder.__new__(BugFinder)
    fresh._root, fresh._dismissals = bugs._root, {}
    fresh.message = bugs.message
    assert saved["keys"][0] in fresh._dismissed()
    # The function itself changes: the finding comes back.
    _edit(doc, "        return a\n", "        return a  # the smaller\n")
    qtbot.waitUntil(lambda: bool(bugs.shown(doc)), timeout=10_000)
    assert [s.finding.line for s in bugs.shown(doc)] == [9]


def test_typing_drops_a_review_in_flight(qtbot: QtBot, repo: Path) -> None:
    calls: list[str] = []

    def slow(_s: str, _u: str, _t: float) -> str:
        calls.append("x")
        qtbot.wait(0)  # no Qt from here in real code; here only time passes
        import time

        time.sleep(1.0)  # long enough for the typing below to land on a loaded machine
        return "BUG 9: off-by-one: x"

    _win, bugs, doc = _setup(qtbot, repo, Scripted({}))
    bugs._ask = lambda: slow
    reviewed: list[object] = []
    bugs.reviewed.connect(lambda *a: reviewed.append(a))
    bugs.idle_ms = 10_000  # no second review by itself
    _edit(doc, "    if a < b:\n", "    if a < b:  # smaller\n")
    bugs.review_now()
    qtbot.waitUntil(lambda: bool(calls), timeout=5000)
    _edit(doc, "# smaller", "# the smaller")  # typing: the review stops, its result dropped
    qtbot.waitUntil(lambda: bool(reviewed), timeout=10_000)
    qtbot.wait(100)
    assert len(calls) < 3 and bugs.shown(doc) == []


def test_fix_in_shadow_sends_the_function_and_the_finding(qtbot: QtBot, repo: Path) -> None:
    scripted = Scripted({"second": ["BUG 9: off-by-one: should be <="]})
    _win, bugs, doc = _setup(qtbot, repo, scripted)
    asked: list[tuple[Document, str, str]] = []
    bugs._fix = lambda d, block, instruction: asked.append((d, block, instruction))
    _edit(doc, "    if a < b:\n", "    if a < b:  # smaller\n")
    qtbot.waitUntil(lambda: bool(bugs.shown(doc)), timeout=10_000)
    doc.editor.gotoLine(10)  # anywhere in the function
    bugs.fix_at_caret()
    assert len(asked) == 1
    target, block, instruction = asked[0]
    assert target is doc and block.startswith("def second(a, b):") and "return b" in block
    assert "line 2" in instruction and "should be <=" in instruction


def test_the_setting_turns_tier2_off(
    qtbot: QtBot, repo: Path, isolated_dirs: dict[str, Path]
) -> None:
    (isolated_dirs["config"] / "settings.json").write_text(
        json.dumps({"completion.enabled": False, "cloud.autostart": False, "bugs.tier2": False})
    )
    scripted = Scripted({"second": ["BUG 9: off-by-one: should be <="]})
    _win, bugs, doc = _setup(qtbot, repo, scripted)
    _edit(doc, "    if a < b:\n", "    if a < b:  # smaller\n")
    bugs.review_now()
    qtbot.wait(300)
    assert scripted.asked == [] and bugs.shown(doc) == []


def test_one_review_with_the_real_local_model(qtbot: QtBot, repo: Path) -> None:
    """The real model through EngineAsk (the product's seam): the review ends, and what is
    shown keeps the product's guarantees (in a changed function, at most one per function,
    an agreed kind)."""
    from app.services.bug_review import EngineAsk
    from local_models.client import EngineClient
    from local_models.model_store import ensure_model

    client = EngineClient(
        ensure_model("qwen2.5-coder-0.5b-instruct"), start_timeout_s=300.0, request_timeout_s=300.0
    )
    client.start()
    try:
        _win, bugs, doc = _setup(qtbot, repo, Scripted({}))
        bugs._ask = lambda: EngineAsk(client, timeout_s=300.0)
        bugs._busy = lambda: client.pending() > 0
        reviewed: list[tuple[object, int, list[object]]] = []
        bugs.reviewed.connect(lambda *a: reviewed.append(a))
        _edit(doc, "    if a < b:\n", "    if a > b:\n")  # an injected inverted condition
        qtbot.waitUntil(lambda: bool(reviewed), timeout=600_000)
        reviews = reviewed[0][2]
        assert [r.function.name for r in reviews] == ["second"]  # type: ignore[attr-defined]
        # the surprise score (the default on an engine): the changed line's margins, a
        # finding only when every sample's margin reaches the threshold
        from forecode_core.bugs.surprise import DEFAULT_SAMPLES, agreed

        review = reviews[0]
        assert [line for line, _ in review.margins] == [9]  # type: ignore[attr-defined]
        margins = review.margins[0][1]  # type: ignore[attr-defined]
        assert 1 <= len(margins) <= DEFAULT_SAMPLES and not review.votes  # type: ignore[attr-defined]
        full = len(margins) == DEFAULT_SAMPLES and agreed(margins)
        assert (review.finding is not None) == full  # type: ignore[attr-defined]
        shown = bugs.shown(doc)
        assert len(shown) <= 1
        for item in shown:
            assert item.function.name == "second" and 8 <= item.finding.line <= 11
            assert item.finding.votes >= 2
    finally:
        client.close()
