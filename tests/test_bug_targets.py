"""The bug finder's pass before the model runs in a process of its own
(``app.services.bug_targets``), so no parse or diff of it holds the UI process's GIL (issue 15:
"the UI never stalls more than 16 ms"; ``bench next_edit_ui`` saw 19 ms stalls with 0.2 ms of
the UI thread's own work while the ``forecode-bugs`` thread parsed argparse.py).

The real worker process on real git repositories: HEAD's version of a changed function and its
context come back; an untracked file gives every function; a killed worker is replaced; a closed
one starts nothing. In a real window (scripted model at the seam) a pass finds and reviews the
changed function while this process never parses a file. The text goes down the pipe in pieces
of at most ``PIECE_CHARS`` characters (the deterministic bound on the one C call the thread
still makes per piece)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.services import bug_targets
from app.services.bug_targets import PIECE_CHARS, TargetsError, TargetsProcess, text_pieces
from forecode_core.bugs import functions as functions_module
from forecode_core.bugs.functions import Function
from forecode_core.bugs.targets import Prepared, prepare
from tests.helpers.window import folder_window

COMMITTED = """\
import os


def first(items):
    total = 0
    for item in items:
        total += item
    return total


class Box:
    def second(self, a, b):
        if a < b:
            return a
        return b


def third(x):
    return x * 2
