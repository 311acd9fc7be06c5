"""A diagnostics report repaints only what changed (issue 16: the UI never stalls over 16 ms).

In a long session the language owner repainted all of a file's 1,000 diagnostics on each
report: 15-18 ms of the UI thread every time. Now ``LanguageController._paint`` follows
``forecode_core.lsp.paint_diff.plan``. Real window and editor offscreen (no servers: the
reports are handed to the owner as its bridge hands them); the Scintilla calls are counted
at the editor, and the squiggles are read back with its indicator API and compared with a
full repaint's."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from app.ui.document import Document
from app.ui.editor import CodeEditor
from app.ui.owners.language import INDICATORS, LanguageController, _Open
from forecode_core.lsp.diagnostics import Diagnostic, Severity
from forecode_core.lsp.positions import Position
from tests.helpers.window import folder_window

LINES = 1000
LAYERS = sorted({i for i, _s, _c in INDICATORS.values()})


def _diag(line: int, a: int, b: int, sev: Severity = Severity.ERROR, msg: str = "") -> Diagnostic:
    return Diagnostic(Position(line, a), Position(line, b), sev, msg or f"undefined {line}")


def _report(line_count: int) -> list[Diagnostic]:
    sevs = (Severity.ERROR, Severity.WARNING, Severity.HINT)
    return [_diag(i, 6, 11 + i % 4, sevs[i % 3]) for i in range(line_count)]


def _setup(qtbot: QtBot, tmp_path: Path) -> tuple[LanguageController, _Open, list[str]]:
    text = "".join(f"print(name_{i} + 1)  # é\n" for i in range(LINES))
    (tmp_path / "mod.py").write_text(text)
    win = folder_window(qtbot, tmp_path)
    doc = win.open_file(tmp_path / "mod.py")
    assert isinstance(doc, Document) and doc.path is not None
    language: LanguageController = win.language
    state = _Open(doc, doc.path.as_uri(), 1, QTimer(language))
    language._open[state.uri] = state
    language._style(doc.editor)
    language.track_edits(state)  # as attach does
    calls: list[str] = []
    editor = doc.editor
    fill, clear = editor.indicatorFillRange, editor.indicatorClearRange

    def counted_fill(start: int, length: int) -> None:
        calls.append("fill")
        fill(start, length)

    def counted_clear(start: int, length: int) -> None:
        calls.append("clear")
        clear(start, length)

    editor.indicatorFillRange = counted_fill  # type: ignore[method-assign]
    editor.indicatorClearRange = counted_clear  # type: ignore[method-assign]
    return language, state, calls


def _squiggles(editor: CodeEditor) -> dict[int, list[tuple[int, int]]]:
    """Each layer's runs of painted bytes, read back from the editor."""
    out: dict[int, list[tuple[int, int]]] = {}
    length = editor.textLength()
    for indicator in LAYERS:
        runs: list[tuple[int, int]] = []
        pos = 0
        while pos < length:
            end = editor.indicatorEnd(indicator, pos)
            if end <= pos:
                break
            if editor.indicatorValueAt(indicator, pos):
                runs.append((pos, end))
            pos = end
        out[indicator] = runs
    return out


def _full_repaint(language: LanguageController, state: _Open) -> dict[int, list[tuple[int, int]]]:
    """What a from-scratch paint of the same store leaves, for comparison."""
    state.painted = []
    state.dirty_line = None
    language._paint(state)
    return _squiggles(state.doc.editor)


def _hover_of(language: LanguageController, state: _Open) -> list[tuple[int, int, Diagnostic]]:
    return sorted(state.painted, key=lambda p: (p[0], p[1], repr(p[2])))


def test_a_report_that_changes_one_of_1000_paints_one_range(qtbot: QtBot, tmp_path: Path) -> None:
    language, state, calls = _setup(qtbot, tmp_path)
    first = _report(LINES)
    language._on_diagnostics(state.uri, 1, "basedpyright", first)
    assert calls.count("fill") == LINES
    calls.clear()
    second = list(first)
    second[500] = _diag(500, 0, 5, Severity.WARNING, "changed")
    language._on_diagnostics(state.uri, 1, "basedpyright", second)
    # one cleared, the new one filled (and a kept one sharing its line would be refilled)
    assert len(calls) <= 4, calls
    painted, hover = _squiggles(state.doc.editor), _hover_of(language, state)
    assert painted == _full_repaint(language, state)
    assert hover == _hover_of(language, state)
    assert language.store.counts().warnings == sum(
        1 for d in second if d.severity == Severity.WARNING
    )


def test_after_typing_the_squiggles_equal_a_full_repaint(qtbot: QtBot, tmp_path: Path) -> None:
    language, state, calls = _setup(qtbot, tmp_path)
    editor = state.doc.editor
    language._on_diagnostics(state.uri, 1, "ruff", _report(LINES))
    # typed on line 990 (a char inserted before the squiggle) and a line added at the end
    editor.insertText(editor.positionFromLine(990) + 2, "xé")
    editor.insertText(editor.textLength(), "print(fresh)\n")
    calls.clear()
    report = [*_report(LINES), _diag(LINES, 6, 11, msg="fresh")]
    report[990] = _diag(990, 8, 13, Severity.HINT)  # the server's view of the typed line
    language._on_diagnostics(state.uri, 2, "ruff", report)
    assert calls.count("fill") <= 12, calls  # the tail from line 990, not 1,001
    painted, hover = _squiggles(editor), _hover_of(language, state)
    assert painted == _full_repaint(language, state)
    assert hover == _hover_of(language, state)
    # an edit at the top moves every squiggle: everything is repainted, still right
    editor.insertText(0, "\n")
    language._on_diagnostics(state.uri, 3, "ruff", [_diag(d.start.line + 1, 6, 9) for d in report])
    painted = _squiggles(editor)
    assert painted == _full_repaint(language, state)


def test_the_last_report_emptying_a_file_clears_everything(qtbot: QtBot, tmp_path: Path) -> None:
    language, state, _calls = _setup(qtbot, tmp_path)
    language._on_diagnostics(state.uri, 1, "ruff", _report(LINES))
    language._on_diagnostics(state.uri, 1, "ruff", [])
    assert _squiggles(state.doc.editor) == {i: [] for i in LAYERS}
    assert state.painted == [] and language.diagnostics_at(state.doc, 8) == []


def test_typing_near_the_top_repaints_that_line_only(qtbot: QtBot, tmp_path: Path) -> None:
    """Typing within a line moves no other line: a report after it repaints that line, and
    the painted ranges after it (hover, F8) shift as the squiggles did."""
    language, state, calls = _setup(qtbot, tmp_path)
    editor = state.doc.editor
    report = _report(LINES)
    language._on_diagnostics(state.uri, 1, "ruff", report)
    at = editor.positionFromLine(10) + 6
    editor.insertText(at, "ab")  # typed two characters, then one deleted
    editor.deleteRange(at + 1, 1)
    editor.insertText(editor.positionFromLine(500), "é")  # and a character on line 500
    calls.clear()
    report = list(report)
    report[10] = _diag(10, 6, 12)  # the servers' view of line 11 after the edit
    language._on_diagnostics(state.uri, 2, "ruff", report)
    assert len(calls) <= 12, calls  # 2 lines x 3 layers cleared, 2 filled (1,002 before)
    painted, hover = _squiggles(editor), _hover_of(language, state)
    assert painted == _full_repaint(language, state)
    assert hover == _hover_of(language, state)
    hits = language.diagnostics_at(state.doc, editor.positionFromLine(600) + 7)
    assert [d.start.line for d in hits] == [600]
