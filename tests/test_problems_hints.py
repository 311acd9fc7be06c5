"""Hints are not problems: the Problems panel and F8 leave them out, as VS Code does.

Seen in a user run on jinja's ``environment.py``: basedpyright reports every unused parameter
as a hint ("block_start_string" is not accessed), and the Problems panel listed 30 of them
above the file's errors, each marked with ``ⓘ``, which no font on that machine has (it drew
as an empty box). VS Code's Problems view and its F8 ("Go to Next Problem (Error, Warning,
Info)") take errors, warnings and infos only; the hint stays a faded squiggle in the editor.
Real window, editor and dock offscreen (no servers: the report is handed to the owner as its
bridge hands it)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QFontMetrics
from pytestqt.qtbot import QtBot

from app.ui.document import Document
from app.ui.owners.language import LanguageController, _Open
from app.ui.problems_panel import ProblemRow, ProblemsDock, severity_mark
from forecode_core.lsp.diagnostics import Diagnostic, Severity
from forecode_core.lsp.positions import Position
from tests.helpers.window import folder_window

TEXT = "def f(unused, used):\n    return used + missing\n\n\nx = 1\n"


def _diag(line: int, a: int, b: int, severity: Severity, message: str) -> Diagnostic:
    return Diagnostic(Position(line, a), Position(line, b), severity, message, "basedpyright")


HINT = _diag(0, 6, 12, Severity.HINT, '"unused" is not accessed')
ERROR = _diag(1, 18, 25, Severity.ERROR, '"missing" is not defined')
INFO = _diag(4, 0, 1, Severity.INFORMATION, "x is a module constant")


def test_the_panel_lists_errors_warnings_and_infos_not_hints(qtbot: QtBot) -> None:
    dock = ProblemsDock()
    qtbot.addWidget(dock)
    rows = [ProblemRow("file:///p/mod.py", "mod.py", d) for d in (HINT, ERROR, INFO)]
    dock.set_rows(rows)
    texts = dock.visible_texts()
    assert texts[0] == "mod.py  (2)"
    assert len(texts) == 3
    assert not any("not accessed" in t for t in texts)
    assert texts[1].startswith("⊗  ") and texts[2].startswith("ℹ  ")
    # a file with hints only has no problems
    dock.set_rows(rows[:1])
    assert dock.visible_texts() == ["No problems have been detected."]


def test_every_listed_mark_is_in_the_panels_font(qtbot: QtBot) -> None:
    dock = ProblemsDock()
    qtbot.addWidget(dock)
    metrics = QFontMetrics(dock.tree.font())
    for severity in (Severity.ERROR, Severity.WARNING, Severity.INFORMATION):
        mark = severity_mark(severity)
        assert metrics.inFontUcs4(ord(mark)), (severity, mark)


def test_f8_goes_to_problems_and_passes_hints_by(qtbot: QtBot, tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text(TEXT)
    win = folder_window(qtbot, tmp_path)
    doc = win.open_file(tmp_path / "mod.py")
    assert isinstance(doc, Document) and doc.path is not None
    language: LanguageController = win.language
    state = _Open(doc, doc.path.as_uri(), 1, QTimer(language))
    language._open[state.uri] = state
    language._style(doc.editor)
    language._on_diagnostics(state.uri, 1, "basedpyright", [HINT, ERROR, INFO])
    editor = doc.editor
    editor.gotoPos(0)
    language.go_problem(1)
    assert editor.lineFromPosition(editor.currentPos()) == 1  # the error, not line 0's hint
    language.go_problem(1)
    assert editor.lineFromPosition(editor.currentPos()) == 4
    language.go_problem(1)  # wraps past the hint on line 0
    assert editor.lineFromPosition(editor.currentPos()) == 1
    # hints alone: no problem to go to, and the caret stays
    language._on_diagnostics(state.uri, 2, "basedpyright", [HINT])
    editor.gotoPos(editor.positionFromLine(3))
    language.go_problem(1)
    assert editor.lineFromPosition(editor.currentPos()) == 3
