"""The Problems panel's rows are one line each, with the source, code and position.

`ruff server` sends messages of several lines ("Use f-string instead of `format` call\\n\\nhelp:
Convert to f-string"); a tree row shows only a text's first line, elided: in a user run on a
copy of json/encoder.py half the rows read "Use f-string instead of `format` call…" with no
"(Ruff UP032)" and no "[Ln, Col]", while basedpyright's one-line messages had both. Real
widgets offscreen."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from app.ui.problems_panel import ProblemRow, ProblemsDock
from forecode_core.lsp.diagnostics import Diagnostic, Severity
from forecode_core.lsp.positions import Position

RUFF = "Use f-string instead of `format` call\n\nhelp: Convert to f-string"


def _row(message: str, line: int, source: str, code: str, severity: Severity) -> ProblemRow:
    diagnostic = Diagnostic(
        Position(line, 4), Position(line, 9), severity, message, source=source, code=code
    )
    return ProblemRow("file:///p/encoder.py", "json/encoder.py", diagnostic)


def test_a_message_of_several_lines_is_one_row_with_its_source_and_place(qtbot: QtBot) -> None:
    dock = ProblemsDock()
    qtbot.addWidget(dock)
    dock.set_rows(
        [
            _row(RUFF, 30, "Ruff", "UP032", Severity.WARNING),
            _row(
                '"i" is possibly unbound',
                32,
                "basedpyright",
                "reportPossiblyUnbound",
                Severity.ERROR,
            ),
        ]
    )
    header, ruff, pyright = dock.visible_texts()
    assert header == "json/encoder.py  (2)"
    assert "\n" not in ruff
    assert ruff == (
        "⚠  Use f-string instead of `format` call — help: Convert to f-string (Ruff UP032)"
        "  [Ln 31, Col 5]"
    )
    assert pyright.endswith("(basedpyright reportPossiblyUnbound)  [Ln 33, Col 5]")
    # the whole message, as the server wrote it, in the row's tooltip
    top = dock.tree.topLevelItem(0)
    child = None if top is None else top.child(0)
    assert child is not None and child.toolTip(0) == RUFF