"""
CHANGED = COMMITTED.replace("        if a < b:\n", "        if a <= b:\n")


def _git(ws: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
        cwd=ws,
        check=True,
        capture_output=True,
        timeout=30,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "mod.py").write_text(COMMITTED)
    _git(ws, "init", "-q")
    _git(ws, "add", "mod.py")
    _git(ws, "commit", "-q", "-m", "c")
    return ws


@pytest.fixture
def process() -> Iterator[TargetsProcess]:
    proc = TargetsProcess(timeout_s=30)
    yield proc
    proc.close()


def test_the_changed_function_comes_back_with_heads_version_and_its_context(
    repo: Path, process: TargetsProcess
) -> None:
    found = process.prepare(repo, repo / "mod.py", CHANGED, 6)
    assert [p.function for p in found] == [Function("Box.second", 12, 15)]
    item = found[0]
    assert item.before is not None and "if a < b:" in item.before
    assert "if a <= b:" in item.text and item.text == item.function.text(CHANGED)
    assert "import os" in item.context and any("def first(items):" in c for c in item.context)
    # the same answer as the pure function in this process
    assert found == prepare("mod.py", CHANGED, COMMITTED, 6)
    target = item.target(CHANGED, "mod.py")
    assert target.text() == item.text and target.before == item.before


def test_an_untracked_file_gives_every_function_without_heads_version(
    tmp_path: Path, process: TargetsProcess
) -> None:
    path = tmp_path / "loose.py"
    found = process.prepare(tmp_path, path, CHANGED, 2)  # not a repository; limit 2
    assert [p.function.name for p in found] == ["first", "Box.second"]
    assert all(p.before is None for p in found)


def test_text_of_any_size_and_characters_goes_through_in_pieces(
    repo: Path, process: TargetsProcess
) -> None:
    filler = "".join(f"def f{i}(x):\n    return x + {i}  # é ✓\n\n\n" for i in range(14000))
    text = CHANGED + "\n\n" + filler
    assert len(text) > 2 * PIECE_CHARS
    pieces = text_pieces(text)
    assert len(pieces) >= 3
    assert b"".join(pieces).decode("utf-8", "surrogatepass") == text
    # a lone surrogate (the editor's text can hold one) crosses the pipe as it is
    odd = CHANGED + "# \ud800\n"
    assert process.prepare(repo, repo / "mod.py", odd, 6) == prepare("mod.py", odd, COMMITTED, 6)
    found = process.prepare(repo, repo / "mod.py", text, 6)
    # the changed function, and the first added ones (the limit)
    assert found[0].function.name == "Box.second" and len(found) == 6
    assert found[0].before is not None and "if a < b:" in found[0].before
    # each piece that one C call encodes is at most PIECE_CHARS characters: the bound on how
    # long the thread holds the GIL in one go for the text (a few tenths of a millisecond)
    assert all(len(p) <= 4 * PIECE_CHARS for p in pieces)
    assert [len(p.decode("utf-8", "surrogatepass")) for p in pieces[:-1]] == [PIECE_CHARS] * (
        len(pieces) - 1
    )


def test_a_killed_worker_is_replaced_and_a_closed_one_starts_nothing(
    repo: Path, process: TargetsProcess
) -> None:
    assert process.prepare(repo, repo / "mod.py", CHANGED, 6)
    pid = process.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    found = process.prepare(repo, repo / "mod.py", CHANGED, 6)
    assert [p.function.name for p in found] == ["Box.second"]
    assert process.pid() not in (None, pid)
    process.close()
    with pytest.raises(TargetsError):
        process.prepare(repo, repo / "mod.py", CHANGED, 6)
    assert process.pid() is None


def test_the_worker_answers_a_bad_request_with_an_error_and_stops() -> None:
    out = io.BytesIO()
    bug_targets._serve(io.BytesIO(b'{"root": "."}\n'), out)  # no "chunks"
    assert "bad request" in json.loads(out.getvalue())["error"]
    with pytest.raises(ValueError, match="malformed"):
        Prepared.from_json({"name": "f", "start": 1})


def test_a_pass_in_the_window_parses_nothing_in_this_process(
    qtbot: QtBot, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner's pass gets its functions from the process: the parse is never called here
    (it was, on the forecode-bugs thread, before), and the review still runs on HEAD's
    version: the model's fill question writes HEAD's line, the finding is drawn."""
    parsed: list[str] = []
    real = functions_module._python_functions

    def spy(text: str) -> list[Function] | None:
        parsed.append(threading.current_thread().name)
        return real(text)

    monkeypatch.setattr(functions_module, "_python_functions", spy)
    win = folder_window(qtbot, repo)
    bugs = win.bugs
    prompts: list[str] = []

    def writes_head(_s: str, user: str, _t: float) -> str:
        prompts.append(user)
        return "```python\n        if a < b:\n```"

    bugs._ask = lambda: writes_head
    bugs._busy = lambda: False
    bugs.idle_ms = 50
    doc = win.open_file(repo / "mod.py")
    assert doc is not None
    doc.editor.set_text(CHANGED, keep_undo=True)
    qtbot.waitUntil(lambda: bool(bugs.shown(doc)), timeout=15_000)
    shown = bugs.shown(doc)
    assert [(s.function.name, s.finding.line) for s in shown] == [("Box.second", 13)]
    assert prompts and all("def second(self, a, b):" in p for p in prompts)
    assert parsed == []  # no ast.parse in the editor's process
    assert bugs._targets.pid() is not None
    bugs.shutdown()
    assert bugs._targets.pid() is None


def _innermost_by_brute_force(functions: list[Function], lines: set[int]) -> list[Function]:
    picked: dict[Function, None] = {}
    for line in sorted(lines):
        holders = [f for f in functions if f.start_line <= line <= f.end_line]
        if holders:
            picked[min(holders, key=lambda f: f.end_line - f.start_line)] = None
    return sorted(picked, key=lambda f: f.start_line)


def test_changed_among_is_the_innermost_holder_of_each_line() -> None:
    """``changed_among`` (each function claims its lines, bigger first) equals the definition
    (the innermost holder of each changed line), on random spans; it once scanned every
    function for every line: minutes for a pasted file of 50 k lines."""
    import random

    rng = random.Random(7)
    for _ in range(2000):
        spans = []
        for k in range(rng.randint(0, 8)):
            start = rng.randint(1, 40)
            spans.append(Function(f"f{k}", start, start + rng.randint(0, 15)))
        spans.sort(key=lambda f: (f.start_line, -f.end_line))
        lines = set(rng.sample(range(1, 60), rng.randint(0, 10)))
        assert functions_module.changed_among(spans, lines) == _innermost_by_brute_force(
            spans, lines
        )
