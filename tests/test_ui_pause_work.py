"""What the UI thread does at the next-edit pause does not grow with the file or with its
diagnostics (issue 15: "the UI never stalls more than 16 ms"). ``bench next_edit_ui`` sampled
``lsp_actions.prompt_context`` (the language servers' context for the model's input) in
``editor.line_text``: 91 reads of a line, ~460 Scintilla calls, each a GIL hand-off the UI
thread waited on while a worker ran, and every diagnostic of the file sorted and measured.

Proxies, never timings: the number of ``textRange`` reads of the editor, and the number of
diagnostics the chooser looks at (``forecode_core.lsp.context._distance``'s calls)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

import forecode_core.lsp.context as context_module
from app.ui.editor import CodeEditor
from app.ui.owners.lsp_actions import CONTEXT_LINES, _window_at
from forecode_core.lsp.context import choose_context
from forecode_core.lsp.diagnostics import Diagnostic, DiagnosticStore, Severity, line_distance
from forecode_core.lsp.positions import Position as P
from tests.helpers.window import folder_window

SEVERITIES = list(Severity)


def _diagnostics(rnd: random.Random, count: int, lines: int) -> list[Diagnostic]:
    out = []
    for n in range(count):
        start = rnd.randrange(lines)
        span = rnd.choice([0, 0, 0, 1, 3, 70, 200])  # a few longer than the index's LONG
        out.append(Diagnostic(P(start, 0), P(start + span, 2), rnd.choice(SEVERITIES), f"m{n % 7}"))
    return out


def test_near_is_all_for_filtered_by_distance_in_its_order() -> None:
    rnd = random.Random(15)
    store = DiagnosticStore()
    store.put("a", "s1", _diagnostics(rnd, 300, 2000))
    store.put("a", "s2", _diagnostics(rnd, 100, 2000))
    for _round in range(3):
        for line in [0, 5, 999, 1500, 1999, 2300]:
            for window in [0, 1, 40]:
                want = [d for d in store.all_for("a") if line_distance(d, line) <= window]
                assert store.near("a", line, window) == want
        # a change drops the document's index: the answer follows it
        store.put("a", "s2", _diagnostics(rnd, 50, 2000))
    store.forget("a", "s1")
    assert store.near("a", 10, 2000) == store.all_for("a")
    store.forget("a")
    assert store.near("a", 10, 40) == []
    assert store.near("never", 10, 40) == []


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("caret_line", [0, 3, 60, 119])
def test_the_window_is_the_lines_line_text_reads(qtbot: QtBot, eol: str, caret_line: int) -> None:
    editor = CodeEditor()
    qtbot.addWidget(editor)
    editor.setText(eol.join(f"v{n} = 'é{n}' + ünï" for n in range(120)))
    head_text = f"v{caret_line} = 'é"  # the caret after the non-ASCII é: bytes != chars
    caret = editor.positionFromLine(caret_line) + len(head_text.encode())
    lines, column = _window_at(editor, caret, caret_line)
    first = max(0, caret_line - CONTEXT_LINES)
    last = min(editor.lineCount() - 1, caret_line + CONTEXT_LINES)
    assert len(lines) == last + 1
    assert list(lines) == [""] * first + [editor.line_text(n) for n in range(first, last + 1)]
    head = bytes(editor.textRange(editor.positionFromLine(caret_line), caret).data())
    assert column == len(head.decode("utf-8")) == len(head_text)


def _counting(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    calls = [0]
    inner: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return inner(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def test_the_pause_context_reads_one_range_and_only_the_near_problems(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "big.py"
    source.write_text("".join(f"def f{n}(a, b):\n    return a + b * {n}\n" for n in range(2500)))
    win = folder_window(qtbot, tmp_path)
    doc = win.open_file(source)
    assert doc is not None and doc.path is not None
    editor, uri = doc.editor, doc.path.as_uri()
    # The servers are off under test: the seam says they know the file.
    monkeypatch.setattr(win.language, "version_of", lambda _uri: 1)
    line = 2500
    editor.gotoPos(editor.positionFromLine(line) + 6)
    near = [
        Diagnostic(P(line + 2, 4), P(line + 2, 8), Severity.ERROR, "undefined b", "pyright"),
        Diagnostic(P(line - 30, 0), P(line - 30, 3), Severity.WARNING, "unused", "ruff"),
    ]
    rnd = random.Random(3)
    far = [  # all more than 40 lines from the caret
        Diagnostic(P(n, 0), P(n, 1), rnd.choice(SEVERITIES), "far", "pyright")
        for n in (
            rnd.choice([rnd.randrange(0, 2400), rnd.randrange(2600, 5000)]) for _ in range(1000)
        )
    ]
    win.language.store.put(uri, "pyright", far + near[:1])
    win.language.store.put(uri, "ruff", near[1:])
    # behaviour: what the old code chose, from every line read one by one and all diagnostics
    old_lines = [editor.line_text(n) for n in range(line + CONTEXT_LINES + 1)]
    want = choose_context("big.py", old_lines, (line, 6), win.language.store.all_for(uri), {}, 2000)
    assert "undefined b" in want.problems and "unused" in want.problems
    win.lsp_actions.prompt_context(2000)  # the store's index is built once per report
    reads = _counting(monkeypatch, editor, "textRange")
    looked = _counting(monkeypatch, context_module, "_distance")
    got = win.lsp_actions.prompt_context(2000)
    assert got == want
    assert reads[0] == 1  # one range for the whole window (91 reads, one a line, before)
    assert looked[0] <= 4 * len(near)  # the near ones only (over 1,000 before)


def test_the_other_tabs_are_read_once_per_version_at_the_pause(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other files' search (``_search_other_files``) read every open tab's text and
    styles again at each pause; a tab that did not change is read once."""
    here, other = tmp_path / "here.py", tmp_path / "other.py"
    here.write_text("def area(w, h):\n    return w * h\n\n\nprint(area(1, 2))\n")
    other.write_text("".join(f"x{n} = area({n}, 2)\n" for n in range(2000)))
    win = folder_window(qtbot, tmp_path)
    other_doc = win.open_file(other)
    doc = win.open_file(here)
    assert doc is not None and other_doc is not None
    reads = _counting(monkeypatch, other_doc.editor, "text")
    editor, owner = doc.editor, win.next_edit
    for round_ in range(3):  # a change in this file, then the pause, three times
        editor.insertText(editor.textLength(), f"# {round_}\n")
        owner.predict_now()
    assert reads[0] == 1  # once for its version (three times before)
    other_doc.editor.insertText(0, "# changed\n")
    editor.insertText(editor.textLength(), "# 3\n")
    owner.predict_now()
    assert reads[0] == 2  # its new version is read
